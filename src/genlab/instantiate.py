"""Building objects from `_target_` configs, with genlab's own errors passed through unwrapped."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from genlab.errors import GenlabError


def build(config: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but a GenlabError raised inside a constructor (at any depth) comes out
    as itself, so its message, which names the bad key, reaches the user instead of Hydra's wrapper."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, GenlabError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def build_group(group: DictConfig | None) -> list[Any]:
    """Build every `_target_` entry of a config group (callbacks, logger); empty entries are skipped."""
    if not group:
        return []
    return [build(entry) for entry in group.values() if entry and "_target_" in entry]
