"""Latent priors a VAE samples from (`prior=...`): N(0, I), or a mixture fitted after training.

Each has `sample(n, generator)` and `log_prob(z)`. A prior with `fittable = True` is fitted ex post to the
training images' posterior means, as pythae's samplers are: by genlab.callbacks.FitLatentPrior at the end of
training (and into every checkpoint), or by evaluate.py for a checkpoint whose prior was never fitted. The
fit is the prior's own state (buffers), so checkpoints keep it. Until it is fitted a fittable prior samples
N(0, I), the prior the VAE trains with.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from genlab.errors import require

if TYPE_CHECKING:
    from genlab.data.base import ImageDataModule
    from genlab.models.base import GenerativeModel


class StandardNormal(nn.Module):
    """N(0, I): the prior every VAE trains with (the KL is taken against it)."""

    fittable = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        """`n` latent vectors [n, D], drawn on the generator's device (or `device`)."""
        device = generator.device if generator is not None else device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) per vector [N]."""
        return -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)


class GaussianMixture(StandardNormal):
    """An ex-post density on the latent space (Ghosh et al. 2020, "From variational to deterministic
    autoencoders"): a full-covariance Gaussian mixture of `components` fitted to the posterior means of (a
    fixed subset of at most `fit_images` of) the training images.

    A VAE's aggregate posterior rarely fills N(0, I): samples from N(0, I) land in holes between the digits'
    clusters and decode to blends. Sampling from a density fitted to where the encoder actually puts the
    training images avoids them. `fitted` says whether it was fitted yet.
    """

    fittable = True
    weights: torch.Tensor
    means: torch.Tensor
    scale_tril: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, latent_dim: int, components: int, fit_images: int | None) -> None:
        super().__init__(latent_dim)
        require(
            isinstance(components, int) and components >= 1,
            "model.prior.components",
            components,
            "must be a positive integer",
        )
        require(
            fit_images is None or (isinstance(fit_images, int) and fit_images >= components),
            "model.prior.fit_images",
            fit_images,
            "must be null (all training images) or an integer >= model.prior.components",
        )
        self.components = components
        self.fit_images = fit_images
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, latent_dim))
        # the Cholesky factor L of each component's covariance L L^T: a sample is mean + L noise
        self.register_buffer("scale_tril", torch.eye(latent_dim).repeat(components, 1, 1))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, latents: torch.Tensor, seed: int = 0) -> None:
        """Fit the mixture to `latents` [N, D] by EM (scikit-learn's GaussianMixture: k-means start,
        `seed` for its own RNG, never torch's, so fitting leaves the training run's random streams alone)."""
        from sklearn.mixture import GaussianMixture as SklearnMixture

        require(
            len(latents) >= self.components,
            "model.prior.components",
            self.components,
            f"must be at most the number of training images ({len(latents)})",
        )
        mixture = SklearnMixture(self.components, covariance_type="full", random_state=seed)
        mixture.fit(latents.detach().double().cpu().numpy())
        # in place: the buffers keep their device
        self.weights.copy_(torch.from_numpy(mixture.weights_))
        self.means.copy_(torch.from_numpy(mixture.means_))
        self.scale_tril.copy_(torch.linalg.cholesky(torch.from_numpy(mixture.covariances_)))
        self.fitted.fill_(True)

    def reset(self) -> None:
        """Forget the fit (the weights it was fitted to are being trained further)."""
        self.fitted.fill_(False)

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        if not bool(self.fitted):
            return super().sample(n, generator, device)
        device = generator.device if generator is not None else self.means.device
        component = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, device=device)
        scale = self.scale_tril.to(device)[component]
        return self.means.to(device)[component] + (scale @ noise.unsqueeze(-1)).squeeze(-1)

    def distribution(self) -> torch.distributions.MixtureSameFamily:
        """The fitted mixture as a torch distribution."""
        return torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=self.weights),
            torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril),
        )

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.distribution().log_prob(z) if bool(self.fitted) else super().log_prob(z)


@torch.no_grad()
def posterior_means(
    model: GenerativeModel, datamodule: ImageDataModule, max_images: int | None
) -> torch.Tensor:
    """The posterior means of a fixed subset of at most `max_images` training images (None: all), in eval
    mode (every module's mode is restored)."""
    from genlab.modes import eval_mode

    images = datamodule.split_images("train")
    if max_images is not None and max_images < len(images):
        subset = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:max_images]
        images = images[subset.sort().values]
    with eval_mode(model):
        return torch.cat(
            [
                model.encode(datamodule.to_model_range(batch.to(model.device))).float().cpu()
                for batch in images.split(1000)
            ]
        )


def fit_prior(prior: GaussianMixture, model: GenerativeModel, datamodule: ImageDataModule) -> None:
    """Fit `prior` to `model`'s posterior means of `datamodule`'s training images."""
    prior.fit(posterior_means(model, datamodule, prior.fit_images))


def adopt_prior_state(prior: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> None:
    """Make a checkpoint's state_dict fit `prior` (keys under `prefix`), in place: a checkpoint of another
    prior loads too. One without a mixture gets an unfitted one (to fit ex post, Ghosh et al.'s point), and
    a mixture that `prior` does not keep is dropped."""
    own = {f"{prefix}{name}": tensor for name, tensor in prior.state_dict().items()}
    for key in [key for key in state if key.startswith(prefix) and key not in own]:
        del state[key]
    for key, tensor in own.items():
        state.setdefault(key, tensor)
