"""Every training step's scalars, logged with one host-device synchronisation per logging interval."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from genlab.compat import logger_step, logging_interval
from genlab.errors import DivergedError


class TrainingScalars(Callback):
    """Logs the scalars that `training_step` returns (VAE: loss, recon, kl; GAN: d_loss, d_real, d_fake,
    g_loss) as `train/<name>` for EVERY batch, and stops the run when one whose name ends in "loss" turns
    NaN or infinite. Part of every train.py run, first in the callback list.

    Why not `self.log` in the model: Lightning's per-step logging, the progress bar and a NaN check each turn
    the values into Python floats after every batch, a host-device synchronisation per step on a GPU, and
    `self.log`'s bookkeeping alone cost ~5% of a small model's step on a CPU. Here each batch's values stay on
    the device, stacked into one small tensor; every `trainer.log_every_n_steps` batches (and at each epoch's
    end and before a checkpoint) they come to the host in ONE transfer, and each batch's values are written
    to the loggers at that batch's own step. The curves keep every batch; a diverged run stops within
    `log_every_n_steps` batches. The latest values go to the progress bar (the losses) and to
    `trainer.callback_metrics` (what the sweeps and the HParams tab read).

    The history (batch number and value of every scalar) is kept in the checkpoint, so a resumed run's loss
    curves (genlab.callbacks.LossCurves) start at its first batch.
    """

    prefix = "train/"

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.history: dict[str, tuple[list[int], list[float]]] = {}
        self._pending: list[torch.Tensor] = []  # one [len(names)] tensor per batch, on the device
        self._pending_steps: list[int] = []
        self._trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, *args) -> None:
        scalars = {
            name: value
            for name, value in (outputs or {}).items()
            if isinstance(value, torch.Tensor) and value.numel() == 1
        }
        if not scalars:
            return
        if tuple(scalars) != self.names:
            self.flush(trainer)
            self.names = tuple(scalars)
        self._pending.append(torch.stack([value.detach().reshape(()).float() for value in scalars.values()]))
        # Lightning's own count of trained batches, the step its loggers use for this batch (and for val/*).
        self._pending_steps.append(logger_step(trainer))
        if len(self._pending) >= max(logging_interval(trainer), 1):
            self.flush(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer)

    def flush(self, trainer: L.Trainer) -> None:
        """Bring the pending batches' values to the host, log them, and stop on a non-finite loss."""
        if not self._pending:
            return
        values = torch.stack(self._pending).cpu()  # the one synchronisation of the interval
        steps, self._pending, self._pending_steps = self._pending_steps, [], []
        names = [self.prefix + name for name in self.names]
        for step, row in zip(steps, values.tolist(), strict=True):
            for logger in trainer.loggers:
                logger.log_metrics(dict(zip(names, row, strict=True)), step=step)
            for name, value in zip(self.names, row, strict=True):
                batches, history = self.history.setdefault(name, ([], []))
                batches.append(step + 1)
                history.append(value)
        for name, value in zip(names, values[-1], strict=True):
            trainer.callback_metrics[name] = value
            if name.endswith("loss"):
                trainer.progress_bar_metrics[name] = value.item()
        for row, step in zip(values.tolist(), steps, strict=True):
            for name, value in zip(names, row, strict=True):
                if name.endswith("loss") and not math.isfinite(value):
                    raise DivergedError(
                        f"{name} = {value} at step {step + 1} (epoch {trainer.current_epoch}): the run "
                        "diverged; lower the learning rate or clip gradients (model.grad_clip)"
                    )

    def state_dict(self) -> dict[str, Any]:
        if self._trainer is not None:
            self.flush(self._trainer)  # the checkpoint holds every batch trained so far
        return {
            "history": {
                name: torch.tensor([steps, values], dtype=torch.float64)
                for name, (steps, values) in self.history.items()
            }
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {
            name: ([int(s) for s in pair[0].tolist()], pair[1].tolist())
            for name, pair in state_dict.get("history", {}).items()
        }
