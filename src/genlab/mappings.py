"""Nested settings flattened to dotted (or slashed) keys: override keys, TensorBoard's HParams, report
columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def flatten(mapping: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """{'a': {'b': 1}, 'c': [2]} -> {'<prefix>a<sep>b': 1, '<prefix>c': [2]}: every leaf (a value that is not
    a mapping) under the path of its keys, in depth-first order; leaves are kept as they are."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}{sep}", sep)
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def as_dict(config: DictConfig, resolve: bool = True) -> dict[str, Any]:
    """A DictConfig as plain dicts and lists (`OmegaConf.to_container`), interpolations resolved unless
    `resolve` is False."""
    container = OmegaConf.to_container(config, resolve=resolve)
    if not isinstance(container, dict):
        raise TypeError(f"expected a DictConfig, got {type(config).__name__}")
    return {str(key): value for key, value in container.items()}
