"""The GAN's manual optimisation: each step moves only its own network."""

import lightning as L
import pytest
import torch
from helpers import model_args, net_config

from genlab.callbacks import TrainingScalars
from genlab.errors import ConfigError
from genlab.models import GAN
from genlab.models.base import GenerativeModel

DISC = net_config("gan_mnist", "discriminator", hidden_dims=[16], dropout=0.0)
GEN = net_config("gan_mnist", "generator", hidden_dims=[16])


def make_gan(**kwargs) -> GAN:
    torch.manual_seed(0)
    return GAN(
        **model_args("gan", generator=GEN, discriminator=DISC, image_shape=(1, 4, 4), latent_dim=3) | kwargs
    )


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class SpyGAN(GAN):
    """Records G's and D's weights around each optimiser step."""

    def on_fit_start(self) -> None:
        self.records = []

    def discriminator_step(self, real):
        g, d = snapshot(self.generator), snapshot(self.discriminator)
        out = super().discriminator_step(real)
        self.records.append(("d", same(g, snapshot(self.generator)), same(d, snapshot(self.discriminator))))
        return out

    def generator_step(self, n):
        g, d = snapshot(self.generator), snapshot(self.discriminator)
        out = super().generator_step(n)
        self.records.append(("g", same(g, snapshot(self.generator)), same(d, snapshot(self.discriminator))))
        return out


def fit(model: GAN, steps: int) -> L.Trainer:
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.rand(32, 1, 4, 4) * 2 - 1, torch.zeros(32)), batch_size=8
    )
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[TrainingScalars()],  # logs what training_step returns, as in every train.py run
    )
    trainer.fit(model, data)
    return trainer


def test_d_step_leaves_g_unchanged_and_g_step_leaves_d_unchanged():
    torch.manual_seed(0)
    model = SpyGAN(
        **model_args("gan", generator=GEN, discriminator=DISC, image_shape=(1, 4, 4), latent_dim=3, d_steps=2)
    )
    trainer = fit(model, steps=6)  # global_step counts optimiser steps: 3 per batch with d_steps=2
    assert [kind for kind, _, _ in model.records] == ["d", "d", "g"] * 2
    for kind, g_same, d_same in model.records:
        if kind == "d":
            assert g_same and not d_same
        else:
            assert d_same and not g_same
    assert trainer.global_step == 6


def test_training_changes_both_networks_and_logs():
    model = make_gan()
    g, d = snapshot(model.generator), snapshot(model.discriminator)
    trainer = fit(model, steps=4)
    assert not same(g, snapshot(model.generator)) and not same(d, snapshot(model.discriminator))
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"} <= set(trainer.callback_metrics)


def test_uniform_noise_and_output_range():
    model = make_gan(noise="uniform")
    z = model.sample_latent(1000)
    assert z.min() >= -1 and z.max() <= 1 and z.mean().abs() < 0.1
    images = model.sample(4)
    assert images.shape == (4, 1, 4, 4) and images.min() >= -1 and images.max() <= 1
    assert torch.allclose(model.to_unit(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))
    assert isinstance(model, GenerativeModel)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        (
            {"optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": -1e-4}},
            "model.optimizer_g.lr",
        ),
        (
            {"optimizer_d": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0}},
            "model.optimizer_d.lr",
        ),
        ({"latent_dim": 0}, "model.latent_dim"),
        ({"noise": "gauss"}, "model.noise"),
        ({"loss": "wgan"}, "model.loss"),
        ({"d_steps": 0}, "model.d_steps"),
    ],
)
def test_invalid_values_name_the_key(kwargs, key):
    args = model_args("gan", generator=GEN, discriminator=DISC, image_shape=(1, 4, 4), latent_dim=3) | kwargs
    with pytest.raises(ConfigError, match=key):
        GAN(**args)
