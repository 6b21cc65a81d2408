"""The GAN: manual optimisation of a generator and a discriminator, each with its own optimiser.

Lightning's `trainer.global_step` counts optimiser steps, so one batch with `d_steps: 1` advances it by 2:
`trainer.max_steps=20` trains on 10 batches. "Batch" below counts training batches (one G step and
`d_steps` D steps each), read from `global_step` // (d_steps + 1), so a resumed run carries on counting.
Under DDP its two backward passes each reach one net only: see `ddp_strategy` in conf/model/gan.yaml.

The toolbox, each a switch in conf/model/gan.yaml, free to combine: an EMA generator (`ema_decay`,
genlab.models.ema), DiffAugment (`diffaugment`), the R1 penalty (`r1_gamma`, `r1_every`), the hinge and
least-squares losses (`loss`), feature matching for G (`feature_matching`), and TTUR (two learning rates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch

from genlab.errors import require
from genlab.models.augment import diff_augment, parse_policy
from genlab.models.base import GenerativeModel
from genlab.models.ema import EMA
from genlab.models.losses import ADVERSARIAL_LOSSES, feature_matching_loss, r1_penalty

NOISES = ("normal", "uniform")


class GAN(GenerativeModel):
    """A GAN around an injected generator and discriminator (one logit per image).

    With `ema_decay`, `generate` and `sample` (pictures, evaluate.py, generate.py) draw from an exponential
    moving average of the generator's weights, `generator_ema`, kept in the checkpoint (call
    `prepare_sampling` first); training always steps the live `generator`. `feature_matching` needs a
    discriminator with a `features(images)` method (its penultimate features, as in
    genlab.nets.mlp.MLPEncoder and genlab.nets.dcgan.DCGANDiscriminator).
    """

    optimizer_keys = ("optimizer_g", "optimizer_d")
    invertible = True
    discriminator: Any  # a net; with `features(images)` for feature matching
    latest_r1: torch.Tensor

    def __init__(
        self,
        generator: Mapping[str, Any],
        discriminator: Mapping[str, Any],
        image_shape: Sequence[int],
        latent_dim: int,
        optimizer_g: Mapping[str, Any],
        optimizer_d: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        loss: str,
        noise: str,
        label_smoothing: float,
        d_steps: int,
        grad_clip: float | None,
        pixel_range: Sequence[float],
        ema_decay: float | None,
        ema_start: int,
        ema_standing_stats: int,
        diffaugment: str | Sequence[str],
        r1_gamma: float,
        r1_every: int,
        feature_matching: bool,
    ) -> None:
        super().__init__(image_shape, latent_dim, pixel_range)
        self.automatic_optimization = False
        require(loss in ADVERSARIAL_LOSSES, "model.loss", loss, f"choose one of {sorted(ADVERSARIAL_LOSSES)}")
        require(noise in NOISES, "model.noise", noise, f"choose one of {NOISES}")
        require(0 <= label_smoothing < 0.5, "model.label_smoothing", label_smoothing, "must be in [0, 0.5)")
        require(int(d_steps) >= 1, "model.d_steps", d_steps, "must be >= 1")
        require(grad_clip is None or grad_clip > 0, "model.grad_clip", grad_clip, "must be > 0 or null")
        require(r1_gamma >= 0, "model.r1_gamma", r1_gamma, "must be >= 0 (0 = off)")
        require(int(r1_every) >= 1, "model.r1_every", r1_every, "must be >= 1 (batches)")
        self.noise = noise
        self.d_loss_fn, self.g_loss_fn = ADVERSARIAL_LOSSES[loss]
        self.diffaugment = parse_policy(self.hparams.diffaugment)
        self.generator = self.build_net("generator", latent_dim=self.latent_dim, image_shape=self.image_shape)
        self.discriminator = self.build_net("discriminator", image_shape=self.image_shape, out_features=1)
        has_features = callable(getattr(self.discriminator, "features", None))
        fix = "use genlab.nets.mlp.MLPEncoder or genlab.nets.dcgan.DCGANDiscriminator, or set it to false"
        name = type(self.discriminator).__name__
        require(
            not feature_matching or has_features,
            "model.feature_matching",
            feature_matching,
            f"the discriminator {name} has no features(images) method; {fix}",
        )
        # the average starts from a copy of G's initial weights
        self.generator_ema = (
            None if ema_decay is None else EMA(self.generator, ema_decay, ema_start, ema_standing_stats)
        )
        #: whether generate() draws from the EMA generator (if any); evaluate's `ema=false` clears it
        self.sample_from_ema = True
        if r1_gamma > 0:
            # the latest R1 value, reported on the batches between two lazy R1 steps (r1_every > 1)
            self.register_buffer("latest_r1", torch.zeros(()), persistent=False)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images from latents `z`, by the EMA generator if any (and `sample_from_ema`), else by G."""
        if self.generator_ema is None or not self.sample_from_ema:
            return self.output_activation(self.generator(z))
        return self.output_activation(self.generator_ema(z))

    def prepare_sampling(self) -> None:
        """The EMA generator's standing BatchNorm statistics, from 64-image batches of fixed noise."""
        if self.generator_ema is not None and self.sample_from_ema:
            self.generator_ema.prepare_sampling(self.sample_latent, self.device, batch_size=64, seed=0)

    def fake_images(self, n: int) -> torch.Tensor:
        """`n` fresh images from the live generator, the one being trained."""
        return self.output_activation(self.generator(self.sample_latent(n)))

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """DiffAugment of what D sees, real and fake alike (`diffaugment`; identity when empty)."""
        return diff_augment(images, self.diffaugment, self.pixel_range)

    @property
    def batch_index(self) -> int:
        """The training batch under way (0-based) during its D steps, the number of batches done after its G
        step: Lightning's count of optimiser steps, `d_steps` + 1 per batch."""
        return self.trainer.global_step // (self.hparams.d_steps + 1)

    def discriminator_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update on (augmented) real images vs fresh (detached) fakes, plus the R1 penalty on real ones
        when due; G's weights are not touched."""
        hparams = self.hparams
        penalise = hparams.r1_gamma > 0 and self.batch_index % hparams.r1_every == 0
        _, opt_d = cast(list, self.optimizers())
        with self.toggled_optimizer(opt_d):
            fake = self.fake_images(len(real)).detach()
            real = real.detach().requires_grad_(penalise)  # R1 differentiates D through the augmentation
            real_logits = self.discriminator(self.augment(real))
            fake_logits = self.discriminator(self.augment(fake))
            d_loss = self.d_loss_fn(real_logits, fake_logits, 1.0 - hparams.label_smoothing)
            total = d_loss
            if penalise:
                r1 = r1_penalty(real_logits, real)
                # lazy regularisation (StyleGAN2): every r1_every batches, r1_every times as strong
                total = d_loss + hparams.r1_gamma / 2 * hparams.r1_every * r1
                self.latest_r1.copy_(r1.detach())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(total)
            opt_d.step()
        d_real, d_fake = (torch.sigmoid(logits.detach()).mean() for logits in (real_logits, fake_logits))
        terms = {"d_loss": d_loss.detach(), "d_real": d_real, "d_fake": d_fake}
        return terms | ({"r1": self.latest_r1.clone()} if hparams.r1_gamma > 0 else {})

    def generator_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One G update through D's judgement of fresh (augmented) fakes, or, with `feature_matching`, through
        the distance of their mean D features to the real images'; D's weights are not touched. Then the EMA
        generator follows."""
        opt_g, _ = cast(list, self.optimizers())
        with self.toggled_optimizer(opt_g):
            fake = self.augment(self.fake_images(len(real)))
            if self.hparams.feature_matching:
                real_features = self.discriminator.features(self.augment(real)).detach()
                g_loss = feature_matching_loss(real_features, self.discriminator.features(fake))
            else:
                g_loss = self.g_loss_fn(self.discriminator(fake))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, self.batch_index)
        return {"g_loss": g_loss.detach()}

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Both updates; returns their detached scalars, which genlab.callbacks.TrainingScalars logs as
        train/* for every batch without a host synchronisation per step."""
        real, _ = batch
        for _ in range(self.hparams.d_steps):
            terms = self.discriminator_step(real)
        return terms | self.generator_step(real)

    def validation_step(self, batch, batch_idx: int) -> None:
        """D's mean probability on held-out real images and on fresh fakes of the live generator, as in
        train/d_fake (a gap to train/d_real means D memorises the training set)."""
        real, _ = batch
        d_real = torch.sigmoid(self.discriminator(real)).mean()
        d_fake = torch.sigmoid(self.discriminator(self.fake_images(len(real)))).mean()
        self.log_dict({"val/d_real": d_real, "val/d_fake": d_fake}, batch_size=len(real), sync_dist=True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # EMA switched on or off when resuming: a checkpoint without the average starts it from its generator;
        # one with an average that this model does not keep drops it.
        EMA.adopt_state(self.generator_ema, checkpoint["state_dict"], "generator_ema.", "generator.")

    def on_train_epoch_end(self) -> None:
        # Manual optimisation: Lightning leaves the lr schedulers (one per optimiser) to the module.
        for scheduler in cast(list, self.lr_schedulers() or []):
            scheduler.step()

    def configure_optimizers(self):
        clip = self.hparams.grad_clip
        opt_g, schedule_g = self.make_optimizer("optimizer_g", self.generator.parameters(), clip)
        opt_d, schedule_d = self.make_optimizer("optimizer_d", self.discriminator.parameters(), clip)
        if schedule_g is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [schedule_g, schedule_d]
