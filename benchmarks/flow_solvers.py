"""The flow model's ODE solver study: sample quality, cost and invertibility of a trained checkpoint at each
solver setting.

    python -m benchmarks.flow_solvers --ckpt CKPT --data-dir DIR --out results/mnist/flow_solvers.json
        [--n-samples 2000] [--settings euler:5 euler:10 ... dopri5] [--round-trip-images 64]
        [--eval KEY=VALUE ...]

A setting is `METHOD:NFE` for a fixed-step solver (euler, midpoint; midpoint spends 2 evaluations a step),
`dopri5` (adaptive, atol = rtol = 1e-5) or `dopri5:TOL` (atol = rtol = TOL). Per setting:
- genlab's own evaluation, `genlab.evaluate.evaluate` on conf/eval.yaml composed with `ckpt_path`,
  `n_samples`, `data.data_dir`, `out` and the `--eval` overrides: FID, KID and the rest, its metrics.json
  and sample grid kept in a folder beside `--out`, the setting given as its `sampler.*` overrides
  (`sampler.method=euler sampler.nfe=10`), and the function evaluations (NFE) per sample and the seconds
  per 1,000 samples that its protocol records (the sampling alone, no Inception). A setting's metrics stay
  out of the run's HParams (they go to `out`).
- the ODE round trip of the first `--round-trip-images` test images (`model.reconstruct`: `encode` to noise,
  `generate` back): the mean squared error and PSNR in [0, 1] pixel units, and its NFE both ways.

Writes one JSON (`--out`) and a plot beside it (same name, .png): FID against NFE (log axis), the adaptive
solver's point marked with the NFE it spent, each point annotated with its seconds per 1,000 samples.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from genlab import evaluate as genlab_evaluate
from genlab.checkpoints import checkpoint_datamodule, load_model
from genlab.errors import ConfigError, require
from genlab.models.ode import METHODS, ODESampler
from genlab.modes import sampling_mode
from genlab.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETTINGS = [
    "euler:5",
    "euler:10",
    "euler:20",
    "euler:50",
    "midpoint:10",
    "midpoint:20",
    "midpoint:50",
    "dopri5",
]
#: dopri5's tolerances unless a setting names its own
ADAPTIVE_TOLERANCE = 1e-5


def parse_setting(text: str) -> dict[str, Any]:
    """`euler:10` -> method and NFE; `dopri5` or `dopri5:1e-4` -> method and tolerances (atol = rtol),
    checked as the model's solver checks them."""
    method, _, value = text.partition(":")
    require(method in METHODS, "--settings", text, f"a method is one of {sorted(METHODS)}")
    if METHODS[method] is None:
        tolerance = float(value) if is_number(value) else ADAPTIVE_TOLERANCE
        require(
            not value or is_number(value), "--settings", text, f"give {method}'s tolerance: {method}:1e-5"
        )
        setting = {"name": text, "method": method, "atol": tolerance, "rtol": tolerance}
    else:
        require(value.isdigit(), "--settings", text, f"give {method}'s NFE: {method}:10")
        setting = {"name": text, "method": method, "nfe": int(value)}
    tolerances = {"atol": ADAPTIVE_TOLERANCE, "rtol": ADAPTIVE_TOLERANCE, "nfe": None}
    ODESampler(**(tolerances | solver_settings(setting)), key=f"--settings {text}")
    return setting


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def solver_settings(setting: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `configure_sampler` for a parsed setting."""
    return {key: setting[key] for key in ("method", "nfe", "atol", "rtol") if key in setting}


def eval_config(overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """conf/eval.yaml composed with `overrides`, as `python evaluate.py` composes it."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig().set_config(cfg)
    return cfg


def sampler_overrides(setting: dict[str, Any]) -> list[str]:
    """A setting as evaluate.py's `sampler.*` overrides (null: the checkpoint's own)."""
    settings = solver_settings(setting)
    return [f"sampler.{key}={settings.get(key, 'null')}" for key in ("method", "nfe", "atol", "rtol")]


def evaluate_setting(setting: dict[str, Any], overrides: Sequence[str], folder: Path) -> dict[str, Any]:
    """evaluate.py's metrics at one setting (`overrides`: the study's eval overrides, the setting's
    `sampler.*` added), with the NFE per sample and the seconds per 1,000 samples its protocol records."""
    out = folder / f"{setting['name'].replace(':', '_')}_metrics.json"
    result = genlab_evaluate.evaluate(
        eval_config([*overrides, *sampler_overrides(setting), f"out={out}"], folder)
    )
    metrics, sampling = result["metrics"], result["protocol"]["sampling"]
    return {
        "fid": metrics["fid"],
        "kid_mean": metrics["kid_mean"],
        "kid_std": metrics["kid_std"],
        "nfe": sampling["nfe"],
        "s_per_1000_samples": sampling["seconds_per_1000_samples"],
        "metrics_file": str(out),
    }


def round_trip(model: Any, images: torch.Tensor, setting: dict[str, Any]) -> dict[str, Any]:
    """`model.reconstruct(images)` at one setting, as its two solves (`encode`, then `generate`): the mean
    squared error and the PSNR (dB) of that mean error, in [0, 1] pixel units, and the NFE of each solve."""
    model.configure_sampler(**solver_settings(setting))
    start = time.perf_counter()
    with sampling_mode(model):
        noise = model.encode(images)
        nfe_encode = model.sampler.last_nfe
        reconstructed = model.generate(noise)
    seconds = time.perf_counter() - start
    mse = float((model.to_unit(reconstructed) - model.to_unit(images)).pow(2).mean())
    return {
        "n_images": len(images),
        "mse": mse,
        "psnr_db": 10 * math.log10(1 / mse) if mse > 0 else None,  # None: an exact round trip
        "nfe_encode": nfe_encode,
        "nfe_generate": model.sampler.last_nfe,
        "seconds": seconds,
    }


def first_test_images(ckpt: Path, model: Any, data_dir: str, n: int) -> torch.Tensor:
    """The first `n` test images of the checkpoint's data, in the model's pixel range."""
    datamodule = checkpoint_datamodule(ckpt, model, {"data_dir": data_dir})
    datamodule.check_available()
    return datamodule.to_model_range(datamodule.split_images("test")[:n])


def study(
    ckpt: Path,
    data_dir: str,
    settings: Sequence[str],
    n_samples: int,
    round_trip_images: int,
    eval_overrides: Sequence[str],
    folder: Path,
) -> dict[str, Any]:
    """Every setting's evaluation and round trip (see the module's docstring)."""
    parsed = [parse_setting(text) for text in settings]
    # sampling only: the test likelihood (minutes of ODE solves) is evaluate.py's, at the checkpoint's solver
    overrides = [f"ckpt_path={ckpt}", f"n_samples={n_samples}", f"data.data_dir={data_dir}"]
    overrides += ["likelihood.exact=false", *eval_overrides]
    composed = eval_config(overrides, folder)
    model: Any = load_model(ckpt)
    model.sample_from_ema = bool(composed.ema)  # the round trip uses the weights evaluate.py samples with
    images = first_test_images(ckpt, model, data_dir, round_trip_images)
    checkpoint_sampler = model.sampler.settings()
    rows = []
    for setting in parsed:
        row = setting | evaluate_setting(setting, overrides, folder)
        row["round_trip"] = round_trip(model, images, setting)
        rows.append(row)
        print(
            f"{setting['name']}: FID {row['fid']:.2f}, NFE {row['nfe']:.1f}, "
            f"{row['s_per_1000_samples']:.1f} s per 1,000 samples, "
            f"round trip MSE {row['round_trip']['mse']:.3g}",
            flush=True,
        )
    return {
        "ckpt_path": str(ckpt),
        "checkpoint_sampler": checkpoint_sampler,
        "n_samples": n_samples,
        "eval_overrides": list(eval_overrides),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "settings": rows,
    }


def plot(results: dict[str, Any], path: Path) -> Path:
    """FID against NFE (log axis) per method, each point annotated with its seconds per 1,000 samples."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    methods: dict[str, list[dict[str, Any]]] = {}
    for row in results["settings"]:
        methods.setdefault(row["method"], []).append(row)
    for method, rows in methods.items():
        rows = sorted(rows, key=lambda row: row["nfe"])
        adaptive = METHODS[method] is None
        nfe, fid = [row["nfe"] for row in rows], [row["fid"] for row in rows]
        if adaptive:
            axes.plot(nfe, fid, "*", markersize=14, label=f"{method} (adaptive)")
        else:
            axes.plot(nfe, fid, "o-", label=method)
        for row in rows:
            text = f"{row['s_per_1000_samples']:.0f} s/1k"
            if adaptive:
                text = f"NFE {row['nfe']:.0f}, atol=rtol={row['atol']:g}\n{text}"
            axes.annotate(
                text, (row["nfe"], row["fid"]), textcoords="offset points", xytext=(5, 5), fontsize=8
            )
    axes.set_xscale("log")
    ticks = sorted({round(row["nfe"]) for row in results["settings"]})
    axes.set_xticks(ticks, [str(tick) for tick in ticks])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.ticklabel_format(axis="y", useOffset=False)
    axes.set_xlabel("function evaluations (NFE) per sample")
    axes.set_ylabel(f"FID ({results['n_samples']} samples)")
    axes.set_title("Flow solvers: FID against NFE (annotated: seconds per 1,000 samples)")
    axes.legend()
    figure.savefig(path, dpi=120)
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="a flow model's checkpoint (train.py's)")
    parser.add_argument(
        "--data-dir", required=True, help="the folder of its data (MNIST: one with MNIST/raw/)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the results JSON; the plot goes beside it")
    parser.add_argument("--n-samples", type=int, default=2000, help="evaluate.py's n_samples per setting")
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, help="METHOD:NFE, dopri5[:TOL]")
    parser.add_argument("--round-trip-images", type=int, default=64, help="test images encoded and decoded")
    parser.add_argument(
        "--eval", nargs="+", default=[], metavar="KEY=VALUE", help="more evaluate.py overrides"
    )
    args = parser.parse_args(argv)
    for setting in args.settings:  # a typo fails before the first evaluation
        try:
            parse_setting(setting)
        except ConfigError as error:
            parser.error(str(error))
    folder = args.out.with_suffix("")  # each setting's metrics.json and sample grid
    folder.mkdir(parents=True, exist_ok=True)
    results = study(
        args.ckpt.expanduser().resolve(),
        args.data_dir,
        args.settings,
        args.n_samples,
        args.round_trip_images,
        args.eval,
        folder,
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    figure = plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {figure}")
    return results


if __name__ == "__main__":
    main()
