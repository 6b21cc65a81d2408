"""Building objects from `_target_` configs, with genlab's own errors passed through unwrapped, and a
constructor's complaint about its arguments turned into a ConfigError that names the config key."""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from genlab.errors import ConfigError, GenlabError

UNEXPECTED_ARGUMENT = re.compile(r"got an unexpected keyword argument '(\w+)'")


def build(config: Any, config_key: str | None = None, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but a GenlabError raised inside a constructor (at any depth) comes out
    as itself, so its message, which names the bad key, reaches the user instead of Hydra's wrapper. With
    `config_key` (where `config` is in the run's config, e.g. "model"), a TypeError or ValueError of the
    target's own call over an argument it does not take, or one of the wrong type, is a ConfigError naming
    that argument's key, the nearest valid keys or the expected type."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, GenlabError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        problem = argument_problem(config, config_key, error) if config_key else None
        if problem is not None:
            raise ConfigError(problem) from error
        raise


def target_of(config: Any) -> Any:
    """The class or function a config's `_target_` names, or None when it cannot be imported."""
    try:
        return get_object(str(config["_target_"]))
    except Exception:
        return None


def argument_problem(config: Any, config_key: str | None, error: InstantiationException) -> str | None:
    """What was wrong with the arguments `config` gave its target, when the target's own call failed over
    them: an argument it does not take, or a value of another type than its annotation; else None."""
    target, cause = target_of(config), error.__cause__
    if target is None or not isinstance(cause, TypeError | ValueError):
        return None
    name = f"{target.__module__}.{target.__qualname__}"
    if f"target '{name}'" not in str(error):  # a nested target's failure, not this config's own
        return None
    values = {str(key): value for key, value in config.items() if not str(key).startswith("_")}
    unexpected = UNEXPECTED_ARGUMENT.search(str(cause))
    if unexpected is not None and unexpected.group(1) in values:
        argument = unexpected.group(1)
        return unexpected_argument_message(config, f"{config_key}.{argument}", values[argument], name)
    for argument, hint in annotated_parameters(target).items():
        if argument in values and not fits(plain(values[argument]), hint):
            value = plain(values[argument])
            expected = f"{describe(hint)}{sweep_hint(f'{config_key}.{argument}', value)}"
            return f"{config_key}.{argument}={value!r} is invalid: {name} expects {expected}"
    return None


def unexpected_argument_message(config: Any, key: str, value: Any, target: str) -> str:
    """`model.lr=0.001 is not an argument of genlab.models.vae.VAE; did you mean model.optimizer.lr? ...`"""
    from genlab.overrides import flat_config, nearest_keys

    prefix, argument = key.rsplit(".", 1)
    container = OmegaConf.to_container(config, resolve=False) if isinstance(config, DictConfig) else config
    keys = [f"{prefix}.{path}" for path, _ in flat_config(container) if path != argument]
    value = plain(value)
    suggestions = nearest_keys(key, keys)
    message = f"{key}={value!r} is not an argument of {target}"
    if not suggestions:
        return f"{message}; drop +{key} (list the keys with `--cfg job`)."
    options = suggestions[0] if len(suggestions) == 1 else "one of " + ", ".join(suggestions)
    return f"{message}; did you mean {options}? Fix: {suggestions[0]}={value} instead of +{key}={value}"


def plain(value: Any) -> Any:
    """OmegaConf containers as plain lists and dicts, for messages and type checks."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def annotated_parameters(target: Any) -> dict[str, Any]:
    """The annotated parameters of a class's constructor or a function ({} when they cannot be read)."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        return {}
    hints.pop("return", None)
    return hints


def fits(value: Any, hint: Any) -> bool:
    """Whether a plain config value can be an argument annotated `hint` (an int passes for a float; types
    this does not know pass)."""
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in (list, tuple, collections.abc.Sequence):
        return isinstance(value, list | tuple)
    if base in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return isinstance(value, Mapping)
    return True


def describe(hint: Any) -> str:
    """An annotation in words: `int | None` -> "an integer or null"."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(option) for option in typing.get_args(hint))
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    if hint in words:
        return words[hint]
    base = origin or hint
    if base in (list, tuple, collections.abc.Sequence):
        return "a list"
    if base in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def sweep_hint(key: str, value: Any) -> str:
    """For a list where one value is expected: how a sweep takes several values."""
    if isinstance(value, list) and value:
        return f"; to run one job per value: -m {key}={','.join(map(str, value))}"
    return ""


def check_types(config: DictConfig, expected: Mapping[str, Any]) -> None:
    """Raise a ConfigError naming the first key of `expected` (dotted, e.g. "trainer.max_epochs") whose value
    in `config` is not of its type; keys not in `config` are not checked."""
    for key, hint in expected.items():
        value = plain(OmegaConf.select(config, key, default=None))
        if not fits(value, hint):
            wanted = f"{describe(hint)}{sweep_hint(key, value)}"
            raise ConfigError(f"{key}={value!r} is invalid: expected {wanted}")


def build_group(group: DictConfig | None, config_key: str | None = None) -> list[Any]:
    """Build every `_target_` entry of a config group (callbacks, logger) found at `config_key`; empty
    entries are skipped."""
    if not group:
        return []
    return [
        build(entry, f"{config_key}.{name!s}" if config_key else None)
        for name, entry in group.items()
        if entry and "_target_" in entry
    ]
