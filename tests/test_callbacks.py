"""The picture callbacks: files, grid sizes, TensorBoard tags, fixed latents, interpolation ends, and that
drawing never changes training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_FLOW, build_model
from omegaconf import open_dict
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genlab.callbacks import SampleGrid, Trajectory
from genlab.checkpoints import load_model
from genlab.errors import ConfigError
from genlab.modes import eval_mode
from genlab.pictures.curves import group_panels, moving_average
from genlab.pictures.grids import (
    fixed_latents,
    interpolate,
    interpolation_images,
    real_interpolation_images,
    reconstruction_images,
)
from genlab.train import train

# Short epochs on the fake MNIST (250 train images, batch 16): seconds on a CPU.
SHORT = ["+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1"]
PICTURE_CALLBACKS = ("samples", "interpolation", "reconstructions", "trajectory", "loss_curves")


def image_tags(run_dir: Path) -> set[str]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return set(events.Tags()["images"])


def png(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()  # fails on a truncated or broken file
    return image


def cell(n: int, size: int = 28) -> int:
    """Pixels of `n` grid cells: make_grid puts 2 px around and between the cells."""
    return n * (size + 2) + 2


def checkpoint_callbacks(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]


def test_vae_pictures_tags_and_resume(make_cfg):
    cfg = make_cfg("model=vae", "trainer.max_epochs=1", *SHORT)
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    for tag in ("samples", "interpolation", "interpolation_real", "reconstructions"):
        assert [p.name for p in (run_dir / "images" / tag).glob("*.png")] == ["epoch_000.png"], tag
    assert png(run_dir / "images/samples/epoch_000.png").size == (cell(8), cell(8))  # 64 images, 8x8
    assert png(run_dir / "images/interpolation/epoch_000.png").size == (cell(10), cell(8))
    assert png(run_dir / "images/interpolation_real/epoch_000.png").size == (cell(12), cell(4))
    # 32 inputs, 8 a row, each row above its posterior-mean and posterior-sample rows
    assert png(run_dir / "images/reconstructions/epoch_000.png").size == (cell(8), cell(12))
    assert png(run_dir / "loss_curves.png").size[0] > 200
    assert image_tags(run_dir) == {
        "samples",
        "interpolation",
        "interpolation_real",
        "reconstructions",
        "loss_curves",
    }
    state = checkpoint_callbacks(run_dir)
    assert set(state["TrainingScalars"]["history"]) == {"loss", "recon", "kl"}
    saved = state["SampleGrid"]["latents"]
    assert saved.shape == (64, 20)

    # Resume for a second epoch with another seed: the checkpoint's latents are kept, not drawn anew.
    resumed = make_cfg(
        "model=vae",
        "logger=none",
        "trainer.max_epochs=2",
        *SHORT,
        "callbacks.samples.seed=1",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
    )
    with open_dict(resumed):
        resumed.paths.output_dir = str(run_dir.parent / "resumed")
    train(resumed)
    resumed_dir = Path(resumed.paths.output_dir)
    state = checkpoint_callbacks(resumed_dir)
    assert torch.equal(state["SampleGrid"]["latents"], saved)
    assert [p.name for p in (resumed_dir / "images/samples").glob("*.png")] == ["epoch_001.png"]
    # The loss history came along: 2 epochs x 3 batches of (batch number, value).
    assert state["TrainingScalars"]["history"]["loss"].shape == (2, 6)
    assert state["TrainingScalars"]["history"]["loss"][0].tolist() == [1, 2, 3, 4, 5, 6]


def test_gan_run_with_csv_logger_and_a_schedule(make_cfg):
    cfg = make_cfg(
        "model=gan",
        "logger=csv",
        "trainer.max_epochs=3",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "callbacks.samples.every_n_epochs=2",
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert sorted(p.name for p in (run_dir / "images").iterdir()) == [
        "interpolation",
        "reconstructions",
        "samples",
    ]
    # a GAN reconstructs by inversion: its first 8 validation images above their inversions
    assert png(run_dir / "images/reconstructions/epoch_002.png").size == (cell(8), cell(2))
    # Every 2nd epoch, and the last one at the end of training.
    assert sorted(p.name for p in (run_dir / "images/samples").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
    ]
    assert len(list((run_dir / "images/interpolation").iterdir())) == 3
    grid = np.array(png(run_dir / "images/samples/epoch_002.png"))
    assert grid.shape == (cell(8), cell(8), 3)
    assert png(run_dir / "loss_curves.png").size[0] > 200
    history = checkpoint_callbacks(run_dir)["TrainingScalars"]["history"]
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(history)


def test_no_logger_and_a_stop_mid_epoch_still_write_pngs(make_cfg):
    cfg = make_cfg("model=vae", "logger=none", "trainer.max_steps=2", "+trainer.limit_val_batches=1")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert png(run_dir / "images/samples/epoch_000.png").size == (cell(8), cell(8))
    assert png(run_dir / "loss_curves.png").size[0] > 200


def test_callbacks_leave_training_bit_identical(make_cfg):
    """Shuffling and the GAN's noise use the global RNG: a picture drawn from it would change them."""
    weights = []
    for name, pictures in (("with", []), ("without", [f"callbacks.{c}=null" for c in PICTURE_CALLBACKS])):
        cfg = make_cfg("model=gan", "logger=none", "trainer.max_epochs=2", *SHORT, *pictures)
        with open_dict(cfg):
            cfg.paths.output_dir = str(Path(cfg.paths.output_dir).parent / name)
        train(cfg)
        weights.append(torch.load(Path(cfg.paths.output_dir) / "checkpoints/last.ckpt")["state_dict"])
    run_dirs = Path(cfg.paths.output_dir).parent
    assert len(list((run_dirs / "with" / "images" / "samples").glob("*.png"))) == 2
    assert not (run_dirs / "without" / "images").exists()
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_flow_pictures_add_the_trajectory(make_cfg):
    """A model that draws along a path: the default callbacks add its trajectory grid (VAE and GAN runs above
    have none)."""
    cfg = make_cfg(*TINY_FLOW, "trainer.max_epochs=1", *SHORT, "callbacks.trajectory.points=5")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert png(run_dir / "images/trajectory/epoch_000.png").size == (cell(5), cell(8))  # 8 rows, t=0 to 1
    assert {"samples", "interpolation", "interpolation_real", "reconstructions", "trajectory"} <= image_tags(
        run_dir
    )
    latents = checkpoint_callbacks(run_dir)["Trajectory"]["latents"]
    # generate.py's trajectory.png at its default trajectory_samples and seed draws from the same noise
    assert torch.equal(latents, fixed_latents(load_model(run_dir / "checkpoints/last.ckpt"), 8, seed=0))


