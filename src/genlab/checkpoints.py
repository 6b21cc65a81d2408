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
from lightning.pytorch.plugins.io import TorchCheckpointIO

from genlab.atomic import atomic_write
from genlab.data.base import ImageDataModule
from genlab.data.config import data_settings
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.instantiate import build
from genlab.mappings import flatten
from genlab.models.base import GenerativeModel
from genlab.run_dir import CHECKPOINTS, LAST_CHECKPOINT


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint with `weights_only=True` and check that it holds a genlab model."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={str(path)!r}: no such file (runs keep theirs in <run dir>/{CHECKPOINTS}/)"
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
            "model (no 'genlab' record naming the model class); use a "
            f"{CHECKPOINTS}/{LAST_CHECKPOINT} written by `python train.py`"
        )
    try:
        model_class = get_class(record["_target_"])
    except Exception:
        return checkpoint  # checkpoint_model_class says why
    if isinstance(checkpoint.get("hyper_parameters"), dict) and hasattr(model_class, "upgrade_hparams"):
        # a checkpoint of an older genlab, in today's form (its tensors: the model's on_load_checkpoint)
        checkpoint["hyper_parameters"] = model_class.upgrade_hparams(checkpoint["hyper_parameters"])
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
    """The genlab model stored in a checkpoint, in eval mode (an older checkpoint's in today's form, see
    GenerativeModel.upgrade_hparams)."""
    model_class = checkpoint_model_class(path)
    hparams = read_checkpoint(path).get("hyper_parameters") or {}
    # today's form of the hyperparameters win over the file's (Lightning drops keys the class does not take)
    model = model_class.load_from_checkpoint(path, map_location=map_location, weights_only=True, **hparams)
    return model.eval()


def checkpoint_datamodule(
    path: str | Path, model: GenerativeModel, overrides: Mapping[str, Any] | None = None
) -> ImageDataModule:
    """The data module of the data a checkpoint's model was trained on, in the model's pixel range.

    Starts from the data module settings the checkpoint recorded; non-null `overrides` win (e.g. `data_dir`
    on another machine), and an override `_target_` of another data module starts from its conf/data/ file.
    Downloads stay off: evaluating or drawing never fetches data.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    recorded = read_checkpoint(path)["genlab"].get("data")
    if "_target_" in overrides:
        try:
            data: dict[str, Any] = data_settings(overrides["_target_"])
        except ConfigError:  # a data module without a conf/data/ file: the overrides name every key
            data = {}
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


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but each file is written to a temporary name beside it and then
    renamed over the target: a kill while saving (a preempted job) never leaves a truncated last.ckpt, only
    the previous complete one. (Lightning's own save writes the target file in place.)"""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        save = super().save_checkpoint
        atomic_write(path, lambda partial: save(checkpoint, partial, storage_options))


def architecture(model_config: Mapping[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """What a model's weights depend on, flattened to override keys: its latent size, image shape and every
    net config (a `_target_` entry that is not a `_partial_` optimizer or scheduler, nor the prior, which is
    fitted after training and may change on a resume, nor a flow's ODE sampler, which only draws)."""
    found: dict[str, Any] = {}
    for key, value in model_config.items():
        if key in ("prior", "sampler"):
            continue
        if key in ("latent_dim", "image_shape"):
            found[f"{prefix}{key}"] = list(value) if isinstance(value, list | tuple) else value
        elif isinstance(value, Mapping) and "_target_" in value and not value.get("_partial_"):
            found |= {
                name: list(leaf) if isinstance(leaf, list | tuple) else leaf
                for name, leaf in flatten(value, f"{prefix}{key}.").items()
            }
    return found


def as_override(key: str, value: Any) -> str:
    """A Hydra command-line override that sets `key` to `value`."""
    if isinstance(value, list):
        text = "[" + ",".join(str(item) for item in value) + "]"
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return f"{key}={text}"


def check_architecture(path: str | Path, run_model: Mapping[str, Any]) -> None:
    """Refuse to resume from a checkpoint whose nets, latent size or image shape differ from this run's model
    config, naming the differing keys and the overrides that match the checkpoint (instead of torch's
    'size mismatch' deep inside load_state_dict)."""
    saved = read_checkpoint(path).get("hyper_parameters") or {}  # in today's form
    theirs, ours = architecture(saved), architecture(run_model)
    differing = sorted(key for key in theirs.keys() | ours.keys() if theirs.get(key) != ours.get(key))
    if not differing:
        return
    lines = "; ".join(
        f"{key}: checkpoint {theirs.get(key)!r}, this run {ours.get(key)!r}" for key in differing
    )
    fixes = [
        as_override(key, theirs[key]) for key in differing if key in theirs and key != "model.image_shape"
    ]
    if "model.image_shape" in differing:
        fixes.append(f"the data it was trained on (images of shape {theirs.get('model.image_shape')})")
    raise CheckpointError(
        f"ckpt_path={str(path)!r} holds other nets than this run's config ({lines}). To resume it, run "
        f"with the checkpoint's settings: {' and '.join(fixes)}"
    )
