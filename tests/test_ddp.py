"""DDP for both models with 2 CPU processes (gloo), as `trainer=ddp` runs on GPUs: the run finishes, writes
one set of run files, and both ranks end with the same validation metrics and the same weights."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY_FLOW_SETTINGS, data_overrides

from genlab.launch.ddp import without_cpu_sync_batchnorm

HERE = Path(__file__).resolve().parent
# the probes, and this checkout's genlab (not whichever one is installed)
PYTHONPATH = os.pathsep.join([str(HERE), str(ROOT / "src")])


#: the GAN toolbox at once: EMA generator, DiffAugment, lazy R1, on the MNIST DCGAN
#: BatchNorm buffers: running statistics, not trained weights
BATCH_NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
GAN_TOOLBOX = (
    "experiment=best_mnist_gan",
    "model.diffaugment=[color,translation,cutout]",
    "model.r1_gamma=1.0",
    "model.r1_every=2",
)


def check_ddp_run(model: str, mnist_dir: Path, tmp_path: Path, *devices: str, trainer: str = "ddp") -> None:
    """Run 2 DDP processes on `devices` with `trainer` (a conf/trainer/ choice): one set of files, equal
    metrics and weights on both ranks. `model` "gan_toolbox" is the GAN with GAN_TOOLBOX; the flow is tiny."""
    model, extra = {"gan_toolbox": ("gan", GAN_TOOLBOX), "flow": ("flow", TINY_FLOW_SETTINGS)}.get(
        model, (model, ())
    )
    run_dir, ranks = tmp_path / "run", tmp_path / "ranks"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            f"model={model}",
            *extra,
            *data_overrides("mnist", mnist_dir, mnist_dir, tmp_path / "cache"),
            f"trainer={trainer}",
            *devices,
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=4",
            "trainer.limit_val_batches=2",
            "+callbacks.dump._target_=run_probes.DumpRankState",
            f"+callbacks.dump.path={ranks}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    # One set of run files, written by rank 0 only (rank 1 keeps its own log, train_ddp_process_1.log).
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert files.count("config.yaml") == 1 and files.count("finished.json") == 1
    assert [f for f in files if f.startswith("images/samples/")] == [
        "images/samples/epoch_000.png",
        "images/samples/epoch_001.png",
    ]
    writers = Counter(re.search(r"\.(\d+)\.\d+$", f).group(1) for f in files if "tfevents" in f)
    assert len(writers) == 1  # every TensorBoard event file comes from one process
    assert sorted(f for f in files if f.endswith(".log")) == ["train.log", "train_ddp_process_1.log"]

    rank0, rank1 = (torch.load(ranks / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    val = {k: v for k, v in rank0["metrics"].items() if k.startswith("val/")}
    assert val and val == {k: v for k, v in rank1["metrics"].items() if k.startswith("val/")}
    assert rank0["weights"].keys() == rank1["weights"].keys()
    on_cpu = "trainer.accelerator=cpu" in devices
    for name, tensor in rank0["weights"].items():
        if on_cpu and name.rsplit(".", 1)[-1] in BATCH_NORM_STATISTICS:
            # Without SyncBatchNorm (GPU only) each CPU rank keeps the running statistics of its own real
            # images between DDP's broadcasts from rank 0 (the rank that saves): D's BatchNorm in
            # best_mnist_gan sees different real images per rank. Training uses batch statistics.
            continue
        assert torch.equal(tensor, rank1["weights"][name]), name


# The GAN with its toolbox and the flow take 15 and 30 s here: `make test-slow` runs them.
@pytest.mark.parametrize(
    "model",
    [
        "vae",
        "gan",
        pytest.param("gan_toolbox", marks=pytest.mark.slow),
        pytest.param("flow", marks=pytest.mark.slow),
    ],
)
def test_ddp_with_two_cpu_processes(model, mnist_dir, tmp_path):
    check_ddp_run(model, mnist_dir, tmp_path, "trainer.accelerator=cpu", "trainer.devices=2")


@pytest.mark.parametrize("model", [pytest.param("vae", marks=pytest.mark.slow), "gan"])
def test_ddp_fp16_mixed_on_two_cpu_processes(model, mnist_dir, tmp_path):
    # fp16 autocast and a GradScaler on each CPU rank (conf/trainer/fp16_cpu.yaml), as 16-mixed runs on GPUs
    check_ddp_run(model, mnist_dir, tmp_path, "trainer.devices=2", trainer="[ddp,fp16_cpu]")
    scaler = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["MixedPrecision"]
    assert scaler["scale"] > 0 and scaler["_growth_tracker"] > 0  # the scaler stepped


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP with 16-mixed needs 2 GPUs")
@pytest.mark.parametrize("model", ["vae", "gan"])
def test_ddp_fp16_mixed_on_two_gpus(model, mnist_dir, tmp_path):
    check_ddp_run(model, mnist_dir, tmp_path, "trainer.devices=2", "trainer.precision=16-mixed")


def test_sync_batchnorm_stays_on_for_gpus_and_goes_off_on_cpus():
    ddp = {"accelerator": "gpu", "sync_batchnorm": True}
    assert without_cpu_sync_batchnorm(ddp) == ddp
    assert without_cpu_sync_batchnorm(ddp | {"accelerator": "cpu"})["sync_batchnorm"] is False
    assert without_cpu_sync_batchnorm({"accelerator": "cpu"}) == {"accelerator": "cpu"}
