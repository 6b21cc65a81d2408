"""The jobs a sweep preset expands to, computed as Hydra's basic sweeper does (for tests and dry runs)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from genlab.compat import split_sweep_arguments


def sweep_jobs(cfg: DictConfig, arguments: Sequence[str] = ()) -> list[list[str]]:
    """Each job's overrides: `hydra.sweeper.params` of the composed `cfg`, then the command line's
    `arguments` (which replace a param of the same key, so the command line narrows or widens the grid)."""
    params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.params or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *arguments])
    return [job for batch in split_sweep_arguments(overrides, None) for job in batch]
