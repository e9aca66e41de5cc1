"""The built-in variants' own properties (their generic contract is tested in test_components.py and
test_losses.py for every registered network and loss)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cgx.plugins


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- generators ----------------------------------------------------------------------------------


@pytest.mark.parametrize("num_downs, norm, count", [
    (8, "instance", 54_409_603), (8, "batch", 54_413_955),  # the authors' unet_256
    (7, "instance", 41_825_667), (7, "batch", 41_828_995),  # unet_128
])
def test_unet_parameter_counts(num_downs, norm, count):
    assert n_params(cgx.plugins.create("generator", "unet", num_downs=num_downs, norm=norm)) == count


def test_unet_size_multiple_and_errors():
    g = cgx.plugins.create("generator", "unet", ngf=4, num_downs=5)
    assert g.size_multiple == 32 and g.min_size == 32
    assert g(torch.zeros(1, 3, 32, 64)).shape == (1, 3, 32, 64)
    with pytest.raises(ValueError, match="multiples of 32"):
        g(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="num_downs must be >= 5"):
        cgx.plugins.create("generator", "unet", num_downs=4)
    assert cgx.plugins.create("generator", "unet", ngf=4).size_multiple == 256  # unet_256 by default


def test_unet_skip_carries_leaky_relu_of_encoder_features():
    """As the authors' in-place LeakyReLU makes it: the decoder sees LeakyReLU(encoder features)."""
    g = cgx.plugins.create("generator", "unet", ngf=2, num_downs=5)
    inner = g.model.model[1]  # the block below the outermost
    x = torch.randn(1, 2, 16, 16)
    out = inner(x)
    assert torch.equal(out[:, :2], F.leaky_relu(x, 0.2))


def test_unet_dropout():
    g = cgx.plugins.create("generator", "unet", ngf=4, num_downs=6, dropout=True)
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 1  # the 8-ngf levels above the innermost
    assert not any(isinstance(m, nn.Dropout) for m in cgx.plugins.create("generator", "unet", ngf=4).modules())


# --- discriminators ------------------------------------------------------------------------------


def test_patchgan_spectral_norm():
    torch.manual_seed(0)
    d = cgx.plugins.create("discriminator", "patchgan", ndf=8, norm="none", spectral_norm=True)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(hasattr(m, "parametrizations") for m in convs)
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in d.modules())
    # initialised N(0, 0.02) before the parametrisation, and normalised to spectral norm ~1 in use
    big = max(convs, key=lambda m: m.parametrizations.weight.original.numel())
    assert abs(big.parametrizations.weight.original.std().item() - 0.02) < 0.003
    d.train()
    for _ in range(20):  # power iterations
        d(torch.zeros(1, 3, 32, 32))
    d.eval()
    sigma = torch.linalg.matrix_norm(big.weight.detach().flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)
    plain = cgx.plugins.create("discriminator", "patchgan", ndf=8)
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_patchgan_state_dict_round_trip_with_spectral_norm():
    a = cgx.plugins.create("discriminator", "patchgan", ndf=4, norm="none", spectral_norm=True)
    b = cgx.plugins.create("discriminator", "patchgan", ndf=4, norm="none", spectral_norm=True)
    a(torch.rand(1, 3, 32, 32))
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("n_layers, field", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_and_min_size(n_layers, field):
    d = cgx.plugins.create("discriminator", "patchgan", ndf=4, n_layers=n_layers, norm="none", init_std=0.5).eval()
    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    scores = d(x)
    scores[0, 0, scores.shape[2] // 2, scores.shape[3] // 2].backward()
    rows = x.grad.abs().sum((0, 1, 3)).nonzero()
    assert rows.max() - rows.min() + 1 == field
    with pytest.raises(ValueError, match=f"at least {d.min_size}x{d.min_size}"):
        d(torch.zeros(1, 3, d.min_size - 1, 64))


def test_multiscale_scales_judge_downsampled_images():
    torch.manual_seed(0)
    d = cgx.plugins.create("discriminator", "multiscale", ndf=4, n_layers=2, num_scales=3).eval()
    assert len(d.scales) == 3
    x = torch.rand(2, 3, 64, 64)
    scores = d(x)
    assert [tuple(s.shape) for s in scores] == [(2, 1, 14, 14), (2, 1, 6, 6), (2, 1, 2, 2)]
    half = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    assert torch.allclose(scores[1], d.scales[1](half))
    assert torch.allclose(scores[2], d.scales[2](F.avg_pool2d(half, 3, stride=2, padding=1, count_include_pad=False)))
    # independent weights per scale
    assert not torch.equal(d.scales[0].model[0].weight, d.scales[1].model[0].weight)
    with pytest.raises(ValueError, match="fewer scales"):
        d(torch.zeros(1, 3, d.min_size - 1, d.min_size - 1))


def test_multiscale_one_scale_is_a_patchgan():
    torch.manual_seed(0)
    ms = cgx.plugins.create("discriminator", "multiscale", ndf=8, num_scales=1)
    torch.manual_seed(0)
    pg = cgx.plugins.create("discriminator", "patchgan", ndf=8)
    assert n_params(ms) == n_params(pg)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(ms(x)[0], pg(x))


def test_pixelgan_judges_each_pixel_alone():
    d = cgx.plugins.create("discriminator", "pixelgan", ndf=8, norm="none").eval()
    x = torch.rand(1, 3, 16, 16)
    y = x.clone()
    y[..., 3, 5] = 0.0
    diff = (d(x) - d(y)).abs()[0, 0]
    assert diff[3, 5] > 0 and diff.sum() == diff[3, 5]
    assert [m.kernel_size for m in d.modules() if isinstance(m, nn.Conv2d)] == [(1, 1)] * 3


# --- buffers -------------------------------------------------------------------------------------


def test_none_buffer_passes_through():
    buf = cgx.plugins.create("buffer", "none")
    x = torch.randn(3, 3, 4, 4)
    assert buf.query(x) is x
    state = buf.state_dict()
    assert state == {}
    cgx.plugins.create("buffer", "none").load_state_dict(state)
