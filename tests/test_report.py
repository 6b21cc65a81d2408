"""The sweep report (`compare.py`) on a fake sweep dir: table, CSVs, figures, summary, failed runs."""

import csv
import re
import runpy
import statistics
import sys

import pytest
from helpers import ROOT
from sweep_fakes import write_fake_run, write_fake_sweep

from genlab.errors import GenlabError
from genlab.report.report import samples_figure, summarise, write_report
from genlab.report.runs import read_sweep


@pytest.fixture
def fake_sweep(tmp_path):
    sweep_dir = tmp_path / "sweep"
    return sweep_dir, write_fake_sweep(sweep_dir)


def test_runs_are_read_with_their_status(fake_sweep):
    sweep_dir, _ = fake_sweep
    runs = read_sweep(sweep_dir)
    assert [run.path.name for run in runs] == ["0", "1", "2", "3", "4", "5"]
    assert [run.ok for run in runs] == [True, True, True, True, False, False]
    assert "nan" in runs[4].failure and "last.ckpt" in runs[5].failure
    (runs[0].path / "finished.json").unlink()  # stopped after a checkpoint
    assert "interrupted" in read_sweep(sweep_dir)[0].failure
    assert runs[0].metrics["settings.num_samples"] == 64  # nested metrics are flattened
    assert runs[1].metrics["time/train_minutes"] == 1.5 + runs[1].seed  # from finished.json
    assert runs[0].images["samples"].name == "epoch_001.png"  # the final grid
    assert [step for step, _ in runs[2].scalars["train/g_loss"]] == [0, 1, 2, 3, 4]


def test_report_table_csv_and_figures(fake_sweep):
    sweep_dir, values = fake_sweep
    report = write_report(sweep_dir).read_text()

    with (sweep_dir / "report.csv").open() as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"VAE", "GAN"}  # one configuration per model: seeds pooled
    for model, row in rows.items():
        fids = values[model.lower()]["fid"]
        assert float(row["fid_mean"]) == pytest.approx(statistics.fmean(fids))
        assert float(row["fid_std"]) == pytest.approx(statistics.stdev(fids))
        assert (row["runs"], row["failed"]) == ("3", "1")
    assert "nan" in rows["GAN"]["failures"]
    with (sweep_dir / "runs.csv").open() as handle:
        statuses = [row["status"] for row in csv.DictReader(handle)]
    assert statuses == ["ok"] * 4 + ["failed"] * 2

    final = report.split("## Final values per configuration")[1].split("##")[0]
    table = [line for line in final.splitlines() if line.startswith("| mnist")]
    assert len(table) == 2 and all("2/3 (**1 failed**)" in line for line in table)
    vae_fid, gan_fid = (statistics.fmean(values[m]["fid"]) for m in ("vae", "gan"))
    fid_winner = "VAE" if vae_fid < gan_fid else "GAN"
    assert f"**{fid_winner}** wins on fid" in report
    assert "VAE and GAN tie on precision" in report and "## Failed runs" in report  # equal means
    for name in ("curves_mnist_vae.png", "curves_mnist_gan.png", "samples_mnist.png"):
        assert (sweep_dir / "figures" / name).stat().st_size > 0
        assert f"figures/{name}" in report


def test_quality_table_has_the_floor_the_nll_and_the_training_time(fake_sweep):
    sweep_dir, values = fake_sweep
    report = write_report(sweep_dir).read_text()
    quality = report.split("## Quality")[1].split("##")[0].strip().splitlines()
    assert quality[0] == (
        "| data | model | configuration | runs | FID | KID | precision | test NLL (IWAE, nats) "
        "| training minutes | sampling (NFE, s / 1,000 samples) |"
    )
    assert quality[2] == (
        "| mnist | real floor | real train vs reference images | - | 1 | 0.0001 | - | - | - | - |"
    )
    rows = {line.split(" | ")[1]: line.split(" | ")[3:] for line in quality[3:]}
    vae_fid = statistics.fmean(values["vae"]["fid"])
    assert rows["VAE"][:2] == ["2/3", f"{vae_fid:.4g} ± 7.1"]
    assert rows["VAE"][4] == "91.5 ± 0.71" and rows["GAN"][4] == "-"  # -IWAE: the VAE's only
    assert rows["VAE"][5] == "3 ± 0.71"  # finished.json's minutes: 1.5 + seed, seeds 1 and 2
    # protocol.sampling of the GAN's evaluations; the VAE's were evaluated before evaluate.py recorded it
    assert rows["GAN"][6] == "1 NFE, 0.65 ± 0.071 s |" and rows["VAE"][6] == "- |"


