"""Adversarial losses as small named functions on discriminator logits, picked by `model.loss`."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def d_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """The study's discriminator loss: BCE of real vs 1 (or a smoothed label) and fake vs 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: -log D(G(z)), i.e. BCE of fakes vs 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Hinge discriminator loss (SNGAN, BigGAN); `real_label` < 1 narrows the real margin."""
    return F.relu(real_label - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: -D(G(z))."""
    return -fake_logits.mean()


ADVERSARIAL_LOSSES: dict[str, tuple[Callable, Callable]] = {
    "bce": (d_bce, g_bce),
    "hinge": (d_hinge, g_hinge),
}


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL[N(mu, exp(logvar)) || N(0, I)] summed over latent dimensions, one value per image."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
