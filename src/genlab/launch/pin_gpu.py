"""A Hydra callback that pins every sweep job to its own GPU (see genlab.launch.gpu_pool for the design)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from genlab.errors import GenlabError
from genlab.launch.gpu_pool import GPUPool, visible_gpus

log = logging.getLogger(__name__)

# This process's claim, kept for the life of the worker: CUDA cannot move to another GPU once started.
_claim: tuple[GPUPool, str] | None = None


def cuda_started() -> bool:
    """Whether this process has already initialised CUDA (then CUDA_VISIBLE_DEVICES is too late)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def pin_this_process(lock_dir: str, wait_s: float = 60.0) -> str | None:
    """Claim a GPU for this process (once) and expose only that one to CUDA; None without GPUs."""
    global _claim
    if _claim is None:
        devices = visible_gpus()
        if not devices:
            return None
        if cuda_started():
            raise GenlabError(
                "CUDA was initialised before the sweep job claimed its GPU: do not use torch.cuda "
                "at import time in a sweep job"
            )
        pool = GPUPool(devices, lock_dir)
        _claim = (pool, pool.claim(wait_s=wait_s))
    os.environ["CUDA_VISIBLE_DEVICES"] = _claim[1]
    return _claim[1]


class PinGPU(Callback):
    """Before each job: this worker's GPU (claimed on its first job) becomes its only visible one."""

    def __init__(self, lock_dir: str, wait_s: float = 60.0) -> None:
        self.lock_dir = lock_dir
        self.wait_s = wait_s

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        device = pin_this_process(self.lock_dir, self.wait_s)
        log.info("job %s: worker pid %d, GPU %s", config.hydra.job.num, os.getpid(), device or "none (CPU)")
