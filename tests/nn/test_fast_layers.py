"""cgx.nn's faster layers compute what torch's own compute: pads that keep bf16 under CPU autocast,
the instance norm that keeps channels_last (forward and backward, against float64 and torch)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cgx.nn.norm import InstanceNorm2d
from cgx.nn.pad import ReflectionPad2d, ReplicationPad2d

PADS = [(ReflectionPad2d, nn.ReflectionPad2d), (ReplicationPad2d, nn.ReplicationPad2d)]


@pytest.mark.parametrize("ours, torchs", PADS)
def test_pads_keep_bf16_under_cpu_autocast_and_equal_torchs(ours, torchs):
    """torch's CPU autocast pads in float32; ours in the input's dtype. A pad only moves values: the
    forward is bit-identical, the backward (which sums reflected border gradients) equal to bf16 rounding."""
    assert issubclass(ours, torchs)  # isinstance checks (cgx.tiling) still see a pad
    x = (torch.rand(2, 5, 9, 11) * 2 - 1).bfloat16()
    g = torch.rand(2, 5, 11, 13).bfloat16()
    outs, grads = [], []
    for cls in (ours, torchs):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = nn.Sequential(cls(1), nn.Identity())(xi)
        (y.float() * g.float()).sum().backward()
        outs.append(y)
        grads.append(xi.grad)
    assert outs[0].dtype == torch.bfloat16 and outs[1].dtype == torch.float32
    assert torch.equal(outs[0].float(), outs[1])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-2, atol=1e-2)
    # ... and outside autocast nothing changes
    torch.testing.assert_close(ours(1)(x.float()), torchs(1)(x.float()), rtol=0, atol=0)


@pytest.mark.parametrize("n", [1, 3])
def test_channels_last_instance_norm_equals_torchs_and_stays_channels_last(n):
    torch.manual_seed(0)
    x64 = torch.randn(n, 6, 7, 5, dtype=torch.float64) * 3 + 1
    weights = torch.randn(n, 6, 7, 5, dtype=torch.float64)

    def run(norm, x):
        x = x.clone().requires_grad_()
        y = norm(x)
        (y * weights.to(y.dtype)).sum().backward()
        return y, x.grad

    ref_y, ref_g = run(nn.InstanceNorm2d(6), x64)
    cl = x64.float().contiguous(memory_format=torch.channels_last)
    y, g = run(InstanceNorm2d(6), cl)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert g.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y.double(), ref_y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g.double(), ref_g, rtol=1e-4, atol=1e-5)
    plain_y, plain_g = run(nn.InstanceNorm2d(6), x64.float())  # torch's own, in float32
    assert (y.double() - ref_y).abs().max() <= 4 * (plain_y.double() - ref_y).abs().max() + 1e-6


def test_instance_norm_in_bf16_autocast_and_the_plain_layout_are_torchs():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv = nn.Conv2d(4, 4, 1).to(memory_format=torch.channels_last)
        h = conv(x.contiguous(memory_format=torch.channels_last))
        ours, theirs = InstanceNorm2d(4)(h), nn.InstanceNorm2d(4)(h)
    assert ours.dtype == theirs.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-2, atol=2e-2)
    assert torch.equal(InstanceNorm2d(4)(x), nn.InstanceNorm2d(4)(x))  # NCHW: torch's own path
    affine = InstanceNorm2d(4, affine=True)  # with parameters: torch's own path, channels_last or not
    xc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(affine(xc), F.instance_norm(xc, weight=affine.weight, bias=affine.bias))
