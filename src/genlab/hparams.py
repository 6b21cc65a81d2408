"""TensorBoard's HParams tab: each run's chosen hyperparameters beside its final metrics, so the runs of a
sweep can be sorted and compared there. train.py logs them at the end of fit; evaluate.py adds its FID, KID,
precision/recall and bounds to the same run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

#: config sections that say where things go, not what the experiment is
NOT_HYPERPARAMETERS = ("paths", "callbacks", "logger", "hydra", "ckpt_path")
#: the final metrics shown beside the hyperparameters are logged under this prefix (not to mix them with the
#: per-step curves: Lightning writes them as scalars at step 0)
PREFIX = "hparams/"
TENSORBOARD_DIR = "tensorboard"


def chosen_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's resolved config without its file locations and plumbing (Lightning flattens it to
    `model/optimizer/lr`-style names)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    return {key: value for key, value in config.items() if key not in NOT_HYPERPARAMETERS}


def final_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The finite scalar metrics worth a column: validation and training values, and evaluate.py's numbers."""
    return {
        f"{PREFIX}{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def log_hparams(loggers: Iterable[Any], params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Write the hyperparameters with `metrics` to every TensorBoard logger (the HParams tab)."""
    values = final_metrics(metrics)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and values:
            logger.log_hyperparams(dict(params), metrics=values)
            logger.save()


def add_to_run(run_dir: Path, metrics: Mapping[str, float]) -> bool:
    """Add `metrics` (evaluate.py's) to a run's HParams entry, beside those train.py logged; False when the
    run has no TensorBoard log to add them to."""
    log_dir = Path(run_dir) / TENSORBOARD_DIR
    if not (log_dir / "hparams.yaml").is_file():
        return False
    from lightning.pytorch.core.saving import load_hparams_from_yaml

    from genlab.report.runs import read_tensorboard

    earlier = {
        tag.removeprefix(PREFIX): points[-1][1]
        for tag, points in read_tensorboard(log_dir).items()
        if tag.startswith(PREFIX) and points
    }
    logger = TensorBoardLogger(
        save_dir=str(run_dir), name=TENSORBOARD_DIR, version="", default_hp_metric=False
    )
    log_hparams([logger], load_hparams_from_yaml(str(log_dir / "hparams.yaml")), earlier | dict(metrics))
    logger.finalize("success")
    return True
