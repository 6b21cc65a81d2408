"""Failure isolation: a diverged (NaN) or failing sweep job is recorded in its run dir; a run exits 1."""

import json
import math
from types import SimpleNamespace

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict, read_write

from genlab.callbacks import TrainingScalars
from genlab.errors import DivergedError
from genlab.launch.ddp import check_ddp_launch
from genlab.launch.failures import read_failure
from genlab.train import run

TINY = ("trainer.max_epochs=1", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=1")


def as_sweep_job(cfg):
    with read_write(cfg.hydra), open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig().set_config(cfg)
    return cfg


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_loss_stops_the_run_at_the_next_flush(value):
    """TrainingScalars looks at the values once per logging interval: the run stops there, naming the first
    bad batch, after the values went to the loggers."""
    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((step, metrics)))
    trainer = SimpleNamespace(
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=0)),
        log_every_n_steps=4,
        loggers=[logger],
        callback_metrics={},
        progress_bar_metrics={},
        current_epoch=0,
    )
    scalars = TrainingScalars()
    for step, g_loss in enumerate([1.0, 2.0, value, 3.0]):
        trainer.fit_loop.epoch_loop._batches_that_stepped = step
        outputs = {"d_real": torch.tensor(0.5), "g_loss": torch.tensor(g_loss)}
        if step < 3:
            scalars.on_train_batch_end(trainer, None, outputs, None, step)
            assert logged == []  # nothing reaches the host before the interval is full
        else:
            with pytest.raises(DivergedError, match="train/g_loss = (nan|inf) at step 3 "):
                scalars.on_train_batch_end(trainer, None, outputs, None, step)
    assert [step for step, _ in logged] == [0, 1, 2, 3]
    assert logged[0][1] == {"train/d_real": 0.5, "train/g_loss": 1.0}
    assert scalars.history["g_loss"][0] == [1, 2, 3, 4]


def test_a_diverging_sweep_job_is_recorded_and_returns(make_cfg, tmp_path):
    # An absurd learning rate: Adam's first step moves every weight by ~1e30, the next loss is not finite.
    cfg = as_sweep_job(make_cfg("model.optimizer.lr=1e30", *TINY))
    assert run(cfg) == {}
    failure = read_failure(tmp_path / "run")
    assert failure["diverged"] and "train/loss" in failure["reason"] and "learning rate" in failure["reason"]


def test_a_failing_sweep_job_keeps_genlabs_message(make_cfg, tmp_path):
    cfg = as_sweep_job(make_cfg("model.optimizer.lr=-1", *TINY))
    assert run(cfg) == {}
    record = json.loads((tmp_path / "run" / "failed.json").read_text())
    assert record["error"] == "ConfigError" and "model.optimizer.lr=-1" in record["reason"]


def test_a_single_run_still_exits_1(make_cfg, tmp_path, capsys):
    cfg = make_cfg("model.optimizer.lr=-1", *TINY)
    with pytest.raises(SystemExit) as exit_info:
        run(cfg)
    assert exit_info.value.code == 1 and "model.optimizer.lr=-1" in capsys.readouterr().err
    assert read_failure(tmp_path / "run") is None


def test_script_relaunching_ddp_is_refused_in_a_local_sweep(make_cfg, tmp_path, monkeypatch):
    for name in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    cfg = make_cfg("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *TINY)
    check_ddp_launch(cfg.trainer, multirun=False)  # a single DDP run: Lightning reuses its run dir
    check_ddp_launch(make_cfg("+trainer.strategy=ddp_spawn", "trainer.devices=2").trainer, multirun=True)
    assert run(as_sweep_job(cfg)) == {}
    assert "hydra/launcher=slurm" in read_failure(tmp_path / "run")["reason"]
    monkeypatch.setenv("SLURM_NTASKS", "2")  # SLURM starts every rank itself: nothing is re-run
    monkeypatch.setenv("SLURM_JOB_NAME", "genlab")
    check_ddp_launch(cfg.trainer, multirun=True)