def test_three_model_families_are_ranked_with_their_sampling_cost(tmp_path):
    sweep_dir = tmp_path / "sweep"
    values = write_fake_sweep(sweep_dir, models=("vae", "gan", "flow"))
    report = write_report(sweep_dir).read_text()
    fids = {model: statistics.fmean(values[model]["fid"]) for model in values}
    assert fids["flow"] < fids["gan"] < fids["vae"]
    assert "- mnist: **FlowMatching** wins on fid (45 vs GAN 65, VAE 95)" in report
    assert "- mnist: VAE, GAN and FlowMatching tie on precision (0.65)" in report
    quality = report.split("## Quality")[1].split("##")[0].strip().splitlines()
    header = quality[0].strip("| ").split(" | ")
    assert header[-3:] == ["test bits/dim", "training minutes", "sampling (NFE, s / 1,000 samples)"]
    rows = {line.split(" | ")[1]: line.strip("| ").split(" | ") for line in quality[3:]}
    assert set(rows) == {"VAE", "GAN", "FlowMatching"}
    assert rows["FlowMatching"][-3:] == ["1.65 ± 0.071", "3 ± 0.71", "50 NFE, 21.5 ± 0.71 s"]
    assert rows["GAN"][-3:] == ["-", "3 ± 0.71", "1 NFE, 0.65 ± 0.071 s"]
    assert rows["VAE"][-1] == "-"
    with (sweep_dir / "report.csv").open() as handle:
        flow = next(row for row in csv.DictReader(handle) if row["model"] == "FlowMatching")
    assert float(flow["sampling.nfe_mean"]) == 50 and float(flow["bits_per_dim_mean"]) == pytest.approx(1.65)
    assert (sweep_dir / "figures" / "curves_mnist_flowmatching.png").stat().st_size > 0


def test_report_without_metrics_or_images(tmp_path):
    """Before evaluate.py and the picture callbacks: losses are tabled, the summary says why no more."""
    for job, model in enumerate(("vae", "gan")):
        write_fake_run(tmp_path / str(job), model, "mnist", 1)
        for picture in (tmp_path / str(job) / "images" / "samples").glob("*.png"):
            picture.unlink()
    report = write_report(tmp_path).read_text()
    assert "No metric that two models share" in report
    assert "train/d_loss" in report and "val/loss" in report
    assert not (tmp_path / "figures" / "samples_mnist.png").exists()


def run_compare(*args: str, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["compare.py", *args])
    runpy.run_path(str(ROOT / "compare.py"), run_name="__main__")


def test_compare_cli(fake_sweep, tmp_path, monkeypatch, capsys):
    sweep_dir, _ = fake_sweep
    run_compare(str(sweep_dir), monkeypatch=monkeypatch)
    assert "report.md" in capsys.readouterr().out
    assert (sweep_dir / "report.md").is_file() and (sweep_dir / "report.csv").is_file()
    with pytest.raises(SystemExit) as exit_info:
        run_compare(str(tmp_path / "nope"), monkeypatch=monkeypatch)
    assert exit_info.value.code == 1
    assert re.search("error: sweep dir .* does not exist", capsys.readouterr().err)


def test_empty_dir_is_a_clear_error(tmp_path):
    with pytest.raises(GenlabError, match="no runs in"):
        read_sweep(tmp_path)


def test_equal_values_are_a_tie_not_a_win(tmp_path):
    write_fake_run(tmp_path / "s" / "0", "vae", "mnist", 1, metrics={"fid": 80.0, "precision": 0.0})
    write_fake_run(tmp_path / "s" / "1", "gan", "mnist", 1, metrics={"fid": 60.0, "precision": 0.0})
    report = write_report(tmp_path / "s").read_text()
    assert "**GAN** wins on fid (60 vs VAE 80)" in report
    assert "VAE and GAN tie on precision (0)" in report and "wins on precision" not in report


