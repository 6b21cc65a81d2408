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

The toolbox of recipes known to train on MNIST, each a switch in conf/model/gan.yaml, off by default and
free to combine: an EMA generator (`ema_decay`, `ema_start`), DiffAugment (`diffaugment`, in
genlab.models.augment), the R1 penalty (`r1_gamma`, `r1_every`), the least-squares loss (`loss: ls`),
feature matching for G (`feature_matching`), and TTUR (different `optimizer_g.lr` and `optimizer_d.lr`).

"Batch" below counts training batches (one G step and `d_steps` D steps each), read from Lightning's
`global_step` // (d_steps + 1), so a resumed run carries on counting where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.errors import require
from genlab.models.augment import diff_augment, parse_policy
from genlab.models.base import GenerativeModel, build_net, build_optimizer, check_optimizer, plain
from genlab.models.losses import ADVERSARIAL_LOSSES, feature_matching_loss, r1_penalty

NOISES = ("normal", "uniform")
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.5, 0.999]}


class GAN(GenerativeModel):
    """A GAN around an injected generator and discriminator (one logit per image).

    With `ema_decay`, `generate` and `sample` (pictures, evaluate.py, generate.py) draw from an exponential
    moving average of the generator's weights, `generator_ema`, kept in the checkpoint; training always
    steps the live `generator`. `feature_matching` needs a discriminator with a `features(images)` method
    (its penultimate features, as in genlab.nets.mlp.MLPEncoder and genlab.nets.dcgan.DCGANDiscriminator).
    """

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
        ema_decay: float | None = None,
        ema_start: int = 0,
        ema_standing_stats: int = 16,
        diffaugment: str | Sequence[str] = "",
        r1_gamma: float = 0.0,
        r1_every: int = 1,
        feature_matching: bool = False,
    ) -> None:
        generator, discriminator, image_shape, optimizer_g, optimizer_d, scheduler, pixel_range = map(
            plain, (generator, discriminator, image_shape, optimizer_g, optimizer_d, scheduler, pixel_range)
        )
        diffaugment = plain(diffaugment)
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
        require(
            ema_decay is None or 0 < ema_decay < 1, "model.ema_decay", ema_decay, "must be in (0, 1) or null"
        )
        require(int(ema_start) >= 0, "model.ema_start", ema_start, "must be >= 0 (batches)")
        require(int(ema_standing_stats) >= 0, "model.ema_standing_stats", ema_standing_stats, "must be >= 0")
        require(r1_gamma >= 0, "model.r1_gamma", r1_gamma, "must be >= 0 (0 = off)")
        require(int(r1_every) >= 1, "model.r1_every", r1_every, "must be >= 1 (batches)")
        self.noise = noise
        self.d_loss_fn, self.g_loss_fn = ADVERSARIAL_LOSSES[loss]
        self.diffaugment = parse_policy(diffaugment)
        self.generator = build_net(
            generator, "model.generator", latent_dim=self.latent_dim, image_shape=self.image_shape
        )
        self.discriminator = build_net(
            discriminator, "model.discriminator", image_shape=self.image_shape, out_features=1
        )
        require(
            not feature_matching or callable(getattr(self.discriminator, "features", None)),
            "model.feature_matching",
            feature_matching,
            f"the discriminator {type(self.discriminator).__name__} has no features(images) method; use "
            "genlab.nets.mlp.MLPEncoder or genlab.nets.dcgan.DCGANDiscriminator, or set it to false",
        )
        # G's average in torch's AveragedModel (its EMA function and checkpoint layout). Lightning's
        # WeightAveraging callback does not fit: it averages the whole LightningModule (D too) and swaps the
        # average into the live weights for validation and at the end of fit, where the GAN needs D and G
        # live and only its pictures and metrics drawn from the average.
        self.generator_ema = None
        if ema_decay is not None:
            # a copy of G's initial weights, where the average starts
            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
            self.generator_ema.requires_grad_(False)
        # whether the EMA generator's BatchNorm statistics are its own (see standing_statistics)
        self.ema_stats_fresh = False
        if r1_gamma > 0:
            # the latest R1 value, reported on the batches between two lazy R1 steps (r1_every > 1)
            self.register_buffer("latest_r1", torch.zeros(()), persistent=False)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images from latents `z`, by the EMA generator when `ema_decay` is set, else by the trained one."""
        if self.generator_ema is None:
            return self.output_activation(self.generator(z))
        if not self.ema_stats_fresh:
            self.standing_statistics()
        return self.output_activation(self.generator_ema(z))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(z)

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
        _, opt_d = self.optimizers()
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
        terms = {
            "d_loss": d_loss.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
        }
        if hparams.r1_gamma > 0:
            terms["r1"] = self.latest_r1.clone()
        return terms

    def generator_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One G update through D's judgement of fresh (augmented) fakes, or, with `feature_matching`, through
        the distance of their mean D features to the real images'; D's weights are not touched. Then the EMA
        generator follows."""
        opt_g, _ = self.optimizers()
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
            self.update_ema()
        return {"g_loss": g_loss.detach()}

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the EMA generator's weights towards the live one's; for the first `ema_start` batches, copy
        them instead. BatchNorm statistics are copied, as AveragedModel does.

        AveragedModel.update_parameters would do this too, but it branches on its on-device count
        (`n_averaged == 0`), a host-device synchronisation per batch on a GPU, which genlab avoids (see
        genlab.callbacks.TrainingScalars); here the branch is on the batch count, a Python int."""
        average = self.generator_ema
        ema_weights = list(average.module.parameters())
        live_weights = [weight.detach() for weight in self.generator.parameters()]
        if self.batch_index <= self.hparams.ema_start:
            for ema_weight, live_weight in zip(ema_weights, live_weights, strict=True):
                ema_weight.copy_(live_weight)
        else:
            average.multi_avg_fn(ema_weights, live_weights, average.n_averaged)
        for ema_buffer, live_buffer in zip(average.module.buffers(), self.generator.buffers(), strict=True):
            ema_buffer.copy_(live_buffer)
        average.n_averaged += 1
        self.ema_stats_fresh = False

    @torch.no_grad()
    def standing_statistics(self, batch_size: int = 64, seed: int = 0) -> None:
        """Recompute the EMA generator's BatchNorm statistics from `ema_standing_stats` batches of fixed
        latents (BigGAN's "standing statistics"), before it draws after an update.

        The live G's running statistics, which update_ema copies, belong to the live weights: in eval mode
        the averaged weights normalised by them wash their images out (best_imagenette_gan's grids in
        RESULTS.md). torch's swa_utils.update_bn does
        this for a model fed by a data loader; a generator's input is noise, drawn here from a fixed-seed
        torch.Generator so that the global RNG (and a resumed run) is untouched and the result depends on
        the weights alone."""
        self.ema_stats_fresh = True
        norms = [m for m in self.generator_ema.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms or not self.hparams.ema_standing_stats:
            return
        modes = [(m, m.training, m.momentum) for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.train()
            norm.momentum = None  # a cumulative average over the batches
        rng = torch.Generator(device=self.device).manual_seed(seed)
        for _ in range(self.hparams.ema_standing_stats):
            self.generator_ema(self.sample_latent(batch_size, rng))
        for norm, training, momentum in modes:
            norm.train(training)
            norm.momentum = momentum

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
        state = checkpoint["state_dict"]
        self.ema_stats_fresh = False
        if self.generator_ema is None:
            for name in [name for name in state if name.startswith("generator_ema.")]:
                del state[name]
        elif "generator_ema.n_averaged" not in state:
            generator = {name: value for name, value in state.items() if name.startswith("generator.")}
            state.update(
                {"generator_ema.module." + name[len("generator.") :]: v for name, v in generator.items()}
            )
            state["generator_ema.n_averaged"] = torch.tensor(0)

    def on_train_epoch_end(self) -> None:
        # Manual optimisation: Lightning leaves the lr schedulers (one per optimiser) to the module.
        for scheduler in self.lr_schedulers() or []:
            scheduler.step()

    def configure_optimizers(self):
        hparams = self.hparams
        keep_fused = not self.clips_under_mixed_precision(hparams.grad_clip)
        opt_g, schedule_g = build_optimizer(
            hparams.optimizer_g, hparams.scheduler, self.generator.parameters(), keep_fused
        )
        opt_d, schedule_d = build_optimizer(
            hparams.optimizer_d, hparams.scheduler, self.discriminator.parameters(), keep_fused
        )
        if schedule_g is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [schedule_g, schedule_d]
