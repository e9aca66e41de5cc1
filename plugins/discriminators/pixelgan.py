"""The 1x1 PixelGAN discriminator of pix2pix (Isola et al. 2017, ``netD=pixel``): every pixel is judged
on its own colour, no spatial context. Useful for colour statistics; it cannot see structure."""
from typing import Literal

import torch
from torch import nn

from cgx.nn.init import init_normal
from cgx.nn.norm import NORMS, norm_layer
from cgx.plugins import hookimpl
from cgx.plugins.args import at_least

from .patchgan import apply_spectral_norm


class PixelDiscriminator(nn.Module):
    def __init__(self, in_channels=3, ndf=64, norm="instance") -> None:
        super().__init__()
        bias = norm != "batch"
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias), norm_layer(norm)(2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 1, 1, bias=bias),  # no sigmoid; no bias with batch norm, as the authors
        )

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """One score per pixel."""
        return [(1, height, width)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_pixelgan(
    in_channels: int = 3,
    ndf: int = 64,
    norm: Literal[NORMS] = "instance",
    init_std: float = 0.02,
    spectral_norm: bool = False,
) -> PixelDiscriminator:
    """PixelGAN (1x1 PatchGAN): three 1x1 convs, ndf and 2 ndf channels, one score per pixel."""
    at_least(1, in_channels=in_channels, ndf=ndf)
    at_least(0, init_std=init_std)
    net = init_normal(PixelDiscriminator(in_channels, ndf, norm), init_std)
    return apply_spectral_norm(net) if spectral_norm else net


@hookimpl
def cgx_register_discriminators(register):
    register("pixelgan", build_pixelgan)
