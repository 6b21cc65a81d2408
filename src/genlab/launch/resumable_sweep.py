"""Sweeps that survive: run a sweep again in its folder and it goes on where it stopped.

Every job's run folder says how far the job got:
- `finished.json` (written by train.py at the end) or `failed.json` (genlab.launch.failures): finished;
  the job is left alone, its files untouched;
- a `checkpoints/last.ckpt` without either: interrupted; the job runs again and train.py resumes it from
  that checkpoint (`auto_resume`), as it does for a requeued SLURM job;
- anything else: never started (or killed before its first checkpoint); the job runs from the start.

The sweeper that reads this is hydra_plugins.genlab_resumable_sweeper (Hydra only loads plugins from the
`hydra_plugins` package): Hydra's basic sweeper, which hands the launcher only the jobs left to do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from genlab.atomic import atomic_write
from genlab.run_dir import failure_file, finished_file, last_checkpoint

log = logging.getLogger(__name__)

#: finished.json's record of a run's training time (validation included; over all its resumes)
TRAIN_MINUTES = "time/train_minutes"


class JobState(Enum):
    NEW = "new"
    INTERRUPTED = "interrupted"
    FINISHED = "finished"


def record_finished(output_dir: str | Path, metrics: Mapping[str, float]) -> Path:
    """Mark a run finished, with its final metrics (written atomically: a kill never leaves half a file)."""
    text = json.dumps(dict(metrics), indent=2)
    return atomic_write(finished_file(output_dir), lambda partial: partial.write_text(text))


def job_state(run_dir: str | Path) -> JobState:
    if finished_file(run_dir).is_file() or failure_file(run_dir).is_file():
        return JobState.FINISHED
    if last_checkpoint(run_dir).is_file():
        return JobState.INTERRUPTED
    return JobState.NEW


def interrupted_checkpoint(run_dir: str | Path) -> Path | None:
    """The last.ckpt of an interrupted run in `run_dir`, or None (a new or finished run)."""
    return last_checkpoint(run_dir) if job_state(run_dir) is JobState.INTERRUPTED else None


def job_dir(config_loader: Any, master_config: DictConfig, overrides: Sequence[str], job_num: int) -> Path:
    """The run folder the launcher gives job `job_num` with `overrides` (hydra.sweep.dir / subdir)."""
    config = config_loader.load_sweep_config(master_config, list(overrides))
    with open_dict(config):
        config.hydra.job.num = job_num
    return Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)


class SkipFinishedJobs(Launcher):
    """Wraps a Hydra launcher: launches only the unfinished jobs of each batch, under their own job numbers
    (so in their own folders)."""

    def __init__(self, launcher: Launcher, config_loader: Any, master_config: DictConfig) -> None:
        self.launcher = launcher
        self.config_loader = config_loader
        self.master_config = master_config

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.launcher.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        results: list[JobReturn] = []
        run: list[list[str]] = []  # consecutive jobs to launch together (the launcher numbers them in order)
        first = initial_job_idx
        for offset, overrides in enumerate(job_overrides):
            num = initial_job_idx + offset
            folder = job_dir(self.config_loader, self.master_config, overrides, num)
            state = job_state(folder)
            if state is JobState.FINISHED:
                log.info("sweep job %d is finished (%s): left alone", num, folder)
                if run:
                    results += self.launcher.launch(run, initial_job_idx=first)
                run, first = [], num + 1
                continue
            if state is JobState.INTERRUPTED:
                log.info("sweep job %d was interrupted: it resumes from %s", num, last_checkpoint(folder))
            run.append(list(overrides))
        if run:
            results += self.launcher.launch(run, initial_job_idx=first)
        return results
