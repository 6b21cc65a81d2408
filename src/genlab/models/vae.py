"""The VAE: ELBO = reconstruction + beta * KL to a standard-normal prior, with reparameterisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import require
from genlab.models.base import GenerativeModel, build_net, plain
from genlab.models.losses import gaussian_kl

RECON_LOSSES = ("mse", "bce")
POSTERIOR_SCALES = ("log_std", "log_var")


class VAE(GenerativeModel):
    """A Gaussian-posterior VAE around an injected encoder and decoder.

    The encoder outputs 2 x `latent_dim` numbers: the posterior mean and its log-std (study A) or
    log-variance (study B), chosen by `posterior_scale`. Losses are summed per image and averaged over
    the batch, so `recon` and `kl` are in nats-like units per image, not per pixel.
    """

    def __init__(
        self,
        encoder: Mapping[str, Any],
        decoder: Mapping[str, Any],
        image_shape: Sequence[int],
        latent_dim: int = 20,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.9, 0.999),
        beta: float = 1.0,
        recon_loss: str = "mse",
        posterior_scale: str = "log_std",
        pixel_range: Sequence[float] = (0.0, 1.0),
    ) -> None:
        encoder, decoder, image_shape, betas, pixel_range = map(
            plain, (encoder, decoder, image_shape, betas, pixel_range)
        )
        super().__init__(image_shape, latent_dim, pixel_range)
        self.save_hyperparameters(logger=False)  # train() logs the whole run config instead
        require(lr > 0, "model.lr", lr, "must be > 0 (the study uses 2e-4)")
        require(beta >= 0, "model.beta", beta, "must be >= 0 (1 is the ELBO)")
        require(recon_loss in RECON_LOSSES, "model.recon_loss", recon_loss, f"choose one of {RECON_LOSSES}")
        require(
            recon_loss != "bce" or self.pixel_range == (0.0, 1.0),
            "model.recon_loss",
            recon_loss,
            "bce needs pixel_range [0, 1]",
        )
        require(
            posterior_scale in POSTERIOR_SCALES,
            "model.posterior_scale",
            posterior_scale,
            f"choose one of {POSTERIOR_SCALES}",
        )
        self.encoder = build_net(
            encoder, "model.encoder", image_shape=self.image_shape, out_features=2 * self.latent_dim
        )
        self.decoder = build_net(
            decoder, "model.decoder", latent_dim=self.latent_dim, image_shape=self.image_shape
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of q(z|x)."""
        mu, scale = self.encoder(images).chunk(2, dim=1)
        logvar = 2.0 * scale if self.hparams.posterior_scale == "log_std" else scale
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): a sample that gradients flow through."""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output, before the output activation."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in the pixel range from latent vectors."""
        return self.output_activation(self.decode_logits(z))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode the posterior means of `images` (deterministic reconstructions)."""
        mu, _ = self.encode(images)
        return self.decode(mu)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(images)

    def reconstruction_loss(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction loss, summed over pixels: squared error or Bernoulli cross-entropy."""
        if self.hparams.recon_loss == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(logits, images, reduction="none")
        else:
            per_pixel = (self.output_activation(logits) - images).pow(2)
        return per_pixel.flatten(1).sum(dim=1)

    def loss(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The negative ELBO's terms, each averaged over the batch: loss = recon + beta * kl."""
        mu, logvar = self.encode(images)
        logits = self.decode_logits(self.reparameterize(mu, logvar))
        recon = self.reconstruction_loss(logits, images).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": recon + self.hparams.beta * kl, "recon": recon, "kl": kl}

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, _ = batch
        terms = self.loss(images)
        on_step = stage == "train"
        for name, value in terms.items():
            self.log(
                f"{stage}/{name}",
                value,
                on_step=on_step,
                on_epoch=not on_step,
                prog_bar=name == "loss",
                batch_size=len(images),
            )
        return terms["loss"]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
