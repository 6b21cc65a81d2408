"""FID and KID during training: a small sample every k epochs, logged as val/fid and val/kid."""

from __future__ import annotations

import lightning as L
import torch

from genlab.compat import trainer_datamodule
from genlab.data.base import ImageDataModule
from genlab.errors import ConfigError, require
from genlab.metrics import distribution
from genlab.metrics.inception import extract_features, shared_inception
from genlab.sampling import sample_uint8


class FIDCallback(L.Callback):
    """Every `every_n_epochs` epochs, compare `n_samples` generated images with as many validation images.

    With few images FID is strongly biased upwards: use it to follow one run, not to compare with
    evaluate.py's numbers. Off by default (the Inception net costs ~0.1-0.3 s per image on a CPU).
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        n_samples: int = 256,
        kid_subset_size: int | None = None,
        batch_size: int = 200,
        seed: int = 0,
    ) -> None:
        require(every_n_epochs >= 1, "callbacks.fid.every_n_epochs", every_n_epochs, "must be >= 1")
        require(n_samples >= 2, "callbacks.fid.n_samples", n_samples, "must be >= 2 (FID needs a covariance)")
        if kid_subset_size is not None:
            distribution.check_kid_subset_size(
                kid_subset_size, n_samples, n_samples, key="callbacks.fid.kid_subset_size"
            )
        self.every_n_epochs = every_n_epochs
        self.n_samples = n_samples
        self.kid_subset_size = kid_subset_size
        self.batch_size = batch_size
        self.seed = seed
        self._real: torch.Tensor | None = None  # the validation images' Inception features, computed once
        self._kid_subset_size = kid_subset_size  # resolved against the validation images used

    def _real_features(self, trainer: L.Trainer) -> torch.Tensor:
        datamodule = trainer_datamodule(trainer)
        if not isinstance(datamodule, ImageDataModule):
            raise ConfigError(
                f"callbacks.fid needs a genlab data module to take real images from, not "
                f"{type(datamodule).__name__}: train with data=mnist or data=imagenette"
            )
        real = datamodule.split_images("val")
        n = min(self.n_samples, len(real))
        # null: min(1000, n), as evaluate.py's kid.subset_size
        self._kid_subset_size = distribution.kid_subset_size(
            self.kid_subset_size, n, self.n_samples, key="callbacks.fid.kid_subset_size"
        )
        index = torch.randperm(len(real), generator=torch.Generator().manual_seed(self.seed))[:n]
        return extract_features(real[index], shared_inception(), self.batch_size)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs or trainer.sanity_checking:
            return
        if self._real is None:
            self._real = self._real_features(trainer)
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        images = sample_uint8(pl_module, self.n_samples, generator, self.batch_size)
        fake = extract_features(images, shared_inception(), self.batch_size)
        # evaluate.py's metrics; KID's subsets are seeded, and the run's RNG stream is untouched.
        kid_mean, _ = distribution.kid(self._real, fake, subset_size=self._kid_subset_size, seed=self.seed)
        # Every DDP rank draws the same seeded samples; sync_dist keeps the logged values one by construction.
        pl_module.log("val/fid", distribution.fid(self._real, fake), on_epoch=True, sync_dist=True)
        pl_module.log("val/kid", kid_mean, on_epoch=True, sync_dist=True)
