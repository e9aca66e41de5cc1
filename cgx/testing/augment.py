"""Contract check for discriminator augmentations (``cgx.plugins.types.Augment``, ``AdaptiveAugment``)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..plugins.types import AdaptiveAugment
from ..train.augment import install
from .failures import check
from .networks import fits, images
from .state import round_trip


def _seeded(augment, x: torch.Tensor, seed: int) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return augment(x)


def check_augment(build: Callable, *, channels: int = 3, size: int = 32) -> None:
    """What the engine relies on of an augmentation, as it calls it (on every discriminator input):
    a batch of the same shape and dtype back (fp32 and bf16), finite; the gradient reaching the input (the
    generator learns through it); randomness from torch's generator only (the same random state, the same
    result: a resumed run draws the same); samples not mixing (real and fake are augmented in one batch, each
    as it would be alone); no parameters; installed on a discriminator, the network's parameters, state_dict
    keys and output shapes unchanged. An adaptive one (``AdaptiveAugment``) also: ``to``, ``observe`` of
    real scores (a list of score maps, too), ``update`` with a reduction, tensor ``scalars``, and a state that
    survives ``torch.save`` / ``torch.load(weights_only=True)`` and restores the same behaviour.
    ``build()`` makes a new one."""
    augment = build()
    fits("augment", augment)
    check(not (isinstance(augment, nn.Module) and any(True for _ in augment.parameters())),
          f"{type(augment).__qualname__} holds parameters: an augmentation trains nothing (DDP would not see them)")
    if isinstance(augment, AdaptiveAugment):
        augment.to(torch.device("cpu"))
        _exercise_adaptive(augment)
    x = images(4, channels, size, size, seed=3)
    for dtype in (torch.float32, torch.bfloat16):
        out = _seeded(augment, x.to(dtype), 0)
        check(isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == dtype,
              f"augment(images) must return a tensor of the input's shape {tuple(x.shape)} and dtype {dtype}, got "
              f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}")
        check(torch.isfinite(out.float()).all(), f"augment(images) is not finite ({dtype})")
    check(torch.equal(_seeded(augment, x, 5), _seeded(augment, x, 5)),
          "two calls from the same random state differ: draw only from torch's generator (a resumed run must "
          "draw the same)")
    leaf = x.clone().requires_grad_(True)
    out = _seeded(augment, leaf, 1)
    check(out.requires_grad, "augment(images) is detached from its input: no gradient reaches the input, the "
                             "generator could not learn through it")
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    check(leaf.grad is not None and torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0,
          "no gradient reaches the input through augment(images): the generator could not learn through it")
    other = x.clone()
    other[1:] = images(3, channels, size, size, seed=4)
    check(torch.equal(_seeded(augment, x, 2)[0], _seeded(augment, other, 2)[0]),
          "sample 0's result depends on the other samples of the batch: augment each sample on its own")
    _check_installed(augment, channels, size)


def _exercise_adaptive(augment) -> None:
    scores = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    augment.observe(scores, 0.0)
    augment.observe(scores[0], 0.5)
    augment.update(4, lambda t: t.clone())
    values = augment.scalars()
    check(all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in values.values()),
          f"scalars() must map names to one-element tensors, got {values!r}")
    state = round_trip(augment.state_dict())
    augment.observe(scores, 0.0)
    augment.update(10**6, lambda t: t.clone())  # moves its state on
    augment.load_state_dict(state)
    restored = augment.state_dict()
    check(_same(restored, state), "load_state_dict(state) did not restore the state state_dict() gave")


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


def _check_installed(augment, channels: int, size: int) -> None:
    net = nn.Sequential(nn.Conv2d(channels, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, 1, 1))
    keys, params = list(net.state_dict()), list(net.parameters())
    install(net, augment)
    check(list(net.state_dict()) == keys and list(net.parameters()) == params,
          "installing the augmentation changed the discriminator's parameters or state_dict keys")
    x = images(2, channels, size, size, seed=6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        hooked = net(x)
        torch.manual_seed(7)
        expected = net.forward(augment(x))
    check(hooked.shape == expected.shape and torch.equal(hooked, expected),
          "the installed discriminator does not score augment(images)")
