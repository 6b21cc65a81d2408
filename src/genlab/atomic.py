"""Writing a file so that a kill never leaves half of it: checkpoints, caches and a run's finished.json."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(partial)` on a temporary file beside `path`, then rename it over `path`.

    A crash or a kill while writing (a preempted job) leaves the previous complete file, or none, never a
    truncated one: the rename is atomic on POSIX file systems. The temporary file is removed when `write`
    fails. Creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
