"""A post-hoc encoder for a trained GAN: E learns to map images to G's latents, with G frozen.

Trained after G, from the GAN's checkpoint (`model.gan_ckpt`), on two terms per batch:
- `latent_weight` x ||E(G(z)) - z||^2 (mean over the latent's coordinates), on fresh prior draws: E inverts
  G on G's own images, where the right answer is known;
- `reconstruction_weight` x d(G(E(x)), x) on the real training images, d the pixel MSE plus
  `feature_weight` x genlab.metrics.perceptual's feature distance: E lands where G reproduces real images.

G is the one that draws the GAN's samples (its EMA when it has one), always in eval mode. The checkpoint holds
the whole GAN beside E, so it samples, evaluates and draws like the GAN, and reconstructs in one pass;
`generator_fingerprint` names G's weights, so an encoder is never paired with another G.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from genlab.compat import trainer_datamodule
from genlab.errors import ConfigError, require
from genlab.models.base import GenerativeModel
from genlab.models.gan import GAN


def generator_fingerprint(gan: GAN) -> str:
    """sha256 of the weights of the generator that draws `gan`'s samples (its EMA if any). Buffers are left
    out: an EMA G's standing BatchNorm statistics are recomputed before each drawing."""
    net = gan.generator_ema if gan.generator_ema is not None else gan.generator
    digest = hashlib.sha256()
    for name, tensor in sorted(net.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_gan(gan_ckpt: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The hyperparameters and weights of a GAN checkpoint; a clear error for anything else."""
    from genlab.checkpoints import read_checkpoint

    checkpoint = read_checkpoint(gan_ckpt)
    target = checkpoint["genlab"]["_target_"]
    if target != "genlab.models.gan.GAN":
        raise ConfigError(
            f"model.gan_ckpt={gan_ckpt!r} holds a {target.rsplit('.', 1)[-1]}, not a GAN: give the "
            "checkpoint of a model=gan run (e.g. <best_mnist_gan run>/checkpoints/last.ckpt)"
        )
    return dict(checkpoint["hyper_parameters"]), checkpoint["state_dict"]


class GANEncoder(GenerativeModel):
    """A frozen GAN (`gan`) and an encoder net trained to invert its generator."""

    can_encode = True
    invertible = True

    def __init__(
        self,
        gan_ckpt: str | None,
        encoder: Mapping[str, Any],
        image_shape: Sequence[int],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        latent_weight: float,
        reconstruction_weight: float,
        feature_weight: float,
        pixel_range: Sequence[float],
        gan: Mapping[str, Any] | None = None,
    ) -> None:
        weights = None
        if gan is None:
            require(
                bool(gan_ckpt),
                "model.gan_ckpt",
                gan_ckpt,
                "give the trained GAN: model.gan_ckpt=<model=gan run>/checkpoints/last.ckpt",
            )
            gan, weights = read_gan(str(gan_ckpt))
        gan = dict(gan)
        super().__init__(image_shape, gan["latent_dim"], pixel_range)
        if list(self.pixel_range) != [float(v) for v in gan["pixel_range"]]:
            raise ConfigError(
                f"model.pixel_range={list(pixel_range)} is invalid: the GAN of model.gan_ckpt draws images "
                f"in {list(gan['pixel_range'])}; set model.pixel_range={list(gan['pixel_range'])}"
            )
        self.hparams["gan"] = gan  # the checkpoint rebuilds the GAN from these, without gan_ckpt's file
        if list(self.image_shape) != list(gan["image_shape"]):
            raise ConfigError(
                f"data gives images of {list(self.image_shape)}, but the GAN of model.gan_ckpt was trained "
                f"on {list(gan['image_shape'])}: train the encoder on the GAN's data (its data=... and "
                "data.image_size)"
            )
        for key, value in (
            ("latent_weight", latent_weight),
            ("reconstruction_weight", reconstruction_weight),
        ):
            require(value >= 0, f"model.{key}", value, "must be >= 0")
        require(
            latent_weight + reconstruction_weight > 0,
            "model.latent_weight",
            latent_weight,
            "and model.reconstruction_weight cannot both be 0",
        )
        require(feature_weight >= 0, "model.feature_weight", feature_weight, "must be >= 0 (0: pixels only)")
        self.gan = GAN(**gan)
        if weights is not None:
            self.gan.load_state_dict(weights)
        self.gan.requires_grad_(False)
        self.noise = self.gan.noise
        self.encoder = self.build_net("encoder", image_shape=self.image_shape, out_features=self.latent_dim)
        self.distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        #: the checkpoint it was loaded from, when it reconstructs for a GAN checkpoint (metrics.json says so)
        self.source: str | None = None

    @property
    def has_ema(self) -> bool:
        return self.gan.has_ema

    @property
    def sample_from_ema(self) -> bool:
        return self.gan.sample_from_ema

    @sample_from_ema.setter
    def sample_from_ema(self, value: bool) -> None:
        self.gan.sample_from_ema = value

    def train(self, mode: bool = True) -> GANEncoder:
        super().train(mode)
        self.gan.eval()  # G is frozen: its BatchNorm statistics stay those it was trained with
        return self

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.gan.generate(z)

    def prepare_sampling(self) -> None:
        self.gan.prepare_sampling()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """E(images): the latents whose G images reconstruct them, in one forward pass."""
        z = self.encoder(images)
        return z.clamp(-1.0, 1.0) if self.noise == "uniform" else z

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.generate(self.encode(images))

    def reconstruction_methods(
        self,
    ) -> dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
        def encoder(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.encode(images)
            return z, self.generate(z)

        return {"encoder": encoder}

    @property
    def fingerprint(self) -> str:
        return generator_fingerprint(self.gan)

    def setup(self, stage: str) -> None:
        from genlab.cache import cache_dir
        from genlab.metrics.perceptual import for_data

        datamodule = trainer_datamodule(self.trainer)
        if self.hparams.feature_weight > 0 and datamodule is not None:
            distance = for_data(
                datamodule,
                cache_dir(getattr(datamodule, "cache_dir", None)),
                1.0,
                self.hparams.feature_weight,
            ).to(self.device)
            # a bound method, not a submodule: the frozen feature net stays out of the checkpoint
            self.distance = distance.__call__

    def on_fit_start(self) -> None:
        with torch.no_grad():
            self.prepare_sampling()  # the EMA G's standing statistics, once: G does not change

    def image_distance(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per image: pixel MSE (+ the feature term) in [0, 1] units."""
        images, targets = self.to_unit(images), self.to_unit(targets)
        if self.distance is None:
            return (images - targets).pow(2).flatten(1).mean(1)
        return self.distance(images, targets)

    def loss(self, real: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        z = self.sample_latent(len(real), generator)
        with torch.no_grad():
            fake = self.generate(z)
        latent = (self.encode(fake) - z).pow(2).mean(1).mean()
        reconstruction = self.image_distance(self.generate(self.encode(real)), real).mean()
        total = self.hparams.latent_weight * latent + self.hparams.reconstruction_weight * reconstruction
        return {"loss": total, "latent": latent.detach(), "reconstruction": reconstruction.detach()}

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.loss(batch[0])

    def validation_step(self, batch, batch_idx: int) -> None:
        real = batch[0]
        generator = torch.Generator(device="cpu").manual_seed(batch_idx)  # the same draws every epoch
        terms = self.loss(real, generator)
        mse = (self.to_unit(self.reconstruct(real)) - self.to_unit(real)).pow(2).mean()
        values = {f"val/{name}": value for name, value in terms.items()} | {"val/mse": mse}
        self.log_dict(values, prog_bar=True, batch_size=len(real), sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["genlab"]["generator_fingerprint"] = self.fingerprint

    def configure_optimizers(self):
        optimizer, scheduler = self.make_optimizer("optimizer", self.encoder.parameters())
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
