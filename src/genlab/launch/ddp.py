"""DDP and sweeps: which launches give one output dir per run, and a clear error for the one that does not.

Lightning's `ddp` strategy starts ranks > 0 by re-running the command line with
`hydra.run.dir=<the run's dir> hydra.output_subdir=null` (lightning/fabric/strategies/launchers/
subprocess_script.py): right for a single run (every rank writes into the one run dir), wrong inside a local
sweep, where the command line is the whole sweep and HydraConfig's run.dir is not the job's dir (each rank
would start a sweep of its own in new folders). Under SLURM or torchrun every rank is its own task and nothing
is re-run, so a sweep on SLURM may use DDP.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from omegaconf import DictConfig

from genlab.errors import ConfigError

log = logging.getLogger(__name__)


def without_cpu_sync_batchnorm(trainer: dict[str, Any]) -> dict[str, Any]:
    """`trainer` with sync_batchnorm off when it would run on CPUs: torch's SyncBatchNorm works only on GPU
    modules (DDP stops with "SyncBatchNorm layers only work with GPU modules"), so CPU processes keep their
    own BatchNorm statistics, synchronised from rank 0 at each forward pass (DDP's broadcast_buffers)."""
    accelerator = str(trainer.get("accelerator", "auto"))
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if not (trainer.get("sync_batchnorm") and on_cpu):
        return trainer
    log.info("trainer.sync_batchnorm=false on CPU processes (SyncBatchNorm needs GPUs)")
    return trainer | {"sync_batchnorm": False}


def relaunches_script(trainer: DictConfig) -> bool:
    """Whether Lightning would start the other DDP ranks by re-running the command line."""
    strategy = str(trainer.get("strategy", "auto"))
    several = trainer.get("devices", 1) not in (1, "1") or int(trainer.get("num_nodes", 1)) > 1
    managed = SLURMEnvironment.detect() or TorchElasticEnvironment.detect()
    return strategy.startswith("ddp") and "spawn" not in strategy and several and not managed


def check_ddp_launch(trainer: DictConfig, multirun: bool) -> None:
    """Refuse script-relaunching DDP inside a local sweep (it would duplicate the sweep and its folders)."""
    if multirun and relaunches_script(trainer):
        raise ConfigError(
            f"trainer.strategy={trainer.get('strategy')}, devices={trainer.get('devices')} in a local sweep"
            " would re-run the whole sweep on every rank: sweep with hydra/launcher=slurm (one SLURM task "
            "per GPU), use trainer.strategy=ddp_spawn, or run this configuration alone "
            "(python train.py trainer=ddp ...)"
        )
