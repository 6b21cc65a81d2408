"""What every genlab model offers: a latent prior, `generate(z)` and `sample(n)` in its pixel range, and a
small protocol that says what else it can do."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from genlab.compat import attached_trainer, trainer_datamodule
from genlab.errors import ConfigError, require
from genlab.instantiate import build
from genlab.models.ema import EMA
from genlab.nets.recorded import complete_net_configs

log = logging.getLogger(__name__)

PIXEL_RANGES: dict[tuple[float, ...], Callable[[torch.Tensor], torch.Tensor]] = {
    (0.0, 1.0): torch.sigmoid,
    (-1.0, 1.0): torch.tanh,
}


def plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists, so hparams and checkpoints stay weights_only-loadable."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def class_path(obj: object) -> str:
    """The importable `_target_` of an object's class, e.g. 'genlab.models.vae.VAE'."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def build_net(config: Mapping[str, Any], key: str, **sizes: Any) -> nn.Module:
    """Instantiate a net from its `_target_` config, passing the sizes that the model knows."""
    require(
        isinstance(config, Mapping) and "_target_" in config,
        key,
        config,
        "must be a net config with a `_target_` (see conf/nets/)",
    )
    return build(config, key, **sizes)


def check_optimizer(config: Mapping[str, Any], key: str) -> None:
    """Fail at start, naming `key`, for an optimizer config that cannot build an optimizer (no `_target_`,
    not `_partial_`, a bad learning rate or beta), instead of when training begins."""
    require(
        isinstance(config, Mapping) and "_target_" in config and config.get("_partial_") is True,
        key,
        config,
        "must be an optimizer config with `_target_` and `_partial_: true` (see conf/model/)",
    )
    lr = config.get("lr", 1.0)
    require(isinstance(lr, int | float) and lr > 0, f"{key}.lr", lr, "must be > 0")
    try:
        build(config)([nn.Parameter(torch.zeros(1))])
    except (TypeError, ValueError, RuntimeError) as error:
        hint = f" Drop the fused kernel with ~{key}.fused." if "fused" in str(error) else ""
        raise ConfigError(f"{key}={config!r} is invalid: {error}.{hint}") from None


