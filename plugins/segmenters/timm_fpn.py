"""A segmenter on a timm feature backbone with a light FPN head (Lin et al. 2017; the "semantic FPN"
of Kirillov et al. 2019, in the spirit of DeepLab's decoder): the backbone's feature maps at ``levels``
each get a 1x1 lateral convolution to ``channels``, a top-down pathway adds each coarser map (upsampled)
to the next finer one, a 3x3 convolution smooths every level, the levels are upsampled to the finest
and summed, and a 1x1 convolution gives the class logits, upsampled (bilinear) to the input's size.

- Any CNN ``timm.list_models()`` lists works; nothing is downloaded: the backbone is built with
  ``pretrained=False``, or, with ``pretrained: PATH``, from that local state-dict file (timm's loader,
  as the ``timm`` discriminator does).
- Images in [-1, 1] are mapped to the backbone's expected mean and std.

timm is imported when the first one is built, not when plugins load."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgx.plugins import PluginError, hookimpl
from cgx.plugins.args import at_least

from ..discriminators.timm_backbone import create_backbone, register_input_normalization


class FPNSegmenter(nn.Module):
    def __init__(self, backbone: nn.Module, in_channels: int, classes: int, channels: int) -> None:
        super().__init__()
        self.classes = classes
        self.backbone = backbone
        register_input_normalization(self, backbone, in_channels)
        feature_channels = backbone.feature_info.channels()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in feature_channels)
        self.smooth = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
                                    for _ in feature_channels)
        self.head = nn.Conv2d(channels, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        features = [lat(f) for lat, f in zip(self.lateral, self.backbone(x))]
        for i in reversed(range(len(features) - 1)):  # top-down: coarse into fine
            features[i] = features[i] + F.interpolate(features[i + 1], size=features[i].shape[-2:], mode="nearest")
        finest = features[0].shape[-2:]
        fused = sum(F.interpolate(s(f), size=finest, mode="bilinear", align_corners=False) if i else s(f)
                    for i, (s, f) in enumerate(zip(self.smooth, features)))
        return F.interpolate(self.head(fused), size=size, mode="bilinear", align_corners=False)


def build_timm_fpn(in_channels: int = 3, classes: int = 2, backbone: str = "resnet18",
                   levels: tuple[int, ...] = (1, 2, 3, 4), channels: int = 64, pretrained: str | None = None,
                   backbone_args: dict | None = None) -> FPNSegmenter:
    """backbone: a timm CNN's name; levels: its feature levels (timm out_indices; 1..4 are strides 4 to
    32 for most CNNs) that the head fuses; channels: the head's width; pretrained: a local state-dict
    file of the backbone (nothing downloads); backbone_args: extra timm.create_model arguments."""
    at_least(1, in_channels=in_channels, channels=channels)
    at_least(2, classes=classes)
    if not levels:
        raise PluginError("timm segmenter: levels must name at least one feature level")
    net = create_backbone(backbone, tuple(levels), in_channels, pretrained, backbone_args, who="timm segmenter")
    return FPNSegmenter(net, in_channels, classes, channels)


@hookimpl
def cgx_register_segmenters(register):
    register("timm_fpn", build_timm_fpn)
