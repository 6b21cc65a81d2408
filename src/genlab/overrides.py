"""Command-line overrides checked before Hydra runs: an override of a key that the composed config lacks
stops with the nearest keys it has, where Hydra would suggest adding the key with `+` (which then fails in
the constructor). Light on purpose: only Hydra's compose API and the standard library, so an argument error
costs no torch import."""

from __future__ import annotations

import difflib
import itertools
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from genlab.errors import ConfigError

#: Hydra's flags that take a value (`--cfg job`), whose value is not an override
VALUE_FLAGS = {"-c", "--cfg", "-p", "--package", "-cn", "--config-name", "-i", "--info", "-cp"}
VALUE_FLAGS |= {"--config-path", "-cd", "--config-dir", "--experimental-rerun"}
#: flags after which nothing is composed from these overrides (or from another config folder): no check
UNCHECKED_FLAGS = {"-h", "--help", "--hydra-help", "--version", "-sc", "--shell-completion", "-i", "--info"}
UNCHECKED_FLAGS |= {"-cp", "--config-path", "-cd", "--config-dir", "--experimental-rerun"}
MULTIRUN_FLAGS = {"-m", "--multirun"}
#: the group choices of the grid composed to check a sweep's overrides
MAX_CHECKED_JOBS = 16
NOT_OVERRIDABLE = re.compile(r"Could not override '([^']+)'")


