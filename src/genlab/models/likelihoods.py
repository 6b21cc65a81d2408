"""Decoder likelihoods p(x|z): what a VAE's reconstruction term is, one small class each (`likelihood=...`).

Each takes the decoder's raw output (`logits`) and the images, and gives per image [N]:
- `nll(logits, x)`: -log p(x|z) minus `constant(x)`, the term the VAE trains on (summed over pixels);
- `constant(x)`: the part of -log p(x|z) that no weight changes (so bounds are true log-likelihoods);
- `mean(logits)`: the images the pictures and samples show (the likelihood's mean, in the pixel range).

A new likelihood is one subclass of `Likelihood` plus one conf/likelihood/<name>.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import require
from genlab.models.base import PIXEL_RANGES


def softclip(values: torch.Tensor, minimum: float) -> torch.Tensor:
    """A smooth max(values, minimum) that keeps a gradient: minimum + softplus(values - minimum)."""
    return minimum + F.softplus(values - minimum)


class Likelihood(nn.Module):
    """p(x|z) for images in `pixel_range`, the decoder's output mapped into it by sigmoid or tanh."""

    #: True for a density on binary pixels: the only kind `data.binarize` allows
    binary: bool = False

    def __init__(self, pixel_range: Sequence[float]) -> None:
        super().__init__()
        self.pixel_range = tuple(float(v) for v in pixel_range)
        require(
            self.pixel_range in PIXEL_RANGES, "model.pixel_range", list(pixel_range), "use [0, 1] or [-1, 1]"
        )
        self.activation = PIXEL_RANGES[self.pixel_range]

    def nll(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) - constant(x) per image [N]."""
        raise NotImplementedError

    def constant(self, images: torch.Tensor) -> float:
        """-log p(x|z) minus `nll`: 0 unless the class says otherwise."""
        return 0.0

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The images drawn for `logits`: the mean of p(x|z) (sharper than a sample of independent pixels)."""
        return self.activation(logits)

    @property
    def description(self) -> str:
        """One line for metrics.json: the density the bounds are computed with."""
        return " ".join((type(self).__doc__ or type(self).__name__).split("\n\n")[0].split()).rstrip(".")


class Bernoulli(Likelihood):
    """Bernoulli on the decoder logits: -log p(x|z) = summed binary cross-entropy.

    With binary pixels (`data.binarize: dynamic`) its bounds are the binarised-MNIST log-likelihoods of
    the literature."""

    binary = True

    def __init__(self, pixel_range: Sequence[float]) -> None:
        super().__init__(pixel_range)
        require(self.pixel_range == (0.0, 1.0), "likelihood", "bernoulli", "needs model.pixel_range [0, 1]")

    def nll(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(dim=1)


class FixedGaussian(Likelihood):
    """Gaussian, fixed variance 1/2 per pixel: -log p(x|z) = sum sq. error + D/2 log(pi).

    1/2 is the variance for which the summed squared error is exactly the negative log-density up to a
    constant. Against a trained model's per-pixel MSE of a few hundredths, that weighs the KL like a beta
    of 0.5 / MSE (about 10-30) against the pixels' fit: study A's blurry samples."""

    def nll(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return (self.mean(logits) - images).pow(2).flatten(1).sum(dim=1)

    def constant(self, images: torch.Tensor) -> float:
        return 0.5 * images[0].numel() * math.log(math.pi)


class SharedSigmaGaussian(Likelihood):
    """Gaussian with mean sigmoid(logits) and ONE sigma shared by all pixels (sigma >= e^min_log_sigma).

    Shared, not per pixel: the sigma of each of MNIST's always-black border pixels would shrink to its
    floor, and their density would dominate the bound while saying nothing about the digits; a shared one
    balances pixels and KL, as sigma-VAE (Rybkin et al. 2021) found to work. The floor keeps a decoder that
    fits the pixels exactly from driving sigma to 0."""

    def __init__(self, pixel_range: Sequence[float], min_log_sigma: float) -> None:
        super().__init__(pixel_range)
        self.min_log_sigma = float(min_log_sigma)

    def log_sigma(self, squared_error: torch.Tensor | None = None) -> torch.Tensor:
        """log sigma, given this batch's squared errors per pixel (in training) or not."""
        raise NotImplementedError

    def nll(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        squared_error = (self.mean(logits) - images).pow(2)
        log_sigma = self.log_sigma(squared_error)
        per_pixel = 0.5 * squared_error / (2.0 * log_sigma).exp() + log_sigma + 0.5 * math.log(2 * math.pi)
        return per_pixel.flatten(1).sum(dim=1)

    @property
    def description(self) -> str:
        return f"{super().description}; sigma = {float(self.log_sigma().exp()):.6g}"


class LearnedSigmaGaussian(SharedSigmaGaussian):
    """Gaussian, one learned sigma shared by all pixels: -log p(x|z) = sum sq. error / (2 sigma^2) + D log
    sigma + D/2 log(2 pi).

    Its log is soft-clipped at `min_log_sigma` (sigma-VAE's clip, which keeps a gradient)."""

    def __init__(self, pixel_range: Sequence[float], min_log_sigma: float) -> None:
        super().__init__(pixel_range, min_log_sigma)
        self.raw_log_sigma = nn.Parameter(torch.zeros(()))

    def log_sigma(self, squared_error: torch.Tensor | None = None) -> torch.Tensor:
        return softclip(self.raw_log_sigma, self.min_log_sigma)


class CalibratedSigmaGaussian(SharedSigmaGaussian):
    """Gaussian, one calibrated sigma shared by all pixels (sigma-VAE): sigma^2 = the training batches'
    mean squared error per pixel, a running mean of it.

    In training mode sigma^2 is the batch's MSE per pixel (detached), which also moves the running mean by
    `momentum` (as BatchNorm's); otherwise it is that running mean, so evaluation has one fixed density.
    Clamped at `min_log_sigma` (it has no gradient, so sigma^2 is exactly the MSE above the floor)."""

    calibrated_mse: torch.Tensor

    def __init__(self, pixel_range: Sequence[float], min_log_sigma: float, momentum: float) -> None:
        super().__init__(pixel_range, min_log_sigma)
        require(0 < momentum <= 1, "model.likelihood.momentum", momentum, "must be in (0, 1]")
        self.momentum = float(momentum)
        self.register_buffer("calibrated_mse", torch.ones(()))

    def log_sigma(self, squared_error: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and squared_error is not None:
            mse = squared_error.detach().float().mean()
            with torch.no_grad():
                self.calibrated_mse.lerp_(mse, self.momentum)
        else:
            mse = self.calibrated_mse
        return (0.5 * mse.log()).clamp(min=self.min_log_sigma)
