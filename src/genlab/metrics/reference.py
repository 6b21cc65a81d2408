"""Inception features of real images, computed once per (data content, split, size, feature net,
preprocessing)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from genlab.cache import load_or_build
from genlab.data.base import ImageDataModule
from genlab.metrics.inception import PREPROCESSING, extract_features


def subset_indices(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    """A fixed random subset of `n` indices (all of them when n is None or too large), sorted."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def reference_key(
    datamodule: ImageDataModule, split: str, n: int, seed: int, feature_hash: str, data_fingerprint: str
) -> dict:
    """Everything the reference features depend on; a change of any of these recomputes them. The data is
    named by its content (`ImageDataModule.fingerprint`), not its path: a symlink or a copy reuses them."""
    return {
        "dataset": datamodule.name,
        "data_fingerprint": data_fingerprint,
        "split": split,
        "split_seed": datamodule.split_seed if split in ("train", "val") else None,
        "image_shape": list(datamodule.image_shape),
        "n_images": n,
        "subset_seed": seed,
        "feature_net_sha256": feature_hash,
        "preprocessing": PREPROCESSING,
    }


def reference_features(
    datamodule: ImageDataModule,
    split: str,
    n: int | None,
    extractor: nn.Module,
    cache_dir: Path,
    seed: int,
    batch_size: int,
) -> tuple[torch.Tensor, dict]:
    """Features [n, 2048] of a fixed subset of real `split` images, loaded from or written to `cache_dir`."""
    images = datamodule.split_images(split)
    index = subset_indices(len(images), n, seed)
    feature_hash = getattr(extractor, "sha256", type(extractor).__name__)
    key = reference_key(datamodule, split, len(index), seed, feature_hash, datamodule.fingerprint(cache_dir))
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"reference_{key['dataset']}_{split}_{len(index)}_{digest}.pt"
    features = load_or_build(
        path,
        key,
        lambda: extract_features(images[index], extractor, batch_size, progress=f"real {split} features"),
    )
    return features, {**key, "cache": str(path)}
