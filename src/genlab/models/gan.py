"""The GAN: manual optimisation of a generator and a discriminator with two Adam optimisers.

Lightning's `trainer.global_step` counts optimiser steps, so one batch with `d_steps: 1` advances it by 2:
`trainer.max_steps=20` trains on 10 batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from genlab.errors import require
from genlab.models.base import GenerativeModel, build_net, plain
from genlab.models.losses import ADVERSARIAL_LOSSES

NOISES = ("normal", "uniform")


class GAN(GenerativeModel):
    """A GAN around an injected generator and discriminator (one logit per image)."""

    def __init__(
        self,
        generator: Mapping[str, Any],
        discriminator: Mapping[str, Any],
        image_shape: Sequence[int],
        latent_dim: int = 100,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        loss: str = "bce",
        noise: str = "normal",
        label_smoothing: float = 0.0,
        d_steps: int = 1,
        grad_clip: float | None = None,
        pixel_range: Sequence[float] = (-1.0, 1.0),
    ) -> None:
        generator, discriminator, image_shape, betas, pixel_range = map(
            plain, (generator, discriminator, image_shape, betas, pixel_range)
        )
        super().__init__(image_shape, latent_dim, pixel_range)
        self.save_hyperparameters(logger=False)  # train() logs the whole run config instead
        self.automatic_optimization = False
        require(lr_g > 0, "model.lr_g", lr_g, "must be > 0 (the study uses 2e-4)")
        require(lr_d > 0, "model.lr_d", lr_d, "must be > 0 (the study uses 2e-4)")
        require(
            len(betas) == 2 and all(0 <= b < 1 for b in betas), "model.betas", betas, "two numbers in [0, 1)"
        )
        require(loss in ADVERSARIAL_LOSSES, "model.loss", loss, f"choose one of {sorted(ADVERSARIAL_LOSSES)}")
        require(noise in NOISES, "model.noise", noise, f"choose one of {NOISES}")
        require(0 <= label_smoothing < 0.5, "model.label_smoothing", label_smoothing, "must be in [0, 0.5)")
        require(int(d_steps) >= 1, "model.d_steps", d_steps, "must be >= 1")
        require(grad_clip is None or grad_clip > 0, "model.grad_clip", grad_clip, "must be > 0 or null")
        self.noise = noise
        self.d_loss_fn, self.g_loss_fn = ADVERSARIAL_LOSSES[loss]
        self.generator = build_net(
            generator, "model.generator", latent_dim=self.latent_dim, image_shape=self.image_shape
        )
        self.discriminator = build_net(
            discriminator, "model.discriminator", image_shape=self.image_shape, out_features=1
        )

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_activation(self.generator(z))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(z)

    def discriminator_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update on real images vs fresh (detached) fakes; G's weights are not touched."""
        _, opt_d = self.optimizers()
        with self.toggled_optimizer(opt_d):
            fake = self.generate(self.sample_latent(len(real))).detach()
            real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
            d_loss = self.d_loss_fn(real_logits, fake_logits, 1.0 - self.hparams.label_smoothing)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        return {
            "d_loss": d_loss.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
        }

    def generator_step(self, batch_size: int) -> dict[str, torch.Tensor]:
        """One G update through D's judgement of fresh fakes; D's weights are not touched."""
        opt_g, _ = self.optimizers()
        with self.toggled_optimizer(opt_g):
            g_loss = self.g_loss_fn(self.discriminator(self.generate(self.sample_latent(batch_size))))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        return {"g_loss": g_loss.detach()}

    def on_before_optimizer_step(self, optimizer) -> None:
        # Clip here, inside opt.step(): under 16-mixed Lightning unscales the gradients just before this hook
        # (clipping in training_step would clip the scaled ones). Trainer(gradient_clip_val) is not
        # available under manual optimisation.
        if self.hparams.grad_clip is not None:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm"
            )

    def training_step(self, batch, batch_idx: int) -> None:
        real, _ = batch
        for _ in range(self.hparams.d_steps):
            terms = self.discriminator_step(real)
        terms |= self.generator_step(len(real))
        for name, value in terms.items():
            self.log(
                f"train/{name}",
                value,
                on_step=True,
                on_epoch=False,
                prog_bar=name.endswith("loss"),
                batch_size=len(real),
            )

    def validation_step(self, batch, batch_idx: int) -> None:
        """D's mean probability on held-out real images and on fresh fakes (a gap to train/d_real
        means D memorises the training set)."""
        real, _ = batch
        d_real = torch.sigmoid(self.discriminator(real)).mean()
        d_fake = torch.sigmoid(self.discriminator(self.sample(len(real)))).mean()
        self.log_dict({"val/d_real": d_real, "val/d_fake": d_fake}, batch_size=len(real))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas = tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_g, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_d, betas=betas)
        return [opt_g, opt_d]
