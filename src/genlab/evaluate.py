"""`python evaluate.py ckpt_path=...`: sample a trained genlab model and measure it against real images.

Writes metrics.json (every number and the protocol) beside the checkpoint's run folder and prints a table.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import DictConfig, OmegaConf

from genlab import run_dir
from genlab.cache import cache_dir
from genlab.checkpoints import checkpoint_datamodule, load_model
from genlab.errors import CheckpointError, ConfigError, exits_on_error, require
from genlab.hparams import add_to_run
from genlab.mappings import as_dict
from genlab.metrics import classifier, distribution
from genlab.metrics.inception import (
    FEATURE_NET,
    INPUT_SIZE,
    PREPROCESSING,
    extract_features,
    shared_inception,
)
from genlab.metrics.likelihood import bits_per_dim_scores, likelihood_scores
from genlab.metrics.reference import reference_features, subset_indices
from genlab.models.base import GenerativeModel, class_path
from genlab.models.inversion import InversionSettings
from genlab.models.ode import TRACES
from genlab.models.priors import fit_prior
from genlab.pictures.images import image_grid, save_grid
from genlab.reconstruction import available_methods, check_methods, with_encoder
from genlab.reconstruction import measure as measure_reconstruction
from genlab.sampling import configure_sampler, sample_uint8

log = logging.getLogger(__name__)


#: samples shown in the grid evaluate.py saves beside metrics.json
GRID_IMAGES = 64


def sampling_weights(model, ema: bool) -> str:
    """Which weights draw the samples: the EMA of a GAN's generator or a flow's net ("ema") or, with
    `ema=false` or no EMA, the trained ones ("trained"). Both are in the checkpoint, so one run measures
    both."""
    if not model.has_ema:
        return "trained"
    if not ema:
        model.sample_from_ema = False  # generate() draws from the trained weights
        return "trained"
    return "ema"


def wants_bits_per_dim(cfg: DictConfig, model: GenerativeModel) -> bool:
    """Whether to measure test bits/dim (`likelihood.exact`: auto, true or false), its settings checked
    before minutes of sampling."""
    exact = cfg.likelihood.exact
    require(
        exact == "auto" or isinstance(exact, bool),
        "likelihood.exact",
        exact,
        "use auto (when the model has an exact likelihood), true (required) or false (skip)",
    )
    if exact is True and not model.has_exact_likelihood:
        raise ConfigError(
            f"likelihood.exact=true is invalid: {type(model).__name__} has no exact likelihood; only models "
            "with `has_exact_likelihood` (the flow, model=flow) have one. Use likelihood.exact=auto or false."
        )
    if exact is False or not model.has_exact_likelihood:
        return False
    n_images = cfg.likelihood.n_images
    require(
        n_images is None or n_images >= 2,
        "likelihood.n_images",
        n_images,
        "must be at least 2 (for a standard error), or null for the whole test split",
    )
    require(
        cfg.likelihood.batch_size >= 1, "likelihood.batch_size", cfg.likelihood.batch_size, "must be >= 1"
    )
    trace = cfg.likelihood.trace
    require(trace in TRACES, "likelihood.trace", trace, f"choose one of {TRACES}")
    return True


def wants_reconstruction(cfg: DictConfig, model: GenerativeModel) -> bool:
    """Whether to score reconstructions (`reconstruction.enabled`: auto, true or false): auto for every
    model that reconstructs (it encodes, or its generator can be inverted)."""
    enabled = cfg.reconstruction.enabled
    require(
        enabled == "auto" or isinstance(enabled, bool),
        "reconstruction.enabled",
        enabled,
        "use auto (every model that reconstructs), true (required) or false (skip)",
    )
    able = bool(available_methods(model))
    if enabled is True and not able:
        raise ConfigError(
            f"reconstruction.enabled=true is invalid: {type(model).__name__} cannot reconstruct (no encoder, "
            "no generator to invert); use reconstruction.enabled=auto or false"
        )
    probe = cfg.latent_probe.enabled
    require(isinstance(probe, bool), "latent_probe.enabled", probe, "use true or false")
    return enabled is not False and able


def _positive_or_null(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    require(value is None or value >= 1, key, value, "must be a positive integer, or null for all of them")


def resolve_sizes(cfg: DictConfig, n_reference: int, n_floor: int, n_test: int | None) -> dict[str, int]:
    """The set sizes every metric uses, checked before minutes of feature extraction. A null default scales
    with n (the smaller of the samples and the real sets): the KID subset is min(1000, n), and the VAE
    bounds use at most the `n_test` images of the test split. Explicit values are checked as given."""
    require(cfg.n_samples >= 2, "n_samples", cfg.n_samples, "must be at least 2 (FID needs a covariance)")
    require(cfg.nearest_k >= 1, "nearest_k", cfg.nearest_k, "must be a positive integer (5 is standard)")
    n_real = min(n_reference, n_floor)
    sizes = {
        "kid_subset_size": distribution.kid_subset_size(
            cfg.kid.subset_size, n_real, cfg.n_samples, key="kid.subset_size"
        )
    }
    require(
        cfg.nearest_k < min(cfg.n_samples, n_real),
        "nearest_k",
        cfg.nearest_k,
        f"must be smaller than n_samples={cfg.n_samples} and the real sets' size {n_real}",
    )
    if n_test is not None:
        _positive_or_null(cfg, "vae.n_test_images")
        _positive_or_null(cfg, "vae.iwae_n_images")
        require(cfg.vae.iwae_k >= 1, "vae.iwae_k", cfg.vae.iwae_k, "must be a positive integer")
        sizes["test_images"] = min(cfg.vae.n_test_images or n_test, n_test)
        sizes["iwae_n_images"] = min(cfg.vae.iwae_n_images or n_test, sizes["test_images"])
    return sizes


def compare(
    real: torch.Tensor, fake: torch.Tensor, cfg: DictConfig, kid_subset_size: int | None = None
) -> dict[str, float]:
    """FID, KID (mean, std), precision, recall, density, coverage of `fake` against `real` features.

    `kid_subset_size`: the one `resolve_sizes` chose, so the model and the floor use the same; None:
    `cfg.kid.subset_size` (null: the default for these two sets)."""
    subset_size = cfg.kid.subset_size if kid_subset_size is None else kid_subset_size
    kid_mean, kid_std = distribution.kid(real, fake, cfg.kid.subsets, subset_size, seed=cfg.seed)
    return {
        "fid": distribution.fid(real, fake),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        **distribution.precision_recall(real, fake, cfg.nearest_k),
    }


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Measure one checkpoint; returns what metrics.json holds."""
    started = time.time()
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise CheckpointError(
            f"ckpt_path is missing: add ckpt_path=<run dir>/{run_dir.CHECKPOINTS}/{run_dir.LAST_CHECKPOINT}"
        )
    ckpt_path = Path(cfg.ckpt_path).expanduser().resolve()
    model = load_model(ckpt_path)
    weights = sampling_weights(model, cfg.ema)
    configure_sampler(model, as_dict(cfg.sampler))
    bits_per_dim = wants_bits_per_dim(cfg, model)
    encoded = with_encoder(model, ckpt_path, cfg.encoder_ckpt)
    reconstruct = wants_reconstruction(cfg, encoded)
    inversion = InversionSettings.from_config(as_dict(cfg.inversion))
    if reconstruct:
        check_methods(encoded, cfg.reconstruction.methods, "reconstruction.methods")
    datamodule = checkpoint_datamodule(ckpt_path, model, as_dict(cfg.data, resolve=False))
    datamodule.check_available()
    prior: Any = getattr(model, "prior", None)
    if getattr(prior, "fittable", False) and not bool(prior.fitted):
        log.info("fitting the checkpoint's %s prior to its training images", type(prior).__name__)
        fit_prior(prior, model, datamodule)
    split = cfg.reference.split
    require(split in ("train", "val", "test"), "reference.split", split, "choose train, val or test")
    n_reference = min(cfg.reference.n_images or cfg.n_samples, len(datamodule.split_images(split)))
    floor_split = "train" if split != "train" else "val"
    n_floor = min(n_reference, len(datamodule.split_images(floor_split)))
    n_test = len(datamodule.split_images("test")) if model.has_likelihood else None
    sizes = resolve_sizes(cfg, n_reference, n_floor, n_test)

    extractor = shared_inception()
    # evaluate's cache_dir, else the data module's (data.cache_dir), else the user's cache folder
    cache = cache_dir(cfg.cache_dir or getattr(datamodule, "cache_dir", None))
    real, reference = reference_features(
        datamodule, split, n_reference, extractor, cache, cfg.reference.seed, cfg.batch_size
    )
    floor_real, _ = reference_features(
        datamodule, floor_split, n_reference, extractor, cache, cfg.reference.seed + 1, cfg.batch_size
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    started_sampling = time.perf_counter()
    samples = sample_uint8(model, cfg.n_samples, generator, cfg.batch_size, progress="sampling")
    sampling = model.sampling_settings() | {
        "seconds_per_1000_samples": round(1000 * (time.perf_counter() - started_sampling) / len(samples), 3),
        "device": str(model.device),
        "batch_size": cfg.batch_size,
    }
    log.info("sampling: %s", describe_sampling(sampling))
    started_features = time.perf_counter()
    fake = extract_features(samples, extractor, cfg.batch_size, progress="generated features")
    seconds = time.perf_counter() - started_features
    log.info(
        "Inception features of %d generated images in %.1f s: %.2f images/s at batch %d",
        len(samples),
        seconds,
        len(samples) / seconds,
        cfg.batch_size,
    )

    metrics: dict[str, Any] = compare(real, fake, cfg, sizes["kid_subset_size"])
    metrics["real_floor"] = compare(real, floor_real, cfg, sizes["kid_subset_size"])
    if datamodule.has_digit_classifier and cfg.classifier:
        net, info = classifier.load_or_train(datamodule, cache)
        histogram, entropy = classifier.class_histogram(classifier.predict(net, samples))
        reference_images = datamodule.split_images(split)
        reference_images = reference_images[
            subset_indices(len(reference_images), n_reference, cfg.reference.seed)
        ]
        real_histogram, real_entropy = classifier.class_histogram(classifier.predict(net, reference_images))
        metrics.update(class_histogram=histogram, class_entropy=entropy)
        # the floor's classes: those of the real reference images themselves
        metrics["real_floor"].update(class_histogram=real_histogram, class_entropy=real_entropy)
        metrics["classifier_test_accuracy"] = info["test_accuracy"]
    if model.has_likelihood:
        test = datamodule.split_images("test")
        test = test[subset_indices(len(test), sizes["test_images"], cfg.seed)]
        test_images = datamodule.to_model_range(test)
        metrics.update(
            likelihood_scores(
                model, test_images, test_images[: sizes["iwae_n_images"]], cfg.vae.iwae_k, seed=cfg.seed
            )
        )
    if reconstruct:
        reconstruction, probe = measure_reconstruction(
            encoded,
            datamodule,
            as_dict(cfg.reconstruction),
            inversion,
            cache,
            as_dict(cfg.latent_probe) if cfg.latent_probe.enabled else None,
        )
        metrics["reconstruction"] = reconstruction
        if probe is not None:
            metrics["latent_probe"] = probe
    exact: dict[str, Any] = {}
    if bits_per_dim:
        test = datamodule.split_images("test")
        test = test[subset_indices(len(test), cfg.likelihood.n_images, cfg.seed)]
        scores, exact = bits_per_dim_scores(
            model, test, cfg.likelihood.batch_size, cfg.likelihood.trace, cfg.seed, progress="bits/dim"
        )
        metrics.update(scores)
    result = {
        "metrics": metrics,
        "protocol": {
            "ckpt_path": str(ckpt_path),
            "model": type(model).__name__,
            "model_target": class_path(model),
            "generator_weights": weights,
            "image_shape": list(model.image_shape),
            "dataset": datamodule.name,
            "data_dir": str(datamodule.data_dir),
            "n_samples": cfg.n_samples,
            "seed": cfg.seed,
            "batch_size": cfg.batch_size,
            "reference": {key: value for key, value in reference.items() if key != "feature_net_sha256"},
            "real_floor": f"{len(floor_real)} {floor_split} images vs the same reference",
            "feature_net": FEATURE_NET,
            "feature_net_sha256": extractor.sha256,
            "resize": f"bilinear to {INPUT_SIZE}x{INPUT_SIZE}",
            "preprocessing": PREPROCESSING,
            "kid": {"subsets": cfg.kid.subsets, "subset_size": sizes["kid_subset_size"], "seed": cfg.seed},
            "nearest_k": cfg.nearest_k,
            "sampling": sampling,
            **(
                {
                    "likelihood": cast(Any, model).likelihood.description,
                    "iwae_k": cfg.vae.iwae_k,
                    "iwae_n_images": sizes["iwae_n_images"],
                    "test_images": sizes["test_images"],
                }
                if model.has_likelihood
                else {}
            ),
            **({"exact_likelihood": exact} if exact else {}),
            "seconds": round(time.time() - started, 1),
        },
    }
    run = run_dir.of_checkpoint(ckpt_path)
    out = Path(cfg.out).expanduser() if cfg.out else run_dir.metrics_file(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    # the pictures of exactly what was measured: the first 64 of these samples
    grid = save_grid(image_grid(samples[:GRID_IMAGES].float() / 255.0, nrow=8), run_dir.samples_grid(out))
    print(table(result))
    print(f"wrote {out} and {grid}")
    # a side study written elsewhere (`out`, e.g. one solver setting) leaves the run's own numbers alone
    if not cfg.out and add_to_run(run, metrics):
        print(f"added to the HParams tab of {run_dir.tensorboard_dir(run)}")
    return result


def table(result: dict[str, Any]) -> str:
    """The numbers as a plain-text table: model against the real-vs-real floor."""
    metrics, floor = result["metrics"], result["metrics"]["real_floor"]
    protocol = result["protocol"]
    lines = [
        f"{protocol['model']} on {protocol['dataset']}: {protocol['n_samples']} samples vs "
        f"{protocol['reference']['n_images']} {protocol['reference']['split']} images "
        f"({protocol['seconds']} s)",
        f"{'metric':<24}{'model':>12}{'real floor':>12}",
    ]
    for name, value in metrics.items():
        if isinstance(value, float):
            other = floor.get(name)
            lines.append(
                f"{name:<24}{value:>12.4f}" + (f"{other:>12.4f}" if isinstance(other, float) else "")
            )
    if "class_histogram" in metrics:
        lines.append("class_histogram         " + " ".join(f"{v:.3f}" for v in metrics["class_histogram"]))
    if "sampling" in protocol:
        lines.append(f"sampling: {describe_sampling(protocol['sampling'])}")
    if "reconstruction" in metrics:
        reconstruction = metrics["reconstruction"]
        n = reconstruction["protocol"]["n_images"]
        lines.append(f"reconstruction of {n} {reconstruction['protocol']['split']} images:")
        for method, scores in reconstruction["methods"].items():
            kept = f", label kept {scores['label_kept']:.3f}" if "label_kept" in scores else ""
            psnr = f"PSNR {scores['psnr']:.2f} dB"
            lines.append(
                f"  {method:<22} MSE {scores['mse']:.4f}, {psnr}, SSIM {scores['ssim']:.3f}, "
                f"features {scores['feature_distance']:.4f}{kept}, {scores['seconds_per_image']:.4f} s/image"
            )
    if "latent_probe" in metrics:
        probes = metrics["latent_probe"]["methods"]
        lines.append(
            "linear probe accuracy: "
            + ", ".join(
                f"{name} {probe['accuracy']:.4f} ({probe['dim']}-d)" for name, probe in probes.items()
            )
        )
    if "exact_likelihood" in protocol:
        exact = protocol["exact_likelihood"]
        lines.append(
            f"bits/dim: {metrics['bits_per_dim']:.4f} ± {metrics['bits_per_dim_se']:.4f} (standard error) on "
            f"{exact['n_images']} test images, {exact['nfe_per_batch']} NFE per batch ({exact['seconds']} s)"
        )
    return "\n".join(lines)


def describe_sampling(sampling: dict[str, Any]) -> str:
    """protocol.sampling in words: the method, its NFE (or tolerances) and the time per 1,000 samples."""
    settings = [str(sampling["method"])] + [
        f"{key} {value}"
        for key, value in sampling.items()
        if key not in ("method", "seconds_per_1000_samples", "device", "batch_size")
    ]
    return (
        f"{', '.join(settings)}: {sampling['seconds_per_1000_samples']} s per 1,000 samples "
        f"({sampling['device']}, batch {sampling['batch_size']})"
    )


@exits_on_error
def run(cfg: DictConfig) -> dict[str, Any]:
    """`evaluate` for the command line: a genlab error prints `error: ...` and exits 1."""
    return evaluate(cfg)
