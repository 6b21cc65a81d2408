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


def d_ls(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Least-squares discriminator loss (LSGAN, Mao et al. 2017): targets 1 on real, 0 on fake."""
    return 0.5 * (real_logits - real_label).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def g_ls(fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss: D's output on fakes pulled to the real target 1."""
    return 0.5 * (fake_logits - 1.0).pow(2).mean()


ADVERSARIAL_LOSSES: dict[str, tuple[Callable, Callable]] = {
    "bce": (d_bce, g_bce),
    "hinge": (d_hinge, g_hinge),
    "ls": (d_ls, g_ls),
}


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 on real images, which must require grad; a graph is
    kept so D's loss can backpropagate through it. Zero where D is flat around the data."""
    (gradients,) = torch.autograd.grad(
        real_logits.sum(), real_images, create_graph=True, materialize_grads=True
    )
    return gradients.pow(2).flatten(1).sum(dim=1).mean()


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans et al. 2016): ||mean f(real) - mean f(fake)||^2 over D's features."""
    return (real_features.mean(dim=0) - fake_features.mean(dim=0)).pow(2).sum()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL[N(mu, exp(logvar)) || N(0, I)] summed over latent dimensions, one value per image."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
