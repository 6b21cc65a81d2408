"""Conditional flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023): a net learns the velocity
that carries N(0, I) noise at t=0 to the data at t=1, and an ODE solver draws, inverts and scores images.

The probability paths are torchcfm's: `ot`, the straight optimal-transport / rectified-flow path
x_t = (1 - t) x0 + t x1 (its `ConditionalFlowMatcher`), and `vp`, the variance-preserving trigonometric path
x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1 of diffusion models
(its `VariancePreservingConditionalFlowMatcher`).
The solver is genlab.models.ode (torchdiffeq); the EMA of the weights is genlab.models.ema, as the GAN's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torchcfm.conditional_flow_matching import (
    ConditionalFlowMatcher,
    VariancePreservingConditionalFlowMatcher,
)

from genlab.errors import require
from genlab.models.base import GenerativeModel
from genlab.models.ema import EMA
from genlab.models.ode import ODESampler

PATHS = {"ot": ConditionalFlowMatcher, "vp": VariancePreservingConditionalFlowMatcher}


class FlowMatching(GenerativeModel):
    """A flow matching model around an injected velocity net `net(t, x)` (conf/nets/flow_<data>.yaml).

    Its latent is the noise image itself (latent_dim = C * H * W). `generate` integrates it from t=0 to 1
    with the `sampler` (genlab.models.ode.ODESampler: euler, midpoint or dopri5); `encode` integrates an
    image back to its noise, and `reconstruct` forward again. With `ema_decay`, every picture and sample is
    drawn by the EMA of the net's weights, `net_ema` (kept in the checkpoint); training steps the live net.
    """

    can_encode = True
    has_exact_likelihood = True
    draws_trajectories = True

    def __init__(
        self,
        net: Mapping[str, Any],
        image_shape: Sequence[int],
        path: str,
        sigma: float,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        pixel_range: Sequence[float],
        ema_decay: float | None,
        ema_start: int,
        sampler: Mapping[str, Any],
        val_seed: int,
    ) -> None:
        super().__init__(image_shape, math.prod(int(s) for s in image_shape), pixel_range)
        del self.hparams["latent_dim"]  # the image's size, not a setting
        require(path in PATHS, "model.path", path, f"choose one of {sorted(PATHS)}")
        require(sigma >= 0, "model.sigma", sigma, "must be >= 0 (0: the deterministic path)")
        self.path = PATHS[path](sigma=sigma)
        self.net = self.build_net("net", image_shape=self.image_shape)
        # the average starts from a copy of the net's initial weights; the U-Net has no BatchNorm
        self.net_ema = None if ema_decay is None else EMA(self.net, ema_decay, ema_start, standing_stats=0)
        #: whether sampling uses the EMA net (if any); evaluate's `ema=false` clears it
        self.sample_from_ema = True
        self.sampler = self.build_part("sampler")
        #: the function evaluations of the latest `bits_per_dim` solve
        self.likelihood_nfe = 0

    @classmethod
    def upgrade_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        # The first flow checkpoints recorded their latent size and named attention by resolution in px.
        hparams = {
            key: value for key, value in super().upgrade_hparams(hparams).items() if key != "latent_dim"
        }
        net = dict(hparams["net"])
        if "attention_resolutions" in net:
            size = int(hparams["image_shape"][-1])
            pixels = net.pop("attention_resolutions")
            net["attention_levels"] = [int(math.log2(size // int(r))) for r in pixels]
        return {**hparams, "net": net}

    @property
    def velocity(self) -> Any:
        """The net that draws: the EMA net, if any (and `sample_from_ema`), else the live one."""
        return self.net if self.net_ema is None or not self.sample_from_ema else self.net_ema

    def configure_sampler(self, **settings: Any) -> None:
        """Replace some of the solver's settings (`method`, `nfe`, `atol`, `rtol`), e.g. from evaluate.py."""
        current = {"method": self.sampler.method, "nfe": self.sampler.nfe}
        current |= {"atol": self.sampler.atol, "rtol": self.sampler.rtol}
        self.sampler = ODESampler(**(current | settings), key="sampler")

    def sampling_settings(self) -> dict[str, Any]:
        """The solver's settings, and the function evaluations per solve that it spent so far."""
        mean = self.sampler.mean_nfe
        return self.sampler.settings() | {"nfe": int(mean) if mean.is_integer() else round(mean, 1)}

    def images(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(len(z), *self.image_shape)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images (clamped to the pixel range) from noise `z`, integrated from t=0 to t=1."""
        x = self.sampler.integrate(self.velocity, self.images(z), 0.0, 1.0)[-1]
        return x.clamp(*self.pixel_range)

    def trajectory(self, z: torch.Tensor, points: int) -> torch.Tensor:
        """The images along the path from noise `z` (t=0) to samples (t=1) at `points` evenly spaced times:
        [points, N, C, H, W], clamped to the pixel range for display."""
        path = self.sampler.integrate(self.velocity, self.images(z), 0.0, 1.0, points)
        return path.clamp(*self.pixel_range)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The noise that the flow carries to `images`, integrated from t=1 back to t=0: [N, C * H * W]."""
        return self.sampler.integrate(self.velocity, images, 1.0, 0.0)[-1].flatten(1)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """The ODE round trip: `images` to their noise and back."""
        return self.generate(self.encode(images))

    def reconstruction_methods(
        self,
    ) -> dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
        """`ODE round trip`: the image to its noise and back, by the model's solver."""

        def round_trip(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.encode(images)
            return z, self.generate(z)

        return {"ODE round trip": round_trip}

    def bits_per_dim(
        self, images: torch.Tensor, generator: torch.Generator | None = None, trace: str = "hutchinson"
    ) -> torch.Tensor:
        """Bits per dimension [N] of 8-bit `images` (uint8), uniformly dequantised: y = (x + u) / 256 in
        [0, 1], the flow's density of y mapped to its pixel range, then -log2 p(y) / D + 8 (the 256 levels per
        dimension). An upper bound on the discrete images' code length, the number flow papers report."""
        noise = torch.rand(images.shape, generator=generator, device=generator.device if generator else None)
        low, high = self.pixel_range
        x = low + (high - low) * (images.float().cpu() + noise.cpu()) / 256.0
        log_p = self.sampler.log_likelihood(self.velocity, x.to(self.device), trace, generator)
        self.likelihood_nfe = self.sampler.last_nfe  # of this solve (the sampling's are counted apart)
        dims = images[0].numel()
        log_p_unit = log_p + dims * math.log(high - low)  # the density of y in [0, 1]^D
        return -log_p_unit / (dims * math.log(2)) + 8.0

    def likelihood_description(self) -> str:
        return (
            f"exact log-likelihood by the change of variables ({self.sampler.describe()}), Hutchinson trace, "
            "on uniformly dequantised 8-bit images, in bits/dim"
        )

    def loss(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The conditional flow matching loss: mean squared error between the net's velocity at (t, x_t) and
        the path's, with noise x0, times t (uniform) and the path's own noise drawn from `generator`."""
        device = generator.device if generator is not None else images.device
        shape = images.shape
        x0 = torch.randn(shape, generator=generator, device=device).to(images)
        t = torch.rand(len(images), generator=generator, device=device).to(images)
        eps = torch.randn(shape, generator=generator, device=device).to(images)
        xt = self.path.sample_xt(x0, images, t, eps)
        target = self.path.compute_conditional_flow(x0, images, t, xt)
        return (self.net(t, xt) - target).pow(2).mean()

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(batch[0])}  # logged as train/loss by genlab.callbacks.TrainingScalars

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # The EMA follows each optimiser step here, before any callback sees the batch's end (a step
        # checkpoint then holds the average of the weights it holds).
        super().optimizer_step(*args, **kwargs)
        if self.net_ema is not None:
            self.net_ema.update(self.net, self.trainer.global_step)

    def validation_step(self, batch, batch_idx: int) -> None:
        """The loss on fixed draws of (x0, t) per validation batch, so the curve compares epochs."""
        images = batch[0]
        generator = torch.Generator(device=images.device).manual_seed(self.hparams.val_seed + batch_idx)
        loss = self.loss(images, generator)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(images), sync_dist=True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # EMA switched on or off when resuming (as the GAN's)
        EMA.adopt_state(self.net_ema, checkpoint["state_dict"], "net_ema.", "net.")

    def configure_optimizers(self):
        optimizer, scheduler = self.make_optimizer(
            "optimizer", self.net.parameters(), self.trainer.gradient_clip_val
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
