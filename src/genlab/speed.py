"""The speed settings of a run that are not Lightning's own: `model.compile`, `model.channels_last` and
`trainer.float32_matmul_precision` (`data.device` belongs to the data module); and the per-batch hooks
that are skipped because they do nothing."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

from genlab.compat import skip_hook
from genlab.errors import require
from genlab.mappings import as_dict

ModuleT = TypeVar("ModuleT", bound=nn.Module)
#: keys of the model config that are settings of the run, not arguments of the model class
MODEL_SPEED_KEYS = ("compile", "channels_last")
MATMUL_PRECISIONS = ("highest", "high", "medium")
#: the hooks Lightning calls on every callback and on the model for every training batch (and only calls:
#: it inspects the signatures of the validation ones, so those stay)
PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
)


def split_speed_settings(model_config: DictConfig | dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The model config, resolved, without its speed settings (what builds the model and what checkpoints
    record), and those settings."""
    if isinstance(model_config, DictConfig):
        model_config = as_dict(model_config)
    settings = {key: bool(model_config.get(key) or False) for key in MODEL_SPEED_KEYS}
    return {k: v for k, v in model_config.items() if k not in MODEL_SPEED_KEYS}, settings


def _channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        arg.contiguous(memory_format=torch.channels_last)
        if isinstance(arg, torch.Tensor) and arg.dim() == 4
        else arg
        for arg in args
    )


def speed_up(model: ModuleT, compile: bool = False, channels_last: bool = False) -> ModuleT:
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
    config = as_dict(trainer_config)
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


def skip_empty_hooks(objects: Iterable[L.Callback | L.LightningModule]) -> None:
    """Set, on each callback or LightningModule, the per-batch hooks that its class does not override (the
    base classes' empty ones) to None, so that Lightning skips them.

    Lightning calls every hook of every callback for every batch, each inside a profiler context named with
    the callback's `state_key`, and sets the module's `_current_fx_name` around each: with train.py's nine
    callbacks that is ~50 empty calls a batch. Skipping them cut genlab's gap to a hand-written loop by
    0.67 and 0.73 ms a batch in two interleaved measurements of study A's MNIST VAE on a 2-core CPU.
    Lightning's dispatch (lightning/pytorch/trainer/call.py) skips a hook that is not callable, which is what
    a None attribute is; the hooks that a class does define are untouched.
    """
    for obj in objects:
        base = L.LightningModule if isinstance(obj, L.LightningModule) else L.Callback
        for hook in PER_BATCH_HOOKS:
            if getattr(type(obj), hook, None) is getattr(base, hook):
                skip_hook(obj, hook)


def cheap_cuda_checks() -> None:
    """On a machine without a visible GPU, undo Lightning's `PYTORCH_NVML_BASED_CUDA_CHECK=1`.

    Lightning sets it on import so that `torch.cuda.is_available()` asks NVML instead of initialising CUDA
    (which would stop forked workers from using the GPU). torch's Adam calls `is_available()` at every step;
    with the variable set, each call loads the NVML library again: 0.15 ms per optimiser step on a CPU
    machine (0.27 ms a step against 0.11 ms for a small Adam here), 2-3% of a small model's batch. Without a
    GPU there is nothing to protect, and torch's own check costs ~1 us.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
