"""cgx's pix2pix step equals the authors' iteration written plainly (cgx.train.reference_pix2pix), in fp32:
losses at every step, then every weight and batch-norm statistic, for both directions."""
from __future__ import annotations

import copy

import pytest
import torch

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.reference_pix2pix import ReferencePix2Pix
from cgx.train.trainer import Trainer

STEPS = 4


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_pix2pix_step_equals_the_plain_algorithm(make_paired_recipe, direction):
    cfg = load_config(make_paired_recipe({"method": {"direction": direction}}))
    trainer = Trainer(cfg, registry=Registry())
    try:
        G, D = trainer.gens.module.G, trainer.discs.module.D
        assert D.model[0].in_channels == 6  # conditional: input and output concatenated
        ref = ReferencePix2Pix(copy.deepcopy(G), copy.deepcopy(D), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
        data = torch.Generator().manual_seed(7)
        for step in range(STEPS):
            a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
            torch.manual_seed(100 + step)  # the same dropout masks on both sides
            ours, images = trainer.method_step(a, b)
            torch.manual_seed(100 + step)
            x, y = (a, b) if direction == "AtoB" else (b, a)
            theirs = ref.iteration(x, y)
            assert set(ours) == {"D/pair", f"G/gan_{direction}", f"G/L1_{direction}"}
            for mine, plain in (("D/pair", "D/pair"), (f"G/gan_{direction}", "G/gan"), (f"G/L1_{direction}", "G/L1")):
                assert ours[mine].item() == pytest.approx(theirs[plain].item(), rel=1e-5, abs=1e-7), (step, mine)
            rows = next(iter(images.values()))
            assert rows[0] is x and rows[2] is y
        for name, mine, plain in (("G", G, ref.G), ("D", D, ref.D)):
            ours_state, ref_state = mine.state_dict(), plain.state_dict()
            assert ours_state.keys() == ref_state.keys()
            for k in ours_state:  # weights, and batch norm's running statistics
                torch.testing.assert_close(ours_state[k].float(), ref_state[k].float(), rtol=1e-4, atol=1e-6,
                                           msg=lambda m, k=k: f"{name}.{k}: {m}")
        assert trainer.method.translators(trainer.gens.module) == {direction: G}
    finally:
        trainer.close()


def test_the_comparison_can_fail(make_paired_recipe):
    """The same check notices a different L1 weight: the equality above is not vacuous."""
    cfg = load_config(make_paired_recipe())
    trainer = Trainer(cfg, registry=Registry())
    try:
        G, D = trainer.gens.module.G, trainer.discs.module.D
        ref = ReferencePix2Pix(copy.deepcopy(G), copy.deepcopy(D), l1_weight=99.0)
        a, b = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(2))
        torch.manual_seed(5)
        ours, _ = trainer.method_step(a, b)
        torch.manual_seed(5)
        theirs = ref.iteration(a, b)
        assert ours["G/L1_AtoB"].item() != pytest.approx(theirs["G/L1"].item(), rel=1e-5)
        assert any(not torch.allclose(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(G.parameters(), ref.G.parameters()))
    finally:
        trainer.close()


def test_pix2pix_refuses_unpaired_data(make_paired_recipe):
    from cgx.errors import ConfigError

    cfg = load_config(make_paired_recipe({"data": {"paired": False}}))
    with pytest.raises(ConfigError, match="method: pix2pix learns from pairs, but data.paired=false"):
        Trainer(cfg, registry=Registry())
