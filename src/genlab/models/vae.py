"""The VAE: ELBO = reconstruction + beta * KL to a standard-normal prior, with reparameterisation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch

from genlab.compat import trainer_datamodule
from genlab.errors import ConfigError, require
from genlab.models.base import GenerativeModel
from genlab.models.legacy import upgrade_vae_hparams, upgrade_vae_state
from genlab.models.likelihoods import Likelihood
from genlab.models.losses import gaussian_kl
from genlab.models.priors import adopt_prior_state

POSTERIOR_SCALES = ("log_std", "log_var")


class VAE(GenerativeModel):
    """A Gaussian-posterior VAE around an injected encoder and decoder, a likelihood and a prior.

    The encoder outputs 2 x `latent_dim` numbers: the posterior mean and its log-std (study A) or
    log-variance (study B), chosen by `posterior_scale`. Losses are summed per image and averaged over the
    batch, so `recon` and `kl` are in nats-like units per image, not per pixel. `likelihood` is p(x|z)
    (genlab.models.likelihoods); its bounds are lower bounds on log p(x) (higher is better), densities for
    the Gaussians, so only comparable between models with the same likelihood. They use the N(0, I) prior
    trained with; `prior` (genlab.models.priors) is what samples are drawn from, N(0, I) or a mixture
    fitted after training.

    `kl_warmup_steps` ramps the KL's weight in the TRAINING loss from 0 to `beta`; validation and the bounds
    always weigh it with `beta` (1: the ELBO)."""

    can_encode = True
    has_likelihood = True

    def __init__(
        self,
        encoder: Mapping[str, Any],
        decoder: Mapping[str, Any],
        image_shape: Sequence[int],
        latent_dim: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        beta: float,
        likelihood: Mapping[str, Any],
        posterior_scale: str,
        pixel_range: Sequence[float],
        kl_warmup_steps: int,
        prior: Mapping[str, Any],
    ) -> None:
        super().__init__(image_shape, latent_dim, pixel_range)
        require(beta >= 0, "model.beta", beta, "must be >= 0 (1 is the ELBO)")
        scales, warmup = POSTERIOR_SCALES, kl_warmup_steps
        require(
            posterior_scale in scales, "model.posterior_scale", posterior_scale, f"choose one of {scales}"
        )
        valid = isinstance(warmup, int) and warmup >= 0
        require(valid, "model.kl_warmup_steps", warmup, "must be an integer >= 0 (0: no warm-up)")
        sizes = {"image_shape": self.image_shape}
        self.encoder = self.build_net("encoder", **sizes, out_features=2 * self.latent_dim)
        self.decoder = self.build_net("decoder", latent_dim=self.latent_dim, image_shape=self.image_shape)
        self.likelihood: Likelihood = self.build_part("likelihood", pixel_range=self.pixel_range)
        self.prior = self.build_part("prior", latent_dim=self.latent_dim)

    @classmethod
    def upgrade_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        return upgrade_vae_hparams(super().upgrade_hparams(hparams))

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of q(z|x)."""
        mu, scale = self.encoder(images).chunk(2, dim=1)
        logvar = 2.0 * scale if self.hparams.posterior_scale == "log_std" else scale
        return mu, logvar

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The latent codes of `images`: their posterior means."""
        return self.posterior(images)[0]

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): a sample that gradients flow through."""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in the pixel range from latent vectors: the likelihood's mean."""
        return self.likelihood.mean(self.decoder(z))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` latent vectors from the prior (a fittable one draws N(0, I) until it is fitted)."""
        return self.prior.sample(n, generator, self.device).to(self.device)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode the posterior means of `images` (deterministic reconstructions)."""
        return self.decode(self.posterior(images)[0])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(images)

    def reconstruction_methods(
        self,
    ) -> dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
        """`posterior mean`: decode the mean of q(z|x); `posterior sample`: decode one draw from it."""

        def mean(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mu = self.posterior(images)[0]
            return mu, self.decode(mu)

        def sample(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.reparameterize(*self.posterior(images))
            return z, self.decode(z)

        return {"posterior mean": mean, "posterior sample": sample}

    def log_likelihood(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image [N]."""
        return -(self.likelihood.nll(logits, images) + self.likelihood.constant(images))

    def elbo_terms(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image, at one reparameterised posterior sample: the reconstruction loss (the likelihood's
        `nll`) and KL[q(z|x) || N(0, I)] (in closed form)."""
        mu, logvar = self.posterior(images)
        logits = self.decoder(self.reparameterize(mu, logvar))
        return self.likelihood.nll(logits, images), gaussian_kl(mu, logvar)

    def loss(self, images: torch.Tensor, kl_weight: float | None = None) -> dict[str, torch.Tensor]:
        """The negative ELBO's terms, each averaged over the batch: loss = recon + kl_weight * kl, where
        kl_weight is `beta` unless given (the warm-up's weight in training)."""
        recon, kl = (term.mean() for term in self.elbo_terms(images))
        weight = self.hparams.beta if kl_weight is None else kl_weight
        return {"loss": recon + weight * kl, "recon": recon, "kl": kl}

    def kl_weight(self) -> float:
        """The KL's weight in this training batch's loss: `beta`, ramped linearly from 0 over the first
        `kl_warmup_steps` optimiser steps (one per batch, unless trainer.accumulate_grad_batches > 1)."""
        warmup = self.hparams.kl_warmup_steps
        return self.hparams.beta if warmup == 0 else self.hparams.beta * min(1.0, self.global_step / warmup)

    @torch.no_grad()
    def elbo(self, images: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """log p(x|z) - KL[q(z|x) || N(0, I)] per image [N], E_q by `n_samples` draws: a bound on log p(x)."""
        draws = [self.elbo_terms(images) for _ in range(n_samples)]
        recon = torch.stack([recon for recon, _ in draws]).mean(0)
        return -(recon + self.likelihood.constant(images)) - draws[0][1]

    @torch.no_grad()
    def iwae_bound(self, images: torch.Tensor, k: int, chunk: int = 500) -> torch.Tensor:
        """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x), per image [N]; k=1 is a one-sample ELBO."""
        require(k >= 1, "iwae_k", k, "must be a positive integer (e.g. 5000 for a final number)")
        mu, logvar = self.posterior(images)
        log_weights = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = torch.randn(len(images), n, mu.shape[1], device=mu.device)
            z = mu.unsqueeze(1) + eps * (0.5 * logvar).exp().unsqueeze(1)
            logits = self.decoder(z.flatten(0, 1))
            repeated = images.unsqueeze(1).expand(-1, n, *images.shape[1:]).flatten(0, 1)
            log_px = self.log_likelihood(logits, repeated).view(len(images), n)
            log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)  # the N(0, I) trained with
            # log q(z|x) from the standard draw: (z - mu)^2 / var is eps^2. Computed from z it is 0 / 0 (NaN)
            # once a posterior variance underflows float32 (logvar < -87, as an over-fit encoder's can).
            log_qz = -0.5 * (eps**2 + logvar.unsqueeze(1) + math.log(2 * math.pi)).sum(-1)
            log_weights.append(log_px + log_pz - log_qz)
        return torch.logsumexp(torch.cat(log_weights, dim=1), dim=1) - math.log(k)

    @torch.no_grad()
    def reconstruction_error(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction loss of each image at its posterior mean [N]."""
        return self.likelihood.nll(self.decoder(self.posterior(images)[0]), images)

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        # The step's scalars go back to Lightning, which hands them to genlab.callbacks.TrainingScalars:
        # logged as train/* for every batch, without a host synchronisation per step (no `self.log` here).
        terms = self.loss(batch[0], self.kl_weight())
        return {"loss": terms["loss"], "recon": terms["recon"].detach(), "kl": terms["kl"].detach()}

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, _ = batch
        terms = self.loss(images)
        # Epoch means, averaged over the DDP ranks: every rank sees the same val/loss, hence the same best
        # checkpoint.
        for name, value in terms.items():
            self.log(f"val/{name}", value, prog_bar=name == "loss", batch_size=len(images), sync_dist=True)
        return terms["loss"]

    def setup(self, stage: str) -> None:
        # Binary pixels (data.binarize) have a Bernoulli likelihood: any other one would be a wrong density.
        binarize = getattr(trainer_datamodule(self.trainer), "binarize", None)
        if binarize is not None and not self.likelihood.binary:
            raise ConfigError(
                f"data.binarize={binarize!r} needs likelihood=bernoulli (binary pixels have a Bernoulli "
                f"likelihood), but model.likelihood is {type(self.likelihood).__name__}: add "
                "likelihood=bernoulli, or data.binarize=null to keep grey pixels"
            )

    def configure_callbacks(self) -> list[L.Callback]:
        # A fittable prior is fitted ex post by its callback, whatever the run's callback list.
        from genlab.callbacks.latent_prior import FitLatentPrior

        return [FitLatentPrior()] if self.prior.fittable else []

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        upgrade_vae_state(checkpoint["state_dict"])
        adopt_prior_state(self.prior, checkpoint["state_dict"], "prior.")

    def configure_optimizers(self):
        optimizer, scheduler = self.make_optimizer(
            "optimizer", self.parameters(), self.trainer.gradient_clip_val
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
