"""Samples: a grid of images from the same fixed latent vectors every epoch, to watch training progress."""

from __future__ import annotations

import math

import lightning as L

from genlab.callbacks.base import LatentPictureCallback
from genlab.errors import require
from genlab.models.base import GenerativeModel
from genlab.pictures.grids import sample_images
from genlab.pictures.images import write_picture


class SampleGrid(LatentPictureCallback):
    """`n` images (default 64, an 8x8 grid) from fixed latents, under the tag `samples`."""

    tag = "samples"

    def __init__(self, n: int = 64, seed: int = 0, every_n_epochs: int = 1) -> None:
        require(int(n) >= 1, "callbacks.samples.n", n, "must be >= 1 (64 gives an 8x8 grid)")
        super().__init__(int(n), seed, every_n_epochs)

    def draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        images = sample_images(model, self.latents(model))
        write_picture(trainer, self.tag, images, nrow=math.ceil(math.sqrt(self.n_latents)), epoch=epoch)
