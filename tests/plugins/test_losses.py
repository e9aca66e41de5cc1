"""Every adversarial loss with every discriminator (parametrized over the registry) through the public
check ``cgx.testing.check_adversarial_loss`` (called as the methods call them, in fp32 and under bf16
autocast), every reconstruction loss through ``check_reconstruction_loss``; then each loss's values."""
from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

import cgx.plugins
from cgx.nn.scores import as_list, split
from cgx.plugins.types import DiscriminatorBatch
from cgx.testing import check_adversarial_loss, check_reconstruction_loss
from test_components import TINY_KWARGS

ADVERSARIAL = cgx.plugins.available("adversarial_loss")
DISCRIMINATORS = cgx.plugins.available("discriminator")


def images(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_builtin_losses_are_covered():
    assert {"lsgan", "vanilla", "hinge", "wgangp"} <= set(ADVERSARIAL)
    assert "l1" not in ADVERSARIAL
    assert {"patchgan", "multiscale", "pixelgan", "timm"} <= set(DISCRIMINATORS)


@pytest.mark.parametrize("disc_name", DISCRIMINATORS)
@pytest.mark.parametrize("loss_name", ADVERSARIAL)
def test_loss_with_discriminator(loss_name, disc_name):
    """The public check (cgx.testing) with every registered discriminator, in fp32 and bf16: the D phase
    on real and fake in one call, the loss outside autocast; the G phase with D frozen."""
    def build_d():
        return cgx.plugins.create("discriminator", disc_name, **TINY_KWARGS.get(disc_name, {}))

    check_adversarial_loss(lambda: cgx.plugins.create("adversarial_loss", loss_name), discriminator=build_d)


@pytest.mark.parametrize("loss_name", cgx.plugins.available("reconstruction_loss"))
def test_reconstruction_loss_keeps_the_contract(loss_name):
    check_reconstruction_loss(lambda: cgx.plugins.create("reconstruction_loss", loss_name))


# --- values --------------------------------------------------------------------------------------


def const(value: float, shape=(2, 1, 4, 4)) -> torch.Tensor:
    return torch.full(shape, float(value))


def test_lsgan_values():
    loss = cgx.plugins.create("adversarial_loss", "lsgan")
    assert loss.generator_loss(const(0.0)).item() == pytest.approx(1.0)
    assert loss.discriminator_loss(const(1.0), const(0.0)).item() == pytest.approx(0.0)
    assert loss.discriminator_loss(const(0.0), const(1.0)).item() == pytest.approx(1.0)  # 0.5 * (1 + 1)


def test_vanilla_values():
    loss = cgx.plugins.create("adversarial_loss", "vanilla")
    log2 = torch.log(torch.tensor(2.0)).item()
    assert loss.generator_loss(const(0.0)).item() == pytest.approx(log2)
    assert loss.discriminator_loss(const(0.0), const(0.0)).item() == pytest.approx(log2)  # 0.5 * (log2 + log2)
    assert loss.discriminator_loss(const(30.0), const(-30.0)).item() == pytest.approx(0.0, abs=1e-6)
    assert loss.generator_loss(const(-200.0)).item() == pytest.approx(200.0)  # stable on large logits
    smooth = cgx.plugins.create("adversarial_loss", "vanilla", real_label=0.9)
    assert smooth.generator_loss(const(0.0)).item() == pytest.approx(log2)


def test_hinge_values():
    loss = cgx.plugins.create("adversarial_loss", "hinge")
    assert loss.generator_loss(const(2.0)).item() == pytest.approx(-2.0)
    assert loss.discriminator_loss(const(0.0), const(0.0)).item() == pytest.approx(2.0)  # not halved
    assert loss.discriminator_loss(const(1.5), const(-1.5)).item() == pytest.approx(0.0)  # past the margins
    assert loss.discriminator_loss(const(0.5), const(0.5)).item() == pytest.approx(0.5 + 1.5)
    half = cgx.plugins.create("adversarial_loss", "hinge", d_weight=0.5)
    assert half.discriminator_loss(const(0.0), const(0.0)).item() == pytest.approx(1.0)


def test_multi_output_scores_are_averaged():
    for name in ADVERSARIAL:
        loss = cgx.plugins.create("adversarial_loss", name, **({"gp_weight": 0.0} if name == "wgangp" else {}))
        a, b = const(0.3), const(-0.7, shape=(2, 1, 2, 2))
        both = loss.generator_loss([a, b])
        assert both.item() == pytest.approx((loss.generator_loss(a) + loss.generator_loss(b)).item() / 2), name
        d = loss.discriminator_loss([a, b], [b, a])
        expect = (loss.discriminator_loss(a, b) + loss.discriminator_loss(b, a)) / 2
        assert d.item() == pytest.approx(expect.item()), name


class LinearCritic(nn.Module):
    """A 1x1 conv without bias: the critic's gradient is known in closed form."""

    def __init__(self, weight=(0.3, -0.4, 1.2)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(weight).view(1, 3, 1, 1))
        self.seen = []

    def forward(self, x):
        self.seen.append((x.dtype, torch.is_autocast_enabled("cpu")))
        return self.conv(x)


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_wgangp_penalty_closed_form(reduce):
    D = LinearCritic()
    loss = cgx.plugins.create("adversarial_loss", "wgangp", reduce=reduce)
    real, fake = images(size=8, seed=1), images(size=8, seed=2)
    w = torch.tensor([0.3, -0.4, 1.2]).norm().item()
    pixels = 8 * 8
    # d(mean over the map)/dx = w / pixels at every pixel: norm w / sqrt(pixels); the sum: w * sqrt(pixels)
    norm = w / pixels**0.5 if reduce == "mean" else w * pixels**0.5
    gp = loss.gradient_penalty(D, real, fake)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-5)
    with torch.no_grad():
        s_real, s_fake = D(real), D(fake)
    total = loss.discriminator_loss(s_real, s_fake, DiscriminatorBatch(D, real, fake, contextlib.nullcontext))
    distance = s_fake.mean() - s_real.mean()
    assert total.item() == pytest.approx(distance.item() + 10.0 * (norm - 1.0) ** 2, rel=1e-5)


