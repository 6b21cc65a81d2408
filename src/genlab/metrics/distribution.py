"""Distances between feature sets: FID, KID (torchmetrics); precision, recall, density, coverage (prdc)."""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.errors import require


class PrecomputedFeatures(nn.Module):
    """Features in, features out: lets torchmetrics' FID/KID run on cached Inception features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


#: KID's usual subset size: the default, or every image of a smaller set (`kid_subset_size`)
KID_SUBSET_SIZE = 1000


def check_kid_subset_size(subset_size: int, n_real: int, n_fake: int, key: str = "kid_subset_size") -> None:
    """KID draws subsets of `subset_size` from both sets: neither may be smaller."""
    require(
        subset_size > 0 and subset_size <= min(n_real, n_fake),
        key,
        subset_size,
        f"must be between 1 and the smaller set's size ({n_real} real, {n_fake} generated images): lower "
        f"{key} or raise n_samples",
    )


def kid_subset_size(subset_size: int | None, n_real: int, n_fake: int, key: str = "kid_subset_size") -> int:
    """The KID subset size to use: `subset_size` when given (checked), else min(KID_SUBSET_SIZE, both sets),
    so a default scales down with n instead of failing."""
    if subset_size is None:
        size = min(KID_SUBSET_SIZE, n_real, n_fake)
        require(size > 0, key, subset_size, f"needs images in both sets ({n_real} real, {n_fake} generated)")
        return size
    check_kid_subset_size(subset_size, n_real, n_fake, key)
    return subset_size


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [N, D]:
    |mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr sqrt(S_r S_f), in float64, covariances with N - 1.

    torchmetrics' FrechetInceptionDistance gives the same number (tests/test_metrics.py checks it) but takes
    tr sqrt(S_r S_f) from the general eigenvalues of the non-symmetric product, 34 s for 2048 features on a
    2-core CPU, twice per evaluate.py run. The product's eigenvalues are those of the symmetric
    sqrt(S_r) S_f sqrt(S_r), which two symmetric eigendecompositions give in ~3 s.
    """
    real, fake = real.double(), fake.double()
    mean_gap = (real.mean(0) - fake.mean(0)).square().sum()
    cov_real, cov_fake = torch.cov(real.T), torch.cov(fake.T)
    values, vectors = torch.linalg.eigh(cov_real)
    root_real = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    product_values = torch.linalg.eigvalsh(root_real @ cov_fake @ root_real)
    trace_root = product_values.clamp(min=0).sqrt().sum()  # as torchmetrics: sqrt(negative rounding) -> 0
    return float(mean_gap + cov_real.trace() + cov_fake.trace() - 2 * trace_root)


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int | None = None, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (cubic polynomial MMD^2): mean and std over `subsets` random subsets of
    `subset_size` (None: `kid_subset_size`'s default)."""
    subset_size = kid_subset_size(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # it warns that it keeps every feature: these few thousand are the point
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=subset_size
        )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():  # KID's subsets come from the global generator: make them reproducible
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, nearest_k: int) -> dict[str, float]:
    """Precision, recall (Kynkaanniemi et al.), density and coverage (Naeem et al.) with k-NN balls."""
    from prdc import compute_prdc

    require(
        nearest_k < min(len(real), len(fake)),
        "nearest_k",
        nearest_k,
        f"must be smaller than both set sizes ({len(real)} real, {len(fake)} generated)",
    )
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        scores = compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k=nearest_k)
    return {name: float(value) for name, value in scores.items()}
