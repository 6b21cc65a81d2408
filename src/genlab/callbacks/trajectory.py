"""Trajectories (models that draw along a path, the flow): fixed noise images carried to their samples."""

from __future__ import annotations

import lightning as L

from genlab.callbacks.base import LatentPictureCallback
from genlab.errors import require
from genlab.models.base import GenerativeModel
from genlab.pictures.grids import trajectory_images
from genlab.pictures.images import write_picture


class Trajectory(LatentPictureCallback):
    """`samples` rows of `points` images from fixed noise (t=0, left) to its sample (t=1, right), drawn by
    the model's sampler (tag `trajectory`); models that draw in one step (`draws_trajectories` is False: the
    VAE, the GAN) are skipped."""

    tag = "trajectory"

    def __init__(self, samples: int, points: int, seed: int, every_n_epochs: int) -> None:
        require(int(samples) >= 1, "callbacks.trajectory.samples", samples, "must be >= 1")
        require(
            int(points) >= 2, "callbacks.trajectory.points", points, "must be >= 2 (the noise and the sample)"
        )
        super().__init__(int(samples), seed, every_n_epochs)
        self.points = int(points)

    def draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        if not model.draws_trajectories:
            return
        images = trajectory_images(model, self.latents(model), self.points)
        write_picture(trainer, self.tag, images, nrow=self.points, epoch=epoch)
