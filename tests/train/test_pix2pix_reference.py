"""cgx's pix2pix step equals the authors' iteration written plainly (cgx.train.reference_pix2pix), in fp32,
one step at a time from the same state (cgx.train.reference_sync): losses, every gradient, the optimizers'
updates and batch norm's running statistics, at each of 4 steps, for both directions."""
from __future__ import annotations

import copy

import pytest
import torch

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.reference_pix2pix import ReferencePix2Pix
from cgx.train.reference_sync import StepSync
from cgx.train.trainer import Trainer

STEPS = 4
# Gradients: relative L2 error per network, as in tests/train/test_reference.py (0.1: kinks and norms can flip or
# amplify rounding; measured here: ~1e-6 at most). A different L1 weight or a missing term moves the losses by %,
# a detached path the gradients by O(1).
GRAD_REL_L2 = 0.1
# The reference's Adam on cgx's gradients from cgx's state: the same update up to a rounding of the weight
# and of the update (cgx's default Adam may be the fused one, whose arithmetic differs in order only).
WEIGHT_RTOL = 1e-6


def build(make_paired_recipe, direction: str = "AtoB", **reference_changes):
    cfg = load_config(make_paired_recipe({"method": {"direction": direction}}))
    trainer = Trainer(cfg, registry=Registry())
    G, D = trainer.gens.module.G, trainer.discs.module.D
    ref = ReferencePix2Pix(copy.deepcopy(G), copy.deepcopy(D), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                           **reference_changes)
    sync = StepSync({"G": (G, ref.G), "D": (D, ref.D)},
                    [(trainer.gens.optimizer, ref.opt_g), (trainer.discs.optimizer, ref.opt_d)])
    return trainer, ref, sync, cfg.optim.lr


def compare_one_step(trainer, ref, sync: StepSync, lr: float, direction: str, a, b, step: int) -> None:
    """One step on each side from cgx's state and the same dropout masks; AssertionError naming what differs."""
    sync.load(step)
    x, y = (a, b) if direction == "AtoB" else (b, a)
    images = []

    def ours():
        torch.manual_seed(100 + step)  # the same dropout masks on both sides
        result = trainer.method_step(a, b)
        images.append(result.images)
        return result.losses

    def theirs():
        torch.manual_seed(100 + step)
        return ref.iteration(x, y)

    (ours, theirs), grads = sync.step(ours, theirs)
    assert set(ours) == {"D/pair", f"G/gan_{direction}", f"G/L1_{direction}"}
    rows = next(iter(images[0].values()))
    assert rows[0] is x and rows[2] is y
    pairs = (("D/pair", "D/pair"), (f"G/gan_{direction}", "G/gan"), (f"G/L1_{direction}", "G/L1"))
    sync.check_step({mine: (ours[mine], theirs[plain]) for mine, plain in pairs}, grads, rel_l2=GRAD_REL_L2,
                    weight_rtol=WEIGHT_RTOL, lr=lr)
    for label, (mine, plain) in sync.networks.items():  # batch norm's running statistics: one forward's rounding
        theirs_buffers = dict(plain.named_buffers())
        for k, v in mine.named_buffers():
            sync.within("buffers", f"{label}.{k}", v.double(), theirs_buffers[k].double(), 1e-4, 1e-6)


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_pix2pix_step_equals_the_plain_algorithm(make_paired_recipe, direction):
    trainer, ref, sync, lr = build(make_paired_recipe, direction)
    try:
        assert sync.networks["D"][0].model[0].in_channels == 6  # conditional: input and output concatenated
        data = torch.Generator().manual_seed(7)
        for step in range(STEPS):
            a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
            compare_one_step(trainer, ref, sync, lr, direction, a, b, step)
        assert trainer.method.translators(trainer.gens.module) == {direction: trainer.gens.module.G}
        print("largest share of tolerance used:", {k: round(v, 4) for k, v in sync.shares.items()})
    finally:
        trainer.close()


def test_the_comparison_can_fail(make_paired_recipe):
    """The same check notices a different L1 weight: the equality above is not vacuous."""
    trainer, ref, sync, lr = build(make_paired_recipe, l1_weight=99.0)
    try:
        a, b = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(2))
        with pytest.raises(AssertionError, match="step 0: G/L1_AtoB differs"):
            compare_one_step(trainer, ref, sync, lr, "AtoB", a, b, 0)
    finally:
        trainer.close()


def test_pix2pix_refuses_unpaired_data(make_paired_recipe):
    from cgx.errors import ConfigError

    cfg = load_config(make_paired_recipe({"data": {"paired": False}}))
    with pytest.raises(ConfigError, match="method: pix2pix learns from pairs, but data.paired=false"):
        Trainer(cfg, registry=Registry())
