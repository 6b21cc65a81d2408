"""Fully connected nets: study A's MNIST MLPs (with dropout) and study B's baseline and final MLPs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from genlab.nets.layers import make_activation


class MLPEncoder(nn.Module):
    """Flatten an image, then Linear + activation (+ dropout) per hidden layer, then Linear to `out_features`.

    Serves as the VAE encoder (`out_features` = 2 x latent size) and the GAN discriminator (1 logit).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        out_features: int,
        hidden_dims: Sequence[int],
        activation: str,
        negative_slope: float,
        dropout: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), make_activation(activation, negative_slope)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's output (after its activation and dropout), the penultimate features that a
        GAN's feature matching compares."""
        return self.net[:-1](images)


class MLPDecoder(nn.Module):
    """Linear + activation per hidden layer from a latent vector, then Linear to the pixels, reshaped.

    Serves as the VAE decoder and the GAN generator.
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        hidden_dims: Sequence[int],
        activation: str,
        negative_slope: float,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), make_activation(activation, negative_slope)]
            width = hidden
        layers.append(nn.Linear(width, math.prod(image_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.image_shape)
