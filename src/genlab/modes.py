"""Putting a model in eval mode for a moment (drawing, measuring, fitting a prior) and back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad inside; afterwards every submodule's own train/eval mode is back as it was (a
    frozen part stays in eval mode, which `model.train()` would undo)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def sampling_mode(model: nn.Module) -> Iterator[None]:
    """`eval_mode`, after the model's explicit `prepare_sampling()` (e.g. a GAN's EMA BatchNorm
    statistics): every sampling site (pictures, metrics, generate.py) draws inside it, and `generate` does no
    hidden work."""
    with eval_mode(model):
        if callable(prepare := getattr(model, "prepare_sampling", None)):
            prepare()
        yield
