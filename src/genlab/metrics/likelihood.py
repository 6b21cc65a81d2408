"""Test-set likelihoods for evaluate.py: the bounds of a model with a likelihood (`has_likelihood`, the
VAE) in nats per image, and the bits per dimension of a model with an exact one (`has_exact_likelihood`).

The model owns its likelihood (`elbo`, `iwae_bound`, `reconstruction_error`, `bits_per_dim`); this module
only averages it over test images, seeded.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol, runtime_checkable

import torch

from genlab.models.base import GenerativeModel
from genlab.modes import eval_mode, sampling_mode

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


@runtime_checkable
class ExactLikelihood(Protocol):
    """What a model with `has_exact_likelihood` offers: bits/dim per image [N] of uint8 images."""

    def bits_per_dim(
        self, images: torch.Tensor, generator: torch.Generator | None = None, trace: str = "hutchinson"
    ) -> torch.Tensor: ...

    def likelihood_description(self) -> str: ...

    #: the function evaluations of the latest `bits_per_dim` call
    likelihood_nfe: int


def bits_per_dim_scores(
    model: GenerativeModel,
    images: torch.Tensor,
    batch_size: int,
    trace: str = "hutchinson",
    seed: int = 0,
    progress: str | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Mean bits/dim of uint8 `images` (two or more) and its standard error over them, and what it cost.

    The dequantisation noise and the trace estimator's vectors come from one generator seeded with `seed`,
    drawn batch by batch: the same seed and `batch_size` repeat a result. Returns (metrics, protocol): the
    protocol holds the model's description, the image count, the function evaluations of the solver per
    batch (mean) and the seconds."""
    from tqdm.auto import tqdm

    if not isinstance(model, ExactLikelihood):
        raise TypeError(f"{type(model).__name__} has no exact likelihood (bits_per_dim)")
    generator = torch.Generator().manual_seed(int(seed))
    batches = images.split(int(batch_size))
    values, nfe = [], []
    started = time.perf_counter()
    with sampling_mode(model):
        for batch in tqdm(batches, desc=progress) if progress else batches:
            values.append(model.bits_per_dim(batch, generator, trace).double().cpu())
            nfe.append(model.likelihood_nfe)
    seconds = time.perf_counter() - started
    per_image = torch.cat(values)
    metrics = {
        "bits_per_dim": float(per_image.mean()),
        "bits_per_dim_se": float(per_image.std() / math.sqrt(len(per_image))),
    }
    spent = [n for n in nfe if isinstance(n, int)]
    protocol = {
        "description": model.likelihood_description(),
        "n_images": len(per_image),
        "trace": trace,
        "batch_size": int(batch_size),
        "seed": int(seed),
        "nfe_per_batch": sum(spent) / len(spent) if spent else None,
        "seconds": round(seconds, 1),
    }
    return metrics, protocol
