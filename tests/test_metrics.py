"""Metrics: the Inception features, FID/KID, precision/recall, the VAE bounds and the digit classifier."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import make_datamodule, model_args, net_config, part, write_idx

from genlab.errors import ConfigError
from genlab.metrics import classifier, distribution, likelihood
from genlab.metrics.inception import FeatureNetError, InceptionFeatures, shared_inception, to_uint8
from genlab.metrics.reference import reference_features
from genlab.models import VAE

MLP_ENCODER = net_config("vae_mnist", "encoder", hidden_dims=[32])
MLP_DECODER = net_config("vae_mnist", "decoder", hidden_dims=[32])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    return shared_inception()  # cached: loaded once per test session


def test_inception_features_are_deterministic_2048d_and_grey_means_repeated(inception):
    grey = torch.randint(
        0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    first = inception(grey)
    # The same images as RGB floats in [0, 1]: quantised and repeated the same way, so the same features.
    second = inception(grey.expand(-1, 3, -1, -1).float() / 255)
    assert first.shape == (2, 2048)
    assert torch.allclose(first, second, atol=1e-5)
    assert not torch.allclose(first[0], first[1])


def test_inception_rejects_a_wrong_file(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception net")
    with pytest.raises(FeatureNetError, match="sha256"):
        InceptionFeatures(fake)


def test_to_uint8_rounds():
    assert to_uint8(torch.tensor([0.0, 0.5, 1.0, 1.2, -0.1])).tolist() == [0, 128, 255, 255, 0]


def features(n: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_fid_is_zero_on_itself_and_the_squared_shift_for_a_shifted_copy():
    real = features(200)
    assert distribution.fid(real, real) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, mean moved by s in each of 8 dimensions: FID = |shift|^2 = 8 s^2.
    assert distribution.fid(real, real + 0.5) == pytest.approx(8 * 0.25, rel=1e-4)
    assert distribution.fid(real, real + 1.0) == pytest.approx(8 * 1.0, rel=1e-4)


def test_fid_agrees_with_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    # Correlated features, as Inception's are, and a fake set with another covariance and mean.
    real = features(400, dim=16) @ features(16, dim=16, seed=2)
    fake = features(300, dim=16, seed=1) @ features(16, dim=16, seed=3) + 0.3
    metric = FrechetInceptionDistance(feature=distribution.PrecomputedFeatures(16))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    assert distribution.fid(real, fake) == pytest.approx(float(metric.compute()), rel=1e-6)
    assert distribution.fid(real.float(), fake.float()) == pytest.approx(float(metric.compute()), rel=1e-4)


def test_kid_is_near_zero_for_the_same_distribution_and_grows_with_a_shift():
    real, other = features(300).float(), features(300, seed=1).float()
    same_mean, same_std = distribution.kid(real, other, subsets=20, subset_size=100)
    shifted_mean, _ = distribution.kid(real, other + 1.0, subsets=20, subset_size=100)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 10 * max(same_std, 1e-3)
    assert distribution.kid(real, other, subsets=20, subset_size=100) == (
        same_mean,
        same_std,
    )  # seeded subsets


def test_kid_subset_larger_than_a_set_is_a_clear_error():
    with pytest.raises(ConfigError, match="kid_subset_size=50.*10 generated"):
        distribution.kid(features(100).float(), features(10).float(), subsets=5, subset_size=50)


def test_precision_recall_on_constructed_point_sets():
    grid = torch.stack(torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij"), -1).flatten(0, 1)
    same = distribution.precision_recall(grid, grid.clone(), nearest_k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = distribution.precision_recall(grid, grid + 100.0, nearest_k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # Half of the generated points on every other grid column, half far away: precision 1/2; each real
    # point lies 1 away from a near generated one, inside its own 5-NN radius (>= sqrt 2): coverage 1.
    half = torch.cat([grid[::2], grid[1::2] + 100.0])
    mixed = distribution.precision_recall(grid, half, nearest_k=5)
    assert mixed["precision"] == 0.5
    assert mixed["coverage"] == 1.0


def tiny_vae(name: str, images: torch.Tensor | None = None, steps: int = 0) -> VAE:
    """A 6x6-pixel VAE, trained `steps` Adam steps on `images` (so that its posterior matters)."""
    torch.manual_seed(0)
    args = model_args("vae", encoder=MLP_ENCODER, decoder=MLP_DECODER, image_shape=[1, 6, 6], latent_dim=2)
    model = VAE(**args | {"likelihood": part("likelihood", name)})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model.loss(images)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_mse_likelihood_is_a_gaussian_with_variance_one_half():
    model = tiny_vae("fixed_gaussian")
    images, logits = torch.rand(3, 1, 6, 6), torch.randn(3, 1, 6, 6)
    expected = (
        torch.distributions.Normal(torch.sigmoid(logits), math.sqrt(0.5)).log_prob(images).flatten(1).sum(1)
    )
    assert torch.allclose(model.log_likelihood(logits, images), expected, atol=1e-4)


@pytest.mark.parametrize("name", ["fixed_gaussian", "bernoulli"])
def test_iwae_bound_is_above_the_elbo_and_tightens_with_k(name):
    images = (torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    model = tiny_vae(name, images, steps=100)
    # A posterior 7x narrower than the learned one: a poor proposal, so more samples visibly help.
    posterior = model.posterior
    model.posterior = lambda x: (posterior(x)[0], posterior(x)[1] - 4.0)
    torch.manual_seed(0)
    elbo = model.elbo(images, n_samples=20).mean()
    bounds = [model.iwae_bound(images, k).mean() for k in (1, 10, 200)]
    assert bounds[0] == pytest.approx(float(elbo), abs=0.5)  # k=1 is a one-sample ELBO
    assert elbo < bounds[1] < bounds[2]
    scores = likelihood.likelihood_scores(model, images, images[:8], iwae_k=50)
    assert scores["iwae"] > scores["test_elbo"]
    assert scores["test_recon"] > 0 and 0 < scores["test_mse_per_pixel"] < 1


class BatchRecorder(torch.nn.Module):
    """A stand-in VAE that records how many images each bound sees at a time."""

    def __init__(self):
        super().__init__()
        self.sizes = {"elbo": [], "iwae": []}

    def reconstruction_error(self, images):
        return images.flatten(1).mean(1)

    def reconstruct(self, images):
        return images

    def elbo(self, images):
        self.sizes["elbo"].append(len(images))
        return images.flatten(1).mean(1)

    def iwae_bound(self, images, k):
        self.sizes["iwae"].append(len(images))
        return images.flatten(1).mean(1)


@pytest.mark.parametrize(
    ("shape", "elbo_batch", "iwae_batch"), [((1, 28, 28), 500, 10), ((3, 64, 64), 33, 1)]
)
def test_likelihood_batches_shrink_with_the_image_size(shape, elbo_batch, iwae_batch):
    """MNIST keeps its batches (and so its seeded draws); 64 px RGB images pass 15x fewer at a time."""
    model = BatchRecorder()
    likelihood.likelihood_scores(model, torch.zeros(600, *shape), torch.zeros(20, *shape), iwae_k=5)
    assert max(model.sizes["elbo"]) == elbo_batch and max(model.sizes["iwae"]) == iwae_batch


def test_class_histogram_and_entropy():
    histogram, entropy = classifier.class_histogram(torch.tensor([0, 0, 3, 3]))
    assert histogram == [0.5, 0, 0, 0.5, 0, 0, 0, 0, 0, 0]
    assert entropy == pytest.approx(math.log(2))
    assert classifier.class_histogram(torch.arange(10))[1] == pytest.approx(classifier.MAX_ENTROPY)


def write_bar_digits(root, n_train: int = 300, n_test: int = 100):
    """Fake MNIST whose label is learnable: digit d is a bright horizontal bar at row 2d + 4, plus noise."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = (rng.random((n, 28, 28)) < 0.1) * 120
        images[np.arange(n), 2 * labels + 4, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images.astype(np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return root


def test_classifier_trains_on_fake_digits_and_is_cached(tmp_path, monkeypatch):
    datamodule = make_datamodule("mnist", data_dir=write_bar_digits(tmp_path / "data"), val_size=50)
    recipe = {
        **classifier.RECIPE,
        "epochs": 6,
        "lr": 2e-2,
        "net": {**classifier.RECIPE["net"], "channels": [4, 8, 8]},
        "batch_size": 32,
    }
    net, record = classifier.load_or_train(datamodule, tmp_path, recipe)
    (record_file,) = tmp_path.glob(f"mnist_classifier_v{recipe['version']}_seed0_*.json")
    assert json.loads(record_file.read_text()) == record
    assert record["data_fingerprint"] == datamodule.fingerprint(tmp_path)
    assert record["train_images"] == 250 and record["test_images"] == 100
    assert record["test_accuracy"] > 0.9
    monkeypatch.setattr(classifier, "train_classifier", lambda *args, **kwargs: pytest.fail("retrained"))
    cached, cached_record = classifier.load_or_train(datamodule, tmp_path, recipe)
    assert cached_record == record
    assert torch.equal(
        classifier.predict(cached, datamodule.split_images("test")),
        classifier.predict(net, datamodule.split_images("test")),
    )


class CountingFeatures(torch.nn.Module):
    """A stand-in feature net: the mean pixel, repeated; counts the images it saw."""

    num_features = 2048
    sha256 = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen += len(images)
        return images.float().mean((1, 2, 3), keepdim=False)[:, None].expand(-1, 2048)


def test_reference_features_are_cached_and_keyed(mnist_dir, tmp_path):
    datamodule = make_datamodule("mnist", data_dir=mnist_dir, val_size=50)
    extractor = CountingFeatures()
    first, key = reference_features(datamodule, "test", 20, extractor, tmp_path, seed=0, batch_size=50)
    again, _ = reference_features(datamodule, "test", 20, extractor, tmp_path, seed=0, batch_size=50)
    assert extractor.seen == 20 and torch.equal(first, again)
    assert key["split"] == "test" and key["n_images"] == 20 and key["feature_net_sha256"] == "counting"
    reference_features(
        datamodule, "test", 30, extractor, tmp_path, seed=0, batch_size=50
    )  # another size: recomputed
    reference_features(
        datamodule, "train", 20, extractor, tmp_path, seed=0, batch_size=50
    )  # another split: recomputed
    assert extractor.seen == 70
