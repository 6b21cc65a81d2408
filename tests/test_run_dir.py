"""genlab.run_dir names the run folder's files: the configs spell the same folders, and a run writes them."""

from __future__ import annotations

from pathlib import Path

from genlab import run_dir
from genlab.train import train


def test_the_configs_put_checkpoints_and_logs_where_run_dir_says(make_cfg):
    cfg = make_cfg("logger=tensorboard")
    output = cfg.paths.output_dir
    for name in ("last_checkpoint", "model_checkpoint"):
        assert Path(cfg.callbacks[name].dirpath) == run_dir.checkpoints_dir(output)
    assert cfg.logger.tensorboard.name == run_dir.TENSORBOARD
    assert Path(cfg.logger.tensorboard.save_dir) / cfg.logger.tensorboard.name == run_dir.tensorboard_dir(
        output
    )
    csv = make_cfg("logger=csv").logger.csv
    assert Path(csv.save_dir) / csv.name / run_dir.CSV_METRICS == run_dir.csv_metrics(output)


def test_a_run_writes_the_files_run_dir_names(make_cfg):
    cfg = make_cfg(
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
    )
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert run_dir.last_checkpoint(run).is_file() and run_dir.config_file(run).is_file()
    assert run_dir.picture(run, "samples", 0).is_file() and run_dir.loss_curves(run).is_file()
    assert any(run_dir.tensorboard_dir(run).glob("events.out.tfevents.*"))


def test_evaluate_writes_beside_the_run_of_a_checkpoint(tmp_path):
    assert run_dir.of_checkpoint(run_dir.last_checkpoint(tmp_path)) == tmp_path
    assert run_dir.of_checkpoint(tmp_path / "elsewhere" / "model.ckpt") == tmp_path / "elsewhere"
    assert run_dir.samples_grid(run_dir.metrics_file(tmp_path)) == tmp_path / "samples.png"
    assert run_dir.samples_grid(tmp_path / "ema.json") == tmp_path / "ema_samples.png"
