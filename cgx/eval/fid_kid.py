"""FID and KID from Inception features, in float64.

The features are computed once (``cgx.eval.inception``). KID is torchmetrics' (the features handed
to it through a pass-through feature module); FID is written here, equal to torchmetrics' (tested)
and faster on CPU (see ``fid``). KID draws its subsets with a fixed seed,
without touching the caller's random state, and its subset size is at most the smaller set.

KID's spread (std over the subsets) is given only when a subset is smaller than each set
(``kid_spread``): where a subset holds every image of a set (60 test images, subsets of
min(1000, 60)), every subset is the same set, and the std is 0 or measures the other set's
resampling alone; then there is none (None), and the record says why."""
from __future__ import annotations

import warnings

import torch
from torch import nn

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_DEGREE = 3
KID_SEED = 0


class _Given(nn.Module):
    """The "feature extractor" torchmetrics calls: the features themselves, as float64."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.double()


def _check(real: torch.Tensor, fake: torch.Tensor) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError(f"FID/KID need at least 2 images per set, got {real.shape[0]} and {fake.shape[0]}")


def _factor(features: torch.Tensor) -> torch.Tensor:
    """A with A @ A.T = the features' covariance (float64): the centred features / sqrt(n - 1) when
    there are fewer images than dimensions, else the covariance's symmetric square root."""
    x = features.double()
    centred = x - x.mean(0, keepdim=True)
    n, d = x.shape
    if n <= d:
        return centred.T / (n - 1) ** 0.5
    values, vectors = torch.linalg.eigh(centred.T @ centred / (n - 1))
    return vectors * values.clamp_min(0).sqrt()


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets, in float64:
    ``|mu_r - mu_f|² + tr(S_r) + tr(S_f) - 2 tr sqrt(S_r S_f)``.

    torchmetrics' FID takes the eigenvalues of the 2048 x 2048 product ``S_r @ S_f`` (about 40 s
    on a 2-core CPU); here ``tr sqrt(S_r S_f)`` is the nuclear norm of ``A_r.T @ A_f`` for factors
    ``S = A @ A.T`` (the eigenvalues of ``S_r S_f`` are the squared singular values of that product),
    the same number in well under a second for test-set sizes."""
    _check(real, fake)
    a, b = _factor(real), _factor(fake)
    mean = (real.double().mean(0) - fake.double().mean(0)).square().sum()
    trace = a.square().sum() + b.square().sum()
    cross = torch.linalg.svdvals(a.T @ b).sum()
    return float(mean + trace - 2 * cross)


def kid_subset_size(n_real: int, n_fake: int, most: int = KID_SUBSET_SIZE) -> int:
    return min(most, n_real, n_fake)


def has_spread(n_real: int, n_fake: int, most: int = KID_SUBSET_SIZE) -> bool:
    """Whether KID's subsets are smaller than both sets, so that they differ in both and their std
    says how much the score moves with the images drawn."""
    return kid_subset_size(n_real, n_fake, most) < min(n_real, n_fake)


def kid_spread(n_real: int, n_fake: int, subsets: int = KID_SUBSETS, most: int = KID_SUBSET_SIZE) -> str:
    """What the KID spread of ``n_real`` real and ``n_fake`` translated images is (for the record)."""
    size = kid_subset_size(n_real, n_fake, most)
    if has_spread(n_real, n_fake, most):
        return f"std over {subsets} subsets of {size} of the {n_fake} translated and {n_real} real images"
    which = " and ".join(f"all {n} {name} images" for n, name in ((n_fake, "translated"), (n_real, "real")) if n == size)
    return (f"none: every subset (of {size}) holds {which}, so the subsets do not vary in it; a spread needs "
            f"more than {most} images of each set")


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS, seed: int = KID_SEED,
        most: int = KID_SUBSET_SIZE) -> tuple[float, float | None]:
    """Kernel Inception Distance (unbiased MMD², cubic polynomial kernel): mean and std over
    ``subsets`` random subsets of ``kid_subset_size`` images of each set (torchmetrics, float64);
    the std is None where a subset holds every image of a set (``has_spread``)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, fake)
    size = kid_subset_size(real.shape[0], fake.shape[0], most)
    if size == real.shape[0] == fake.shape[0]:
        subsets = 1  # every subset is both whole sets, reordered: the unbiased MMD² is the same each time
    with warnings.catch_warnings():  # "will save all extracted features": that is the point here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subsets=subsets, subset_size=size,
                                         degree=KID_DEGREE, sync_on_compute=False)
    metric.update(real.double().cpu(), real=True)
    metric.update(fake.double().cpu(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std) if has_spread(real.shape[0], fake.shape[0], most) else None
