"""FID and KID during training: a small sample every k epochs, logged as val/fid and val/kid."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.errors import require
from genlab.metrics.inception import shared_inception, to_uint8


class FIDCallback(L.Callback):
    """Every `every_n_epochs` epochs, compare `n_samples` generated images with as many validation images.

    With few images FID is strongly biased upwards: use it to follow one run, not to compare with
    evaluate.py's numbers. Off by default (the Inception net costs ~0.1-0.3 s per image on a CPU).
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        n_samples: int = 256,
        kid_subset_size: int = 100,
        batch_size: int = 200,
        seed: int = 0,
    ) -> None:
        require(every_n_epochs >= 1, "callbacks.fid.every_n_epochs", every_n_epochs, "must be >= 1")
        require(n_samples >= 2, "callbacks.fid.n_samples", n_samples, "must be >= 2 (FID needs a covariance)")
        require(
            1 <= kid_subset_size <= n_samples,
            "callbacks.fid.kid_subset_size",
            kid_subset_size,
            f"must be between 1 and n_samples={n_samples}",
        )
        self.every_n_epochs = every_n_epochs
        self.n_samples = n_samples
        self.kid_subset_size = kid_subset_size
        self.batch_size = batch_size
        self.seed = seed
        self.fid: FrechetInceptionDistance | None = None
        self.kid: KernelInceptionDistance | None = None

    def _build(self, trainer: L.Trainer, pl_module) -> None:
        """The metrics, with the validation images' features computed once (reset_real_features=False)."""
        real = trainer.datamodule.split_images("val")
        n = min(self.n_samples, len(real))
        require(
            self.kid_subset_size <= n,
            "callbacks.fid.kid_subset_size",
            self.kid_subset_size,
            f"must be <= the {n} validation images used",
        )
        index = torch.randperm(len(real), generator=torch.Generator().manual_seed(self.seed))[:n]
        inception = shared_inception()
        self.fid = FrechetInceptionDistance(feature=inception, reset_real_features=False)
        self.kid = KernelInceptionDistance(
            feature=inception, subset_size=self.kid_subset_size, reset_real_features=False
        )
        for batch in real[index].split(self.batch_size):
            self.fid.update(batch, real=True)
            self.kid.update(batch, real=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs or trainer.sanity_checking:
            return
        if self.fid is None:
            self._build(trainer, pl_module)
        self.fid.reset()
        self.kid.reset()
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        was_training = pl_module.training
        pl_module.eval()
        # All latents in one draw, then decoded in batches: the samples do not depend on `batch_size`.
        with torch.no_grad():
            for z in pl_module.sample_latent(self.n_samples, generator).split(self.batch_size):
                images = to_uint8(pl_module.to_unit(pl_module.generate(z))).cpu()
                self.fid.update(images, real=False)
                self.kid.update(images, real=False)
        pl_module.train(was_training)
        with torch.random.fork_rng():  # KID's subsets: reproducible, and the run's RNG stream is untouched
            torch.manual_seed(self.seed)
            kid_mean, _ = self.kid.compute()
        # Every DDP rank draws the same seeded samples; sync_dist keeps the logged values one by construction.
        pl_module.log("val/fid", float(self.fid.compute()), on_epoch=True, sync_dist=True)
        pl_module.log("val/kid", float(kid_mean), on_epoch=True, sync_dist=True)
