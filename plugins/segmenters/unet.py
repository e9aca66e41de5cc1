"""A small U-Net segmenter (Ronneberger et al. 2015): ``depth`` levels of two 3x3 convolutions, each
followed by a norm and ReLU, max-pooled on the way down and upsampled (bilinear) on the way up, with
the encoder's features concatenated at each level; a 1x1 convolution gives the class logits.

Small by default (width 16, depth 3: about 0.5 M parameters), so that it trains on a CPU beside the
generators. Any input size works: each upsampling goes to the size of the skip it meets. The default
norm is group norm (per sample, fine at batch size 1)."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def _block(cin: int, cout: int, norm: str) -> nn.Sequential:
    bias = norm == "none"
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.ReLU(inplace=True))


class UnetSegmenter(nn.Module):
    def __init__(self, in_channels: int, classes: int, width: int, depth: int, norm: str) -> None:
        super().__init__()
        self.classes = classes
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, widths[0], norm)]
                                  + [_block(widths[i], widths[i + 1], norm) for i in range(depth)])
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2, ceil_mode=True))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([skip, x], 1))
        return self.head(x)


def build_unet(in_channels: int = 3, classes: int = 2, width: int = 16, depth: int = 3,
               norm: Literal["group", "batch", "none"] = "group") -> UnetSegmenter:
    """width: channels of the first level (doubled at each level down); depth: downsamplings; norm:
    after each convolution (group: per sample; batch: mixes a training batch's samples)."""
    at_least(1, in_channels=in_channels, width=width, depth=depth)
    at_least(2, classes=classes)
    return UnetSegmenter(in_channels, classes, width, depth, norm)


@hookimpl
def cgx_register_segmenters(register):
    register("unet", build_unet)
