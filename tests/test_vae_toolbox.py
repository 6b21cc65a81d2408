"""The VAE toolbox: conv nets at 28 px, dynamically binarised MNIST, its likelihoods
(genlab.models.likelihoods), KL warm-up, and an ex-post Gaussian-mixture prior (genlab.models.priors); each
off by default."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from helpers import assert_same_run, likelihood, make_datamodule, model_args, net_config, prior, write_idx
from omegaconf import open_dict

from genlab.checkpoints import checkpoint_datamodule, load_model
from genlab.data.base import fixed_binarization
from genlab.errors import ConfigError
from genlab.models import VAE
from genlab.models.likelihoods import softclip
from genlab.models.priors import GaussianMixture, fit_prior, posterior_means
from genlab.train import build_model, train

MLP = net_config("vae_mnist", "encoder", hidden_dims=[16], dropout=0.0)
DEC = net_config("vae_mnist", "decoder", hidden_dims=[16])
# every switch on: conv nets, binary pixels with their Bernoulli likelihood, warm-up, the mixture prior
ALL_SWITCHES = (
    "nets=vae_mnist_conv",
    "data.binarize=dynamic",
    "likelihood=bernoulli",
    "model.kl_warmup_steps=5",
    "prior=gaussian_mixture",
    "model.prior.components=3",
)
GAUSSIANS = ("learned_sigma_gaussian", "calibrated_sigma_gaussian")
MIN_LOG_SIGMA = likelihood("learned_sigma_gaussian")["min_log_sigma"]


def make_vae(image_shape=(1, 4, 4), latent_dim=3, **kwargs) -> VAE:
    torch.manual_seed(0)
    args = model_args("vae", encoder=MLP, decoder=DEC, image_shape=image_shape, latent_dim=latent_dim)
    return VAE(**args | kwargs)


def write_grey_mnist(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """Fake MNIST with grey levels (the shared fixture's pixels are already 0 or 255)."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    return root


def finite(metrics: dict[str, float]) -> bool:
    return bool(metrics) and all(math.isfinite(value) for value in metrics.values())


# --- conv nets at 28 px ----------------------------------------------------------------------------


def test_conv_nets_fit_mnist_exactly(make_cfg, monkeypatch):
    cfg = make_cfg("nets=vae_mnist_conv")
    model = build_model(cfg, make_datamodule("mnist", data_dir=cfg.data.data_dir))
    assert type(model.encoder).__name__ == "ConvEncoder" and model.encoder.feature_dim == 64 * 5 * 5

    def no_interpolation(*args, **kwargs):
        raise AssertionError("the 28 px decoder must not need interpolation")

    monkeypatch.setattr("genlab.nets.conv.F.interpolate", no_interpolation)
    images = torch.rand(3, 1, 28, 28)
    assert model.encoder(images).shape == (3, 2 * cfg.model.latent_dim)
    assert model.reconstruct(images).shape == (3, 1, 28, 28) and model.sample(2).shape == (2, 1, 28, 28)


# --- dynamically binarised MNIST -------------------------------------------------------------------


def test_fixed_binarization_is_bernoulli_and_a_function_of_the_image_alone():
    grey = torch.randint(
        0, 256, (300, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    binary = fixed_binarization(grey)
    assert binary.dtype == torch.uint8 and set(binary.unique().tolist()) <= {0, 255}
    # Bernoulli(intensity): the fraction of ones follows the intensity, bin by bin
    ones, intensity = (binary.float() / 255).flatten(), (grey.float() / 255).flatten()
    for low in (0.0, 0.25, 0.5, 0.75):
        chosen = (intensity >= low) & (intensity < low + 0.25)
        assert float(ones[chosen].mean()) == pytest.approx(float(intensity[chosen].mean()), abs=0.01)
    # the same bits in any batch and order; black and white pixels stay as they are
    order = torch.randperm(300, generator=torch.Generator().manual_seed(1))[:50]
    assert torch.equal(fixed_binarization(grey[order]), binary[order])
    extremes = torch.tensor([0, 255], dtype=torch.uint8).repeat(5, 1, 1, 392)
    assert torch.equal(fixed_binarization(extremes), extremes)


def test_binarize_dynamic_draws_per_training_batch_and_fixes_the_rest(tmp_path):
    dm = make_datamodule(
        "mnist", data_dir=write_grey_mnist(tmp_path), batch_size=16, val_size=20, binarize="dynamic"
    )
    dm.setup("fit")
    assert dm.hparams["binarize"] == "dynamic"  # recorded in checkpoints: evaluate.py rebuilds it
    assert len(dm.split_images("train").unique()) > 2  # the splits stay grey (FID reference, classifier)
    val_batch = next(iter(dm.val_dataloader()))
    val_a, _ = dm.on_after_batch_transfer(val_batch, 0)
    val_b, _ = dm.on_after_batch_transfer(val_batch, 0)
    assert set(val_a.unique().tolist()) == {0.0, 1.0} and torch.equal(val_a, val_b)
    assert torch.equal(val_a, dm.to_model_range(val_batch[0]))  # what evaluate.py and the pictures see
    train_batch = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=True)  # as during Trainer.fit's training batches
    draw_a, _ = dm.on_after_batch_transfer(train_batch, 0)
    draw_b, _ = dm.on_after_batch_transfer(train_batch, 0)
    assert set(draw_a.unique().tolist()) == {0.0, 1.0} and not torch.equal(draw_a, draw_b)
    assert float(draw_a.mean()) == pytest.approx(float(train_batch[0].float().mean() / 255), abs=0.02)
    grey = make_datamodule("mnist", data_dir=tmp_path, batch_size=16, val_size=20)
    assert len(grey.to_model_range(val_batch[0]).unique()) > 2  # binarize: null, the default, is unchanged
    with pytest.raises(ConfigError, match="data.binarize"):
        make_datamodule("mnist", data_dir=tmp_path, binarize="static")


def test_binarize_needs_the_bernoulli_likelihood(make_cfg):
    with pytest.raises(
        ConfigError, match=r"data.binarize='dynamic' needs likelihood=bernoulli.*FixedGaussian"
    ):
        train(make_cfg("data.binarize=dynamic", "trainer.max_steps=1", "logger=none", "callbacks=none"))


# --- Gaussian likelihoods with a learned or calibrated sigma ---------------------------------------


def normal_log_prob(logits: torch.Tensor, images: torch.Tensor, sigma: float) -> torch.Tensor:
    normal = torch.distributions.Normal(torch.sigmoid(logits), sigma)
    return normal.log_prob(images).flatten(1).sum(1)


def test_learned_sigma_likelihood_is_a_normal_density():
    model = make_vae(likelihood=likelihood("learned_sigma_gaussian"))
    logits, images = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    for log_sigma in (0.0, -1.3, -20.0):
        with torch.no_grad():
            model.likelihood.raw_log_sigma.fill_(log_sigma)
        sigma = float(softclip(torch.tensor(log_sigma), MIN_LOG_SIGMA).exp())
        assert sigma >= math.exp(MIN_LOG_SIGMA)
        expected = normal_log_prob(logits, images, sigma)
        assert torch.allclose(model.log_likelihood(logits, images), expected, rtol=1e-5, atol=1e-3)
    assert model.likelihood.constant(images) == 0.0
    # learned: the loss trains it
    model.loss(images)["loss"].backward()
    grad = model.likelihood.raw_log_sigma.grad
    assert grad is not None and float(grad) != 0


def test_calibrated_sigma_is_the_batch_mse_in_training_and_its_running_mean_in_evaluation():
    model = make_vae(likelihood=likelihood("calibrated_sigma_gaussian")).train()
    logits = torch.randn(4, 1, 4, 4, requires_grad=True)
    images = torch.rand(4, 1, 4, 4)
    mse = float((torch.sigmoid(logits) - images).detach().pow(2).mean())
    loss = model.likelihood.nll(logits, images)
    assert torch.allclose(-loss, normal_log_prob(logits, images, math.sqrt(mse)), rtol=1e-5)
    # sigma is detached: the gradient is that of the Normal density with sigma held fixed
    fixed = -normal_log_prob(logits, images, math.sqrt(mse))
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    (expected,) = torch.autograd.grad(fixed.sum(), logits)
    assert torch.allclose(grad, expected, rtol=1e-4)
    running = 0.9 * 1.0 + 0.1 * mse  # from 1 with momentum 0.1, like BatchNorm's running statistics
    assert float(model.likelihood.calibrated_mse) == pytest.approx(running, rel=1e-5)
    model.eval()
    other = torch.rand(2, 1, 4, 4)  # evaluation: one fixed sigma, whatever the batch
    assert torch.allclose(
        model.log_likelihood(logits[:2].detach(), other),
        normal_log_prob(logits[:2].detach(), other, math.sqrt(running)),
        rtol=1e-5,
    )
    assert f"sigma = {math.sqrt(running):.6g}" in model.likelihood.description
    # evaluation leaves it alone
    assert float(model.likelihood.calibrated_mse) == pytest.approx(running, rel=1e-5)


def test_likelihoods_keep_only_their_own_tensors():
    keys = set(make_vae().state_dict())
    assert all(key.startswith(("encoder.", "decoder.")) for key in keys)
    learned = make_vae(likelihood=likelihood("learned_sigma_gaussian")).state_dict()
    assert "likelihood.raw_log_sigma" in learned
    assert (
        "likelihood.calibrated_mse"
        in make_vae(likelihood=likelihood("calibrated_sigma_gaussian")).state_dict()
    )


# --- bounds of known densities: a constant encoder and a decoder with fixed logits -----------------


def known_density_vae(name: str, logits: torch.Tensor) -> VAE:
    """q(z|x) = p(z) = N(0, I) and p(x|z) independent of z: every bound equals log p(x) exactly."""
    encoder = net_config("vae_mnist", "encoder", hidden_dims=[], dropout=0.0)
    decoder = net_config("vae_mnist", "decoder", hidden_dims=[])
    model = make_vae(latent_dim=2, encoder=encoder, decoder=decoder, likelihood=likelihood(name))
    with torch.no_grad():
        for net in (model.encoder.net[-1], model.decoder.net[-1]):
            net.weight.zero_()
        model.encoder.net[-1].bias.zero_()  # mean 0, log-std 0
        model.decoder.net[-1].bias.copy_(logits.flatten())
    return model.eval()


@pytest.mark.parametrize("name", ["bernoulli", "fixed_gaussian", *GAUSSIANS])
def test_iwae_bound_of_a_known_density_is_its_closed_form(name):
    logits = torch.linspace(-3, 3, 16).view(1, 1, 4, 4)
    model = known_density_vae(name, logits)
    images = (torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    if name == "bernoulli":
        expected = torch.distributions.Bernoulli(logits=logits).log_prob(images).flatten(1).sum(1)
    else:
        # sigma: 1/2 for the fixed one; the learned one starts at log sigma 0 (soft-clipped), the other at 1
        learned = float(softclip(torch.tensor(0.0), MIN_LOG_SIGMA).exp())
        sigmas = {"fixed_gaussian": math.sqrt(0.5), GAUSSIANS[0]: learned, GAUSSIANS[1]: 1.0}
        sigma = sigmas[name]
        expected = normal_log_prob(logits.expand_as(images), images, sigma)
    torch.manual_seed(0)
    for k in (1, 7):
        assert torch.allclose(model.iwae_bound(images, k), expected, atol=1e-4)
    assert torch.allclose(model.elbo(images), expected, atol=1e-4)


def test_iwae_bound_survives_a_posterior_variance_that_underflows():
    logits = torch.linspace(-3, 3, 16).view(1, 1, 4, 4)
    model = known_density_vae("bernoulli", logits)
    log_std = -70.0  # variance exp(-140): 0 in float32, as an over-fit encoder's (seen: logvar -136)
    with torch.no_grad():
        model.encoder.net[-1].bias[2:] = log_std
    images = (torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    log_px = torch.distributions.Bernoulli(logits=logits).log_prob(images).flatten(1).sum(1)
    torch.manual_seed(0)
    eps = torch.randn(5, 1, 2)
    # z = eps * exp(log_std) is 0 to float precision, so log p(z) - log q(z|x) = sum (eps^2 / 2 + log_std)
    expected = log_px + (0.5 * eps.squeeze(1) ** 2 + log_std).sum(1)
    torch.manual_seed(0)
    assert torch.allclose(model.iwae_bound(images, 1), expected, atol=1e-3)


# --- KL warm-up -------------------------------------------------------------------------------------


class RecordSteps(L.Callback):
    """The training step's returned terms, batch by batch."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append({name: float(value) for name, value in outputs.items()})


def test_kl_warmup_ramps_the_training_weight_and_leaves_validation_at_beta(mnist_dir):
    torch.manual_seed(0)
    model = make_vae(image_shape=(1, 28, 28), beta=2.0, kl_warmup_steps=4)
    record = RecordSteps()
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=6,
        limit_val_batches=2,
        callbacks=[record],
        accelerator="cpu",
        **quiet,
    )
    trainer.fit(model, datamodule=make_datamodule("mnist", data_dir=mnist_dir, batch_size=16, val_size=50))
    for step, terms in enumerate(record.steps):
        weight = 2.0 * min(1.0, step / 4)  # 0, 0.5, 1, 1.5, 2, 2
        assert terms["loss"] == pytest.approx(terms["recon"] + weight * terms["kl"], rel=1e-5)
    metrics = trainer.callback_metrics
    assert float(metrics["val/loss"]) == pytest.approx(
        float(metrics["val/recon"]) + 2.0 * float(metrics["val/kl"]), rel=1e-5
    )
    with pytest.raises(ConfigError, match="model.kl_warmup_steps"):
        make_vae(kl_warmup_steps=-1)


# --- the ex-post Gaussian mixture prior -------------------------------------------------------------

CENTRES = torch.tensor([[-6.0, 0.0], [0.0, 6.0], [6.0, -6.0]])


def three_clusters(n: int = 600) -> torch.Tensor:
    noise = 0.3 * torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    return CENTRES.repeat(n // 3, 1) + noise


def test_mixture_fits_clusters_and_samples_them():
    prior = GaussianMixture(latent_dim=2, components=3, fit_images=None)
    assert not prior.fitted
    prior.fit(three_clusters())
    assert bool(prior.fitted) and torch.allclose(prior.weights, torch.full((3,), 1 / 3), atol=1e-3)
    z = prior.sample(3000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(z, CENTRES).min(dim=1)
    assert nearest.values.max() < 2.5 and torch.bincount(nearest.indices).min() > 800
    assert torch.equal(z, prior.sample(3000, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="model.prior.components"):
        GaussianMixture(latent_dim=2, components=5, fit_images=None).fit(torch.randn(4, 2))
    with pytest.raises(ConfigError, match="model.prior.fit_images"):
        GaussianMixture(latent_dim=2, components=5, fit_images=3)
    # its log density is the mixture's once fitted, N(0, I)'s before
    z = torch.randn(6, 2)
    fresh = GaussianMixture(latent_dim=2, components=3, fit_images=None)
    assert torch.allclose(fresh.log_prob(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1))
    assert torch.allclose(prior.log_prob(z), prior.distribution().log_prob(z))


def test_gmm_prior_samples_from_n01_until_fitted_then_from_the_mixture(tmp_path):
    datamodule = make_datamodule("mnist", data_dir=write_grey_mnist(tmp_path), val_size=20)
    mixture = prior("gaussian_mixture", components=3)
    model = make_vae(image_shape=(1, 28, 28), latent_dim=2, prior=mixture).train()
    standard = make_vae(image_shape=(1, 28, 28), latent_dim=2)
    seeded = torch.Generator().manual_seed
    assert torch.equal(model.sample_latent(5, seeded(0)), standard.sample_latent(5, seeded(0)))
    assert "prior.means" in model.state_dict() and "prior.means" not in standard.state_dict()
    rng = torch.get_rng_state()
    subset = posterior_means(model, datamodule, max_images=20)  # a fixed subset of 20 of the 40
    assert len(subset) == 20 and torch.equal(subset, posterior_means(model, datamodule, max_images=20))
    fit_prior(model.prior, model, datamodule)  # all 40 (fewer than fit_images)
    assert torch.equal(torch.get_rng_state(), rng)  # the run's random streams are left alone
    assert model.training and model.encoder.training  # modes restored
    assert bool(model.prior.fitted)
    with torch.no_grad():
        means = model.encode(datamodule.to_model_range(datamodule.split_images("train")))
    z = model.sample_latent(2000, seeded(0))
    assert not torch.equal(z[:5], standard.sample_latent(5, seeded(0)))
    assert torch.allclose(z.mean(0), means.mean(0), atol=0.1 * means.std(0).max() + 0.01)
    assert model.sample(3, seeded(0)).shape == (3, 1, 28, 28)
    model.prior.reset()  # as FitLatentPrior does when training starts
    assert torch.equal(model.sample_latent(5, seeded(0)), standard.sample_latent(5, seeded(0)))
    with pytest.raises(ConfigError, match="model.prior"):
        make_vae(prior="vamp")


# --- the switches in whole runs ------------------------------------------------------------------------


def test_short_fit_with_every_switch_on(make_cfg, tmp_path, one_thread):
    grey = write_grey_mnist(tmp_path / "grey", n_train=300, n_test=20)  # binarised afresh every batch
    cfg = make_cfg(*ALL_SWITCHES, f"data.data_dir={grey}", "trainer.max_epochs=1", "logger=csv")
    assert finite(train(cfg))
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    best = next((Path(cfg.paths.output_dir) / "checkpoints").glob("epoch_*.ckpt"))
    for path in (last, best):  # both hold a fitted mixture (of the same, final weights here)
        assert bool(torch.load(path, weights_only=True)["state_dict"]["prior.fitted"])
    model = load_model(last)
    assert isinstance(model.prior, GaussianMixture) and bool(model.prior.fitted)
    datamodule = checkpoint_datamodule(last, model)
    assert datamodule.binarize == "dynamic"  # evaluate.py measures the fixed binarisation
    test = datamodule.to_model_range(datamodule.split_images("test")[:8])
    assert set(test.unique().tolist()) <= {0.0, 1.0}
    assert torch.isfinite(model.iwae_bound(test, 4)).all()
    z = model.sample_latent(4, torch.Generator().manual_seed(0))
    assert torch.equal(z, model.prior.sample(4, torch.Generator().manual_seed(0)))
    # while training, the pictures' fixed latents came from N(0, I), as a prior=standard run's
    state = torch.load(last, weights_only=True)["callbacks"]
    latents = next(value["latents"] for key, value in state.items() if key.startswith("SampleGrid"))
    assert torch.equal(latents, torch.randn(64, 20, generator=torch.Generator().manual_seed(0)))
    # a prior=standard_normal checkpoint loads with a mixture prior: unfitted, to fit ex post
    plain = make_cfg("trainer.max_steps=2", "logger=none", "callbacks=[model_checkpoint]")
    with open_dict(plain):
        plain.paths.output_dir = str(Path(cfg.paths.output_dir).parent / "plain")
    train(plain)
    standard = Path(plain.paths.output_dir) / "checkpoints" / "last.ckpt"
    ex_post = VAE.load_from_checkpoint(
        standard, weights_only=True, prior=prior("gaussian_mixture", components=3)
    )
    assert not bool(ex_post.prior.fitted)
    fit_prior(ex_post.prior, ex_post, checkpoint_datamodule(standard, ex_post))
    assert bool(ex_post.prior.fitted)


def test_short_fit_with_a_calibrated_gaussian(make_cfg, one_thread):
    cfg = make_cfg("likelihood=calibrated_sigma_gaussian", "trainer.max_epochs=1", "logger=none")
    metrics = train(cfg)
    assert finite(metrics)
    state = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert (
        0 < float(state["state_dict"]["likelihood.calibrated_mse"]) < 1
    )  # calibrated away from its start, sigma 1


def test_resume_with_every_switch_on_is_exact(make_cfg, tmp_path, one_thread):
    # The binarisation draws from the run's RNG (restored on resume), the warm-up reads the step counter,
    # and the mixture is refitted to the final weights in both runs.
    grey = write_grey_mnist(tmp_path / "grey", n_train=300, n_test=20)  # binarised afresh every batch

    # monitor=null: Lightning 2.6 rewrites last.ckpt only when it saves a top-k checkpoint, so with the
    # monitored val/loss an epoch that does not improve it (the warm-up's) would leave last.ckpt behind.
    common = ("seed=7", "logger=none", "callbacks=[model_checkpoint]", f"data.data_dir={grey}")
    common += ("callbacks.model_checkpoint.monitor=null",)

    def in_dir(run: str, *overrides: str):
        cfg = make_cfg(*ALL_SWITCHES, *common, *overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / run)
        return cfg

    train(in_dir("straight", "trainer.max_epochs=2"))
    train(in_dir("stopped", "trainer.max_epochs=1"))
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    train(in_dir("stopped", "trainer.max_epochs=2", f"ckpt_path={last}"))
    assert_same_run(tmp_path / "straight" / "checkpoints" / "last.ckpt", last)
