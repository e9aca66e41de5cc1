"""Least-squares adversarial loss (Mao et al. 2017), CycleGAN's choice: real target 1, fake 0."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cgx.plugins import DiscriminatorBatch, Scores, hookimpl, mean_over


class LSGANLoss:
    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        self.real_label = real_label
        self.fake_label = fake_label

    @property
    def decision_boundary(self) -> float:
        """Between the two targets: where an adaptive augmentation counts a real score as on the real side."""
        return (self.real_label + self.fake_label) / 2

    def _mse(self, scores: Scores, target: float) -> torch.Tensor:
        return mean_over(scores, lambda s: F.mse_loss(s.float(), torch.full_like(s, target, dtype=torch.float32)))

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        """The generator wants its fakes scored as real."""
        return self._mse(fake_scores, self.real_label)

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch | None = None) -> torch.Tensor:
        """0.5 * (real + fake), halved as in the authors' code to slow D relative to G."""
        return 0.5 * (self._mse(real_scores, self.real_label) + self._mse(fake_scores, self.fake_label))


def build_lsgan(real_label: float = 1.0, fake_label: float = 0.0) -> LSGANLoss:
    return LSGANLoss(real_label, fake_label)


@hookimpl
def cgx_register_adversarial_losses(register):
    register("lsgan", build_lsgan)
