"""Latent densities fitted after training (`model.prior: gmm`), to sample from instead of N(0, I)."""

from __future__ import annotations

import torch
from torch import nn

from genlab.errors import require


class GaussianMixturePrior(nn.Module):
    """An ex-post density on the latent space (Ghosh et al. 2020, "From variational to deterministic
    autoencoders"): a full-covariance Gaussian mixture fitted to the posterior means of the training images.

    A VAE's aggregate posterior rarely fills N(0, I): samples from the prior land in holes between the
    digits' clusters and decode to blends. Sampling from a density fitted to where the encoder actually puts
    the training images avoids them. The parameters are buffers, so checkpoints keep the fitted mixture;
    `fitted` says whether it was fitted yet.
    """

    def __init__(self, latent_dim: int, components: int) -> None:
        super().__init__()
        require(int(components) >= 1, "model.gmm_components", components, "must be a positive integer")
        self.components = int(components)
        self.register_buffer("weights", torch.full((self.components,), 1.0 / self.components))
        self.register_buffer("means", torch.zeros(self.components, latent_dim))
        # the Cholesky factor L of each component's covariance L L^T: a sample is mean + L noise
        self.register_buffer("scale_tril", torch.eye(latent_dim).repeat(self.components, 1, 1))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, latents: torch.Tensor, seed: int = 0) -> None:
        """Fit the mixture to `latents` [N, D] by EM (scikit-learn's GaussianMixture: k-means start,
        `seed` for its own RNG, never torch's, so fitting leaves the training run's random streams alone)."""
        from sklearn.mixture import GaussianMixture

        require(
            len(latents) >= self.components,
            "model.gmm_components",
            self.components,
            f"must be at most the number of training images ({len(latents)})",
        )
        mixture = GaussianMixture(self.components, covariance_type="full", random_state=seed)
        mixture.fit(latents.detach().double().cpu().numpy())
        covariances = torch.from_numpy(mixture.covariances_)
        # in place: the buffers keep their device and their identity inside a state_dict taken earlier
        self.weights.copy_(torch.from_numpy(mixture.weights_))
        self.means.copy_(torch.from_numpy(mixture.means_))
        self.scale_tril.copy_(torch.linalg.cholesky(covariances))
        self.fitted.fill_(True)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` latent vectors [n, D] from the mixture, drawn on the generator's device (or the buffers')."""
        device = generator.device if generator is not None else self.means.device
        component = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, device=device)
        scale = self.scale_tril.to(device)[component]
        return self.means.to(device)[component] + (scale @ noise.unsqueeze(-1)).squeeze(-1)
