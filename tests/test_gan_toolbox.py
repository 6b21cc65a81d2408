"""The GAN toolbox: EMA generator, DiffAugment, R1, least squares, feature matching, the 28px
DCGAN pair and its upsampling and spectral-norm options; each alone and all of them together."""

import math

import lightning as L
import pytest
import torch
from helpers import build_model, make_net, model_args, net_config

import genlab.models.gan as gan_module
from genlab.callbacks import TrainingScalars
from genlab.checkpoints import load_model
from genlab.errors import ConfigError
from genlab.models import GAN
from genlab.models.augment import diff_augment, parse_policy
from genlab.models.losses import ADVERSARIAL_LOSSES, d_ls, feature_matching_loss, g_ls, r1_penalty
from genlab.nets.dcgan import DCGANGenerator

DISC = net_config("gan_mnist", "discriminator", hidden_dims=[16], dropout=0.0)
GEN = net_config("gan_mnist", "generator", hidden_dims=[16])
DCGAN_DISC = net_config("gan_mnist_dcgan", "discriminator", width=4)
DCGAN_GEN = net_config("gan_mnist_dcgan", "generator", width=4, upsample="nearest")
ALL_AUGMENTATIONS = "color,translation,cutout"


def make_gan(cls=GAN, **kwargs) -> GAN:
    torch.manual_seed(0)
    args = model_args("gan", generator=GEN, discriminator=DISC, image_shape=(1, 4, 4), latent_dim=3)
    return cls(**args | kwargs)


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def real_images(size: int = 4, n: int = 32) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def fit(model: GAN, batches: int, ckpt_path=None, callbacks=(), size: int = 4, **trainer_args) -> L.Trainer:
    """Train on random images in batches of 8; `batches` counts batches (Lightning counts optimiser steps)."""
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(real_images(size), torch.zeros(32)), batch_size=8
    )
    trainer = L.Trainer(
        max_steps=batches * (model.hparams.d_steps + 1),
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[TrainingScalars(), *callbacks],  # logs what training_step returns, as train.py does
        **trainer_args,
    )
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return trainer


class GeneratorAfterEachBatch(L.Callback):
    """Records the live and the EMA generator's weights after every batch."""

    def __init__(self) -> None:
        self.live, self.ema = [], []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.live.append(snapshot(pl_module.generator))
        self.ema.append(snapshot(pl_module.generator_ema.module))


# --- the 28px DCGAN pair, its upsampling and spectral-norm options ------------------------------------------


@pytest.mark.parametrize("upsample", ["transposed", "nearest", "bilinear"])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_dcgan_pair_fits_mnist_and_other_sizes_with_each_upsampling(size, upsample):
    generator = make_net(
        "gan_mnist_dcgan", "generator", latent_dim=8, image_shape=(1, size, size), width=4, upsample=upsample
    )
    critic = make_net(
        "gan_mnist_dcgan", "discriminator", image_shape=(1, size, size), out_features=1, width=4
    )
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 1, size, size) and critic(images).shape == (2, 1)
    transposed = any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules())
    assert transposed == (upsample == "transposed")


def test_dcgan_upsample_names_the_key():
    with pytest.raises(ConfigError, match="model.generator.upsample"):
        make_net(
            "gan_mnist_dcgan", "generator", latent_dim=8, image_shape=(1, 28, 28), upsample="pixelshuffle"
        )


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_dcgan_discriminator_spectral_norm_option(spectral_norm):
    critic = make_net(
        "gan_mnist_dcgan",
        "discriminator",
        image_shape=(1, 28, 28),
        out_features=1,
        width=4,
        spectral_norm=spectral_norm,
    )
    layers = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(layers) == 3
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") == spectral_norm for m in layers)


def test_dcgan_discriminator_batch_norm_after_every_conv_but_the_first():
    critic = make_net(
        "gan_mnist_dcgan",
        "discriminator",
        image_shape=(1, 32, 32),
        out_features=1,
        width=4,
        spectral_norm=False,
        batch_norm=True,
    )
    kinds = [type(m).__name__ for m in critic.features]
    assert kinds == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d", "BatchNorm2d"] + [
        "LeakyReLU",
        "Flatten",
    ]
    assert critic.features[0].bias is not None and critic.features[2].bias is None  # BatchNorm has the bias
    assert critic(torch.randn(5, 1, 32, 32)).shape == (5, 1)


