"""Distances between feature sets: FID, KID (torchmetrics); precision, recall, density, coverage (prdc)."""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.errors import require


class PrecomputedFeatures(nn.Module):
    """Features in, features out: lets torchmetrics' FID/KID run on cached Inception features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def check_kid_subset_size(subset_size: int, n_real: int, n_fake: int, key: str = "kid_subset_size") -> None:
    """KID draws subsets of `subset_size` from both sets: neither may be smaller."""
    require(
        subset_size > 0 and subset_size <= min(n_real, n_fake),
        key,
        subset_size,
        f"must be between 1 and the smaller set's size ({n_real} real, {n_fake} generated images): lower "
        f"{key} or raise n_samples",
    )


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [N, D] (torchmetrics' implementation)."""
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (cubic polynomial MMD^2): mean and std over `subsets` random subsets."""
    check_kid_subset_size(subset_size, len(real), len(fake))
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


def precision_recall(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> dict[str, float]:
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
