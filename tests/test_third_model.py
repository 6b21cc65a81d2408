"""A model that genlab's src/ never names (tests/third_model.py, its config in tests/third_model_conf/)
goes through train -> generate -> evaluate -> compare as the VAE and the GAN do, from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, SMALL_EVAL

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = f"{ROOT / 'src'}:{HERE}"  # this tree's genlab, and the third model
    env = {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_a_third_model_from_the_command_line(mnist_dir, tmp_path):
    run(
        "train.py",
        "-m",
        f"hydra.searchpath=[file://{HERE / 'third_model_conf'}]",
        "model=autoencoder,vae",
        f"data.data_dir={mnist_dir}",
        "data.val_size=50",
        "data.batch_size=16",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=4",
        "+trainer.limit_val_batches=1",
        cwd=tmp_path,
    )
    (sweep_dir,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    third_dir, vae_dir = sweep_dir / "0_model:autoencoder", sweep_dir / "1_model:vae"  # named by the model
    ckpt = third_dir / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["genlab"]["_target_"] == "third_model.Autoencoder"
    assert (third_dir / "images" / "reconstructions" / "epoch_000.png").is_file()  # it can encode

    generated = run(
        "generate.py",
        f"ckpt_path={ckpt}",
        f"out={tmp_path / 'pictures'}",
        f"data.data_dir={mnist_dir}",
        cwd=tmp_path,
    )
    for name in ("samples", "interpolation", "interpolation_real", "reconstructions"):
        assert (tmp_path / "pictures" / f"{name}.png").is_file(), generated.stdout

    for job in (third_dir, vae_dir):
        run(
            "evaluate.py",
            f"ckpt_path={job / 'checkpoints' / 'last.ckpt'}",
            *SMALL_EVAL,
            "classifier=false",
            cwd=tmp_path,
        )
    third = json.loads((third_dir / "metrics.json").read_text())
    assert third["protocol"]["model"] == "Autoencoder" and third["protocol"]["dataset"] == "mnist"
    assert third["metrics"]["fid"] > 0 and "iwae" not in third["metrics"]  # no likelihood: no bounds
    assert "iwae" in json.loads((vae_dir / "metrics.json").read_text())["metrics"]

    run("compare.py", str(sweep_dir), cwd=tmp_path)
    report = (sweep_dir / "report.md").read_text()
    assert "| mnist | Autoencoder |" in report and "| mnist | VAE |" in report
    assert any(
        line.startswith("- mnist:") and "fid" in line and "Autoencoder" in line and "VAE" in line
        for line in report.splitlines()
    ), report
    assert (sweep_dir / "figures" / "curves_mnist_autoencoder.png").is_file()


@pytest.fixture(autouse=True)
def _no_src_mentions():
    """The point of the test: src/ knows nothing of the third model."""
    yield
    mentions = [p for p in (ROOT / "src").rglob("*.py") if "Autoencoder" in p.read_text()]
    assert not mentions, mentions
