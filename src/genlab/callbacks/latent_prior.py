"""Fitting a VAE's ex-post prior (a Gaussian mixture on the latents) to the trained encoder."""

from __future__ import annotations

import copy
import logging
from typing import Any, cast

import lightning as L
from lightning.pytorch.callbacks import Callback

from genlab.compat import trainer_datamodule
from genlab.models.priors import fit_prior

log = logging.getLogger(__name__)


class FitLatentPrior(Callback):
    """Fits `model.prior` (one with `fittable`) to the training images' posterior means, after training.

    - At the start of training the prior is reset: while the weights move it would be stale, so everything
      drawn during training (the pictures' fixed latents, the fid callback's samples) comes from N(0, I),
      the prior trained with, every epoch alike.
    - Every checkpoint written after trained batches holds a mixture fitted to its own weights (fitted on a
      copy, so training still draws from N(0, I)); the fitting uses no global RNG.
    - At the end of training the model's own prior is fitted, for what is drawn right after `fit`.

    The VAE adds it through `configure_callbacks`, so it runs whatever the callback list; Lightning puts it
    before the checkpoint callbacks, which then save the fitted prior at the end of training.
    """

    def __init__(self) -> None:
        self.stale = True  # batches were trained since the prior was fitted

    def fit(self, trainer: L.Trainer, prior: Any, model: Any) -> bool:
        datamodule = trainer_datamodule(trainer)
        if datamodule is None:
            log.warning("prior %s: no data module to fit it to; samples stay N(0, I)", type(prior).__name__)
            return False
        fit_prior(prior, model, cast(Any, datamodule))
        return True

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.prior.reset()
        self.stale = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.stale = True

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: Any, checkpoint: dict) -> None:
        if not self.stale and bool(pl_module.prior.fitted):
            return  # the state_dict that Lightning took holds the fitted prior already
        prior = copy.deepcopy(pl_module.prior)
        if self.fit(trainer, prior, pl_module):
            checkpoint["state_dict"].update({f"prior.{name}": t for name, t in prior.state_dict().items()})

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if self.fit(trainer, pl_module.prior, pl_module):
            self.stale = False
