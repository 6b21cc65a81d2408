"""Evaluation: Inception throughput by batch size, and a whole `evaluate.py` run on a fresh MNIST VAE.

(a) images/s of `extract_features` on the device (MNIST test digits, resized to 299 px inside), after a
warm-up batch: at batch 50 (100 images) and, on a GPU, 200 (one batch), the median of five rounds there; on
a CPU one round, and batch 200 is the rate that the evaluate.py run of (b) logs for its 2000 samples.
Peak memory: the process's peak RSS so far on a CPU (sizes run in ascending order), the peak allocation on
a GPU.
(b) wall time of `python evaluate.py ckpt_path=... n_samples=2000` as a subprocess with this process's
thread count, on a checkpoint that `python train.py model=vae data=mnist trainer.max_steps=50` writes in
a temporary folder. Its reference features and digit classifier live in a persistent cache (evaluate.py's
default, ~/.cache/genlab, or `measure(cache_dir=...)`): only the first run builds them (cold),
later runs load them (warm). The results say which this run was; a cold run also gives the warm cost, its wall
time less the cache builds that evaluate.py logged.

    python -m benchmarks.run --mnist-dir DIR --imagenette-dir DIR --only evaluation [--device cuda] [--quick]
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from genlab.cache import cache_dir as default_cache_dir
from genlab.data.config import data_settings
from genlab.instantiate import build
from genlab.metrics.inception import InceptionFeatures, extract_features, retain_freed_memory
from genlab.run_dir import last_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZES = (50, 200)
N_SAMPLES, TRAIN_STEPS = 2000, 50
# quick: a tiny evaluation that still runs every part of evaluate.py (the classifier would train for minutes)
QUICK_EVAL = [
    "reference.n_images=20",
    "kid.subsets=10",
    "kid.subset_size=10",
    "nearest_k=3",
    "classifier=false",
    "vae.n_test_images=200",
    "vae.iwae_k=10",
    "vae.iwae_n_images=20",
]
BUILT = re.compile(r"built (.+) in ([0-9.]+) s$", re.MULTILINE)
INCEPTION = re.compile(r"Inception features of (\d+) generated images in ([0-9.]+) s")


def clock(device: torch.device) -> float:
    """perf_counter after the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def peak_memory_gb(device: torch.device) -> float:
    """The peak allocation on a GPU; the process's peak RSS so far on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def measure_inception(mnist_dir: str, device: torch.device, counts: dict[int, int], rounds: int) -> dict:
    """Images/s and peak memory of `extract_features` on `counts[size]` images at each batch size,
    alternating rounds."""
    retain_freed_memory()  # as shared_inception() does for evaluate.py
    extractor = InceptionFeatures().to(device)
    mnist = build(
        data_settings("mnist") | {"data_dir": mnist_dir, "pixel_range": [0.0, 1.0], "download": False}
    )
    images = mnist.split_images("test")[: max(counts.values())].to(device)
    extract_features(images[:8], extractor, 8)  # warm-up: first call
    rates: dict[int, list[float]] = {size: [] for size in counts}
    memory: dict[int, float] = {}
    for _ in range(rounds):
        for size in counts:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = clock(device)
            extract_features(images[: counts[size]], extractor, size)
            rates[size].append(counts[size] / (clock(device) - start))
            memory[size] = max(memory.get(size, 0.0), peak_memory_gb(device))
    return {
        "images": counts,
        "rounds": rounds,
        "by_batch_size": {
            str(size): {
                "images": counts[size],
                "images_per_s": statistics.median(rates[size]),
                "rounds": rates[size],
                "peak_memory_gb": memory[size],
            }
            for size in counts
        },
    }


def run_script(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run a repository script like a user; its wall seconds and output, or an error with its output's end."""
    start = time.perf_counter()
    job = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    output = job.stdout + job.stderr
    if job.returncode:
        raise RuntimeError(f"`python {' '.join(args)}` exited with {job.returncode}:\n{output[-3000:]}")
    return seconds, output