def test_samples_figure_shows_every_configuration_and_prefers_the_evaluated_grid(tmp_path):
    """Two configurations of each model (the four-model table of mnist_best_vs_study): four panels; a run with
    evaluate.py's samples.png shows that grid, what its metrics measured."""
    for job, (model, extra) in enumerate(
        [("vae", "experiment=a"), ("vae", "experiment=b"), ("gan", "experiment=c"), ("gan", "experiment=d")]
    ):
        write_fake_run(tmp_path / str(job), model, "mnist", 0, {"fid": 1.0 + job}, extra=(extra,))
    evaluated = tmp_path / "1" / "samples.png"
    evaluated.write_bytes((tmp_path / "1" / "images" / "samples" / "epoch_001.png").read_bytes())
    runs = read_sweep(tmp_path)
    assert runs[1].images["samples"] == evaluated and runs[0].images["samples"].name == "epoch_001.png"
    figure = samples_figure(summarise(runs), "mnist")
    titles = [axis.get_title() for axis in figure.axes if axis.images]
    assert len(titles) == 4
    assert "experiment=b" in titles[1] and "evaluate.py samples" in titles[1] and "epoch_001" in titles[0]


def test_sweeps_in_parts_make_one_report(tmp_path, monkeypatch):
    """compare.py DIR1 DIR2 --out DIR: the runs of both sweeps in one table, each named by its sweep."""
    write_fake_run(tmp_path / "part_a" / "0", "vae", "mnist", 0, metrics={"fid": 80.0})
    write_fake_run(tmp_path / "part_a" / "1", "vae", "mnist", 1, metrics={"fid": 70.0})
    write_fake_run(tmp_path / "part_b" / "0", "gan", "mnist", 0, metrics={"fid": 60.0})
    run_compare(
        str(tmp_path / "part_a"),
        str(tmp_path / "part_b"),
        "--out",
        str(tmp_path / "all"),
        monkeypatch=monkeypatch,
    )
    report = (tmp_path / "all" / "report.md").read_text()
    assert "**GAN** wins on fid (60 vs VAE 75)" in report
    with (tmp_path / "all" / "runs.csv").open() as handle:
        assert [row["run"] for row in csv.DictReader(handle)] == ["part_a/0", "part_a/1", "part_b/0"]
    assert not (tmp_path / "part_a" / "report.md").exists()


def test_a_metric_of_one_seed_has_no_spread(tmp_path):
    """Two seeds, only one evaluated: its FID is shown without a ± 0; the loss of both keeps its spread."""
    write_fake_run(tmp_path / "s" / "0", "vae", "mnist", 0, metrics={"fid": 80.0})
    write_fake_run(tmp_path / "s" / "1", "vae", "mnist", 1)
    (row,) = summarise(read_sweep(tmp_path / "s"))
    assert row.mean["fid"] == 80.0 and "fid" not in row.std and "val/loss" in row.std
    assert "| 80 |" in write_report(tmp_path / "s").read_text()


def test_long_curves_are_smoothed_like_tensorboard(tmp_path):
    """Per-batch losses of a long run: each batch drawn faint, the labelled line is their moving average."""
    import numpy as np

    from genlab.report.report import curves_figure
    from genlab.report.runs import Run

    noisy = np.random.default_rng(0).normal(1.0, 0.5, 1000)
    run = Run(path=tmp_path / "0", model="GAN", data="mnist", seed=0, overrides=[], label="0")
    run.scalars = {"train/d_loss": list(enumerate(noisy.tolist()))}
    axis = curves_figure([run], "GAN", "mnist").axes[0]
    raw, smooth = axis.get_lines()
    assert raw.get_alpha() < 0.5 and raw.get_label().startswith("_")  # unlabelled: not in the legend
    assert smooth.get_label() == "0: seed=0" and smooth.get_color() == raw.get_color()
    assert np.std(smooth.get_ydata()[100:]) < 0.3 * np.std(noisy)  # a 20-batch mean: ~0.22


def test_a_missing_picture_of_failed_runs_says_they_failed(tmp_path):
    """Runs that failed have no sample grid because they failed, not because a callback was off."""
    write_fake_run(tmp_path / "0", "vae", "mnist", 0, failure="MNIST not found in /x")
    write_fake_run(tmp_path / "1", "gan", "imagenette", 0, metrics={"fid": 1.0})
    write_fake_run(tmp_path / "2", "vae", "imagenette", 0, failure="seed=[1, 2] is invalid")
    report = write_report(tmp_path).read_text()
    assert "- mnist: no sample grid: its run failed (`0`: MNIST not found in /x)." in report
    assert "- VAE (`-`): no sample grid: its run failed (`2`: seed=[1, 2] is invalid)." in report
    assert "callback was off" not in report
