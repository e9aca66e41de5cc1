"""Every registered segmenter through the public check (``cgx.testing.check_segmenter``), and the check
itself catching what it should."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cgx.plugins
from cgx.errors import PluginError
from cgx.testing import ContractError, check_segmenter

SMALL = {"unet": {"width": 4, "depth": 2}, "timm_fpn": {"backbone": "resnet10t", "levels": (1, 2), "channels": 8}}


@pytest.mark.parametrize("name", cgx.plugins.available("segmenter"))
def test_segmenter_keeps_the_contract(name):
    check_segmenter(lambda: cgx.plugins.create("segmenter", name, classes=3, **SMALL.get(name, {})), size=32)


def test_segmenter_with_one_channel():
    check_segmenter(lambda: cgx.plugins.create("segmenter", "unet", in_channels=1, classes=5, width=4, depth=2),
                    in_channels=1, classes=5, size=32)


class Shrinker(nn.Module):
    """Logits at half the input's resolution: not what the contract asks."""

    def __init__(self):
        super().__init__()
        self.classes = 3
        self.conv = nn.Conv2d(3, 3, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Mixer(nn.Module):
    """Each sample's logits depend on the batch's mean (in eval mode too)."""

    def __init__(self):
        super().__init__()
        self.classes = 3
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y - y.mean(0, keepdim=True)


def test_the_check_catches_logits_at_another_size():
    with pytest.raises(ContractError, match="expected"):
        check_segmenter(Shrinker, size=16)


def test_the_check_catches_samples_that_mix():
    with pytest.raises(ContractError, match="depend on sample 1"):
        check_segmenter(Mixer, size=16)


def test_the_check_catches_a_wrong_class_count():
    with pytest.raises(ContractError, match="classes"):
        check_segmenter(Mixer, classes=4, size=16)


def test_registry_refuses_a_segmenter_without_classes():
    registry = cgx.plugins.Registry()

    class Plugin:
        @cgx.plugins.hookimpl
        def cgx_register_segmenters(self, register):
            register("bare", lambda: nn.Conv2d(3, 2, 1))

    registry.add_plugin(Plugin(), source="test")
    with pytest.raises(PluginError, match="not a Segmenter.*classes"):
        registry.create("segmenter", "bare")


def test_timm_segmenter_refuses_a_hub_name_and_a_missing_file(tmp_path):
    with pytest.raises(PluginError, match="timm segmenter.*nothing is downloaded"):
        cgx.plugins.create("segmenter", "timm_fpn", backbone="hf-hub:org/x")
    with pytest.raises(PluginError, match="timm segmenter: weights file not found"):
        cgx.plugins.create("segmenter", "timm_fpn", backbone="resnet10t", pretrained=str(tmp_path / "no.pth"))


def test_timm_segmenter_loads_local_backbone_weights(tmp_path):
    import timm

    source = timm.create_model("resnet10t", pretrained=False)
    with torch.no_grad():
        source.conv1[0].weight.fill_(0.125)
    path = tmp_path / "resnet10t.pth"
    torch.save(source.state_dict(), path)
    seg = cgx.plugins.create("segmenter", "timm_fpn", backbone="resnet10t", levels=[1, 2], pretrained=str(path))
    first = next(p for n, p in seg.backbone.named_parameters() if "conv1" in n)
    assert torch.all(first == 0.125)
