"""DiffAugment (Zhao et al., NeurIPS 2020) as an ``augment`` plugin: every image any discriminator sees, real
or generated, in the discriminator's and the generator's phase alike, goes through the same random,
differentiable transformations (``ops``), drawn anew for each sample at each call. The generator's
gradient passes through them, so the discriminator never sees an unaugmented image and the generator is
not taught to produce augmented ones.

    augment: {name: diffaugment, policy: [color, translation, cutout]}

The authors' recommendation for small data sets is all three ("color,translation,cutout"); with ~100
images or fewer they found the full policy best, with thousands ``translation`` alone often enough."""
from __future__ import annotations

from typing import Literal

import torch

from cgx.plugins import hookimpl

from .ops import OPERATIONS, POLICIES, check_policy


class DiffAugment:
    def __init__(self, policy: list[str]) -> None:
        self.policy = policy
        self.operations = [(draw, apply) for p in policy for _, draw, apply in OPERATIONS[p]]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for draw, apply in self.operations:
            images = apply(images, *draw(images))
        return images

    def __repr__(self) -> str:
        return f"DiffAugment(policy={self.policy})"


def build_diffaugment(policy: list[Literal[POLICIES]] = list(POLICIES)) -> DiffAugment:
    """policy: which of DiffAugment's transformations, applied in this order (the paper's
    color, translation, cutout: brightness/saturation/contrast, a shift of up to 1/8 of the side with zero
    padding, a cut-out of half the side)."""
    try:
        return DiffAugment(check_policy(policy))
    except ValueError as e:
        raise ValueError(str(e)) from None


@hookimpl
def cgx_register_augments(register):
    register("diffaugment", build_diffaugment)
