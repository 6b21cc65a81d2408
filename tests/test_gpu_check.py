"""`make gpu-check` (benchmarks/gpu_check.py) without a GPU: it refuses to start, its dry run plans
commands that train.py and pytest accept, and a step that fails or runs out of time is recorded while the
others run."""

from __future__ import annotations

import json
import re
import sys

import pytest
import torch
from helpers import ROOT, compose_train

sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of scripts beside src/, as `python -m` sees it
from benchmarks import gpu_check  # noqa: E402
from benchmarks.train_throughput import CASES  # noqa: E402

STEPS = ["bench", "tests", "device_auto", "best_mnist_gan", "best_mnist_vae", "best_mnist_flow"]


def test_it_refuses_to_start_without_a_gpu(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        gpu_check.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "check.json")])
    assert stopped.value.code != 0
    error = capsys.readouterr().err
    assert "no CUDA GPU is visible" in error and "--device cpu" in error and "--dry-run" in error
    assert not (tmp_path / "check.json").exists()


def test_a_dry_run_plans_commands_that_train_py_and_pytest_accept(tmp_path, mnist_dir):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--data-dir", str(mnist_dir), "--out", str(out), "--dry-run"]) == 0
    steps = json.loads(out.read_text())["steps"]
    assert list(steps) == STEPS and {step["status"] for step in steps.values()} == {"not run"}
    assert sum(step["timeout_s"] for step in steps.values()) <= 8 * 60

    bench = steps["bench"]["command"]
    assert bench[bench.index("--device") + 1] == "cuda"
    assert set(bench[bench.index("--cases") + 1 : bench.index("--out")]) <= set(CASES)
    for selected in steps["tests"]["command"][-len(gpu_check.TEST_SELECTION) :]:
        path, _, name = selected.partition("::")
        assert (ROOT / path).is_file(), selected
        assert not name or re.search(rf"def {name}\(", (ROOT / path).read_text()), selected

    configs = {}
    for name in ("device_auto", "best_mnist_gan", "best_mnist_vae", "best_mnist_flow"):
        command = steps[name]["command"]
        configs[name] = compose_train(*command[command.index("train.py") + 1 :])  # Hydra checks each key
        assert configs[name].trainer.accelerator == "gpu" and configs[name].data.data_dir == str(mnist_dir)
    assert configs["device_auto"].data.device == "auto"
    for preset, epochs in (("best_mnist_gan", 2), ("best_mnist_vae", 2), ("best_mnist_flow", 1)):
        assert configs[preset].task_name == preset and configs[preset].trainer.max_epochs == epochs


def fake_plan(data_dir, imagenette_dir, device, work_dir):
    python = sys.executable
    return [
        gpu_check.Step(
            "fine", [python, "-c", "print('all good')"], 30, lambda work_dir: {"metrics": {"x": 1}}
        ),
        gpu_check.Step("broken", [python, "-c", "import sys; print('boom'); sys.exit(3)"], 30),
        gpu_check.Step(
            "slow", [python, "-c", "import time; print('started', flush=True); time.sleep(30)"], 2
        ),
        gpu_check.Step("after", [python, "-c", "print('still ran')"], 30),
    ]


def test_every_step_is_recorded_when_some_fail(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_check, "plan", fake_plan)
    out = tmp_path / "check.json"
    assert gpu_check.main(["--data-dir", str(tmp_path), "--device", "cpu", "--out", str(out)]) == 1
    results = json.loads(out.read_text())
    steps = results["steps"]
    assert {name: step["status"] for name, step in steps.items()} == {
        "fine": "ok",
        "broken": "failed",
        "slow": "timeout",
        "after": "ok",
    }
    assert steps["fine"]["metrics"] == {"x": 1} and "all good" in steps["fine"]["output_tail"]
    assert steps["broken"]["returncode"] == 3 and "boom" in steps["broken"]["output_tail"]
    assert 2 <= steps["slow"]["duration_s"] < 30 and "started" in steps["slow"]["output_tail"]
    assert results["machine"]["device"] == "cpu" and results["wall_s"] >= steps["slow"]["duration_s"]
