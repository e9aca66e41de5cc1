"""The 70x70 PatchGAN discriminator (Isola et al. 2017), 2,764,737 parameters with the defaults."""
from typing import Literal

import torch
from torch import nn

from cgx.nn.init import init_normal
from cgx.nn.norm import norm_layer
from cgx.plugins import hookimpl


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels=3, ndf=64, n_layers=3, norm="instance") -> None:
        super().__init__()
        nl = norm_layer(norm)
        bias = norm != "batch"
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                nl(ndf * mult), nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]  # no sigmoid: the loss decides
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_patchgan(
    in_channels: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: Literal["instance", "batch", "none"] = "instance",
    init_std: float = 0.02,
) -> PatchDiscriminator:
    """PatchGAN: n_layers=3 gives the 70x70 receptive field."""
    return init_normal(PatchDiscriminator(in_channels, ndf, n_layers, norm), init_std)


@hookimpl
def cgx_register_discriminators(register):
    register("patchgan", build_patchgan)
