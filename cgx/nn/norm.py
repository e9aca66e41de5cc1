"""Normalisation layers by name, as recipes spell them."""
from typing import Callable

from torch import nn

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """``instance``: InstanceNorm2d without affine parameters or running stats (the authors' choice);
    ``batch``: BatchNorm2d; ``none``: identity."""
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: {', '.join(NORMS)}")
