"""cgx's cut and fastcut steps equal the authors' iteration written plainly (cgx.train.reference_cut),
in fp32: losses at every step, then the weights of G, the projection heads and D."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import norm_cancelled_biases

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.reference_cut import ReferenceCUT
from cgx.train.trainer import Trainer

STEPS = 4
LAYERS = [0, 4, 8, 12, 13]  # antialiased resnet, 2 blocks: padded input, down convs, both residual blocks
GEN = {"name": "resnet", "ngf": 4, "n_blocks": 2, "antialias": True}


def run_both(make_recipe, method: str, reference_changes: dict | None = None):
    cfg = load_config(make_recipe({"method": {"name": method, "nce_layers": LAYERS}, "model": {"generator": GEN},
                                   "train": {"precision": "fp32"}}))
    trainer = Trainer(cfg, registry=Registry())
    gens, discs = trainer.gens.module, trainer.discs.module
    m = trainer.method
    settings = dict(gan_weight=m.gan_weight, nce_weight=m.nce_weight, nce_idt=m.nce_idt, nce_layers=m.nce_layers,
                    num_patches=m.num_patches, temperature=m.temperature, flip_equivariance=m.flip_equivariance)
    ref = ReferenceCUT(copy.deepcopy(gens.G), [copy.deepcopy(h) for h in gens.heads.mlps], copy.deepcopy(discs.D),
                       lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), **{**settings, **(reference_changes or {})})
    data = torch.Generator().manual_seed(7)
    history = []
    for _ in range(STEPS):
        a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
        state = torch.get_rng_state()
        ours, _ = trainer.method_step(a, b)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        flipped = bool(torch.rand(()) < 0.5) and m.flip_equivariance
        torch.set_rng_state(state)
        theirs = ref.iteration(a, b)
        assert torch.equal(torch.get_rng_state(), after)  # the same random draws, in the same number
        history.append((ours, theirs, flipped))
    return trainer, ref, history


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_step_equals_the_authors_iteration(make_recipe, method):
    trainer, ref, history = run_both(make_recipe, method)
    try:
        for step, (ours, theirs, _) in enumerate(history):
            assert ours.keys() == theirs.keys()
            for k in ours:
                assert ours[k].item() == pytest.approx(theirs[k].item(), rel=1e-5, abs=1e-7), (step, k)
        if method == "fastcut":  # both branches of the flip were taken
            assert {f for *_, f in history} == {True, False}
        gens, discs = trainer.gens.module, trainer.discs.module
        pairs = [("G", gens.G, ref.G), ("D", discs.D, ref.D)] + [
            (f"head{i}", h, r) for i, (h, r) in enumerate(zip(gens.heads.mlps, ref.heads))]
        for name, mine, plain in pairs:
            skip = norm_cancelled_biases(mine)
            for (k, p), q in zip(mine.state_dict().items(), plain.state_dict().values()):
                if k not in skip:  # Adam moves a weight whose gradient is ~0 by up to lr per step either way:
                    # float noise in such a gradient shows as up to a fraction of lr (2e-4), not 1e-6
                    assert torch.allclose(p, q, rtol=1e-4, atol=5e-5), f"{name}.{k} differs by {(p - q).abs().max()}"
        probe = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(gens.G(probe), ref.G(probe), rtol=1e-4, atol=1e-5)
    finally:
        trainer.close()


def test_the_comparison_can_fail(make_recipe):
    """The same check notices another temperature: the equality above is not vacuous."""
    trainer, ref, history = run_both(make_recipe, "cut", {"temperature": 0.08})
    try:
        ours, theirs, _ = history[0]
        assert ours["G/nce"].item() != pytest.approx(theirs["G/nce"].item(), rel=1e-5)
    finally:
        trainer.close()
