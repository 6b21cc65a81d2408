"""Every architecture of the study: output shapes and exact parameter counts."""

import inspect
from pathlib import Path

import pytest
import torch
from helpers import CONF_DIR, ROOT, build_model, make_net
from hydra.utils import get_class
from omegaconf import OmegaConf

from genlab.checkpoints import check_architecture, load_model
from genlab.data.config import conf_file
from genlab.errors import ConfigError
from genlab.nets.recorded import FORMER_DEFAULTS, complete_net_configs
from genlab.nets.resnet import DownBlock, UpBlock
from genlab.train import train


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def mlp(sizes: list[int]) -> int:
    return sum(linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))


def study_a_conv_encoder(linear_in: int, out: int) -> int:
    convs = conv(3, 16, 3) + conv(16, 32, 3) + conv(32, 64, 3) + conv(64, 128, 3)
    return convs + linear(linear_in, out)


def study_a_conv_decoder(latent: int) -> int:
    chans = [256, 128, 64, 32, 16, 8]
    ups = sum(c_in * c_out * 16 + c_out + 2 * c_out for c_in, c_out in zip(chans, chans[1:], strict=False))
    return linear(latent, 256 * 8 * 8) + ups + conv(8, 3, 3)


# (experiment, data, {net attribute: expected parameter count}, latent size)
STUDY_NETS = [
    (
        "study_a_mnist_vae",
        "mnist",
        {"encoder": mlp([784, 1024, 512, 256, 40]), "decoder": mlp([20, 256, 512, 1024, 784])},
        20,
    ),
    (
        "study_a_mnist_gan",
        "mnist",
        {"discriminator": mlp([784, 1024, 512, 256, 1]), "generator": mlp([100, 256, 512, 1024, 784])},
        100,
    ),
    (
        "study_a_imagenette_vae",
        "imagenette",
        {"encoder": study_a_conv_encoder(8192, 400), "decoder": study_a_conv_decoder(200)},
        200,
    ),
    (
        "study_a_imagenette_gan",
        "imagenette",
        {"discriminator": study_a_conv_encoder(2048, 1), "generator": study_a_conv_decoder(500)},
        500,
    ),
    ("study_b_vae_baseline", "mnist", {"encoder": mlp([784, 256, 128]), "decoder": mlp([64, 256, 784])}, 64),
    ("study_b_vae_final", "mnist", {"encoder": mlp([784, 256, 128]), "decoder": mlp([64, 256, 784])}, 64),
    (
        "study_b_gan_baseline",
        "mnist",
        {"discriminator": mlp([784, 512, 256, 1]), "generator": mlp([100, 256, 512, 784])},
        100,
    ),
    (
        "study_b_gan_final",
        "mnist",
        {"discriminator": mlp([784, 1024, 512, 256, 1]), "generator": mlp([100, 256, 512, 1024, 784])},
        100,
    ),
]


@pytest.mark.parametrize(
    ("experiment", "data", "expected", "latent_dim"), STUDY_NETS, ids=[s[0] for s in STUDY_NETS]
)
def test_study_architectures(make_cfg, experiment, data, expected, latent_dim):
    # The presets at the study's full 160px: parameter counts are the study's exactly.
    cfg = make_cfg(f"experiment={experiment}", data=data)
    if data == "imagenette":
        cfg.data.image_size = 160
    model = build_model(cfg)
    assert model.latent_dim == latent_dim
    for name, count in expected.items():
        assert n_params(getattr(model, name)) == count, name
    images = model.sample(2)
    assert images.shape == (2, *model.image_shape)
    assert images.min() >= model.pixel_range[0] and images.max() <= model.pixel_range[1]
    critic = model.encoder if hasattr(model, "encoder") else model.discriminator
    out = critic(images)
    assert out.shape == (2, 2 * latent_dim if hasattr(model, "encoder") else 1)


def test_conv_encoder_feature_sizes():
    # Study A: 8192 features at 160px with pools 2-2-2-2, 2048 with 2-2-2-4; sizes follow the image.
    def encoder(image_shape, out_features, **values):
        return make_net(
            "vae_imagenette", "encoder", image_shape=image_shape, out_features=out_features, **values
        )

    assert encoder((3, 160, 160), 1).feature_dim == 8192
    assert encoder((3, 160, 160), 1, pools=(2, 2, 2, 4)).feature_dim == 2048
    assert encoder((3, 64, 64), 1).feature_dim == 128 * 2 * 2
    assert encoder((1, 28, 28), 5, channels=(8,), pools=(2,))(torch.zeros(3, 1, 28, 28)).shape == (3, 5)


