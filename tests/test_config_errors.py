"""Config mistakes stop with a message that names the key and the fix: unknown keys get the nearest valid
keys, bad values the expected type, and a run that fails before training leaves no run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CONF_DIR, ROOT
from omegaconf import OmegaConf

from genlab import run_dir
from genlab.errors import ConfigError
from genlab.instantiate import build, check_types
from genlab.overrides import check_command_line, nearest_keys, split_command_line
from genlab.train import RUN_KEYS, train

SEED_ERROR = "seed=[1, 2] is invalid: expected an integer; to run one job per value: -m seed=1,2"


def script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A root script of this tree (its own src first on the path), run as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / name), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def error_of(config_name: str, *argv: str) -> str:
    with pytest.raises(ConfigError) as error:
        check_command_line(CONF_DIR, config_name, [f"{config_name}.py", *argv])
    return str(error.value)


def test_nearest_keys_prefer_the_same_last_key_then_the_same_spelling():
    keys = ["model", "model.optimizer", "model.optimizer.lr", "model.prior", "trainer.max_epochs", "seed"]
    assert nearest_keys("model.lr", keys) == ["model.optimizer.lr"]
    assert nearest_keys("trainer.max_epoch", keys) == ["trainer.max_epochs"]
    assert nearest_keys("model.foo", keys) == []
    assert nearest_keys("hydra.run.dirr", [*keys, "hydra.run.dir"]) == ["hydra.run.dir"]


def test_an_unknown_key_names_the_valid_one():
    assert error_of("train", "model.lr=1e-3") == (
        "model.lr=1e-3: model.lr is not a key of this config; did you mean model.optimizer.lr? "
        "Fix: model.optimizer.lr=1e-3"
    )
    assert error_of("train", "model=gan", "model.lr=1e-3") == (
        "model.lr=1e-3: model.lr is not a key of this config; did you mean one of model.optimizer_g.lr, "
        "model.optimizer_d.lr? Fix: model.optimizer_g.lr=1e-3"
    )
    assert "did you mean one of trainer.max_epochs" in error_of("train", "trainer.max_epoch=3")


def test_suggestions_take_the_value_and_never_add_keys():
    """A number is not offered a list's key (model.beta -> the optimisers' betas would fail); no `+key`."""
    message = error_of("train", "-m", "model=vae,gan", "model.beta=2")
    assert message == (
        "model.beta=2: model.beta is not a key of this config for model=gan; list its keys with "
        "`python train.py model=gan --cfg job`."
    )
    assert "+" not in error_of("train", "model.foo=1")


def test_evaluate_and_generate_overrides_are_checked_too():
    message = error_of("eval", "ckpt_path=x", "n_sample=10")
    assert message.endswith("did you mean n_samples? Fix: n_samples=10")
    assert error_of("generate", "step=5").endswith("did you mean one of steps, inversion.steps? Fix: steps=5")


def test_valid_command_lines_pass_untouched():
    for argv in (
        ["model.optimizer.lr=1e-3", "+trainer.limit_train_batches=2", "~model.optimizer.fused"],
        ["-m", "model=vae,gan", "seed=1,2", "trainer.max_epochs=1"],
        ["--cfg", "job", "model=gan", "model.optimizer_g.lr=1"],
        ["model=vea"],  # not a key: Hydra's own message about the group stays
    ):
        check_command_line(CONF_DIR, "train", ["train.py", *argv])
    assert split_command_line(["train.py", "--help", "model.lr=1"]) is None
    assert split_command_line(["train.py", "-cn", "other", "-m", "a=1"]) == ("other", ["a=1"], True)


def test_train_py_suggests_before_hydra_makes_a_folder(tmp_path):
    result = script("train.py", "model.lr=1e-3", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: model.lr=1e-3: model.lr is not a key of this config; did you mean model.optimizer.lr? "
        "Fix: model.optimizer.lr=1e-3"
    )
    assert not (tmp_path / "outputs").exists()


class Target:
    def __init__(self, width: int, scales: list[float] | None = None) -> None:
        self.width, self.scales = int(width), scales  # int() fails on a list, as Lightning's seeding does


def test_constructor_argument_errors_name_the_key():
    config = OmegaConf.create({"_target_": f"{__name__}.Target", "width": 2, "sizes": {"lr": 1}})
    with pytest.raises(ConfigError, match=r"^part.sizes=\{'lr': 1\} is not an argument of .*Target; drop"):
        build(config, "part")
    config = OmegaConf.create({"_target_": f"{__name__}.Target", "width": [1, 2]})
    with pytest.raises(ConfigError) as error:
        build(config, "part")
    assert str(error.value) == (
        f"part.width=[1, 2] is invalid: {__name__}.Target expects an integer; to run one job per value: "
        "-m part.width=1,2"
    )


def test_an_added_model_key_names_the_valid_one(make_cfg, one_thread):
    cfg = make_cfg("+model.lr=1e-3", "trainer.max_steps=1")
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value) == (
        "model.lr=0.001 is not an argument of genlab.models.vae.VAE; did you mean model.optimizer.lr? "
        "Fix: model.optimizer.lr=0.001 instead of +model.lr=0.001"
    )


def test_run_keys_are_typed():
    with pytest.raises(ConfigError) as error:
        check_types(OmegaConf.create({"seed": [1, 2], "trainer": {"max_epochs": 1}}), RUN_KEYS)
    assert str(error.value) == SEED_ERROR
    expected = r"^trainer.max_epochs='2' is invalid: expected an integer or null$"
    with pytest.raises(ConfigError, match=expected):
        check_types(OmegaConf.create({"seed": 1, "trainer": {"max_epochs": "2"}}), RUN_KEYS)


def test_a_sweep_job_with_a_bad_value_records_its_key(mnist_dir, tmp_path):
    """In a sweep the job's folder stays, with the failure record naming the key, for the report."""
    sweep = tmp_path / "sweep"
    result = script(
        "train.py", "-m", "seed=[1,2]", f"data.data_dir={mnist_dir}", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    (job,) = sweep.glob("0_*")  # the job's folder is named by its overrides
    failure = json.loads(run_dir.failure_file(job).read_text())
    assert failure["reason"] == SEED_ERROR
    assert result.returncode == 1 and "1 of 1 jobs failed" in result.stderr  # after the sweep's summary


def test_a_run_that_fails_at_start_leaves_no_folder(tmp_path):
    result = script("train.py", f"data.data_dir={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert result.returncode == 1 and "error: MNIST not found in" in result.stderr
    assert list((tmp_path / "outputs" / "train" / "runs").iterdir()) == []


def test_only_a_folder_of_start_up_records_is_removed(tmp_path):
    def started(name: str, *extra: str) -> Path:
        folder = tmp_path / name
        run_dir.hydra_file(folder, run_dir.HYDRA_CONFIG).parent.mkdir(parents=True)
        for record in (run_dir.HYDRA_CONFIG, run_dir.HYDRA_OVERRIDES, run_dir.HYDRA_SETTINGS):
            run_dir.hydra_file(folder, record).write_text("{}")
        for path in ("train.log", run_dir.CONFIG, *extra):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text("")
        (folder / run_dir.TENSORBOARD).mkdir(exist_ok=True)
        return folder

    assert run_dir.remove_if_unstarted(started("fresh"), "train.log") and not (tmp_path / "fresh").exists()
    for kept in ("checkpoints/last.ckpt", "notes.txt", "tensorboard/events.out", run_dir.FAILED):
        folder = started(kept.replace("/", "_"), kept)
        assert not run_dir.remove_if_unstarted(folder, "train.log") and (folder / kept).is_file()
