"""Contract check for segmenters (``cgx.plugins.types.Segmenter``)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .failures import check
from .networks import fits, images

Build = Callable[[], nn.Module]


def check_segmenter(build: Build, *, in_channels: int = 3, classes: int = 3, size: int = 64) -> None:
    """What the engine relies on of a segmenter: an ``nn.Module`` with ``classes`` (int) mapping a
    (N, C, H, W) batch in [-1, 1] to finite logits (N, classes, H, W) at the input's size (square, and
    an odd, non-square one); the cross-entropy's gradient reaching the input (the semantic consistency
    term trains the generator through a frozen segmenter) and every parameter it trains; samples not
    mixing in eval mode; a few optimizer steps on one labelled batch lowering the cross-entropy;
    parameters staying fp32 under bf16 autocast. ``build()`` makes a new segmenter for ``in_channels``
    and ``classes`` (small arguments: the check runs on CPU)."""
    torch.manual_seed(0)
    net = build()
    check(isinstance(net, nn.Module), f"build() returned {type(net).__name__}, not a torch.nn.Module")
    fits("segmenter", net)
    check(net.classes == classes, f"segmenter.classes is {net.classes!r}, but build() was asked for {classes}")
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    check(trainable, "segmenter has no parameter to train")

    x = images(2, in_channels, size, size).requires_grad_(True)
    labels = torch.randint(0, classes, (2, size, size), generator=torch.Generator().manual_seed(3))
    logits = net(x)
    check(isinstance(logits, torch.Tensor), f"segmenter returned {type(logits).__name__}, not a tensor")
    check(tuple(logits.shape) == (2, classes, size, size),
          f"logits {tuple(logits.shape)} for input {tuple(x.shape)}, expected {(2, classes, size, size)}")
    check(torch.isfinite(logits).all(), "segmenter logits are not finite")
    F.cross_entropy(logits, labels).backward()
    check(x.grad is not None and x.grad.abs().sum() > 0, "no gradient reaches the input")
    for pname, p in net.named_parameters():
        if p.requires_grad:
            check(p.grad is not None and torch.isfinite(p.grad).all(), f"no finite gradient reaches parameter {pname}")
        else:
            check(p.grad is None, f"parameter {pname} is frozen but got a gradient")

    net.zero_grad(set_to_none=True)
    net.eval()
    odd = (size + 7, size // 2 + 3)
    with torch.no_grad():
        for h, w in ((size, size), odd):
            xs = images(2, in_channels, h, w, seed=2)
            both, first = net(xs), net(xs[:1])
            check(tuple(both.shape) == (2, classes, h, w),
                  f"logits {tuple(both.shape)} for input {tuple(xs.shape)}, expected {(2, classes, h, w)}")
            check(torch.allclose(both[:1], first, rtol=1e-4, atol=1e-5),
                  f"in eval mode, sample 0's logits depend on sample 1 ({h}x{w})")

    net.train()
    opt = torch.optim.Adam([p for _, p in trainable], lr=1e-3)
    fixed = x.detach()
    with torch.no_grad():
        before = F.cross_entropy(net.eval()(fixed), labels).item()
    net.train()
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(fixed), labels).backward()
        opt.step()
    with torch.no_grad():
        after = F.cross_entropy(net.eval()(fixed), labels).item()
    check(after < before, f"5 Adam steps on one batch did not lower the cross-entropy ({before:.4g} -> {after:.4g})")

    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(fixed)
    F.cross_entropy(low.float(), labels).backward()
    for pname, p in net.named_parameters():
        check(p.dtype == torch.float32, f"parameter {pname} is {p.dtype} after a bf16 autocast pass")
