"""Where metric artefacts (reference features, the digit classifier) are cached: beside the data."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def cache_dir(data_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """`cache_dir` if given, else <data_dir>/genlab_cache, else (read-only data) ~/.cache/genlab.

    The same rule as ImagenetteDataModule's tensor cache, so all of genlab's caches sit together.
    """
    if cache_dir:
        return Path(cache_dir).expanduser().resolve()
    data_dir = Path(data_dir).expanduser().resolve()
    default = data_dir / "genlab_cache"
    if os.access(default, os.W_OK) or (not default.exists() and os.access(data_dir, os.W_OK)):
        return default
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genlab"


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a truncated cache behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(obj, partial)
    partial.replace(path)
