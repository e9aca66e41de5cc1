"""The 70x70 PatchGAN discriminator (Isola et al. 2017), 2,764,737 parameters with the defaults."""
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from cgx.nn.init import init_normal
from cgx.nn.norm import NORMS, norm_layer
from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels=3, ndf=64, n_layers=3, norm="instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"patchgan n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        nl = norm_layer(norm)
        bias = norm != "batch"
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                nl(ndf * mult), nn.LeakyReLU(0.2),
            ]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]  # no sigmoid: the loss decides
        self.model = nn.Sequential(*layers)
        self.min_size = next(s for s in range(1, 2**16) if patch_map_size(s, n_layers) >= 1)
        """The smallest input side that still gives a score map (24 px for n_layers=3)."""

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(channels, height, width) of the score map for a height x width input."""
        return [(1, patch_map_size(height, self.n_layers), patch_map_size(width, self.n_layers))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"patchgan with n_layers={self.n_layers} needs inputs of at least "
                             f"{self.min_size}x{self.min_size} px, got {tuple(x.shape[-2:])}")
        return self.model(x)


def patch_map_size(size: int, n_layers: int) -> int:
    """Side of the score map: n_layers stride-2 4x4 convs halve it, the two stride-1 ones take 1 each."""
    for _ in range(n_layers):
        size //= 2
    return size - 2


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every convolution, after initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            _spectral_norm(m)
    return module


def build_patchgan(
    in_channels: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: Literal[NORMS] = "instance",
    init_std: float = 0.02,
    spectral_norm: bool = False,
) -> PatchDiscriminator:
    """PatchGAN: n_layers=3 gives the 70x70 receptive field (1: 16x16, 2: 34x34, 4: 142x142).
    spectral_norm: spectral normalisation on every conv (usually with norm="none" and the hinge loss)."""
    at_least(1, in_channels=in_channels, ndf=ndf)
    at_least(0, init_std=init_std)
    net = init_normal(PatchDiscriminator(in_channels, ndf, n_layers, norm), init_std)
    return apply_spectral_norm(net) if spectral_norm else net


@hookimpl
def cgx_register_discriminators(register):
    register("patchgan", build_patchgan)
