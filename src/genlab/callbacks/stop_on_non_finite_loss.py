"""Stopping a run whose training loss turned NaN or infinite."""

from __future__ import annotations

import math
from typing import Any

import lightning as L

from genlab.errors import DivergedError


class StopOnNonFiniteLoss(L.Callback):
    """Stop a run as soon as a logged training loss is NaN/inf, instead of training on garbage to the end."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.startswith("train/") and name.endswith("loss") and not math.isfinite(float(value)):
                raise DivergedError(
                    f"{name} = {float(value)} at step {trainer.global_step} (epoch {trainer.current_epoch}): "
                    "the run diverged; lower the learning rate or clip gradients (model.grad_clip)"
                )
