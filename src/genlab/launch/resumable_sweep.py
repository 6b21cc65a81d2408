"""Sweeps that survive: run a sweep again in its folder and it goes on where it stopped.

Every job's run folder says how far the job got:
- `finished.json` (written by train.py at the end) or `failed.json` (genlab.launch.failures): finished;
  the job is left alone, its files untouched;
- a `checkpoints/last.ckpt` without either: interrupted; the job runs again and train.py resumes it from
  that checkpoint (`auto_resume`), as it does for a requeued SLURM job;
- anything else: never started (or killed before its first checkpoint); the job runs from the start.

The sweeper that reads this is hydra_plugins.genlab_resumable_sweeper (Hydra only loads plugins from the
`hydra_plugins` package): Hydra's basic sweeper, which hands the launcher only the jobs left to do.

A job's folder is `<job number>_<overrides>` (conf/hydra/default.yaml), the overrides being the ones that
vary across the sweep (`name_folders_by_what_varies`): the same command run again names every job's folder
as before, so its state is found there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from genlab.atomic import atomic_write
from genlab.compat import split_sweep_arguments
from genlab.launch.failures import read_failure, record_failure
from genlab.launch.summary import JobOutcome
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


def grid_jobs(
    params: Mapping[str, Any] | None, arguments: Sequence[str], config_loader: Any = None
) -> list[list[str]]:
    """Each job's overrides, as Hydra's basic sweeper expands them: `hydra.sweeper.params`, then the command
    line's `arguments` (which replace a param of the same key, so the command line narrows or widens it)."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    overrides = OverridesParser.create(config_loader=config_loader).parse_overrides([*lines, *arguments])
    return [job for batch in split_sweep_arguments(overrides, None) for job in batch]


def shared_keys(jobs: Sequence[Sequence[str]]) -> list[str]:
    """The keys that every job overrides with the same value (none for a sweep of one job: its folder is
    named by all its overrides)."""
    if len(jobs) < 2:
        return []
    parser = OverridesParser.create()
    lines: dict[str, list[str]] = {}
    for job in jobs:
        for override in parser.parse_overrides(list(job)):
            lines.setdefault(override.key_or_group, []).append(str(override.input_line))
    return sorted(key for key, line in lines.items() if len(set(line)) == 1 and len(line) == len(jobs))


def name_folders_by_what_varies(config: DictConfig, jobs: Sequence[Sequence[str]]) -> None:
    """Leave the overrides that all `jobs` share out of their folder names (Hydra's override_dirname), by a
    Hydra override in `config` (the sweep's config, from which the launcher composes each job). A sweep whose
    jobs have no name left is numbered only."""
    name = config.hydra.job.config.override_dirname
    excluded = list(dict.fromkeys([*name.exclude_keys, *shared_keys(jobs)]))
    quoted = ",".join(repr(key) for key in excluded)
    added = [f"hydra.job.config.override_dirname.exclude_keys=[{quoted}]"]
    parser = OverridesParser.create()
    if all(
        override.key_or_group in excluded for job in jobs for override in parser.parse_overrides(list(job))
    ):
        added.append("hydra.sweep.subdir=${hydra.job.num}")
    with read_write(config.hydra.overrides), open_dict(config.hydra.overrides):
        config.hydra.overrides.hydra = OmegaConf.create([*config.hydra.overrides.hydra, *added])


class SkipFinishedJobs(Launcher):
    """Wraps a Hydra launcher: launches only the unfinished jobs of each batch, under their own job numbers
    (so in their own folders), and keeps how each job ended (`outcomes`). A job that raised is recorded in
    its folder like one that failed inside train.py, and does not stop the sweep's next batches."""

    def __init__(self, launcher: Launcher, config_loader: Any, master_config: DictConfig) -> None:
        self.launcher = launcher
        self.config_loader = config_loader
        self.master_config = master_config
        self.outcomes: list[JobOutcome] = []

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.launcher.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        results: list[JobReturn] = []
        run: list[list[str]] = []  # consecutive jobs to launch together (the launcher numbers them in order)
        folders: list[Path] = []
        first = initial_job_idx
        for offset, overrides in enumerate(job_overrides):
            num = initial_job_idx + offset
            folder = job_dir(self.config_loader, self.master_config, overrides, num)
            state = job_state(folder)
            if state is JobState.FINISHED:
                log.info("sweep job %d is finished (%s): left alone", num, folder)
                if run:
                    results += self.launch_run(run, first, folders)
                run, folders, first = [], [], num + 1
                failure = read_failure(folder)
                reason = None if failure is None else failure["reason"]
                self.outcomes.append(JobOutcome(num, folder, "skipped", reason))
                continue
            if state is JobState.INTERRUPTED:
                log.info("sweep job %d was interrupted: it resumes from %s", num, last_checkpoint(folder))
            run.append(list(overrides))
            folders.append(folder)
        if run:
            results += self.launch_run(run, first, folders)
        return results

    def launch_run(self, run: list[list[str]], first: int, folders: list[Path]) -> list[JobReturn]:
        """Launch consecutive jobs; a job that raised is recorded as failed and handed on as completed, so
        that Hydra's sweeper goes on to its next batch."""
        returns = []
        results = self.launcher.launch(run, initial_job_idx=first)
        for num, folder, result in zip(range(first, first + len(run)), folders, results, strict=True):
            if result.status is JobStatus.FAILED:
                try:
                    _ = result.return_value  # raises the job's error (and says which job on stderr)
                except Exception as error:  # any error of the job is its failure
                    record_failure(folder, error)
                result = replace(result, status=JobStatus.COMPLETED, _return_value=None)
            failure = read_failure(folder)
            reason = None if failure is None else f"{failure.get('error', 'Error')}: {failure['reason']}"
            self.outcomes.append(JobOutcome(num, folder, "finished" if failure is None else "failed", reason))
            returns.append(result)
        return returns
