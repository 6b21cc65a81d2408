"""The jobs a sweep preset expands to, computed as Hydra's basic sweeper does (for tests and dry runs)."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from genlab.launch.resumable_sweep import grid_jobs


def sweep_jobs(cfg: DictConfig, arguments: Sequence[str] = ()) -> list[list[str]]:
    """Each job's overrides: `hydra.sweeper.params` of the composed `cfg`, then the command line's
    `arguments` (which replace a param of the same key, so the command line narrows or widens the grid)."""
    return grid_jobs(cfg.hydra.sweeper.params, arguments)
