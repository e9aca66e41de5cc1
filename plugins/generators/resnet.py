"""The ResNet generator of CycleGAN (Johnson et al. 2016, as in Zhu et al. 2017).

9 residual blocks at 256 px (11,378,179 parameters), 6 at 128 px (7,837,699)."""
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cgx.nn.init import init_normal
from cgx.nn.norm import norm_layer
from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


class ResidualBlock(nn.Module):
    """pad, conv, norm, ReLU, [dropout 0.5], pad, conv, norm; plus the input. With dropout the
    second conv is ``body.6`` (the authors' ``conv_block.6``), without it ``body.5``."""

    def __init__(self, dim: int, norm, bias: bool = True, dropout: bool = False) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Stem (7x7 conv) and two downsamplings, ``n_blocks`` residual blocks at 1/4 scale, two
    upsamplings and the 7x7 head, in one ``model`` Sequential (the authors' keys)."""

    size_multiple = 4  # two stride-2 downsamplings
    min_size = 8  # the residual blocks' reflection pad needs 2 x 2 at 1/4 scale

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9, norm="instance", dropout=False) -> None:
        super().__init__()
        self.per_sample = norm != "batch"  # batch norm mixes the samples of a batch
        nl = norm_layer(norm)
        bias = norm != "batch"  # the authors drop conv biases only before BatchNorm
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), nl(ngf), nn.ReLU(True)]
        for i in range(2):  # downsample: ngf -> 2 ngf -> 4 ngf
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), nl(2 * c), nn.ReLU(True)]
        layers += [ResidualBlock(4 * ngf, nl, bias, dropout) for _ in range(n_blocks)]
        for i in range(2):  # upsample: 4 ngf -> 2 ngf -> ngf
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                nl(c // 2), nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.n_blocks = n_blocks
        self.checkpointed = False

    def stages(self) -> list[nn.Module]:
        """The forward as modules applied in sequence: stem with the downsamplings, each residual
        block, the upsamplings with the head (views of ``model``: the same parameters)."""
        first, last = 10, 10 + self.n_blocks  # stem: pad, conv, norm, ReLU; 2 x (conv, norm, ReLU)
        return [self.model[:first], *self.model[first:last], self.model[last:]]

    def enable_activation_checkpointing(self) -> None:
        """Keep only each stage's input for backward and recompute the stage's activations there."""
        self.checkpointed = True

    def tiling_stages(self) -> list[nn.Module]:
        """For ``cgx translate --tile`` (``cgx.tiling``): convolutions, pads, instance norm and
        pointwise layers, combined by the residual add only."""
        return self.stages()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.checkpointed and torch.is_grad_enabled()):
            return self.model(x)
        for stage in self.stages():
            x = checkpoint(stage, x, use_reentrant=False)
        return x


def build_resnet(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    n_blocks: int = 9,
    norm: Literal["instance", "batch", "none"] = "instance",
    dropout: bool = False,
    init_std: float = 0.02,
) -> ResnetGenerator:
    """ResNet generator: ngf base channels, n_blocks residual blocks (9 at 256 px, 6 at 128 px).
    dropout: 0.5 between the two convs of each block (the authors' use_dropout; CycleGAN: off)."""
    at_least(1, in_channels=in_channels, out_channels=out_channels, ngf=ngf)
    at_least(0, n_blocks=n_blocks, init_std=init_std)
    return init_normal(ResnetGenerator(in_channels, out_channels, ngf, n_blocks, norm, dropout), init_std)


@hookimpl
def cgx_register_generators(register):
    register("resnet", build_resnet)
