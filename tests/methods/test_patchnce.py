"""PatchNCE (plugins/methods/cut/patchnce.py) against an independent statement of the formula, its
patch sampling (seeded by torch's global generator, so a restored RNG state draws the same patches),
and the projection heads (built up front, saved like any parameter)."""
from __future__ import annotations

import math

import pytest
import torch

from cgx_plugins.methods.cut.patchnce import ProjectionHeads, patch_nce, sample_patches


def formula(q: torch.Tensor, k: torch.Tensor, batch: int, tau: float) -> torch.Tensor:
    """-log softmax of the positive among the positive, the other patches of the same image, and the
    authors' stand-in exp(-10 / tau) for the patch against itself; one patch at a time, in float64."""
    q, k = q.double(), k.double()
    p = q.shape[0] // batch
    out = []
    for b in range(batch):
        for i in range(p):
            qi = q[b * p + i]
            pos = math.exp(float(qi @ k[b * p + i]) / tau)
            neg = sum(math.exp(float(qi @ k[b * p + j]) / tau) for j in range(p) if j != i)
            out.append(-math.log(pos / (pos + neg + math.exp(-10.0 / tau))))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("batch,patches,dim,tau", [(1, 7, 5, 0.07), (3, 4, 16, 0.07), (2, 5, 8, 0.5)])
def test_loss_equals_the_formula(batch, patches, dim, tau):
    g = torch.Generator().manual_seed(batch * 100 + patches)
    q = torch.nn.functional.normalize(torch.randn(batch * patches, dim, generator=g), dim=1)
    k = torch.nn.functional.normalize(torch.randn(batch * patches, dim, generator=g), dim=1)
    k[::2] = q[::2] * 0.9 + 0.1 * k[::2]  # some positives close, some not
    ours = patch_nce(q, k, batch, tau)
    assert ours.shape == (batch * patches,)
    torch.testing.assert_close(ours.double(), formula(q, k, batch, tau), rtol=1e-5, atol=1e-6)


def test_negatives_come_from_the_same_image_only():
    """Changing image 1's keys leaves image 0's losses unchanged."""
    q, k = torch.randn(2 * 6, 8), torch.randn(2 * 6, 8)
    before = patch_nce(q, k, 2, 0.07)
    k2 = k.clone()
    k2[6:] = torch.randn(6, 8)
    after = patch_nce(q, k2, 2, 0.07)
    assert torch.equal(before[:6], after[:6]) and not torch.equal(before[6:], after[6:])


def test_keys_get_no_gradient():
    q, k = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    patch_nce(q, k, 1, 0.07).mean().backward()
    assert q.grad is not None and k.grad is None


def test_sampling_is_seeded_and_resumes_exactly():
    feats = [torch.zeros(2, 3, 10, 10), torch.zeros(2, 5, 4, 4)]
    torch.manual_seed(3)
    first = sample_patches(feats, 32)
    state = torch.get_rng_state()  # what a checkpoint holds (cgx.train.rng)
    second = sample_patches(feats, 32)
    assert [len(i) for i in first] == [32, 16]  # min(num_patches, H*W)
    assert all(len(set(i.tolist())) == len(i) for i in first)  # distinct locations
    torch.manual_seed(99)  # ... a restarted process, then the checkpoint's state restored
    torch.set_rng_state(state)
    resumed = sample_patches(feats, 32)
    assert all(torch.equal(a, b) for a, b in zip(second, resumed))
    assert not all(torch.equal(a, b) for a, b in zip(first, second))


def test_heads_are_built_up_front_and_saved():
    heads = ProjectionHeads([3, 8, 16], units=32)
    shapes = {k: tuple(v.shape) for k, v in heads.state_dict().items()}
    assert shapes["mlps.0.0.weight"] == (32, 3) and shapes["mlps.2.2.weight"] == (32, 32)
    feats = [torch.randn(2, c, 6, 6) for c in (3, 8, 16)]
    ids = sample_patches(feats, 5)
    out = heads(feats, ids)
    assert [tuple(o.shape) for o in out] == [(10, 32)] * 3
    assert ((out[0].norm(dim=1) - 1).abs() < 1e-2).all()  # x / (|x| + 1e-7): unit length up to the 1e-7
    again = ProjectionHeads([3, 8, 16], units=32)
    again.load_state_dict(heads.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(again(feats, ids), out))


def test_a_zero_patch_gives_finite_gradients():
    """A patch whose projected features are all zero (ReLU off everywhere, zero bias) does not make the
    heads NaN (the authors' pow(0.5) would)."""
    heads = ProjectionHeads([4], units=8)
    feats = [torch.zeros(1, 4, 3, 3)]
    feats[0][..., 0, 0] = 1.0
    ids = [torch.arange(9)]
    q = heads([feats[0] * 2], ids)[0]
    k = heads(feats, ids)[0]
    patch_nce(q, k, 1, 0.07).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in heads.parameters())
