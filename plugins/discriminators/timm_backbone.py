"""A discriminator on a timm feature backbone, in the spirit of Projected GAN (Sauer et al. 2021) and
Vision-aided GAN (Kumari et al. 2022): ``timm.create_model(backbone, features_only=True)`` extracts
feature maps at the chosen ``levels``, and a light head on each level (3x3 conv, LeakyReLU, 1x1 conv)
turns it into a score map. The discriminator returns the list of score maps, finest first; every
adversarial loss averages over them.

- Any model ``timm.list_models()`` lists works (CNNs at any input size; ViTs at their own size: set
  ``input_size`` or ``backbone_args: {dynamic_img_size: true}``).
- Nothing is downloaded: the backbone is built with ``pretrained=False``, or, with ``weights: PATH``,
  from that local file (a ``.pth``/``.bin``/``.safetensors`` state dict of the timm model, classifier
  included or not), loaded by timm's own loader so its key filters and adaptations apply.
- ``frozen``: the backbone's parameters never train (``requires_grad`` False, so the optimizer leaves
  them alone) and it stays in eval mode (batch-norm statistics fixed), as in Projected GAN. The
  default (unset) freezes a backbone loaded from ``weights`` and trains a randomly initialised one,
  since frozen random features are rarely what you want.
- Images in [-1, 1] are mapped to the backbone's expected mean and std (its ``pretrained_cfg``).

timm is imported when the first such discriminator is built, not when plugins load (it takes
seconds to import)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cgx.nn.init import init_normal
from cgx.plugins import PluginError, hookimpl

from .patchgan import apply_spectral_norm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def create_backbone(backbone: str, levels: tuple[int, ...], in_channels: int, weights: str | None,
                    backbone_args: dict | None, who: str = "timm discriminator") -> nn.Module:
    """The timm feature backbone (``features_only``) of ``levels``, never downloaded; ``who`` names the
    plugin in its errors (the ``timm`` segmenter builds its backbone here too)."""
    import timm

    if ":" in backbone:  # "hf-hub:org/name" would fetch a config (and weights) from the hub
        raise PluginError(f"{who}: backbone {backbone!r}: give a model name timm lists "
                          f"(e.g. 'resnet18') and local weights with weights: PATH; nothing is downloaded")
    if not timm.is_model(backbone):
        close = timm.list_models(f"*{backbone}*")[:12]
        raise PluginError(f"{who}: unknown backbone {backbone!r}"
                          + (f"; similar: {', '.join(close)}" if close else "; see timm.list_models()"))
    kwargs = dict(features_only=True, out_indices=tuple(levels), in_chans=in_channels, **(backbone_args or {}))
    if weights is None:
        kwargs["pretrained"] = False
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PluginError(f"{who}: weights file not found: {path}")
        # timm's own loader, from the local file; "source" cleared so that it never resolves a hub location
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(path.resolve()), "source": ""})
    try:
        try:  # the "getter" wrapper drops the layers past the last chosen level (no unused parameters)
            return timm.create_model(backbone, **{"feature_cls": "getter", **kwargs})
        except Exception:  # a model without forward_intermediates: timm's default feature wrapper
            net = timm.create_model(backbone, **kwargs)
    except (RuntimeError, KeyError, ValueError) as e:
        if weights is None:
            raise
        raise PluginError(f"{who}: {weights} does not hold weights for backbone {backbone!r}: "
                          f"{' '.join(str(e).split())[:600]}") from None
    freeze_unreachable(net, in_channels)
    return net


def freeze_unreachable(net: nn.Module, in_channels: int) -> None:
    """Freeze the parameters no chosen level depends on (layers past the last one), found by one small
    forward/backward: they would never train, and DDP fails on parameters that get no gradient."""
    size = tuple((getattr(net, "pretrained_cfg", None) or {}).get("input_size", (in_channels, 224, 224))[-2:])
    was_training = net.training
    net.eval()  # leave batch-norm statistics alone
    try:
        sum(f.float().sum() for f in net(torch.zeros(1, in_channels, *size))).backward()
    finally:
        net.train(was_training)
    for p in net.parameters():
        if p.grad is None:
            p.requires_grad_(False)
        p.grad = None


def register_input_normalization(module: nn.Module, backbone: nn.Module, in_channels: int) -> None:
    """``module.mean`` and ``module.std`` (non-persistent buffers): the backbone's own input normalisation
    (its pretrained_cfg, else ImageNet's) for RGB, or [-1, 1] kept as it is for any other channel count."""
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
    if len(mean) != in_channels:  # not RGB: keep [-1, 1]
        mean, std = (0.5,) * in_channels, (0.5,) * in_channels
    module.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    module.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)


class TimmDiscriminator(nn.Module):
    def __init__(self, backbone: nn.Module, head_channels: int, frozen: bool, input_size: int | None,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.backbone = backbone
        self.frozen = frozen
        self.input_size = input_size
        register_input_normalization(self, backbone, in_channels)
        self.reductions = list(backbone.feature_info.reduction())
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, head_channels, 3, padding=1), nn.LeakyReLU(0.2, True),
                          nn.Conv2d(head_channels, 1, 1))
            for c in backbone.feature_info.channels()
        )
        if frozen:
            backbone.requires_grad_(False)
            backbone.eval()

    def train(self, mode: bool = True) -> "TimmDiscriminator":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # fixed batch-norm statistics and no dropout, whatever the mode
        return self

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """One map per level, ceil(size / reduction) (the backbone's padding rounds up, as in most CNNs)."""
        if self.input_size is not None:
            height = width = self.input_size
        return [(1, math.ceil(height / r), math.ceil(width / r)) for r in self.reductions]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        features = self.backbone(x)
        return [head(f) for head, f in zip(self.heads, features)]


def build_timm(
    backbone: str = "efficientnet_lite0",
    levels: tuple[int, ...] = (1, 2, 3),
    weights: str | None = None,
    frozen: bool | None = None,
    head_channels: int = 64,
    input_size: int | None = None,
    in_channels: int = 3,
    spectral_norm: bool = False,
    init_std: float = 0.02,
    backbone_args: dict | None = None,
) -> TimmDiscriminator:
    """backbone: any timm model name; levels: feature levels (timm out_indices; 1, 2, 3 are strides 4,
    8, 16 for most CNNs) that get a head; weights: local state-dict file (nothing downloads);
    frozen: backbone not trained (default: frozen when weights are given); head_channels: width of
    each head; input_size: resize inputs to this square size first; spectral_norm and init_std: of
    the heads; backbone_args: extra timm.create_model arguments."""
    if not levels:
        raise PluginError("timm discriminator: levels must name at least one feature level")
    if head_channels < 1:
        raise PluginError(f"timm discriminator: head_channels must be >= 1, got {head_channels}")
    net = create_backbone(backbone, tuple(levels), in_channels, weights, backbone_args)
    frozen = weights is not None if frozen is None else frozen
    disc = TimmDiscriminator(net, head_channels, frozen, input_size, in_channels)
    init_normal(disc.heads, init_std)
    if spectral_norm:
        apply_spectral_norm(disc.heads)
    return disc


@hookimpl
def cgx_register_discriminators(register):
    register("timm", build_timm)
