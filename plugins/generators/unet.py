"""The U-Net generator of pix2pix (Isola et al. 2017), as in the authors' code.

``num_downs`` stride-2 downsamplings take the image to 1x1 at the bottleneck: 8 for 256 px
("unet_256": 54,409,603 parameters with ngf=64 and instance norm, 54,413,955 with batch norm),
7 for 128 px ("unet_128": 41,825,667; 41,828,995). Checked against the authors' code: same
parameters in the same order, identical outputs. Each level's skip connection concatenates the
encoder features with the decoder's upsampled output. As in the authors' code, where an in-place
LeakyReLU acts on the features before they are concatenated, the skip carries LeakyReLU(0.2) of
the encoder features (written out here instead of relying on in-place aliasing). Inputs must be a multiple of 2**num_downs."""
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cgx.nn.init import init_normal
from cgx.nn.norm import NORMS, norm_layer
from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


class UnetBlock(nn.Module):
    """One level: [LeakyReLU] -> down conv -> [norm] -> inner level -> ReLU -> up conv -> norm | tanh."""

    def __init__(self, outer: int, inner: int, in_channels: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        nl = norm_layer(norm)
        bias = norm != "batch"
        self.outermost = outermost
        in_channels = outer if in_channels is None else in_channels
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        up_in = inner if submodule is None else 2 * inner
        if outermost:  # image in, image out: no norm, tanh
            layers = [down, submodule, nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1), nn.Tanh()]
        elif submodule is None:  # innermost: 1x1 bottleneck, no norm on it
            layers = [down, nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias), nl(outer)]
        else:
            layers = [down, nl(inner), submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias), nl(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.act = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        self.model = nn.Sequential(*layers)
        self.sub_index = None if submodule is None else layers.index(submodule)
        self.checkpointed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self._inner(x)
        x = self.act(x)
        return torch.cat([x, self._inner(x)], 1)

    def _inner(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.checkpointed and torch.is_grad_enabled()):
            return self.model(x)
        # Recomputed in backward: this level's down path and its up path, each on its own (the
        # levels below checkpoint theirs), so only the inputs of the two paths are kept.
        i = self.sub_index
        if i is None:
            return checkpoint(self.model, x, use_reentrant=False)
        down = checkpoint(self.model[:i], x, use_reentrant=False)
        inner = self.model[i](down)
        # model[i + 1] is the in-place ReLU: applied out of place, not to the checkpoint's input
        return checkpoint(_relu_then, self.model[i + 2:], inner, use_reentrant=False)


def _relu_then(up: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return up(torch.relu(x))


class UnetGenerator(nn.Module):
    def __init__(self, in_channels=3, out_channels=3, ngf=64, num_downs=8, norm="instance", dropout=False) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"unet num_downs must be >= 5 (7: 128 px, 8: 256 px), got {num_downs}")
        self.size_multiple = 2**num_downs
        self.min_size = 2**num_downs  # the bottleneck is 1x1 at this size
        self.per_sample = norm != "batch"  # batch norm mixes the samples of a batch
        block = UnetBlock(ngf * 8, ngf * 8, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetBlock(out_channels, ngf, in_channels, submodule=block, outermost=True, norm=norm)

    def enable_activation_checkpointing(self) -> None:
        """Every level recomputes its down path and its up path in backward (see ``UnetBlock``)."""
        for m in self.modules():
            if isinstance(m, UnetBlock):
                m.checkpointed = True

    def tiling_stages(self) -> list[nn.Module]:
        """For ``cgx translate --tile`` (``cgx.tiling``): one stage, the nested levels (convolutions,
        instance norm, pointwise layers, combined by channel concatenation only)."""
        return [self.model]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % self.size_multiple or x.shape[-1] % self.size_multiple:
            raise ValueError(f"unet with num_downs={self.size_multiple.bit_length() - 1} needs inputs whose sides are "
                             f"multiples of {self.size_multiple}, got {tuple(x.shape[-2:])}")
        return self.model(x)


def build_unet(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    num_downs: int = 8,
    norm: Literal[NORMS] = "instance",
    dropout: bool = False,
    init_std: float = 0.02,
) -> UnetGenerator:
    """U-Net: num_downs=8 for 256 px (unet_256), 7 for 128 px (unet_128); inputs a multiple of
    2**num_downs. dropout: 0.5 in the innermost 8-ngf levels (pix2pix on; CycleGAN off)."""
    at_least(1, in_channels=in_channels, out_channels=out_channels, ngf=ngf)
    at_least(0, init_std=init_std)
    return init_normal(UnetGenerator(in_channels, out_channels, ngf, num_downs, norm, dropout), init_std)


@hookimpl
def cgx_register_generators(register):
    register("unet", build_unet)
