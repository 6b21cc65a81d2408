"""A perceptual distance between images from feature nets genlab already has: the MNIST digit classifier's
conv stages, and the FID Inception's first stages for colour images.

This is not LPIPS. LPIPS (Zhang et al. 2018) compares unit-normalised activations of AlexNet or VGG with
learned per-channel weights, and every implementation (`lpips`, torchmetrics, piq) downloads its backbone at
run time, which genlab cannot. This is LPIPS's recipe without the learned weights (the paper's "baseline"
variant) on offline nets: per stage, normalise each position's feature vector to unit length, take the
squared difference, average over positions, and sum over stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from genlab.metrics import classifier
from genlab.metrics.inception import shared_inception

#: the FID Inception's stages whose outputs are compared (of its `layers`): 64 channels after the stem,
#: 192 after the second conv block, 288 after the third mixed block
INCEPTION_STAGES = ("pool0", "pool1", "mixed_2")
#: colour images are resized to this side for Inception's stages (its own 299 costs 10x more here)
INCEPTION_SIZE = 128


class FeatureDistance(nn.Module):
    """Per image [N]: `pixel_weight` x pixel MSE + `feature_weight` x the feature term, for images in [0, 1].

    `stages` run one after the other on `prepare(images)`; each stage's output is compared. The nets are
    frozen and in eval mode; gradients flow to the images (GAN inversion, the encoder's training)."""

    def __init__(
        self,
        stages: Sequence[nn.Module],
        description: str,
        pixel_weight: float = 1.0,
        feature_weight: float = 1.0,
        input_size: int | None = None,
        colour: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages).eval().requires_grad_(False)
        self.description = description
        self.pixel_weight, self.feature_weight = float(pixel_weight), float(feature_weight)
        self.input_size, self.colour = input_size, colour

    def train(self, mode: bool = True) -> FeatureDistance:
        return super().train(False)  # the nets' BatchNorm statistics are part of the distance

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        if not self.colour:
            return images
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        if self.input_size and images.shape[-1] != self.input_size:
            size = (self.input_size, self.input_size)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return images * (255.0 / 128.0) - 1.0  # Inception's input convention, as in genlab.metrics.inception

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's output, unit-normalised along channels at each position."""
        outputs, h = [], self.prepare(images)
        for stage in self.stages:
            h = stage(h)
            outputs.append(F.normalize(h, dim=1, eps=1e-10))
        return outputs

    def feature_term(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The feature part alone, per image [N]."""
        pairs = zip(self.features(images), self.features(targets), strict=True)
        return sum((a - b).pow(2).sum(1).flatten(1).mean(1) for a, b in pairs)  # type: ignore[return-value]

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mse = (images - targets).pow(2).flatten(1).mean(1)
        if self.feature_weight == 0:
            return self.pixel_weight * mse
        return self.pixel_weight * mse + self.feature_weight * self.feature_term(images, targets)


def digit_stages(net: nn.Module) -> list[nn.Module]:
    """The digit classifier's conv stages ([Conv, activation, MaxPool] each), without its flatten and head."""
    trunk = cast(nn.Sequential, net.features)
    layers = [layer for layer in trunk if not isinstance(layer, nn.Flatten)]
    return [nn.Sequential(*layers[i : i + 3]) for i in range(0, len(layers), 3)]


def inception_stages(names: Sequence[str] = INCEPTION_STAGES) -> list[nn.Module]:
    """The FID Inception's layers up to and including each of `names`, as consecutive stages."""
    layers = shared_inception().net.net.layers
    stages: list[nn.Module] = []
    current: list[nn.Module] = []
    for name, layer in layers.named_children():
        current.append(layer)
        if name in names:
            stages.append(nn.Sequential(*current))
            current = []
        if len(stages) == len(names):
            break
    return stages


def for_data(
    datamodule, cache_dir, pixel_weight: float = 1.0, feature_weight: float = 1.0
) -> FeatureDistance:
    """The distance for a data module: the digit classifier's stages for MNIST, Inception's otherwise."""
    if datamodule.has_digit_classifier:
        net, _ = classifier.load_or_train(datamodule, cache_dir)
        return FeatureDistance(
            digit_stages(net),
            "MNIST digit classifier's 3 conv stages, unit-normalised, squared distance (not LPIPS)",
            pixel_weight,
            feature_weight,
        )
    return FeatureDistance(
        inception_stages(),
        f"FID Inception's stages {', '.join(INCEPTION_STAGES)} at {INCEPTION_SIZE} px, unit-normalised, "
        "squared distance (not LPIPS)",
        pixel_weight,
        feature_weight,
        input_size=INCEPTION_SIZE,
        colour=True,
    )
