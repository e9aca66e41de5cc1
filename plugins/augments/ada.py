"""Adaptive discriminator augmentation (ADA: Karras, Aittala, Hellsten, Laine, Lehtinen, Aila, NeurIPS 2020)
as an ``augment`` plugin: each transformation is applied to each sample with probability p, and p is steered
by how much the discriminator overfits.

The overfitting measure is the paper's r_t = E[sign(D(real))]: the share of the discriminator's scores of
real (augmented) training images on the real side of its loss's decision boundary, as a number in [-1, 1],
over every score (every patch of a PatchGAN, every scale of a multi-scale D), every discriminator, every
rank, since the last adjustment. Every ``interval`` images (the paper: 4 minibatches of 64), p moves by
sign(r_t - target) x (images since the last adjustment) / ``speed`` and is clamped from below at 0 (the
paper's rule: p can rise from 0 to 1 in ``speed`` images). r_t above the target (0.6) means D is too sure
of the reals: more augmentation.

The pipeline is DiffAugment's differentiable operations (``ops``: brightness, saturation, contrast,
translation with zero padding, cutout), each gated per sample by an independent draw u < p: not ADA's
18-operation pipeline of flips, rotations, scaling, filtering and colour transforms (of which this is a
cheap subset of the same kinds: colour and integer translation, plus cutout). At p = 0 every image passes
through unchanged.

p, r_t and the statistics of the interval in progress are the same on every rank (reduced over ranks every
step through the engine), saved in every checkpoint and restored exactly; p is logged as ``augment/p``."""
from __future__ import annotations

from typing import Callable, Literal

import torch

from cgx.plugins import Scores, as_list, hookimpl
from cgx.plugins.args import at_least

from .ops import OPERATIONS, POLICIES, check_policy


class AdaptiveAugment:
    def __init__(self, policy: list[str], target: float = 0.6, interval: int = 256, speed: int = 500_000,
                 initial_p: float = 0.0) -> None:
        self.policy = policy
        self.operations = [(draw, apply) for p in policy for _, draw, apply in OPERATIONS[p]]
        self.target, self.interval, self.speed = target, interval, speed
        device = torch.device("cpu")
        self.p = torch.tensor(float(initial_p), dtype=torch.float64, device=device)
        """The probability of each transformation, on the device (the step reads it without a host sync)."""
        self.r_t = torch.tensor(0.0, dtype=torch.float64, device=device)
        """The last adjustment's r_t (0 until the first)."""
        self.pending = torch.zeros(2, dtype=torch.float64, device=device)
        """This rank's sum of signs and count of scores since the last ``update`` (not yet reduced)."""
        self.interval_stats = torch.zeros(2, dtype=torch.float64, device=device)
        """Every rank's sum of signs and count of scores in the interval in progress (reduced)."""
        self.images = 0
        """Images seen (all ranks) since the last adjustment."""

    def to(self, device: torch.device) -> "AdaptiveAugment":
        for name in ("p", "r_t", "pending", "interval_stats"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for draw, apply in self.operations:
            gate = torch.rand(images.shape[0], device=images.device, dtype=torch.float32) < self.p
            changed = apply(images, *draw(images))
            images = torch.where(gate.reshape(-1, *([1] * (images.dim() - 1))), changed, images)
        return images

    def observe(self, real_scores: Scores, boundary: float) -> None:
        with torch.no_grad():
            for s in as_list(real_scores):
                signs = torch.sign(s.detach().double() - boundary)
                count = torch.full((), float(signs.numel()), dtype=torch.float64, device=signs.device)
                self.pending += torch.stack([signs.sum(), count])

    def update(self, images: int, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        with torch.no_grad():
            self.interval_stats += reduce(self.pending)
            self.pending.zero_()
            self.images += images
            if self.images < self.interval:
                return
            total, count = self.interval_stats
            self.r_t.copy_(total / count.clamp(min=1))
            adjust = torch.sign(self.r_t - self.target) * (self.images / self.speed)
            self.p.copy_((self.p + adjust).clamp(min=0))
            self.interval_stats.zero_()
            self.images = 0

    def scalars(self) -> dict[str, torch.Tensor]:
        return {"p": self.p, "r_t": self.r_t}

    def state_dict(self) -> dict:
        return {"p": self.p.cpu().clone(), "r_t": self.r_t.cpu().clone(), "pending": self.pending.cpu().clone(),
                "interval_stats": self.interval_stats.cpu().clone(), "images": self.images}

    def load_state_dict(self, state: dict) -> None:
        for name in ("p", "r_t", "pending", "interval_stats"):
            getattr(self, name).copy_(state[name])
        self.images = int(state["images"])

    def __repr__(self) -> str:
        return (f"AdaptiveAugment(policy={self.policy}, target={self.target}, interval={self.interval}, "
                f"speed={self.speed})")


def build_ada(policy: list[Literal[POLICIES]] = list(POLICIES), target: float = 0.6, interval: int = 256,
              speed: int = 500_000, initial_p: float = 0.0) -> AdaptiveAugment:
    """policy: the DiffAugment transformations each gated by p; target: the r_t that p steers towards (the
    paper's 0.6); interval: images (over all ranks) between adjustments of p (the paper's 4 x 64); speed: images
    in which p can rise from 0 to 1 (the paper's 500k; a CycleGAN run of 200 epochs of 1,000 images sees 200k,
    so lower it there); initial_p: p at step 0."""
    at_least(1, interval=interval, speed=speed)
    at_least(0, initial_p=initial_p)
    if not -1.0 <= target <= 1.0:
        raise ValueError(f"target={target}: r_t is in [-1, 1]; the paper's is 0.6")
    try:
        return AdaptiveAugment(check_policy(policy), target, interval, speed, initial_p)
    except ValueError as e:
        raise ValueError(str(e)) from None


@hookimpl
def cgx_register_augments(register):
    register("ada", build_ada)