def test_conv_encoder_rejects_too_small_images():
    with pytest.raises(ConfigError, match="data.image_size"):
        make_net("vae_imagenette", "encoder", image_shape=(3, 32, 32), out_features=1)


@pytest.mark.parametrize("size", [64, 96, 160])
def test_conv_decoder_output_size_follows_image_shape(size):
    decoder = make_net("vae_imagenette", "decoder", latent_dim=7, image_shape=(3, size, size))
    assert decoder(torch.randn(2, 7)).shape == (2, 3, size, size)


def test_mlp_shapes_follow_config():
    encoder = make_net(
        "vae_mnist", "encoder", image_shape=(3, 8, 8), out_features=6, hidden_dims=(32,), dropout=0.0
    )
    decoder = make_net("vae_mnist", "decoder", latent_dim=3, image_shape=(3, 8, 8), hidden_dims=(32, 16))
    assert encoder(torch.zeros(4, 3, 8, 8)).shape == (4, 6)
    assert decoder(torch.zeros(4, 3)).shape == (4, 3, 8, 8)
    assert n_params(encoder) == mlp([192, 32, 6])
    study_a = make_net("vae_mnist", "encoder", image_shape=(1, 28, 28), out_features=1)
    assert sum(isinstance(m, torch.nn.Dropout) for m in study_a.modules()) == 3


@pytest.mark.parametrize("size", [32, 64, 160])
def test_dcgan_nets_fit_the_image_size(size):
    generator, critic = (
        make_net("gan_imagenette_dcgan", "generator", latent_dim=16, image_shape=(3, size, size), width=8),
        make_net(
            "gan_imagenette_dcgan", "discriminator", image_shape=(3, size, size), out_features=1, width=8
        ),
    )
    images = generator(torch.randn(2, 16))
    assert images.shape == (2, 3, size, size) and critic(images).shape == (2, 1)


@pytest.mark.parametrize("size", [32, 64])
def test_dcgan_discriminator_conv3x3_doubles_its_depth_at_the_same_size(size):
    def convs(critic):
        return [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]

    plain, deep = (
        make_net(
            "gan_imagenette_dcgan",
            "discriminator",
            image_shape=(3, size, size),
            out_features=1,
            width=8,
            conv3x3=c,
        )
        for c in (False, True)
    )
    assert len(convs(deep)) == 2 * len(convs(plain))
    assert [m.stride for m in convs(deep)[::2]] == [(1, 1)] * len(convs(plain))
    images = torch.randn(2, 3, size, size)
    assert deep(images).shape == (2, 1) and deep.features(images).shape == plain.features(images).shape
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs(deep))


def test_dcgan_nets_reject_sizes_they_cannot_make():
    with pytest.raises(ConfigError, match="data.image_size"):
        make_net("gan_imagenette_dcgan", "generator", latent_dim=16, image_shape=(3, 100, 100))


@pytest.mark.parametrize(("size", "blocks"), [(28, 2), (32, 3), (64, 4)])
def test_resnet_nets_fit_the_image_size(size, blocks):
    generator = make_net(
        "gan_imagenette_resnet",
        "generator",
        latent_dim=16,
        image_shape=(3, size, size),
        width=8,
        max_width=32,
    )
    critic = make_net(
        "gan_imagenette_resnet",
        "discriminator",
        image_shape=(3, size, size),
        out_features=1,
        width=8,
        max_width=32,
    )
    assert sum(isinstance(m, UpBlock) for m in generator.modules()) == blocks
    assert sum(isinstance(m, DownBlock) for m in critic.modules()) == blocks + 1  # + one without pooling
    images = generator(torch.randn(2, 16))
    assert images.shape == (2, 3, size, size) and critic(images).shape == (2, 1)
    assert critic.features(images).shape == (2, min(32, 8 * 2 ** (blocks - 1)))