def measure_evaluate(mnist_dir: str, cache: Path | None, n_samples: int, quick: bool) -> dict:
    """Train a tiny VAE with train.py, then time evaluate.py on its last.ckpt."""
    mnist_dir = str(Path(mnist_dir).resolve())
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    eval_defaults = OmegaConf.load(ROOT / "conf" / "eval.yaml")
    n_samples, steps = (20, 2) if quick else (n_samples, TRAIN_STEPS)
    with tempfile.TemporaryDirectory(prefix="genlab-bench-eval-") as tmp:
        if quick:
            cache = Path(tmp) / "cache"  # the tiny reference sets would only litter the real cache
        cache = cache or default_cache_dir()
        run_dir = Path(tmp) / "train"
        train_s, _ = run_script(
            [
                "train.py",
                "model=vae",
                "data=mnist",
                f"data.data_dir={mnist_dir}",
                f"trainer.max_steps={steps}",
                "trainer.enable_progress_bar=false",
                "logger=none",
                f"hydra.run.dir={run_dir}",
            ],
            env,
        )
        ckpt = last_checkpoint(run_dir)
        if not ckpt.is_file():
            raise RuntimeError(f"train.py wrote no {ckpt}")
        metrics_path = Path(tmp) / "metrics.json"
        wall_s, output = run_script(
            [
                "evaluate.py",
                f"ckpt_path={ckpt}",
                f"n_samples={n_samples}",
                f"cache_dir={cache}",
                f"out={metrics_path}",
                f"hydra.run.dir={Path(tmp) / 'eval'}",
                *(QUICK_EVAL if quick else []),
            ],
            env,
        )
        result = json.loads(metrics_path.read_text())
    builds = {Path(path).name: float(seconds) for path, seconds in BUILT.findall(output)}
    images, seconds = INCEPTION.findall(output)[-1]
    return {
        "inception_images_per_s": int(images) / float(seconds),
        "train_steps": steps,
        "train_s": train_s,
        "n_samples": n_samples,
        "reference_images": result["protocol"]["reference"]["n_images"],
        "batch_size": eval_defaults.batch_size,
        "cache_dir": str(cache),
        "reference_cache": "cold" if builds else "warm",
        "cache_builds_s": builds,
        "wall_s": wall_s,
        "evaluate_seconds": result["protocol"]["seconds"],
        "warm_wall_s": wall_s - sum(builds.values()),
        "fid": result["metrics"]["fid"],
    }


def measure(
    *,
    mnist_dir: str,
    imagenette_dir: str,
    device: str,
    quick: bool = False,
    cache_dir: str | None = None,
    n_samples: int = N_SAMPLES,
) -> dict:
    """Both measurements; `quick`: a few images and a tiny evaluation in a temporary cache, for a smoke test.

    `imagenette_dir` is unused (both parts run on MNIST); it keeps the benchmarks' common signature. A warm
    evaluation costs ~30 s plus an Inception pass per sample: lower `n_samples` to fit a CPU's time budget.
    """
    torch_device = torch.device(device)
    # whole batches, 100 images or one batch: at ~0.1 s each on a CPU one round is all the time budget allows
    # On a CPU batch 200 is timed inside the evaluate.py run below (its 2000 samples, its batch size); a
    # separate pass would cost ~25 s more of make bench's 10 minutes.
    sizes = BATCH_SIZES[:1] if torch_device.type == "cpu" else BATCH_SIZES
    counts = {size: 8 if quick else max(100 // size, 1) * size for size in sizes}
    rounds = 1 if quick or torch_device.type == "cpu" else 5
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "inception": measure_inception(mnist_dir, torch_device, counts, rounds),
        "evaluate": measure_evaluate(mnist_dir, Path(cache_dir) if cache_dir else None, n_samples, quick),
    }


def table(results: dict) -> str:
    """A markdown table of `measure`'s results."""
    inception, evaluate = results["inception"], results["evaluate"]
    memory = "peak RSS so far" if results["device"] == "cpu" else "peak allocated"
    lines = [
        f"### Evaluation ({results['device']}, {results['threads']} threads)",
        "",
        "| measurement | size | result |",
        "|---|---|---|",
    ]
    for size, r in inception["by_batch_size"].items():
        lines.append(
            f"| Inception `extract_features`, batch {size} | {r['images']} MNIST test digits, "
            f"median of {inception['rounds']} | {r['images_per_s']:.1f} images/s "
            f"({1 / r['images_per_s']:.3f} s per image; {memory} {r['peak_memory_gb']:.1f} GB) |"
        )
    built = ", ".join(f"`{name}` {seconds:.0f} s" for name, seconds in evaluate["cache_builds_s"].items())
    cache = f"cold (built {built})" if built else "warm"
    warm = f"; warm: {evaluate['warm_wall_s']:.0f} s (cold less the builds)" if built else ""
    lines += [
        f"| `python train.py model=vae data=mnist trainer.max_steps={evaluate['train_steps']}` "
        f"(the checkpoint) | {evaluate['train_steps']} batches of 64 | {evaluate['train_s']:.0f} s wall |",
        f"| Inception inside `evaluate.py`, batch {evaluate['batch_size']} | its {evaluate['n_samples']} "
        f"generated images | {evaluate['inception_images_per_s']:.1f} images/s "
        f"({1 / evaluate['inception_images_per_s']:.3f} s per image) |",
        f"| `python evaluate.py n_samples={evaluate['n_samples']}`, batch {evaluate['batch_size']}, "
        f"reference cache {cache} | {evaluate['n_samples']} samples vs {evaluate['reference_images']} "
        f"test images (FID {evaluate['fid']:.1f}) | {evaluate['wall_s']:.0f} s wall{warm} |",
    ]
    return "\n".join(lines)
