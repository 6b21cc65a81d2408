"""Reconstruction for every model: GAN inversion, the GAN encoder, the metrics, the protocol's fixed images,
the linear probe, and their errors."""

from __future__ import annotations

import pytest
import torch
from helpers import SMALL_EVAL, make_datamodule, model_args, net_config
from omegaconf import open_dict
from PIL import Image
from test_evaluate import trained_checkpoint
from test_generate import generate_cfg

from genlab.checkpoints import load_model
from genlab.errors import ConfigError
from genlab.evaluate import evaluate
from genlab.generate import generate
from genlab.metrics.probe import linear_probe
from genlab.metrics.reconstruction import PSNR_CAP, pixel_scores, summarise
from genlab.models import GAN, VAE
from genlab.models.gan_encoder import GANEncoder, generator_fingerprint
from genlab.models.inversion import InversionSettings, learning_rate, project
from genlab.modes import sampling_mode
from genlab.reconstruction import available_methods, check_methods, fixed_images, with_encoder
from genlab.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def small_gan(latent_dim: int = 8) -> GAN:
    torch.manual_seed(0)
    args = model_args("gan", image_shape=[1, 28, 28], latent_dim=latent_dim)
    args["generator"] = {**args["generator"], "hidden_dims": [64]}
    args["discriminator"] = {**args["discriminator"], "hidden_dims": [64]}
    gan = GAN(**args)
    # weights large enough that G(z) depends on every coordinate of z (a fresh MLP's output is near constant)
    with torch.no_grad():
        for parameter in gan.generator.parameters():
            parameter.mul_(3.0)
    return gan


def test_inversion_recovers_a_known_z():
    gan = small_gan()
    z = gan.sample_latent(6, torch.Generator().manual_seed(1))
    with sampling_mode(gan):
        targets = gan.to_unit(gan.generate(z))
        found, distance = project(gan, targets, mse, InversionSettings(steps=300, restarts=2, batch_size=4))
        start = mse(gan.to_unit(gan.generate(torch.zeros_like(z))), targets)
    # G(z) is matched 100x closer than from the mean start, and z itself is found
    assert torch.all(distance < start / 100)
    assert torch.allclose(distance, mse(gan.to_unit(gan.generate(found)), targets))
    assert ((found - z).norm(dim=1) / z.norm(dim=1)).max() < 0.1
    assert all(p.requires_grad for p in gan.parameters())  # the weights' flags are restored
    assert all(p.grad is None for p in gan.parameters())  # and only z was optimised


def test_the_learning_rate_ramps_up_then_down():
    settings = InversionSettings(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25)
    assert learning_rate(settings, 0.0) == 0.0
    assert learning_rate(settings, 0.025) == pytest.approx(0.05)
    assert learning_rate(settings, 0.5) == pytest.approx(0.1)
    assert learning_rate(settings, 0.875) == pytest.approx(0.05)


def test_metrics_on_known_cases():
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    same = pixel_scores(images, images.clone())
    assert torch.all(same["mse"] == 0) and torch.all(same["psnr"] == PSNR_CAP)
    assert torch.allclose(same["ssim"], torch.ones(4))
    shifted = (images + 0.1).clamp(0, 1)
    scores = pixel_scores(images, shifted)
    expected = (images - shifted).pow(2).flatten(1).mean(1)
    assert torch.allclose(scores["mse"], expected)
    assert torch.allclose(scores["psnr"], -10 * torch.log10(expected), atol=1e-4)
    assert torch.all(scores["ssim"] < 1)
    summary = summarise({"mse": torch.tensor([1.0, 3.0])})
    assert summary == {"mse": 2.0, "mse_se": pytest.approx(1.0)}


def test_the_protocol_images_are_fixed_and_bounded(mnist_dir):
    datamodule = make_datamodule("mnist", data_dir=mnist_dir, val_size=50)
    first, labels = fixed_images(datamodule, "test", 10, 0, 500, "reconstruction.n_images")
    again, _ = fixed_images(datamodule, "test", 10, 0, 500, "reconstruction.n_images")
    assert torch.equal(first, again) and len(labels) == 10
    assert not torch.equal(first, fixed_images(datamodule, "test", 10, 1, 500, "key")[0])
    assert len(fixed_images(datamodule, "test", None, 0, 500, "key")[0]) == 100  # all 100 fake test images
    with pytest.raises(ConfigError, match=r"reconstruction.n_images=101 is invalid.*100 images of the test"):
        fixed_images(datamodule, "test", 101, 0, 500, "reconstruction.n_images")


