"""The training entry point: build data, model, callbacks, loggers and trainer from the config, then fit."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from genlab.checkpoints import checkpoint_model_class
from genlab.errors import CheckpointError, GenlabError
from genlab.instantiate import build, build_group
from genlab.sweeps.ddp import check_ddp_launch
from genlab.sweeps.failures import record_failure

log = logging.getLogger(__name__)

# Batches are single index operations on an in-memory tensor: loader workers would not speed them up.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning 2.6's own pytree helper trips a torch deprecation warning on every run; nothing to act on.
warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\).*")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit one run and return its final logged metrics (what a Hydra sweeper optimises)."""
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_ddp_launch(cfg.trainer, in_multirun())
    if rank_zero_only.rank == 0:  # DDP ranks > 0 share the run dir (see genlab.sweeps.ddp)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    ckpt_path = cfg.get("ckpt_path")
    model_class = cfg.model._target_.rsplit(".", 1)[-1]
    if ckpt_path and checkpoint_model_class(ckpt_path) != model_class:
        found = checkpoint_model_class(ckpt_path)
        raise CheckpointError(
            f"ckpt_path={ckpt_path!r} holds a {found}, but this run's model is a {model_class}: "
            f"add model={found.lower()} (and the data it was trained on) to resume it"
        )

    datamodule = build(cfg.data)
    datamodule.check_available()  # fail in seconds, before models and trainer are built
    model = build(cfg.model, _recursive_=False)  # the model builds its nets from their configs
    callbacks = build_group(cfg.get("callbacks"))
    loggers = build_group(cfg.get("logger"))
    trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    log.info("finished %s: %s", output_dir, {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics


def multirun_as_override(argv: list[str]) -> list[str]:
    """Let `-m ... --cfg hydra` show a sweep's config: Hydra 1.3 refuses `-m` beside `--cfg`, but takes the
    same mode as the override `hydra.mode=MULTIRUN`, so `-m` becomes that when `--cfg` is given."""
    showing = any(arg in ("--cfg", "-c") or arg.startswith("--cfg=") for arg in argv)
    if not showing or not any(arg in ("-m", "--multirun") for arg in argv):
        return argv
    rest = [arg for arg in argv[1:] if arg not in ("-m", "--multirun")]
    return [argv[0], "hydra.mode=MULTIRUN", *rest]


def in_multirun() -> bool:
    """Whether this job is one of a sweep (`python train.py -m ...`)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run(cfg: DictConfig) -> dict[str, float]:
    """`train` for the command line: a genlab error prints its message and exits 1, without a stack trace.

    In a sweep any failure (a NaN loss included) is written to <run dir>/failed.json instead, and the other
    jobs go on: the report marks the run failed with its reason.
    """
    try:
        return train(cfg)
    except Exception as error:
        if in_multirun():
            path = record_failure(cfg.paths.output_dir, error)
            log.error("job failed (recorded in %s): %s", path, error)
            return {}
        if not isinstance(error, GenlabError):
            raise
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
