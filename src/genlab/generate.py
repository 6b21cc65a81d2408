"""Pictures from a checkpoint: the training callbacks' sample grid, interpolations, reconstructions and
trajectories."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from omegaconf import DictConfig

from genlab import run_dir
from genlab.checkpoints import checkpoint_datamodule, load_model
from genlab.errors import ConfigError, exits_on_error, require
from genlab.mappings import as_dict
from genlab.modes import sampling_mode
from genlab.pictures.grids import (
    fixed_latents,
    interpolation_images,
    real_interpolation_images,
    reconstruction_images,
    sample_images,
    trajectory_images,
)
from genlab.pictures.images import image_grid, save_grid
from genlab.sampling import configure_sampler

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")


#: keys spelled as the other entry points spell them, and the spelling Hydra would reject as `not in struct`
def pick_device(device: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cuda` without a GPU is an error that says so."""
    require(device in DEVICES, "device", device, f"choose one of {DEVICES}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device='cuda' is invalid: this machine has no CUDA GPU; use device=cpu or device=auto."
        )
    return torch.device(device)


def generate(cfg: DictConfig) -> dict[str, Path]:
    """Write the pictures for `cfg.ckpt_path` into `cfg.out`; returns {picture name: PNG path}."""
    require(
        bool(cfg.ckpt_path),
        "ckpt_path",
        cfg.ckpt_path,
        f"give the checkpoint: ckpt_path=<run dir>/{run_dir.CHECKPOINTS}/{run_dir.LAST_CHECKPOINT}",
    )
    require(int(cfg.n) >= 1, "n", cfg.n, "must be >= 1 (64 gives an 8x8 grid)")
    require(int(cfg.pairs) >= 1, "pairs", cfg.pairs, "must be >= 1")
    require(int(cfg.real_pairs) >= 0, "real_pairs", cfg.real_pairs, "must be >= 0 (0: none)")
    require(
        int(cfg.n_reconstructions) >= 0, "n_reconstructions", cfg.n_reconstructions, "must be >= 0 (0: none)"
    )
    require(
        int(cfg.trajectory_samples) >= 0,
        "trajectory_samples",
        cfg.trajectory_samples,
        "must be >= 0 (0: none)",
    )
    require(
        int(cfg.trajectory_points) >= 2,
        "trajectory_points",
        cfg.trajectory_points,
        "must be >= 2 (the noise and the sample)",
    )
    device = pick_device(cfg.device)
    model = load_model(cfg.ckpt_path, map_location=device).to(device)
    configure_sampler(model, as_dict(cfg.sampler))
    out = Path(cfg.out)
    written: dict[str, Path] = {}

    def write(name: str, images: torch.Tensor, nrow: int) -> None:
        written[name] = save_grid(image_grid(images, nrow), out / f"{name}.png")

    with sampling_mode(model):
        write(
            "samples",
            sample_images(model, fixed_latents(model, cfg.n, cfg.seed)),
            math.ceil(math.sqrt(cfg.n)),
        )
        z0, z1 = fixed_latents(model, 2 * cfg.pairs, cfg.seed).chunk(2)
        write("interpolation", interpolation_images(model, z0, z1, cfg.steps, cfg.mode), cfg.steps)
        if model.draws_trajectories and cfg.trajectory_samples:
            z = fixed_latents(model, cfg.trajectory_samples, cfg.seed)
            write("trajectory", trajectory_images(model, z, cfg.trajectory_points), cfg.trajectory_points)
        elif cfg.trajectory_samples:
            log.info("%s draws in one step: no trajectory", type(model).__name__)
        if cfg.data.data_dir and model.can_encode:
            datamodule = checkpoint_datamodule(cfg.ckpt_path, model, as_dict(cfg.data, resolve=False))
            datamodule.check_available()
            n_real = max(2 * cfg.real_pairs, cfg.n_reconstructions)
            real = datamodule.to_model_range(datamodule.split_images("test")[:n_real])
            pairs = min(cfg.real_pairs, len(real) // 2)
            if pairs:
                first, last = real[:pairs], real[pairs : 2 * pairs]
                images = real_interpolation_images(model, first, last, cfg.steps, cfg.mode)
                write("interpolation_real", images, cfg.steps + 2)
            real = real[: cfg.n_reconstructions]
            if len(real):
                write("reconstructions", reconstruction_images(model, real, 8), min(8, len(real)))
        elif cfg.data.data_dir:
            log.info("%s has no encoder: no reconstructions", type(model).__name__)
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


@exits_on_error
def run(cfg: DictConfig) -> dict[str, Path]:
    """`generate` for the command line: a genlab error prints `error: ...` and exits 1, no stack trace."""
    return generate(cfg)
