"""A training step makes no host-device synchronisation: the step's scalars reach the host once per
`trainer.log_every_n_steps` batches, in one transfer, with the TensorBoard logger, the progress bar, the loss
curves and the NaN check all on (train.py's defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlab.models import GAN, VAE
from genlab.train import train


class Watched(torch.Tensor):
    """A tensor that counts what would copy it from a GPU to the host (item, float, tolist, cpu, ...)."""

    transfers = 0

    def _moved(self, name: str, *args, **kwargs):
        Watched.transfers += 1
        return getattr(torch.Tensor, name)(self.as_subclass(torch.Tensor), *args, **kwargs)

    def item(self):
        return self._moved("item")

    def tolist(self):
        return self._moved("tolist")

    def numpy(self, *args, **kwargs):
        return self._moved("numpy", *args, **kwargs)

    def cpu(self, *args, **kwargs):
        return self._moved("cpu", *args, **kwargs)

    def __float__(self):
        return self._moved("__float__")

    def __int__(self):
        return self._moved("__int__")

    def __bool__(self):
        return self._moved("__bool__")

    def __format__(self, spec):
        return self._moved("__format__", spec)


def watched(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.as_subclass(Watched) for name, value in outputs.items()}


class WatchedVAE(VAE):
    def training_step(self, batch, batch_idx):
        return watched(super().training_step(batch, batch_idx))


class WatchedGAN(GAN):
    def training_step(self, batch, batch_idx):
        return watched(super().training_step(batch, batch_idx))


@pytest.mark.parametrize("kind, model", [("vae", WatchedVAE), ("gan", WatchedGAN)])
def test_one_transfer_per_logging_interval(make_cfg, kind, model):
    cfg = make_cfg(
        f"model={kind}",
        f"model._target_={model.__module__}.{model.__qualname__}",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=5",
        "+trainer.limit_train_batches=15",
        "+trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
    )
    Watched.transfers = 0
    metrics = train(cfg)
    assert Watched.transfers == 3  # 15 batches, one transfer per 5
    assert all(isinstance(value, float) for value in metrics.values())


def test_every_batch_reaches_tensorboard_and_the_curves(make_cfg):
    """Values arrive in intervals, each at its own batch's step: 12 batches with an interval of 5 give 12
    points per scalar (the last 2 at the epoch's end), as many as logging each step did."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_cfg(
        "model=gan",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=5",
        "+trainer.limit_train_batches=12",
        "+trainer.limit_val_batches=1",
    )
    metrics = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        points = events.Scalars(f"train/{name}")
        assert [p.step for p in points] == list(range(12)), name
        assert points[-1].value == pytest.approx(metrics[f"train/{name}"])
    history = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    assert history["TrainingScalars"]["history"]["g_loss"][0].tolist() == list(range(1, 13))
