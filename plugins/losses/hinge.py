"""Hinge adversarial loss (Lim & Ye 2017; Miyato et al. 2018, SNGAN; BigGAN):

    L_D = E[relu(1 - D(real))] + E[relu(1 + D(fake))]        L_G = -E[D(fake)]

Not halved: the formulation is the papers' sum, and unlike lsgan's 0.5 (the CycleGAN authors' way to
slow D) a constant factor on the D loss hardly matters with Adam, which normalises the gradient
scale; ``d_weight`` sets one where it does (SGD)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cgx.plugins import DiscriminatorBatch, Scores, hookimpl, mean_over


class HingeLoss:
    def __init__(self, d_weight: float = 1.0) -> None:
        self.d_weight = d_weight

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        return mean_over(fake_scores, lambda s: -s.float().mean())

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch | None = None) -> torch.Tensor:
        real = mean_over(real_scores, lambda s: F.relu(1.0 - s.float()).mean())
        fake = mean_over(fake_scores, lambda s: F.relu(1.0 + s.float()).mean())
        return self.d_weight * (real + fake)


def build_hinge(d_weight: float = 1.0) -> HingeLoss:
    """d_weight: factor on the discriminator loss (1: the papers'; 0.5: halved like lsgan)."""
    return HingeLoss(d_weight)


@hookimpl
def cgx_register_adversarial_losses(register):
    register("hinge", build_hinge)
