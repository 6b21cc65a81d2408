"""A third genlab model that lives only in tests/: a deterministic autoencoder sampled from N(0, I).

It proves that a new model is one module plus one config: nothing in src/ names it, and train, generate,
evaluate and compare handle it through GenerativeModel's protocol (`can_encode`, no likelihood).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from genlab.models.base import GenerativeModel


class Autoencoder(GenerativeModel):
    """Encoder to `latent_dim` numbers, decoder back, squared error; samples decode prior draws."""

    can_encode = True

    def __init__(
        self,
        encoder: Mapping[str, Any],
        decoder: Mapping[str, Any],
        image_shape: Sequence[int],
        optimizer: Mapping[str, Any],
        latent_dim: int,
        pixel_range: Sequence[float],
    ) -> None:
        super().__init__(image_shape, latent_dim, pixel_range)
        self.encoder = self.build_net("encoder", image_shape=self.image_shape, out_features=self.latent_dim)
        self.decoder = self.build_net("decoder", latent_dim=self.latent_dim, image_shape=self.image_shape)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_activation(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.generate(self.encode(images))

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return (self.generate(self.encoder(images)) - images).pow(2).flatten(1).sum(1).mean()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.loss(batch[0])  # logged as train/loss by genlab.callbacks.TrainingScalars

    def validation_step(self, batch, batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch[0]), batch_size=len(batch[0]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.make_optimizer("optimizer", self.parameters())[0]
