"""The VAE: ELBO = reconstruction + beta * KL to a standard-normal prior, with reparameterisation."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError, require
from genlab.models.base import GenerativeModel, build_net, build_optimizer, check_optimizer, plain
from genlab.models.losses import gaussian_kl
from genlab.models.priors import GaussianMixturePrior

if TYPE_CHECKING:
    from genlab.data.base import ImageDataModule

log = logging.getLogger(__name__)

#: the likelihood p(x|z) each reconstruction loss implies (evaluate.py writes it beside the bounds)
LIKELIHOODS = {
    "mse": "Gaussian, fixed variance 1/2 per pixel: -log p(x|z) = sum sq. error + D/2 log(pi)",
    "bce": "Bernoulli on the decoder logits: -log p(x|z) = summed binary cross-entropy",
    "gaussian_learned": (
        "Gaussian, one learned sigma shared by all pixels (its log soft-clipped to > -6): "
        "-log p(x|z) = sum sq. error / (2 sigma^2) + D log(sigma) + D/2 log(2 pi)"
    ),
    "gaussian_calibrated": (
        "Gaussian, one calibrated sigma shared by all pixels (sigma-VAE: sigma^2 = the training batches' "
        "mean squared error per pixel, a running mean of it here, sigma >= e^-6): "
        "-log p(x|z) = sum sq. error / (2 sigma^2) + D log(sigma) + D/2 log(2 pi)"
    ),
}
RECON_LOSSES = tuple(LIKELIHOODS)
GAUSSIAN_LOSSES = ("gaussian_learned", "gaussian_calibrated")
#: sigma >= about e^-6 (sigma-VAE's bound): a decoder that fits the pixels exactly cannot drive sigma to 0
MIN_LOG_SIGMA = -6.0
#: the weight of each training batch's MSE in gaussian_calibrated's running mean (as BatchNorm's momentum)
CALIBRATION_MOMENTUM = 0.1
POSTERIOR_SCALES = ("log_std", "log_var")
PRIORS = ("standard", "gmm")
#: prior=gmm fits its mixture to the posterior means of at most this many training images (a fixed subset),
#: at every checkpoint: on MNIST's 55,000 the encoder pass took 26 s and EM 5 s on one CPU thread, with
#: 10,000 about 5 s in all; they fit the 10 x 230 numbers of a 20-d full-covariance mixture as well
GMM_FIT_IMAGES = 10_000
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.9, 0.999]}


def softclip(values: torch.Tensor, minimum: float) -> torch.Tensor:
    """A smooth max(values, minimum) that keeps a gradient: minimum + softplus(values - minimum)."""
    return minimum + F.softplus(values - minimum)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


class VAE(GenerativeModel):
    """A Gaussian-posterior VAE around an injected encoder and decoder.

    The encoder outputs 2 x `latent_dim` numbers: the posterior mean and its log-std (study A) or
    log-variance (study B), chosen by `posterior_scale`. Losses are summed per image and averaged over
    the batch, so `recon` and `kl` are in nats-like units per image, not per pixel.

    The likelihood p(x|z) is the one `recon_loss` implies:
    - `bce`: Bernoulli with the decoder's logits, -log p(x|z) = BCE summed over pixels; with binary pixels
      (`data.binarize: dynamic`) its bounds are the binarised-MNIST log-likelihoods of the literature;
    - `mse`: Gaussian with mean sigmoid(logits) and FIXED variance 1/2 per pixel, the variance for which the
      summed squared error is exactly the negative log-density up to a constant:
      -log p(x|z) = sum (x - mean)^2 + (D/2) log(pi), D = number of pixel values. Against a trained
      model's per-pixel MSE of a few hundredths, that weighs the KL like a beta of 0.5 / MSE (~10-30)
      against the pixels' fit: study A's blurry samples;
    - `gaussian_learned`, `gaussian_calibrated`: Gaussian with mean sigmoid(logits) and ONE sigma shared by
      all pixels, learned, or set to the optimum sqrt(MSE) of the training batch (Rybkin et al. 2021,
      sigma-VAE). `recon` is then the whole -log p(x|z). Shared, not per pixel: the sigma of each of
      MNIST's always-black border pixels would shrink to its floor, and their ~5 nats each of density
      would dominate the bound while saying nothing about the digits; a shared one balances pixels and KL
      as sigma-VAE found to work.
    Its bounds are lower bounds on log p(x) (higher is better); they are densities for the Gaussians, so
    only comparable between models with the same likelihood. They use the N(0, I) prior trained with.

    `kl_warmup_steps` ramps the KL's weight in the TRAINING loss from 0 to `beta`; validation and the
    bounds always weigh it with `beta` (1: the ELBO). `prior: gmm` fits a Gaussian mixture to the
    training images' posterior means (GaussianMixturePrior; at most GMM_FIT_IMAGES of them) before each
    checkpoint is written and at the end of training, and samples from it instead of N(0, I) once fitted.
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
        kl_warmup_steps: int = 0,
        prior: str = "standard",
        gmm_components: int = 10,
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
        require(
            isinstance(kl_warmup_steps, int) and kl_warmup_steps >= 0,
            "model.kl_warmup_steps",
            kl_warmup_steps,
            "must be an integer >= 0 (0: no warm-up)",
        )
        require(prior in PRIORS, "model.prior", prior, f"choose one of {PRIORS}")
        require(
            isinstance(gmm_components, int) and gmm_components >= 1,
            "model.gmm_components",
            gmm_components,
            "must be a positive integer",
        )
        self.encoder = build_net(
            encoder, "model.encoder", image_shape=self.image_shape, out_features=2 * self.latent_dim
        )
        self.decoder = build_net(
            decoder, "model.decoder", latent_dim=self.latent_dim, image_shape=self.image_shape
        )
        # Only the chosen likelihood's and prior's tensors: the checkpoints of the others stay as they were.
        if recon_loss == "gaussian_learned":
            self.log_sigma = nn.Parameter(torch.zeros(()))
        if recon_loss == "gaussian_calibrated":
            self.register_buffer("calibrated_mse", torch.ones(()))
        if prior == "gmm":
            self.latent_prior = GaussianMixturePrior(self.latent_dim, gmm_components)
        self._trained_since_prior_fit = False

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
        """Per-image reconstruction loss, summed over pixels: squared error (`mse`), Bernoulli cross-entropy
        (`bce`), or the Gaussian negative log-density with the shared sigma (`gaussian_*`)."""
        if self.hparams.recon_loss == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(logits, images, reduction="none")
        else:
            per_pixel = (self.output_activation(logits) - images).pow(2)
            if self.hparams.recon_loss in GAUSSIAN_LOSSES:
                log_sigma = self.pixel_log_sigma(per_pixel)
                variance = (2.0 * log_sigma).exp()
                per_pixel = 0.5 * per_pixel / variance + log_sigma + 0.5 * math.log(2 * math.pi)
        return per_pixel.flatten(1).sum(dim=1)

    def pixel_log_sigma(self, squared_error: torch.Tensor | None = None) -> torch.Tensor:
        """log sigma of the `gaussian_*` likelihoods. Learned: the parameter, soft-clipped at MIN_LOG_SIGMA
        (sigma-VAE's clip, which keeps a gradient). Calibrated, clamped at MIN_LOG_SIGMA (it has no
        gradient, so sigma^2 is exactly the MSE above it): in training mode the batch's MSE per pixel
        (`squared_error`, detached), which also updates its running mean; otherwise that running mean, so
        evaluation has one fixed density."""
        if self.hparams.recon_loss == "gaussian_learned":
            return softclip(self.log_sigma, MIN_LOG_SIGMA)
        if self.training and squared_error is not None:
            mse = squared_error.detach().float().mean()
            with torch.no_grad():
                self.calibrated_mse.lerp_(mse, CALIBRATION_MOMENTUM)
        else:
            mse = self.calibrated_mse
        return (0.5 * mse.log()).clamp(min=MIN_LOG_SIGMA)

    @property
    def likelihood(self) -> str:
        """The likelihood p(x|z) that the bounds are computed with (with its sigma, for the Gaussians)."""
        text = LIKELIHOODS[self.hparams.recon_loss]
        if self.hparams.recon_loss in GAUSSIAN_LOSSES:
            text += f"; sigma = {float(self.pixel_log_sigma().exp()):.6g}"
        return text

    def likelihood_constant(self, images: torch.Tensor) -> float:
        """-log p(x|z) minus the reconstruction loss: (D/2) log(pi) for `mse`, 0 for the others."""
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

    def loss(self, images: torch.Tensor, kl_weight: float | None = None) -> dict[str, torch.Tensor]:
        """The negative ELBO's terms, each averaged over the batch: loss = recon + kl_weight * kl, where
        kl_weight is `beta` unless given (the warm-up's weight in training)."""
        recon, kl = self.elbo_terms(images)
        recon, kl = recon.mean(), kl.mean()
        weight = self.hparams.beta if kl_weight is None else kl_weight
        return {"loss": recon + weight * kl, "recon": recon, "kl": kl}

    def kl_weight(self) -> float:
        """The KL's weight in this training batch's loss: `beta`, ramped linearly from 0 over the first
        `kl_warmup_steps` optimiser steps (one per batch, unless trainer.accumulate_grad_batches > 1)."""
        warmup = self.hparams.kl_warmup_steps
        if warmup == 0:
            return self.hparams.beta
        return self.hparams.beta * min(1.0, self.global_step / warmup)

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
            eps = torch.randn(len(images), n, mu.shape[1], device=mu.device)
            z = mu.unsqueeze(1) + eps * (0.5 * logvar).exp().unsqueeze(1)
            logits = self.decode_logits(z.flatten(0, 1))
            repeated = images.unsqueeze(1).expand(-1, n, *images.shape[1:]).flatten(0, 1)
            log_px = self.log_likelihood(logits, repeated).view(len(images), n)
            log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            # log q(z|x) from the standard draw: (z - mu)^2 / var is eps^2. Computed from z it is 0 / 0 (NaN)
            # once a posterior variance underflows float32 (logvar < -87, as an over-fit encoder's can).
            log_qz = -0.5 * (eps**2 + logvar.unsqueeze(1) + math.log(2 * math.pi)).sum(-1)
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
        terms = self.loss(images, self.kl_weight())
        self._trained_since_prior_fit = True
        return {"loss": terms["loss"], "recon": terms["recon"].detach(), "kl": terms["kl"].detach()}

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, _ = batch
        terms = self.loss(images)
        # Epoch means, averaged over the DDP ranks: every rank sees the same val/loss, hence the same best
        # checkpoint.
        for name, value in terms.items():
            self.log(f"val/{name}", value, prog_bar=name == "loss", batch_size=len(images), sync_dist=True)
        return terms["loss"]

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` latent vectors from N(0, I), or with `prior: gmm` from the mixture once it is fitted: after
        training (evaluate.py, generate.py, a loaded checkpoint). While a trainer fits the model they stay
        N(0, I), the prior it trains with, so that all drawn during training (the pictures' fixed latents,
        the fid callback's samples) comes from one prior every epoch, as in a `prior: standard` run; the
        mixture of the last checkpoint would be stale for the current weights anyway."""
        trainer = self._trainer
        fitting = trainer is not None and trainer.state.fn == "fit" and trainer.state.status == "running"
        if self.hparams.prior == "gmm" and not fitting and bool(self.latent_prior.fitted):
            return self.latent_prior.sample(n, generator).to(self.device)
        return super().sample_latent(n, generator)

    @torch.no_grad()
    def fit_latent_prior(
        self, datamodule: ImageDataModule, max_images: int | None = GMM_FIT_IMAGES, batch_size: int = 1000
    ) -> None:
        """Fit `prior: gmm`'s mixture to the posterior means of `datamodule`'s training images: a fixed
        subset of `max_images` of them (None: all), in eval mode (every module's mode is restored).
        Training calls it; so can a job with a checkpoint whose mixture was never fitted (a
        `prior: standard` run loaded with prior="gmm")."""
        require(self.hparams.prior == "gmm", "model.prior", self.hparams.prior, "fitting a mixture needs gmm")
        images = datamodule.split_images("train")
        if max_images is not None and max_images < len(images):
            subset = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:max_images]
            images = images[subset.sort().values]
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        try:
            means = [
                self.encode(datamodule.to_model_range(batch.to(self.device)))[0].float().cpu()
                for batch in images.split(batch_size)
            ]
        finally:
            for module, training in modes:
                module.training = training
        self.latent_prior.fit(torch.cat(means))
        self._trained_since_prior_fit = False

    def _fit_stale_prior(self) -> bool:
        """With `prior: gmm`, refit the mixture if batches were trained since its last fit (or it never was);
        True if it was refitted."""
        if self.hparams.prior != "gmm" or not (
            self._trained_since_prior_fit or not bool(self.latent_prior.fitted)
        ):
            return False
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if datamodule is None:
            log.warning("model.prior=gmm: no data module to fit the mixture to; samples stay N(0, I)")
            return False
        self.fit_latent_prior(datamodule)
        return True

    def setup(self, stage: str) -> None:
        # Binary pixels (data.binarize) have a Bernoulli likelihood: any other one would be a wrong density.
        binarize = getattr(self.trainer.datamodule, "binarize", None)
        if binarize is not None and self.hparams.recon_loss != "bce":
            raise ConfigError(
                f"data.binarize={binarize!r} needs model.recon_loss=bce (binary pixels have a Bernoulli "
                f"likelihood), but model.recon_loss={self.hparams.recon_loss!r}: add model.recon_loss=bce, "
                "or data.binarize=null to keep grey pixels"
            )

    def on_train_end(self) -> None:
        # prior=gmm: the mixture of the final weights, for samples right after fit (checkpoints fit theirs).
        self._fit_stale_prior()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # prior=gmm: every checkpoint (last, best, interrupted) holds a mixture fitted to its own weights.
        # Lightning took the state_dict before this hook, so the refitted buffers are written into it.
        if self._fit_stale_prior():
            state = checkpoint["state_dict"]
            state.update({f"latent_prior.{name}": t for name, t in self.latent_prior.state_dict().items()})

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint of the other `prior` loads too: a prior=standard one loaded with prior="gmm" gets an
        # unfitted mixture (to fit ex post, Ghosh et al.'s point), and a gmm one loaded as standard drops it.
        state = checkpoint["state_dict"]
        if self.hparams.prior == "gmm":
            for name, tensor in self.latent_prior.state_dict().items():
                state.setdefault(f"latent_prior.{name}", tensor)
        else:
            for key in [key for key in state if key.startswith("latent_prior.")]:
                del state[key]

    def configure_optimizers(self):
        keep_fused = not self.clips_under_mixed_precision(self.trainer.gradient_clip_val)
        optimizer, scheduler = build_optimizer(
            self.hparams.optimizer, self.hparams.scheduler, self.parameters(), keep_fused
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
