"""FID and KID arithmetic against independent computations on stand-in features."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from cgx.eval.fid_kid import fid, has_spread, kid, kid_spread, kid_subset_size


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix).abs() + shift


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("n_real, n_fake, d", [(300, 250, 32), (40, 30, 64)])  # more images than dimensions, and fewer
def test_fid_equals_scipy_sqrtm(n_real, n_fake, d):
    real, fake = features(n_real, d, 0), features(n_fake, d, 1, shift=0.3)
    expected = scipy_fid(real.numpy(), fake.numpy())
    assert expected > 1.0
    assert fid(real, fake) == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_fid_equals_torchmetrics():
    from torchmetrics.image.fid import _compute_fid

    real, fake = features(200, 48, 2), features(150, 48, 3, shift=0.1)
    expected = _compute_fid(real.mean(0), torch.cov(real.T), fake.mean(0), torch.cov(fake.T))
    assert fid(real, fake) == pytest.approx(float(expected), rel=1e-6)


def test_fid_of_a_set_against_itself_is_zero():
    for n in (50, 500):  # singular and full-rank covariance
        x = features(n, 64, 4)
        assert abs(fid(x, x)) < 1e-8
    assert fid(features(50, 64, 4), features(50, 64, 5)) > 0.1


def unbiased_poly_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """MMD² (unbiased) with k(a, b) = (a.b / d + 1)³, written out term by term."""
    m, n, d = len(x), len(y), x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def test_kid_equals_unbiased_polynomial_mmd():
    # Both sets no larger than the subset size: each subset is the whole set, and KID is its MMD².
    real, fake = features(40, 64, 6), features(40, 64, 7, shift=0.2)
    mean, std = kid(real, fake)
    assert mean == pytest.approx(unbiased_poly_mmd2(real.numpy(), fake.numpy()), rel=1e-9)
    assert std is None  # 100 identical subsets: no spread, not "± 0"
    assert kid_spread(40, 40).startswith("none: every subset (of 40) holds all 40 translated images and all 40 real")


def test_kid_subsets_are_seeded_and_leave_the_random_state_alone():
    real, fake = features(60, 32, 8), features(45, 32, 9, shift=0.2)
    assert kid_subset_size(60, 45) == 45 and kid_subset_size(5000, 3000) == 1000
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = kid(real, fake)
    assert torch.equal(torch.rand(3), before)  # the caller's stream is untouched
    assert kid(real, fake) == first and kid(real, fake, seed=1) != first
    assert first[1] is None  # every subset holds all 45 translated images: real subsets alone differ
    assert kid_spread(60, 45).startswith("none: every subset (of 45) holds all 45 translated images, so the subsets do not vary in it")
    # every subset is an unbiased MMD² of 45 vs 45 images: the mean lies within their range
    x, y = real.numpy(), fake.numpy()
    rng = np.random.default_rng(0)
    samples = [unbiased_poly_mmd2(x[rng.permutation(60)[:45]], y) for _ in range(50)]
    assert min(samples) - 1e-9 <= first[0] <= max(samples) + 1e-9


def test_kid_spread_only_where_subsets_are_smaller_than_both_sets():
    assert not has_spread(60, 60) and not has_spread(5000, 1000) and has_spread(1001, 1001)
    assert has_spread(60, 45, most=30) and not has_spread(60, 45, most=45)
    real, fake = features(60, 32, 8), features(45, 32, 9, shift=0.2)
    mean, std = kid(real, fake, most=30)
    assert std is not None and std > 0  # subsets of 30 differ in both sets
    x, y = real.numpy(), fake.numpy()
    rng = np.random.default_rng(0)
    samples = [unbiased_poly_mmd2(x[rng.permutation(60)[:30]], y[rng.permutation(45)[:30]]) for _ in range(200)]
    assert std == pytest.approx(np.std(samples), rel=0.3)  # the spread of the estimator at 30 vs 30
    assert kid_spread(60, 45, most=30) == "std over 100 subsets of 30 of the 45 translated and 60 real images"


def test_kid_of_two_whole_sets_computes_one_subset(monkeypatch):
    # Where a subset is both whole sets, every subset is the same MMD²: drawing 100 of them is waste.
    from torchmetrics.image import kid as tm_kid

    asked = []
    real_init = tm_kid.KernelInceptionDistance.__init__

    def recording_init(self, *args, **kwargs):
        asked.append(kwargs["subsets"])
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(tm_kid.KernelInceptionDistance, "__init__", recording_init)
    real, fake = features(40, 64, 6), features(40, 64, 7, shift=0.2)
    mean, _ = kid(real, fake)
    assert mean == pytest.approx(unbiased_poly_mmd2(real.numpy(), fake.numpy()), rel=1e-9)
    kid(features(60, 32, 8), features(45, 32, 9, shift=0.2))  # real subsets still differ: all of them drawn
    assert asked == [1, 100]
