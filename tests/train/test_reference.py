"""cgx's CycleGAN step (fp32) equals the paper's algorithm written plainly (cgx.train.reference, run in float64),
one step at a time from the same state (cgx.train.reference_sync): losses, every gradient, the optimizers' updates
and the history pools' contents, at each of 4 steps."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import norm_cancelled_biases

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.reference import ReferenceCycleGAN
from cgx.train.reference_sync import StepSync
from cgx.train.trainer import Trainer

STEPS = 4  # the pool of 2 is full after step 2: steps 3 and 4 draw from it
# The reference runs in float64, so each check measures cgx's float32 rounding of one step and nothing else.
# (A float32 reference is no yardstick: with one thread, its F's gradients at step 2 came out 1% away from the
# float64 ones while cgx's were within 2e-6 of them; at two threads both were.)
# Gradients: relative L2 error per network. Where it is smooth, one float32 forward/backward comes within ~2e-6
# of float64. But the step passes ReLU / LeakyReLU / L1 kinks and instance norms, where rounding can flip a
# branch or be amplified: F's gradient at step 2 came out 1.0e-2 away from float64 at two threads (both
# float32 implementations) and 2e-6 at one. 0.1 admits that ten times over; a detached or missing term, or a
# wrong weight, moves a gradient by O(1) (and the losses, compared to rtol 1e-5, by %).
GRAD_REL_L2 = 0.1
# The reference's Adam, from cgx's state and fed cgx's gradients, is the same update in float64: the weights
# agree to float32 rounding of the weight (rtol 1e-6, 2^-24 ~ 6e-8) and 1e-3 of one update (at most lr).
WEIGHT_RTOL = 1e-6


def clone_generator(g: torch.Generator) -> torch.Generator:
    out = torch.Generator()
    out.set_state(g.get_state())
    return out


def build(make_recipe, **reference_changes):
    # The plain algorithm's Adam is torch's for-loop one; cgx takes the same here (the fused one is held to it in
    # tests/train/test_optim.py).
    cfg = load_config(make_recipe({"buffer": {"name": "image_pool", "size": 2}, "train": {"precision": "fp32"},
                                   "optim": {"implementation": "for-loop"}}))
    trainer = Trainer(cfg, registry=Registry())
    gens, discs, step = trainer.gens.module, trainer.discs.module, trainer.method_step
    ref = ReferenceCycleGAN(*(copy.deepcopy(n).double() for n in (gens.G, gens.F, discs.D_A, discs.D_B)),
                            lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), pool_size=2,
                            pool_generators=(clone_generator(step.pool_a.generator),
                                             clone_generator(step.pool_b.generator)), **reference_changes)
    sync = StepSync({"G": (gens.G, ref.G), "F": (gens.F, ref.F), "D_A": (discs.D_A, ref.D_A), "D_B": (discs.D_B, ref.D_B)},
                    [(trainer.gens.optimizer, ref.opt_g), (trainer.discs.optimizer, ref.opt_d)])
    return trainer, ref, sync, cfg.optim.lr


def compare_one_step(trainer, ref, sync: StepSync, lr: float, a, b, step: int) -> None:
    """One step on each side from cgx's state; AssertionError naming what differs first."""
    sync.load(step)
    for pool, plain in ((trainer.method_step.pool_a, ref.pool_a), (trainer.method_step.pool_b, ref.pool_b)):
        plain.images = [x.reshape(x.shape[-3:]).double() for x in pool.images]  # cgx keeps (1, C, H, W)
        plain.generator.set_state(pool.generator.get_state())
    (ours, theirs), grads = sync.step(lambda: trainer.method_step(a, b).losses, lambda: ref.iteration(a.double(), b.double()))
    assert ours.keys() == theirs.keys()
    skip = {f"{label}.{k}" for label, (net, _) in sync.networks.items() for k in norm_cancelled_biases(net)}
    sync.check_step({k: (ours[k], theirs[k]) for k in ours}, grads, rel_l2=GRAD_REL_L2, weight_rtol=WEIGHT_RTOL, lr=lr,
                    skip=skip)  # skipped: true gradient 0, all rounding noise
    for pool, plain in ((trainer.method_step.pool_a, ref.pool_a), (trainer.method_step.pool_b, ref.pool_b)):
        assert len(pool.images) == len(plain.images) == min(step + 1, 2)
        for x, y in zip(pool.images, plain.images):  # tanh outputs: one float32 forward's rounding
            sync.within("pools", "a pooled image", x.reshape(y.shape), y, 1e-4, 1e-5)


def test_trainer_step_equals_the_plain_algorithm(make_recipe):
    trainer, ref, sync, lr = build(make_recipe)
    try:
        data = torch.Generator().manual_seed(7)
        for step in range(STEPS):
            a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
            compare_one_step(trainer, ref, sync, lr, a, b, step)
        print("largest share of tolerance used:", {k: round(v, 4) for k, v in sync.shares.items()})
    finally:
        trainer.close()


def test_the_comparison_can_fail(make_recipe):
    """The same check notices a changed loss weight: the equality above is not vacuous."""
    trainer, ref, sync, lr = build(make_recipe, cycle_weight=9.0)  # a slightly different objective
    try:
        a, b = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(2))
        with pytest.raises(AssertionError, match="step 0: G/cycle_A differs"):
            compare_one_step(trainer, ref, sync, lr, a, b, 0)
    finally:
        trainer.close()
