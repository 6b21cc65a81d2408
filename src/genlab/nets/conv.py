"""Convolutional nets: study A's Imagenette encoder/discriminator and decoder/generator, which also serve
at MNIST's 28 px with two stages each (conf/nets/vae_mnist_conv.yaml)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.nets.layers import make_activation


class ConvEncoder(nn.Module):
    """[Conv (no padding), activation, MaxPool] per stage, flatten, Linear to `out_features`.

    Study A: channels 16-32-64-128, kernel 3, pools 2-2-2-2 (VAE, 160px -> 8192 features) or 2-2-2-4
    (discriminator, -> 2048 features); MNIST: 32-64, pools 2-2 (28 -> 26 -> 13 -> 11 -> 5 px, 1600
    features). The Linear's input size is computed from `image_shape`.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        out_features: int,
        channels: Sequence[int],
        kernel_size: int,
        pools: Sequence[int],
        activation: str,
        negative_slope: float,
    ) -> None:
        super().__init__()
        if len(pools) != len(channels):
            raise ConfigError(
                f"pools={list(pools)} must have one entry per conv stage (channels={list(channels)})"
            )
        layers: list[nn.Module] = []
        previous = image_shape[0]
        for width, pool in zip(channels, pools, strict=True):
            layers += [
                nn.Conv2d(previous, width, kernel_size),
                make_activation(activation, negative_slope),
                nn.MaxPool2d(pool),
            ]
            previous = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        size = image_shape[1]
        for pool in pools:
            size = (size - kernel_size + 1) // pool
        if size < 1:
            raise ConfigError(
                f"image size {image_shape[1]} is too small for ConvEncoder with {len(channels)} stages of "
                f"conv k{kernel_size} + pools {list(pools)}: set data.image_size to 64 or 160 (the study), "
                "or use fewer stages (at MNIST's 28 px: channels [32, 64], pools [2, 2], nets=vae_mnist_conv)"
            )
        self.feature_dim = previous * size * size
        self.head = nn.Linear(self.feature_dim, out_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class ConvDecoder(nn.Module):
    """Linear to a `base_channels` x `base_size`^2 map, ConvTranspose k4 s2 stages (activation +
    BatchNorm each), a ConvTranspose k3 s1 to the image channels, then interpolation to the image size.

    Study A: 256 x 8 x 8 -> 128-64-32-16-8 -> 3 channels at 256px -> interpolated to 160px. MNIST:
    64 x 7 x 7 -> 64-32 -> 1 channel at exactly 28px (no interpolation).
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        base_channels: int,
        base_size: int,
        channels: Sequence[int],
        activation: str,
        negative_slope: float,
        interpolate_mode: str,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.base = (base_channels, base_size, base_size)
        self.interpolate_mode = interpolate_mode
        self.project = nn.Sequential(
            nn.Linear(latent_dim, base_channels * base_size * base_size),
            make_activation(activation, negative_slope),
        )
        layers: list[nn.Module] = []
        previous = base_channels
        for width in channels:
            layers += [
                nn.ConvTranspose2d(previous, width, 4, stride=2, padding=1),
                make_activation(activation, negative_slope),
                nn.BatchNorm2d(width),
            ]
            previous = width
        layers.append(nn.ConvTranspose2d(previous, image_shape[0], 3, stride=1, padding=1))
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = self.upsample(self.project(z).view(len(z), *self.base))
        if images.shape[-2:] != self.image_shape[1:]:
            images = F.interpolate(images, size=self.image_shape[1:], mode=self.interpolate_mode)
        return images
