"""Mixed precision: bf16 trains both models on the CPU; under fp16 (GPU only) the GAN clips unscaled grads."""

import math

import lightning as L
import pytest
import torch
from helpers import build_model
from hydra.utils import instantiate

from genlab.train import train

TINY = ("trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1")
CLIP = 0.01


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_bf16_mixed_trains_on_cpu(make_cfg, model):
    metrics = train(make_cfg(f"model={model}", "trainer.precision=bf16-mixed", *TINY))
    losses = {name: value for name, value in metrics.items() if name.endswith("loss")}
    assert losses and all(math.isfinite(value) for value in losses.values())


class RecordStepGradNorms(L.Callback):
    """The gradient norm each optimiser sees at its step used (after any unscaling and clipping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(self.record)

    def record(self, optimizer, args, kwargs) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def gan_step_norms(make_cfg, accelerator: str, precision: str) -> list[float]:
    cfg = make_cfg("model=gan", f"model.grad_clip={CLIP}")
    recorder = RecordStepGradNorms()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=8,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        callbacks=[recorder],
        enable_progress_bar=False,
    )
    trainer.fit(build_model(cfg), datamodule=instantiate(cfg.data))
    return recorder.norms


def test_gan_clips_both_optimisers_at_step_time(make_cfg):
    norms = gan_step_norms(make_cfg, "cpu", "bf16-mixed")
    assert len(norms) == 8  # 4 batches x (D step + G step)
    # Clipped to the limit, not below it: the clip sees the gradients the optimiser uses.
    assert all(CLIP * 0.5 < norm <= CLIP * 1.001 for norm in norms)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed (fp16 with a grad scaler) needs a GPU")
def test_fp16_gan_clips_after_unscaling(make_cfg):
    norms = gan_step_norms(make_cfg, "gpu", "16-mixed")
    assert norms  # the scaler may skip a few overflowing steps at first
    # Clipping the scaled gradients (scale 65536) would leave norms ~1e-7 here.
    assert all(CLIP * 0.5 < norm <= CLIP * 1.001 for norm in norms)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed needs a GPU")
@pytest.mark.parametrize("model", ["vae", "gan"])
def test_fp16_mixed_trains_on_gpu(make_cfg, model):
    metrics = train(make_cfg(f"model={model}", "trainer=gpu", "trainer.precision=16-mixed", *TINY))
    assert all(math.isfinite(value) for name, value in metrics.items() if name.endswith("loss"))


def test_a_clipped_vae_under_mixed_precision_trains_with_the_unfused_adam(make_cfg):
    # Lightning cannot clip the gradients of a fused optimizer under mixed precision (it unscales inside its
    # step): genlab builds the same Adam unfused then.
    cfg = make_cfg("model=vae", "trainer.precision=bf16-mixed", "++trainer.gradient_clip_val=1.0", *TINY)
    assert cfg.model.optimizer.fused
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])
