"""TensorBoard's HParams tab: each run's chosen hyperparameters beside its final metrics, so the runs of a
sweep can be sorted and compared there. train.py logs them at the end of fit; evaluate.py adds its FID, KID,
precision/recall and bounds to the same run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from genlab.compat import event_file_writer
from genlab.mappings import as_dict, flatten
from genlab.run_dir import tensorboard_dir

#: config sections that say where things go, not what the experiment is
NOT_HYPERPARAMETERS = ("paths", "callbacks", "logger", "hydra", "ckpt_path")
#: the final metrics shown beside the hyperparameters are logged under this prefix, apart from the curves
PREFIX = "hparams/"


def chosen_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's resolved config without its file locations and plumbing."""
    config = as_dict(cfg)
    return {key: value for key, value in config.items() if key not in NOT_HYPERPARAMETERS}


def tensorboard_hparams(params: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Nested settings -> {'model/optimizer/lr': 0.0002, ...}, values TensorBoard can show (lists as text)."""
    return {
        key: value if isinstance(value, bool | int | float | str) else str(value)
        for key, value in flatten(params, sep="/").items()
    }


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite scalars worth a column, under PREFIX: validation and training values, evaluate.py's."""
    return {
        f"{PREFIX}{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


@rank_zero_only  # under DDP only rank 0 writes files
def log_hparams(loggers: Iterable[Any], params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Write the hyperparameters and `metrics` to every TensorBoard logger (its HParams tab).

    Written by hand rather than with `TensorBoardLogger.log_hyperparams(params, metrics)`: that also writes an
    experiment summary, which fixes the metric columns to this run's metrics at this moment, and TensorBoard
    shows only one run's such summary for a whole sweep, so evaluate.py's later FID would never appear.
    Without it TensorBoard takes the columns from every run's scalars, those added later included.
    """
    values = final_metrics(metrics)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and values:
            logger.log_hyperparams(dict(params))  # hparams.yaml beside the events
            logger.log_metrics(values, step=0)
            _, session_start, session_end = hparams_summary(tensorboard_hparams(params), values)
            writer = event_file_writer(logger.experiment)
            writer.add_summary(session_start)
            writer.add_summary(session_end)
            logger.save()


def add_to_run(run_dir: Path, metrics: Mapping[str, Any]) -> bool:
    """Add `metrics` (evaluate.py's) to a run's HParams row, beside those train.py logged; False when the run
    has no TensorBoard log."""
    log_dir = tensorboard_dir(run_dir)
    if not any(log_dir.glob("events.out.tfevents.*")):
        return False
    with SummaryWriter(str(log_dir)) as writer:
        for tag, value in final_metrics(metrics).items():
            writer.add_scalar(tag, value, global_step=0)
    return True
