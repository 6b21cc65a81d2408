"""The MNIST digit classifier: a genlab ConvEncoder trained once (seeded) per MNIST content, and cached.

It checks mode coverage: the histogram of the classes it predicts for generated digits, and its entropy
(log 10 = 2.303 nats when all ten digits are equally frequent).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genlab.atomic import atomic_write
from genlab.cache import load_or_build
from genlab.errors import GenlabError
from genlab.nets.conv import ConvEncoder

NUM_CLASSES = 10
#: the classifier's net and training recipe; part of the cache key, so a change retrains it
RECIPE = {
    "net": {"channels": [16, 32, 64], "kernel_size": 3, "pools": [2, 2, 1], "activation": "relu"},
    "epochs": 5,
    "batch_size": 128,
    # one-cycle schedule up to this learning rate (Adam)
    "lr": 3e-3,
    "seed": 0,
    "version": 2,
}


def build_classifier(recipe: dict = RECIPE) -> nn.Module:
    """The classifier net: conv stages then one Linear to the 10 digit logits."""
    # negative_slope shapes only a leaky_relu, which the recipe's relu is not: it stays out of the cache key.
    return ConvEncoder(image_shape=(1, 28, 28), out_features=NUM_CLASSES, negative_slope=0.0, **recipe["net"])


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1, 28, 28] -> float in [0, 1], what the classifier sees."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted digit per image (uint8 or [0, 1] floats)."""
    net.eval()
    return torch.cat(
        [net(to_input(images[i : i + batch_size])).argmax(1) for i in range(0, len(images), batch_size)]
    )


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(net, images) == labels).float().mean())


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, recipe: dict = RECIPE, progress: bool = True
) -> nn.Module:
    """Train the classifier on uint8 images: Adam with a one-cycle learning rate, cross-entropy.

    A plain loop rather than a Trainer: three epochs over an in-memory tensor need no logging, checkpoints
    or callbacks, and the loop keeps the seeded batch order obvious.
    """
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(recipe["seed"])
    with torch.random.fork_rng():
        torch.manual_seed(recipe["seed"])
        net = build_classifier(recipe)
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe["lr"])
    steps_per_epoch = math.ceil(len(images) / recipe["batch_size"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, recipe["lr"], total_steps=recipe["epochs"] * steps_per_epoch
    )
    net.train()
    for epoch in range(recipe["epochs"]):
        order = torch.randperm(len(images), generator=generator)
        batches = order.split(recipe["batch_size"])
        for index in tqdm(batches, desc=f"digit classifier epoch {epoch + 1}", disable=not progress):
            loss = F.cross_entropy(net(to_input(images[index])), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval()


def class_histogram(predictions: torch.Tensor) -> tuple[list[float], float]:
    """Fraction of images per digit and the histogram's entropy in nats (max log 10)."""
    counts = torch.bincount(predictions, minlength=NUM_CLASSES).double()
    fractions = counts / counts.sum()
    entropy = -float((fractions[fractions > 0] * fractions[fractions > 0].log()).sum())
    return [float(f) for f in fractions], entropy


MAX_ENTROPY = math.log(NUM_CLASSES)


def load_or_train(datamodule, cache_dir: Path, recipe: dict = RECIPE) -> tuple[nn.Module, dict]:
    """The cached classifier for this MNIST content (any path to the same files), training (and caching) it on
    the first call.

    Returns the net and its record (recipe, data fingerprint, test accuracy), also saved beside it as JSON.
    """
    if tuple(datamodule.image_shape) != (1, 28, 28):
        raise GenlabError(f"the digit classifier is for MNIST (1x28x28), not {datamodule.image_shape}")
    data_fingerprint = datamodule.fingerprint(cache_dir)
    name = f"mnist_classifier_v{recipe['version']}_seed{recipe['seed']}_{data_fingerprint[:16]}"
    path, record_path = cache_dir / f"{name}.pt", cache_dir / f"{name}.json"

    def build() -> dict:
        train_images, train_labels = datamodule.split_images("train"), datamodule.splits["train"].labels
        net = train_classifier(train_images, train_labels, recipe)
        test_images, test_labels = datamodule.split_images("test"), datamodule.splits["test"].labels
        record = {
            "recipe": recipe,
            "data_fingerprint": data_fingerprint,
            "train_images": len(train_images),
            "test_images": len(test_images),
            "test_accuracy": accuracy(net, test_images, test_labels),
        }
        print(
            f"digit classifier: test accuracy {record['test_accuracy']:.4f} on {len(test_images)} test "
            f"images -> {path}"
        )
        atomic_write(record_path, lambda partial: partial.write_text(json.dumps(record, indent=2) + "\n"))
        return {"state_dict": net.state_dict(), "record": record}

    cached = load_or_build(path, {"recipe": recipe, "data_fingerprint": data_fingerprint}, build)
    net = build_classifier(recipe)
    net.load_state_dict(cached["state_dict"])
    return net.eval(), cached["record"]
