"""How the cost of a step grows: step time of genlab's train.py and of the hand-written loop (with genlab's
exact optimisers, so the difference is genlab's per-step overhead) against batch size (MNIST VAE, 32 to 512)
and against image size (Imagenette DCGAN/SNGAN at 32, 64 and 160 px, batch 16; the study's conv nets need
64 px or more). Where the two step times meet, genlab's per-step overhead has stopped mattering.

    python -m benchmarks.run --mnist-dir DIR --imagenette-dir DIR --only scaling [--device cuda] [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.train_throughput import config, epoch_batches, interleaved, prepared
from genlab.resolvers import register_resolvers

BATCH_SIZES = (32, 64, 128, 256, 512)
IMAGE_SIZES = (32, 64, 160)


def step_ms(overrides: list[str], data_dirs, device: torch.device, tmp: Path, batches: int, warmup: int):
    """Milliseconds per training step of genlab and of the loop, interleaved batch by batch."""
    cfg = config(overrides, data_dirs, tmp, device.type)
    datamodule = prepared(cfg)
    batches = epoch_batches(datamodule, batches)
    r = interleaved(cfg, datamodule, batches, warmup, 1, device, default_loop=False)
    size = r["batch_size"]
    return {
        "genlab_ms": 1000 * size / r["genlab_images_per_s"],
        "loop_ms": 1000 * size / r["same_loop_images_per_s"],
    }


def measure(*, mnist_dir: str, imagenette_dir: str, device: str, quick: bool = False) -> dict[str, Any]:
    register_resolvers()
    data_dirs = {"mnist": mnist_dir, "imagenette": imagenette_dir}
    torch_device = torch.device(device)
    batch_sizes = BATCH_SIZES[:2] if quick else BATCH_SIZES
    image_sizes = IMAGE_SIZES[:1] if quick else IMAGE_SIZES
    by_batch, by_size = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in batch_sizes:
            overrides = ["model=vae", "data=mnist", f"data.batch_size={size}"]
            batches, warmup = (3, 1) if quick else (25, 5)
            by_batch[size] = step_ms(
                overrides, data_dirs, torch_device, Path(tmp) / f"b{size}", batches, warmup
            )
        for size in image_sizes:
            overrides = ["experiment=imagenette_gan_sngan", f"data.image_size={size}", "data.batch_size=16"]
            batches, warmup = (3, 1) if quick else ((3, 1) if size == 160 else (6, 2))
            by_size[size] = step_ms(
                overrides, data_dirs, torch_device, Path(tmp) / f"s{size}", batches, warmup
            )
    return {"batch_size": by_batch, "image_size": by_size}


def rows(results: dict[Any, dict[str, float]]) -> list[str]:
    return [
        f"| {key} | {r['genlab_ms']:.1f} | {r['loop_ms']:.1f} | {r['genlab_ms'] - r['loop_ms']:+.1f} "
        f"| {r['loop_ms'] / r['genlab_ms']:.3f} |"
        for key, r in results.items()
    ]


def table(results: dict[str, Any]) -> str:
    head = "| genlab ms/step | same-optimiser loop ms/step | difference ms | ratio |\n|---|---|---|---|---|"
    return "\n".join(
        [
            "### Step time against batch size (MNIST VAE)",
            f"| batch {head}",
            *rows(results["batch_size"]),
            "",
            "### Step time against image size (Imagenette DCGAN/SNGAN, batch 16)",
            f"| pixels {head}",
            *rows(results["image_size"]),
        ]
    )
