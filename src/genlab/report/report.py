"""The comparison report of a sweep (VAE vs GAN, or any genlab models): SWEEP_DIR/report.md, report.csv,
runs.csv and figures/ (`compare.py`)."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import imread

from genlab.launch.resumable_sweep import TRAIN_MINUTES
from genlab.pictures.curves import moving_average
from genlab.report.runs import (
    SAMPLING_NFE,
    SAMPLING_SECONDS,
    Run,
    job_order,
    label_configurations,
    read_sweeps,
)
from genlab.run_dir import SAMPLES

#: which way is better for the metrics evaluate.py writes; metrics not listed are shown but not judged
HIGHER_IS_BETTER = {
    "fid": False,
    "kid_mean": False,
    "precision": True,
    "recall": True,
    "density": True,
    "coverage": True,
    "test_elbo": True,
    "iwae": True,
    "bits_per_dim": False,
}

#: the report's headline table: (metric, column title, sign); the VAE's IWAE bound is shown as an NLL in nats,
#: the flow's exact likelihood in bits/dim
QUALITY = [
    ("fid", "FID", 1),
    ("kid_mean", "KID", 1),
    ("precision", "precision", 1),
    ("recall", "recall", 1),
    ("density", "density", 1),
    ("coverage", "coverage", 1),
    ("class_entropy", "class entropy", 1),
    ("iwae", "test NLL (IWAE, nats)", -1),
    ("bits_per_dim", "test bits/dim", 1),
    (TRAIN_MINUTES, "training minutes", 1),
]
#: the quality table's last column: what a sample costs (evaluate.py's protocol.sampling)
SAMPLING_TITLE = "sampling (NFE, s / 1,000 samples)"


@dataclass
class Row:
    """One configuration of the sweep: its runs over seeds and the mean and std of each value."""

    configuration: str
    model: str
    data: str
    runs: list[Run]
    mean: dict[str, float]
    std: dict[str, float]

    @property
    def failures(self) -> list[Run]:
        return [run for run in self.runs if not run.ok]


def run_values(run: Run) -> dict[str, float]:
    """What the table shows of a run: evaluate.py's metrics, then the final logged val/ and train/ losses."""
    scalars = {
        tag: value
        for tag, value in run.final_scalars().items()
        if tag.startswith("val/") or (tag.startswith("train/") and tag.endswith("loss"))
    }
    return run.metrics | scalars


