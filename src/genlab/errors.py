"""Errors genlab raises for bad input: each message names the bad value and the fix."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("genlab")


class GenlabError(Exception):
    """Base class: `train.py` and the other entry points print these without a stack trace."""

    #: the process's exit status when an entry point stops on this error
    exit_code: int = 1


class ConfigError(GenlabError, ValueError):
    """A config value is invalid (names the key, the value and what is allowed)."""


class DataError(GenlabError):
    """A dataset is missing, incomplete or corrupt (names the path and how to get it)."""


class CheckpointError(GenlabError):
    """A checkpoint is missing or is not a genlab model."""


class Interrupted(GenlabError):
    """Training stopped by a signal after saving a checkpoint; the message says how to resume.

    Exits 128 + the signal's number, as a shell reports a process killed by it: 143 for SIGTERM, 130 for
    Ctrl-C. A sweep or a scheduler then sees the job interrupted, not finished."""

    def __init__(self, message: str, signal_name: str = "SIGTERM") -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signal.Signals[signal_name])


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
            prefix = "interrupted" if isinstance(error, Interrupted) else "error"
            print(f"{prefix}: {error}", file=sys.stderr)
            raise SystemExit(error.exit_code) from None

    return run
