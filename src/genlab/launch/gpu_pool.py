"""One GPU per sweep job: each launcher worker claims a free GPU through a file lock before CUDA starts.

Why this design: Hydra's joblib launcher runs `n_jobs` loky worker processes but does not pin them to GPUs,
and CUDA reads CUDA_VISIBLE_DEVICES only once, when a process first initialises it. So each worker process
claims one GPU index for its whole life (an exclusive `fcntl` lock on `<lock_dir>/gpu<i>.lock`) and sets
CUDA_VISIBLE_DEVICES before its first job touches CUDA. The kernel drops a lock when its process exits, even
on a crash, so no claim outlives its worker and no stale lock files need cleaning. With n_jobs = number of
GPUs every worker finds its own GPU; two live workers can never hold the same lock. (Ray's launcher would
also pin, but needs a Ray cluster; this needs nothing beyond the joblib launcher.)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from genlab.errors import GenlabError


def visible_gpus() -> list[str]:
    """GPU indices this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [index.strip() for index in visible.split(",") if index.strip() and index.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    listing = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True
    )
    return (
        [line.strip() for line in listing.stdout.splitlines() if line.strip()]
        if listing.returncode == 0
        else []
    )


def parallel_jobs(cpu_jobs: int = 2) -> int:
    """How many sweep jobs run at once: one per visible GPU, or `cpu_jobs` on a machine without GPUs."""
    return len(visible_gpus()) or int(cpu_jobs)


class GPUPool:
    """A set of GPU indices shared by processes through one lock file per GPU in `lock_dir`."""

    def __init__(self, devices: Sequence[str], lock_dir: str | Path) -> None:
        self.devices = [str(device) for device in devices]
        self.lock_dir = Path(lock_dir)
        self._held: dict[str, IO[str]] = {}

    def try_claim(self) -> str | None:
        """Lock the first free GPU and return its index, or None when every GPU is held by a live process."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for device in self.devices:
            if device in self._held:
                continue
            handle = open(self.lock_dir / f"gpu{device}.lock", "a+")  # noqa: SIM115 (held open while claimed)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")  # who holds it, for a person looking at the lock dir
            handle.flush()
            self._held[device] = handle
            return device
        return None

    def claim(self, wait_s: float = 60.0, poll_s: float = 0.5) -> str:
        """Claim a free GPU, waiting up to `wait_s` for one (a worker being replaced may still hold it)."""
        deadline = time.monotonic() + wait_s
        while (device := self.try_claim()) is None:
            if time.monotonic() >= deadline:
                raise GenlabError(
                    f"all {len(self.devices)} GPUs ({','.join(self.devices)}) stayed claimed "
                    f"for {wait_s:.0f}s (locks in {self.lock_dir}): run at most {len(self.devices)} jobs "
                    f"at once (hydra.launcher.n_jobs={len(self.devices)}) or stop the other sweep"
                )
            time.sleep(poll_s)
        return device

    def release(self, device: str) -> None:
        """Give a claimed GPU back (process exit does the same)."""
        handle = self._held.pop(str(device), None)
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    @property
    def held(self) -> list[str]:
        return list(self._held)
