"""Shared fixtures: tiny fake datasets in the real on-disk formats, and configs composed with Hydra."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
WNIDS = ["n01440764", "n02102040", "n02979186"]


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) as an IDX file, the format of MNIST's *-ubyte files."""
    magic = 0x0800 | array.ndim
    path.write_bytes(
        struct.pack(">I" + "I" * array.ndim, magic, *array.shape) + array.astype(np.uint8).tobytes()
    )


def write_fake_mnist(root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """Random digits-like data as root/MNIST/raw/*-ubyte, readable by torchvision.datasets.MNIST."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = (rng.random((n, 28, 28)) < 0.2).astype(np.uint8) * 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    return root


def write_fake_imagenette(root: Path, n_train: int = 6, n_val: int = 2, seed: int = 0) -> Path:
    """Random JPEGs (non-square, like the official 160px set) as root/imagenette2-160/{train,val}/<wnid>/."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for wnid in WNIDS:
            folder = root / "imagenette2-160" / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one thread than on two contended ones (the test machine has 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    return write_fake_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def imagenette_dir(tmp_path_factory) -> Path:
    return write_fake_imagenette(tmp_path_factory.mktemp("imagenette"))


def data_overrides(data: str, mnist_dir: Path, imagenette_dir: Path, cache_dir: Path) -> list[str]:
    """Overrides that point `data` at the fake files and keep it small and fast."""
    if data == "mnist":
        return [f"data.data_dir={mnist_dir}", "data.val_size=50", "data.batch_size=16"]
    return [
        f"data.data_dir={imagenette_dir}",
        "data.image_size=64",
        "data.batch_size=6",
        f"data.cache_dir={cache_dir}",
    ]


@pytest.fixture
def make_cfg(tmp_path, mnist_dir, imagenette_dir):
    """Compose conf/train.yaml with `overrides` on the fake data, with its run dir in tmp_path."""

    def make(*overrides: str, data: str | None = None) -> DictConfig:
        if data is None:
            data = next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), "mnist")
        extra = data_overrides(data, mnist_dir, imagenette_dir, tmp_path / "cache")
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="train",
                return_hydra_config=True,
                overrides=["trainer=cpu", *extra, *overrides],
            )
        with open_dict(cfg):
            cfg.paths.root_dir = str(ROOT)
            cfg.paths.log_dir = str(tmp_path / "outputs")
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
            cfg.hydra.job.num = 0
        HydraConfig().set_config(cfg)
        return cfg

    yield make
    GlobalHydra.instance().clear()
