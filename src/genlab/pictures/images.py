"""Writing a picture to every logger that takes images and as a PNG file in the run dir."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image

from genlab import run_dir

# Grey gaps between the cells: black (0) vanishes against MNIST's background, white against its strokes.
PAD_VALUE = 0.5


def image_grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """[N, C, H, W] images in [0, 1] -> one [3, H', W'] grid image with `nrow` images per row."""
    return make_grid(images.detach().float().cpu().clamp(0.0, 1.0), nrow=nrow, padding=2, pad_value=PAD_VALUE)


def log_image(trainer: L.Trainer, tag: str, image: torch.Tensor) -> None:
    """Log a [3, H, W] image in [0, 1] under `tag` to every logger that takes images (TensorBoard).

    Loggers without images (CSV) are skipped, so pictures still work with `logger=csv` or no logger.
    """
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, image, global_step=trainer.global_step)


def save_grid(grid: torch.Tensor, path: str | Path) -> Path:
    """Save a grid image as PNG (creating its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path


def write_picture(trainer: L.Trainer, tag: str, images: torch.Tensor, nrow: int, epoch: int) -> Path:
    """Log a grid of `images` (in [0, 1]) under `tag` and save it as <run dir>/images/<tag>/epoch_XXX.png."""
    grid = image_grid(images, nrow)
    log_image(trainer, tag, grid)
    return save_grid(grid, run_dir.picture(trainer.default_root_dir, tag, epoch))
