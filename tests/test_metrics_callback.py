"""The opt-in training-time FID/KID callback (conf/callbacks/fid.yaml)."""

from __future__ import annotations

import math

import pytest

from genlab.callbacks.metrics import FIDCallback
from genlab.errors import ConfigError
from genlab.train import train


@pytest.mark.usefixtures("one_thread")
def test_fid_callback_logs_val_fid_and_kid(make_cfg):
    cfg = make_cfg(
        "+callbacks=fid",
        "callbacks.fid.every_n_epochs=1",
        "callbacks.fid.n_samples=4",
        "callbacks.fid.kid_subset_size=2",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "logger=csv",
    )
    metrics = train(cfg)
    assert cfg.callbacks.fid._target_ == "genlab.callbacks.metrics.FIDCallback"
    assert math.isfinite(metrics["val/fid"]) and metrics["val/fid"] > 0
    assert math.isfinite(metrics["val/kid"])


def test_fid_callback_rejects_a_kid_subset_larger_than_its_sample():
    with pytest.raises(ConfigError, match="callbacks.fid.kid_subset_size=300"):
        FIDCallback(n_samples=256, kid_subset_size=300)
