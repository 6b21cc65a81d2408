"""Exact resume: a run resumed from a checkpoint, at an epoch's end or in the middle of one, ends with the
weights and optimiser states of the run that was never stopped, tensor for tensor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_FLOW_SETTINGS, assert_same_run
from omegaconf import open_dict

from genlab.errors import Interrupted
from genlab.train import train

# 300 fake training images - 50 held out = 250 = 15 batches of 16 (the last one dropped) per epoch.
BATCHES_PER_EPOCH = 15
#: the flow at a CPU test's size
SMALL = {"flow": TINY_FLOW_SETTINGS}


def model_choice(model: str) -> list[str]:
    return [f"model={model}", *SMALL.get(model, ())]


def in_dir(make_cfg, run_dir: Path, *overrides: str):
    cfg = make_cfg(*overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    return cfg


@pytest.mark.parametrize("model", ["vae", "gan"])  # the flow: in mid-epoch, below
def test_resume_at_an_epoch_end_is_exact(make_cfg, tmp_path, one_thread, model):
    common = [*model_choice(model), "seed=7", "logger=none"]
    train(in_dir(make_cfg, tmp_path / "straight", *common, "trainer.max_epochs=2"))
    train(in_dir(make_cfg, tmp_path / "stopped", *common, "trainer.max_epochs=1"))
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    saved_seconds = torch.load(last, weights_only=False)["callbacks"]["Timer"]["time_elapsed"]["train"]
    train(in_dir(make_cfg, tmp_path / "stopped", *common, "trainer.max_epochs=2", f"ckpt_path={last}"))
    assert_same_run(tmp_path / "straight" / "checkpoints" / "last.ckpt", last)
    # the training time in finished.json goes on from the checkpoint's (Lightning's Timer state). Not from
    # the first run's finished.json: that also counts the end of its fit after the checkpoint was written,
    # which on a loaded machine took as long as the second epoch (CI: 0.0156 min both)
    assert 0 < saved_seconds / 60 < train_minutes(tmp_path / "stopped")


def train_minutes(run_dir: Path) -> float:
    return json.loads((run_dir / "finished.json").read_text())["time/train_minutes"]


def resume_in_mid_epoch(make_cfg, tmp_path: Path, model: str, *overrides: str) -> tuple[Path, Path, Path]:
    """Train 2 epochs straight, and again resumed from a step checkpoint in the middle of the first; returns
    the checkpoint resumed from and the two runs' last.ckpt (straight, resumed)."""
    steps_per_batch = 2 if model == "gan" else 1  # the GAN steps two optimisers per batch
    every = 5 * steps_per_batch  # a divisor of the run's length: its last.ckpt is the end
    common = [*model_choice(model), "seed=7", "logger=none", "trainer.max_epochs=2", *overrides]
    step_checkpoints = [
        "callbacks.model_checkpoint.monitor=null",
        f"+callbacks.model_checkpoint.every_n_train_steps={every}",
        "callbacks.model_checkpoint.save_top_k=-1",
        "callbacks.model_checkpoint.filename='step_{step:04d}'",
    ]
    train(in_dir(make_cfg, tmp_path / "straight", *common, *step_checkpoints))
    saved = sorted((tmp_path / "straight" / "checkpoints").glob("step_*.ckpt"))
    mid_epoch = [p for p in saved if (int(p.stem[5:]) // steps_per_batch) % BATCHES_PER_EPOCH]
    assert len(mid_epoch) >= 2
    checkpoint = mid_epoch[1]  # batch 10 of epoch 0: the resumed run crosses an epoch's end too
    run = tmp_path / "resumed"
    train(in_dir(make_cfg, run, *common, f"ckpt_path={checkpoint}"))
    return checkpoint, tmp_path / "straight" / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("model", ["vae", "gan", "flow"])
def test_resume_from_a_step_checkpoint_in_mid_epoch_is_exact(make_cfg, tmp_path, one_thread, model):
    _, straight, resumed = resume_in_mid_epoch(make_cfg, tmp_path, model)
    assert_same_run(straight, resumed)


#: fp16 on the CPU with a GradScaler that grows every 3 clean steps, so that its scale and growth tracker
#: change during the run (with torch's default of 2000 the scale would only ever drop)
FP16_CPU = (
    "trainer=fp16_cpu",
    "+trainer.plugins.1.scaler={_target_:torch.amp.GradScaler,device:cpu,growth_interval:3}",
)


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_fp16_grad_scaler_state_survives_a_mid_epoch_resume(make_cfg, tmp_path, one_thread, model):
    checkpoint, straight, resumed = resume_in_mid_epoch(make_cfg, tmp_path, model, *FP16_CPU)
    assert_same_run(straight, resumed)
    saved, end, resumed_end = (
        torch.load(p, weights_only=True)["MixedPrecision"] for p in (checkpoint, straight, resumed)
    )
    assert end == resumed_end  # scale, growth tracker and the scaler's settings
    assert end["growth_interval"] == 3 and saved["scale"] != 2.0**16  # the scale moved before the resume
    assert (end["scale"], end["_growth_tracker"]) != (saved["scale"], saved["_growth_tracker"])


def test_a_run_started_again_in_its_folder_resumes_the_interrupted_run(make_cfg, tmp_path, one_thread):
    """What a requeued SLURM job does: the same command, in the same run folder, after a SIGTERM."""
    common = ["seed=7", "logger=none", "trainer.max_epochs=1"]
    train(in_dir(make_cfg, tmp_path / "straight", *common))
    signal = ["+callbacks.stop._target_=run_probes.SignalAtStep", "+callbacks.stop.step=6"]
    with pytest.raises(Interrupted, match="SIGTERM at step 6 .epoch 0., saved .*last.ckpt; resume with: "):
        train(in_dir(make_cfg, tmp_path / "requeued", *common, *signal))
    train(in_dir(make_cfg, tmp_path / "requeued", *common))
    assert_same_run(
        tmp_path / "straight" / "checkpoints" / "last.ckpt",
        tmp_path / "requeued" / "checkpoints" / "last.ckpt",
    )
    # A finished run is not resumed: its folder trains afresh only with another ckpt_path or folder.
    assert (tmp_path / "requeued" / "finished.json").is_file()


def saved_at(path: Path) -> tuple[int, int]:
    """(epoch, global step) that a checkpoint was written at."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    return checkpoint["epoch"], checkpoint["global_step"]


SMALL_VAE = ("model=vae", "seed=7", "logger=none")


def test_last_ckpt_is_the_newest_state_when_the_best_epoch_is_older(make_cfg, tmp_path, one_thread):
    """Lightning 2.6's save_last only rewrites last.ckpt beside a new best; genlab's LastCheckpoint always."""
    # mode=max on val/loss: epoch 0 stays the "best", so no top-k checkpoint is saved after it
    train(
        in_dir(make_cfg, tmp_path, *SMALL_VAE, "trainer.max_epochs=3", "callbacks.model_checkpoint.mode=max")
    )
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == ["epoch_000.ckpt", "last.ckpt"]
    assert saved_at(checkpoints / "last.ckpt")[1] == 3 * BATCHES_PER_EPOCH


def test_step_checkpoints_still_save_the_end_of_training(make_cfg, tmp_path, one_thread):
    # 15 batches: saves at 4, 8, 12, not at 15
    train(
        in_dir(
            make_cfg,
            tmp_path,
            *SMALL_VAE,
            "trainer.max_epochs=1",
            "callbacks.last_checkpoint.every_n_train_steps=4",
        )
    )
    assert saved_at(tmp_path / "checkpoints" / "last.ckpt")[1] == BATCHES_PER_EPOCH


@pytest.mark.slow  # 16 s; the mid-epoch resumes above check the data order without mirroring
def test_resume_in_mid_epoch_replays_the_mirrored_images(make_cfg, tmp_path, one_thread):
    # data.hflip draws its coins from the global RNG, which the checkpoint restores: 16 fake train images
    # in batches of 4, a checkpoint after each of the first epoch's batches
    common = ["model=vae", "data=imagenette", "data.hflip=true", "data.batch_size=4", "seed=7"]
    common += ["logger=none", "trainer.max_epochs=2", "callbacks.model_checkpoint.monitor=null"]
    common += [
        "+callbacks.model_checkpoint.every_n_train_steps=1",
        "callbacks.model_checkpoint.save_top_k=-1",
    ]
    common += ["callbacks.model_checkpoint.filename='step_{step:04d}'"]
    train(in_dir(make_cfg, tmp_path / "straight", *common))
    checkpoint = tmp_path / "straight" / "checkpoints" / "step_0002.ckpt"  # batch 2 of epoch 0's 4
    run = tmp_path / "resumed"
    train(in_dir(make_cfg, run, *common, f"ckpt_path={checkpoint}"))
    assert_same_run(tmp_path / "straight" / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt")
