"""evaluate.py end to end on tiny fake-data checkpoints, and its errors for bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from helpers import SMALL_EVAL, TINY_FLOW, write_fake_mnist
from omegaconf import open_dict
from PIL import Image

from genlab.checkpoints import load_model
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.evaluate import evaluate, run
from genlab.metrics import classifier
from genlab.metrics.likelihood import bits_per_dim_scores
from genlab.train import train

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
TINY_TRAINING = (
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "logger=none",
)


pytestmark = pytest.mark.usefixtures("one_thread")


def trained_checkpoint(make_cfg, *overrides: str, run: str = "run") -> Path:
    """Train a tiny run on the fake data into tmp_path/<run> and return its last.ckpt."""
    cfg = make_cfg(*TINY_TRAINING, *overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path(cfg.paths.output_dir).with_name(run))
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def test_evaluate_a_vae_then_a_gan_end_to_end(make_cfg, eval_cfg, capsys):
    vae_ckpt = trained_checkpoint(make_cfg)
    result = evaluate(eval_cfg(f"ckpt_path={vae_ckpt}", *SMALL_EVAL))
    written = json.loads((vae_ckpt.parents[1] / "metrics.json").read_text())
    assert written == json.loads(json.dumps(result))
    metrics, protocol = written["metrics"], written["protocol"]
    for name in (
        "fid",
        "kid_mean",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
        "class_entropy",
        "test_recon",
        "test_elbo",
        "iwae",
        "iwae_images_elbo",
        "classifier_test_accuracy",
    ):
        assert isinstance(metrics[name], float), name
    assert len(metrics["class_histogram"]) == 10 and sum(metrics["class_histogram"]) == pytest.approx(1.0)
    assert metrics["fid"] > 0 and metrics["iwae"] >= metrics["iwae_images_elbo"] - 1.0
    assert set(metrics["real_floor"]) >= {"fid", "kid_mean", "precision", "coverage", "class_histogram"}
    assert protocol["n_samples"] == 6 and protocol["reference"]["split"] == "test"
    assert protocol["reference"]["n_images"] == 6 and protocol["dataset"] == "mnist"
    assert protocol["feature_net_sha256"].startswith("7ff4a85c") and "299" in protocol["resize"]
    assert "variance 1/2" in protocol["likelihood"]
    assert "fid" in capsys.readouterr().out
    # the grid of the measured samples, beside metrics.json: 6 digits of 28 px in one row, 2 px apart
    assert Image.open(vae_ckpt.parents[1] / "samples.png").size == (6 * 30 + 2, 32)
    # reconstructions by both posterior methods on the same 6 test images, and the probe of the means
    reconstruction = metrics["reconstruction"]
    assert list(reconstruction["methods"]) == ["posterior mean", "posterior sample"]
    assert reconstruction["protocol"]["n_images"] == 6
    for scores in reconstruction["methods"].values():
        assert 0 < scores["mse"] < 1 and 0 <= scores["label_kept"] <= 1 and -1 <= scores["ssim"] <= 1
        assert scores["psnr"] == pytest.approx(-10 * math.log10(scores["mse"]), abs=3)
    probe = metrics["latent_probe"]["methods"]
    assert list(probe) == ["pixels", "posterior mean"]
    assert probe["posterior mean"]["dim"] == 20 and probe["pixels"]["dim"] == 784
    assert probe["pixels"]["n_train"] == 20 and probe["pixels"]["n_test"] == 6

    gan_ckpt = trained_checkpoint(make_cfg, "model=gan", run="gan_run")
    out = gan_ckpt.parent / "gan_metrics.json"
    gan = evaluate(eval_cfg(f"ckpt_path={gan_ckpt}", f"out={out}", "classifier=false", *SMALL_EVAL))
    assert json.loads(out.read_text())["protocol"]["model"] == "GAN"
    assert (gan_ckpt.parent / "gan_metrics_samples.png").is_file()
    assert "iwae" not in gan["metrics"] and "class_histogram" not in gan["metrics"]
    # the GAN reconstructs by inversion (3 steps here), its latents probed like the VAE's
    assert list(gan["metrics"]["reconstruction"]["methods"]) == ["inversion"]
    assert gan["metrics"]["reconstruction"]["methods"]["inversion"]["settings"]["steps"] == 3
    assert gan["metrics"]["latent_probe"]["methods"]["inversion"]["dim"] == 100
    # The real-vs-real floor used the cached reference features: the same numbers for both models.
    assert gan["metrics"]["real_floor"]["fid"] == pytest.approx(metrics["real_floor"]["fid"])


def test_a_non_genlab_checkpoint_is_a_clear_error(eval_cfg, tmp_path, capsys):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not a genlab VAE or GAN checkpoint"):
        evaluate(eval_cfg(f"ckpt_path={foreign}"))
    with pytest.raises(SystemExit) as exit_info:
        run(eval_cfg(f"ckpt_path={tmp_path / 'missing.ckpt'}"))
    assert exit_info.value.code == 1
    assert "error: ckpt_path=" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="ckpt_path is missing"):
        evaluate(eval_cfg())


def test_bad_sizes_and_mismatched_data_are_clear_errors(make_cfg, eval_cfg, imagenette_dir):
    ckpt = trained_checkpoint(make_cfg)
    # an explicit size is checked as given; the default (null) would scale down to the 8 samples
    with pytest.raises(ConfigError, match="kid.subset_size=1000 is invalid.*8 generated.*raise n_samples"):
        evaluate(eval_cfg(f"ckpt_path={ckpt}", "n_samples=8", "kid.subset_size=1000"))
    with pytest.raises(ConfigError, match="vae.iwae_n_images=0 is invalid.*positive integer"):
        evaluate(eval_cfg(f"ckpt_path={ckpt}", *SMALL_EVAL, "vae.iwae_n_images=0"))
    with pytest.raises(DataError, match=r"gives images \[3, 64, 64\].*\[1, 28, 28\]"):
        evaluate(
            eval_cfg(
                f"ckpt_path={ckpt}",
                "+data._target_=genlab.data.ImagenetteDataModule",
                f"data.data_dir={imagenette_dir}",
                "data.image_size=64",
            )
        )


class PooledPixels(torch.nn.Module):
    """A stand-in for Inception that costs nothing: 4x4 average-pooled pixels; counts the images it saw."""

    sha256 = "pooled-pixels"

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen += len(images)
        return torch.nn.functional.adaptive_avg_pool2d(images.float(), 4).flatten(1)


@pytest.fixture
def pooled_pixels(monkeypatch) -> PooledPixels:
    extractor = PooledPixels()
    monkeypatch.setattr("genlab.evaluate.shared_inception", lambda: extractor)
    return extractor


def test_default_sizes_scale_with_n_and_the_protocol_records_them(
    make_cfg, eval_cfg, tmp_path, pooled_pixels
):
    ckpt = trained_checkpoint(make_cfg)
    data = write_fake_mnist(tmp_path / "mnist", n_train=300, n_test=200)  # 250 train images after val
    common = (f"ckpt_path={ckpt}", f"data.data_dir={data}", "classifier=false", "vae.iwae_k=2")
    result = evaluate(eval_cfg(*common, "n_samples=200", "reference.n_images=200", "batch_size=100"))
    protocol = result["protocol"]
    assert protocol["kid"]["subset_size"] == 200 and protocol["nearest_k"] == 5
    assert protocol["reference"]["n_images"] == 200 and protocol["n_samples"] == 200
    # the VAE bounds: all 200 test images (n_test_images null), IWAE on min(1000, 200) of them
    assert protocol["test_images"] == 200 and protocol["iwae_n_images"] == 200
    assert isinstance(result["metrics"]["kid_mean"], float) and isinstance(result["metrics"]["iwae"], float)
    # n is the smaller set; counts larger than the split are capped at it
    result = evaluate(
        eval_cfg(
            *common, "n_samples=40", "reference.n_images=60", "vae.n_test_images=5000", "vae.iwae_n_images=30"
        )
    )
    protocol = result["protocol"]
    assert protocol["kid"]["subset_size"] == 40 and protocol["reference"]["n_images"] == 60
    assert protocol["test_images"] == 200 and protocol["iwae_n_images"] == 30


def test_caches_are_found_by_content_and_the_data_folder_is_never_written(
    make_cfg, eval_cfg, tmp_path, monkeypatch, pooled_pixels
):
    ckpt = trained_checkpoint(make_cfg)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = write_fake_mnist(tmp_path / "data")
    listing = {path: path.stat().st_mtime_ns for path in data.rglob("*")}
    folders = [data, *(path for path in listing if path.is_dir())]
    common = (f"ckpt_path={ckpt}", "cache_dir=null", *SMALL_EVAL)
    for folder in folders:  # a read-only (shared) data folder
        folder.chmod(0o555)
    try:
        evaluate(eval_cfg(*common, f"data.data_dir={data}"))
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert {path: path.stat().st_mtime_ns for path in data.rglob("*")} == listing
    cache = tmp_path / "xdg" / "genlab"
    built = sorted(path.name for path in cache.iterdir())
    assert len([name for name in built if name.startswith("reference_mnist_")]) == 2  # reference and floor
    assert len([name for name in built if name.startswith("mnist_classifier_")]) == 2  # net and record

    # The same files through per-file symlinks, and copied (new paths, new mtimes): nothing is rebuilt.
    farm = tmp_path / "farm" / "MNIST" / "raw"
    farm.mkdir(parents=True)
    for file in (data / "MNIST" / "raw").iterdir():
        (farm / file.name).symlink_to(file)
    copy = shutil.copytree(data, tmp_path / "copy")
    monkeypatch.setattr(classifier, "train_classifier", lambda *args, **kwargs: pytest.fail("retrained"))
    for other in (farm.parents[1], copy):
        seen = pooled_pixels.seen
        result = evaluate(eval_cfg(*common, f"data.data_dir={other}"))
        assert pooled_pixels.seen - seen == 6  # only the samples: the real features came from the cache
        assert sorted(path.name for path in cache.iterdir()) == built
        assert result["protocol"]["data_dir"] == str(other.resolve())
        assert Path(result["protocol"]["reference"]["cache"]).parent == cache


def test_a_flow_reports_its_sampler_cost_and_bits_per_dim(make_cfg, eval_cfg, pooled_pixels, capsys):
    ckpt = trained_checkpoint(make_cfg, *TINY_FLOW)
    bits = ("likelihood.n_images=4", "likelihood.batch_size=3")
    result = evaluate(eval_cfg(f"ckpt_path={ckpt}", *SMALL_EVAL, *bits, "sampler.nfe=4", "classifier=false"))
    metrics, protocol = result["metrics"], result["protocol"]
    assert json.loads((ckpt.parents[1] / "metrics.json").read_text()) == json.loads(json.dumps(result))
    sampling = protocol["sampling"]
    assert {key: sampling[key] for key in ("method", "nfe", "device")} == {
        "method": "euler",
        "nfe": 4,
        "device": "cpu",
    }
    assert sampling["seconds_per_1000_samples"] > 0
    assert protocol["generator_weights"] == "ema"  # conf/model/flow.yaml's ema_decay
    # uniform dequantisation of 8-bit images: at least 0 bits, near 8 for an untrained flow
    assert 0 < metrics["bits_per_dim"] < 20 and metrics["bits_per_dim_se"] > 0
    exact = protocol["exact_likelihood"]
    assert exact["n_images"] == 4 and exact["nfe_per_batch"] == 4 and exact["trace"] == "hutchinson"
    assert "change of variables" in exact["description"] and "euler" in exact["description"]
    out = capsys.readouterr().out
    assert "sampling: euler, nfe 4:" in out and "bits/dim:" in out
    assert "iwae" not in metrics  # no VAE bounds

    # the same seed and batch size: the same dequantisation noise and trace vectors, the same number
    model, test = load_model(ckpt), torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    first, _ = bits_per_dim_scores(model, test, batch_size=2, seed=3)
    assert bits_per_dim_scores(model, test, batch_size=2, seed=3)[0] == first
    assert bits_per_dim_scores(model, test, batch_size=2, seed=4)[0] != first

    # ema=false draws from the trained net; the checkpoint's sampler; exact=false skips bits/dim
    common = (f"ckpt_path={ckpt}", *SMALL_EVAL, "classifier=false", "likelihood.exact=false")
    common += (f"out={ckpt.parent / 'x.json'}",)
    trained = evaluate(eval_cfg(*common, "ema=false"))
    assert trained["protocol"]["generator_weights"] == "trained"
    assert trained["protocol"]["sampling"]["nfe"] == 2
    assert "bits_per_dim" not in trained["metrics"] and "exact_likelihood" not in trained["protocol"]


def test_sampler_and_likelihood_settings_of_a_model_without_them(make_cfg, eval_cfg, pooled_pixels, capsys):
    ckpt = trained_checkpoint(make_cfg)
    with pytest.raises(SystemExit) as exit_info:
        run(eval_cfg(f"ckpt_path={ckpt}", "sampler.nfe=10"))
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "error: sampler={'nfe': 10} is invalid" in error and "one forward pass" in error
    with pytest.raises(ConfigError, match=r"likelihood.exact=true is invalid: VAE has no exact.*model=flow"):
        evaluate(eval_cfg(f"ckpt_path={ckpt}", "likelihood.exact=true"))
    with pytest.raises(ConfigError, match="likelihood.exact='always' is invalid"):
        evaluate(eval_cfg(f"ckpt_path={ckpt}", "likelihood.exact=always"))
    result = evaluate(eval_cfg(f"ckpt_path={ckpt}", *SMALL_EVAL, "classifier=false"))
    assert result["protocol"]["sampling"]["method"] == "one forward pass"
    assert result["protocol"]["sampling"]["nfe"] == 1 and "bits_per_dim" not in result["metrics"]
