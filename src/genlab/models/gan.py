"""The GAN: manual optimisation of a generator and a discriminator, each with its own optimiser.

Lightning's `trainer.global_step` counts optimiser steps, so one batch with `d_steps: 1` advances it by 2:
`trainer.max_steps=20` trains on 10 batches.

Under DDP (`trainer=ddp`) the GAN runs with `find_unused_parameters=True` (conf/model/gan.yaml:
`ddp_strategy`). Each of its two backward passes reaches one net only (D's loss sees detached fakes, G's sees
a frozen D), and Lightning wraps the whole module in one DistributedDataParallel, which by default expects
every parameter in every backward. The alternative, a DDP wrapper per net, would reduce only the net being
trained, but needs a strategy that overrides Lightning's private DDP internals; unused-parameter detection is
Lightning's stock, supported path. Its cost, measured by benchmarks/ddp_gan_reduction.py on 2 CPU processes
(gloo, study A's MNIST nets, batch 64): 82.8 ms a batch against 70.3 ms with one wrapper per net (1.18x),
from the graph walk and the reduction of both nets' buckets in each backward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from genlab.errors import require
from genlab.models.base import GenerativeModel, build_net, build_optimizer, check_optimizer, plain
from genlab.models.losses import ADVERSARIAL_LOSSES

NOISES = ("normal", "uniform")
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.5, 0.999]}


class GAN(GenerativeModel):
    """A GAN around an injected generator and discriminator (one logit per image)."""

    def __init__(
        self,
        generator: Mapping[str, Any],
        discriminator: Mapping[str, Any],
        image_shape: Sequence[int],
        latent_dim: int = 100,
        optimizer_g: Mapping[str, Any] = DEFAULT_OPTIMIZER,
        optimizer_d: Mapping[str, Any] = DEFAULT_OPTIMIZER,
        scheduler: Mapping[str, Any] | None = None,
        loss: str = "bce",
        noise: str = "normal",
        label_smoothing: float = 0.0,
        d_steps: int = 1,
        grad_clip: float | None = None,
        pixel_range: Sequence[float] = (-1.0, 1.0),
    ) -> None:
        generator, discriminator, image_shape, optimizer_g, optimizer_d, scheduler, pixel_range = map(
            plain, (generator, discriminator, image_shape, optimizer_g, optimizer_d, scheduler, pixel_range)
        )
        super().__init__(image_shape, latent_dim, pixel_range)
        self.save_hyperparameters(logger=False)  # train() logs the whole run config instead
        self.automatic_optimization = False
        check_optimizer(optimizer_g, "model.optimizer_g")
        check_optimizer(optimizer_d, "model.optimizer_d")
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

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Both updates; returns their detached scalars, which genlab.callbacks.TrainingScalars logs as
        train/* for every batch without a host synchronisation per step."""
        real, _ = batch
        for _ in range(self.hparams.d_steps):
            terms = self.discriminator_step(real)
        return terms | self.generator_step(len(real))

    def validation_step(self, batch, batch_idx: int) -> None:
        """D's mean probability on held-out real images and on fresh fakes (a gap to train/d_real
        means D memorises the training set)."""
        real, _ = batch
        d_real = torch.sigmoid(self.discriminator(real)).mean()
        d_fake = torch.sigmoid(self.discriminator(self.sample(len(real)))).mean()
        self.log_dict({"val/d_real": d_real, "val/d_fake": d_fake}, batch_size=len(real), sync_dist=True)

    def on_train_epoch_end(self) -> None:
        # Manual optimisation: Lightning leaves the lr schedulers (one per optimiser) to the module.
        for scheduler in self.lr_schedulers() or []:
            scheduler.step()

    def configure_optimizers(self):
        hparams = self.hparams
        opt_g, schedule_g = build_optimizer(
            hparams.optimizer_g, hparams.scheduler, self.generator.parameters()
        )
        opt_d, schedule_d = build_optimizer(
            hparams.optimizer_d, hparams.scheduler, self.discriminator.parameters()
        )
        if schedule_g is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [schedule_g, schedule_d]
