"""Normalisation layers by name, as recipes spell them."""
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("instance", "batch", "none")


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps a channels_last input channels_last on the CPU.

    torch's instance norm makes its input contiguous (NCHW) first, so in a channels_last network
    every norm converts to NCHW and the convolution after it back: on a CPU with AMX that costs
    more than channels_last saves. Without affine parameters or running statistics, the instance
    norm of one sample is the batch norm of a batch of that one sample, which torch's CPU kernels
    compute in channels_last; a batch is normalised sample by sample. Anything else (NCHW inputs,
    CUDA, affine or running statistics) is torch's own instance norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dim() != 4 or self.affine or self.track_running_stats
                or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x)
        samples = [F.batch_norm(s, None, None, training=True, eps=self.eps) for s in x.split(1)]
        return samples[0] if len(samples) == 1 else torch.cat(samples)


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """``instance``: InstanceNorm2d without affine parameters or running stats (the authors' choice);
    ``batch``: BatchNorm2d; ``none``: identity."""
    if kind == "instance":
        return lambda c: InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: {', '.join(NORMS)}")
