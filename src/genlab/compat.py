"""The private parts of Lightning, TensorBoard (torch's SummaryWriter) and Hydra that genlab relies on, each
behind one small function here, so that an upgrade breaks in one module and tests/test_compat.py says where.

Each wrapper names the upstream thing it uses. pyproject.toml pins Lightning to the minor range that
tests/test_compat.py was run against; widen the pin only after those tests pass on the new version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hydra._internal.core_plugins import basic_sweeper as hydra_basic_sweeper

# Only Hydra at import: the sweeper plugin imports this module during Hydra's plugin scan, which every
# command (`--help` included) runs before any config exists, and torch and Lightning take seconds to import.
if TYPE_CHECKING:
    import lightning as L
    import torch
    from hydra.core.override_parser.types import Override
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.writer import FileWriter

# Hydra's grid sweeper lives in `hydra._internal.core_plugins.basic_sweeper` (`BasicSweeper`, the `basic`
# sweeper), which Hydra does not export publicly. genlab's resumable sweeper subclasses it and relies on its
# `setup` setting `self.launcher` and its `sweep` handing that launcher each batch of jobs.
# Subclass `hydra_basic_sweeper.BasicSweeper`, looked up in the module when the plugin module runs, never a
# copy of the class bound earlier: Hydra's plugin scan (hydra.core.plugins) executes every plugin module
# again in place, its core plugins first, and BasicSweeper's `super(BasicSweeper, self)` then names the new
# class, so a subclass of the class of an earlier import fails with "super(type, obj): obj must be an
# instance or subtype of type".


def split_sweep_arguments(overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
    """The jobs of a grid, in batches, as Hydra's basic sweeper expands parsed `overrides`
    (`BasicSweeper.split_arguments`): the product of the sweeps, in command-line order, the last key
    varying fastest; a later override of a key replaces an earlier one; one batch when `max_batch_size`
    is None."""
    return hydra_basic_sweeper.BasicSweeper.split_arguments(overrides, max_batch_size)


def event_file_writer(writer: SummaryWriter) -> FileWriter:
    """The event file writer behind a SummaryWriter (`SummaryWriter._get_file_writer()`, reopened if it was
    closed): the one `add_scalar` writes its events through, so a Summary written here is read back by
    TensorBoard exactly like theirs."""
    return writer._get_file_writer()


def metric_prefix(logger: TensorBoardLogger) -> str:
    """What Lightning's TensorBoardLogger puts before every metric name: its `prefix` argument (kept only as
    the private `_prefix`) and `LOGGER_JOIN_CHAR`, or nothing without a prefix (as fabric's
    `_add_prefix` does)."""
    prefix = logger._prefix
    return f"{prefix}{logger.LOGGER_JOIN_CHAR}" if prefix else ""


def logger_step(trainer: L.Trainer) -> int:
    """The step at which Lightning's loggers record the current training batch and the `self.log` values
    of this batch: the fit loop's count of batches that stepped
    (`trainer.fit_loop.epoch_loop._batches_that_stepped`), which, unlike `trainer.global_step`, counts a
    batch once whatever the number of optimizers."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The Trainer a LightningModule is attached to, or None (`LightningModule._trainer`; the public
    `trainer` property raises when there is none)."""
    return module._trainer


def save_unless_saved_this_step(checkpoint: ModelCheckpoint, trainer: L.Trainer) -> None:
    """Save `checkpoint`'s file now, as a ModelCheckpoint without a monitor saves at its triggers, unless it
    must not save (a fast_dev_run, outside fit, the sanity check) or already saved at this global step.

    Uses ModelCheckpoint's `_should_skip_saving_checkpoint(trainer)`, `_monitor_candidates(trainer)` and
    `_save_none_monitor_checkpoint(trainer, monitor_candidates)`, which also keep its `best_model_path`,
    `_last_global_step_saved` and top-1 file bookkeeping right."""
    if not checkpoint._should_skip_saving_checkpoint(trainer):
        checkpoint._save_none_monitor_checkpoint(trainer, checkpoint._monitor_candidates(trainer))


def skip_hook(obj: L.Callback | L.LightningModule, hook: str) -> None:
    """Make Lightning skip `hook` of this callback or module (set the attribute to None).

    Relies on Lightning's dispatch (lightning/pytorch/trainer/call.py: `_call_callback_hooks` and
    `_call_lightning_module_hook`) calling a hook only when the attribute is `callable`. `object.__setattr__`
    because nn.Module's own `__setattr__` would do more than set a plain attribute."""
    object.__setattr__(obj, hook, None)


def is_batch_norm(module: torch.nn.Module) -> bool:
    """Whether `module` is a BatchNorm layer of any dimension (torch's private base class `_BatchNorm`,
    SyncBatchNorm included)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return isinstance(module, _BatchNorm)


# Attributes that Lightning's connectors set on the Trainer without declaring them on the class, so a type
# checker cannot see them; read here, once, with their types.


def trainer_datamodule(trainer: L.Trainer) -> L.LightningDataModule | None:
    """`trainer.datamodule`, the data module of the current fit (None without one)."""
    return getattr(trainer, "datamodule", None)


def trainer_callbacks(trainer: L.Trainer) -> list[L.Callback]:
    """`trainer.callbacks`: the configured callbacks and those Lightning added."""
    return list(getattr(trainer, "callbacks", []))


def logging_interval(trainer: L.Trainer) -> int:
    """`trainer.log_every_n_steps`: how many batches apart Lightning's loggers are written."""
    return int(getattr(trainer, "log_every_n_steps", 1))