def test_wgangp_penalty_trains_the_discriminator():
    """The penalty is differentiable in D's weights (double backward), pulling ||grad|| towards 1."""
    D = LinearCritic(weight=(2.0, 0.0, 0.0))
    loss = cgx.plugins.create("adversarial_loss", "wgangp", reduce="sum")  # ||grad|| = 2 * 2 = 4 at 2x2 px
    real, fake = images(size=2, seed=1), images(size=2, seed=2)
    loss.gradient_penalty(D, real, fake).backward()
    g = D.conv.weight.grad.view(-1)
    assert g[0] > 0 and g[1] == 0 and g[2] == 0  # descending shrinks the weight, so the norm


def test_wgangp_penalty_in_fp32_under_autocast():
    D = LinearCritic()
    loss = cgx.plugins.create("adversarial_loss", "wgangp")
    real, fake = images(size=8, seed=1), images(size=8, seed=2)
    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    with autocast():
        scores = D(torch.cat([real, fake]))
        assert scores.dtype == torch.bfloat16
        d_loss = loss.discriminator_loss(*split(scores, 2), DiscriminatorBatch(D, real, fake, autocast))
    assert d_loss.dtype == torch.float32 and torch.isfinite(d_loss)
    assert D.seen[-1] == (torch.float32, False)  # the penalty's forward: fp32 input, autocast off


def test_wgangp_needs_the_batch_unless_no_penalty():
    loss = cgx.plugins.create("adversarial_loss", "wgangp")
    with pytest.raises(ValueError, match="discriminator batch"):
        loss.discriminator_loss(const(1.0), const(0.0))
    free = cgx.plugins.create("adversarial_loss", "wgangp", gp_weight=0.0)
    assert free.discriminator_loss(const(1.0), const(0.0)).item() == pytest.approx(-1.0)
    assert free.generator_loss(const(0.5)).item() == pytest.approx(-0.5)


def test_wgangp_multi_output_penalty_is_averaged():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = LinearCritic((1.0, 0.0, 0.0)), LinearCritic((0.0, 3.0, 0.0))

        def forward(self, x):
            return [self.a(x), self.b(x)]

    loss = cgx.plugins.create("adversarial_loss", "wgangp", reduce="sum")
    real, fake = images(size=1, seed=1), images(size=1, seed=2)  # 1 px: ||grad|| = ||w||
    gp = loss.gradient_penalty(Two(), real, fake)
    assert gp.item() == pytest.approx(((1 - 1) ** 2 + (3 - 1) ** 2) / 2)


def test_penalty_leaves_no_grad_on_inputs():
    D = LinearCritic()
    loss = cgx.plugins.create("adversarial_loss", "wgangp")
    real, fake = images(size=4, seed=1).requires_grad_(True), images(size=4, seed=2)
    loss.gradient_penalty(D, real, fake).backward()
    assert real.grad is None  # the penalty detaches the batches it interpolates
    assert as_list(D(fake))[0].shape == (2, 1, 4, 4)
