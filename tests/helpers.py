"""Shared test helpers: tiny fake datasets in the real on-disk formats, and the overrides that point a run
at them. Tests import these; conftest.py holds the fixtures."""

from __future__ import annotations

import copy
import struct
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict
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


def compose_train(*overrides: str) -> DictConfig:
    """conf/train.yaml with `overrides`, Hydra's own settings included (as a run sees them)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", return_hydra_config=True, overrides=list(overrides))


def make_datamodule(name: str, **values: Any):
    """The data module of conf/data/<name>.yaml as a VAE run composes it (train.yaml's model, so pixel_range
    [0, 1]), with `values` in place of its keys (`data_dir` at least). The YAML stays the one source of every
    default; an unknown key fails as in a run."""
    from genlab.instantiate import build

    cfg = compose_train(f"data={name}")
    with open_dict(cfg):
        cfg.data.merge_with({key: str(v) if isinstance(v, Path) else v for key, v in values.items()})
    return build(cfg.data, _convert_="all")


def net_config(preset: str, key: str, **values: Any) -> dict[str, Any]:
    """The `key` net of conf/nets/<preset>.yaml (e.g. "gan_mnist", "discriminator") with `values` in place of
    its settings: tests take nets from the YAML too, the one source of their settings."""
    from genlab.data.config import conf_file

    nets = conf_file(CONF_DIR / "nets" / f"{preset}.yaml")
    return {**OmegaConf.to_container(nets[key]), **values}


def make_net(preset: str, key: str, **values: Any) -> torch.nn.Module:
    """The net of `net_config(preset, key, **values)`, built directly (`values` hold its sizes too)."""
    from hydra.utils import get_class

    config = net_config(preset, key, **values)
    return get_class(config.pop("_target_"))(**config)


@cache
def _model_config(model: str) -> dict[str, Any]:
    cfg = compose_train(f"model={model}")
    GlobalHydra.instance().clear()
    config = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("_target_", "compile", "channels_last"):  # not arguments of the class (train.py's)
        config.pop(key)
    return config


def model_args(model: str, **values: Any) -> dict[str, Any]:
    """conf/model/<model>.yaml's arguments (its default nets, likelihood and prior) with `values` in place of
    its keys: tests build models with the configured defaults, the YAML being their one source."""
    return copy.deepcopy(_model_config(model)) | values


def part(group: str, name: str, **values: Any) -> dict[str, Any]:
    """conf/<group>/<name>.yaml (a likelihood or a prior) as a config dict, `values` in place of its keys."""
    return {**OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml")), **values}


def likelihood(name: str, **values: Any) -> dict[str, Any]:
    return part("likelihood", name, **values)


def prior(name: str, **values: Any) -> dict[str, Any]:
    return part("prior", name, **values)


#: the largest Imagenette size the tests train at (the study's 160 px is slow on a CPU)
TEST_IMAGE_SIZE = 64


def data_overrides(
    data: str, mnist_dir: Path, imagenette_dir: Path, cache_dir: Path, image_size: bool = True
) -> list[str]:
    """Overrides that point `data` at the fake files and keep it small and fast (Imagenette at
    TEST_IMAGE_SIZE unless `image_size` is false)."""
    if data == "mnist":
        return [f"data.data_dir={mnist_dir}", "data.val_size=50", "data.batch_size=16"]
    size = [f"data.image_size={TEST_IMAGE_SIZE}"] if image_size else []
    return [f"data.data_dir={imagenette_dir}", *size, "data.batch_size=6", f"data.cache_dir={cache_dir}"]


# Six samples against six real images, KID on subsets of three: seconds of Inception on a CPU.
SMALL_EVAL = (
    "n_samples=6",
    "reference.n_images=6",
    "kid.subsets=5",
    "kid.subset_size=3",
    "nearest_k=2",
    "batch_size=6",
    "vae.iwae_k=4",
    "vae.iwae_n_images=4",
    "vae.n_test_images=20",
    "reconstruction.n_images=6",
    "inversion.steps=3",
    "inversion.restarts=1",
    "inversion.n_mean_latents=16",
    "latent_probe.n_train=20",
)


#: a flow small enough for CPU tests (conf/model/flow.yaml with a one-level U-Net, no attention): two Euler
#: steps per sample
TINY_FLOW_SETTINGS = (
    "model.net.channel_mult=[1]",
    "model.net.attention_levels=[]",
    "model.sampler.method=euler",
    "model.sampler.nfe=2",
)
TINY_FLOW = ("model=flow", *TINY_FLOW_SETTINGS)


def build_model(cfg):
    """The run's model from a composed config, as train.py builds it: its image shape is the data's."""
    from hydra.utils import instantiate

    from genlab.train import build_model as build_run_model

    return build_run_model(cfg, instantiate(cfg.data))


def assert_same_run(a: Path, b: Path) -> None:
    """The two checkpoints hold equal weights and optimiser states, tensor for tensor."""
    first, second = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert first["global_step"] == second["global_step"] and first["epoch"] == second["epoch"]
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for name, tensor in first["state_dict"].items():
        assert torch.equal(tensor, second["state_dict"][name]), name
    for opt_a, opt_b in zip(first["optimizer_states"], second["optimizer_states"], strict=True):
        for index, state in opt_a["state"].items():
            for key, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][index][key])), key
