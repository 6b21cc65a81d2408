"""LightningModules: the training logic of each model (their nets live in genlab.nets)."""

# Re-exported (`X as X`) so configs can name `genlab.models.VAE`.
from genlab.models.base import GenerativeModel as GenerativeModel
from genlab.models.gan import GAN as GAN
from genlab.models.vae import VAE as VAE
