"""Multi-scale PatchGAN discriminator (Wang et al. 2018, pix2pixHD): the same PatchGAN architecture,
``num_scales`` independent copies, the k-th judging the image downsampled k times (3x3 average
pooling, stride 2, padding excluded from the average, as pix2pixHD). Returns one score map per scale,
finest first; every adversarial loss averages over them (``cgx.nn.scores.mean_over``)."""
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cgx.nn.init import init_normal
from cgx.nn.norm import NORMS
from cgx.plugins import hookimpl
from cgx.plugins.args import at_least

from .patchgan import PatchDiscriminator, apply_spectral_norm


def downsample(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def downsampled_size(size: int) -> int:
    return (size - 1) // 2 + 1


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, in_channels=3, ndf=64, n_layers=3, norm="instance", num_scales=2) -> None:
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"multiscale num_scales must be >= 1, got {num_scales}")
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers, norm) for _ in range(num_scales))
        self.min_size = next(s for s in range(1, 2**20) if self._coarsest(s) >= self.scales[0].min_size)
        """The smallest input side whose coarsest scale still gives a score map."""

    def _coarsest(self, size: int) -> int:
        for _ in range(len(self.scales) - 1):
            size = downsampled_size(size)
        return size

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        shapes = []
        for d in self.scales:
            shapes += d.output_shapes(height, width)
            height, width = downsampled_size(height), downsampled_size(width)
        return shapes

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"multiscale with {len(self.scales)} scales and n_layers={self.scales[0].n_layers} "
                             f"needs inputs of at least {self.min_size}x{self.min_size} px, got {tuple(x.shape[-2:])}; "
                             f"use fewer scales or layers")
        scores = []
        for i, d in enumerate(self.scales):
            if i:
                x = downsample(x)
            scores.append(d(x))
        return scores


def build_multiscale(
    in_channels: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: Literal[NORMS] = "instance",
    num_scales: int = 2,
    init_std: float = 0.02,
    spectral_norm: bool = False,
) -> MultiscaleDiscriminator:
    """num_scales PatchGANs (pix2pixHD: 2, up to 3 for 1024 px), each with ndf, n_layers, norm as
    ``patchgan``; spectral_norm on every conv."""
    at_least(1, in_channels=in_channels, ndf=ndf)
    at_least(0, init_std=init_std)
    net = init_normal(MultiscaleDiscriminator(in_channels, ndf, n_layers, norm, num_scales), init_std)
    return apply_spectral_norm(net) if spectral_norm else net


@hookimpl
def cgx_register_discriminators(register):
    register("multiscale", build_multiscale)
