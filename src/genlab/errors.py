"""Errors genlab raises for bad input: each message names the bad value and the fix."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("genlab")


class GenlabError(Exception):
    """Base class: `train.py` and the other entry points print these without a stack trace."""


class ConfigError(GenlabError, ValueError):
    """A config value is invalid (names the key, the value and what is allowed)."""


class DataError(GenlabError):
    """A dataset is missing, incomplete or corrupt (names the path and how to get it)."""


class CheckpointError(GenlabError):
    """A checkpoint is missing or is not a genlab model."""


class DivergedError(GenlabError):
    """A training loss became NaN or infinite."""


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    """Raise a ConfigError naming `key` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}.")


def one_line(error: BaseException) -> str:
    """An error's message on one line (torchvision's download errors span several)."""
    return " ".join(str(error).split())


def exits_on_error(job: Callable[P, R]) -> Callable[P, R]:
    """For the command line: a GenlabError prints `error: <message>` and exits 1, without a stack trace
    (its message already names the bad value and the fix); any other error keeps its traceback."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return job(*args, **kwargs)
        except GenlabError as error:
            log.error("%s", error)
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return run
