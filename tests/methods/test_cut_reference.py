"""cgx's cut and fastcut steps equal the authors' iteration written plainly (cgx.train.reference_cut), in fp32,
one step at a time from the same state (cgx.train.reference_sync): losses, the gradients and updates of G, the
projection heads and D, at each of 4 steps."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import norm_cancelled_biases

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.reference_cut import ReferenceCUT
from cgx.train.reference_sync import StepSync
from cgx.train.trainer import Trainer

STEPS = 4
LAYERS = [0, 4, 8, 12, 13]  # antialiased resnet, 2 blocks: padded input, down convs, both residual blocks
GEN = {"name": "resnet", "ngf": 4, "n_blocks": 2, "antialias": True}
# Gradients: relative L2 error per network, as in tests/train/test_reference.py (0.1: kinks and norms can flip or
# amplify rounding). Measured here up to ~1e-3 elementwise of a tensor's largest gradient, in the heads' biases:
# they start at 0 and the first step moves the last ones by ~lr, far more than the small (xavier, gain 0.02)
# rest of the output, so every patch's vector points nearly along that bias and the L2 norm's Jacobian cancels
# their gradient (a sum over patches) down to ~1e-2 of its terms. A different temperature, weight or term moves
# the losses by % and a detached path the gradients by O(1).
GRAD_REL_L2 = 0.1
# The reference's Adam on cgx's gradients from cgx's state: the same update up to a rounding of the weight
# and of the update (cgx's default Adam may be the fused one, whose arithmetic differs in order only).
WEIGHT_RTOL = 1e-6


def build(make_recipe, method: str, reference_changes: dict | None = None):
    cfg = load_config(make_recipe({"method": {"name": method, "nce_layers": LAYERS}, "model": {"generator": GEN},
                                   "train": {"precision": "fp32"}}))
    trainer = Trainer(cfg, registry=Registry())
    gens, discs = trainer.gens.module, trainer.discs.module
    m = trainer.method
    settings = dict(gan_weight=m.gan_weight, nce_weight=m.nce_weight, nce_idt=m.nce_idt, nce_layers=m.nce_layers,
                    num_patches=m.num_patches, temperature=m.temperature, flip_equivariance=m.flip_equivariance)
    ref = ReferenceCUT(copy.deepcopy(gens.G), [copy.deepcopy(h) for h in gens.heads.mlps], copy.deepcopy(discs.D),
                       lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), **{**settings, **(reference_changes or {})})
    sync = StepSync({"G": (gens.G, ref.G), "D": (discs.D, ref.D),
                     **{f"head{i}": (h, r) for i, (h, r) in enumerate(zip(gens.heads.mlps, ref.heads))}},
                    [(trainer.gens.optimizer, ref.opt_g), (trainer.discs.optimizer, ref.opt_d)])
    return trainer, ref, sync, cfg.optim.lr


def compare_one_step(trainer, ref, sync: StepSync, lr: float, a, b, step: int) -> bool:
    """One step on each side from cgx's state and the same random draws; AssertionError naming what differs
    first. Returns whether the step flipped (FastCUT)."""
    sync.load(step)
    state = torch.get_rng_state()
    flipped = bool(torch.rand(()) < 0.5) and trainer.method.flip_equivariance
    after = []

    def ours():
        torch.set_rng_state(state)
        losses = trainer.method_step(a, b).losses
        after.append(torch.get_rng_state())
        torch.set_rng_state(state)
        return losses

    (ours, theirs), grads = sync.step(ours, lambda: ref.iteration(a, b))
    assert torch.equal(torch.get_rng_state(), after[0])  # the same random draws, in the same number
    assert ours.keys() == theirs.keys()
    skip = {f"{label}.{k}" for label, (net, _) in sync.networks.items() for k in norm_cancelled_biases(net)}
    sync.check_step({k: (ours[k], theirs[k]) for k in ours}, grads, rel_l2=GRAD_REL_L2, weight_rtol=WEIGHT_RTOL, lr=lr,
                    skip=skip)  # skipped: true gradient 0, all rounding noise
    return flipped


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_step_equals_the_authors_iteration(make_recipe, method):
    trainer, ref, sync, lr = build(make_recipe, method)
    try:
        data, flips = torch.Generator().manual_seed(7), set()
        for step in range(STEPS):
            a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
            flips.add(compare_one_step(trainer, ref, sync, lr, a, b, step))
        if method == "fastcut":  # both branches of the flip were taken
            assert flips == {True, False}
        print("largest share of tolerance used:", {k: round(v, 4) for k, v in sync.shares.items()})
    finally:
        trainer.close()


def test_the_comparison_can_fail(make_recipe):
    """The same check notices another temperature: the equality above is not vacuous."""
    trainer, ref, sync, lr = build(make_recipe, "cut", {"temperature": 0.08})
    try:
        a, b = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(2))
        with pytest.raises(AssertionError, match="step 0: G/nce differs"):
            compare_one_step(trainer, ref, sync, lr, a, b, 0)
    finally:
        trainer.close()