def summarise(runs: Sequence[Run]) -> list[Row]:
    """Group runs by configuration (seeds pooled); mean and sample std over the successful runs."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.data, run.model, run.configuration), []).append(run)
    rows = []
    for (data, model, configuration), members in sorted(groups.items()):
        values: dict[str, list[float]] = {}
        for run in members:
            if run.ok:
                for name, value in run_values(run).items():
                    values.setdefault(name, []).append(value)
        mean = {name: statistics.fmean(v) for name, v in values.items()}
        # a std needs two values: a run without a metric (not evaluated yet) adds none
        std = {name: statistics.stdev(v) for name, v in values.items() if len(v) > 1}
        rows.append(Row(configuration, model, data, members, mean, std))
    return rows


def columns(rows: Sequence[Row]) -> list[str]:
    """Table columns: judged metrics first (in HIGHER_IS_BETTER order), then the rest alphabetically."""
    names = {name for row in rows for name in row.mean}
    judged = [name for name in HIGHER_IS_BETTER if name in names]
    return judged + sorted(names - set(judged))


def models_in_order(rows: Sequence[Row]) -> list[str]:
    """The models of a sweep, in the order of their first job (`model=vae,gan`: VAE, then GAN)."""
    first: dict[str, tuple[bool, int, str]] = {}
    for row in rows:
        for run in row.runs:
            key = job_order(run.path)
            first[row.model] = min(first.get(row.model, key), key)
    return sorted(first, key=first.__getitem__)


def winners(rows: Sequence[Row]) -> list[tuple[str, str, list[tuple[str, float]]]]:
    """Per dataset and judged metric that at least two models share: (data, metric, ranking), the ranking
    being (model, its best configuration's mean) from best to worst (ties keep the sweep's model order)."""
    results = []
    order = models_in_order(rows)
    for data in sorted({row.data for row in rows}):
        for metric, higher in HIGHER_IS_BETTER.items():
            best: dict[str, float] = {}
            for row in rows:
                if row.data == data and metric in row.mean:
                    value = row.mean[metric]
                    if row.model not in best or (value > best[row.model]) == higher:
                        best[row.model] = value
            if len(best) >= 2:
                ranked = sorted((m for m in order if m in best), key=best.__getitem__, reverse=higher)
                results.append((data, metric, [(model, best[model]) for model in ranked]))
    return results


def verdict(data: str, metric: str, ranking: Sequence[tuple[str, float]]) -> str:
    """One summary line: who wins on `metric`, or which models tie for first, then the others in order."""
    best = ranking[0][1]
    tied = [model for model, value in ranking if value == best]
    rest = ", ".join(f"{model} {value:.4g}" for model, value in ranking[len(tied) :])
    if len(tied) > 1:
        then = f"; then {rest}" if rest else ""
        names = ", ".join(tied[:-1]) + f" and {tied[-1]}"
        return f"- {data}: {names} tie on {metric} ({best:.4g}{then})"
    return f"- {data}: **{tied[0]}** wins on {metric} ({best:.4g} vs {rest})"


def curves_figure(runs: Sequence[Run], model: str, data: str) -> Figure | None:
    """Every run's training curves of one model on one dataset, overlaid (one panel per train/ scalar).

    A pyplot-free Figure: works headless (compare.py) and shows inline in a notebook."""
    tags = sorted({tag for run in runs for tag in run.scalars if tag.startswith("train/")})
    if not tags:
        return None
    figure = Figure(figsize=(5 * len(tags), 3.6))
    axes = figure.subplots(1, len(tags), squeeze=False)
    for axis, tag in zip(axes[0], tags, strict=True):
        for run in runs:
            if tag in run.scalars:
                steps, values = zip(*run.scalars[tag], strict=True)
                label = (
                    f"{run.label}: seed={run.seed}"
                    + ("" if run.configuration == "-" else f" {run.configuration}")
                    + ("" if run.ok else " (failed)")
                )
                style = "-" if run.ok else "--"
                if len(values) > 50:
                    # As TensorBoard's smoothing: each batch faint, the moving average over it solid.
                    (raw,) = axis.plot(steps, values, linewidth=0.5, linestyle=style, alpha=0.2)
                    smooth = moving_average(np.asarray(values, dtype=float), max(2, len(values) // 50))
                    color = raw.get_color()
                    axis.plot(steps, smooth, linewidth=1.2, linestyle=style, color=color, label=label)
                else:
                    axis.plot(steps, values, linewidth=0.8, linestyle=style, label=label)
        axis.set(title=f"{model} on {data}: {tag}", xlabel="step", ylabel=tag.split("/")[-1])
    axes[0][0].legend(fontsize=6)
    figure.tight_layout()
    return figure


def shown_samples(row: Row) -> Run | None:
    """The run whose sample grid stands for a configuration: its first successful seed that saved one."""
    return next((run for run in row.runs if run.ok and "samples" in run.images), None)


def pictures_figure(panels: Sequence[tuple[str, Path]], per_row: int = 4) -> Figure:
    """PNG files side by side, `per_row` to a row, each under its title."""
    columns = min(len(panels), per_row)
    rows_of_panels = -(-len(panels) // columns)
    figure = Figure(figsize=(4 * columns, 4.5 * rows_of_panels))
    axes = figure.subplots(rows_of_panels, columns, squeeze=False).ravel()
    for axis in axes:
        axis.axis("off")
    for axis, (title, picture) in zip(axes, panels, strict=False):
        axis.imshow(imread(picture), cmap="gray")
        axis.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure


def samples_figure(rows: Sequence[Row], data: str) -> Figure | None:
    """The final sample grids of each configuration on one dataset, side by side (its first successful seed
    that saved samples; evaluate.py's grid of the measured samples where there is one)."""
    picked = [(row, shown_samples(row)) for row in rows if row.data == data]
    shown = [(row, run) for row, run in picked if run is not None]
    if not shown:
        return None
    order = models_in_order(rows)
    shown.sort(key=lambda item: (order.index(item[0].model), job_order(item[1].path)))
    panels = []
    for row, run in shown:
        picture = run.images["samples"]
        source = "evaluate.py samples" if picture.name == SAMPLES else picture.name
        panels.append((f"{row.model} {row.configuration}\nseed={run.seed}, {source}", picture))
    return pictures_figure(panels)


def missing_samples_reason(runs: Sequence[Run]) -> str:
    """Why none of `runs` has a sample grid: they all failed (with the first one's reason), or those that
    finished saved no images/samples/*.png (the sample-grid callback was off)."""
    failed = [run for run in runs if not run.ok]
    if runs and len(failed) == len(runs):
        count = "its run" if len(failed) == 1 else f"all {len(failed)} runs"
        return f"{count} failed (`{failed[0].label}`: {failed[0].failure})"
    reason = "no images/samples/*.png in the finished runs (the sample-grid callback was off)"
    return reason + (f"; {len(failed)} other runs failed" if failed else "")


def format_value(row: Row, name: str, sign: int = 1) -> str:
    """`name`'s mean (times `sign`), ± its std over seeds when two or more have it."""
    if name not in row.mean:
        return "-"
    mean = sign * row.mean[name]
    return f"{mean:.4g} ± {row.std[name]:.2g}" if name in row.std else f"{mean:.4g}"


def sampling_cost(row: Row) -> str:
    """The mean NFE and the seconds per 1,000 samples of a configuration's evaluations ("-" for runs
    evaluated before evaluate.py recorded them)."""
    if SAMPLING_SECONDS not in row.mean:
        return "-"
    nfe = f"{row.mean[SAMPLING_NFE]:.4g}" if SAMPLING_NFE in row.mean else "-"
    return f"{nfe} NFE, {format_value(row, SAMPLING_SECONDS)} s"


def quality_table(rows: Sequence[Row]) -> list[str]:
    """The headline table: evaluate.py's sample metrics, the likelihoods, the training time and the sampling
    cost of each configuration, with the real-data floor (train vs reference images) first; [] before any
    evaluation."""
    shown = [(name, title, sign) for name, title, sign in QUALITY if any(name in row.mean for row in rows)]
    if all(name == TRAIN_MINUTES for name, _, _ in shown):
        return []
    cost = any(SAMPLING_SECONDS in row.mean for row in rows)
    titles = [title for _, title, _ in shown] + ([SAMPLING_TITLE] if cost else [])
    lines = [
        "| data | model | configuration | runs | " + " | ".join(titles) + " |",
        "|" + "---|" * (len(titles) + 4),
    ]
    floor = next((row for row in rows if "real_floor.fid" in row.mean), None)
    if floor is not None:
        cells = [
            f"{floor.mean[f'real_floor.{n}']:.4g}" if f"real_floor.{n}" in floor.mean else "-"
            for n, _, _ in shown
        ] + (["-"] if cost else [])
        lines.append(
            f"| {floor.data} | real floor | real train vs reference images | - | " + " | ".join(cells) + " |"
        )
    for row in rows:
        cells = [format_value(row, name, sign) for name, _, sign in shown]
        cells += [sampling_cost(row)] if cost else []
        done = len(row.runs) - len(row.failures)
        lines.append(
            f"| {row.data} | {row.model} | `{row.configuration}` | {done}/{len(row.runs)} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def write_csvs(rows: Sequence[Row], runs: Sequence[Run], names: Sequence[str], sweep_dir: Path) -> None:
    """report.csv: one row per configuration (mean and std); runs.csv: one row per run."""
    with (sweep_dir / "report.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "configuration",
                "model",
                "data",
                "runs",
                "failed",
                "failures",
                *[f"{n}_{s}" for n in names for s in ("mean", "std")],
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    row.configuration,
                    row.model,
                    row.data,
                    len(row.runs),
                    len(row.failures),
                    " | ".join(f"{r.label}: {r.failure}" for r in row.failures),
                    *[row.__getattribute__(s).get(n, "") for n in names for s in ("mean", "std")],
                ]
            )
    with (sweep_dir / "runs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "configuration", "model", "data", "seed", "status", "failure", *names])
        for run in runs:
            values = run_values(run)
            writer.writerow(
                [
                    run.label,
                    run.configuration,
                    run.model,
                    run.data,
                    run.seed,
                    "ok" if run.ok else "failed",
                    run.failure or "",
                    *[values.get(n, "") for n in names],
                ]
            )


def write_report(sweep_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Read every run of one or more sweep dirs and write report.md, report.csv, runs.csv and figures/ into
    `out` (default: the first sweep dir)."""
    sweep_dirs = [sweep_dirs] if isinstance(sweep_dirs, str | Path) else list(sweep_dirs)
    runs = read_sweeps(sweep_dirs)
    sweep_dir = Path(out) if out is not None else Path(sweep_dirs[0])
    sweep_dir.mkdir(parents=True, exist_ok=True)
    rows = summarise(runs)
    names = columns(rows)
    figures = sweep_dir / "figures"
    figures.mkdir(exist_ok=True)
    write_csvs(rows, runs, names, sweep_dir)

    failed = [run for run in runs if not run.ok]
    lines = [
        f"# Sweep report: {', '.join(Path(d).name for d in sweep_dirs)}",
        "",
        f"{len(runs)} runs in {len(rows)} configurations; {len(runs) - len(failed)} finished, "
        f"{len(failed)} failed. Values: mean ± std over the finished seeds of each configuration "
        "(metrics.json from evaluate.py where present, then the last logged val/ and train/ losses).",
        "",
        "Overrides common to all runs: " + (" ".join(f"`{o}`" for o in label_configurations(runs)) or "none"),
        "",
        "## Summary",
        "",
    ]
    lines += [verdict(*result) for result in winners(rows)] or [
        "- No metric that two models share (run `python evaluate.py ckpt_path=...` on each run for FID, "
        "KID, precision/recall): the losses below are not comparable between different models."
    ]
    quality = quality_table(rows)
    if quality:
        lines += ["", "## Quality", ""] + quality
    lines += ["", "## Final values per configuration", ""]
    header = ["data", "model", "configuration", "runs", *names]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        runs_cell = f"{len(row.runs) - len(row.failures)}/{len(row.runs)}" + (
            f" (**{len(row.failures)} failed**)" if row.failures else ""
        )
        cells = [
            row.data,
            row.model,
            f"`{row.configuration}`",
            runs_cell,
            *[format_value(row, n) for n in names],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{run.label}` (`{run.configuration}` seed={run.seed}): {run.failure}" for run in failed]

    lines += ["", "## Training curves", ""]
    for data in sorted({run.data for run in runs}):
        for model in models_in_order(rows):
            selected = [run for run in runs if run.data == data and run.model == model]
            name = f"curves_{data}_{model.lower()}.png"
            figure = curves_figure(selected, model, data) if selected else None
            if figure is not None:
                figure.savefig(figures / name, dpi=110)
                lines += [f"![{model} on {data}](figures/{name})", ""]
    lines += ["## Final samples, side by side", ""]
    for data in sorted({run.data for run in runs}):
        name = f"samples_{data}.png"
        figure = samples_figure(rows, data)
        if figure is not None:
            figure.savefig(figures / name, dpi=110)
            lines += [f"![samples on {data}](figures/{name})", ""]
            missing = [row for row in rows if row.data == data and shown_samples(row) is None]
            for row in missing:
                reason = missing_samples_reason(row.runs)
                lines.append(f"- {row.model} (`{row.configuration}`): no sample grid: {reason}.")
            lines += [""] if missing else []
        else:
            on_data = [run for run in runs if run.data == data]
            lines += [f"- {data}: no sample grid: {missing_samples_reason(on_data)}.", ""]
    path = sweep_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
