"""Inception features of real images, computed once per (dataset, split, size, feature net, preprocessing)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import nn

from genlab.metrics.cache import save_atomic
from genlab.metrics.inception import NUM_FEATURES, PREPROCESSING, extract_features

log = logging.getLogger(__name__)


def dataset_name(datamodule) -> str:
    """'mnist' or 'imagenette-160px' (the download a folder came from), for cache keys and reports."""
    name = type(datamodule).__name__.removesuffix("DataModule").lower()
    size = getattr(datamodule, "size", None)
    return f"{name}-{size}" if size else name


def subset_indices(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    """A fixed random subset of `n` indices (all of them when n is None or too large), sorted."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def reference_key(datamodule, split: str, n: int, seed: int, feature_hash: str) -> dict:
    """Everything the reference features depend on; a change of any of these recomputes them."""
    return {
        "dataset": dataset_name(datamodule),
        "split": split,
        "split_seed": datamodule.split_seed if split in ("train", "val") else None,
        "image_shape": list(datamodule.image_shape),
        "n_images": n,
        "subset_seed": seed,
        "feature_net_sha256": feature_hash,
        "preprocessing": PREPROCESSING,
    }


def reference_features(
    datamodule,
    split: str,
    n: int | None,
    extractor: nn.Module,
    cache_dir: Path | None,
    seed: int = 0,
    batch_size: int = 50,
) -> tuple[torch.Tensor, dict]:
    """Features [n, 2048] of a fixed subset of real `split` images, loaded from or written to `cache_dir`."""
    images = datamodule.split_images(split)
    index = subset_indices(len(images), n, seed)
    key = reference_key(
        datamodule, split, len(index), seed, getattr(extractor, "sha256", type(extractor).__name__)
    )
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"reference_{key['dataset']}_{split}_{len(index)}_{digest}.pt" if cache_dir else None
    if path is not None and path.is_file():
        try:
            cached = torch.load(path, weights_only=True)
            if cached.get("key") == key and cached["features"].shape == (len(index), NUM_FEATURES):
                log.info("reference features from %s", path)
                return cached["features"], {**key, "cache": str(path)}
        except Exception as error:  # a half-written or foreign file: recompute it
            log.warning("ignoring unreadable reference cache %s (%s)", path, error)
    features = extract_features(images[index], extractor, batch_size, progress=f"real {split} features")
    if path is not None:
        save_atomic({"key": key, "features": features}, path)
    return features, {**key, "cache": str(path) if path else None}
