"""The speed settings: model.compile, model.channels_last, data.device and trainer.float32_matmul_precision
train the same model, keep checkpoints those of the plain model, and refuse bad values by name; empty
per-batch hooks are skipped."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import assert_same_run, build_model
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import open_dict

from genlab import train as genlab_train
from genlab.callbacks import TrainingScalars
from genlab.errors import ConfigError
from genlab.instantiate import build
from genlab.speed import PER_BATCH_HOOKS, set_matmul_precision
from genlab.train import train

SHORT = ["trainer.max_steps=3", "+trainer.limit_val_batches=1", "logger=none", "callbacks=[model_checkpoint]"]


def last_checkpoint(cfg) -> Path:
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def run_in(cfg, name: str):
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path(cfg.paths.output_dir).parent / name)
    train(cfg)
    return cfg


def test_channels_last_trains_the_same_model(make_cfg):
    plain = run_in(make_cfg("data=imagenette", "model=vae", *SHORT), "plain")
    nhwc = run_in(make_cfg("data=imagenette", "model=vae", "model.channels_last=true", *SHORT), "nhwc")
    model = build_model(make_cfg("data=imagenette", "model=vae", "model.channels_last=true"))
    conv = next(p for p in model.encoder.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    first, second = (torch.load(last_checkpoint(c), weights_only=True) for c in (plain, nhwc))
    assert first["state_dict"].keys() == second["state_dict"].keys()
    assert "compile" not in second["hyper_parameters"] and "channels_last" not in second["hyper_parameters"]
    # The same model to rounding (other conv kernels): the same losses on the same batches.
    losses = [c["callbacks"]["TrainingScalars"]["history"]["loss"][1] for c in (first, second)]
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=0.0)


def test_data_on_the_device_trains_the_same_run(make_cfg):
    default = run_in(make_cfg("model=gan", *SHORT), "default")
    auto = run_in(make_cfg("model=gan", "data.device=auto", *SHORT), "auto")
    assert_same_run(last_checkpoint(default), last_checkpoint(auto))


def test_a_gpu_data_device_without_a_gpu_names_the_fix(make_cfg):
    cfg = make_cfg("model=vae", "data.device=cuda", *SHORT)
    with pytest.raises(ConfigError, match="data.device='cuda' needs training on a GPU.*data.device=auto"):
        train(cfg)


def test_a_bad_data_device_is_refused_by_name(make_cfg):
    with pytest.raises(ConfigError, match="data.device"):
        build(make_cfg("data.device=tpu").data)


def test_matmul_precision_is_a_trainer_setting(make_cfg):
    before = torch.get_float32_matmul_precision()
    try:
        config = set_matmul_precision(make_cfg("trainer.float32_matmul_precision=high").trainer)
        assert torch.get_float32_matmul_precision() == "high"
        assert "float32_matmul_precision" not in config
        with pytest.raises(ConfigError, match="trainer.float32_matmul_precision"):
            set_matmul_precision(make_cfg("trainer.float32_matmul_precision=fast").trainer)
    finally:
        torch.set_float32_matmul_precision(before)


def test_compile_compiles_each_net_in_place(make_cfg):
    model = build_model(make_cfg("model=gan", "model.compile=true"))
    for net in (model.generator, model.discriminator):
        assert net._compiled_call_impl is not None
    assert not any("_orig_mod" in name for name in model.state_dict())


@pytest.mark.slow
def test_a_compiled_run_trains_and_saves_a_plain_checkpoint(make_cfg):
    cfg = run_in(make_cfg("model=gan", "model.compile=true", *SHORT), "compiled")
    state = torch.load(last_checkpoint(cfg), weights_only=True)["state_dict"]
    assert state and not any("_orig_mod" in name for name in state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="data.device=auto keeps the data on a GPU")
def test_data_device_auto_batches_on_the_gpu(make_cfg):
    devices = []

    class Where(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            devices.append(batch[0].device.type)

    cfg = make_cfg("model=vae", "data.device=auto", "trainer=gpu", *SHORT)
    datamodule = build(cfg.data, _convert_="all")
    trainer = L.Trainer(accelerator="gpu", devices=1, max_steps=2, logger=False, callbacks=[Where()])
    trainer.fit(build_model(cfg), datamodule=datamodule)
    assert devices == ["cuda", "cuda"]
    assert datamodule.splits["train"].images.device.type == "cpu"  # the CPU copy stays for the pictures


class CountsBackward(L.Callback):
    """A callback with one per-batch hook of its own."""

    def __init__(self) -> None:
        self.calls = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1


def test_empty_per_batch_hooks_are_skipped_and_defined_ones_still_run(make_cfg):
    cfg = make_cfg("model=vae", *SHORT[:3], "checkpoint_monitor=null")
    counter = CountsBackward()
    datamodule = build(cfg.data, _convert_="all")
    model = genlab_train.build_model(cfg, datamodule)
    trainer = genlab_train.build_trainer(cfg, [], [counter])
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    scalars = next(c for c in trainer.callbacks if isinstance(c, TrainingScalars))
    # Empty hooks are None on the instance (Lightning skips what is not callable); defined ones stay.
    assert counter.on_before_backward is None and callable(counter.on_after_backward)
    assert checkpoint.on_before_zero_grad is None and callable(checkpoint.on_train_batch_end)
    assert scalars.on_train_batch_start is None and callable(scalars.on_train_batch_end)
    assert model.on_after_backward is None and callable(model.training_step)
    assert all(getattr(L.Callback, hook) is not None for hook in PER_BATCH_HOOKS)  # classes untouched
    trainer.fit(model, datamodule=datamodule)
    assert counter.calls == 3
    assert len(scalars.history["loss"][0]) == 3


def test_a_model_hook_it_defines_is_kept(make_cfg):
    model = build_model(make_cfg("model=gan", "model.grad_clip=1.0"))
    assert callable(model.on_before_optimizer_step)  # the GAN clips its gradients there
