"""Reading genlab checkpoints safely: what model a file holds, before anything is built from it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from genlab.errors import CheckpointError

MODEL_CLASSES = ("VAE", "GAN")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint with `weights_only=True` and check that it holds a genlab model."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={str(path)!r}: no such file (runs keep theirs in <run dir>/checkpoints/)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own message suggests weights_only=False: never for a file of unknown origin.
        raise CheckpointError(
            f"ckpt_path={str(path)!r} holds objects other than tensors and plain data, so it is not a "
            "genlab checkpoint (genlab loads checkpoints with weights_only=True only)"
        ) from error
    except Exception as error:
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is not a readable checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0]})"
        ) from error
    info = checkpoint.get("genlab") if isinstance(checkpoint, dict) else None
    if not isinstance(info, dict) or info.get("model") not in MODEL_CLASSES:
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is not a genlab VAE or GAN checkpoint (no 'genlab' model record); "
            "use a checkpoints/last.ckpt written by `python train.py`"
        )
    return checkpoint


def checkpoint_model_class(path: str | Path) -> str:
    """'VAE' or 'GAN', read from the checkpoint's genlab record."""
    return read_checkpoint(path)["genlab"]["model"]


def load_model(path: str | Path, map_location: str | torch.device = "cpu"):
    """The genlab model stored in a checkpoint, in eval mode."""
    from genlab.models import GAN, VAE

    name = checkpoint_model_class(path)
    model_class = {"VAE": VAE, "GAN": GAN}[name]
    model = model_class.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    return model.eval()
