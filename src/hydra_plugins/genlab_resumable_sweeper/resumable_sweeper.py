"""Hydra's basic sweeper that skips the finished jobs of a sweep folder and resumes the interrupted ones.

A Hydra plugin must live in the `hydra_plugins` package; what it does is in genlab.launch.resumable_sweep.
"""

from __future__ import annotations

from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from genlab.compat import hydra_basic_sweeper
from genlab.launch.resumable_sweep import SkipFinishedJobs


class ResumableSweeper(hydra_basic_sweeper.BasicSweeper):
    """`python train.py -m ... hydra.sweep.dir=<an interrupted sweep>` goes on where the sweep stopped."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        assert self.launcher is not None, "BasicSweeper.setup sets the launcher"
        self.launcher = SkipFinishedJobs(self.launcher, hydra_context.config_loader, config)
