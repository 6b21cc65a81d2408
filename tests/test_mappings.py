"""genlab.mappings.flatten and its three users: override keys, TensorBoard's HParams, report columns."""

from __future__ import annotations

import json

from genlab.checkpoints import architecture
from genlab.hparams import tensorboard_hparams
from genlab.mappings import flatten
from genlab.report.runs import read_metrics

NESTED = {"model": {"optimizer": {"lr": 2e-4, "betas": [0.5, 0.999]}, "latent_dim": 8}, "seed": 0}


def test_flatten_keeps_leaves_and_order():
    assert flatten(NESTED) == {
        "model.optimizer.lr": 2e-4,
        "model.optimizer.betas": [0.5, 0.999],
        "model.latent_dim": 8,
        "seed": 0,
    }
    assert list(flatten(NESTED, "run/", sep="/")) == [
        "run/model/optimizer/lr",
        "run/model/optimizer/betas",
        "run/model/latent_dim",
        "run/seed",
    ]
    assert flatten({"empty": {}, "x": None}) == {"x": None}


def test_tensorboard_hparams_are_slashed_and_shown_as_text_when_not_scalars():
    assert tensorboard_hparams(NESTED) == {
        "model/optimizer/lr": 2e-4,
        "model/optimizer/betas": "[0.5, 0.999]",
        "model/latent_dim": 8,
        "seed": 0,
    }


def test_architecture_keys_are_overrides_with_lists_whole():
    config = {
        "latent_dim": 8,
        "image_shape": (1, 28, 28),
        "decoder": {"_target_": "Decoder", "hidden_dims": (64, 128), "norm": {"kind": "batch"}},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
    }
    assert architecture(config) == {
        "model.latent_dim": 8,
        "model.image_shape": [1, 28, 28],
        "model.decoder._target_": "Decoder",
        "model.decoder.hidden_dims": [64, 128],
        "model.decoder.norm.kind": "batch",
    }


def test_report_reads_the_numbers_of_metrics_json(tmp_path):
    record = {"metrics": {"fid": 12.5, "real_floor": {"fid": 1}, "histogram": [0.1], "ok": True}}
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    assert read_metrics(tmp_path) == {"fid": 12.5, "real_floor.fid": 1.0}
