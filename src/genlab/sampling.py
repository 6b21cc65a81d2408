"""New images from a model as uint8 pixels, the form every metric compares with real images, and the
settings of the sampler that draws them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from genlab.metrics.inception import to_uint8
from genlab.models.base import GenerativeModel
from genlab.modes import sampling_mode


def sample_uint8(
    model: GenerativeModel,
    n: int,
    generator: torch.Generator | None = None,
    batch_size: int = 200,
    progress: str | None = None,
) -> torch.Tensor:
    """`n` samples of a genlab model as uint8 images [n, C, H, W] on the CPU (the quantisation of real
    images), drawn in `sampling_mode` (eval mode, no gradients, after the model's `prepare_sampling`), the
    model's modes restored afterwards.

    All latents come from one draw from `generator` (its device is where they are drawn), then are decoded
    `batch_size` at a time, so the samples do not depend on `batch_size`. `progress` names a progress bar.
    """
    from tqdm.auto import tqdm

    with sampling_mode(model):
        latents = model.sample_latent(n, generator)
        batches = latents.split(batch_size)
        images = [
            to_uint8(model.to_unit(model.generate(z))).cpu()
            for z in (tqdm(batches, desc=progress) if progress else batches)
        ]
    return torch.cat(images)


def configure_sampler(model: GenerativeModel, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the non-null settings of a `sampler:` block (evaluate.py, generate.py) to the model's solver;
    null keeps the checkpoint's. A model without a solver raises its ConfigError for any setting given."""
    given = {key: value for key, value in settings.items() if value is not None}
    if given:
        model.configure_sampler(**given)
    return given
