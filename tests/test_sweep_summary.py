"""A sweep says how it went and exits honestly: a summary of finished, failed (with reasons) and skipped jobs,
exit status 1 after every job ran when one failed; job folders named by the overrides that vary; one grid
holds MNIST and a CPU-sized Imagenette (data=imagenette_64)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, compose_train, write_fake_imagenette, write_fake_mnist
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from genlab.launch.resumable_sweep import grid_jobs, name_folders_by_what_varies, shared_keys
from genlab.launch.summary import JobOutcome, failures_error, summary
from genlab.report.runs import read_sweep
from genlab.run_dir import finished_file

HERE = Path(__file__).resolve().parent


def test_shared_overrides_are_left_out_of_the_folder_names():
    jobs = grid_jobs(
        {"model": "vae,gan", "data": "mnist,imagenette_64", "seed": "1,2,3"}, ["seed=1", "+a.b=2"]
    )
    assert len(jobs) == 4 and jobs[0] == ["model=vae", "data=mnist", "seed=1", "+a.b=2"]
    assert shared_keys(jobs) == ["a.b", "seed"]
    assert shared_keys(jobs[:1]) == []  # a sweep of one job is named by all its overrides

    cfg = compose_train("sweep=vae_vs_gan")
    name_folders_by_what_varies(cfg, jobs)
    (added,) = [o for o in cfg.hydra.overrides.hydra if o.startswith("hydra.job.config.override_dirname")]
    assert "'data.data_dir'" in added and "'seed'" in added and "'model'" not in added

    cfg = compose_train("sweep=vae_vs_gan")
    name_folders_by_what_varies(cfg, [["ckpt_path=/a/last.ckpt"], ["ckpt_path=/b/last.ckpt"]])
    added = OmegaConf.to_container(cfg.hydra.overrides.hydra)  # as Hydra reads them: not resolved
    assert "hydra.sweep.subdir=${hydra.job.num}" in added  # no name left: the jobs are numbered only


def test_a_run_folder_is_named_by_its_model_and_data():
    cfg = compose_train("model=gan", "data=imagenette_64")
    HydraConfig().set_config(cfg)
    run_dir = OmegaConf.select(cfg, "hydra.run.dir")
    assert run_dir.endswith("_gan_imagenette_64") and "/train/runs/" in run_dir


def test_the_summary_has_a_line_per_job_and_the_error_counts_every_failure(tmp_path):
    outcomes = [
        JobOutcome(0, tmp_path / "0_model:vae", "finished"),
        JobOutcome(1, tmp_path / "1_model:gan", "failed", "DataError: no\nImagenette in /x"),
        JobOutcome(2, tmp_path / "2_model:ae", "skipped"),
        JobOutcome(3, tmp_path / "3_model:dcgan", "skipped", "train/d_loss = nan at step 3"),
    ]
    text = summary(outcomes, tmp_path).splitlines()
    assert text[0] == f"sweep {tmp_path}: 4 jobs, 1 finished, 1 failed, 2 skipped (1 of them had failed)"
    assert text[1:] == [
        "  finished  0_model:vae",
        "  failed    1_model:gan: DataError: no Imagenette in /x",
        "  skipped   2_model:ae: finished in an earlier run",
        "  skipped   3_model:dcgan: failed in an earlier run: train/d_loss = nan at step 3",
    ]
    error = str(failures_error(outcomes))
    assert (
        error.startswith("2 of 4 jobs failed: 1_model:gan, 3_model:dcgan")
        and "1 failed in an earlier" in error
    )
    assert failures_error(outcomes[:1]) is None


@pytest.fixture(scope="module")
def both_datasets(tmp_path_factory) -> Path:
    """One data folder with MNIST/raw/ and imagenette2-160/, as a mixed grid needs (MNIST's default
    val_size of 5000 included: a MNIST-only data option cannot be set in a grid that holds Imagenette)."""
    root = tmp_path_factory.mktemp("data")
    write_fake_mnist(root, n_train=5100, n_test=50)
    return write_fake_imagenette(root)


def test_a_mixed_grid_runs_every_job_then_reports_the_failed_one_and_exits_1(both_datasets, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "sweep=vae_vs_gan",
        "hydra/launcher=basic",
        "seed=1",
        f"data.data_dir={both_datasets}",
        "data.batch_size=6",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "logger=csv",
        "callbacks=none",
        "+callbacks.fail._target_=run_probes.FailInJob",  # job 1 (the VAE on Imagenette) raises
        "+callbacks.fail.job=1",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}:{HERE}",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    names = [
        "0_data:mnist+model:vae",
        "1_data:imagenette_64+model:vae",
        "2_data:mnist+model:gan",
        "3_data:imagenette_64+model:gan",
    ]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == names
    assert [finished_file(sweep_dir / name).is_file() for name in names] == [True, False, True, True]
    assert OmegaConf.load(sweep_dir / names[3] / "config.yaml").data.image_size == 64  # a CPU size
    # a job's checkpoint is passed unquoted, as evaluate.py ckpt_path=... and in a sweep over several
    paths = ",".join(f"{sweep_dir / name}/checkpoints/last.ckpt" for name in names[:2])
    (parsed,) = OverridesParser.create().parse_overrides([f"ckpt_path={paths}"])
    assert parsed.value().list == paths.split(",")
    assert f"sweep {sweep_dir}: 4 jobs, 3 finished, 1 failed, 0 skipped" in done.stdout
    assert f"  failed    {names[1]}: RuntimeError: the probe fails sweep job 1" in done.stdout
    assert f"  finished  {names[3]}" in done.stdout  # the jobs after the failed one ran
    assert f"error: 1 of 4 jobs failed: {names[1]}" in done.stderr and "Traceback" not in done.stderr
    runs = read_sweep(sweep_dir)  # the report reads the named folders in job order
    assert [run.path.name for run in runs] == names and "the probe fails" in runs[1].failure

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1, again.stderr[-3000:]  # the failed job still counts until it is run again
    assert "4 jobs, 0 finished, 0 failed, 4 skipped (1 of them had failed)" in again.stdout
    assert f"  skipped   {names[0]}: finished in an earlier run" in again.stdout
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == names  # found in their folders
