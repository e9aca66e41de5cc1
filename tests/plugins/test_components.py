"""Every registered generator and discriminator, timm-style: a new plugin is tested by being registered.

The contract itself is checked by ``cgx.testing`` (the public checks an outside package calls from its
own tests): one call per network here. Networks are built small (TINY_KWARGS) where their defaults
would be slow on CPU; a plugin not listed there is built from its defaults.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cgx.plugins
from cgx.testing import check_discriminator, check_generator

TINY_KWARGS = {
    "resnet": {"ngf": 8, "n_blocks": 2},
    "unet": {"ngf": 8, "num_downs": 5},
    "patchgan": {"ndf": 8},
    "multiscale": {"ndf": 8, "n_layers": 2, "num_scales": 3},
    "pixelgan": {"ndf": 8},
    "timm": {"backbone": "lcnet_050", "head_channels": 8},
}

GENERATORS = cgx.plugins.available("generator")
DISCRIMINATORS = cgx.plugins.available("discriminator")
NETWORKS = [("generator", n) for n in GENERATORS] + [("discriminator", n) for n in DISCRIMINATORS]
IDS = [f"{kind}-{name}" for kind, name in NETWORKS]


def build(kind: str, name: str) -> nn.Module:
    torch.manual_seed(0)
    return cgx.plugins.create(kind, name, **TINY_KWARGS.get(name, {}))


def trainable(net: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in net.named_parameters() if p.requires_grad]


def test_builtins_are_covered():
    assert "resnet" in GENERATORS and "patchgan" in DISCRIMINATORS


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_keeps_the_contract(kind, name):
    """The public checks an outside package runs on its own networks (cgx.testing): forward and
    backward, gradients to every trainable parameter and none to a frozen one, samples not mixing,
    output shapes (a discriminator's as ``output_shapes`` declares, square and not), bf16 autocast,
    ``size_multiple`` and ``min_size``."""
    check = check_generator if kind == "generator" else check_discriminator
    check(lambda: build(kind, name))


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_builds_from_true_defaults(kind, name):
    """The factory's own defaults (the paper sizes) build, without TINY_KWARGS."""
    torch.manual_seed(0)
    net = cgx.plugins.create(kind, name)
    assert isinstance(net, nn.Module)
    assert trainable(net)


# --- the built-ins' initialisation and normalisation ---------------------------------------------


def conv_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("kind, name", [("generator", "resnet"), ("discriminator", "patchgan")])
def test_init_is_normal_0_002(kind, name):
    torch.manual_seed(0)
    net = cgx.plugins.create(kind, name)  # defaults: the big convolutions
    convs = conv_layers(net)
    assert convs
    big = max(convs, key=lambda m: m.weight.numel())
    assert big.weight.numel() > 500_000
    assert abs(big.weight.std().item() - 0.02) < 0.0005
    assert abs(big.weight.mean().item()) < 0.0005
    for m in convs:
        assert abs(m.weight.std().item() - 0.02) < 0.005  # every conv, small ones less precisely
        if m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0


@pytest.mark.parametrize("kind, name", [("generator", "resnet"), ("discriminator", "patchgan")])
def test_init_std_argument(kind, name):
    torch.manual_seed(0)
    net = cgx.plugins.create(kind, name, init_std=0.1, **TINY_KWARGS[name])
    big = max(conv_layers(net), key=lambda m: m.weight.numel())
    assert abs(big.weight.std().item() - 0.1) < 0.01


@pytest.mark.parametrize("kind, name", [("generator", "resnet"), ("discriminator", "patchgan")])
def test_instance_norm_has_no_affine_params(kind, name):
    net = cgx.plugins.create(kind, name, **TINY_KWARGS[name])
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms
    for m in norms:
        assert not m.affine and m.weight is None and m.bias is None
        assert not m.track_running_stats
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    # only conv parameters, nothing from the norms
    conv_params = {id(p) for m in conv_layers(net) for p in m.parameters()}
    assert {id(p) for p in net.parameters()} == conv_params


@pytest.mark.parametrize("kind, name", [("generator", "resnet"), ("discriminator", "patchgan")])
def test_batch_norm_drops_conv_biases(kind, name):
    net = cgx.plugins.create(kind, name, norm="batch", **TINY_KWARGS[name])
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    for m in bns:  # init_normal: weight ~ N(1, std), bias 0
        assert abs(m.weight.mean().item() - 1.0) < 0.05 and torch.count_nonzero(m.bias) == 0


def test_patchgan_70px_scores_shape():
    net = cgx.plugins.create("discriminator", "patchgan", ndf=8)
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 256, 256))
    assert out.shape == (1, 1, 30, 30)  # the 70x70 PatchGAN's 30x30 score map at 256 px
