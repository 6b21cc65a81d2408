"""Reconstructions: fixed validation images, each row of inputs directly above a row of their
reconstructions per method."""

from __future__ import annotations

import logging

import lightning as L
import torch

from genlab.callbacks.base import PictureCallback
from genlab.compat import trainer_datamodule
from genlab.data.base import ImageDataModule
from genlab.errors import require
from genlab.metrics.perceptual import FeatureDistance
from genlab.models.base import GenerativeModel
from genlab.models.inversion import InversionSettings
from genlab.pictures.grids import method_rows
from genlab.pictures.images import write_picture
from genlab.reconstruction import INVERSION, Reconstructor, available_methods

log = logging.getLogger(__name__)


class Reconstructions(PictureCallback):
    """The first `n` validation images, `nrow` per row, each row above one row per reconstruction method
    (tag `reconstructions`): the model's one-pass methods (the VAE's posterior mean and sample, the flow's
    ODE round trip, a GAN encoder's), and for a GAN without one its inversion, which is slow: on the first
    `inversion_images` only, by `inversion_steps` steps of pixel MSE (0 turns it off). Models that cannot
    reconstruct are skipped."""

    tag = "reconstructions"

    def __init__(
        self,
        n: int = 32,
        nrow: int = 8,
        every_n_epochs: int = 1,
        inversion_images: int = 8,
        inversion_steps: int = 100,
    ) -> None:
        require(int(n) >= 1, "callbacks.reconstructions.n", n, "must be >= 1")
        require(int(nrow) >= 1, "callbacks.reconstructions.nrow", nrow, "must be >= 1")
        key = "callbacks.reconstructions.inversion_images"
        require(int(inversion_images) >= 0, key, inversion_images, "must be >= 0 (0: no inversion)")
        key = "callbacks.reconstructions.inversion_steps"
        require(int(inversion_steps) >= 0, key, inversion_steps, "must be >= 0 (0: no inversion)")
        super().__init__(every_n_epochs)
        self.n, self.nrow = int(n), int(nrow)
        self.inversion_images, self.inversion_steps = int(inversion_images), int(inversion_steps)

    def methods(self, model: GenerativeModel) -> list[str]:
        one_pass = list(model.reconstruction_methods())
        if one_pass:
            return one_pass
        inverts = INVERSION in available_methods(model) and self.inversion_images and self.inversion_steps
        return [INVERSION] if inverts else []

    def draw(self, trainer: L.Trainer, model: GenerativeModel, epoch: int) -> None:
        methods = self.methods(model)
        if not methods:
            return
        datamodule = trainer_datamodule(trainer)
        if not isinstance(datamodule, ImageDataModule):
            log.warning("reconstructions skipped: the run has no genlab data module to take images from")
            return
        n = self.inversion_images if methods == [INVERSION] else self.n
        real = datamodule.split_images("val")[:n]
        settings = InversionSettings(steps=max(1, self.inversion_steps), restarts=1, feature_weight=0.0)
        distance = FeatureDistance([], "pixel MSE", feature_weight=0.0).to(model.device)
        reconstructor = Reconstructor(model, datamodule, distance, settings)
        cuda = [model.device.index or 0] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # a posterior sample leaves training's random state alone
            outputs = [reconstructor(method, real)[1] for method in methods]
        images = method_rows(real.float().cpu() / 255.0, outputs, self.nrow)
        write_picture(trainer, self.tag, images, nrow=min(self.nrow, len(real)), epoch=epoch)
