"""Read the runs of a sweep dir: configs, logged scalars, metrics.json, final images, failure records."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from genlab.errors import GenlabError
from genlab.launch.failures import read_failure
from genlab.launch.resumable_sweep import TRAIN_MINUTES, JobState, job_state
from genlab.mappings import flatten
from genlab.run_dir import (
    HYDRA,
    HYDRA_CONFIG,
    HYDRA_OVERRIDES,
    HYDRA_SETTINGS,
    METRICS,
    SAMPLES,
    csv_metrics,
    finished_file,
    hydra_file,
    last_checkpoint,
    pictures_dir,
    tensorboard_dir,
)

#: what one sample cost, the report's names of evaluate.py's protocol.sampling.{nfe,seconds_per_1000_samples}
SAMPLING_NFE, SAMPLING_SECONDS = "sampling.nfe", "sampling.seconds_per_1000_samples"
SAMPLING_COST = {"nfe": SAMPLING_NFE, "seconds_per_1000_samples": SAMPLING_SECONDS}

#: the picture tags of genlab's image callbacks: <run dir>/images/<tag>/epoch_XXX.png
IMAGE_TAGS = ("samples", "interpolation", "interpolation_real", "reconstructions", "trajectory")


@dataclass
class Run:
    """One job of a sweep, as found on disk."""

    path: Path
    #: the model's class name (from its config's `_target_`), a label for tables and figures
    model: str
    data: str
    seed: int | None
    overrides: list[str]
    failure: str | None = None
    #: the overrides that tell this run's configuration from the sweep's others (seed, model, data aside)
    configuration: str = "-"
    #: how tables name the run: its job folder, or <sweep dir>/<job folder> when sweeps are combined
    label: str = ""
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def final_scalars(self) -> dict[str, float]:
        """The last logged value of each scalar."""
        return {tag: points[-1][1] for tag, points in self.scalars.items() if points}


def read_tensorboard(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files in `log_dir`, as (step, value) lists."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, float(event.value)) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags().get("scalars", [])
    }


def read_csv_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of Lightning's CSVLogger metrics.csv, as (step, value) lists."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.get("step") or 0))
            for name, value in row.items():
                if name not in ("step", "epoch") and value not in (None, ""):
                    scalars.setdefault(name, []).append((step, float(value)))
    return scalars


def read_metrics(run_dir: Path) -> dict[str, float]:
    """Numeric entries of the newest metrics.json under the run dir (evaluate.py's output), flattened:
    its `metrics` (the real floor as `real_floor.<name>`), and the sampling cost of its protocol (NFE and
    seconds per 1,000 samples, as `sampling.<name>`; files written before evaluate.py recorded it have
    none); the other `protocol` settings are not results."""
    found = sorted(run_dir.rglob(METRICS), key=lambda p: p.stat().st_mtime)
    if not found:
        return {}
    try:
        raw = json.loads(found[-1].read_text())
    except json.JSONDecodeError as error:
        raise GenlabError(
            f"{found[-1]} is not valid JSON ({error}): re-run evaluate.py for that run"
        ) from None
    cost: dict[str, object] = {}
    if isinstance(raw, dict) and isinstance(raw.get("metrics"), dict):
        protocol = raw.get("protocol")
        sampling = protocol.get("sampling") if isinstance(protocol, dict) else None
        if isinstance(sampling, dict):
            cost = {name: sampling[key] for key, name in SAMPLING_COST.items() if key in sampling}
        raw = raw["metrics"]
    leaves = (flatten(raw) if isinstance(raw, dict) else {}) | cost
    return {
        name: float(value)
        for name, value in leaves.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def training_minutes(run_dir: Path) -> dict[str, float]:
    """The run's training time from its finished.json (train.py records it there), if it has one."""
    path = finished_file(run_dir)
    finished = json.loads(path.read_text()) if path.is_file() else {}
    minutes = finished.get(TRAIN_MINUTES)
    return {TRAIN_MINUTES: float(minutes)} if isinstance(minutes, int | float) else {}


def latest_images(run_dir: Path) -> dict[str, Path]:
    """The last epoch's picture of each image tag; "samples" is evaluate.py's grid of the samples it measured
    (samples.png beside metrics.json) when there is one, as it shows what the metrics judged (for a VAE
    with `prior=gaussian_mixture`, samples from the mixture, where the training-time grid uses N(0, I))."""
    images = {}
    for tag in IMAGE_TAGS:
        pictures = sorted(pictures_dir(run_dir, tag).glob("*.png"))
        if pictures:
            images[tag] = pictures[-1]
    if (run_dir / SAMPLES).is_file():
        images["samples"] = run_dir / SAMPLES
    return images


def read_run(run_dir: Path) -> Run:
    """One run dir of a multirun (Hydra's .hydra/ records, genlab's outputs)."""
    config = OmegaConf.load(hydra_file(run_dir, HYDRA_CONFIG))
    overrides = list(OmegaConf.load(hydra_file(run_dir, HYDRA_OVERRIDES)))
    choices = OmegaConf.load(hydra_file(run_dir, HYDRA_SETTINGS)).hydra.runtime.choices
    model = str(OmegaConf.select(config, "model._target_", default="?")).rsplit(".", 1)[-1]
    run = Run(run_dir, model, str(choices.get("data", "?")), OmegaConf.select(config, "seed"), overrides)
    failure = read_failure(run_dir)
    if tensorboard_dir(run_dir).is_dir():
        run.scalars = read_tensorboard(tensorboard_dir(run_dir))
    elif csv_metrics(run_dir).is_file():
        run.scalars = read_csv_log(csv_metrics(run_dir))
    run.metrics = read_metrics(run_dir) | training_minutes(run_dir)
    run.images = latest_images(run_dir)
    if failure is not None:
        run.failure = " ".join(failure["reason"].split())  # one line, for tables
    elif not last_checkpoint(run_dir).is_file():
        run.failure = "no checkpoints/last.ckpt: the job was killed or is still running"
    elif job_state(run_dir) is JobState.INTERRUPTED:
        run.failure = "interrupted (last.ckpt, no finished.json): run the sweep again in its folder to resume"
    elif any(not math.isfinite(value) for value in run.final_scalars().values()):
        run.failure = "a logged value is NaN or infinite"
    return run


def job_order(run_dir: Path) -> tuple[bool, int, str]:
    """Sort key of a sweep's job folders: by job number (0, 1, ..., 10: `3` or `3_model:vae+seed:1`), then
    other names (runs/<time>_<model>_<data>/ folders in time order)."""
    number = run_dir.name.split("_", 1)[0]
    return (not number.isdigit(), int(number) if number.isdigit() else 0, run_dir.name)


def read_sweep(sweep_dir: str | Path) -> list[Run]:
    """Every run of a sweep dir (its numbered job folders), in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise GenlabError(
            f"sweep dir {str(sweep_dir)!r} does not exist: pass outputs/<task>/multiruns/<time>"
        )
    run_dirs = [p.parent.parent for p in sweep_dir.glob(f"*/{HYDRA}/{HYDRA_OVERRIDES}")]
    if not run_dirs:
        raise GenlabError(
            f"no runs in {str(sweep_dir)!r} (no */.hydra/overrides.yaml): pass the folder of a "
            "`python train.py -m ...` sweep, e.g. outputs/vae_vs_gan/multiruns/<time>"
        )
    run_dirs.sort(key=job_order)
    runs = [read_run(run_dir) for run_dir in run_dirs]
    for run in runs:
        run.label = run.path.name
    label_configurations(runs)
    return runs


def read_sweeps(sweep_dirs: Sequence[str | Path]) -> list[Run]:
    """The runs of several sweep dirs as one sweep (e.g. the same grid run in parts, or study presets
    beside a tuned one): each dir's jobs in job order, the dirs in the order given; configurations are
    labelled across all of them."""
    if not sweep_dirs:
        raise GenlabError("no sweep dir given: pass at least one outputs/<task>/multiruns/<time>")
    runs = []
    for sweep_dir in sweep_dirs:
        for run in read_sweep(sweep_dir):
            if len(sweep_dirs) > 1:
                run.label = f"{Path(sweep_dir).name}/{run.path.name}"
            runs.append(run)
    label_configurations(runs)
    return runs


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def label_configurations(runs: list[Run]) -> list[str]:
    """Set each run's `configuration` to its overrides that vary across the sweep (seed, model and data
    have their own columns); return the overrides that all runs share."""
    values: dict[str, set[str]] = {}
    for run in runs:
        for override in run.overrides:
            values.setdefault(override_key(override), set()).add(override)
    counts = {key: sum(any(override_key(o) == key for o in run.overrides) for run in runs) for key in values}
    varying = {key for key, seen in values.items() if len(seen) > 1 or counts[key] < len(runs)}
    for run in runs:
        kept = [o for o in run.overrides if override_key(o) in varying - {"seed", "model", "data"}]
        run.configuration = " ".join(kept) or "-"
    return sorted(next(iter(seen)) for key, seen in values.items() if key not in varying)
