"""Test-set bounds of a model with a likelihood (`has_likelihood`, e.g. the VAE), in nats per image.

The model owns its likelihood (`elbo`, `iwae_bound`, `reconstruction_error`); this module only averages
them over test images, seeded, for evaluate.py.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from genlab.models.base import GenerativeModel
from genlab.modes import eval_mode

#: the pixels of the images that the batch sizes are set for (MNIST's 28 x 28): larger images pass
#: proportionally fewer at a time, so the activations stay about as large. 500 64 px RGB images at once
#: through study A's conv VAE took 22 GB, and the kernel killed evaluate.py.
BATCH_PIXELS = 28 * 28


@runtime_checkable
class Likelihood(Protocol):
    """The bounds a model with `has_likelihood` offers, each per image [N] in nats."""

    def reconstruction_error(self, images: torch.Tensor) -> torch.Tensor: ...

    def elbo(self, images: torch.Tensor) -> torch.Tensor: ...

    def iwae_bound(self, images: torch.Tensor, k: int) -> torch.Tensor: ...


@torch.no_grad()
def likelihood_scores(
    model: GenerativeModel,
    images: torch.Tensor,
    iwae_images: torch.Tensor,
    iwae_k: int,
    batch_size: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """Mean test reconstruction loss (posterior mean), ELBO and IWAE-k, in nats per image.

    The ELBO is over `images`; the IWAE (and the ELBO beside it) over `iwae_images`, a costlier bound.
    `batch_size` images of BATCH_PIXELS pixels pass at a time (the IWAE's k samples of one fiftieth of
    them); larger images in proportionally smaller batches."""
    if not isinstance(model, Likelihood):
        raise TypeError(
            f"{type(model).__name__} has no likelihood bounds (reconstruction_error, elbo, iwae_bound)"
        )
    scale = max(1, images[0].numel() // BATCH_PIXELS)
    iwae_batch_size = max(1, batch_size // 50 // scale)
    batch_size = max(1, batch_size // scale)
    with eval_mode(model), torch.random.fork_rng():
        torch.manual_seed(seed)
        recon, mse, bound = [], [], []
        for batch in images.split(batch_size):
            recon.append(model.reconstruction_error(batch))
            mse.append((model.reconstruct(batch) - batch).pow(2).flatten(1).mean(1))
            bound.append(model.elbo(batch))
        iwae_batches = iwae_images.split(iwae_batch_size)
        iwae = [model.iwae_bound(batch, iwae_k) for batch in iwae_batches]
        iwae_elbo = [model.elbo(batch) for batch in iwae_batches]
    return {
        "test_recon": float(torch.cat(recon).mean()),
        "test_mse_per_pixel": float(torch.cat(mse).mean()),
        "test_elbo": float(torch.cat(bound).mean()),
        "iwae": float(torch.cat(iwae).mean()),
        # the ELBO on the IWAE's images, the number the IWAE bound tightens
        "iwae_images_elbo": float(torch.cat(iwae_elbo).mean()),
    }
