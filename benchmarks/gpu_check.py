"""`make gpu-check`: the paths that only a GPU runs, in under 8 minutes on one GPU, into one results file.

    python -m benchmarks.gpu_check --data-dir DIR [--imagenette-dir DIR] [--out FILE] [--device cuda|cpu]
        [--dry-run]

Each step is a subprocess with its own timeout (together under 8 minutes); a step that fails or runs out of
time is recorded as such and the next one runs. The steps:
- bench: `benchmarks.run --device cuda`, the training part on the MNIST cases (with the GPU knobs);
- tests: the fp16 and DDP tests (tests/test_precision.py, tests/test_ddp.py, the fp16 resume test and the
  data.device=auto test), their pass/fail/skip counts;
- device_auto: a short VAE run with `data.device=auto` (the data set kept on the GPU);
- best_mnist_gan, best_mnist_vae: 2 epochs of each preset, best_mnist_flow: 1 epoch; their wall time and
  final metrics.

Writes benchmarks/results/gpu-check-<host>.json, even when steps fail, and exits 1 if any did. Without a
CUDA GPU it refuses to start, unless `--device cpu` (the same steps shrunk to a few batches on the CPU: a
smoke test of this script, no measurement) or `--dry-run` (writes the planned commands, runs nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
#: how much of a step's output the results keep (its end, where errors are)
OUTPUT_TAIL = 2000
TEST_SELECTION = [
    "tests/test_precision.py",
    "tests/test_ddp.py",
    "tests/test_resume.py::test_fp16_grad_scaler_state_survives_a_mid_epoch_resume",
    "tests/test_speed.py::test_data_device_auto_batches_on_the_gpu",
]
#: the trainer of each device's training steps
TRAINER = {"cuda": "trainer=gpu", "cpu": "trainer=cpu"}
#: the data.device=auto run: long enough to see the batches come from the GPU's copy of the data
DEVICE_AUTO_LIMITS = ["+trainer.limit_train_batches=100", "trainer.limit_val_batches=5"]
#: the CPU smoke run: a few batches per epoch in every training step
CPU_LIMITS = ["+trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]


@dataclass
class Step:
    """One check: a command, its time limit, and what of its results to keep (`summary(work_dir)`)."""

    name: str
    command: list[str]
    timeout_s: float
    summary: Callable[[Path], dict[str, Any]] = field(default=lambda work_dir: {})


def run_summary(run_dir: Path) -> Callable[[Path], dict[str, Any]]:
    """The final metrics a training run wrote to its finished.json."""

    def summary(work_dir: Path) -> dict[str, Any]:
        finished = run_dir / "finished.json"
        return {"metrics": json.loads(finished.read_text())} if finished.is_file() else {}

    return summary


def junit_summary(report: Path) -> Callable[[Path], dict[str, Any]]:
    """pytest's counts from its JUnit XML report, and the ids of the tests that failed or were skipped."""

    def summary(work_dir: Path) -> dict[str, Any]:
        if not report.is_file():
            return {}
        cases = ElementTree.parse(report).getroot().iter("testcase")
        outcomes: dict[str, list[str]] = {"failed": [], "skipped": [], "passed": []}
        for case in cases:
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                outcomes["failed"].append(name)
            elif case.find("skipped") is not None:
                outcomes["skipped"].append(name)
            else:
                outcomes["passed"].append(name)
        counts = {outcome: len(names) for outcome, names in outcomes.items()}
        return {"counts": counts, "failed": outcomes["failed"], "skipped": outcomes["skipped"]}

    return summary


def bench_summary(out: Path) -> Callable[[Path], dict[str, Any]]:
    """The benchmark's own results file, whole."""

    def summary(work_dir: Path) -> dict[str, Any]:
        return {"results": json.loads(out.read_text())} if out.is_file() else {}

    return summary


