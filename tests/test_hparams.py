"""TensorBoard's HParams tab: a run's hyperparameters with its final metrics, and evaluate.py's numbers
added to the same run."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from genlab.hparams import add_to_run
from genlab.train import train


def hparams_records(log_dir: Path) -> tuple[set[str], bool, dict[str, float]]:
    """(hyperparameter names of the session, whether an experiment summary fixes the metric columns, the
    last hparams/* scalars: TensorBoard's metric columns)."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    names: set[str] = set()
    fixed_columns = False
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        names |= set(data.session_start_info.hparams)
        fixed_columns |= data.HasField("experiment")
    scalars = {
        tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"] if tag.startswith("hparams/")
    }
    return names, fixed_columns, scalars


def test_a_run_logs_its_hyperparameters_with_its_final_metrics(make_cfg, one_thread):
    cfg = make_cfg("trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1")
    metrics = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    names, fixed_columns, scalars = hparams_records(run_dir / "tensorboard")
    assert {"model/optimizer/lr", "model/beta", "data/batch_size", "seed"} <= names
    assert not any(name.startswith(("paths/", "callbacks/", "hydra/")) for name in names)  # plumbing
    assert (
        scalars["hparams/val/loss"] == pytest.approx(metrics["val/loss"]) and "hparams/train/loss" in scalars
    )
    assert not fixed_columns  # TensorBoard then takes the columns from all scalars, later ones included

    # evaluate.py adds its numbers to the same run, beside those of training
    assert add_to_run(run_dir, {"fid": 12.5, "kid_mean": 0.01, "real_floor": {"fid": 1.0}})
    names, _, scalars = hparams_records(run_dir / "tensorboard")
    assert scalars["hparams/fid"] == 12.5 and {"hparams/kid_mean", "hparams/val/loss"} <= set(scalars)
    assert "model/beta" in names


def test_a_run_without_tensorboard_has_nothing_to_add_to(tmp_path):
    assert not add_to_run(tmp_path, {"fid": 1.0})
