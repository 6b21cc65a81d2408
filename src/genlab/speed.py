"""The speed settings of a run that are not Lightning's own: `model.compile`, `model.channels_last` and
`trainer.float32_matmul_precision` (`data.device` belongs to the data module)."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from genlab.errors import require

#: keys of the model config that are settings of the run, not arguments of the model class
MODEL_SPEED_KEYS = ("compile", "channels_last")
MATMUL_PRECISIONS = ("highest", "high", "medium")


def split_speed_settings(model_config: DictConfig | dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The model config, resolved, without its speed settings (what builds the model and what checkpoints
    record), and those settings."""
    if isinstance(model_config, DictConfig):
        model_config = OmegaConf.to_container(model_config, resolve=True)
    settings = {key: bool(model_config.get(key) or False) for key in MODEL_SPEED_KEYS}
    return {k: v for k, v in model_config.items() if k not in MODEL_SPEED_KEYS}, settings


def _channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        arg.contiguous(memory_format=torch.channels_last)
        if isinstance(arg, torch.Tensor) and arg.dim() == 4
        else arg
        for arg in args
    )


def speed_up(model: nn.Module, compile: bool = False, channels_last: bool = False) -> nn.Module:
    """Apply the speed settings to `model`'s nets (its child modules), in place.

    - `channels_last`: 4-d weights and image inputs in NHWC memory order, which cuDNN's and oneDNN's
      convolutions prefer (tensor cores on GPUs); no effect on MLPs.
    - `compile`: `nn.Module.compile()` on each net: `torch.compile` of its forward, in place, so parameter
      names and checkpoints stay those of the plain model. The first steps pay the compile time.
    """
    nets = [child for child in model.children() if any(True for _ in child.parameters())]
    if channels_last:
        model.to(memory_format=torch.channels_last)
        for net in nets:
            net.register_forward_pre_hook(_channels_last_inputs)
    if compile:
        for net in nets:
            net.compile()
    return model


def set_matmul_precision(trainer_config: DictConfig) -> dict[str, Any]:
    """Apply `trainer.float32_matmul_precision` (torch.set_float32_matmul_precision: "highest" is full fp32;
    "high" lets GPUs use TF32 tensor cores for fp32 matmuls and convolutions) and return the trainer config
    without it (resolved), for Lightning's Trainer."""
    config = OmegaConf.to_container(trainer_config, resolve=True)
    precision = config.pop("float32_matmul_precision", None)
    if precision is None:
        return config
    require(
        precision in MATMUL_PRECISIONS,
        "trainer.float32_matmul_precision",
        precision,
        f"choose one of {MATMUL_PRECISIONS}",
    )
    torch.set_float32_matmul_precision(precision)
    return config
