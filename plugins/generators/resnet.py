"""The ResNet generator of CycleGAN (Johnson et al. 2016, as in Zhu et al. 2017).

9 residual blocks at 256 px (11,378,179 parameters), 6 at 128 px (7,837,699).

``antialias=True`` is CUT's variant (Park et al. 2020, taesungp/contrastive-unpaired-translation,
``models/networks.py``: their default; ``--no_antialias``/``--no_antialias_up`` turn it off): each
downsampling is a stride-1 conv, norm, ReLU, then a fixed [1, 2, 1] blur with stride 2; each
upsampling a fixed [1, 3, 3, 1] transposed blur with stride 2, then a stride-1 conv, norm, ReLU.

Encoder features (``cgx.plugins.types.FeatureGenerator``): ``encode_features(x, layers)`` returns the
outputs of modules ``layers`` of ``self.model``, which is layer for layer the authors' ``nn.Sequential``
(padding, norm and ReLU layers counted), so CUT's ``nce_layers`` mean the same modules as theirs:

======  ==============================================  ==========================================
index   antialias=True (their default)                  antialias=False (their --no_antialias)
======  ==============================================  ==========================================
0       ReflectionPad2d(3): the padded input image      the same
1-3     7x7 conv, norm, ReLU                             the same
4       first down conv (stride 1, 2 ngf)               first down conv (stride 2, 2 ngf)
5-7     norm, ReLU, blur-downsample                     norm, ReLU, second down conv (stride 2)
8       second down conv (stride 1, 4 ngf, 1/2 size)    norm of the second down conv (4 ngf, 1/4)
9-11    norm, ReLU, blur-downsample                     ReLU, residual blocks 1, 2
12..    residual block 1, 2, ... (4 ngf, 1/4 size)      residual block 3, 4, ...
======  ==============================================  ==========================================

The encoder ends with the last residual block (``encoder_layers`` modules); later indices are
refused."""
from typing import Literal, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cgx.nn.init import init_normal
from cgx.nn.norm import NORMS, norm_layer
from cgx.nn.pad import ReflectionPad2d, ReplicationPad2d
from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


class ResidualBlock(nn.Module):
    """pad, conv, norm, ReLU, [dropout 0.5], pad, conv, norm; plus the input. With dropout the
    second conv is ``body.6`` (the authors' ``conv_block.6``), without it ``body.5``."""

    def __init__(self, dim: int, norm, bias: bool = True, dropout: bool = False) -> None:
        super().__init__()
        layers = [ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect pad 1, then a fixed depthwise [1, 2, 1] x [1, 2, 1] / 16
    blur with stride 2 (the authors' ``Downsample(channels)``, filt_size 3). No parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        k = a[:, None] * a[None, :]
        self.register_buffer("filt", (k / k.sum())[None, None].repeat(channels, 1, 1, 1), persistent=False)
        self.pad = ReflectionPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(self.pad(x), self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Anti-aliased 2x upsampling: replicate pad 1, a fixed depthwise [1, 3, 3, 1] x [1, 3, 3, 1] / 16
    transposed blur (x 4) with stride 2, cropped to exactly twice the size (the authors' ``Upsample``,
    filt_size 4). No parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = a[:, None] * a[None, :]
        self.register_buffer("filt", (k / k.sum() * 4)[None, None].repeat(channels, 1, 1, 1), persistent=False)
        self.pad = ReplicationPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]


class ResnetGenerator(nn.Module):
    """Stem (7x7 conv) and two downsamplings, ``n_blocks`` residual blocks at 1/4 scale, two
    upsamplings and the 7x7 head, in one ``model`` Sequential (the authors' keys)."""

    size_multiple = 4  # two stride-2 downsamplings
    min_size = 8  # the residual blocks' reflection pad needs 2 x 2 at 1/4 scale

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9, norm="instance", dropout=False,
                 antialias=False) -> None:
        super().__init__()
        self.per_sample = norm != "batch"  # batch norm mixes the samples of a batch
        nl = norm_layer(norm)
        bias = norm != "batch"  # the authors drop conv biases only before BatchNorm
        layers = [ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), nl(ngf), nn.ReLU()]
        for i in range(2):  # downsample: ngf -> 2 ngf -> 4 ngf
            c = ngf * 2**i
            if antialias:
                layers += [nn.Conv2d(c, 2 * c, 3, padding=1, bias=bias), nl(2 * c), nn.ReLU(), BlurDownsample(2 * c)]
            else:
                layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), nl(2 * c), nn.ReLU()]
        layers += [ResidualBlock(4 * ngf, nl, bias, dropout) for _ in range(n_blocks)]
        self.encoder_layers = len(layers)
        """Modules of ``self.model`` up to the last residual block: the encoder ``encode_features`` reads."""
        for i in range(2):  # upsample: 4 ngf -> 2 ngf -> ngf
            c = ngf * 2 ** (2 - i)
            if antialias:
                layers += [BlurUpsample(c), nn.Conv2d(c, c // 2, 3, padding=1, bias=bias), nl(c // 2), nn.ReLU()]
            else:
                layers += [
                    nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                    nl(c // 2), nn.ReLU(),
                ]
        layers += [ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self._channels = []  # channels of each module's output
        c = in_channels
        for layer in layers:
            c = getattr(layer, "out_channels", c)
            self._channels.append(c)
        self.n_blocks = n_blocks
        self.checkpointed = False

    def stages(self) -> list[nn.Module]:
        """The forward as modules applied in sequence: stem with the downsamplings, each residual
        block, the upsamplings with the head (views of ``model``: the same parameters)."""
        last = self.encoder_layers  # the stem and downsamplings, then the residual blocks, end here
        first = last - self.n_blocks
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

    def _check_layers(self, layers: Sequence[int]) -> list[int]:
        layers = [int(i) for i in layers]
        bad = [i for i in layers if not 0 <= i < self.encoder_layers]
        if not layers or bad:
            raise ValueError(f"encoder feature layers must be module indices 0..{self.encoder_layers - 1} of this "
                             f"ResNet generator (up to its last residual block), got {list(layers)}")
        return layers

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """The channel count of each of ``encode_features``' outputs, without running the network."""
        return [self._channels[i] for i in self._check_layers(layers)]

    def encode_features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The outputs of modules ``layers`` of ``self.model`` for input ``x``, in the order asked;
        the modules after the last one asked are not run."""
        layers = self._check_layers(layers)
        wanted, last, out = set(layers), max(layers), {}
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                out[i] = x
            if i == last:
                break
        return [out[i] for i in layers]


def build_resnet(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    n_blocks: int = 9,
    norm: Literal[NORMS] = "instance",
    dropout: bool = False,
    init_std: float = 0.02,
    antialias: bool = False,
) -> ResnetGenerator:
    """ResNet generator: ngf base channels, n_blocks residual blocks (9 at 256 px, 6 at 128 px).
    dropout: 0.5 between the two convs of each block (the authors' use_dropout; CycleGAN: off).
    antialias: blurred stride-2 down- and upsampling (CUT's default; CycleGAN: off, strided convs)."""
    at_least(1, in_channels=in_channels, out_channels=out_channels, ngf=ngf)
    at_least(0, n_blocks=n_blocks, init_std=init_std)
    return init_normal(ResnetGenerator(in_channels, out_channels, ngf, n_blocks, norm, dropout, antialias), init_std)


@hookimpl
def cgx_register_generators(register):
    register("resnet", build_resnet)