def test_resnet_discriminator_is_spectrally_normalised_unless_told():
    for spectral_norm in (True, False):
        critic = make_net(
            "gan_imagenette_resnet",
            "discriminator",
            image_shape=(3, 32, 32),
            out_features=1,
            width=8,
            spectral_norm=spectral_norm,
        )
        layers = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") == spectral_norm for m in layers)


def test_resnet_blocks_are_residual():
    """A block is its main path plus its shortcut; the first D block pools the image before its 1x1 conv."""
    block = DownBlock(3, 8, first=True, spectral_norm=False)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(block(x), block.main(x) + block.shortcut(x))
    assert isinstance(block.shortcut[0], torch.nn.AvgPool2d) and block.main[0].in_channels == 3
    assert isinstance(DownBlock(8, 8, down=False).shortcut, torch.nn.Identity)
    up = UpBlock(8, 4)
    assert up(torch.randn(2, 8, 4, 4)).shape == (2, 4, 8, 8)


@pytest.mark.parametrize("size", [32, 64])
def test_imagenette_resnet_nets_config_builds_a_gan(make_cfg, size):
    cfg = make_cfg("model=gan", "data=imagenette", "nets=gan_imagenette_resnet", f"data.image_size={size}")
    model = build_model(cfg)
    assert model(torch.randn(2, cfg.model.latent_dim)).shape == (2, 3, size, size)
    assert type(model.discriminator).__name__ == "ResNetDiscriminator"


@pytest.mark.parametrize("size", [32, 64])
def test_imagenette_conv_vae_nets_config_builds_a_vae(make_cfg, size):
    cfg = make_cfg("model=vae", "data=imagenette", "nets=vae_imagenette_dcgan", f"data.image_size={size}")
    model = build_model(cfg)
    images = torch.rand(2, 3, size, size)
    assert model.encoder(images).shape == (2, 2 * cfg.model.latent_dim)
    assert model.decode(torch.randn(2, cfg.model.latent_dim)).shape == (2, 3, size, size)


#: what a model passes to its nets (from the data and its latent size); every other argument is a setting
SIZES = {"image_shape", "latent_dim", "out_features"}


@pytest.mark.parametrize(
    "path",
    [
        *sorted((CONF_DIR / "nets").glob("*.yaml")),
        ROOT / "tests/third_model_conf/nets/autoencoder_mnist.yaml",
    ],
)
def test_every_net_preset_sets_every_setting_and_the_classes_have_no_defaults(path):
    nets = {
        key: value
        for key, value in OmegaConf.to_container(conf_file(path)).items()
        if isinstance(value, dict)
    }
    assert nets
    for key, config in nets.items():
        parameters = inspect.signature(get_class(config["_target_"])).parameters
        assert set(config) - {"_target_"} == set(parameters) - SIZES, key
        assert all(parameter.default is inspect.Parameter.empty for parameter in parameters.values()), key
        # a class that had defaults in code: an older checkpoint's config completes to the same settings
        if config["_target_"] in FORMER_DEFAULTS:
            assert set(FORMER_DEFAULTS[config["_target_"]]) == set(parameters) - SIZES, key
        assert complete_net_configs({key: config}) == {}


def test_an_older_checkpoint_with_incomplete_net_configs_loads_and_resumes_as_before(make_cfg, tmp_path):
    # Before conf/nets/ held every setting, a checkpoint recorded only the keys its YAML set.
    cfg = make_cfg("trainer.max_steps=1", "logger=none", "callbacks=[model_checkpoint]")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    for net in ("encoder", "decoder"):
        checkpoint["hyper_parameters"][net] = {"_target_": checkpoint["hyper_parameters"][net]["_target_"]}
    older = tmp_path / "older.ckpt"
    torch.save(checkpoint, older)

    new, old = load_model(last), load_model(older)
    assert old.hparams.encoder == new.hparams.encoder and old.hparams.decoder == new.hparams.decoder
    for name, tensor in new.state_dict().items():
        assert torch.equal(tensor, old.state_dict()[name]), name
    draws = [model.sample(4, torch.Generator().manual_seed(0)) for model in (new, old)]
    assert torch.equal(*draws)
    run_model = OmegaConf.to_container(cfg.model) | {"image_shape": list(new.image_shape)}
    check_architecture(older, run_model)  # a resume with today's YAML finds the same nets