def test_bad_inversion_requests_are_clear_errors():
    with pytest.raises(ConfigError, match="inversion.steps=0 is invalid"):
        InversionSettings(steps=0)
    with pytest.raises(ConfigError, match="inversion.stpes is not a setting"):
        InversionSettings.from_config({"stpes": 10})
    vae = VAE(**model_args("vae", image_shape=[1, 28, 28]))
    assert available_methods(vae) == ["posterior mean", "posterior sample"]
    with pytest.raises(ConfigError, match="VAE has no generator to invert"):
        check_methods(vae, ["inversion"], "reconstruction.methods")
    with pytest.raises(ConfigError, match="inversion is invalid for VAE: it has no generator to invert"):
        project(vae, torch.zeros(1, 1, 28, 28), mse, InversionSettings())
    with pytest.raises(ConfigError, match="'encoder' is not a method of GAN"):
        check_methods(small_gan(), ["encoder"], "reconstruction.methods")


def test_the_linear_probe_reads_a_separable_code():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 10
    codes = torch.nn.functional.one_hot(labels, 10).float() + 0.1 * torch.randn(200, 10, generator=generator)
    noise = torch.randn(200, 10, generator=generator)
    assert linear_probe(codes[:150], labels[:150], codes[150:], labels[150:])["accuracy"] == 1.0
    assert linear_probe(noise[:150], labels[:150], noise[150:], labels[150:])["accuracy"] < 0.5


def test_the_encoder_trains_beside_a_frozen_gan_and_is_found_by_evaluate_and_generate(
    make_cfg, eval_cfg, mnist_dir, tmp_path, capsys
):
    gan_ckpt = trained_checkpoint(make_cfg, "model=gan", run="gan")
    gan = load_model(gan_ckpt)
    cfg = make_cfg(
        "experiment=best_mnist_gan_encoder",
        f"model.gan_ckpt={gan_ckpt}",
        "trainer.max_epochs=2",
        "+trainer.limit_train_batches=3",
        "+trainer.limit_val_batches=1",
        "logger=none",
    )
    # the preset's run folder is the GAN run's encoder/ folder (test runs set their own)
    assert cfg.hydra.run.dir == str(gan_ckpt.parents[1] / "encoder")
    with open_dict(cfg):
        cfg.paths.output_dir = str(gan_ckpt.parents[1] / "encoder")
    train(cfg)
    encoder_ckpt = gan_ckpt.parents[1] / "encoder" / "checkpoints" / "last.ckpt"
    encoder = load_model(encoder_ckpt)
    assert isinstance(encoder, GANEncoder) and encoder.can_encode
    # G did not move, and the checkpoint names it
    assert encoder.fingerprint == generator_fingerprint(gan)
    assert (
        torch.load(encoder_ckpt, weights_only=True)["genlab"]["generator_fingerprint"] == encoder.fingerprint
    )
    for key, value in gan.state_dict().items():
        assert torch.equal(encoder.gan.state_dict()[key], value), key
    assert available_methods(encoder) == ["encoder", "inversion", "encoder + inversion"]
    # evaluate.py and generate.py with the GAN's checkpoint find the encoder in its run folder
    assert isinstance(with_encoder(gan, gan_ckpt, None), GANEncoder)
    out = tmp_path / "gan_metrics.json"
    result = evaluate(eval_cfg(f"ckpt_path={gan_ckpt}", f"out={out}", *SMALL_EVAL))
    methods = result["metrics"]["reconstruction"]["methods"]
    assert list(methods) == ["encoder", "inversion", "encoder + inversion"]
    assert methods["encoder"]["seconds_per_image"] < methods["inversion"]["seconds_per_image"]
    assert set(result["metrics"]["latent_probe"]["methods"]) == {"pixels", *methods}
    assert result["metrics"]["reconstruction"]["protocol"]["encoder_ckpt"] == str(encoder_ckpt)
    assert "encoder + inversion" in capsys.readouterr().out
    out = tmp_path / "pictures"
    written = generate(
        generate_cfg(
            f"ckpt_path={gan_ckpt}",
            f"out={out}",
            f"data.data_dir={mnist_dir}",
            "device=cpu",
            "n_reconstructions=16",
            "real_pairs=2",
            "inversion.steps=3",
            "inversion.restarts=1",
            "inversion.refine_steps=2",
        )
    )
    assert {"reconstructions", "interpolation_real"} <= set(written)
    # 16 test images, 8 a row, each row above its encoder, inversion and hybrid rows
    assert Image.open(out / "reconstructions.png").size == (8 * 30 + 2, 8 * 30 + 2)
    assert Image.open(out / "interpolation_real.png").size == (12 * 30 + 2, 2 * 30 + 2)
    assert "the originals, then encoder, inversion, encoder + inversion" in capsys.readouterr().out


