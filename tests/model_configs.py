"""Model constructor arguments from the real YAML, so that tests build models with the configured defaults
(conf/ is their only source) and override only what a test is about."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from helpers import CONF_DIR, compose_train
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf


@cache
def _model_config(model: str) -> dict[str, Any]:
    cfg = compose_train(f"model={model}")
    GlobalHydra.instance().clear()
    config = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("_target_", "compile", "channels_last"):  # not arguments of the class (train.py's)
        config.pop(key)
    return config


def model_args(model: str, **overrides: Any) -> dict[str, Any]:
    """conf/model/<model>.yaml's arguments (its default nets, likelihood and prior), `overrides` on top."""
    return copy.deepcopy(_model_config(model)) | overrides


def part(group: str, name: str, **overrides: Any) -> dict[str, Any]:
    """conf/<group>/<name>.yaml (a likelihood or a prior) as a config dict, `overrides` on top."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml")) | overrides


def likelihood(name: str, **overrides: Any) -> dict[str, Any]:
    return part("likelihood", name, **overrides)


def prior(name: str, **overrides: Any) -> dict[str, Any]:
    return part("prior", name, **overrides)
