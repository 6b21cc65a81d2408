"""genlab's caches (decoded Imagenette, reference features, the digit classifier): where they live and how
they are rebuilt when what they were built from changes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from genlab.atomic import atomic_write

log = logging.getLogger(__name__)
T = TypeVar("T")


def cache_dir(data_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """`cache_dir` if given, else <data_dir>/genlab_cache, else (read-only data) ~/.cache/genlab."""
    if cache_dir:
        return Path(cache_dir).expanduser().resolve()
    data_dir = Path(data_dir).expanduser().resolve()
    default = data_dir / "genlab_cache"
    if os.access(default, os.W_OK) or (not default.exists() and os.access(data_dir, os.W_OK)):
        return default
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genlab"


def load_or_build(path: Path | None, key: dict[str, Any], build: Callable[[], T]) -> T:
    """The value cached at `path` when it was built for `key`; otherwise `build()` it and cache it.

    `key` holds everything the value depends on (plain data): a cache built for another key, or a file that
    cannot be read (half-written, foreign), is rebuilt. `path=None` builds without caching.
    """
    if path is not None and path.is_file():
        try:
            cached = torch.load(path, weights_only=True)
        except Exception as error:
            log.warning("ignoring unreadable cache %s (%s); rebuilding it", path, error)
        else:
            if isinstance(cached, dict) and cached.get("key") == key and "value" in cached:
                log.info("loaded %s", path)
                return cached["value"]
            log.info("%s was built from other inputs; rebuilding it", path)
    started = time.perf_counter()
    value = build()
    if path is not None:
        atomic_write(path, lambda partial: torch.save({"key": key, "value": value}, partial))
        # benchmarks/evaluation.py reads this line to tell a first (cold) evaluation from a warm one
        log.info("built %s in %.1f s", path, time.perf_counter() - started)
    return value
