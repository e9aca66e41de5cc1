"""cgx's CycleGAN step equals the paper's algorithm written plainly (cgx.train.reference), in fp32:
losses at every step, then weights and the history pools' contents."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import norm_cancelled_biases

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.reference import ReferenceCycleGAN
from cgx.train.trainer import Trainer

STEPS = 4  # the pool of 2 is full after step 2: steps 3 and 4 draw from it


def clone_generator(g: torch.Generator) -> torch.Generator:
    out = torch.Generator()
    out.set_state(g.get_state())
    return out


def test_trainer_step_equals_the_plain_algorithm(make_recipe):
    # The plain algorithm's Adam is torch's for-loop one; the fused one the trainer takes by default computes
    # the same update to float rounding (tests/train/test_optim.py), which a GAN's steps amplify beyond 1e-4.
    cfg = load_config(make_recipe({"buffer": {"name": "image_pool", "size": 2}, "train": {"precision": "fp32"},
                                   "optim": {"implementation": "for-loop"}}))
    trainer = Trainer(cfg, registry=Registry())
    try:
        gens, discs = trainer.gens.module, trainer.discs.module
        ref = ReferenceCycleGAN(*(copy.deepcopy(n) for n in (gens.G, gens.F, discs.D_A, discs.D_B)),
                                lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), pool_size=2,
                                pool_generators=(clone_generator(trainer.method_step.pool_a.generator),
                                                 clone_generator(trainer.method_step.pool_b.generator)))
        data = torch.Generator().manual_seed(7)
        for step in range(STEPS):
            a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
            ours, _ = trainer.method_step(a, b)
            theirs = ref.iteration(a, b)
            assert ours.keys() == theirs.keys()
            for k in ours:
                assert ours[k].item() == pytest.approx(theirs[k].item(), rel=1e-5, abs=1e-7), (step, k)

        for name, mine, plain in (("G", gens.G, ref.G), ("F", gens.F, ref.F), ("D_A", discs.D_A, ref.D_A),
                                  ("D_B", discs.D_B, ref.D_B)):
            skip = norm_cancelled_biases(mine)
            compared = 0
            for (k, p), q in zip(mine.state_dict().items(), plain.state_dict().values()):
                if k not in skip:
                    compared += 1
                    assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), f"{name}.{k} differs by {(p - q).abs().max()}"
            assert compared > len(skip)
            probe = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
            with torch.no_grad():  # ... and the networks compute the same function, those biases included
                torch.testing.assert_close(mine(probe), plain(probe), rtol=1e-4, atol=1e-5)
        for pool, plain in ((trainer.method_step.pool_a, ref.pool_a), (trainer.method_step.pool_b, ref.pool_b)):
            assert len(pool.images) == len(plain.images) == 2
            for x, y in zip(pool.images, plain.images):
                torch.testing.assert_close(x.squeeze(0), y, rtol=1e-4, atol=1e-6)
    finally:
        trainer.close()


def test_the_comparison_can_fail(make_recipe):
    """The same check notices a changed weight: the equality above is not vacuous."""
    cfg = load_config(make_recipe({"buffer": {"name": "image_pool", "size": 2}}))
    trainer = Trainer(cfg, registry=Registry())
    try:
        gens, discs = trainer.gens.module, trainer.discs.module
        ref = ReferenceCycleGAN(*(copy.deepcopy(n) for n in (gens.G, gens.F, discs.D_A, discs.D_B)),
                                pool_size=2, cycle_weight=9.0)  # a slightly different objective
        data = torch.Generator().manual_seed(7)
        a, b = (torch.rand(1, 3, 32, 32, generator=data) * 2 - 1 for _ in range(2))
        ours, _ = trainer.method_step(a, b)
        theirs = ref.iteration(a, b)
        assert ours["G/cycle_A"].item() != pytest.approx(theirs["G/cycle_A"].item(), rel=1e-5)
        assert any(not torch.allclose(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(gens.G.parameters(), ref.G.parameters()))
    finally:
        trainer.close()
