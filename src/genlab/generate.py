"""Pictures from a checkpoint: the training callbacks' sample grid, interpolations, reconstructions and
trajectories."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from omegaconf import DictConfig

from genlab import run_dir
from genlab.cache import cache_dir
from genlab.checkpoints import checkpoint_datamodule, load_model
from genlab.errors import ConfigError, exits_on_error, require
from genlab.mappings import as_dict
from genlab.metrics.perceptual import for_data
from genlab.models.inversion import InversionSettings
from genlab.modes import sampling_mode
from genlab.pictures.grids import (
    fixed_latents,
    interpolation_images,
    method_rows,
    real_interpolation_images,
    sample_images,
    trajectory_images,
)
from genlab.pictures.images import image_grid, save_grid
from genlab.reconstruction import Reconstructor, check_methods, with_encoder
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

    encoded = with_encoder(model, cfg.ckpt_path, cfg.encoder_ckpt, map_location=device)
    methods = (
        check_methods(encoded, cfg.reconstruction_methods, "reconstruction_methods")
        if cfg.data.data_dir
        else []
    )
    inversion = InversionSettings.from_config(as_dict(cfg.inversion))
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
    if methods:
        datamodule = checkpoint_datamodule(cfg.ckpt_path, encoded, as_dict(cfg.data, resolve=False))
        datamodule.check_available()
        n_real = max(2 * cfg.real_pairs, cfg.n_reconstructions)
        real = datamodule.split_images("test")[:n_real]
        distance = for_data(
            datamodule,
            cache_dir(cfg.data.cache_dir or getattr(datamodule, "cache_dir", None)),
            1.0,
            inversion.feature_weight,
        )
        reconstructor = Reconstructor(encoded, datamodule, distance.to(device), inversion)
        pairs = min(cfg.real_pairs, len(real) // 2)
        if pairs:
            # between the latent codes of the first method: the encoder's, the posterior means, the inverted
            # noise, or the GAN's inverted latents
            codes, _ = reconstructor(
                methods[0], real[: 2 * pairs], progress=f"interpolation codes: {methods[0]}"
            )
            inputs = datamodule.to_model_range(real[: 2 * pairs]).to(device)
            with sampling_mode(encoded):
                images = real_interpolation_images(
                    encoded,
                    inputs[:pairs],
                    inputs[pairs:],
                    cfg.steps,
                    cfg.mode,
                    codes=(codes[:pairs].to(device), codes[pairs:].to(device)),
                )
            write("interpolation_real", images, cfg.steps + 2)
        real = real[: cfg.n_reconstructions]
        if len(real):
            outputs = [
                reconstructor(method, real, progress=f"reconstructions: {method}")[1] for method in methods
            ]
            originals = real.float() / 255.0
            write("reconstructions", method_rows(originals, outputs, 8), min(8, len(real)))
            print("reconstructions.png, per 8 test images: the originals, then " + ", ".join(methods))
    elif cfg.data.data_dir:
        log.info("%s cannot reconstruct: no reconstructions", type(model).__name__)
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


@exits_on_error
def run(cfg: DictConfig) -> dict[str, Path]:
    """`generate` for the command line: a genlab error prints `error: ...` and exits 1, no stack trace."""
    return generate(cfg)
