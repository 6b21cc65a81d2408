"""Reconstruction for every model under one protocol, and the linear probe of their latent codes.

The methods: a model's own one-pass ones (`reconstruction_methods()`: the VAE's `posterior mean` and
`posterior sample`, the flow's `ODE round trip`, the GAN encoder's `encoder`), and for a model whose
generator can be inverted (`invertible`: the GAN) `inversion` (genlab.models.inversion) and, when it also
has an encoder, `encoder + inversion`: the encoder's latents refined by `inversion.refine_steps` steps.

Every method is scored on the same fixed test images (`fixed_images`): MSE, PSNR, SSIM and the feature
distance against the grey original in [0, 1] (a model trained on binarised digits is given their fixed
binarisation, as in its evaluation), for MNIST whether the digit classifier keeps the original's label,
and the seconds per image.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from genlab import run_dir
from genlab.data.base import ImageDataModule
from genlab.errors import ConfigError, require
from genlab.metrics import classifier
from genlab.metrics.perceptual import FeatureDistance, for_data
from genlab.metrics.probe import linear_probe
from genlab.metrics.reconstruction import label_kept, pixel_scores, summarise
from genlab.metrics.reference import subset_indices
from genlab.models.base import GenerativeModel
from genlab.models.inversion import InversionSettings, invertible, project
from genlab.modes import sampling_mode

log = logging.getLogger(__name__)

INVERSION = "inversion"
HYBRID = "encoder + inversion"


def available_methods(model: GenerativeModel) -> list[str]:
    """Every reconstruction method of `model`, its one-pass ones first."""
    methods = list(model.reconstruction_methods())
    if invertible(model):
        methods.append(INVERSION)
        if model.can_encode:
            methods.append(HYBRID)
    return methods


def check_methods(model: GenerativeModel, requested: Sequence[str] | None, key: str) -> list[str]:
    """`requested` (null: all of them), each checked against the model's methods."""
    available = available_methods(model)
    if requested is None:
        return available
    for method in requested:
        if method in (INVERSION, HYBRID) and not invertible(model):
            raise ConfigError(
                f"{key}={list(requested)!r} is invalid: {type(model).__name__} has no generator to invert "
                f"(inversion is for the GAN); its methods are {available}"
            )
        if method not in available:
            raise ConfigError(
                f"{key}={list(requested)!r}: {method!r} is not a method of "
                f"{type(model).__name__}; choose from {available}"
            )
    return list(requested)


#: images of the protocol, and train images of the probe, when their settings are null
DEFAULT_IMAGES = 500
DEFAULT_PROBE_TRAIN = 2000


