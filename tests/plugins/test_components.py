"""Every registered generator and discriminator, timm-style: a new plugin is tested by being registered.

Networks are built small (TINY_KWARGS) where their defaults would be slow on CPU; a plugin not listed
there is built from its defaults. Parameters a network froze itself (requires_grad False, e.g. a frozen
pretrained backbone) must get no gradient; every other parameter must get one.

Output shapes: a generator returns an image of its input's shape; a discriminator declares the
(channels, height, width) of each score map with ``output_shapes(height, width)`` (required of the
built-ins, checked for any plugin that has it).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cgx.plugins
from cgx.nn.scores import as_list

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

INPUT_SHAPE = (2, 3, 64, 64)


def build(kind: str, name: str) -> nn.Module:
    torch.manual_seed(0)
    return cgx.plugins.create(kind, name, **TINY_KWARGS.get(name, {}))


def image_batch(shape=INPUT_SHAPE) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(shape, generator=g) * 2 - 1


def is_builtin(kind: str, name: str) -> bool:
    return cgx.plugins.default_registry().get(kind, name).source.startswith("cgx ")


def trainable(net: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in net.named_parameters() if p.requires_grad]


def check_output(kind: str, out, x: torch.Tensor) -> list[torch.Tensor]:
    if kind == "generator":
        assert isinstance(out, torch.Tensor)
        assert out.shape == x.shape
        assert torch.isfinite(out).all()
        assert out.min() >= -1 and out.max() <= 1
        return [out]
    outs = as_list(out)
    assert outs, "discriminator returned no scores"
    for s in outs:
        assert isinstance(s, torch.Tensor)
        assert s.shape[0] == x.shape[0]
        assert torch.isfinite(s).all()
    return outs


def test_builtins_are_covered():
    assert "resnet" in GENERATORS and "patchgan" in DISCRIMINATORS


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_builds_from_defaults_signature(kind, name):
    net = build(kind, name)
    assert isinstance(net, nn.Module)
    assert sum(p.numel() for p in net.parameters()) > 0


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_forward_backward(kind, name):
    net = build(kind, name)
    x = image_batch().requires_grad_(True)
    outs = check_output(kind, net(x), x)
    loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert trainable(net), "nothing to train"
    for pname, p in net.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, f"frozen {pname} got a gradient"
            continue
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {pname}"
        if p.dim() > 1:  # weights; biases right before a normalisation get an exactly-zero gradient
            assert p.grad.abs().sum() > 0, f"zero gradient for {pname}"


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_outputs_depend_on_inputs_per_sample(kind, name):
    net = build(kind, name).eval()
    x = image_batch()
    with torch.no_grad():
        both = as_list(net(x))
        first = as_list(net(x[:1]))
    for b, f in zip(both, first):
        assert torch.allclose(b[:1], f, rtol=1e-4, atol=1e-5)  # samples do not mix
        assert not torch.equal(b[0], b[1])


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_bf16_autocast(kind, name):
    net = build(kind, name)
    x = image_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    outs = check_output(kind, out, x)
    sum(o.float().mean() for o in outs).backward()
    for pname, p in net.named_parameters():
        assert p.dtype == torch.float32, f"{pname} changed dtype"
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    # close to the fp32 result
    with torch.no_grad():
        ref = as_list(net(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = as_list(net(x))
    for r, lo in zip(ref, low):
        err = (r - lo.float()).abs().max().item()
        assert err < 0.1 * max(1.0, r.abs().max().item()), err


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
@pytest.mark.parametrize("size", [(64, 64), (96, 64)], ids=["64x64", "96x64"])
def test_output_shapes_as_declared(kind, name, size):
    net = build(kind, name).eval()
    x = image_batch((2, 3, *size))
    with torch.no_grad():
        outs = as_list(net(x))
    if kind == "generator":
        assert [tuple(o.shape) for o in outs] == [tuple(x.shape)]
        return
    if not hasattr(net, "output_shapes"):
        assert not is_builtin(kind, name), f"built-in discriminator {name!r} does not declare output_shapes"
        pytest.skip(f"{name} does not declare output_shapes")
    declared = [tuple(s) for s in net.output_shapes(*size)]
    assert [tuple(o.shape) for o in outs] == [(2, *s) for s in declared]


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_builds_from_true_defaults(kind, name):
    """The factory's own defaults (the paper sizes) build, without TINY_KWARGS."""
    torch.manual_seed(0)
    net = cgx.plugins.create(kind, name)
    assert isinstance(net, nn.Module)
    assert trainable(net)


@pytest.mark.parametrize("kind, name", NETWORKS, ids=IDS)
def test_generator_size_multiple(kind, name):
    net = build(kind, name)
    multiple = getattr(net, "size_multiple", 1)
    assert isinstance(multiple, int) and multiple >= 1
    if kind == "generator":
        assert INPUT_SHAPE[-1] % multiple == 0  # the test input is a valid size


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
