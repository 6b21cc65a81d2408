"""Real sweeps (`python train.py -m ...`) on fake data: 2 jobs in parallel, a failing job, submitit (slow:
`make test-slow` runs them)."""

import os
import re
import subprocess
import sys

import pytest
from helpers import ROOT

from genlab.report.report import write_report
from genlab.report.runs import read_sweep

TINY = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "data.val_size=50",
]


def sweep(sweep_dir, mnist_dir, *overrides):
    """Run `python train.py -m` into `sweep_dir` on the fake MNIST, as if on a machine without GPUs."""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        *TINY,
        f"data.data_dir={mnist_dir}",
        f"hydra.sweep.dir={sweep_dir}",
        f"paths.log_dir={sweep_dir.parent}",
        *overrides,
    ]
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_two_jobs_in_parallel_and_a_failing_job_does_not_stop_the_sweep(tmp_path, mnist_dir):
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, mnist_dir, "hydra/launcher=local_gpus", "model=vae", "data.batch_size=-1,16")
    assert done.returncode == 1, done.stderr[-3000:]  # after both jobs ran
    assert "2 jobs, 1 finished, 1 failed, 0 skipped" in done.stdout
    assert "error: 1 of 2 jobs failed: 0_data.batch_size:-1" in done.stderr
    assert "n_jobs=2" in done.stderr + done.stdout  # the local launcher runs 2 jobs at a time on a CPU
    pids = {
        re.search(r"worker pid (\d+), GPU none", (sweep_dir / job / "train.log").read_text()).group(1)
        for job in ("0_data.batch_size:-1", "1_data.batch_size:16")
    }
    assert len(pids) == 2  # two workers, side by side

    failed, finished = read_sweep(sweep_dir)
    assert not failed.ok and "data.batch_size=-1" in failed.failure  # genlab's message, recorded
    assert finished.ok and (sweep_dir / "1_data.batch_size:16" / "checkpoints" / "last.ckpt").is_file()
    report = write_report(sweep_dir).read_text()
    assert "## Failed runs" in report and "data.batch_size=-1" in report


@pytest.mark.slow
def test_submitit_local_executor_runs_a_two_job_sweep(tmp_path, mnist_dir):
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, mnist_dir, "hydra/launcher=submitit_local", "model=gan", "seed=1,2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 jobs, 2 finished, 0 failed, 0 skipped" in done.stdout  # from the jobs' returns
    runs = read_sweep(sweep_dir)
    assert [run.seed for run in runs] == [1, 2] and all(run.ok for run in runs)
    assert list(sweep_dir.glob(".submitit/*/*_log.out"))  # submitit ran them as jobs
