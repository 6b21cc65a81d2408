"""The VAE's ELBO terms, reparameterisation and sampling interface."""

import pytest
import torch
from helpers import likelihood, model_args, net_config

from genlab.errors import ConfigError
from genlab.models import VAE

MLP = net_config("vae_mnist", "encoder", hidden_dims=[16], dropout=0.0)
DEC = net_config("vae_mnist", "decoder", hidden_dims=[16])


def make_vae(**kwargs) -> VAE:
    torch.manual_seed(0)
    return VAE(**model_args("vae", encoder=MLP, decoder=DEC, image_shape=(1, 4, 4), latent_dim=3) | kwargs)


def test_loss_terms_add_up_and_are_per_image_sums():
    vae = make_vae(beta=2.0)
    images = torch.rand(5, 1, 4, 4)
    torch.manual_seed(1)
    terms = vae.loss(images)
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 2.0 * terms["kl"].item(), rel=1e-6)
    # Recompute by hand with the same noise.
    torch.manual_seed(1)
    mu, logvar = vae.posterior(images)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    recon = ((torch.sigmoid(vae.decoder(z)) - images) ** 2).sum(dim=(1, 2, 3)).mean()
    assert terms["recon"].item() == pytest.approx(recon.item(), rel=1e-5)


def test_bce_reconstruction_matches_torch():
    vae = make_vae(likelihood=likelihood("bernoulli"))
    logits, images = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), images, reduction="none")
    assert torch.allclose(vae.likelihood.nll(logits, images), expected.sum(dim=(1, 2, 3)), atol=1e-5)


def test_posterior_scale_log_std_vs_log_var():
    log_std, log_var = make_vae(posterior_scale="log_std"), make_vae(posterior_scale="log_var")
    images = torch.rand(2, 1, 4, 4)
    (_, lv_a), (_, lv_b) = log_std.posterior(images), log_var.posterior(images)
    assert torch.allclose(lv_a, 2 * lv_b)  # same weights: the second half read as log-std doubles


def test_reparameterisation_passes_gradients():
    mu = torch.zeros(3, 2, requires_grad=True)
    logvar = torch.zeros(3, 2, requires_grad=True)
    VAE.reparameterize(mu, logvar).sum().backward()
    assert mu.grad is not None and logvar.grad is not None and mu.grad.abs().sum() > 0


def test_interface_shapes_and_ranges():
    vae = make_vae()
    assert vae.sample(6).shape == (6, 1, 4, 4)
    recon = vae.reconstruct(torch.rand(2, 1, 4, 4))
    assert recon.shape == (2, 1, 4, 4) and recon.min() >= 0 and recon.max() <= 1
    z = vae.sample_latent(4, torch.Generator().manual_seed(0))
    assert torch.equal(z, vae.sample_latent(4, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        (
            {"optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": -1.0}},
            "model.optimizer.lr",
        ),
        ({"optimizer": {"_target_": "torch.optim.Adam", "lr": 1e-3}}, "model.optimizer"),
        (
            {"optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "betas": [2, 0]}},
            "model.optimizer",
        ),
        ({"latent_dim": 0}, "model.latent_dim"),
        ({"likelihood": "l1"}, "model.likelihood"),
        ({"pixel_range": (-1, 1), "likelihood": likelihood("bernoulli")}, "likelihood"),
        ({"beta": -1}, "model.beta"),
    ],
)
def test_invalid_values_name_the_key(kwargs, key):
    args = model_args("vae", encoder=MLP, decoder=DEC, image_shape=(1, 4, 4), latent_dim=3) | kwargs
    with pytest.raises(ConfigError, match=key):
        VAE(**args)
