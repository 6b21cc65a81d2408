"""Hydra's basic sweeper that skips the finished jobs of a sweep folder and resumes the interrupted ones,
names each job's folder by the overrides that vary, and ends with a summary and an honest exit status.

A Hydra plugin must live in the `hydra_plugins` package; what it does is in genlab.launch.resumable_sweep and
genlab.launch.summary.
"""

from __future__ import annotations

from typing import Any

from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from genlab.compat import hydra_basic_sweeper
from genlab.launch.resumable_sweep import SkipFinishedJobs, grid_jobs, name_folders_by_what_varies
from genlab.launch.summary import end_sweep


class ResumableSweeper(hydra_basic_sweeper.BasicSweeper):
    """`python train.py -m ... hydra.sweep.dir=<an interrupted sweep>` goes on where the sweep stopped."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        assert self.launcher is not None, "BasicSweeper.setup sets the launcher"
        self.skipper = SkipFinishedJobs(self.launcher, hydra_context.config_loader, config)
        self.launcher = self.skipper

    def sweep(self, arguments: list[str]) -> Any:
        """Every job of the grid runs (one that fails does not stop the others); then the summary, and exit
        status 1 when a job failed."""
        assert self.config is not None and self.hydra_context is not None
        jobs = grid_jobs(self.config.hydra.sweeper.params, arguments, self.hydra_context.config_loader)
        name_folders_by_what_varies(self.config, jobs)
        returns = super().sweep(arguments)
        end_sweep(self.skipper.outcomes, self.config.hydra.sweep.dir)
        return returns
