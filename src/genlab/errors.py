"""Errors genlab raises for bad input: each message names the bad value and the fix."""


class GenlabError(Exception):
    """Base class: `train.py` and the other entry points print these without a stack trace."""


class ConfigError(GenlabError, ValueError):
    """A config value is invalid (names the key, the value and what is allowed)."""


class DataError(GenlabError):
    """A dataset is missing, incomplete or corrupt (names the path and how to get it)."""


class CheckpointError(GenlabError):
    """A checkpoint is missing or is not a genlab model."""


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    """Raise a ConfigError naming `key` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}.")
