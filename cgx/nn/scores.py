"""Discriminator outputs are a tensor or a list of tensors (multi-output discriminators)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:  # (cgx.plugins re-exports these functions: no import of it at run time)
    from ..plugins.types import Scores


def as_list(scores: Scores) -> list[torch.Tensor]:
    return list(scores) if isinstance(scores, (list, tuple)) else [scores]


def mean_over(scores: Scores, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Average ``fn`` over every output of a (possibly multi-output) discriminator."""
    outs = as_list(scores)
    return sum(fn(s) for s in outs) / len(outs)


def split(scores: Scores, n: int) -> tuple[Scores, Scores]:
    """Split batched scores into the first ``n`` samples and the rest."""
    if isinstance(scores, (list, tuple)):
        pairs = [split(s, n) for s in scores]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return scores[:n], scores[n:]
