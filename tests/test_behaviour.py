"""What a refactor must not change, on real MNIST: benchmarks/behaviour_check.py trains each compared preset
for 100 fixed-seed batches with a baseline commit and with this tree, and compares weights and pictures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

MNIST = Path(os.environ.get("GENLAB_MNIST_DIR", ROOT.parent / "data"))


@pytest.mark.slow
@pytest.mark.skipif(not (MNIST / "MNIST" / "raw").is_dir(), reason="needs real MNIST: set GENLAB_MNIST_DIR")
def test_presets_train_the_same_weights_as_the_baseline(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.behaviour_check",
            "--data-dir",
            str(MNIST),
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("identical; baseline checkpoint's pictures: identical") == 4