def fixed_images(
    datamodule: ImageDataModule, split: str, n: int | None, seed: int, default: int, key: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The protocol's images: a fixed random subset (seeded) of `n` uint8 images of `split` (null: `default`,
    or all of them when fewer), and their labels. More than the split holds is an error that names `key`."""
    require(split in ("train", "val", "test"), "reconstruction.split", split, "choose train, val or test")
    images = datamodule.split_images(split)
    n = min(default, len(images)) if n is None else n
    require(
        isinstance(n, int) and 1 <= n <= len(images),
        key,
        n,
        f"must be between 1 and the {len(images)} images of the {split} split (null: {default} or all)",
    )
    index = subset_indices(len(images), n, seed)
    return images[index], datamodule.splits[split].labels[index]


class Reconstructor:
    """Reconstructs images (uint8) by one method of a model, in `sampling_mode`, returning latent codes and
    reconstructions in [0, 1]."""

    def __init__(
        self,
        model: GenerativeModel,
        datamodule: ImageDataModule,
        distance: FeatureDistance,
        inversion: InversionSettings,
    ) -> None:
        self.model, self.datamodule, self.distance, self.inversion = model, datamodule, distance, inversion

    def __call__(
        self, method: str, images: torch.Tensor, progress: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        inputs = self.datamodule.to_model_range(images).to(model.device)
        targets = (images.float() / 255.0).to(model.device)
        codes, outputs = [], []
        with sampling_mode(model):
            if method in (INVERSION, HYBRID):
                start = None
                settings = self.inversion
                if method == HYBRID:
                    start = model.encode(inputs)
                    settings = dataclasses.replace(
                        settings,
                        steps=settings.refine_steps,
                        lr=settings.refine_lr,
                        restarts=1,
                        initial_noise_factor=0.0,
                    )
                z, _ = project(model, targets, self.distance, settings, start=start, progress=progress)
                return z.cpu(), model.to_unit(model.generate(z)).cpu()
            one_pass = model.reconstruction_methods()[method]
            for batch in inputs.split(self.inversion.batch_size):
                z, x = one_pass(batch)
                codes.append(z.flatten(1).cpu())
                outputs.append(model.to_unit(x).cpu())
        return torch.cat(codes), torch.cat(outputs)


def measure(
    model: GenerativeModel,
    datamodule: ImageDataModule,
    settings: Mapping[str, Any],
    inversion: InversionSettings,
    cache_dir: Path,
    probe: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """metrics.json's `reconstruction` (every method's scores and settings) and, with `probe`, its
    `latent_probe` (each method's codes, and the raw pixels, through the linear probe)."""
    methods = check_methods(model, settings.get("methods"), "reconstruction.methods")
    images, labels = fixed_images(
        datamodule,
        settings["split"],
        settings["n_images"],
        settings["seed"],
        DEFAULT_IMAGES,
        "reconstruction.n_images",
    )
    distance = for_data(datamodule, cache_dir, 1.0, inversion.feature_weight).to(model.device)
    reconstructor = Reconstructor(model, datamodule, distance, inversion)
    digits = classifier.load_or_train(datamodule, cache_dir)[0] if datamodule.has_digit_classifier else None
    targets = images.float() / 255.0
    scores: dict[str, Any] = {}
    codes: dict[str, torch.Tensor] = {}
    for method in methods:
        started = time.perf_counter()
        z, outputs = reconstructor(method, images, progress=f"reconstruction: {method}")
        seconds = time.perf_counter() - started
        per_image = pixel_scores(targets, outputs)
        with torch.no_grad():
            per_image["feature_distance"] = torch.cat(
                [
                    distance.feature_term(a.to(model.device), b.to(model.device)).cpu()
                    for a, b in zip(outputs.split(250), targets.split(250), strict=True)
                ]
            )
        if digits is not None:
            per_image["label_kept"] = label_kept(digits, targets, outputs)
        scores[method] = summarise(per_image) | {
            "seconds_per_image": round(seconds / len(images), 4),
            "settings": method_settings(method, model, inversion),
        }
        codes[method] = z
        log.info(
            "reconstruction %s: %s",
            method,
            {k: round(v, 4) for k, v in scores[method].items() if isinstance(v, float)},
        )
    reconstruction = {
        "methods": scores,
        "protocol": {
            "split": settings["split"],
            "n_images": len(images),
            "seed": settings["seed"],
            "target": "the grey image in [0, 1] (a model trained on binarised digits is given their fixed "
            "binarisation)",
            "feature_distance": distance.description,
            **({"encoder_ckpt": model.source} if getattr(model, "source", None) else {}),
            "mse": "mean over pixels in [0, 1] units",
            "psnr": "dB, data range 1, per image (capped at 100 for identical images), then averaged",
            "ssim": "torchmetrics, Gaussian window 11, sigma 1.5, data range 1",
            **(
                {"label_kept": "the digit classifier's label of the reconstruction equals the original's"}
                if digits is not None
                else {}
            ),
        },
    }
    if not probe:
        return reconstruction, None
    probe_methods = check_methods(
        model, probe.get("methods") or [m for m in methods if m != "posterior sample"], "latent_probe.methods"
    )
    train_images, train_labels = fixed_images(
        datamodule, "train", probe["n_train"], settings["seed"], DEFAULT_PROBE_TRAIN, "latent_probe.n_train"
    )
    results = {"pixels": linear_probe(train_images.float() / 255.0, train_labels, targets, labels)}
    for method in probe_methods:
        train_codes, _ = reconstructor(method, train_images, progress=f"probe codes: {method}")
        test_codes = codes[method] if method in codes else reconstructor(method, images)[0]
        results[method] = linear_probe(train_codes, train_labels, test_codes, labels)
        log.info("linear probe %s: accuracy %.4f", method, results[method]["accuracy"])
    return reconstruction, {
        "methods": results,
        "protocol": {
            "train": f"{len(train_images)} fixed train images (seed {settings['seed']})",
            "test": f"the reconstruction's {len(images)} {settings['split']} images",
            "probe": "scikit-learn StandardScaler + LogisticRegression (L2, C=1, lbfgs, max_iter 2000)",
            "pixels": "the raw pixels in [0, 1], the same images",
        },
    }


def method_settings(method: str, model: GenerativeModel, inversion: InversionSettings) -> dict[str, Any]:
    """What a method's numbers depend on, for metrics.json."""
    if method == INVERSION:
        return {key: value for key, value in inversion.as_dict().items() if not key.startswith("refine_")}
    if method == HYBRID:
        return {
            "refine_steps": inversion.refine_steps,
            "refine_lr": inversion.refine_lr,
            "seed": inversion.seed,
        }
    return model.sampling_settings() if method == "ODE round trip" else {}


def with_encoder(
    model: GenerativeModel,
    ckpt_path: str | Path,
    encoder_ckpt: str | Path | None,
    map_location: str | torch.device = "cpu",
) -> GenerativeModel:
    """The model that reconstructs for a checkpoint: a GAN with its post-hoc encoder (model=gan_encoder) from
    `encoder_ckpt`, or else from the GAN run's own encoder run (`<run>/encoder/checkpoints/last.ckpt`) when
    there is one; any other model as it is. An encoder trained on another G is an error."""
    from genlab.checkpoints import load_model
    from genlab.models.gan import GAN
    from genlab.models.gan_encoder import GANEncoder, generator_fingerprint

    gan: Any = model.gan if isinstance(model, GANEncoder) else model
    if encoder_ckpt is None:
        found = run_dir.encoder_checkpoint(run_dir.of_checkpoint(ckpt_path))
        if isinstance(model, GANEncoder) or not isinstance(model, GAN) or not found.is_file():
            return model
        path = found
    else:
        path = Path(encoder_ckpt).expanduser()
        if not isinstance(gan, GAN):
            raise ConfigError(
                f"encoder_ckpt={str(path)!r} is invalid: an encoder is for a GAN checkpoint, and ckpt_path "
                f"holds a {type(model).__name__}; drop encoder_ckpt"
            )
    encoder = load_model(path, map_location=map_location)
    if not isinstance(encoder, GANEncoder):
        raise ConfigError(
            f"encoder_ckpt={str(path)!r} holds a {type(encoder).__name__}, not a GAN encoder: give the "
            "last.ckpt of a model=gan_encoder run"
        )
    if encoder.fingerprint != generator_fingerprint(gan):
        raise ConfigError(
            f"encoder_ckpt={str(path)!r} was trained for another generator than the one in "
            f"ckpt_path={str(ckpt_path)!r} (their G weights differ): train an encoder for this GAN, "
            f"python train.py experiment=best_mnist_gan_encoder model.gan_ckpt={ckpt_path}"
        )
    encoder.sample_from_ema = bool(gan.sample_from_ema)
    encoder.source = str(path)
    log.info("reconstructing with the GAN encoder of %s", path)
    return encoder.to(model.device)