def plan(data_dir: str, imagenette_dir: str, device: str, work_dir: Path) -> list[Step]:
    """The steps, with timeouts that add up to 8 minutes."""
    python = sys.executable
    smoke = device == "cpu"
    bench_out = work_dir / "bench.json"
    cases = ["mnist-vae"] if smoke else ["mnist-vae", "mnist-gan", "mnist-flow"]
    bench = [python, "-m", "benchmarks.run", "--mnist-dir", data_dir, "--imagenette-dir", imagenette_dir]
    bench += ["--device", device, "--only", "training", "--cases", *cases, "--out", str(bench_out)]
    report = work_dir / "tests.xml"
    tests = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *TEST_SELECTION]

    def train(name: str, timeout_s: float, *overrides: str) -> Step:
        run_dir = work_dir / name
        command = [python, "train.py", *overrides, f"data.data_dir={data_dir}", TRAINER[device]]
        command += [*(CPU_LIMITS if smoke else []), "logger=csv", "trainer.enable_progress_bar=false"]
        command.append(f"hydra.run.dir={run_dir}")
        return Step(name, command, timeout_s, run_summary(run_dir))

    auto = ["model=vae", "data.device=auto", "trainer.max_epochs=1", "callbacks=none"]
    return [
        Step("bench", [*bench, *(["--quick"] if smoke else [])], 170, bench_summary(bench_out)),
        Step("tests", tests, 105, junit_summary(report)),
        train("device_auto", 35, *auto, *([] if smoke else DEVICE_AUTO_LIMITS)),
        train("best_mnist_gan", 60, "experiment=best_mnist_gan", "trainer.max_epochs=2"),
        train("best_mnist_vae", 60, "experiment=best_mnist_vae", "trainer.max_epochs=2"),
        train("best_mnist_flow", 50, "experiment=best_mnist_flow", "trainer.max_epochs=1"),
    ]


def run_step(step: Step, work_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one step: its status (ok, failed, timeout), duration, the end of its output, and its summary."""
    started = time.perf_counter()
    record: dict[str, Any] = {"command": step.command, "timeout_s": step.timeout_s}
    try:
        done = subprocess.run(
            step.command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=step.timeout_s,
        )
        record["status"] = "ok" if done.returncode == 0 else "failed"
        record["returncode"] = done.returncode
        output = done.stdout
    except subprocess.TimeoutExpired as expired:
        record["status"] = "timeout"
        output = expired.stdout or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
    except OSError as error:
        record["status"] = "failed"
        output = f"{type(error).__name__}: {error}"
    record["duration_s"] = round(time.perf_counter() - started, 1)
    record["output_tail"] = output[-OUTPUT_TAIL:]
    try:
        record.update(step.summary(work_dir))
    except Exception as error:  # a summary that cannot be read is recorded, never fatal
        record["summary_error"] = f"{type(error).__name__}: {error}"
    return record


def machine(device: str) -> dict[str, Any]:
    """What the check ran on."""
    import torch

    info: dict[str, Any] = {"host": platform.node(), "device": device, "torch": torch.__version__}
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["gpu_count"] = torch.cuda.device_count()
    return info


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True, help="a folder with MNIST/raw/")
    parser.add_argument("--imagenette-dir", help="a folder with imagenette2-160/ (default: --data-dir)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/gpu-check-<host>.json")
    parser.add_argument("--dry-run", action="store_true", help="write the planned commands, run nothing")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not args.dry_run and not torch.cuda.is_available():
        parser.error(
            "no CUDA GPU is visible: run this on a GPU machine, or use --device cpu (a smoke run of the "
            "script on a few batches) or --dry-run (the planned commands only)"
        )
    out = args.out or RESULTS / f"gpu-check-{platform.node()}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    results: dict[str, Any] = {
        "machine": machine(args.device),
        "commit": git_commit(),
        "dry_run": args.dry_run,
    }
    results["steps"] = steps = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for step in plan(args.data_dir, args.imagenette_dir or args.data_dir, args.device, Path(tmp)):
            if args.dry_run:
                steps[step.name] = {"command": step.command, "timeout_s": step.timeout_s, "status": "not run"}
                continue
            print(f"gpu-check: {step.name} (at most {step.timeout_s:.0f} s) ...", flush=True)
            steps[step.name] = record = run_step(step, Path(tmp), env)
            print(f"gpu-check: {step.name} {record['status']} in {record['duration_s']} s", flush=True)
            write(out, results, started)  # what is done so far survives a kill of this script
    write(out, results, started)
    failed = [name for name, record in steps.items() if record["status"] not in ("ok", "not run")]
    print(f"gpu-check: wrote {out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def write(out: Path, results: dict[str, Any], started: float) -> None:
    results["wall_s"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(results, indent=2, default=str) + "\n")
    os.replace(partial, out)


if __name__ == "__main__":
    sys.exit(main())
