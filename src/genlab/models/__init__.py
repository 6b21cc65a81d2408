"""LightningModules: the training logic of the VAE and the GAN (their nets live in genlab.nets)."""

from genlab.models.base import GenerativeModel
from genlab.models.gan import GAN
from genlab.models.vae import VAE

__all__ = ["GAN", "VAE", "GenerativeModel"]
