"""Mixed precision: bf16 trains both models on the CPU; under fp16, with a real GradScaler, on the CPU (an
explicit MixedPrecision plugin) and on a GPU, both train and the GAN clips unscaled grads."""

import math

import lightning as L
import pytest
import torch
from helpers import build_model, compose_train
from hydra.utils import instantiate
from lightning.pytorch.plugins import MixedPrecision
from test_gan_toolbox import make_gan
from test_vae_toolbox import make_vae

from genlab.train import train

TINY = ("trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1")
CLIP = 0.01


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_bf16_mixed_trains_on_cpu(make_cfg, model):
    metrics = train(make_cfg(f"model={model}", "trainer.precision=bf16-mixed", *TINY))
    losses = {name: value for name, value in metrics.items() if name.endswith("loss")}
    assert losses and all(math.isfinite(value) for value in losses.values())


def grad_norm(optimizer: torch.optim.Optimizer) -> float:
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))


class RecordStepGradNorms(L.Callback):
    """The gradient norm each optimiser sees at its step used (`norms`, after any unscaling and clipping),
    the norm the GAN's clip sees (`seen_at_clip`: Lightning calls this hook just before the model's, after
    unscaling), and the dtype of D's logits (`activations`)."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.seen_at_clip: list[float] = []
        self.activations: list[torch.dtype] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(self.record)
        pl_module.discriminator.register_forward_hook(self.record_dtype)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.seen_at_clip.append(grad_norm(optimizer))

    def record(self, optimizer, args, kwargs) -> None:
        self.norms.append(grad_norm(optimizer))

    def record_dtype(self, module, inputs, output: torch.Tensor) -> None:
        if module.training:
            self.activations.append(output.dtype)


def gan_step_norms(
    make_cfg, accelerator: str, precision: str | None = None, plugins=()
) -> RecordStepGradNorms:
    """8 steps (4 batches) of the GAN clipped to CLIP, on `precision` or a precision plugin."""
    cfg = make_cfg("model=gan", f"model.grad_clip={CLIP}")
    torch.manual_seed(0)  # the same initial weights whatever the precision
    recorder = RecordStepGradNorms()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        plugins=list(plugins),
        max_steps=8,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        callbacks=[recorder],
        enable_progress_bar=False,
    )
    trainer.fit(build_model(cfg), datamodule=instantiate(cfg.data))
    return recorder


def test_gan_clips_both_optimisers_at_step_time(make_cfg):
    norms = gan_step_norms(make_cfg, "cpu", "bf16-mixed").norms
    assert len(norms) == 8  # 4 batches x (D step + G step)
    # Clipped to the limit, not below it: the clip sees the gradients the optimiser uses.
    assert all(CLIP * 0.5 < norm <= CLIP * 1.001 for norm in norms)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed (fp16 with a grad scaler) needs a GPU")
def test_fp16_gan_clips_after_unscaling(make_cfg):
    norms = gan_step_norms(make_cfg, "gpu", "16-mixed").norms
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


# --- fp16 with a real GradScaler on the CPU ---------------------------------------------------------------
# Lightning's `precision="16-mixed"` becomes bf16 on a CPU; an explicit MixedPrecision plugin runs the GPU's
# fp16 path there: float16 autocast and a torch.amp.GradScaler (conf/trainer/fp16_cpu.yaml).


def fp16_cpu(**scaler_args) -> MixedPrecision:
    """fp16 autocast with a fresh GradScaler (torch's defaults unless `scaler_args`), on the CPU."""
    return MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", **scaler_args))


def test_fp16_gan_clips_after_unscaling_on_cpu(make_cfg):
    recorder = gan_step_norms(make_cfg, "cpu", plugins=[fp16_cpu()])
    assert set(recorder.activations) == {torch.float16}  # D's logits under fp16 autocast
    assert len(recorder.norms) == 8  # no overflow in these 4 batches: every step taken
    assert all(CLIP * 0.5 < norm <= CLIP * 1.001 for norm in recorder.norms)
    # The clip sees the gradients unscaled: the first D step's norm is fp32's, not 65536 times it.
    fp32 = gan_step_norms(make_cfg, "cpu", precision="32-true")
    assert recorder.seen_at_clip[0] == pytest.approx(fp32.seen_at_clip[0], rel=0.05)
    assert all(CLIP < norm < 100 for norm in recorder.seen_at_clip)


class OverflowOnce(L.Callback):
    """Writes inf into one gradient of batch `batch`'s first backward pass: the GradScaler must skip that
    step (the weight stays as it was) and halve its scale."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.scales: list[float] = []  # the scale after each batch
        self.weight: tuple[str, torch.Tensor, torch.Tensor] | None = None  # (name, before, after the batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.batch_idx = batch_idx
        self.before = {name: p.detach().clone() for name, p in pl_module.named_parameters()}

    def on_after_backward(self, trainer, pl_module) -> None:
        if self.batch_idx != self.batch or self.weight is not None:
            return
        # a weight of the optimiser about to step (the GAN's toggled_optimizer freezes the other net's)
        name, weight = next(
            (n, p) for n, p in pl_module.named_parameters() if p.requires_grad and p.grad is not None
        )
        weight.grad.fill_(math.inf)
        self.weight = (name, self.before[name], weight)

    def on_train_batch_end(self, trainer, *args) -> None:
        self.scales.append(trainer.precision_plugin.scaler.get_scale())
        if self.batch_idx == self.batch:
            name, before, weight = self.weight
            self.weight = (name, before, weight.detach().clone())


def fit_fp16(model: L.LightningModule, images: torch.Tensor, batches: int, callback: L.Callback) -> L.Trainer:
    """`batches` batches of 8 `images` (one optimiser step per batch for the VAE, two for the GAN) on fp16."""
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(len(images))), 8)
    steps_per_batch = 1 if model.automatic_optimization else model.hparams.d_steps + 1
    trainer = L.Trainer(
        accelerator="cpu",
        plugins=[fp16_cpu()],
        max_steps=batches * steps_per_batch,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(model, data)
    return trainer


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_fp16_trains_with_a_grad_scaler_on_cpu(model):
    images = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    module = make_vae() if model == "vae" else make_gan()
    if model == "gan":
        images = images * 2 - 1
    overflow = OverflowOnce(batch=2)
    trainer = fit_fp16(module, images, batches=4, callback=overflow)
    assert isinstance(trainer.precision_plugin.scaler, torch.amp.GradScaler)
    # GradScaler starts at 2**16 and grows only after 2000 clean steps; the VAE's summed loss overflows it
    # on its own at the first step, the GAN's does not.
    assert overflow.scales[0] == (2.0**15 if model == "vae" else 2.0**16)
    assert overflow.scales[2] == overflow.scales[1] / 2 == overflow.scales[3]
    name, before, after = overflow.weight
    assert torch.equal(before, after), name  # the step was skipped (the GAN's G step after it was not)
    assert all(torch.isfinite(p).all() for p in module.parameters())


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_fp16_cpu_config_trains_both_models(make_cfg, model):
    metrics = train(make_cfg(f"model={model}", "trainer=fp16_cpu", *TINY))
    losses = {name: value for name, value in metrics.items() if name.endswith("loss")}
    assert losses and all(math.isfinite(value) for value in losses.values())


def test_fp16_cpu_config_keeps_the_default_plugins():
    fp16, default = compose_train("trainer=fp16_cpu").trainer, compose_train().trainer
    assert fp16.plugins[:-1] == default.plugins
    assert fp16.plugins[-1]._target_ == "lightning.pytorch.plugins.MixedPrecision"
    assert fp16.precision is None  # Lightning refuses a precision beside a precision plugin
