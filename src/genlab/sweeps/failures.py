"""Failure isolation for sweeps: a diverged or failed job is recorded in its run dir and the sweep goes on."""

from __future__ import annotations

import json
import math
import traceback
from pathlib import Path
from typing import Any

import lightning as L

from genlab.errors import GenlabError

#: written into a run dir when its job fails; genlab.sweeps.report marks the run failed with its reason
FAILURE_FILE = "failed.json"


class DivergedError(GenlabError):
    """A training loss became NaN or infinite."""


class StopOnNonFiniteLoss(L.Callback):
    """Stop a run as soon as a logged training loss is NaN/inf, instead of training on garbage to the end."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.startswith("train/") and name.endswith("loss") and not math.isfinite(float(value)):
                raise DivergedError(
                    f"{name} = {float(value)} at step {trainer.global_step} (epoch {trainer.current_epoch}): "
                    "the run diverged; lower the learning rate or clip gradients (model.grad_clip)"
                )


def record_failure(output_dir: str | Path, error: BaseException) -> Path:
    """Write `failed.json` (reason, error type, traceback) into the run dir and return its path."""
    path = Path(output_dir) / FAILURE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "reason": str(error) or type(error).__name__,
        "error": type(error).__name__,
        "diverged": isinstance(error, DivergedError),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }
    path.write_text(json.dumps(record, indent=2))
    return path


def read_failure(run_dir: str | Path) -> dict[str, Any] | None:
    """The failure record of a run dir, or None when the job did not record one."""
    path = Path(run_dir) / FAILURE_FILE
    return json.loads(path.read_text()) if path.is_file() else None
