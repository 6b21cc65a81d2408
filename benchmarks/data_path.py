"""Data path: genlab's uint8 batches against torchvision's per-sample loader, and Imagenette's decode cache.

(a) MNIST train batches of 64, images/s: the data module's `train_dataloader()` (one uint8 tensor, one
indexing operation per batch, the float conversion of `on_after_batch_transfer` after the move to the
device) against torchvision's `MNIST(transform=ToTensor())` in a `DataLoader` (a PIL image and a tensor per
sample), the same number of batches, alternating rounds after a warm-up, median.
(b) Imagenette at 64 px, seconds: a data module's first `setup()` with an empty cache_dir (every JPEG is
decoded) against a second one's with the same, now filled cache_dir; alternating rounds, median.

    python -m benchmarks.run --mnist-dir DIR --imagenette-dir DIR --only data_path [--device cuda] [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

from genlab.data import MNISTDataModule
from genlab.data.config import data_settings
from genlab.instantiate import build

BATCH_SIZE = 64
IMAGE_SIZE = 64


def clock(device: torch.device) -> float:
    """perf_counter after the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def genlab_images_per_s(datamodule: MNISTDataModule, batches: int, device: torch.device) -> float:
    """genlab's train loader as Lightning drives it: batch, move to the device, convert to floats there."""
    start = clock(device)
    for images, labels in islice(datamodule.train_dataloader(), batches):
        datamodule.on_after_batch_transfer((images.to(device), labels.to(device)), 0)
    return batches * BATCH_SIZE / (clock(device) - start)


def torchvision_images_per_s(dataset: MNIST, batches: int, device: torch.device) -> float:
    """torchvision's usual path: a PIL image and a ToTensor per sample, collated by the DataLoader."""
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=0)
    start = clock(device)
    for images, labels in islice(loader, batches):
        images.to(device), labels.to(device)
    return batches * BATCH_SIZE / (clock(device) - start)


def measure_mnist(mnist_dir: str, device: torch.device, batches: int, rounds: int) -> dict:
    """(a): images/s of both loaders, alternating rounds after a warm-up."""
    datamodule = build(
        data_settings("mnist")
        | {"data_dir": mnist_dir, "pixel_range": [0.0, 1.0], "batch_size": BATCH_SIZE, "download": False}
    )
    datamodule.setup("fit")
    dataset = MNIST(mnist_dir, train=True, download=False, transform=ToTensor())
    genlab_images_per_s(datamodule, 2, device)  # warm-up: first allocations, CUDA context
    torchvision_images_per_s(dataset, 2, device)
    genlab, torchvision = [], []
    for _ in range(rounds):  # alternating, so drifts in machine speed hit both sides alike
        genlab.append(genlab_images_per_s(datamodule, batches, device))
        torchvision.append(torchvision_images_per_s(dataset, batches, device))
    return {
        "batch_size": BATCH_SIZE,
        "batches": batches,
        "rounds": rounds,
        "images_per_round": batches * BATCH_SIZE,
        "genlab_train_images": len(datamodule.splits["train"]),
        "torchvision_train_images": len(dataset),
        "genlab_images_per_s": statistics.median(genlab),
        "torchvision_images_per_s": statistics.median(torchvision),
        "speedup": statistics.median(g / t for g, t in zip(genlab, torchvision, strict=True)),
        "genlab_rounds": genlab,
        "torchvision_rounds": torchvision,
    }


def imagenette_setup(imagenette_dir: str, cache: Path) -> tuple[float, dict[str, int]]:
    """Seconds of a fresh data module's `setup()` (all splits) with `cache`, and its split sizes."""
    datamodule = build(
        data_settings("imagenette")
        | {
            "data_dir": imagenette_dir,
            "pixel_range": [0.0, 1.0],
            "image_size": IMAGE_SIZE,
            "cache_dir": str(cache),
            "download": False,
        }
    )
    start = time.perf_counter()
    datamodule.setup()
    seconds = time.perf_counter() - start
    return seconds, {split: len(dataset) for split, dataset in datamodule.splits.items()}


def measure_imagenette(imagenette_dir: str, rounds: int) -> dict:
    """(b): seconds of a first setup (empty cache) and of a second one (the same, filled cache)."""
    decode, cached = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="genlab-bench-cache-") as cache:
            seconds, sizes = imagenette_setup(imagenette_dir, Path(cache))
            decode.append(seconds)
            cached.append(imagenette_setup(imagenette_dir, Path(cache))[0])
    return {
        "image_size": IMAGE_SIZE,
        "images": sizes,
        "n_images": sum(sizes.values()),
        "rounds": rounds,
        "decode_s": statistics.median(decode),
        "cached_s": statistics.median(cached),
        "speedup": statistics.median(d / c for d, c in zip(decode, cached, strict=True)),
        "decode_rounds": decode,
        "cached_rounds": cached,
    }


def measure(*, mnist_dir: str, imagenette_dir: str, device: str, quick: bool = False) -> dict:
    """Both measurements; `quick`: a few batches and one Imagenette round, for a smoke test."""
    torch_device = torch.device(device)
    batches, rounds = (5, 1) if quick else (200, 5)
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mnist": measure_mnist(mnist_dir, torch_device, batches, rounds),
        "imagenette": {
            "data_dir": str(Path(imagenette_dir).resolve()),
            **measure_imagenette(imagenette_dir, 1 if quick else 3),
        },
    }


def table(results: dict) -> str:
    """A markdown table of `measure`'s results."""
    mnist, imagenette = results["mnist"], results["imagenette"]
    sizes = " + ".join(f"{n:,} {split}" for split, n in imagenette["images"].items())
    return "\n".join(
        [
            f"### Data path ({results['device']}, {results['threads']} threads)",
            "",
            "| measurement | images | genlab | compared with | speed-up |",
            "|---|---|---|---|---|",
            f"| MNIST train batches of {mnist['batch_size']}, images/s, median of {mnist['rounds']} "
            f"| {mnist['images_per_round']:,} per round ({mnist['batches']} batches from "
            f"{mnist['genlab_train_images']:,} train images) "
            f"| {mnist['genlab_images_per_s']:,.0f} (`train_dataloader`, uint8 batches) "
            f"| {mnist['torchvision_images_per_s']:,.0f} (torchvision `MNIST` + `ToTensor` + `DataLoader`) "
            f"| {mnist['speedup']:.0f}x |",
            f"| Imagenette setup at {imagenette['image_size']} px, s, median of {imagenette['rounds']} "
            f"| {imagenette['n_images']:,} ({sizes}) "
            f"| {imagenette['cached_s']:.3f} (cache filled) "
            f"| {imagenette['decode_s']:.2f} (first decode, empty cache) "
            f"| {imagenette['speedup']:.0f}x |",
        ]
    )
