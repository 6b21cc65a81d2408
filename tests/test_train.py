"""Whole runs on fake data: every preset, the command line, resume, and errors at start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import CONF_DIR, ROOT, data_overrides
from hydra.errors import ConfigCompositionException
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import open_dict

from genlab.checkpoints import AtomicCheckpointIO, load_model
from genlab.cli import multirun_as_override
from genlab.errors import CheckpointError, ConfigError
from genlab.models import VAE
from genlab.train import build_trainer, train

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
FEW_FLOW_PICTURES = (
    "model.sampler.method=euler",
    "model.sampler.nfe=2",
    "callbacks.samples.n=4",
    "callbacks.interpolation.pairs=1",
    "callbacks.interpolation.real_pairs=1",
    "callbacks.reconstructions.n=2",
    "callbacks.trajectory.samples=1",
)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(make_cfg, experiment, tmp_path):
    data = "imagenette" if "imagenette" in experiment else "mnist"
    needs = ()
    if experiment.endswith("_gan_encoder"):  # a post-hoc encoder starts from its GAN preset's checkpoint
        gan = make_cfg(
            f"experiment={experiment.removesuffix('_encoder')}", "trainer.max_steps=2", "logger=none"
        )
        with open_dict(gan):
            gan.paths.output_dir = str(tmp_path / "gan")
        train(gan)
        needs = (f"model.gan_ckpt={tmp_path / 'gan' / 'checkpoints' / 'last.ckpt'}",)
    preset = make_cfg(f"experiment={experiment}", *needs, data=data)
    assert preset.task_name == experiment
    # a flow's pictures, few and by two Euler steps: its preset's would take a minute on a CPU
    small = FEW_FLOW_PICTURES if "sampler" in preset.model else ()
    cfg = make_cfg(f"experiment={experiment}", "debug=fdr", *needs, *small, data=data)
    metrics = train(cfg)
    assert metrics and all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


ABLATIONS = [
    ("best_mnist_gan", ablation)
    for ablation in (
        "no_ema",
        "no_batch_norm_d",
        "half_width",
        "hinge_loss",
        "spectral_norm",
        "ttur",
        "upsample_nearest",
    )
] + [("study_a_mnist_gan", ablation) for ablation in ("label_smoothing", "feature_matching", "ttur", "ema")]


@pytest.mark.parametrize(("experiment", "ablation"), ABLATIONS)
def test_every_ablation_of_the_sweeps_runs_fast_dev_run(make_cfg, experiment, ablation):
    """The jobs of sweep=mnist_gan_ablation and sweep=mnist_study_gan_tricks (ablation=none is the preset)."""
    metrics = train(make_cfg(f"experiment={experiment}", f"ablation={ablation}", "debug=fdr"))
    assert metrics and all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_model_and_data_pick_the_study_nets(make_cfg):
    cfg = make_cfg("model=gan", "data=imagenette")
    assert cfg.model.generator._target_.endswith("ConvDecoder") and cfg.model.latent_dim == 500
    assert list(cfg.model.discriminator.pools) == [2, 2, 2, 4]
    cfg = make_cfg("model=vae", "data=mnist")
    assert cfg.model.encoder._target_.endswith("MLPEncoder") and cfg.model.latent_dim == 20
    assert cfg.data.pixel_range == [0.0, 1.0] and cfg.checkpoint_monitor == "val/loss"
    cfg = make_cfg("model=gan", "nets=study_b_gan_final")  # a net can still be swapped
    assert list(cfg.model.generator.hidden_dims) == [256, 512, 1024] and cfg.data.pixel_range == [-1.0, 1.0]
    assert (
        cfg.model.noise == "normal"
    )  # the nets set the architecture only; study B's noise is its experiment's
    assert make_cfg("experiment=study_b_gan_final").model.noise == "uniform"


def test_resume_from_last_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("trainer.max_epochs=1", "logger=csv")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert last.is_file() and (Path(cfg.paths.output_dir) / "config.yaml").is_file()
    assert any((Path(cfg.paths.output_dir) / "checkpoints").glob("epoch_*.ckpt"))  # best by val/loss
    steps = torch.load(last, weights_only=True)["global_step"]
    cfg = make_cfg("trainer.max_epochs=2", "logger=csv", f"ckpt_path={last}")
    train(cfg)
    resumed = torch.load(last, weights_only=True)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 2 * steps
    model = load_model(last)  # the nets are rebuilt from the configs saved in hparams
    assert isinstance(model, VAE) and not model.training
    assert torch.equal(model.encoder.net[1].weight, resumed["state_dict"]["encoder.net.1.weight"])


def test_resume_with_a_checkpoint_of_another_model_is_refused(make_cfg):
    cfg = make_cfg("model=gan", "trainer.max_steps=2", "logger=none")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="holds a GAN.*model=gan"):
        train(make_cfg("model=vae", f"ckpt_path={last}"))
    with pytest.raises(CheckpointError, match="no such file"):
        train(make_cfg(f"ckpt_path={last}.missing"))


@pytest.mark.parametrize(
    ("override", "error", "key"),
    [
        ("model.optimizer.lr=-0.001", ConfigError, "model.optimizer.lr"),
        ("model.latent_dim=0", ConfigError, "model.latent_dim"),
        ("model.prior=gaussian_mixture", ConfigError, "model.prior"),
        ("data.batch_size=0", ConfigError, "data.batch_size"),
    ],
)
def test_invalid_values_fail_at_start_naming_the_key(make_cfg, override, error, key):
    with pytest.raises(error, match=key):
        train(make_cfg(override))


def test_image_size_the_net_cannot_take_fails_at_start(make_cfg):
    with pytest.raises(ConfigError, match="data.image_size"):
        train(make_cfg("data=imagenette", "data.image_size=32"))


def test_typos_fail_at_composition(make_cfg):
    with pytest.raises(ConfigCompositionException, match="model/vea"):
        make_cfg("model=vea")
    with pytest.raises(ConfigCompositionException, match="lr_typo"):
        make_cfg("model.lr_typo=1")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("vae", "mnist"),
        ("gan", "mnist"),
        ("vae", "imagenette"),
        # 20 s here, and the GAN's Imagenette nets train in-process in test_every_experiment_runs_fast_dev_run
        pytest.param("gan", "imagenette", marks=pytest.mark.slow),
    ],
)
def test_train_py_on_fake_data(model, data, mnist_dir, imagenette_dir, tmp_path):
    overrides = data_overrides(data, mnist_dir, imagenette_dir, tmp_path / "cache")
    result = run_cli(
        f"model={model}",
        f"data={data}",
        "trainer=cpu",
        "trainer.max_steps=4",
        "trainer.limit_val_batches=1",
        *overrides,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_train_py_missing_data_exits_with_the_message(tmp_path):
    result = run_cli(
        "model=gan",
        "data=imagenette",
        "data.data_dir=/nonexistent",
        "data.download=false",
        "trainer.max_steps=20",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "error: Imagenette (160px) not found: expected /nonexistent/imagenette2-160/train" in result.stderr
    assert "data.download=true" in result.stderr and "Traceback" not in result.stderr


def test_multirun_with_cfg_becomes_a_mode_override():
    argv = ["train.py", "-m", "hydra/launcher=slurm", "--cfg", "hydra"]
    assert multirun_as_override(argv) == [
        "train.py",
        "hydra.mode=MULTIRUN",
        "hydra/launcher=slurm",
        "--cfg",
        "hydra",
    ]
    assert multirun_as_override(["train.py", "-m", "seed=1,2"]) == ["train.py", "-m", "seed=1,2"]


def test_train_py_shows_the_slurm_settings_of_a_sweep(tmp_path):
    result = run_cli(
        "-m",
        "hydra/launcher=slurm",
        "sweep=vae_vs_gan",
        "hydra.launcher.partition=gpu",
        "--cfg",
        "hydra",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in result.stdout
    assert "partition: gpu" in result.stdout and "mode: MULTIRUN" in result.stdout
    # A signal before the time limit, and requeues that resume (train.yaml's auto_resume).
    assert "signal_delay_s: 120" in result.stdout and "max_num_timeout: 3" in result.stdout
    assert "genlab_resumable_sweeper" in result.stdout  # and a sweep that is run again goes on


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_optimizers_and_lr_schedulers_are_config(make_cfg, model):
    """AdamW instead of Adam and a StepLR schedule, for the VAE and both GAN optimisers, by config alone."""
    keys = ["optimizer"] if model == "vae" else ["optimizer_g", "optimizer_d"]
    cfg = make_cfg(
        f"model={model}",
        "trainer.max_epochs=2",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "logger=none",
        *[f"model.{key}._target_=torch.optim.AdamW" for key in keys],
        "model.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1, "
        "gamma: 0.5}",
    )
    train(cfg)
    checkpoint = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(checkpoint["optimizer_states"]) == len(checkpoint["lr_schedulers"]) == len(keys)
    for state, schedule in zip(checkpoint["optimizer_states"], checkpoint["lr_schedulers"], strict=True):
        group = state["param_groups"][0]
        assert group["weight_decay"] == 0.01  # AdamW's default; Adam's is 0
        assert schedule["gamma"] == 0.5 and group["lr"] < 2e-4  # the schedule stepped


def test_resume_with_other_nets_names_the_keys_and_the_matching_overrides(make_cfg):
    cfg = make_cfg("trainer.max_steps=1", "+trainer.limit_val_batches=1", "logger=none")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as error:
        train(make_cfg(f"ckpt_path={last}", "model.decoder.hidden_dims=[64]", "model.latent_dim=8"))
    message = str(error.value)
    assert "model.decoder.hidden_dims: checkpoint [256, 512, 1024], this run [64]" in message
    assert "model.decoder.hidden_dims=[256,512,1024] and model.latent_dim=20" in message
    # an optimiser change is not an architecture change: the run resumes
    train(make_cfg(f"ckpt_path={last}", "model.optimizer.lr=1e-3", "trainer.max_steps=2", "logger=none"))


def test_checkpoints_are_written_atomically(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("trainer.max_steps=1", "+trainer.limit_val_batches=1", "logger=none")
    trainer = build_trainer(cfg, loggers=[])
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    path, io = tmp_path / "ckpts" / "last.ckpt", AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)

    def killed(self, checkpoint, partial, storage_options=None):
        partial.write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt  # the job is stopped while it writes

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}  # the previous complete file
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no partial file left behind


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_imagenette_32px_presets_are_the_64px_recipe_at_32px(make_cfg, model):
    full = make_cfg(f"experiment=best_imagenette_{model}", data="imagenette")
    quick = make_cfg(f"experiment=best_imagenette_{model}_32px", data="imagenette")
    assert (full.data.image_size, quick.data.image_size) == (64, 32)
    assert quick.model == full.model and quick.trainer == full.trainer
    assert full.trainer.max_epochs == -1 and full.trainer.max_steps > 0  # a budget in updates, any data size


def test_callbacks_none_writes_no_checkpoint(make_cfg, tmp_path):
    """`callbacks=none` means no checkpoints: Lightning must not add its default ModelCheckpoint."""
    cfg = make_cfg("callbacks=none", "trainer.max_steps=2", "trainer.limit_val_batches=1")
    train(cfg)
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))