def test_mnist_dcgan_preset_builds_a_28px_model(make_cfg):
    cfg = make_cfg("model=gan", "data=mnist", "nets=gan_mnist_dcgan", "model.generator.width=4")
    model = build_model(cfg)
    assert isinstance(model.generator, DCGANGenerator) and model.image_shape == (1, 28, 28)
    assert model.sample(2).shape == (2, 1, 28, 28)
    assert model.hparams.ema_decay is None and model.hparams.diffaugment == ""  # the toolbox is off


def test_toolbox_switches_compose_from_the_command_line(make_cfg):
    cfg = make_cfg(
        "model=gan",
        "data=mnist",
        "nets=gan_mnist_dcgan",
        "model.generator.width=4",
        "model.discriminator.width=4",
        "model.ema_decay=0.999",
        "model.diffaugment=[color,translation,cutout]",
        "model.r1_gamma=1.0",
        "model.loss=ls",
        "model.feature_matching=true",
    )
    model = build_model(cfg)
    assert model.diffaugment == ("color", "translation", "cutout") and model.generator_ema is not None
    assert model.hparams.diffaugment == ["color", "translation", "cutout"]  # plain, not a ListConfig


# --- EMA generator ------------------------------------------------------------------------------------------


def test_ema_follows_g_after_each_g_step_and_is_what_sampling_uses():
    model = make_gan(ema_decay=0.9)
    initial = snapshot(model.generator)
    assert same(initial, snapshot(model.generator_ema.module))  # the average starts at G's initial weights
    recorder = GeneratorAfterEachBatch()
    fit(model, batches=2, callbacks=[recorder])
    live, ema = recorder.live, recorder.ema
    for before, after, average in zip([initial, ema[0]], live, ema, strict=True):
        assert not same(average, after)  # differs from the live G ...
        expected = [0.9 * b + 0.1 * a for b, a in zip(before, after, strict=True)]  # ... and is their EMA
        assert all(torch.allclose(x, y) for x, y in zip(average, expected, strict=True))
    assert not same(ema[0], ema[1])  # it moves after every G step

    model.eval()
    z = model.sample_latent(5)
    assert torch.equal(model.generate(z), torch.tanh(model.generator_ema.module(z)))
    assert not torch.equal(model.generate(z), torch.tanh(model.generator(z)))
    drawn = model.sample(5, generator=torch.Generator().manual_seed(3))
    z = model.sample_latent(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(drawn, torch.tanh(model.generator_ema.module(z)))


def batch_norm_buffers(module: torch.nn.Module) -> list[torch.Tensor]:
    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)]
    return [b.clone() for m in norms for b in (m.running_mean, m.running_var)]


