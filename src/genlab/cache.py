"""genlab's caches (decoded Imagenette, reference features, the digit classifier): where they live, how they
are keyed by the content of the data they were built from, and how they are rebuilt when it changes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

from genlab.atomic import atomic_write

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the file in a cache folder that remembers each data file's content hash by (path, size, mtime)
FILE_HASHES = "file_hashes.json"
_HASH_CHUNK = 1 << 20


def cache_dir(explicit: str | Path | None = None) -> Path:
    """`explicit` if given, else the user's cache folder: $XDG_CACHE_HOME/genlab, by default ~/.cache/genlab.

    Never the data folder: it may be read-only, or shared by users whose caches must not mix. The caches are
    keyed by the data's content (`fingerprint`), so any path to the same files finds them."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser().resolve() / "genlab"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(root: Path, files: Iterable[Path], cache: Path) -> str:
    """A hash of each file's path below `root`, size and content (sha256): the same data reached through a
    symlink, or copied elsewhere, has the same fingerprint; a changed byte changes it.

    Hashing reads every byte once: the content hashes are remembered in <cache>/file_hashes.json by each
    file's resolved path, size and mtime, so later calls only stat the files."""
    index_path = cache / FILE_HASHES
    try:
        index = json.loads(index_path.read_text())
        if not isinstance(index, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        index = {}
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable %s (%s); hashing the data again", index_path, error)
        index = {}
    digest, changed = hashlib.sha256(), False
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        real = path.resolve()
        stat = real.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = index.get(str(real))
        if not (isinstance(entry, list) and entry[:2] == stamp and len(entry) == 3):
            entry, changed = [*stamp, _sha256(real)], True
            index[str(real)] = entry
        digest.update(f"{path.relative_to(root).as_posix()}:{stat.st_size}:{entry[2]}\n".encode())
    if changed:
        atomic_write(index_path, lambda partial: partial.write_text(json.dumps(index, indent=0) + "\n"))
    return digest.hexdigest()


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
