"""Test-only callbacks for runs started as subprocesses: `+callbacks.<name>._target_=run_probes.<Class>`
(the tests put this folder on PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L
import torch


class SlowBatches(L.Callback):
    """Sleeps after each training batch, so that a test can signal a run in the middle of an epoch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)


class SignalAtStep(L.Callback):
    """Sends this process a real SIGTERM once `trainer.global_step` reaches `step` in sweep job `job`."""

    def __init__(self, step: int, job: int | None = None) -> None:
        self.step, self.job = step, job

    def on_train_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        this_job = HydraConfig.get().job.num if HydraConfig.initialized() else None
        if trainer.global_step == self.step and (self.job is None or this_job == self.job):
            os.kill(os.getpid(), signal.SIGTERM)


class DumpRankState(L.Callback):
    """At the end of fit, writes this rank's logged metrics and weights to <path>/rank<r>.pt."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        state = {
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "weights": {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()},
        }
        torch.save(state, self.path / f"rank{trainer.global_rank}.pt")


class FailInJob(L.Callback):
    """Raises as training starts in sweep job `job`, so that a test sees one job of a sweep fail."""

    def __init__(self, job: int) -> None:
        self.job = job

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.get().job.num == self.job:
            raise RuntimeError(f"the probe fails sweep job {self.job}")
