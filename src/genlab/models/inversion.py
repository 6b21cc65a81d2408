"""GAN inversion by optimisation: the latent z whose image G(z) is closest to a given image.

The recipe is the StyleGAN2-ADA projector's (NVlabs/stylegan2-ada-pytorch, `projector.py`), in z space:
Adam on z with a learning rate that ramps up linearly over the first `lr_rampup` of the steps and down by a
cosine over the last `lr_rampdown`; z starts at the mean of `n_mean_latents` prior draws, and noise of
`initial_noise_factor` x the prior's spread, decaying quadratically to zero over the first
`noise_ramp_length` of the steps, is added to z at each step. `restarts` > 1 runs again from random prior
draws and keeps, per image, the z with the smallest final distance. torch has no projector of its own, and
none of genlab's dependencies inverts a generator, hence this module.

A whole batch is optimised at once: the loss is the sum of the per-image distances, so each image's z gets
its own gradient and Adam's per-coordinate steps keep the images independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

from genlab.errors import ConfigError, require

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class InversionSettings:
    """The projector's settings (conf/eval.yaml's and conf/generate.yaml's `inversion:`)."""

    steps: int = 500
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    restarts: int = 1
    n_mean_latents: int = 10000
    batch_size: int = 250
    seed: int = 0
    #: `encoder + inversion`: steps and peak learning rate of the refinement from the encoder's latents
    #: (one start, no added noise)
    refine_steps: int = 100
    refine_lr: float = 0.01
    #: the distance: pixel MSE + feature_weight x genlab.metrics.perceptual's feature term
    feature_weight: float = 1.0

    def __post_init__(self) -> None:
        require(int(self.steps) >= 1, "inversion.steps", self.steps, "must be >= 1 (500 is the default)")
        require(self.lr > 0, "inversion.lr", self.lr, "must be > 0 (0.1 is the projector's)")
        for key in ("lr_rampup", "lr_rampdown", "noise_ramp_length"):
            value = getattr(self, key)
            require(0 < value <= 1, f"inversion.{key}", value, "must be a fraction of the steps in (0, 1]")
        require(
            self.initial_noise_factor >= 0,
            "inversion.initial_noise_factor",
            self.initial_noise_factor,
            "must be >= 0",
        )
        require(int(self.restarts) >= 1, "inversion.restarts", self.restarts, "must be >= 1")
        require(
            int(self.n_mean_latents) >= 1, "inversion.n_mean_latents", self.n_mean_latents, "must be >= 1"
        )
        require(int(self.batch_size) >= 1, "inversion.batch_size", self.batch_size, "must be >= 1")
        require(int(self.refine_steps) >= 1, "inversion.refine_steps", self.refine_steps, "must be >= 1")
        require(self.refine_lr > 0, "inversion.refine_lr", self.refine_lr, "must be > 0")
        require(self.feature_weight >= 0, "inversion.feature_weight", self.feature_weight, "must be >= 0")

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> InversionSettings:
        config = dict(config or {})
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"inversion.{unknown[0]} is not a setting of GAN inversion; the settings are "
                f"{sorted(cls.__dataclass_fields__)}"
            )
        return cls(**config)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(settings: InversionSettings, t: float) -> float:
    """The projector's schedule at progress `t` in [0, 1): linear warm-up, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return settings.lr * ramp * min(1.0, t / settings.lr_rampup)


def noise_scale(settings: InversionSettings, t: float, spread: float) -> float:
    """The std of the noise added to z at progress `t`: decays quadratically to 0 at `noise_ramp_length`."""
    return spread * settings.initial_noise_factor * max(0.0, 1.0 - t / settings.noise_ramp_length) ** 2


def invertible(model: Any) -> bool:
    """Whether `model` has a generator to invert: a GAN (or a GAN with an encoder)."""
    return bool(getattr(model, "invertible", False))


def require_invertible(model: Any) -> None:
    if not invertible(model):
        raise ConfigError(
            f"inversion is invalid for {type(model).__name__}: it has no generator to invert (only a GAN's "
            "G(z) is inverted; the VAE and the flow reconstruct with their own encoders). Drop the "
            "inversion method, or evaluate a GAN checkpoint."
        )


def project(
    model: Any,
    targets: torch.Tensor,
    distance: Distance,
    settings: InversionSettings,
    start: torch.Tensor | None = None,
    progress: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The latents [N, latent_dim] whose `model.generate(z)` (in [0, 1] via `model.to_unit`) best match
    `targets` (images in [0, 1], on the model's device) under `distance`, and their final distances [N].

    Call it in `genlab.modes.sampling_mode(model)` (the EMA generator, eval mode); gradients are enabled
    here for z alone. `start` (e.g. an encoder's output) replaces the first restart's mean start (noise is
    still added); later restarts start from prior draws seeded by `settings.seed`."""
    from tqdm.auto import tqdm

    require_invertible(model)
    generator = torch.Generator().manual_seed(settings.seed)
    prior = model.sample_latent(settings.n_mean_latents, generator).detach()
    mean, spread = prior.mean(0), float((prior - prior.mean(0)).pow(2).sum(1).mean().sqrt())
    uniform = getattr(model, "noise", "normal") == "uniform"
    best_z = torch.zeros(len(targets), model.latent_dim, device=targets.device)
    best = torch.full((len(targets),), math.inf, device=targets.device)
    total = settings.restarts * math.ceil(len(targets) / settings.batch_size) * settings.steps
    bar = tqdm(total=total, desc=progress, unit="step", disable=progress is None)
    with frozen(model):
        for restart in range(settings.restarts):
            for first in range(0, len(targets), settings.batch_size):
                batch = targets[first : first + settings.batch_size]
                if restart == 0:
                    z0 = mean.expand(len(batch), -1) if start is None else start[first : first + len(batch)]
                else:
                    z0 = model.sample_latent(len(batch), generator).detach()
                z, final = _optimise(
                    model, batch, distance, settings, z0.to(batch.device), spread, uniform, generator, bar
                )
                better = final < best[first : first + len(batch)]
                best[first : first + len(batch)] = torch.where(
                    better, final, best[first : first + len(batch)]
                )
                best_z[first : first + len(batch)][better] = z[better]
    bar.close()
    return best_z, best


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """No gradients for the model's weights inside (only z is optimised), their flags restored after."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _optimise(
    model: Any,
    targets: torch.Tensor,
    distance: Distance,
    settings: InversionSettings,
    z0: torch.Tensor,
    spread: float,
    uniform: bool,
    generator: torch.Generator,
    bar: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    z = z0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], betas=(0.9, 0.999), lr=settings.lr)
    with torch.enable_grad():
        for step in range(settings.steps):
            t = step / settings.steps
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(settings, t)
            scale = noise_scale(settings, t, spread)
            noise = torch.randn(z.shape, generator=generator).to(z.device) * scale
            loss = distance(model.to_unit(model.generate(z + noise)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            if uniform:
                with torch.no_grad():
                    z.clamp_(-1.0, 1.0)
            bar.update(1)
    with torch.no_grad():
        final = distance(model.to_unit(model.generate(z)), targets)
    return z.detach(), final
