"""Reconstructions (VAE): fixed validation images, each row of inputs directly above its reconstructions."""

from __future__ import annotations

import logging

import lightning as L

from genlab.callbacks.base import PictureCallback
from genlab.compat import trainer_datamodule
from genlab.data.base import ImageDataModule
from genlab.errors import require
from genlab.models.base import GenerativeModel
from genlab.pictures.grids import reconstruction_images
from genlab.pictures.images import write_picture

log = logging.getLogger(__name__)


class Reconstructions(PictureCallback):
    """The first `n` validation images and their reconstructions, `nrow` per row (tag `reconstructions`);
    models that cannot encode (`can_encode` is False: the GAN) are skipped."""

    tag = "reconstructions"

    def __init__(self, n: int = 32, nrow: int = 8, every_n_epochs: int = 1) -> None:
        require(int(n) >= 1, "callbacks.reconstructions.n", n, "must be >= 1")
        require(int(nrow) >= 1, "callbacks.reconstructions.nrow", nrow, "must be >= 1")
        super().__init__(every_n_epochs)
        self.n, self.nrow = int(n), int(nrow)

    def draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        if not model.can_encode:
            return
        datamodule = trainer_datamodule(trainer)
        if not isinstance(datamodule, ImageDataModule):
            log.warning("reconstructions skipped: the run has no genlab data module to take images from")
            return
        real = datamodule.to_model_range(datamodule.split_images("val")[: self.n])
        images = reconstruction_images(model, real, self.nrow)
        write_picture(trainer, self.tag, images, nrow=min(self.nrow, len(real)), epoch=epoch)
