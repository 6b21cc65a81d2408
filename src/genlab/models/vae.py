"""The VAE: ELBO = reconstruction + beta * KL to a standard-normal prior, with reparameterisation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import require
from genlab.models.base import GenerativeModel, build_net, build_optimizer, check_optimizer, plain
from genlab.models.losses import gaussian_kl

#: the likelihood p(x|z) each reconstruction loss implies (evaluate.py writes it beside the bounds)
LIKELIHOODS = {
    "mse": "Gaussian, fixed variance 1/2 per pixel: -log p(x|z) = sum sq. error + D/2 log(pi)",
    "bce": "Bernoulli on the decoder logits: -log p(x|z) = summed binary cross-entropy",
}
RECON_LOSSES = tuple(LIKELIHOODS)
POSTERIOR_SCALES = ("log_std", "log_var")
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.9, 0.999]}


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


class VAE(GenerativeModel):
    """A Gaussian-posterior VAE around an injected encoder and decoder.

    The encoder outputs 2 x `latent_dim` numbers: the posterior mean and its log-std (study A) or
    log-variance (study B), chosen by `posterior_scale`. Losses are summed per image and averaged over
    the batch, so `recon` and `kl` are in nats-like units per image, not per pixel.

    The likelihood p(x|z) is the one `recon_loss` implies:
    - `bce`: Bernoulli with the decoder's logits, -log p(x|z) = BCE summed over pixels;
    - `mse`: Gaussian with mean sigmoid(logits) and FIXED variance 1/2 per pixel, the variance for which the
      summed squared error is exactly the negative log-density up to a constant:
      -log p(x|z) = sum (x - mean)^2 + (D/2) log(pi), D = number of pixel values.
    Its bounds are lower bounds on log p(x) (higher is better); they are densities for `mse`, so only
    comparable between models with the same likelihood.
    """

    can_encode = True
    has_likelihood = True

    def __init__(
        self,
        encoder: Mapping[str, Any],
        decoder: Mapping[str, Any],
        image_shape: Sequence[int],
        latent_dim: int = 20,
        optimizer: Mapping[str, Any] = DEFAULT_OPTIMIZER,
        scheduler: Mapping[str, Any] | None = None,
        beta: float = 1.0,
        recon_loss: str = "mse",
        posterior_scale: str = "log_std",
        pixel_range: Sequence[float] = (0.0, 1.0),
    ) -> None:
        encoder, decoder, image_shape, optimizer, scheduler, pixel_range = map(
            plain, (encoder, decoder, image_shape, optimizer, scheduler, pixel_range)
        )
        super().__init__(image_shape, latent_dim, pixel_range)
        self.save_hyperparameters(logger=False)  # train() logs the whole run config instead
        check_optimizer(optimizer, "model.optimizer")
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

    @property
    def likelihood(self) -> str:
        """The likelihood p(x|z) that the bounds are computed with."""
        return LIKELIHOODS[self.hparams.recon_loss]

    def likelihood_constant(self, images: torch.Tensor) -> float:
        """-log p(x|z) minus the reconstruction loss: (D/2) log(pi) for `mse`, 0 for `bce`."""
        return 0.5 * images[0].numel() * math.log(math.pi) if self.hparams.recon_loss == "mse" else 0.0

    def log_likelihood(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image [N]."""
        return -(self.reconstruction_loss(logits, images) + self.likelihood_constant(images))

    def elbo_terms(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image, at one reparameterised posterior sample: the reconstruction loss and
        KL[q(z|x) || N(0, I)] (in closed form)."""
        mu, logvar = self.encode(images)
        logits = self.decode_logits(self.reparameterize(mu, logvar))
        return self.reconstruction_loss(logits, images), gaussian_kl(mu, logvar)

    def loss(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The negative ELBO's terms, each averaged over the batch: loss = recon + beta * kl."""
        recon, kl = self.elbo_terms(images)
        recon, kl = recon.mean(), kl.mean()
        return {"loss": recon + self.hparams.beta * kl, "recon": recon, "kl": kl}

    @torch.no_grad()
    def elbo(self, images: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """log p(x|z) - KL[q(z|x) || N(0, I)] per image [N], E_q by `n_samples` draws: a bound on log p(x)."""
        draws = [self.elbo_terms(images) for _ in range(n_samples)]
        recon = torch.stack([recon for recon, _ in draws]).mean(0)
        return -(recon + self.likelihood_constant(images)) - draws[0][1]

    @torch.no_grad()
    def iwae_bound(self, images: torch.Tensor, k: int, chunk: int = 500) -> torch.Tensor:
        """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x), per image [N]; k=1 is a one-sample ELBO."""
        require(k >= 1, "iwae_k", k, "must be a positive integer (e.g. 5000 for a final number)")
        mu, logvar = self.encode(images)
        log_weights = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            z = mu.unsqueeze(1) + torch.randn(len(images), n, mu.shape[1], device=mu.device) * (
                0.5 * logvar
            ).exp().unsqueeze(1)
            logits = self.decode_logits(z.flatten(0, 1))
            repeated = images.unsqueeze(1).expand(-1, n, *images.shape[1:]).flatten(0, 1)
            log_px = self.log_likelihood(logits, repeated).view(len(images), n)
            log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            log_qz = gaussian_log_density(z, mu.unsqueeze(1), logvar.unsqueeze(1))
            log_weights.append(log_px + log_pz - log_qz)
        return torch.logsumexp(torch.cat(log_weights, dim=1), dim=1) - math.log(k)

    @torch.no_grad()
    def reconstruction_error(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction loss of each image at its posterior mean [N]."""
        mu, _ = self.encode(images)
        return self.reconstruction_loss(self.decode_logits(mu), images)

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        # The step's scalars go back to Lightning, which hands them to genlab.callbacks.TrainingScalars:
        # logged as train/* for every batch, without a host synchronisation per step (no `self.log` here).
        images, _ = batch
        terms = self.loss(images)
        return {"loss": terms["loss"], "recon": terms["recon"].detach(), "kl": terms["kl"].detach()}

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, _ = batch
        terms = self.loss(images)
        # Epoch means, averaged over the DDP ranks: every rank sees the same val/loss, hence the same best
        # checkpoint.
        for name, value in terms.items():
            self.log(f"val/{name}", value, prog_bar=name == "loss", batch_size=len(images), sync_dist=True)
        return terms["loss"]

    def configure_optimizers(self):
        optimizer, scheduler = build_optimizer(
            self.hparams.optimizer, self.hparams.scheduler, self.parameters()
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