def build_optimizer(
    optimizer: Mapping[str, Any],
    scheduler: Mapping[str, Any] | None,
    parameters,
    keep_fused: bool = True,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """An optimizer from its `_partial_` config over `parameters`, and its lr scheduler (or None).
    Without `keep_fused`, a `fused: true` optimizer is built in torch's default implementation instead."""
    if not keep_fused and optimizer.get("fused"):
        log.info(
            "%s: gradient clipping under mixed precision, which Lightning cannot do for a fused optimizer "
            "(it unscales inside its step): using the unfused %s, the same update",
            optimizer["_target_"],
            optimizer["_target_"],
        )
        optimizer = {key: value for key, value in optimizer.items() if key != "fused"}
    built = build(optimizer)(parameters)
    return built, (build(scheduler)(built) if scheduler else None)


class GenerativeModel(L.LightningModule):
    """Shared by every genlab model: the setup of its parts, shapes, prior, output range, sampling, and the
    checkpoint record.

    A subclass's `__init__` takes its whole config (every value comes from conf/model/<name>.yaml, the
    sizes from the data) and calls `super().__init__(image_shape, latent_dim, pixel_range)` first, which
    saves all its arguments as plain hyperparameters (`self.hparams`), checks them and its optimizer
    configs (`optimizer_keys`); then it builds its nets with `self.build_net(key, **sizes)`.

    A model says what it can do beyond sampling through these class attributes, which pictures, evaluate.py,
    generate.py and the report read (never the model's name):

    - `can_encode`: it has `encode(images) -> latent codes` (the VAE's posterior means, the flow's inverted
      noise) and `reconstruct(images)`; pictures then add reconstructions and interpolations between real
      images. (A Gaussian posterior is the VAE's own: `VAE.posterior`.)
    - `has_likelihood`: it has `elbo(images)`, `iwae_bound(images, k)` and `reconstruction_error(images)`
      (per image, in nats) and a `likelihood` part with a `description`; evaluate.py then adds the test
      bounds.
    - `has_exact_likelihood`: it has `bits_per_dim(uint8 images, generator)`, an exact density on
      dequantised 8-bit images, and `likelihood_description()`; evaluate.py then reports test bits/dim.
    - `draws_trajectories`: it has `trajectory(z, points)`, its images along the way from noise to samples;
      pictures then add the trajectory grid.
    - `invertible`: `generate(z)` is differentiable in z, so GAN inversion (genlab.models.inversion) can
      find the latent of an image by optimisation: the GAN.

    `reconstruction_methods()` names its one-pass reconstructions (the VAE's posterior mean and sample, the
    flow's ODE round trip, the GAN encoder's E then G); genlab.reconstruction adds inversion for an
    invertible model and scores them all under one protocol.

    `sampling_settings()` says what one sample costs (the flow's solver and its function evaluations), and
    `configure_sampler(**settings)` changes the solver of a model that has one.
    """

    can_encode: ClassVar[bool] = False
    has_likelihood: ClassVar[bool] = False
    has_exact_likelihood: ClassVar[bool] = False
    draws_trajectories: ClassVar[bool] = False
    invertible: ClassVar[bool] = False
    #: the hyperparameters that are `_partial_` optimizer configs, checked at construction
    optimizer_keys: ClassVar[tuple[str, ...]] = ("optimizer",)
    #: the prior's family; the GAN can switch to "uniform" noise on [-1, 1]
    noise: str = "normal"

    def __init__(self, image_shape: Sequence[int], latent_dim: int, pixel_range: Sequence[float]) -> None:
        super().__init__()
        # Every argument of the subclass's __init__ (Lightning collects them from the calling frames), as
        # plain data so that checkpoints stay weights_only-loadable; train() logs the whole run config.
        self.save_hyperparameters(logger=False)
        for key, value in list(self.hparams.items()):
            self.hparams[key] = plain(value)
        require(
            len(image_shape) == 3 and all(int(s) > 0 for s in image_shape),
            "model.image_shape",
            list(image_shape),
            "must be [channels, height, width] (train.py takes it from the data module)",
        )
        require(int(latent_dim) > 0, "model.latent_dim", latent_dim, "must be a positive integer")
        pixel_range = tuple(float(v) for v in pixel_range)
        require(pixel_range in PIXEL_RANGES, "model.pixel_range", list(pixel_range), "use [0, 1] or [-1, 1]")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = int(latent_dim)
        self.pixel_range = pixel_range
        self.output_activation = PIXEL_RANGES[pixel_range]
        for key in self.optimizer_keys:
            check_optimizer(self.hparams[key], f"model.{key}")

    @property
    def hparams(self) -> Any:
        """The saved constructor arguments (Lightning's AttributeDict: `self.hparams.beta`), typed as Any so
        that a model reads its own keys without casts."""
        return super().hparams

    @property
    def has_ema(self) -> bool:
        """Whether it keeps an EMA of a net's weights (genlab.models.ema) that draws its samples while its
        `sample_from_ema` is true (evaluate.py's `ema=false` clears it)."""
        return any(isinstance(child, EMA) for child in self.children())

    def build_net(self, key: str, **sizes: Any) -> nn.Module:
        """The net of the `key` hyperparameter (a `_target_` config), given the sizes the model knows."""
        return build_net(self.hparams[key], f"model.{key}", **sizes)

    def build_part(self, key: str, **arguments: Any) -> Any:
        """A part of the model (a likelihood, a prior) from the `key` hyperparameter's `_target_` config."""
        config = self.hparams[key]
        require(
            isinstance(config, Mapping) and "_target_" in config,
            f"model.{key}",
            config,
            f"must be a config with a `_target_` (see conf/{key}/)",
        )
        return build(config, f"model.{key}", **arguments)

    def make_optimizer(self, key: str, parameters, clip: float | None = None):
        """The optimizer of the `key` hyperparameter over `parameters`, and the `scheduler` hyperparameter's
        lr scheduler over it (or None). With gradient clipping (`clip`) under a mixed precision the
        optimizer is not fused (see `build_optimizer`)."""
        keep_fused = not self.clips_under_mixed_precision(clip)
        return build_optimizer(self.hparams[key], self.hparams.get("scheduler"), parameters, keep_fused)

    @classmethod
    def upgrade_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """The hyperparameters of a checkpoint written by an older genlab, in today's form (genlab.checkpoints
        calls it before building the model from a checkpoint): net configs that left out a setting get the
        value their net's code then had. Models whose own config changed extend it."""
        return {**hparams, **complete_net_configs(hparams)}

    def prepare_sampling(self) -> None:
        """Get ready to draw (e.g. an EMA's BatchNorm statistics): sampling code calls it, in eval mode,
        before `generate`. A no-op unless the model has such state."""

    def on_before_optimizer_step(self, optimizer) -> None:
        # Manual optimisation (Trainer(gradient_clip_val) is not available there): a model's `grad_clip`
        # clips here, inside opt.step(), where under 16-mixed Lightning has just unscaled the gradients
        # (clipping in training_step would clip the scaled ones).
        clip = self.hparams.get("grad_clip")
        if not self.automatic_optimization and clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")

    def clips_under_mixed_precision(self, clip: float | None) -> bool:
        """Whether gradients are clipped (`clip` > 0) under a mixed precision: then the optimizers must not
        be fused (see `build_optimizer`)."""
        precision = str(self.trainer.precision) if attached_trainer(self) is not None else "32-true"
        return bool(clip) and "mixed" in precision

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` latent vectors from the prior: N(0, I), or U(-1, 1) for `noise: uniform`."""
        device = generator.device if generator is not None else self.device
        if self.noise == "uniform":
            z = torch.rand(n, self.latent_dim, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return z.to(self.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in the model's pixel range from latent vectors `z`."""
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`generate(z)` (models with an encoder may map images instead)."""
        return self.generate(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` new images from the prior, in the model's pixel range."""
        return self.generate(self.sample_latent(n, generator))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The latent codes of `images` [N, latent_dim] (models with `can_encode`)."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder (can_encode is False)")

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstructions of `images` (models with `can_encode`)."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder (can_encode is False)")

    def reconstruction_methods(
        self,
    ) -> dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
        """One-pass reconstructions by name: images in the model's range -> (their latent codes, their
        reconstructions in the model's range). Models with `can_encode`: `encode` then `generate`."""
        if not self.can_encode:
            return {}

        def encoder(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            codes = self.encode(images)
            return codes, self.generate(codes)

        return {"encoder": encoder}

    def trajectory(self, z: torch.Tensor, points: int) -> torch.Tensor:
        """Images from `z` at `points` stages from noise to sample (models with `draws_trajectories`)."""
        raise NotImplementedError(f"{type(self).__name__} draws in one step (draws_trajectories is False)")

    def sampling_settings(self) -> dict[str, Any]:
        """How a sample is drawn and its function evaluations (NFE): one pass of the net unless overridden."""
        return {"method": "one forward pass", "nfe": 1}

    def configure_sampler(self, **settings: Any) -> None:
        """Change the sampler's settings (`method`, `nfe`, `atol`, `rtol`) of a model that solves an ODE."""
        raise ConfigError(
            f"sampler={settings!r} is invalid: {type(self).__name__} draws a sample in one forward pass and "
            "has no solver to set; drop the sampler.* settings (they are for model=flow)"
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lets genlab.checkpoints tell a genlab model (and its class) from any other file before loading, and
        # rebuild the data it was trained on (evaluate.py, generate.py) from the data module's settings.
        trainer = attached_trainer(self)
        datamodule = trainer_datamodule(trainer) if trainer is not None else None
        data = None
        if datamodule is not None and datamodule.hparams:
            data = {"_target_": class_path(datamodule), **plain(dict(datamodule.hparams))}
        checkpoint["genlab"] = {
            "_target_": class_path(self),
            "image_shape": list(self.image_shape),
            "data": data,
        }

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Images in the model's pixel range -> [0, 1], for display and metrics."""
        low, high = self.pixel_range
        return ((images - low) / (high - low)).clamp(0.0, 1.0)