def test_bad_trajectory_settings_name_the_value():
    with pytest.raises(ConfigError, match="callbacks.trajectory.points=1 is invalid"):
        Trajectory(samples=8, points=1, seed=0, every_n_epochs=1)
    with pytest.raises(ConfigError, match="callbacks.trajectory.samples=0 is invalid"):
        Trajectory(samples=0, points=8, seed=0, every_n_epochs=1)


@pytest.fixture
def vae(make_cfg):
    return build_model(make_cfg("model=vae")).eval()


def test_latents_are_fixed_and_leave_the_global_rng_alone(vae):
    callback = SampleGrid(n=16, seed=3)
    state = torch.get_rng_state()
    first = callback.latents(vae).clone()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(callback.latents(vae), first)  # the next epoch: the same vectors
    assert torch.equal(first, fixed_latents(vae, 16, seed=3))
    assert not torch.equal(first, fixed_latents(vae, 16, seed=4))


@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_interpolation_ends_are_the_end_points(vae, mode):
    z0, z1 = fixed_latents(vae, 6, seed=0).chunk(2)
    with eval_mode(vae):
        rows = interpolation_images(vae, z0, z1, steps=5, mode=mode).unflatten(0, (3, 5))
        assert torch.allclose(rows[:, 0], vae.decode(z0), atol=1e-6)
        assert torch.allclose(rows[:, -1], vae.decode(z1), atol=1e-6)
        assert not torch.allclose(rows[:, 2], vae.decode(z0), atol=1e-3)
    assert rows.min() >= 0 and rows.max() <= 1


def test_slerp_keeps_the_norm_between_points_on_a_sphere():
    z0, z1 = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    path = interpolate(z0, z1, steps=7, mode="slerp")
    assert torch.allclose(path.norm(dim=-1), torch.full((1, 7), 3.0))
    assert path.norm(dim=-1).min() > interpolate(z0, z1, steps=7, mode="linear").norm(dim=-1).min()
    same = interpolate(z0, z0, steps=4, mode="slerp")  # parallel end points: no division by sin(0)
    assert torch.allclose(same, z0.expand(1, 4, 2).unsqueeze(0).squeeze(0))


def test_bad_interpolation_settings_name_the_value():
    z = torch.zeros(1, 2)
    with pytest.raises(ConfigError, match="cubic"):
        interpolate(z, z, steps=4, mode="cubic")
    with pytest.raises(ConfigError, match="steps"):
        interpolate(z, z, steps=1)
    with pytest.raises(ConfigError, match="every_n_epochs"):
        SampleGrid(every_n_epochs=0)


def test_real_interpolation_shows_the_real_images_at_the_ends(vae):
    real = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with eval_mode(vae):
        rows = real_interpolation_images(vae, real[:2], real[2:], steps=6).unflatten(0, (2, 8))
    assert torch.equal(rows[:, 0], real[:2])
    assert torch.equal(rows[:, -1], real[2:])


def test_reconstructions_put_each_input_row_above_its_reconstructions(vae):
    real = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with eval_mode(vae):
        images = reconstruction_images(vae, real, nrow=4)  # 10 -> 8 images: 2 pairs of rows
        expected = vae.reconstruct(real[4:8])
    assert images.shape == (16, 1, 28, 28)
    assert torch.equal(images[8:12], real[4:8])
    assert torch.allclose(images[12:16], expected)


def test_loss_curve_panels_and_moving_average():
    names = ["d_fake", "d_loss", "d_real", "g_loss", "lr"]
    panels = group_panels(names, [["d_loss", "g_loss"], ["d_real", "d_fake"], ["missing"]])
    assert panels == [["d_loss", "g_loss"], ["d_real", "d_fake"], ["lr"]]
    assert group_panels(["recon", "loss", "kl"]) == [["kl"], ["loss"], ["recon"]]
    values = np.random.default_rng(0).random(40)
    expected = [values[max(0, i - 4) : i + 1].mean() for i in range(40)]
    assert np.allclose(moving_average(values, 5), expected)
