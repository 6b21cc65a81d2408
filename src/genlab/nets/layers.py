"""Small building blocks shared by the nets."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu", "leaky_relu"}


def make_activation(name: str, negative_slope: float) -> nn.Module:
    """`relu` or `leaky_relu` (with `negative_slope`)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    raise ValueError(f"activation={name!r} is invalid: choose one of {sorted(ACTIVATIONS)}")
