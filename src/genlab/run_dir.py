"""The files of a run folder, named once: what train.py, the callbacks, evaluate.py, the sweeps and the report
write and read there.

    <run dir>/                    outputs/<task>/runs/<time>_<model>_<data>/, or a sweep job's
                                  multiruns/<time>/<job number>_<what varies>/ (conf/hydra/default.yaml)
      config.yaml                 the resolved config (train.py)
      .hydra/                     Hydra's records: config.yaml, overrides.yaml, hydra.yaml
      checkpoints/last.ckpt       the newest state, what a resume starts from; epoch_NNN.ckpt, the best epoch
      images/<tag>/epoch_NNN.png  the image callbacks' pictures (samples, interpolation, reconstructions, ...)
      loss_curves.png             the training losses per batch
      tensorboard/, csv/          the loggers' files (conf/logger/)
      finished.json, failed.json  how the job ended: a sweep run again leaves such a job alone
      metrics.json, samples.png   evaluate.py's numbers and a grid of the samples it measured
      encoder/                    a GAN run's post-hoc encoder run (model=gan_encoder), a run folder itself

The folder names that the configs spell (`${paths.output_dir}/checkpoints`, the loggers' `name`) are checked
against these by tests/test_run_dir.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CONFIG = "config.yaml"
HYDRA = ".hydra"
#: Hydra's records in HYDRA: the job's config, its command-line overrides, and Hydra's own config
HYDRA_CONFIG, HYDRA_OVERRIDES, HYDRA_SETTINGS = "config.yaml", "overrides.yaml", "hydra.yaml"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
IMAGES = "images"
LOSS_CURVES = "loss_curves.png"
TENSORBOARD = "tensorboard"
CSV = "csv"
#: Lightning's CSVLogger file in CSV
CSV_METRICS = "metrics.csv"
FINISHED = "finished.json"
FAILED = "failed.json"
METRICS = "metrics.json"
SAMPLES = "samples.png"
#: a GAN run's encoder run, inside it (conf/experiment/*_gan_encoder.yaml put it there)
ENCODER = "encoder"


def config_file(run: str | Path) -> Path:
    return Path(run) / CONFIG


def hydra_file(run: str | Path, name: str) -> Path:
    """One of Hydra's records of the job (HYDRA_CONFIG, HYDRA_OVERRIDES or HYDRA_SETTINGS)."""
    return Path(run) / HYDRA / name


def checkpoints_dir(run: str | Path) -> Path:
    return Path(run) / CHECKPOINTS


def last_checkpoint(run: str | Path) -> Path:
    return checkpoints_dir(run) / LAST_CHECKPOINT


def of_checkpoint(ckpt_path: str | Path) -> Path:
    """The run folder of a checkpoint: <run>/checkpoints/last.ckpt -> <run>; a checkpoint elsewhere -> its
    folder."""
    ckpt_path = Path(ckpt_path)
    return ckpt_path.parent.parent if ckpt_path.parent.name == CHECKPOINTS else ckpt_path.parent


def encoder_checkpoint(run: str | Path) -> Path:
    """The last checkpoint of a GAN run's encoder run: <run>/encoder/checkpoints/last.ckpt."""
    return last_checkpoint(Path(run) / ENCODER)


def encoder_run(ckpt_path: str | None) -> str:
    """`${genlab_encoder_run:<GAN checkpoint>}`: the folder of that GAN run's encoder run."""
    if not ckpt_path:
        # Hydra resolves the run folder before genlab can say what is missing: the model then refuses the
        # missing model.gan_ckpt by name, and the failed run's folder is removed
        return str(Path("outputs") / "gan_encoder_without_gan_ckpt")
    return str(of_checkpoint(Path(ckpt_path).expanduser().resolve()) / ENCODER)


def pictures_dir(run: str | Path, tag: str) -> Path:
    """Where the pictures of one image tag go, one PNG per epoch."""
    return Path(run) / IMAGES / tag


def picture(run: str | Path, tag: str, epoch: int) -> Path:
    return pictures_dir(run, tag) / f"epoch_{epoch:03d}.png"


def loss_curves(run: str | Path) -> Path:
    return Path(run) / LOSS_CURVES


def tensorboard_dir(run: str | Path) -> Path:
    return Path(run) / TENSORBOARD


def csv_metrics(run: str | Path) -> Path:
    return Path(run) / CSV / CSV_METRICS


def finished_file(run: str | Path) -> Path:
    return Path(run) / FINISHED


def failure_file(run: str | Path) -> Path:
    return Path(run) / FAILED


def metrics_file(run: str | Path) -> Path:
    """Where evaluate.py writes its numbers by default."""
    return Path(run) / METRICS


def samples_grid(metrics_path: str | Path) -> Path:
    """Where evaluate.py saves its samples' grid, beside its numbers: metrics.json -> samples.png,
    x.json -> x_samples.png."""
    metrics_path = Path(metrics_path)
    if metrics_path.name == METRICS:
        return metrics_path.with_name(SAMPLES)
    return metrics_path.with_name(f"{metrics_path.stem}_{SAMPLES}")


def remove_if_unstarted(run: str | Path, log_name: str) -> bool:
    """Remove a run folder that holds only what a run writes before it trains (Hydra's records, config.yaml,
    the log file `log_name`, empty folders), so that a run which failed at start leaves nothing that looks
    like a failed run. Anything else (a checkpoint, a picture, a logger's file, a file of the user's) keeps
    the folder. Returns whether it was removed."""
    run = Path(run)
    if not run.is_dir() or run.is_symlink():
        return False

    def empty_tree(folder: Path) -> bool:
        return not folder.is_symlink() and all(p.is_dir() and not p.is_symlink() for p in folder.rglob("*"))

    def written_at_start(entry: Path) -> bool:
        if entry.name == HYDRA and entry.is_dir() and not entry.is_symlink():
            records = (HYDRA_CONFIG, HYDRA_OVERRIDES, HYDRA_SETTINGS)
            return all(record.is_file() and record.name in records for record in entry.iterdir())
        if entry.name in (CONFIG, log_name):
            return entry.is_file() and not entry.is_symlink()
        return entry.is_dir() and empty_tree(entry)

    if not all(written_at_start(entry) for entry in run.iterdir()):
        return False
    shutil.rmtree(run)
    return True
