"""genlab.loggers.TensorBoardLogger: each step's scalars in one event, read back by TensorBoard as
Lightning's logger writes them."""

from __future__ import annotations

import pytest
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import tensor

from genlab.compat import event_file_writer
from genlab.loggers import TensorBoardLogger


def scalars(logger) -> dict[str, list[tuple[int, float]]]:
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def log_steps(logger) -> None:
    for step in range(3):
        logger.log_metrics({"train/loss": 1.0 + step, "train/kl": tensor(0.5 * step)}, step=step)
    logger.log_metrics({"val/loss": 7.0}, step=2)
    logger.log_metrics({"grouped": {"a": 1.0, "b": 2.0}}, step=2)  # add_scalars: Lightning's own path


def test_tensorboard_reads_what_lightnings_logger_writes(tmp_path):
    ours = TensorBoardLogger(tmp_path, name="ours")
    theirs = LightningTensorBoardLogger(tmp_path, name="theirs")
    log_steps(ours)
    log_steps(theirs)
    assert scalars(ours) == scalars(theirs)
    assert scalars(ours)["train/kl"] == [(0, 0.0), (1, 0.5), (2, 1.0)]


def test_one_event_per_step(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    writer = event_file_writer(logger.experiment)
    written = []
    add_summary = writer.add_summary

    def counting(summary, global_step=None, walltime=None):
        written.append((global_step, len(summary.value)))
        add_summary(summary, global_step, walltime)

    writer.add_summary = counting
    logger.log_metrics({"train/loss": 1.0, "train/recon": 2.0, "train/kl": 3.0}, step=4)
    assert written == [(4, 3)]


def test_a_value_that_is_not_a_number_names_the_metric(tmp_path):
    with pytest.raises(ValueError, match="train/loss='high'"):
        TensorBoardLogger(tmp_path).log_metrics({"train/loss": "high"}, step=0)
