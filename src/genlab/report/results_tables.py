"""Render the results tables of README.md and docs/*.md from the results JSON files.

Numbers live in `results/**/*.json` (and `benchmarks/results/*.json`); a doc holds only a marker pair,

    <!-- results-table: mnist -->
    ...the table, rewritten by this script...
    <!-- /results-table -->

and `python -m genlab.report.results_tables` (`make results-tables`) fills every marked table from the files
named in `TABLES`, so a number is typed once, by the job that measured it. `--check` changes nothing and
exits 1 when a doc's table differs from its files (`tests/test_docs.py` runs the same check).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the docs whose marked tables this script writes, relative to the repository root
DOCS = ("README.md", "docs/*.md")

MARKER = re.compile(
    r"(?P<open><!-- results-table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /results-table -->)",
    re.S,
)

#: a file of training minutes beside the metrics files, keyed by their file names
MINUTES_FILE = "training_minutes.json"


@dataclass(frozen=True)
class Column:
    """One column: a text cell of each row, or a number read from each row's JSON by a dotted `key`.

    `fmt` formats the number (`"{:.1f}"`); a list value is formatted element by element; several source
    files give `mean ± std` (sample std over them); `error` names a key whose value follows as `± value`
    for a single source (KID's std over its subsets); `negate` turns a log-likelihood bound into an NLL;
    `minutes` reads the run's training minutes from `training_minutes.json` beside its file; `top_level`
    reads `key` from the file's top level instead of the row's `base`.
    """

    header: str
    key: str | None = None
    fmt: str = "{:.3f}"
    error: str | None = None
    prefix: str = ""
    negate: bool = False
    minutes: bool = False
    #: `key` starts at the file's top level (e.g. `protocol.sampling.nfe`), not at the row's `base`
    top_level: bool = False


@dataclass(frozen=True)
class Row:
    """One row: its text cells by column header (a text cell wins over a number), and the JSON file(s) its
    numbers come from."""

    cells: dict[str, str]
    sources: Sequence[str] = ()
    #: where the row's keys start inside each JSON: `metrics`, `metrics.real_floor`, `training.knobs.<case>`
    base: str = "metrics"
    #: this row's own key for a column, by header, where it differs from the column's
    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    columns: Sequence[Column]
    rows: Sequence[Row] = field(default_factory=tuple)


def _get(data: Any, dotted: str) -> Any:
    """`a.b.0.c`: dict keys, and list indices where a part is a number."""
    for part in dotted.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def _format(fmt: str, value: Any) -> str:
    if isinstance(value, list):
        return " ".join(fmt.format(v) for v in value)
    return fmt.format(value)


def _minutes(root: Path, source: str) -> float | None:
    path = root / source
    table = root / Path(source).parent / MINUTES_FILE
    if not table.exists():
        return None
    return json.loads(table.read_text()).get("minutes", {}).get(path.name)


def _cell(column: Column, row: Row, root: Path, load: Callable[[str], Any]) -> str:
    if column.header in row.cells:
        return row.cells[column.header]
    key = row.keys.get(column.header, column.key)
    if (key is None and not column.minutes) or not row.sources:
        return "-"
    if column.minutes:
        found = [_minutes(root, s) for s in row.sources]
        values = [v for v in found if v is not None]
        if len(values) < len(found):
            return "-"
        text = (
            _format(column.fmt, values[0])
            if len(values) == 1
            else f"{_format(column.fmt, min(values))}-{_format(column.fmt, max(values))}"
        )
        return f"{text} min"
    dotted = str(key) if column.top_level else f"{row.base}.{key}"
    got = [_get(load(s), dotted) for s in row.sources]
    values = [v for v in got if v is not None]
    if len(values) < len(got):
        return "-"
    if column.negate:
        values = [-v for v in values]
    if len(values) > 1:
        mean, std = statistics.mean(values), statistics.stdev(values)
        text = f"{_format(column.fmt, mean)} ± {_format(column.fmt, std)}"
    else:
        text = _format(column.fmt, values[0])
        error = _get(load(row.sources[0]), f"{row.base}.{column.error}") if column.error else None
        if error is not None:
            text += f" ± {_format(column.fmt, error)}"
    return column.prefix + text


def render(name: str, root: Path) -> str:
    """The markdown of table `name` (header, rule, rows), each number read from its JSON under `root`."""
    table = TABLES[name]
    cache: dict[str, Any] = {}

    def load(source: str) -> Any:
        if source not in cache:
            cache[source] = json.loads((root / source).read_text())
        return cache[source]

    lines = [
        "| " + " | ".join(c.header for c in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(c, row, root, load) for c in table.columns) + " |")
    return "\n".join(lines) + "\n"


def fill(text: str, root: Path) -> str:
    """`text` with every marked table rendered again; an unknown table name raises KeyError."""

    def one(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in TABLES:
            raise KeyError(f"unknown results table {name!r}: the tables are {', '.join(sorted(TABLES))}")
        return match["open"] + render(name, root) + match["close"]

    return MARKER.sub(one, text)


def marked_tables(text: str) -> list[str]:
    return [m["name"] for m in MARKER.finditer(text)]


def doc_paths(root: Path) -> list[Path]:
    return sorted(p for pattern in DOCS for p in root.glob(pattern))


def sources(root: Path) -> set[str]:
    """Every results file that some table reads (with its training-minutes file, where it has one)."""
    used = set()
    for table in TABLES.values():
        for row in table.rows:
            for source in row.sources:
                used.add(source)
                if (
                    any(c.minutes for c in table.columns)
                    and (root / Path(source).parent / MINUTES_FILE).exists()
                ):
                    used.add(str(Path(source).parent / MINUTES_FILE))
    return used


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in doc_paths(args.root):
        text = path.read_text()
        new = fill(text, args.root)
        if new != text:
            stale.append(path.relative_to(args.root))
            if not args.check:
                path.write_text(new)
    verb = "stale" if args.check else "rewritten"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if args.check and stale else 0


# ---------------------------------------------------------------------------------------------------------
# The tables. A row names its files; its text cells say what the run was (its command is in the doc).

MNIST = "results/mnist/best_vs_study"
MNIST_FLOOR = Row(
    {"model": "real floor (2000 train vs 2000 test images)", "seeds": "-", "training": "-"},
    [f"{MNIST}/study_a_mnist_vae_seed0_metrics.json"],
    "metrics.real_floor",
)
BEST_VAE = [f"{MNIST}/best_mnist_vae_seed{s}_metrics.json" for s in range(3)]
BEST_GAN = [f"{MNIST}/best_mnist_gan_seed{s}_metrics.json" for s in range(3)]
BEST_FLOW = [f"results/mnist/flow/best_mnist_flow_seed{s}_metrics.json" for s in range(3)]
STUDY_VAE = [f"{MNIST}/study_a_mnist_vae_seed0_metrics.json"]
STUDY_GAN = [f"{MNIST}/study_a_mnist_gan_seed0_metrics.json"]

FID = Column("FID", "fid", "{:.1f}")
KID4 = Column("KID", "kid_mean", "{:.4f}")
KID_ERR = Column("KID", "kid_mean", "{:.4f}", error="kid_std")
PRDC = [Column(h, h, "{:.3f}") for h in ("precision", "recall", "density", "coverage")]
ENTROPY = Column("class entropy", "class_entropy", "{:.3f}")
NLL = Column("test NLL (nats, IWAE)", "iwae", "{:.2f}", prefix="<= ", negate=True)
TRAINING = Column("training", minutes=True, fmt="{:.1f}")
BITS = Column("test bits/dim", "bits_per_dim", "{:.2f}")
#: what one sample costs, from evaluate.py's protocol
SAMPLING_COST = [
    Column("NFE", "protocol.sampling.nfe", "{:.0f}", top_level=True),
    Column("s / 1,000 samples", "protocol.sampling.seconds_per_1000_samples", "{:.1f}", top_level=True),
]
MNIST_METRICS = [FID, KID4, *PRDC, ENTROPY]

IMAGENETTE = "results/imagenette/best_vs_study"
SCREEN = "results/imagenette/screen32"
DIAGNOSIS = "results/imagenette/diagnosis"
BENCH = "benchmarks/results/vm-cpu.json"
THREE_SMALL = "results/mnist/three_families_small"
FLOW_SOLVERS = "results/mnist/flow/flow_solvers.json"
RECON = "results/mnist/reconstruction"


def _reconstruction_rows(model: str, name: str, methods: Sequence[str]) -> list[Row]:
    """One row per reconstruction method of `name`'s metrics.json, with its linear probe."""
    return [
        Row(
            {"model (seed 0)": model, "method": method},
            [f"{RECON}/{name}_seed0_metrics.json"],
            f"metrics.reconstruction.methods.{method}",
            keys={"linear probe": f"metrics.latent_probe.methods.{method}.accuracy"},
        )
        for method in methods
    ]


def _runs(folder: str, runs: Sequence[tuple[str, str]], header: str) -> list[Row]:
    return [Row({header: label}, [f"{folder}/{name}"]) for label, name in runs]


TABLES: dict[str, Table] = {
    "readme-mnist": Table(
        [
            Column("model"),
            FID,
            KID4,
            ENTROPY,
            Column("test NLL (nats)", "iwae", "{:.2f}", prefix="<= ", negate=True),
        ],
        [
            Row({"model": "`study_a_mnist_vae` (seed 0)"}, STUDY_VAE),
            Row({"model": "`study_a_mnist_gan` (seed 0)"}, STUDY_GAN),
            Row({"model": "`best_mnist_vae` (3 seeds)"}, BEST_VAE),
            Row({"model": "`best_mnist_gan` (3 seeds)"}, BEST_GAN),
            Row({"model": "`best_mnist_flow` (3 seeds, 10 epochs)"}, BEST_FLOW),
        ],
    ),
    "readme-imagenette": Table(
        [Column("model"), KID_ERR, FID, Column("coverage", "coverage", "{:.3f}")],
        [
            Row(
                {"model": "`study_a_imagenette_vae` (30 epochs)"}, [f"{IMAGENETTE}/study_a_vae_metrics.json"]
            ),
            Row(
                {"model": "`study_a_imagenette_gan` (30 epochs)"}, [f"{IMAGENETTE}/study_a_gan_metrics.json"]
            ),
            Row({"model": "`best_imagenette_vae` (3,600 batches)"}, [f"{IMAGENETTE}/best_vae_metrics.json"]),
            Row({"model": "`best_imagenette_gan` (2,800 batches)"}, [f"{IMAGENETTE}/best_gan_metrics.json"]),
        ],
    ),
    "mnist": Table(
        [Column("model"), Column("seeds"), TRAINING, *MNIST_METRICS, NLL],
        [
            MNIST_FLOOR,
            Row(
                {"model": "study A MLP VAE (`study_a_mnist_vae`), fixed-variance Gaussian", "seeds": "0"},
                STUDY_VAE,
            ),
            Row({"model": "study A MLP GAN (`study_a_mnist_gan`)", "seeds": "0"}, STUDY_GAN),
            Row({"model": "**`best_mnist_vae`**, Bernoulli", "seeds": "0, 1, 2"}, BEST_VAE),
            Row({"model": "**`best_mnist_gan`**", "seeds": "0, 1, 2"}, BEST_GAN),
        ],
    ),
    "mnist-seeds": Table(
        [Column("model"), Column("seed"), TRAINING, *MNIST_METRICS, NLL],
        [Row({"model": "best_mnist_vae", "seed": str(s)}, [f]) for s, f in enumerate(BEST_VAE)]
        + [Row({"model": "best_mnist_gan", "seed": str(s)}, [f]) for s, f in enumerate(BEST_GAN)],
    ),
    "mnist-gan-seed0": Table(
        [Column("best_mnist_gan seed 0, 20 epochs, drawn by"), *MNIST_METRICS],
        _runs(
            MNIST,
            [
                (
                    "the EMA G with the live G's BatchNorm statistics (the rows above)",
                    "best_mnist_gan_seed0_metrics.json",
                ),
                ("the trained G (`ema=false`)", "best_mnist_gan_seed0_trained_g_metrics.json"),
                (
                    "the EMA G with its own standing statistics (the default now)",
                    "best_mnist_gan_seed0_standing_stats_metrics.json",
                ),
            ],
            "best_mnist_gan seed 0, 20 epochs, drawn by",
        ),
    ),
    "mnist-gan-tuning": Table(
        [Column("run (EMA samples)"), FID, KID4, *PRDC[:2], ENTROPY],
        [
            Row(
                {"run (EMA samples)": "the anchors' recipe at half width, seeds 0-2, 20 epochs"},
                [
                    f"results/mnist/previous_gan_preset/previous_gan_preset_seed{s}_metrics.json"
                    for s in range(3)
                ],
            )
        ]
        + _runs(
            "results/mnist",
            [
                (
                    "the anchors' recipe at half width, after 8 epochs",
                    "tuning/anchors_half_width_epoch8_metrics.json",
                ),
                (
                    "DCGAN recipe (BCE, no spectral norm, Adam 2e-4 / 0.5) at half width, 6 epochs",
                    "tuning/dcgan_classic_recipe_epoch6_metrics.json",
                ),
                (
                    "DCGAN recipe at full width, BatchNorm D (the present preset), 6 epochs",
                    "tuning/dcgan_full_width_epoch6_metrics.json",
                ),
            ],
            "run (EMA samples)",
        ),
    ),
    "mnist-study-gan-tricks": Table(
        [Column("study A MLP GAN, 10 epochs, seed 0"), *MNIST_METRICS, TRAINING],
        _runs(
            "results/mnist/study_gan_tricks",
            [
                ("as the study ran it (`ablation=none`)", "none_metrics.json"),
                ("+ one-sided label smoothing (real targets 0.9)", "label_smoothing_metrics.json"),
                ("+ feature matching for G", "feature_matching_metrics.json"),
                ("+ TTUR (lr_d 4e-4, lr_g 1e-4)", "ttur_metrics.json"),
                ("+ EMA generator (decay 0.999), not one of the study's tricks", "ema_metrics.json"),
            ],
            "study A MLP GAN, 10 epochs, seed 0",
        ),
    ),
    "mnist-gan-ablation": Table(
        [Column("best_mnist_gan, 5 epochs, seed 0"), *MNIST_METRICS, TRAINING],
        _runs(
            "results/mnist/gan_ablation",
            [
                ("the preset (`ablation=none`)", "none_metrics.json"),
                ("EMA generator off (`no_ema`)", "no_ema_metrics.json"),
                ("D without BatchNorm (`no_batch_norm_d`)", "no_batch_norm_d_metrics.json"),
                ("half the width (`half_width`)", "half_width_metrics.json"),
                ("+ hinge loss (`hinge_loss`)", "hinge_loss_metrics.json"),
                ("+ spectral norm in D (`spectral_norm`)", "spectral_norm_metrics.json"),
                ("+ TTUR, lr_d 4e-4 / lr_g 1e-4 (`ttur`)", "ttur_metrics.json"),
                ("+ nearest upsampling + conv in G (`upsample_nearest`)", "upsample_nearest_metrics.json"),
            ],
            "best_mnist_gan, 5 epochs, seed 0",
        ),
    ),
    "imagenette": Table(
        [Column("model"), Column("budget"), TRAINING, KID_ERR, FID, *PRDC],
        [
            Row(
                {"model": "real floor (400 train vs the 400 val images)", "budget": "-", "training": "-"},
                [f"{IMAGENETTE}/best_gan_metrics.json"],
                "metrics.real_floor",
            ),
            Row(
                {
                    "model": "study A conv VAE (`study_a_imagenette_vae`)",
                    "budget": "30 epochs, 540 batches of 48",
                },
                [f"{IMAGENETTE}/study_a_vae_metrics.json"],
            ),
            Row(
                {
                    "model": "study A conv GAN (`study_a_imagenette_gan`)",
                    "budget": "30 epochs, 540 batches of 48",
                },
                [f"{IMAGENETTE}/study_a_gan_metrics.json"],
            ),
            Row(
                {"model": "**`best_imagenette_vae`**", "budget": "3,600 batches of 64"},
                [f"{IMAGENETTE}/best_vae_metrics.json"],
            ),
            Row(
                {"model": "**`best_imagenette_gan`** (EMA G)", "budget": "2,800 batches of 64"},
                [f"{IMAGENETTE}/best_gan_metrics.json"],
            ),
            Row(
                {
                    "model": "`best_imagenette_gan`, trained G (`ema=false`)",
                    "budget": "the same run",
                    "training": "-",
                },
                [f"{IMAGENETTE}/best_gan_trained_g_metrics.json"],
            ),
            Row(
                {
                    "model": "*earlier presets:*",
                    "budget": "",
                    "training": "",
                    "KID": "",
                    "FID": "",
                    "precision": "",
                    "recall": "",
                    "density": "",
                    "coverage": "",
                }
            ),
            Row(
                {"model": "`best_imagenette_vae` without `data.hflip`", "budget": "3,600 batches of 64"},
                [f"{IMAGENETTE}/previous_presets/best_vae_metrics.json"],
            ),
            Row(
                {
                    "model": "the same, its best `val/loss` checkpoint (epoch 18, 266 batches)",
                    "budget": "-",
                    "training": "-",
                },
                [f"{IMAGENETTE}/previous_presets/best_vae_epoch18_metrics.json"],
            ),
            Row(
                {"model": "`best_imagenette_gan` with lr_g 1e-4 (EMA G)", "budget": "2,800 batches of 64"},
                [f"{IMAGENETTE}/previous_presets/best_gan_metrics.json"],
            ),
        ],
    ),
    "mnist-three-families-small": Table(
        [
            Column("100 batches, seed 0"),
            FID,
            KID4,
            ENTROPY,
            BITS,
            *SAMPLING_COST,
        ],
        [
            Row(
                {"100 batches, seed 0": f"`best_mnist_{name}`"},
                [f"{THREE_SMALL}/best_mnist_{name}_metrics.json"],
            )
            for name in ("vae", "gan", "flow")
        ],
    ),
    "mnist-flow": Table(
        [Column("model"), Column("seeds"), TRAINING, *MNIST_METRICS, BITS, *SAMPLING_COST],
        [
            MNIST_FLOOR,
            Row({"model": "`best_mnist_vae`", "seeds": "0, 1, 2"}, BEST_VAE),
            Row({"model": "`best_mnist_gan`", "seeds": "0, 1, 2"}, BEST_GAN),
            Row({"model": "**`best_mnist_flow`**, midpoint, 50 NFE", "seeds": "0, 1, 2"}, BEST_FLOW),
        ],
    ),
    "mnist-flow-solvers": Table(
        [
            Column("solver (seed 1)"),
            Column("NFE", "nfe", "{:.0f}"),
            FID,
            KID_ERR,
            Column("s / 1,000 samples", "s_per_1000_samples", "{:.1f}"),
            Column("round-trip MSE", "round_trip.mse", "{:.2g}"),
            Column("round-trip PSNR (dB)", "round_trip.psnr_db", "{:.1f}"),
        ],
        [
            Row({"solver (seed 1)": label}, [FLOW_SOLVERS], f"settings.{i}")
            for i, label in enumerate(
                [
                    "euler, 5 steps",
                    "euler, 10 steps",
                    "euler, 20 steps",
                    "euler, 50 steps",
                    "dopri5, tol 1e-5",
                ]
            )
        ],
    ),
    "mnist-reconstruction": Table(
        [
            Column("model (seed 0)"),
            Column("method"),
            Column("MSE", "mse", "{:.4f}"),
            Column("PSNR (dB)", "psnr", "{:.2f}"),
            Column("SSIM", "ssim", "{:.3f}"),
            Column("feature distance", "feature_distance", "{:.3f}"),
            Column("label kept", "label_kept", "{:.3f}"),
            Column("linear probe", "probe", "{:.3f}", top_level=True),
            Column("s / image", "seconds_per_image", "{:.4f}"),
        ],
        [
            Row(
                {"model (seed 0)": "raw pixels (no model)", "method": "-"},
                [f"{RECON}/best_mnist_vae_seed0_metrics.json"],
                keys={"linear probe": "metrics.latent_probe.methods.pixels.accuracy"},
            ),
            *_reconstruction_rows(
                "`best_mnist_vae`", "best_mnist_vae", ["posterior mean", "posterior sample"]
            ),
            *_reconstruction_rows(
                "`best_mnist_gan`", "best_mnist_gan", ["inversion", "encoder", "encoder + inversion"]
            ),
        ],
    ),
    "inversion-settings": Table(
        [
            Column("steps", "steps", "{}"),
            Column("restarts", "restarts", "{}"),
            Column("feature weight", "feature_weight", "{:g}"),
            Column("MSE", "mse", "{:.4f}"),
            Column("PSNR (dB)", "psnr", "{:.2f}"),
            Column("SSIM", "ssim", "{:.3f}"),
            Column("feature distance", "feature_distance", "{:.3f}"),
            Column("label kept", "label_kept", "{:.2f}"),
            Column("s / image", "seconds_per_image", "{:.3f}"),
        ],
        [Row({}, [f"{RECON}/inversion_settings.json"], f"settings.{i}") for i in range(16)],
    ),
    "imagenette-flow-32px": Table(
        [
            Column("32 px, seed 0"),
            Column("budget"),
            TRAINING,
            KID_ERR,
            FID,
            *PRDC[:2],
            PRDC[3],
            *SAMPLING_COST,
        ],
        [
            Row(
                {"32 px, seed 0": "`best_imagenette_gan_32px`", "budget": "2,800 batches of 64"},
                [f"{SCREEN}/lrg2.json"],
            ),
            Row(
                {"32 px, seed 0": "`best_imagenette_flow_32px`", "budget": "600 batches of 64"},
                ["results/imagenette/flow/best_imagenette_flow_32px_metrics.json"],
            ),
        ],
    ),
    "imagenette-screen32": Table(
        [Column("32 px, 2,800 batches"), TRAINING, KID_ERR, FID, *PRDC[:2], PRDC[3]],
        _runs(
            SCREEN,
            [
                ("lr_d 4e-4 / lr_g 1e-4 (the anchors)", "base.json"),
                ("the same, D at full width (64 / 512)", "fulld.json"),
                ("the same, DiffAugment without cutout", "nocut.json"),
                ("lr_d 2e-4 / lr_g 2e-4", "lr22.json"),
                ("**lr_d 4e-4 / lr_g 2e-4 (the preset)**", "lrg2.json"),
                ("the preset + `data.hflip=true`", "lrg2flip.json"),
                ("the preset without cutout", "lrg2nocut.json"),
            ],
            "32 px, 2,800 batches",
        ),
    ),
    "imagenette-diagnosis": Table(
        [
            Column("run"),
            Column("G upsampling"),
            Column("optimiser"),
            Column("DiffAugment"),
            Column("KID", "kid_mean", "{:.3f}"),
            FID,
            Column("coverage", "coverage", "{:.3f}"),
            Column("the 64 samples"),
        ],
        [
            Row(
                {
                    "run": "1. `imagenette_gan_sngan`",
                    "G upsampling": "transposed",
                    "optimiser": "Adam 2e-4 / 2e-4, betas (0.5, 0.999)",
                    "DiffAugment": "-",
                    "the 64 samples": "one dark-bottom, light-top layout under a checkerboard grid "
                    "([png](../results/imagenette/diagnosis/sngan_as_is_30_epochs_samples.png))",
                },
                [f"{DIAGNOSIS}/sngan_as_is_30_epochs_metrics.json"],
            ),
            Row(
                {
                    "run": "2. + DiffAugment",
                    "G upsampling": "transposed",
                    "optimiser": "the same",
                    "DiffAugment": "colour, translation, cutout",
                    "the 64 samples": "one yellow-and-blue texture, the same checkerboard "
                    "([png](../results/imagenette/diagnosis/sngan_diffaugment_30_epochs_samples.png))",
                },
                [f"{DIAGNOSIS}/sngan_diffaugment_30_epochs_metrics.json"],
            ),
            Row(
                {
                    "run": "3. `best_imagenette_gan`, 420 batches",
                    "G upsampling": "nearest + conv",
                    "optimiser": "TTUR 1e-4 / 4e-4, betas (0, 0.999)",
                    "DiffAugment": "colour, translation, cutout",
                    "the 64 samples": "varied: sky, grass, dark interiors "
                    "([png](../results/imagenette/diagnosis/best_as_is_30_epochs_samples.png))",
                },
                [f"{DIAGNOSIS}/best_as_is_30_epochs_metrics.json"],
            ),
            Row(
                {
                    "run": "4. 3 with transposed convs",
                    "G upsampling": "transposed",
                    "optimiser": "TTUR, betas (0, 0.999)",
                    "DiffAugment": "the same",
                    "the 64 samples": "all 64 one periodic checkerboard "
                    "([png](../results/imagenette/diagnosis/best_transposed_30_epochs_samples.png))",
                },
                [f"{DIAGNOSIS}/best_transposed_30_epochs_metrics.json"],
            ),
            Row(
                {
                    "run": "5. 3 with the SNGAN preset's Adam",
                    "G upsampling": "nearest + conv",
                    "optimiser": "Adam 2e-4 / 2e-4, betas (0.5, 0.999)",
                    "DiffAugment": "the same",
                    "the 64 samples": "all 64 one blue-and-white blob on grey "
                    "([png](../results/imagenette/diagnosis/best_sngan_adam_30_epochs_samples.png))",
                },
                [f"{DIAGNOSIS}/best_sngan_adam_30_epochs_metrics.json"],
            ),
        ],
    ),
    "speed-training": Table(
        [
            Column("case"),
            Column("batch", "batch_size", "{}"),
            Column("genlab images/s", "genlab_images_per_s", "{:.0f}"),
            Column("loop images/s", "loop_images_per_s", "{:.0f}"),
            Column("ratio (median)", "ratio_median"),
            Column("window ratios", "ratios"),
            Column("same-optimiser loop images/s", "same_loop_images_per_s", "{:.0f}"),
            Column("ratio to it", "same_ratio_median"),
        ],
        [
            Row({"case": case}, [BENCH], f"training.training.{case}")
            for case in (
                "mnist-vae",
                "mnist-gan",
                "mnist-flow",
                "imagenette-vae-64",
                "imagenette-gan-64",
                "imagenette-sngan-64",
            )
        ],
    ),
    "speed-knobs": Table(
        [
            Column("knob (CPU)"),
            Column("ratio to the loop", "ratio_median"),
            Column("speed-up over the default", "speedup", "{:.2f}x"),
            Column("extra warm-up (s)", "extra_warmup_s", "{:.1f}"),
        ],
        [
            Row(
                {"knob (CPU)": "mnist-gan `model.compile=true`"}, [BENCH], "training.knobs.mnist-gan compile"
            ),
            Row(
                {"knob (CPU)": "imagenette-sngan-64 `model.channels_last=true`"},
                [BENCH],
                "training.knobs.imagenette-sngan-64 channels_last",
            ),
        ],
    ),
    "speed-batch-size": Table(
        [
            Column("MNIST VAE batch"),
            Column("genlab ms per step", "genlab_ms", "{:.1f}"),
            Column("same-optimiser loop ms per step", "loop_ms", "{:.1f}"),
        ],
        [
            Row({"MNIST VAE batch": str(b)}, [BENCH], f"scaling.batch_size.{b}")
            for b in (32, 64, 128, 256, 512)
        ],
    ),
    "speed-image-size": Table(
        [
            Column("DCGAN/SNGAN image size (batch 16)"),
            Column("genlab ms per step", "genlab_ms", "{:.0f}"),
            Column("same-optimiser loop ms per step", "loop_ms", "{:.0f}"),
        ],
        [
            Row({"DCGAN/SNGAN image size (batch 16)": str(s)}, [BENCH], f"scaling.image_size.{s}")
            for s in (32, 64, 160)
        ],
    ),
    "speed-data-mnist": Table(
        [
            Column("MNIST train batches of 64"),
            Column("genlab images/s", "genlab_images_per_s", "{:,.0f}"),
            Column(
                "torchvision `MNIST` + `ToTensor` + `DataLoader` images/s",
                "torchvision_images_per_s",
                "{:,.0f}",
            ),
            Column("speed-up", "speedup", "{:.0f}x"),
        ],
        [Row({"MNIST train batches of 64": "on the CPU"}, [BENCH], "data_path.mnist")],
    ),
    "speed-data-imagenette": Table(
        [
            Column("Imagenette setup, 1,400 images at 64 px"),
            Column("first decode of the JPEGs, s", "decode_s", "{:.2f}"),
            Column("from genlab's cache, s", "cached_s", "{:.2f}"),
            Column("speed-up", "speedup", "{:.0f}x"),
        ],
        [Row({"Imagenette setup, 1,400 images at 64 px": "on the CPU"}, [BENCH], "data_path.imagenette")],
    ),
    "speed-startup": Table(
        [Column("command"), Column("seconds (median of fresh processes)", "median_s", "{:.2f}")],
        [
            Row({"command": label}, [BENCH], f"startup.{key}")
            for key, label in (
                ("train_help", "`python train.py --help`"),
                ("train_unknown_key", "`python train.py model.lr=1e-3` (an argument error)"),
                ("evaluate_help", "`python evaluate.py --help`"),
                ("generate_help", "`python generate.py --help`"),
                ("compare_help", "`python compare.py --help`"),
            )
        ],
    ),
    "speed-flow-sampling": Table(
        [
            Column("solver (untrained net, batch 50)"),
            Column("NFE", "nfe", "{:.0f}"),
            Column("samples/s", "samples_per_s", "{:.1f}"),
            Column("s per 1,000 samples", "s_per_1000_samples", "{:.0f}"),
        ],
        [
            Row({"solver (untrained net, batch 50)": label}, [BENCH], f"flow_sampling.settings.{key}")
            for key, label in (
                ("euler-10", "euler, 10 steps"),
                ("midpoint-50", "midpoint, 25 steps (the preset's)"),
                ("dopri5", "dopri5, atol = rtol = 1e-5"),
            )
        ],
    ),
    "speed-evaluation": Table(
        [Column("evaluation"), Column("value", fmt="{:.1f}")],
        [
            Row(
                {"evaluation": "Inception images/s, batch 50 (100 digits)"},
                [BENCH],
                "evaluation.inception.by_batch_size.50",
                {"value": "images_per_s"},
            ),
            Row(
                {"evaluation": "Inception images/s inside `evaluate.py` (its 2000 samples, batch 200)"},
                [BENCH],
                "evaluation.evaluate",
                {"value": "inception_images_per_s"},
            ),
            Row(
                {"evaluation": "a whole `evaluate.py n_samples=2000`, reference cache warm, s"},
                [BENCH],
                "evaluation.evaluate",
                {"value": "wall_s"},
            ),
        ],
    ),
}

if __name__ == "__main__":
    sys.exit(main())
