"""Interpolation: rows of images along paths between fixed latent pairs and, for a VAE, between the
encodings of real validation images (shown in the first and last column)."""

from __future__ import annotations

import logging

import lightning as L

from genlab.callbacks.base import LatentPictureCallback
from genlab.compat import trainer_datamodule
from genlab.data.base import ImageDataModule
from genlab.errors import require
from genlab.models.base import GenerativeModel
from genlab.pictures.grids import INTERPOLATIONS, interpolation_images, real_interpolation_images
from genlab.pictures.images import write_picture

log = logging.getLogger(__name__)


class Interpolation(LatentPictureCallback):
    """`pairs` rows of `steps` images between fixed latent pairs (tag `interpolation`); for a model that
    can encode (`can_encode`, the VAE), also `real_pairs` rows between validation images (tag
    `interpolation_real`)."""

    def __init__(
        self,
        steps: int = 10,
        pairs: int = 8,
        mode: str = "slerp",
        real_pairs: int = 4,
        seed: int = 0,
        every_n_epochs: int = 1,
    ) -> None:
        require(int(steps) >= 2, "callbacks.interpolation.steps", steps, "must be >= 2 (the two end points)")
        require(int(pairs) >= 1, "callbacks.interpolation.pairs", pairs, "must be >= 1")
        require(
            int(real_pairs) >= 0, "callbacks.interpolation.real_pairs", real_pairs, "must be >= 0 (0: off)"
        )
        require(
            mode in INTERPOLATIONS, "callbacks.interpolation.mode", mode, f"choose one of {INTERPOLATIONS}"
        )
        super().__init__(2 * int(pairs), seed, every_n_epochs)
        self.steps, self.pairs, self.mode, self.real_pairs = int(steps), int(pairs), mode, int(real_pairs)

    def draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        z0, z1 = self.latents(model).chunk(2)
        images = interpolation_images(model, z0, z1, self.steps, self.mode)
        write_picture(trainer, "interpolation", images, nrow=self.steps, epoch=epoch)
        if self.real_pairs and model.can_encode:
            self.draw_real(trainer, model, epoch)

    def draw_real(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        datamodule = trainer_datamodule(trainer)
        if not isinstance(datamodule, ImageDataModule):
            log.warning("interpolation_real skipped: the run has no genlab data module to take images from")
            return
        real = datamodule.split_images("val")[: 2 * self.real_pairs]
        pairs = len(real) // 2
        if pairs == 0:
            log.warning("interpolation_real skipped: the validation split has fewer than 2 images")
            return
        real = datamodule.to_model_range(real[: 2 * pairs])
        images = real_interpolation_images(model, real[:pairs], real[pairs:], self.steps, self.mode)
        write_picture(trainer, "interpolation_real", images, nrow=self.steps + 2, epoch=epoch)
