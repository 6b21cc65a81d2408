"""A checkpoint when the run is told to stop: SIGTERM (schedulers, SLURM) or Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genlab.run_dir import LAST_CHECKPOINT

log = logging.getLogger(__name__)


class CheckpointOnInterrupt(L.Callback):
    """Writes `<dirpath>/last.ckpt` at the step reached when a SIGTERM or a Ctrl-C stops training.

    Lightning already turns SIGTERM into a stop at the end of the current batch (SIGTERMException), but saves
    nothing and exits 0. Lightning's OnExceptionCheckpoint saves on any error (a diverged run too) and deletes
    its file after a normal end, so this small callback does it for the two interruptions only. A first Ctrl-C
    is handled like SIGTERM: the batch finishes, so the checkpoint is consistent; a second one stops at once,
    without a checkpoint. train.py then prints the command that resumes the run and exits non-zero.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.signal: str | None = None  # the signal that stopped the run
        self.saved: Path | None = None
        self._previous_sigint: Any = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registers its SIGTERM handler when fit starts; Ctrl-C becomes the same graceful stop.
        self.signal = "SIGTERM"
        if _in_main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.signal = "SIGINT"
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        if isinstance(exception, SIGTERMException) and fitting:
            self.saved = self.dirpath / LAST_CHECKPOINT
            # The full state (optimisers, loops, callbacks), so a resume is exact; atomic (trainer.plugins).
            trainer.save_checkpoint(self.saved, weights_only=False)
            log.info("%s: saved %s at step %d", self.signal, self.saved, trainer.global_step)
        self._restore_sigint()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and _in_main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
        self._previous_sigint = None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
