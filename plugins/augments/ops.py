"""DiffAugment's operations (Zhao, Liu, Lin, Zhu, Han, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS 2020), each split into its random draw and a pure, differentiable function of the images
and the draw, so a test can hold each one to the paper's formula on draws it fixes.

Every draw is per sample (the first dimension), from torch's generator on the images' device (a rank's
random state, which every checkpoint saves), in the authors' order: brightness, saturation, contrast
(``color``), then the vertical and horizontal shift (``translation``), then the cut-out's centre row and
column (``cutout``). The formulas, for a sample x of C x H x W and its draws:

- brightness: x + (u - 0.5), u ~ U[0, 1)
- saturation: (x - mean_c x) * 2u + mean_c x (the mean over channels, per pixel)
- contrast:   (x - mean x) * (u + 0.5) + mean x (the mean over the whole sample)
- translation: out[:, i, j] = x[:, i + dy, j + dx] where that is inside the image, else 0 (zero padding),
  dy uniform in [-H // 8, H // 8], dx in [-W // 8, W // 8] (integers)
- cutout: a (H // 2) x (W // 2) rectangle set to 0, rows oy - H // 4 ... oy - H // 4 + H // 2 - 1 (clipped
  to the image), oy uniform in [0, H - (H // 2) % 2] (integers); columns alike

Images are in [-1, 1], so 0 (what translation pads with and cutout writes) is mid-grey. Every function keeps
the input's shape and dtype."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

POLICIES = ("color", "translation", "cutout")
"""The policy names of DiffAugment (its ``--DiffAugment color,translation,cutout``)."""


def _uniform(x: torch.Tensor) -> torch.Tensor:
    """One U[0, 1) number per sample, drawn in float32 (the same draws whatever the images' precision)."""
    return torch.rand(x.shape[0], device=x.device, dtype=torch.float32)


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def brightness(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return x + (_per_sample(u, x) - 0.5)


def saturation(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_per_sample(u, x) * 2) + mean


def contrast(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_sample(u, x) + 0.5) + mean


def translation_draw(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = x.shape[2] // 8, x.shape[3] // 8
    dy = torch.randint(-h, h + 1, (x.shape[0],), device=x.device)
    dx = torch.randint(-w, w + 1, (x.shape[0],), device=x.device)
    return dy, dx


def _shifted(index: torch.Tensor, shift: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, size) source positions ``index + shift`` clamped into the image, and whether each was inside."""
    source = index[None, :] + shift[:, None]
    return source.clamp(0, size - 1), (source >= 0) & (source < size)


def translation(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    rows, rows_in = _shifted(torch.arange(h, device=x.device), dy, h)
    cols, cols_in = _shifted(torch.arange(w, device=x.device), dx, w)
    out = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    inside = rows_in[:, None, :, None] & cols_in[:, None, None, :]
    return torch.where(inside, out, torch.zeros((), dtype=x.dtype, device=x.device))


def cutout_draw(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = x.shape[2], x.shape[3]
    oy = torch.randint(0, h + 1 - (h // 2) % 2, (x.shape[0],), device=x.device)
    ox = torch.randint(0, w + 1 - (w // 2) % 2, (x.shape[0],), device=x.device)
    return oy, ox


def cutout(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = h // 2, w // 2

    def band(centre: torch.Tensor, size: int, length: int) -> torch.Tensor:  # (N, length): inside the cut
        start = (centre - size // 2)[:, None]
        index = torch.arange(length, device=x.device)[None, :]
        return (index >= start) & (index < start + size)

    cut = band(oy, sh, h)[:, :, None] & band(ox, sw, w)[:, None, :]
    keep = (~cut).to(x.dtype)
    return x * keep[:, None]


OPERATIONS: dict[str, list[tuple[str, Callable, Callable]]] = {
    "color": [("brightness", lambda x: (_uniform(x),), brightness),
              ("saturation", lambda x: (_uniform(x),), saturation),
              ("contrast", lambda x: (_uniform(x),), contrast)],
    "translation": [("translation", translation_draw, translation)],
    "cutout": [("cutout", cutout_draw, cutout)],
}
"""Policy -> its operations in order: (name, draw(images) -> draws, apply(images, *draws) -> images)."""


def check_policy(policy: Sequence[str]) -> list[str]:
    """The policy as a list, or ValueError naming what is accepted."""
    if isinstance(policy, str):
        policy = [p.strip() for p in policy.split(",") if p.strip()]
    policy = list(policy)
    for p in policy:
        if p not in OPERATIONS:
            raise ValueError(f"policy {p!r} is not a DiffAugment policy; accepted: {', '.join(POLICIES)} "
                             f"(a list, e.g. [color, translation, cutout])")
    if len(set(policy)) != len(policy):
        raise ValueError(f"policy {policy} names one policy twice; name each once")
    return policy