def test_an_encoder_of_another_generator_is_refused(make_cfg, tmp_path):
    gan_ckpt = trained_checkpoint(make_cfg, "model=gan", run="gan")
    other_ckpt = trained_checkpoint(make_cfg, "model=gan", "seed=3", run="other")
    encoder = GANEncoder(
        **{**model_args("gan_encoder", gan_ckpt=str(other_ckpt)), "image_shape": [1, 28, 28]}
    )
    path = tmp_path / "encoder.ckpt"
    torch.save(
        {
            "state_dict": encoder.state_dict(),
            "hyper_parameters": dict(encoder.hparams),
            "genlab": {"_target_": "genlab.models.gan_encoder.GANEncoder", "image_shape": [1, 28, 28]},
            "pytorch-lightning_version": "2.6.0",
        },
        path,
    )
    with pytest.raises(ConfigError, match="trained for another generator"):
        with_encoder(load_model(gan_ckpt), gan_ckpt, path)
    with pytest.raises(ConfigError, match="holds a GAN, not a GAN encoder"):
        with_encoder(load_model(gan_ckpt), gan_ckpt, gan_ckpt)
    with pytest.raises(ConfigError, match="model.gan_ckpt=.* holds a VAE, not a GAN"):
        GANEncoder(
            **{
                **model_args("gan_encoder", gan_ckpt=str(trained_checkpoint(make_cfg, run="vae"))),
                "image_shape": [1, 28, 28],
            }
        )


def test_the_encoder_learns_to_invert_g():
    gan = small_gan()
    args = model_args("gan_encoder", gan_ckpt=None, gan=dict(gan.hparams), reconstruction_weight=0.0)
    encoder = GANEncoder(**{**args, "image_shape": [1, 28, 28]})
    encoder.gan.load_state_dict(gan.state_dict())
    z = encoder.sample_latent(64, torch.Generator().manual_seed(5))
    real = torch.zeros(16, 1, 28, 28)

    def latent_error() -> float:
        with sampling_mode(encoder):
            return float((encoder.encode(encoder.generate(z)) - z).pow(2).mean())

    before = latent_error()
    optimizer = torch.optim.Adam(encoder.encoder.parameters(), lr=1e-3)
    encoder.train()
    for _ in range(150):
        loss = encoder.loss(real)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert latent_error() < before / 2
    # G stayed frozen, in eval mode, and as it was
    assert not encoder.gan.training
    for key, value in gan.state_dict().items():
        assert torch.equal(encoder.gan.state_dict()[key], value), key


def test_an_encoder_without_its_gan_names_the_key():
    with pytest.raises(ConfigError, match=r"model.gan_ckpt=None is invalid: give the trained GAN"):
        GANEncoder(**{**model_args("gan_encoder"), "image_shape": [1, 28, 28]})


def test_the_fingerprint_names_g_s_weights_not_its_standing_statistics():
    args = model_args("gan", image_shape=[1, 28, 28], ema_decay=0.999, ema_standing_stats=1)
    args["generator"] = net_config("gan_mnist_dcgan", "generator", width=8, max_width=16)
    gan = GAN(**args)
    before = generator_fingerprint(gan)
    with sampling_mode(gan):  # recomputes the EMA G's BatchNorm statistics
        pass
    assert generator_fingerprint(gan) == before
    with torch.no_grad():
        next(gan.generator_ema.parameters()).add_(1.0)
    assert generator_fingerprint(gan) != before
