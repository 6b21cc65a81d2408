"""Shared fixtures: tiny fake datasets and configs composed with Hydra (helpers.py has the functions)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from helpers import (
    CONF_DIR,
    ROOT,
    TEST_IMAGE_SIZE,
    compose_train,
    data_overrides,
    write_fake_imagenette,
    write_fake_mnist,
)
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from genlab.resolvers import register_resolvers

USER_CACHE = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    register_resolvers()  # as train.py does before Hydra reads a config
    # genlab's default cache folder is $XDG_CACHE_HOME/genlab: a temporary one, so no test writes into the
    # real ~/.cache. Set here, before the test modules are imported, so environments they copy at import
    # time, and every subprocess they start, have it too.
    config.stash[USER_CACHE] = Path(tempfile.mkdtemp(prefix="genlab-test-xdg-"))
    os.environ["XDG_CACHE_HOME"] = str(config.stash[USER_CACHE])


def pytest_unconfigure(config: pytest.Config) -> None:
    if USER_CACHE in config.stash:
        shutil.rmtree(config.stash[USER_CACHE], ignore_errors=True)


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


@pytest.fixture
def make_cfg(tmp_path, mnist_dir, imagenette_dir):
    """Compose conf/train.yaml with `overrides` on the fake data, with its run dir in tmp_path."""

    def make(*overrides: str, data: str | None = None) -> DictConfig:
        if data is None:
            data = next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), "mnist")
        extra = data_overrides(data, mnist_dir, imagenette_dir, tmp_path / "cache", image_size=False)
        cfg = compose_train("trainer=cpu", *extra, *overrides)
        if data == "imagenette" and cfg.data.image_size > TEST_IMAGE_SIZE:  # a 32 px preset keeps its size
            cfg = compose_train("trainer=cpu", *extra, f"data.image_size={TEST_IMAGE_SIZE}", *overrides)
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


@pytest.fixture
def eval_cfg(tmp_path):
    """Compose conf/eval.yaml with `overrides`, caches in tmp_path."""

    def make(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="eval",
                return_hydra_config=True,
                overrides=[f"cache_dir={tmp_path / 'cache'}", *overrides],
            )
        with open_dict(cfg):
            cfg.paths.root_dir = str(tmp_path)
            cfg.paths.output_dir = str(tmp_path / "eval")
            cfg.hydra.runtime.output_dir = str(tmp_path / "eval")
        HydraConfig().set_config(cfg)
        return cfg

    yield make
    GlobalHydra.instance().clear()
