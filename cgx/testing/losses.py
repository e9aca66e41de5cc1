"""Contract checks for adversarial and reconstruction losses, called as the built-in methods call them."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from ..nn.freeze import set_requires_grad
from ..nn.scores import split
from ..plugins.types import DiscriminatorBatch
from .failures import check
from .networks import fits, images

AUTOCAST = {"fp32": contextlib.nullcontext, "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}


def _patch_discriminator() -> nn.Module:
    from torch.nn.utils.parametrizations import spectral_norm

    class Tiny(nn.Module):  # two score maps: a loss must handle a list of scores too
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(8, 1, 3, 1, 1)))
            self.b = nn.Conv2d(3, 1, 4, 4)

        def forward(self, x):
            return [self.a(x), self.b(x)]

    return Tiny()


def check_adversarial_loss(build: Callable, *, discriminator: Callable[[], nn.Module] | None = None,
                           size: int = 32) -> None:
    """An adversarial loss (``cgx.plugins.types.AdversarialLoss``) called exactly as the built-in methods
    call it, in fp32 and under bf16 autocast (the loss itself outside autocast): the discriminator's loss
    on real and fake scored in one batch, a finite fp32 scalar whose gradient reaches the discriminator;
    then the generator's loss with the discriminator frozen, whose gradient reaches the fakes and none of
    the discriminator's parameters. ``discriminator``: builds the one to test with (default: a small
    two-output one, so list scores are covered; ``size`` is raised to its ``min_size``)."""
    torch.manual_seed(0)
    D = (discriminator or _patch_discriminator)()
    size = max(size, getattr(D, "min_size", 0))  # small, but large enough for every level of D
    trainable = [(name, p) for name, p in D.named_parameters() if p.requires_grad]
    for precision, autocast in AUTOCAST.items():
        D.zero_grad(set_to_none=True)
        loss = build()
        fits("adversarial_loss", loss)
        n = 2
        real, fake = images(n, 3, size, size, seed=1), images(n, 3, size, size, seed=2)
        with autocast():
            scores = D(torch.cat([real, fake]))
        d_loss = loss.discriminator_loss(*split(scores, n), DiscriminatorBatch(D, real, fake, autocast))
        check(isinstance(d_loss, torch.Tensor) and d_loss.dim() == 0, f"{precision}: discriminator_loss is not a scalar tensor")
        check(d_loss.dtype == torch.float32, f"{precision}: discriminator_loss is {d_loss.dtype}, not fp32")
        check(torch.isfinite(d_loss), f"{precision}: discriminator_loss is {d_loss.item()}")
        d_loss.backward()
        for name, p in trainable:
            check(p.grad is not None and torch.isfinite(p.grad).all(),
                  f"{precision}: discriminator_loss gives no finite gradient to {name}")
        check(any(p.grad.abs().sum() > 0 for _, p in trainable), f"{precision}: discriminator_loss's gradient is zero")

        D.zero_grad(set_to_none=True)
        changed = set_requires_grad(D, False)
        fake_g = fake.clone().requires_grad_(True)
        with autocast():
            g_scores = D(fake_g)
        g_loss = loss.generator_loss(g_scores)
        check(isinstance(g_loss, torch.Tensor) and g_loss.dim() == 0, f"{precision}: generator_loss is not a scalar tensor")
        check(g_loss.dtype == torch.float32, f"{precision}: generator_loss is {g_loss.dtype}, not fp32")
        check(torch.isfinite(g_loss), f"{precision}: generator_loss is {g_loss.item()}")
        g_loss.backward()
        check(fake_g.grad is not None and torch.isfinite(fake_g.grad).all() and fake_g.grad.abs().sum() > 0,
              f"{precision}: generator_loss gives no gradient to the fakes")
        check(all(p.grad is None for p in D.parameters()), f"{precision}: generator_loss reached the frozen discriminator")
        set_requires_grad(changed, True)
        check([n for n, p in D.named_parameters() if p.requires_grad] == [n for n, _ in trainable],
              f"{precision}: the discriminator's trainable parameters changed")


def check_reconstruction_loss(build: Callable) -> None:
    """A reconstruction loss (``loss(output, target) -> scalar``): an fp32 scalar for fp32 and bf16
    inputs, finite, smaller for an output equal to its target than for another image, with a gradient
    reaching the output."""
    loss = build()
    fits("reconstruction_loss", loss)
    target = images(2, 3, 32, 32, seed=1)
    for dtype in (torch.float32, torch.bfloat16):
        out = images(2, 3, 32, 32, seed=2).to(dtype).requires_grad_(True)
        value = loss(out, target.to(dtype))
        check(isinstance(value, torch.Tensor) and value.dim() == 0, f"{dtype}: the loss is not a scalar tensor")
        check(value.dtype == torch.float32, f"{dtype} inputs: the loss is {value.dtype}, not fp32")
        check(torch.isfinite(value), f"{dtype}: the loss is {value.item()}")
        value.backward()
        check(out.grad is not None and out.grad.abs().sum() > 0, f"{dtype}: no gradient reaches the output")
        same = loss(target.to(dtype), target.to(dtype))
        check(same < value, f"{dtype}: loss(x, x) = {same.item():.3g} is not below loss(y, x) = {value.item():.3g}")
