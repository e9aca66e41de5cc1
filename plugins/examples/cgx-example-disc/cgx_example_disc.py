"""cgx-example-disc: a complete cgx plugin with one discriminator, ``example_global``.

A *global* discriminator: ``n_down`` stride-2 convolutions (LeakyReLU, spectral norm), global average
pooling and a 1x1 convolution, so one score per image, shape (N, 1, 1, 1), where a PatchGAN gives a map
of patch scores. Pair it with a PatchGAN-style recipe as a second opinion, or use it alone.

Select it in a recipe, once the package is installed (or this file is named in ``plugins:``)::

    model:
      discriminator: {name: example_global, width: 32, n_down: 4}
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from cgx.plugins import hookimpl


class GlobalDiscriminator(nn.Module):
    def __init__(self, in_channels: int, width: int, n_down: int, spectral_norm: bool) -> None:
        super().__init__()
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers, channels = [], in_channels
        for i in range(n_down):
            out = width * min(2**i, 8)
            layers += [sn(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = sn(nn.Conv2d(channels, 1, 1))
        self.min_size = 2**n_down  # every stride-2 conv needs at least 2 x 2 pixels

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """What the cgx tests check the outputs against: one 1x1 score map."""
        return [(1, 1, 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3), keepdim=True))  # no sigmoid: the loss decides


def build_example_global(
    in_channels: int = 3,
    width: int = 32,
    n_down: int = 4,
    spectral_norm: bool = True,
) -> GlobalDiscriminator:
    """width: channels of the first conv (doubling per level, at most 8x); n_down: stride-2 convs
    (inputs of at least 2**n_down px); spectral_norm: on every conv."""
    if n_down < 1:
        raise ValueError(f"example_global: n_down must be >= 1, got {n_down}")
    return GlobalDiscriminator(in_channels, width, n_down, spectral_norm)


@hookimpl
def cgx_register_discriminators(register):
    register("example_global", build_example_global)
