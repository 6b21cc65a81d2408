"""Reading genlab checkpoints safely: which model class a file holds, before anything is built from it, and
the data that model was trained on."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class

from genlab.data.base import ImageDataModule
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.instantiate import build
from genlab.models.base import GenerativeModel


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
    record = checkpoint.get("genlab") if isinstance(checkpoint, dict) else None
    if not isinstance(record, dict) or not isinstance(record.get("_target_"), str):
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is not a genlab VAE or GAN checkpoint, nor one of any other genlab "
            "model (no 'genlab' record naming the model class); use a checkpoints/last.ckpt written by "
            "`python train.py`"
        )
    return checkpoint


def checkpoint_model_class(path: str | Path) -> type[GenerativeModel]:
    """The GenerativeModel subclass named by the checkpoint's genlab record (its `_target_`)."""
    target = read_checkpoint(path)["genlab"]["_target_"]
    try:
        model_class = get_class(target)
    except Exception as error:
        raise CheckpointError(
            f"ckpt_path={str(path)!r} holds a {target}, which cannot be imported here ({error}): install "
            "the package that defines it, or add its folder to PYTHONPATH"
        ) from None
    if not (isinstance(model_class, type) and issubclass(model_class, GenerativeModel)):
        raise CheckpointError(
            f"ckpt_path={str(path)!r} names {target}, which is not a genlab GenerativeModel"
        )
    return model_class


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> GenerativeModel:
    """The genlab model stored in a checkpoint, in eval mode."""
    model_class = checkpoint_model_class(path)
    model = model_class.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    return model.eval()


def checkpoint_datamodule(
    path: str | Path, model: GenerativeModel, overrides: Mapping[str, Any] | None = None
) -> ImageDataModule:
    """The data module of the data a checkpoint's model was trained on, in the model's pixel range.

    Starts from the data module settings the checkpoint recorded; non-null `overrides` win (e.g. `data_dir`
    on another machine), and an override `_target_` of another data module starts from its defaults.
    Downloads stay off: evaluating or drawing never fetches data.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    recorded = read_checkpoint(path)["genlab"].get("data")
    if "_target_" in overrides:
        data: dict[str, Any] = {}
    elif isinstance(recorded, dict):
        data = dict(recorded)
    else:
        raise ConfigError(
            f"ckpt_path={str(path)!r} does not record its data: name it, e.g. "
            "data._target_=genlab.data.MNISTDataModule data.data_dir=DIR"
        )
    data.update(overrides)
    data["pixel_range"] = list(model.pixel_range)
    data["download"] = False
    try:
        datamodule = build(data)
    except InstantiationException as error:
        raise ConfigError(
            f"data={data} cannot be built ({error.__cause__ or error}): fix the data.* keys"
        ) from None
    if tuple(datamodule.image_shape) != tuple(model.image_shape):
        raise DataError(
            f"data {type(datamodule).__name__} gives images {list(datamodule.image_shape)}, but "
            f"ckpt_path={str(path)!r} holds a model of {list(model.image_shape)}: use the data it was "
            "trained on (e.g. data.image_size=<its size> for Imagenette)"
        )
    return datamodule
