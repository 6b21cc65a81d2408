"""The VAE's test reconstruction error, ELBO and importance-weighted bound (IWAE), in nats per image.

The likelihood p(x|z) is the one the model's `reconstruction_loss` implies:
- `bce`: Bernoulli with the decoder's logits, -log p(x|z) = BCE summed over pixels;
- `mse`: Gaussian with mean sigmoid(logits) and FIXED variance 1/2 per pixel, the variance for which the
  summed squared error is exactly the negative log-density up to a constant:
  -log p(x|z) = sum (x - mean)^2 + (D/2) log(pi), D = number of pixel values.
Bounds are lower bounds on log p(x) (higher is better); they are densities for `mse`, so only comparable
between models with the same likelihood.
"""

from __future__ import annotations

import math

import torch

from genlab.errors import require

LIKELIHOODS = {
    "mse": "Gaussian, fixed variance 1/2 per pixel: -log p(x|z) = sum sq. error + D/2 log(pi)",
    "bce": "Bernoulli on the decoder logits: -log p(x|z) = summed binary cross-entropy",
}


def log_likelihood(model, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """log p(x|z) per image [N] for the model's reconstruction loss."""
    negative = model.reconstruction_loss(logits, images)
    if model.hparams.recon_loss == "mse":
        negative = negative + 0.5 * images[0].numel() * math.log(math.pi)
    return -negative


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


@torch.no_grad()
def iwae_bound(model, images: torch.Tensor, k: int, chunk: int = 500) -> torch.Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x): per image [N]; k=1 is a one-sample ELBO."""
    require(k >= 1, "iwae_k", k, "must be a positive integer (e.g. 5000 for a final number)")
    mu, logvar = model.encode(images)
    log_weights = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        z = mu.unsqueeze(1) + torch.randn(len(images), n, mu.shape[1], device=mu.device) * (
            0.5 * logvar
        ).exp().unsqueeze(1)
        logits = model.decode_logits(z.flatten(0, 1))
        repeated = images.unsqueeze(1).expand(-1, n, *images.shape[1:]).flatten(0, 1)
        log_px = log_likelihood(model, logits, repeated).view(len(images), n)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = gaussian_log_density(z, mu.unsqueeze(1), logvar.unsqueeze(1))
        log_weights.append(log_px + log_pz - log_qz)
    return torch.logsumexp(torch.cat(log_weights, dim=1), dim=1) - math.log(k)


@torch.no_grad()
def elbo(model, images: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
    """E_q[log p(x|z)] - KL[q(z|x) || N(0, I)] per image [N], KL in closed form, E_q by `n_samples` draws."""
    from genlab.models.losses import gaussian_kl

    mu, logvar = model.encode(images)
    expected = torch.stack(
        [
            log_likelihood(model, model.decode_logits(model.reparameterize(mu, logvar)), images)
            for _ in range(n_samples)
        ]
    ).mean(0)
    return expected - gaussian_kl(mu, logvar)


@torch.no_grad()
def vae_scores(
    model, images: torch.Tensor, iwae_images: torch.Tensor, iwae_k: int, batch_size: int = 500, seed: int = 0
) -> dict[str, float]:
    """Mean test reconstruction loss (posterior mean), ELBO and IWAE-k, in nats per image.

    The ELBO is over `images`; the IWAE (and the ELBO beside it) over `iwae_images`, a costlier bound."""
    model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        recon, mse, bound = [], [], []
        for batch in images.split(batch_size):
            mu, _ = model.encode(batch)
            logits = model.decode_logits(mu)
            recon.append(model.reconstruction_loss(logits, batch))
            mse.append((model.output_activation(logits) - batch).pow(2).flatten(1).mean(1))
            bound.append(elbo(model, batch))
        iwae_batches = iwae_images.split(max(1, batch_size // 50))
        iwae = [iwae_bound(model, batch, iwae_k) for batch in iwae_batches]
        iwae_elbo = [elbo(model, batch) for batch in iwae_batches]
    return {
        "test_recon": float(torch.cat(recon).mean()),
        "test_mse_per_pixel": float(torch.cat(mse).mean()),
        "test_elbo": float(torch.cat(bound).mean()),
        "iwae": float(torch.cat(iwae).mean()),
        # the ELBO on the IWAE's images, the number the IWAE bound tightens
        "iwae_images_elbo": float(torch.cat(iwae_elbo).mean()),
    }
