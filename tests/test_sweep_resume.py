"""A sweep that dies halfway goes on when the same command runs again in its folder: finished jobs are left
alone, the interrupted one resumes from its own last.ckpt, the rest run, and the report has the whole grid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from helpers import ROOT, data_overrides

from genlab.report.runs import read_sweep
from genlab.run_dir import finished_file

HERE = Path(__file__).resolve().parent


def test_a_killed_sweep_resumes_where_it_stopped(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "hydra/launcher=basic",  # one job after the other: jobs 0-1 finish, 2 is stopped, 3 never starts
        "model=vae",
        "seed=1,2,3,4",
        *data_overrides("mnist", mnist_dir, mnist_dir, tmp_path / "cache"),
        "trainer=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=6",
        "trainer.limit_val_batches=1",
        "logger=csv",
        "+callbacks.stop._target_=run_probes.SignalAtStep",  # a real SIGTERM to job 2 at its step 3
        "+callbacks.stop.step=3",
        "+callbacks.stop.job=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}:{HERE}",
        "OMP_NUM_THREADS": "1",
        "HYDRA_FULL_ERROR": "0",
    }
    killed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 143, killed.stderr[-3000:]
    assert f"hydra.sweep.dir={sweep_dir}" in killed.stderr  # the command that resumes the sweep
    # each job's folder is named by its number and the override that varies
    jobs = [sweep_dir / f"{num}_seed:{num + 1}" for num in range(4)]
    assert [finished_file(job).is_file() for job in jobs[:3]] == [True, True, False]
    assert torch.load(jobs[2] / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert not jobs[3].exists()
    finished = {p: p.stat().st_mtime_ns for job in jobs[:2] for p in job.rglob("*")}

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for job in jobs[:2] for p in job.rglob("*")} == finished
    assert "4 jobs, 2 finished, 0 failed, 2 skipped" in again.stdout
    assert "resuming the interrupted run" in (jobs[2] / "train.log").read_text()
    assert torch.load(jobs[2] / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert (jobs[2] / "config.yaml").read_text().count("ckpt_path: /") == 1  # recorded

    runs = read_sweep(sweep_dir)
    assert [run.seed for run in runs] == [1, 2, 3, 4] and all(run.ok for run in runs)
    report = subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), str(sweep_dir)], env=env, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr[-3000:]
    table = (sweep_dir / "runs.csv").read_text().splitlines()
    assert len(table) == 1 + 4  # a header and the 4 runs
