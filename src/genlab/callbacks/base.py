"""The shared schedule of the picture callbacks: every `every_n_epochs` epochs and at the end of training."""

from __future__ import annotations

import logging
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from genlab.errors import require
from genlab.models.base import GenerativeModel
from genlab.modes import sampling_mode
from genlab.pictures.grids import fixed_latents

log = logging.getLogger(__name__)


class PictureCallback(Callback):
    """Calls `draw` (in eval mode, without grad, on rank 0) after every `every_n_epochs`-th training
    epoch, and once more at the end of training if the last epoch was not drawn (e.g. stopped by
    `max_steps`)."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        require(int(every_n_epochs) >= 1, "callbacks.*.every_n_epochs", every_n_epochs, "must be >= 1")
        self.every_n_epochs = int(every_n_epochs)
        self._epoch = 0
        self._undrawn_batches = False  # trained batches that no picture shows yet

    def draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        """Make and write this callback's pictures for `epoch`."""
        raise NotImplementedError

    def _draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        if trainer.is_global_zero:
            with sampling_mode(model):
                self.draw(trainer, model, epoch)
        self._undrawn_batches = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args, **kwargs) -> None:
        self._epoch = trainer.current_epoch
        self._undrawn_batches = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._draw(trainer, cast(GenerativeModel, pl_module), trainer.current_epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._undrawn_batches:
            self._draw(trainer, cast(GenerativeModel, pl_module), self._epoch)


class LatentPictureCallback(PictureCallback):
    """A picture callback with `n_latents` FIXED latent vectors: drawn once from their own generator
    seeded with `seed` (never the global RNG) and kept in the callback's state, so every epoch, and a
    resumed run, shows the same vectors."""

    def __init__(self, n_latents: int, seed: int = 0, every_n_epochs: int = 1) -> None:
        super().__init__(every_n_epochs)
        self.n_latents = int(n_latents)
        self.seed = int(seed)
        self._latents: torch.Tensor | None = None

    def latents(self, model: GenerativeModel) -> torch.Tensor:
        """The fixed [n_latents, latent_dim] vectors (on the CPU), drawn on first use."""
        expected = (self.n_latents, model.latent_dim)
        if self._latents is None or tuple(self._latents.shape) != expected:
            if self._latents is not None:
                log.warning(
                    "%s: the checkpoint's fixed latents have shape %s, this run needs %s: drawing new ones",
                    type(self).__name__,
                    tuple(self._latents.shape),
                    expected,
                )
            self._latents = fixed_latents(model, self.n_latents, self.seed)
        return self._latents

    def state_dict(self) -> dict[str, Any]:
        return {} if self._latents is None else {"latents": self._latents.clone()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._latents = state_dict.get("latents")
