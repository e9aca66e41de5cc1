"""One CycleGAN training step, as in Zhu et al. 2017: a generator phase, then a discriminator phase.

    L(G, F, D_A, D_B) = L_GAN(G, D_B) + L_GAN(F, D_A)
                        + w_cyc * (|F(G(a)) - a| + |G(F(b)) - b|)
                        + w_idt * (|G(b) - b| + |F(a) - a|)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..nn.scores import split
from ..plugins.types import AdversarialLoss, DiscriminatorBatch, ReconstructionLoss
from .networks import Translations, set_requires_grad


@dataclass
class Objective:
    gan: AdversarialLoss
    reconstruction: ReconstructionLoss
    cycle_weight: float = 10.0
    identity_weight: float = 5.0


class CycleGANStep:
    def __init__(self, gens, discs, objective: Objective, pool_a, pool_b, autocast: Callable) -> None:
        self.gens, self.discs = gens, discs  # Trainables (see cgx.distributed.trainable)
        self.obj = objective
        self.pool_a, self.pool_b = pool_a, pool_b
        self.autocast = autocast

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple[dict, Translations]:
        losses, t = self.generator_phase(real_a, real_b)
        losses.update(self.discriminator_phase(real_a, real_b, t))
        return losses, t

    def generator_phase(self, real_a, real_b) -> tuple[dict, Translations]:
        """Update G and F with D_A and D_B frozen (and not synchronised across ranks)."""
        obj = self.obj
        frozen = set_requires_grad(self.discs.module, False)  # only what was trainable
        with self.autocast():
            t = self.gens(real_a, real_b, identity=obj.identity_weight > 0)
            score_a, score_b = self.discs.module(t.fake_a, t.fake_b)
        losses = {
            "G/gan_AtoB": obj.gan.generator_loss(score_b),
            "G/gan_BtoA": obj.gan.generator_loss(score_a),
            "G/cycle_A": obj.cycle_weight * obj.reconstruction(t.rec_a, real_a),
            "G/cycle_B": obj.cycle_weight * obj.reconstruction(t.rec_b, real_b),
        }
        if obj.identity_weight > 0:
            losses["G/identity_A"] = obj.identity_weight * obj.reconstruction(t.idt_a, real_a)
            losses["G/identity_B"] = obj.identity_weight * obj.reconstruction(t.idt_b, real_b)
        self.gens.backward(sum(losses.values()))
        self.gens.step()
        set_requires_grad(frozen, True)
        return {k: v.detach() for k, v in losses.items()}, t

    def discriminator_phase(self, real_a, real_b, t: Translations) -> dict:
        """Update D_A and D_B on real images and fakes drawn from the history buffers, in one call."""
        fake_a = self.pool_a.query(t.fake_a.detach())
        fake_b = self.pool_b.query(t.fake_b.detach())
        n = real_a.shape[0]
        with self.autocast():
            scores_a, scores_b = self.discs(torch.cat([real_a, fake_a]), torch.cat([real_b, fake_b]))
        gan, discs = self.obj.gan, self.discs.module
        losses = {
            "D/A": gan.discriminator_loss(*split(scores_a, n), DiscriminatorBatch(discs.D_A, real_a, fake_a, self.autocast)),
            "D/B": gan.discriminator_loss(*split(scores_b, n), DiscriminatorBatch(discs.D_B, real_b, fake_b, self.autocast)),
        }
        self.discs.backward(sum(losses.values()))
        self.discs.step()
        return {k: v.detach() for k, v in losses.items()}