def flat_config(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key path of a config with its value, nodes and leaves (`model`, `model.optimizer`,
    `model.optimizer.lr`), interpolations left unresolved."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=False)
    if not isinstance(config, dict):
        return
    for key, value in config.items():
        yield f"{prefix}{key}", value
        yield from flat_config(value, f"{prefix}{key}.")


def kind(value: Any) -> str | None:
    """What a value can be replaced with: a mapping, a list or a plain value; None for null or ??? (any)."""
    if value is None or value == "???":
        return None
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else "value"


def nearest_keys(key: str, keys: Sequence[str], n: int = 3) -> list[str]:
    """The keys most like `key`: first those with its last component (`lr` -> `model.optimizer.lr`), nearest
    its own path first, then keys spelled alike, then keys whose last component is spelled alike. Never the
    key's own parents; Hydra's own keys only for a `hydra.` key."""
    in_hydra = key.split(".")[0] == "hydra"
    keys = [k for k in keys if (k.split(".")[0] == "hydra") == in_hydra and not key.startswith(f"{k}.")]
    last = key.rsplit(".", 1)[-1]
    top = key.split(".")[0]

    def likeness(candidate: str) -> tuple[bool, float]:
        return candidate.split(".")[0] != top, -difflib.SequenceMatcher(None, key, candidate).ratio()

    same_last = sorted((k for k in keys if k.rsplit(".", 1)[-1] == last), key=likeness)

    def last_ratio(candidate: str) -> float:
        return difflib.SequenceMatcher(None, last, candidate.rsplit(".", 1)[-1]).ratio()

    # a shared path makes any two keys look alike: their last components must be alike too
    alike = [k for k in difflib.get_close_matches(key, keys, n=n, cutoff=0.8) if last_ratio(k) >= 0.5]
    lasts = {k.rsplit(".", 1)[-1] for k in keys}
    close_lasts = set(difflib.get_close_matches(last, lasts, n=n, cutoff=0.75))
    last_alike = sorted((k for k in keys if k.rsplit(".", 1)[-1] in close_lasts), key=likeness)
    found: list[str] = []
    for candidate in [*same_last, *alike, *last_alike]:
        if candidate != key and candidate not in found:
            found.append(candidate)
    return found[:n]


def unknown_key_message(override: str, config: DictConfig, script: str, choices: Sequence[str] = ()) -> str:
    """`model.lr=1e-3: model.lr is not a key of this config; did you mean model.optimizer.lr? ...`: the
    nearest keys of `config` that can take the override's value (a number does not replace a list)."""
    key, _, value = override.partition("=")
    key = key.lstrip("~+")
    where = " for " + " ".join(choices) if choices else ""
    message = f"{override}: {key} is not a key of this config{where}"
    try:
        given = kind(OverridesParser.create().parse_override(f"{key}={value}").value())
    except Exception:  # a sweep's value as typed: its elements are plain values
        given = "value"
    keys = [path for path, old in flat_config(config) if None in (kind(old), given) or kind(old) == given]
    suggestions = nearest_keys(key, keys)
    if not suggestions:
        return f"{message}; list its keys with `python {' '.join([script, *choices, '--cfg', 'job'])}`."
    options = ", ".join(suggestions)
    did_you_mean = f"did you mean {options}?" if len(suggestions) == 1 else f"did you mean one of {options}?"
    return f"{message}; {did_you_mean} Fix: {suggestions[0]}={value}"


def split_command_line(argv: Sequence[str]) -> tuple[str | None, list[str], bool] | None:
    """(the `--config-name` given or None, the overrides, whether it is a multirun) of a command line, or
    None when it is not one to check (`--help`, `--info`, another config folder)."""
    config_name, overrides, multirun = None, [], False
    args = iter(argv[1:])
    for arg in args:
        flag = arg.split("=", 1)[0] if arg.startswith("-") else None
        if flag is None:
            overrides.append(arg)
        elif flag in UNCHECKED_FLAGS:
            return None
        elif flag in MULTIRUN_FLAGS:
            multirun = True
        elif flag in VALUE_FLAGS:
            value = arg.split("=", 1)[1] if "=" in arg else next(args, "")
            if flag in ("-cn", "--config-name"):
                config_name = value
    return config_name, overrides, multirun


def job_overrides(overrides: list[Override], groups: set[str] | None) -> Iterator[list[str]]:
    """The override lists to compose for checking: one job per combination of the swept group choices (all
    of them once `groups` is known, else only the first), each other sweep at its first value."""
    choices: list[list[str]] = []
    for override in overrides:
        if not override.is_sweep_override():
            choices.append([override.input_line or ""])
            continue
        try:
            values = list(override.sweep_string_iterator())
        except (TypeError, ValueError, OmegaConfBaseException):  # an interval: a search's, not a grid's
            continue
        is_group = groups is not None and override.key_or_group.replace(".", "/") in groups
        key = override.get_key_element()
        choices.append([f"{key}={value}" for value in (values if is_group else values[:1])])
    yield from (list(job) for job in itertools.islice(itertools.product(*choices), MAX_CHECKED_JOBS))


def check_command_line(config_dir: str | Path, config_name: str, argv: Sequence[str]) -> None:
    """Raise a ConfigError naming the nearest valid keys when an override of the command line `argv` sets a
    key that the config composed from `config_dir` lacks (for a sweep, in any combination of its swept
    groups). Any other composition error is left to Hydra, which reports it as usual."""
    split = split_command_line(argv)
    if split is None:
        return
    name, arguments, multirun = split
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
    except Exception:  # a syntax error: Hydra says where
        return
    multirun |= any(o.key_or_group == "hydra.mode" and o.value() == "MULTIRUN" for o in overrides)
    as_typed = {o.key_or_group: o.input_line or "" for o in overrides}
    script = Path(argv[0]).name if argv else "train.py"
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        first = next(job_overrides(overrides, None))
        composed = check_job(name or config_name, first, as_typed, script, [])
        if composed is None or not multirun:
            return
        groups = {str(group) for group in composed.hydra.runtime.choices}
        swept = {o.key_or_group for o in overrides if o.is_sweep_override()} & {
            group.replace("/", ".") for group in groups
        }
        for job in itertools.islice(job_overrides(overrides, groups), 1, None):
            choices = [override for override in job if override.split("=", 1)[0] in swept]
            if check_job(name or config_name, job, as_typed, script, choices) is None:
                return


def check_job(
    config_name: str, overrides: list[str], as_typed: dict[str, str], script: str, choices: Sequence[str]
) -> DictConfig | None:
    """The config composed from `overrides`, a ConfigError for an override of a key it lacks (quoted as
    typed, from `as_typed`), or None for any other composition error (Hydra reports those itself)."""
    try:
        return compose(config_name, overrides=overrides, return_hydra_config=True)
    except ConfigCompositionException as error:
        match = NOT_OVERRIDABLE.match(str(error))
        if match is None or not isinstance(error.__cause__, (ConfigAttributeError, ConfigKeyError)):
            return None
        key = match.group(1)
    except Exception:
        return None
    rest = [override for override in overrides if override.split("=", 1)[0] != key]
    try:
        composed = compose(config_name, overrides=rest, return_hydra_config=True)
    except Exception:
        return None
    raise ConfigError(unknown_key_message(as_typed.get(key, f"{key}="), composed, script, choices))


def check_overrides(config_name: str, argv: Sequence[str] | None = None) -> None:
    """For the root scripts, before `hydra.main`: `check_command_line` of `sys.argv` with the configs in
    conf/ beside the script; an unknown key prints `error: ...` and exits 1."""
    argv = sys.argv if argv is None else argv
    try:
        check_command_line(Path(argv[0]).resolve().parent / "conf", config_name, argv)
    except ConfigError as error:  # not exits_on_error: logging is not set up yet, so print it once
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
