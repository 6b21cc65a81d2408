"""generate.py: pictures from checkpoints of tiny fake-data runs, and clear errors for bad checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import TINY_FLOW_SETTINGS
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from genlab.checkpoints import load_model
from genlab.errors import CheckpointError, ConfigError
from genlab.generate import generate, pick_device, run
from genlab.modes import sampling_mode
from genlab.pictures.grids import fixed_latents, trajectory_images
from genlab.train import train

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
NO_PICTURES = [
    f"callbacks.{name}=null"
    for name in ("samples", "interpolation", "reconstructions", "trajectory", "loss_curves")
]


def generate_cfg(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="generate", overrides=list(overrides))


def checkpoint(make_cfg, model: str, *overrides: str) -> Path:
    """last.ckpt of a one-batch run on the fake data."""
    cfg = make_cfg(
        f"model={model}",
        "logger=none",
        "trainer.max_steps=2",
        "+trainer.limit_val_batches=1",
        *NO_PICTURES,
        *overrides,
    )
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_vae_checkpoint_with_data(make_cfg, mnist_dir, tmp_path):
    ckpt = checkpoint(make_cfg, "vae")
    out = tmp_path / "pictures"
    written = generate(
        generate_cfg(f"ckpt_path={ckpt}", f"out={out}", "n=16", f"data.data_dir={mnist_dir}", "device=cpu")
    )
    assert set(written) == {"samples", "interpolation", "interpolation_real", "reconstructions"}
    assert size(out / "samples.png") == (4 * 30 + 2, 4 * 30 + 2)  # 16 images: 4x4
    assert size(out / "interpolation.png") == (10 * 30 + 2, 8 * 30 + 2)
    assert size(out / "interpolation_real.png") == (12 * 30 + 2, 4 * 30 + 2)
    # 32 test images, 8 a row, each row above its posterior-mean and posterior-sample rows
    assert size(out / "reconstructions.png") == (8 * 30 + 2, 12 * 30 + 2)


def test_gan_checkpoint_without_data(make_cfg, tmp_path):
    ckpt = checkpoint(make_cfg, "gan")
    written = generate(generate_cfg(f"ckpt_path={ckpt}", f"out={tmp_path / 'out'}", "mode=linear"))
    assert set(written) == {"samples", "interpolation"}  # no trajectory: it draws in one step
    assert size(written["samples"]) == (8 * 30 + 2, 8 * 30 + 2)
    with pytest.raises(ConfigError, match=r"sampler=\{'method': 'dopri5'\} is invalid.*one forward pass"):
        generate(generate_cfg(f"ckpt_path={ckpt}", f"out={tmp_path / 'out'}", "sampler.method=dopri5"))


def test_flow_checkpoint_draws_its_trajectory(make_cfg, mnist_dir, tmp_path):
    ckpt = checkpoint(make_cfg, "flow", *TINY_FLOW_SETTINGS)
    out = tmp_path / "pictures"
    common = (f"ckpt_path={ckpt}", f"out={out}", "n=4", "pairs=2", "device=cpu")
    written = generate(
        generate_cfg(*common, "trajectory_samples=3", "trajectory_points=5", f"data.data_dir={mnist_dir}")
    )
    assert set(written) == {"samples", "interpolation", "trajectory", "interpolation_real", "reconstructions"}
    assert size(out / "trajectory.png") == (5 * 30 + 2, 3 * 30 + 2)  # a row per sample, t=0 to t=1
    # the last column: the samples of the same latents (the checkpoint's two Euler steps)
    model = load_model(ckpt)
    with sampling_mode(model):
        z = fixed_latents(model, 3, seed=0)
        rows = trajectory_images(model, z, 5).unflatten(0, (3, 5))
        assert torch.allclose(rows[:, -1], model.to_unit(model.generate(z)), atol=1e-6)
        assert torch.allclose(rows[:, 0], model.to_unit(z.view(3, 1, 28, 28).clamp(-1, 1)))
    with pytest.raises(ConfigError, match="sampler.nfe=3 is invalid: midpoint spends 2"):
        generate(generate_cfg(*common, "sampler.method=midpoint", "sampler.nfe=3"))
    with pytest.raises(ConfigError, match="trajectory_points=1 is invalid"):
        generate(generate_cfg(*common, "trajectory_points=1"))


def test_not_a_genlab_checkpoint(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="not a genlab VAE or GAN checkpoint"):
        generate(generate_cfg(f"ckpt_path={path}", f"out={tmp_path / 'out'}"))
    with pytest.raises(ConfigError, match="ckpt_path"):
        generate(generate_cfg(f"out={tmp_path / 'out'}"))


def test_bad_device_names_the_value():
    with pytest.raises(ConfigError, match="tpu"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            pick_device("cuda")
    assert pick_device("cpu") == torch.device("cpu")


def test_cli_missing_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(SystemExit) as exit_info:
        run(generate_cfg(f"ckpt_path={missing}", f"out={tmp_path / 'out'}"))
    assert exit_info.value.code == 1
    assert f"error: ckpt_path='{missing}': no such file" in capsys.readouterr().err


def test_hydra_writes_its_log_into_out(tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="generate", overrides=[f"out={tmp_path}"], return_hydra_config=True)
    assert cfg.hydra.run.dir == str(tmp_path)
