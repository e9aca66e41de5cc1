"""Contract checks for generators and discriminators (``cgx.plugins.types.Generator``, ``Discriminator``)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..nn.scores import as_list
from ..plugins.kinds import KINDS
from .failures import check

Build = Callable[[], nn.Module]


def images(n: int, channels: int, height: int, width: int, seed: int = 1) -> torch.Tensor:
    """A reproducible batch in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, channels, height, width), generator=g) * 2 - 1


def fits(kind: str, net) -> None:
    lacks = KINDS[kind].missing(net)
    check(not lacks, f"{type(net).__qualname__} is not a {KINDS[kind].protocol.__name__}: it needs {', '.join(lacks)}")


def check_generator(build: Build, *, in_channels: int = 3, out_channels: int | None = None, size: int = 64) -> None:
    """What the engine relies on of a generator: an ``nn.Module`` mapping a (N, C, H, W) batch in [-1, 1]
    to (N, C_out, H, W) in [-1, 1], finite; the gradient reaching the input and every parameter it
    trains (none reaching one it froze); samples not mixing in eval mode; parameters staying fp32 under
    bf16 autocast, whose result is close to fp32's; ``size_multiple`` and ``min_size`` integers if
    declared. ``build()`` makes a new generator (small arguments: the check runs on CPU)."""
    _check_network("generator", build, in_channels, out_channels or in_channels, size)


def check_discriminator(build: Build, *, in_channels: int = 3, size: int = 64) -> None:
    """What the engine relies on of a discriminator: an ``nn.Module`` mapping images to raw scores (a
    tensor or a list), batch first, finite, with the shapes ``output_shapes(height, width)`` declares
    (square and not); the gradient reaching the input and every parameter it trains (none reaching one it
    froze); samples not mixing in eval mode (the trainer scores real and fake in one batch); parameters
    staying fp32 under bf16 autocast."""
    _check_network("discriminator", build, in_channels, None, size)


def _sizes(net: nn.Module, size: int) -> list[tuple[int, int]]:
    multiple = getattr(net, "size_multiple", 1)
    low = getattr(net, "min_size", 1)
    for attr, value in (("size_multiple", multiple), ("min_size", low)):
        check(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
              f"{attr} must be a positive int, got {value!r}")
    side = max(size, low)
    side = -(-side // multiple) * multiple
    taller = -(-(side * 3 // 2) // multiple) * multiple
    return [(side, side), (taller, side)]


def _check_network(kind: str, build: Build, in_channels: int, out_channels: int | None, size: int) -> None:
    torch.manual_seed(0)
    net = build()
    check(isinstance(net, nn.Module), f"build() returned {type(net).__name__}, not a torch.nn.Module")
    fits(kind, net)
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    check(trainable, f"{kind} has no parameter to train")
    sizes = _sizes(net, size)
    h, w = sizes[0]

    x = images(2, in_channels, h, w).requires_grad_(True)
    outs = _outputs(kind, net(x), x, out_channels)
    sum(o.float().square().mean() for o in outs).backward()
    check(x.grad is not None and x.grad.abs().sum() > 0, "no gradient reaches the input")
    for pname, p in net.named_parameters():
        if not p.requires_grad:
            check(p.grad is None, f"parameter {pname} is frozen but got a gradient")
            continue
        check(p.grad is not None, f"no gradient reaches parameter {pname}")
        check(torch.isfinite(p.grad).all(), f"non-finite gradient in {pname}")

    net.zero_grad(set_to_none=True)
    net.eval()
    with torch.no_grad():
        for height, width in sizes:
            xs = images(2, in_channels, height, width, seed=2)
            both, first = as_list(net(xs)), as_list(net(xs[:1]))
            for b, f in zip(both, first):
                check(torch.allclose(b[:1], f, rtol=1e-4, atol=1e-5),
                      f"in eval mode, sample 0's output depends on sample 1 ({height}x{width})")
                check(not torch.equal(b[0], b[1]), "two different inputs give the same output")
            if kind == "generator":
                shape = (2, out_channels, height, width)
                check([tuple(o.shape) for o in both] == [shape], f"output {[tuple(o.shape) for o in both]} for "
                      f"input {tuple(xs.shape)}, expected {shape}")
            else:
                declared = [(2, *map(int, s)) for s in net.output_shapes(height, width)]
                got = [tuple(o.shape) for o in both]
                check(got == declared, f"scores of shapes {got} for a {height}x{width} input, but output_shapes"
                      f"({height}, {width}) declares {[d[1:] for d in declared]}")
        ref = as_list(net(x.detach()))
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x.detach())
    outs = _outputs(kind, low, x, out_channels)
    sum(o.float().mean() for o in outs).backward()
    for pname, p in net.named_parameters():
        check(p.dtype == torch.float32, f"parameter {pname} is {p.dtype} after a bf16 autocast pass")
        if p.requires_grad:
            check(p.grad is not None and torch.isfinite(p.grad).all(), f"bf16: no finite gradient for {pname}")
    net.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = as_list(net(x.detach()))
    for r, lo in zip(ref, low):
        err = (r - lo.float()).abs().max().item()
        check(err < 0.1 * max(1.0, r.abs().max().item()), f"bf16 autocast output differs from fp32 by {err:.3g}")


def _outputs(kind: str, out, x: torch.Tensor, out_channels: int | None) -> list[torch.Tensor]:
    if kind == "generator":
        check(isinstance(out, torch.Tensor), f"generator returned {type(out).__name__}, not a tensor")
        check(out.shape == (x.shape[0], out_channels, *x.shape[2:]),
              f"generator output {tuple(out.shape)} for input {tuple(x.shape)}")
        check(torch.isfinite(out).all(), "generator output is not finite")
        check(out.min() >= -1 and out.max() <= 1, f"generator output outside [-1, 1]: "
              f"[{out.min().item():.3g}, {out.max().item():.3g}]")
        return [out]
    outs = as_list(out)
    check(outs and all(isinstance(s, torch.Tensor) for s in outs), "discriminator returned no score tensor")
    for s in outs:
        check(s.shape[0] == x.shape[0], f"scores {tuple(s.shape)} are not batch first for {x.shape[0]} images")
        check(torch.isfinite(s).all(), "discriminator scores are not finite")
    return outs
