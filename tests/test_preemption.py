"""Preemption: a real train.py process stopped by SIGTERM (or Ctrl-C) in the middle of an epoch saves the
step it reached, says how to resume, exits non-zero, and the resumed run ends where the uninterrupted one
does, tensor for tensor."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from helpers import ROOT, assert_same_run, data_overrides

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}


def command(run_dir: Path, mnist_dir: Path, *extra: str) -> list[str]:
    data = data_overrides("mnist", mnist_dir, mnist_dir, run_dir / "cache")
    common = ["model=gan", "seed=7", "trainer=cpu", "trainer.max_epochs=2", "logger=none", *data]
    return [sys.executable, str(ROOT / "train.py"), *common, *extra, f"hydra.run.dir={run_dir}"]


def stop_in_epoch_1(run_dir: Path, mnist_dir: Path, signum: int) -> tuple[int, str, dict]:
    """Start a run (0.1 s a batch), send `signum` a few batches into epoch 1; its exit status, stderr and
    last.ckpt."""
    slow = ["+callbacks.slow._target_=run_probes.SlowBatches", "+callbacks.slow.seconds=0.1"]
    process = subprocess.Popen(
        command(run_dir, mnist_dir, *slow), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the end of epoch 0 (15 batches of 0.1 s)
    time.sleep(0.5)  # a few batches into epoch 1
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 1 and 30 < checkpoint["global_step"] < 60  # mid-epoch 1 (2 steps a batch)
    (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted: ")]
    name = signal.Signals(signum).name
    assert f"{name} at step {checkpoint['global_step']} (epoch 1), saved {last}; resume with: " in line
    return process.returncode, line, checkpoint


def test_sigterm_saves_the_step_and_the_resumed_run_is_exact(mnist_dir, tmp_path):
    straight = subprocess.run(
        command(tmp_path / "straight", mnist_dir), env=ENV, capture_output=True, text=True
    )
    assert straight.returncode == 0, straight.stderr[-3000:]

    status, line, _ = stop_in_epoch_1(tmp_path / "stopped", mnist_dir, signal.SIGTERM)
    assert status == 143, line
    resume = shlex.split(re.search(r"resume with: (.*)$", line).group(1))
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert resume[:2] == ["python", str(ROOT / "train.py")] and f"ckpt_path={last}" in resume

    resumed = subprocess.run([sys.executable, *resume[1:]], env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(tmp_path / "straight" / "checkpoints" / "last.ckpt", last)


def test_ctrl_c_finishes_the_batch_saves_and_exits_130(mnist_dir, tmp_path):
    status, _, checkpoint = stop_in_epoch_1(tmp_path / "stopped", mnist_dir, signal.SIGINT)
    assert status == 130
    assert checkpoint["global_step"] % 2 == 0  # the GAN's batch finished: both nets stepped
