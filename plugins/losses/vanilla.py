"""The original GAN loss (Goodfellow et al. 2014) on logits, with the non-saturating generator loss:
binary cross-entropy with logits, real target 1, fake 0 (the authors' ``gan_mode=vanilla``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cgx.plugins import DiscriminatorBatch, Scores, hookimpl, mean_over


class VanillaGANLoss:
    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        self.real_label = real_label
        self.fake_label = fake_label

    def _bce(self, scores: Scores, target: float) -> torch.Tensor:
        return mean_over(scores, lambda s: F.binary_cross_entropy_with_logits(
            s.float(), torch.full_like(s, target, dtype=torch.float32)))

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        """Non-saturating: -log D(G(x)), the generator wants its fakes scored as real."""
        return self._bce(fake_scores, self.real_label)

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch | None = None) -> torch.Tensor:
        """0.5 * (BCE(real, 1) + BCE(fake, 0)): halved, as the authors' code halves every D loss."""
        return 0.5 * (self._bce(real_scores, self.real_label) + self._bce(fake_scores, self.fake_label))


def build_vanilla(real_label: float = 1.0, fake_label: float = 0.0) -> VanillaGANLoss:
    """real_label / fake_label: BCE targets (e.g. 0.9 for one-sided label smoothing)."""
    return VanillaGANLoss(real_label, fake_label)


@hookimpl
def cgx_register_adversarial_losses(register):
    register("vanilla", build_vanilla)
