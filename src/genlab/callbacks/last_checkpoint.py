"""`last.ckpt`: the checkpoint a resume starts from, rewritten at every trigger and at the end of training."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from genlab.compat import save_unless_saved_this_step
from genlab.run_dir import LAST_CHECKPOINT


class LastCheckpoint(ModelCheckpoint):
    """`<dirpath>/last.ckpt`: the newest state of the run, what a resume starts from.

    Rewritten after each epoch (after its validation), every `every_n_train_steps` steps when that is set,
    and when training ends. Why not `ModelCheckpoint(save_last=True)`: since Lightning 2.6 it rewrites
    last.ckpt only at a step where a top-k checkpoint is saved too, so with a monitor (the VAE's val/loss)
    last.ckpt stayed at the best epoch, and a resume went back in time. Its triggers are exclusive as
    well: with `every_n_train_steps`, no save at the end of training.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=LAST_CHECKPOINT.removesuffix(self.FILE_EXTENSION),
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            every_n_train_steps=every_n_train_steps,
        )

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        # the final state, unless a trigger saved this very step (or this is a fast_dev_run)
        save_unless_saved_this_step(self, trainer)