def test_ema_generator_draws_with_its_own_standing_batch_norm_statistics():
    """The live G's statistics do not fit the averaged weights: before drawing, the EMA G recomputes its
    own from fixed latents, without touching the global RNG; 0 keeps the live G's."""
    args = {"generator": DCGAN_GEN, "discriminator": DCGAN_DISC, "image_shape": (1, 16, 16), "ema_decay": 0.5}
    model = make_gan(**args, ema_standing_stats=3)
    fit(model, batches=2, size=16)
    ema = model.generator_ema.module
    assert same(batch_norm_buffers(ema), batch_norm_buffers(model.generator))  # copied while training
    model.eval()
    z = torch.randn(5, 3)
    assert torch.equal(model.generate(z), model.generate(z))  # generate() itself changes nothing
    assert same(batch_norm_buffers(ema), batch_norm_buffers(model.generator))
    rng = torch.get_rng_state()
    model.prepare_sampling()
    drawn = model.generate(z)
    assert torch.equal(torch.get_rng_state(), rng) and model.generator_ema.statistics_fresh

    expected = make_gan(**args)
    expected.generator_ema.load_state_dict(model.generator_ema.state_dict())
    expected.generator_ema.train()
    norms = [m for m in expected.generator_ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    latents = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(3):
            expected.generator_ema(torch.randn(64, 3, generator=latents))
    standing, recomputed = batch_norm_buffers(ema), batch_norm_buffers(expected.generator_ema)
    assert all(torch.allclose(a, b) for a, b in zip(standing, recomputed, strict=True))
    assert not same(standing, batch_norm_buffers(model.generator))
    assert all(norm.momentum == 0.1 for norm in ema.modules() if isinstance(norm, torch.nn.BatchNorm2d))
    model.prepare_sampling()  # computed once, until G moves again
    assert not ema.training and torch.equal(model.generate(z), drawn)

    live_stats = make_gan(**args, ema_standing_stats=0)
    fit(live_stats, batches=2, size=16)
    live_stats.eval()
    live_stats.prepare_sampling()
    live_stats.generate(z)
    assert same(batch_norm_buffers(live_stats.generator_ema.module), batch_norm_buffers(live_stats.generator))


def test_without_ema_sampling_uses_the_live_generator():
    model = make_gan()
    fit(model, batches=1)
    z = model.sample_latent(5)
    assert model.generator_ema is None and torch.equal(model.generate(z), torch.tanh(model.generator(z)))


def test_ema_start_copies_g_for_its_first_batches():
    model = make_gan(ema_decay=0.5, ema_start=1, d_steps=3)
    recorder = GeneratorAfterEachBatch()
    fit(model, batches=3, callbacks=[recorder])
    live, ema = recorder.live, recorder.ema
    assert same(ema[0], live[0])  # batch 1: a copy
    for i in (1, 2):  # then the average, from that copy on
        expected = [0.5 * b + 0.5 * a for b, a in zip(ema[i - 1], live[i], strict=True)]
        assert all(torch.allclose(x, y) for x, y in zip(ema[i], expected, strict=True))
        assert not same(ema[i], live[i])


def test_ema_weights_round_trip_through_the_checkpoint(tmp_path):
    model = make_gan(ema_decay=0.9)
    trainer = fit(model, batches=2)
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert any(name.startswith("generator_ema.module.") for name in state)
    loaded = load_model(path)  # as evaluate.py and generate.py load it
    assert same(snapshot(loaded.generator_ema.module), snapshot(model.generator_ema.module))
    assert not same(snapshot(loaded.generator_ema.module), snapshot(loaded.generator))
    model.eval()
    z = model.sample_latent(4)
    assert torch.equal(loaded.generate(z), model.generate(z))


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_a_checkpoint_without_ema_loads_and_resumes_with_ema_on_or_off(tmp_path):
    old = make_gan()
    trainer = fit(old, batches=1)
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    assert not any("ema" in name for name in torch.load(path, weights_only=True)["state_dict"])
    assert load_model(path).generator_ema is None

    resumed = make_gan(ema_decay=0.9)  # EMA switched on when resuming: it starts from the saved G
    fit(resumed, batches=2, ckpt_path=path)
    assert resumed.generator_ema.n_averaged.item() == 1  # G steps averaged since
    assert not same(snapshot(resumed.generator_ema.module), snapshot(resumed.generator))
    trainer = fit(make_gan(ema_decay=0.9), batches=1)
    trainer.save_checkpoint(tmp_path / "ema.ckpt")
    fit(make_gan(), batches=2, ckpt_path=tmp_path / "ema.ckpt")  # and off again


# --- DiffAugment --------------------------------------------------------------------------------------------


class AugmentSpy(GAN):
    """Records each augmentation's input and output and every image batch that D judges in training."""

    def on_fit_start(self) -> None:
        self.augmented, self.judged = [], []
        self.discriminator.register_forward_pre_hook(lambda module, args: self.judged.append(args[0]))

    def augment(self, images):
        out = super().augment(images)
        self.augmented.append((images.detach().clone(), out))
        return out


@pytest.mark.parametrize("feature_matching", [False, True])
def test_d_judges_only_augmented_images_real_and_fake_in_both_steps(feature_matching):
    model = make_gan(AugmentSpy, diffaugment=ALL_AUGMENTATIONS, feature_matching=feature_matching)
    if feature_matching:  # G's step then reads D through features(), not forward: watch that too
        features = model.discriminator.features
        model.discriminator.features = lambda x: (model.judged.append(x), features(x))[1]
    fit(model, batches=1)
    inputs = [images for images, _ in model.augmented]
    outputs = [out for _, out in model.augmented]
    batch = real_images()[:8]
    # D step: real then fake; G step: fake (and real, for feature matching)
    assert len(model.augmented) == (4 if feature_matching else 3)
    assert torch.equal(inputs[0], batch) and not torch.equal(inputs[1], batch)
    assert not torch.equal(inputs[2], batch)
    if feature_matching:
        assert torch.equal(inputs[3], batch)
    assert len(model.judged) == len(outputs)
    assert all(any(seen is out for out in outputs) for seen in model.judged)  # D never sees a raw batch
    assert not torch.equal(outputs[0], inputs[0])  # and the augmentation did something


def test_augmentation_is_one_function_of_the_seed_for_real_and_fake():
    real, fake = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    policy = parse_policy(ALL_AUGMENTATIONS)
    torch.manual_seed(7)
    first = diff_augment(torch.cat([real, fake]), policy, (0.0, 1.0))
    torch.manual_seed(7)
    again = diff_augment(torch.cat([real, fake]), policy, (0.0, 1.0))
    assert torch.equal(first, again)
    # each image draws its own transform: a batch of copies of one image comes out in different versions
    copies = diff_augment(real[:1].expand(16, -1, -1, -1), policy, (0.0, 1.0))
    assert len({tuple(image.flatten().tolist()) for image in copies}) > 1


@pytest.mark.parametrize("pixel_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_translation_and_cutout_fill_with_black_in_either_range(pixel_range):
    low, high = pixel_range
    white = torch.full((32, 1, 8, 8), high)
    translated = diff_augment(white, ("translation",), pixel_range)
    cut = diff_augment(white, ("cutout",), pixel_range)
    for out in (translated, cut):
        assert out.shape == white.shape and set(out.unique().tolist()) <= {low, high}
        assert (out == low).any()
    assert ((cut == low).flatten(1).sum(1) <= 16).all()  # at most a 4 x 4 square of the 8 x 8 image
    shifted = diff_augment(white, ("color",), pixel_range)
    assert ((shifted - high).abs() <= (high - low) / 4 + 1e-6).all()  # brightness within a quarter range


def test_diffaugment_is_differentiable_and_checks_its_names():
    images = torch.rand(4, 1, 8, 8, requires_grad=True)
    diff_augment(images, parse_policy(ALL_AUGMENTATIONS), (0.0, 1.0)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert parse_policy("") == () and parse_policy(["cutout"]) == ("cutout",)
    with pytest.raises(ConfigError, match="model.diffaugment"):
        make_gan(diffaugment="color,flip")


# --- R1 -----------------------------------------------------------------------------------------------------


def test_r1_is_zero_for_a_flat_d_and_the_squared_gradient_norm_otherwise():
    images = torch.rand(5, 1, 4, 4, requires_grad=True)
    assert r1_penalty(images.sum(dim=(1, 2, 3)) * 0 + 3.0, images) == 0
    assert r1_penalty(torch.full((5, 1), 3.0, requires_grad=True), images) == 0  # D ignores its input
    weights = torch.randn(1, 4, 4, requires_grad=True)  # a linear D: its input gradient is its weights
    penalty = r1_penalty((images * weights).sum(dim=(1, 2, 3)), images)
    assert penalty > 0 and torch.isclose(penalty, weights.pow(2).sum())
    penalty.backward()  # the graph is kept, so the penalty trains D
    assert torch.allclose(weights.grad, 2 * weights)


@pytest.mark.parametrize(("r1_every", "d_steps", "expected_calls"), [(1, 1, 4), (2, 1, 2), (2, 3, 6)])
def test_r1_is_logged_and_lazy_every_r1_every_batches(monkeypatch, r1_every, d_steps, expected_calls):
    calls = []
    monkeypatch.setattr(gan_module, "r1_penalty", lambda *args: calls.append(1) or r1_penalty(*args))
    model = make_gan(r1_gamma=10.0, r1_every=r1_every, d_steps=d_steps)
    trainer = fit(model, batches=4)
    assert len(calls) == expected_calls  # batches 0 and 2 when lazy, on each of their D steps
    assert trainer.callback_metrics["train/r1"] > 0


def test_r1_changes_d_update():
    updated = []
    for gamma in (0.0, 100.0):
        model = make_gan(r1_gamma=gamma)
        fit(model, batches=1)
        updated.append(snapshot(model.discriminator))
    assert not same(*updated)


# --- losses -------------------------------------------------------------------------------------------------


def test_least_squares_losses_on_known_logits():
    assert ADVERSARIAL_LOSSES["ls"] == (d_ls, g_ls)
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert d_ls(real, fake).item() == pytest.approx(0.5)  # 0.5 * mean(0, 1) + 0.5 * mean(0, 1)
    assert d_ls(torch.ones(3), torch.zeros(3)).item() == 0  # a perfect D
    assert d_ls(torch.ones(2), torch.zeros(2), real_label=0.9).item() == pytest.approx(0.005)
    assert g_ls(fake).item() == pytest.approx(0.25)  # 0.5 * mean(1, 0)
    assert g_ls(torch.ones(4)).item() == 0


def test_feature_matching_loss_on_known_features():
    features = torch.randn(6, 5)
    assert feature_matching_loss(features, features.flip(0)).item() == pytest.approx(0.0, abs=1e-6)
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2)
    assert feature_matching_loss(real, fake).item() == pytest.approx(13.0)  # means (2, 3) vs (0, 0)


def test_d_features_are_the_input_of_its_last_layer():
    images = torch.rand(3, 1, 28, 28)
    mlp = make_net(
        "gan_mnist",
        "discriminator",
        image_shape=(1, 28, 28),
        out_features=1,
        hidden_dims=[16, 8],
        dropout=0.0,
    )
    assert mlp.features(images).shape == (3, 8)
    assert torch.equal(mlp.net[-1](mlp.features(images)), mlp(images))
    dcgan = make_net(
        "gan_mnist_dcgan", "discriminator", image_shape=(1, 28, 28), out_features=1, width=4
    ).eval()  # eval: no power iteration per call
    assert torch.equal(dcgan.head(dcgan.features(images)), dcgan(images))


def test_feature_matching_replaces_g_adversarial_loss(monkeypatch):
    calls = []
    monkeypatch.setattr(
        gan_module, "feature_matching_loss", lambda *args: calls.append(1) or feature_matching_loss(*args)
    )
    model = make_gan(feature_matching=True)
    model.g_loss_fn = lambda logits: pytest.fail("the adversarial G loss ran under feature matching")
    trainer = fit(model, batches=2)
    assert len(calls) == 2 and math.isfinite(trainer.callback_metrics["train/g_loss"])


class LinearCritic(torch.nn.Module):
    """A discriminator without the features(images) method."""

    def __init__(self, image_shape, out_features: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(out_features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def test_feature_matching_needs_a_d_with_features():
    critic = {"_target_": f"{__name__}.LinearCritic"}
    make_gan(discriminator=critic)
    with pytest.raises(ConfigError, match="model.feature_matching.*LinearCritic has no features"):
        make_gan(discriminator=critic, feature_matching=True)


# --- everything at once -------------------------------------------------------------------------------------

TTUR = {
    "optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-4, "betas": [0.0, 0.999]},
    "optimizer_d": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 4e-4, "betas": [0.0, 0.999]},
}
RECIPES = {
    # hinge + SN D + TTUR + EMA + DiffAugment: the recipes, composed
    "sngan": {"loss": "hinge", "ema_decay": 0.999, "diffaugment": ALL_AUGMENTATIONS, **TTUR},
    "every_switch": {
        "loss": "ls",
        "ema_decay": 0.9,
        "ema_start": 1,
        "diffaugment": ALL_AUGMENTATIONS,
        "r1_gamma": 1.0,
        "r1_every": 2,
        "feature_matching": True,
        "label_smoothing": 0.1,
        "d_steps": 2,
        "grad_clip": 10.0,
        **TTUR,
    },
}


@pytest.mark.parametrize("recipe", RECIPES)
def test_toolbox_switches_compose_on_the_mnist_dcgan(recipe):
    model = make_gan(
        generator=DCGAN_GEN,
        discriminator=DCGAN_DISC,
        image_shape=(1, 28, 28),
        latent_dim=8,
        **RECIPES[recipe],
    )
    g, d = snapshot(model.generator), snapshot(model.discriminator)
    trainer = fit(model, batches=3, size=28)
    scalars = {name: value for name, value in trainer.callback_metrics.items() if name.startswith("train/")}
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"} <= set(scalars)
    assert ("train/r1" in scalars) == ("r1_gamma" in RECIPES[recipe])
    assert all(math.isfinite(value) for value in scalars.values())
    assert not same(g, snapshot(model.generator)) and not same(d, snapshot(model.discriminator))
    live_stats, ema_stats = list(model.generator.buffers()), list(model.generator_ema.module.buffers())
    assert live_stats and all(torch.equal(a, b) for a, b in zip(live_stats, ema_stats, strict=True))  # BN's
    assert model.eval().sample(4).shape == (4, 1, 28, 28)


def test_evaluate_measures_the_ema_or_with_ema_false_the_trained_generator():
    from genlab.evaluate import sampling_weights

    model = make_gan(ema_decay=0.9)
    fit(model, batches=2)
    model.eval()
    z = model.sample_latent(5)
    assert sampling_weights(model, ema=True) == "ema"
    assert torch.equal(model.generate(z), torch.tanh(model.generator_ema.module(z)))
    assert sampling_weights(model, ema=False) == "trained"
    assert torch.equal(model.generate(z), torch.tanh(model.generator(z)))
    assert sampling_weights(make_gan(), ema=True) == "trained"  # no EMA to use
