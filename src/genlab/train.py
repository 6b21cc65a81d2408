"""The training entry point: build data, model, callbacks, loggers and trainer from the config, then fit."""

from __future__ import annotations

import logging
import math
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, Timer, TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from genlab import run_dir
from genlab.callbacks.interrupt import CheckpointOnInterrupt
from genlab.callbacks.random_state import RandomState
from genlab.callbacks.training_scalars import TrainingScalars
from genlab.checkpoints import check_architecture, checkpoint_model_class
from genlab.compat import trainer_callbacks
from genlab.data.base import ImageDataModule
from genlab.errors import CheckpointError, ConfigError, Interrupted, exits_on_error
from genlab.hparams import chosen_hparams, log_hparams
from genlab.instantiate import build, build_group, check_types
from genlab.launch.ddp import check_ddp_launch, without_cpu_sync_batchnorm
from genlab.launch.failures import record_failure
from genlab.launch.resumable_sweep import TRAIN_MINUTES, interrupted_checkpoint, record_finished
from genlab.speed import (
    cheap_cuda_checks,
    set_matmul_precision,
    skip_empty_hooks,
    speed_up,
    split_speed_settings,
)

log = logging.getLogger(__name__)

#: the run's own keys, checked at start, before anything reads them (the built objects' arguments are checked
#: against their constructors' annotations by genlab.instantiate.build)
RUN_KEYS = {
    "seed": int,
    "trainer.max_epochs": int | None,
    "trainer.max_steps": int | None,
    "ckpt_path": str | None,
    "auto_resume": bool,
    "optimized_metric": str | None,
}

# Batches are single index operations on an in-memory tensor: loader workers would not speed them up.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning 2.6's own pytree helper trips a torch deprecation warning on every run; nothing to act on.
warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\).*")


def check_resume(cfg: DictConfig) -> None:
    """Refuse `ckpt_path` of another model class than this run's, before anything is built."""
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path:
        return
    found, expected = checkpoint_model_class(ckpt_path), get_class(cfg.model._target_)
    if found is not expected:
        raise CheckpointError(
            f"ckpt_path={ckpt_path!r} holds a {found.__name__} ({found.__module__}), but this run's model is "
            f"a {expected.__name__}: add model={found.__name__.lower()} (or model._target_="
            f"{found.__module__}.{found.__qualname__}) and the data it was trained on to resume it"
        )


def resume_interrupted(cfg: DictConfig) -> None:
    """With `auto_resume` and no `ckpt_path`, set `ckpt_path` to the last.ckpt of an interrupted run in this
    run's folder: a requeued SLURM job, or a sweep job run again, goes on where it stopped."""
    if cfg.get("ckpt_path") or not cfg.get("auto_resume"):
        return
    checkpoint = interrupted_checkpoint(cfg.paths.output_dir)
    if checkpoint is not None:
        log.info("resuming the interrupted run in %s from %s", cfg.paths.output_dir, checkpoint)
        with open_dict(cfg):
            cfg.ckpt_path = str(checkpoint)


def build_model(cfg: DictConfig, datamodule: ImageDataModule) -> L.LightningModule:
    """The model, its nets built from their configs for the data's image shape, with its speed settings
    (`model.compile`, `model.channels_last`) applied."""
    model_config, settings = split_speed_settings(cfg.model)
    model = build(model_config, "model", image_shape=list(datamodule.image_shape), _recursive_=False)
    skip_empty_hooks([model])
    return speed_up(model, **settings)


