"""A fifth likelihood that lives only in tests/: proof that a new likelihood is one class plus one config."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genlab.models.likelihoods import Likelihood


class Laplace(Likelihood):
    """Laplace with mean sigmoid(logits) and a fixed `scale` b per pixel: -log p(x|z) = sum |x - mean| / b +
    D log(2 b)."""

    def __init__(self, pixel_range: Sequence[float], scale: float) -> None:
        super().__init__(pixel_range)
        self.scale = float(scale)

    def nll(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return (self.mean(logits) - images).abs().flatten(1).sum(dim=1) / self.scale

    def constant(self, images: torch.Tensor) -> float:
        return images[0].numel() * math.log(2 * self.scale)