def build_trainer(
    cfg: DictConfig, loggers: list[Logger], extra_callbacks: Sequence[L.Callback] = ()
) -> L.Trainer:
    """The trainer of `cfg.trainer` with the configured callbacks and the ones every run has."""
    trainer_config = without_cpu_sync_batchnorm(set_matmul_precision(cfg.trainer))
    cheap_cuda_checks()
    # TrainingScalars first, so the other callbacks see each interval's values; RandomState makes a resume
    # replay every random stream.
    configured = build_group(cfg.get("callbacks"), "callbacks")
    callbacks = [TrainingScalars(), *configured, RandomState(), *extra_callbacks]
    if trainer_config.get("max_time") is None:  # else Lightning adds its Timer, which stops the run
        callbacks.append(Timer(verbose=False))  # the training time, summed over resumes (in checkpoints)
    if trainer_config.get("enable_progress_bar", True) and not any(
        isinstance(callback, ProgressBar) for callback in callbacks
    ):
        # Lightning's default bar redraws after every batch, but the losses it shows change once per logging
        # interval (TrainingScalars): it redraws with them.
        interval = int(trainer_config.get("log_every_n_steps", 50))
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, interval)))
    # Without a checkpoint callback (callbacks=none) no checkpoints, as the config says: Lightning would add
    # its default ModelCheckpoint, writing into the logger's folder.
    checkpointing = {}
    if "enable_checkpointing" not in trainer_config:
        checkpointing["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer = build(trainer_config, "trainer", callbacks=callbacks, logger=loggers or False, **checkpointing)
    skip_empty_hooks(trainer_callbacks(trainer))  # with the ones Lightning added
    return trainer


@rank_zero_only  # DDP ranks > 0 share the run dir (see genlab.launch.ddp)
def save_config(cfg: DictConfig, output_dir: Path) -> None:
    """The run's resolved config, beside its outputs."""
    OmegaConf.save(cfg, run_dir.config_file(output_dir), resolve=True)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit one run and return its final logged metrics (what a Hydra sweeper optimises)."""
    check_types(cfg, RUN_KEYS)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_ddp_launch(cfg.trainer, in_multirun())
    resume_interrupted(cfg)
    save_config(cfg, output_dir)
    check_resume(cfg)

    # Plain values (no OmegaConf containers): the data module's settings go into every checkpoint.
    datamodule = build(cfg.data, "data", _convert_="all")
    datamodule.check_available()  # fail in seconds, before models and trainer are built
    if cfg.get("ckpt_path"):
        model_config, _ = split_speed_settings(cfg.model)
        check_architecture(cfg.ckpt_path, model_config | {"image_shape": list(datamodule.image_shape)})
    model = build_model(cfg, datamodule)
    checkpoints = OmegaConf.select(cfg, "callbacks.last_checkpoint.dirpath", default=None)
    interrupt = CheckpointOnInterrupt(checkpoints or run_dir.checkpoints_dir(output_dir))
    loggers = build_group(cfg.get("logger"), "logger")
    trainer = build_trainer(cfg, loggers, [interrupt])

    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    except SIGTERMException:  # Lightning's stop after a SIGTERM, as a SystemExit with status 0
        raise Interrupted(interrupted_message(trainer, interrupt), interrupt.signal or "SIGTERM") from None
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    metrics[TRAIN_MINUTES] = round(training_seconds(trainer) / 60, 4)
    # TensorBoard's HParams tab: this run's hyperparameters beside its final metrics.
    log_hparams(loggers, chosen_hparams(cfg), metrics)
    rank_zero_only(record_finished)(output_dir, metrics)  # a re-run of the sweep leaves this job alone
    log.info("finished %s: %s", output_dir, {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics


def training_seconds(trainer: L.Trainer) -> float:
    """Seconds spent in fit's training stage by this run, with those before a resume."""
    timer = next(callback for callback in trainer_callbacks(trainer) if isinstance(callback, Timer))
    return timer.time_elapsed("train")


def resume_command(checkpoint: Path, output_dir: str) -> str:
    """The command line that resumes this run: the same arguments, resumed from `checkpoint` in the same run
    folder; for a sweep job, the same sweep in the same sweep folder (genlab.launch.resumable_sweep)."""
    replaced = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir")
    kept = [arg for arg in sys.argv[1:] if arg.split("=", 1)[0].lstrip("+~") not in replaced]
    if in_multirun():
        added = [f"hydra.sweep.dir={HydraConfig.get().sweep.dir}"]
    else:
        added = [f"ckpt_path={checkpoint}", f"hydra.run.dir={output_dir}"]
    return shlex.join(["python", sys.argv[0], *kept, *added])


def interrupted_message(trainer: L.Trainer, interrupt: CheckpointOnInterrupt) -> str:
    """One line: what stopped the run, where it stood, and the command that resumes it."""
    where = f"at step {trainer.global_step} (epoch {trainer.current_epoch})"
    if interrupt.saved is None:
        return f"{interrupt.signal} {where} before training began: nothing to resume; run the command again"
    command = resume_command(interrupt.saved.resolve(), str(Path(trainer.default_root_dir).resolve()))
    return f"{interrupt.signal} {where}, saved {interrupt.saved}; resume with: {command}"


def in_multirun() -> bool:
    """Whether this job is one of a sweep (`python train.py -m ...`)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float:
    """The value of `cfg.optimized_metric` for a hyperparameter search (the Lightning-Hydra template's
    convention). A failed or diverged trial (no value, NaN or inf) gets the worst value for the sweeper's
    direction, so the search learns from it and goes on."""
    name = cfg.optimized_metric
    value = metrics.get(name)
    if value is not None and math.isfinite(value):
        return value
    direction = "minimize"
    if HydraConfig.initialized():
        # HydraConfig.get() is typed as Hydra's dataclass, but is the DictConfig of it
        hydra_config = cast(DictConfig, HydraConfig.get())
        direction = str(OmegaConf.select(hydra_config, "sweeper.direction", default="minimize"))
    return math.inf if direction == "minimize" else -math.inf


def remove_unstarted_run(cfg: DictConfig) -> None:
    """After a single run failed: remove its folder if the run never trained (no checkpoint, no picture, no
    logged value) and resumed nothing, so that no empty run is left to count as a failed one. A sweep job
    keeps its folder: its failure record (failed.json) lives there, for the report and a re-run."""
    if cfg.get("ckpt_path") or not HydraConfig.initialized():
        return
    output_dir = Path(cfg.paths.output_dir)
    if output_dir.resolve() != Path(HydraConfig.get().runtime.output_dir).resolve():
        return  # not the folder Hydra made for this run
    log_name = f"{HydraConfig.get().job.name}.log"
    if rank_zero_only(run_dir.remove_if_unstarted)(output_dir, log_name):  # DDP ranks share the folder
        log.info("removed %s: the run failed before it trained", output_dir)


@exits_on_error
def run(cfg: DictConfig) -> dict[str, float] | float:
    """`train` for the command line: a genlab error prints its message and exits 1, without a stack trace.

    In a sweep any failure (a NaN loss included) is written to <run dir>/failed.json instead, and the other
    jobs go on: the report marks the run failed with its reason. With `optimized_metric` set (the presets in
    conf/hparams_search/), returns that metric's value for the sweeper instead of every metric.
    """
    try:
        metrics = train(cfg)
    except Exception as error:
        if not in_multirun():
            remove_unstarted_run(cfg)
            raise
        if isinstance(error, Interrupted):
            raise  # the sweep stops too: re-running it resumes this job (genlab.launch.resumable_sweep)
        path = record_failure(cfg.paths.output_dir, error)
        log.error("job failed (recorded in %s): %s", path, error)
        metrics = {}
    if not cfg.get("optimized_metric"):
        return metrics
    if metrics and cfg.optimized_metric not in metrics:
        raise ConfigError(
            f"optimized_metric={cfg.optimized_metric!r} was not logged by this run: choose one of "
            f"{sorted(metrics)}"
        )
    return optimized_value(cfg, metrics)
