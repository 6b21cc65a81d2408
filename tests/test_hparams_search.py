"""Hyperparameter search with Hydra's Optuna sweeper: the presets, the value train.py returns, and a real
search in which a diverged trial is a bad value, not a crash."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import yaml
from helpers import CONF_DIR, ROOT
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from genlab.errors import ConfigError
from genlab.train import optimized_value, run


def compose_search(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", return_hydra_config=True, overrides=list(overrides))


def test_presets_search_with_optuna_tpe():
    vae = compose_search("hparams_search=vae_optuna")
    assert vae.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert vae.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert set(vae.hydra.sweeper.params) == {"model.optimizer.lr", "model.beta", "model.latent_dim"}
    assert vae.optimized_metric == "val/loss" and vae.hydra.sweeper.direction == "minimize"
    gan = compose_search("hparams_search=gan_optuna", "adam_beta1=0.0")
    assert set(gan.hydra.sweeper.params) == {"model.optimizer_g.lr", "model.optimizer_d.lr", "adam_beta1"}
    assert gan.optimized_metric == "val/fid" and gan.callbacks.fid.every_n_epochs == 1
    assert list(gan.model.optimizer_g.betas) == list(gan.model.optimizer_d.betas) == [0.0, 0.999]
    assert "samples" in gan.callbacks  # the FID callback is added to the defaults, not instead of them


def test_a_failed_or_diverged_trial_is_the_worst_value():
    cfg = OmegaConf.create({"optimized_metric": "val/loss"})
    assert optimized_value(cfg, {"val/loss": 3.5}) == 3.5
    assert optimized_value(cfg, {}) == math.inf  # failed: no metrics
    assert optimized_value(cfg, {"val/loss": float("nan")}) == math.inf  # diverged


def test_an_optimized_metric_the_run_does_not_log_is_a_clear_error(make_cfg):
    cfg = make_cfg("trainer.max_epochs=1", "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1")
    OmegaConf.update(cfg, "optimized_metric", "val/los", force_add=True)
    with pytest.raises(SystemExit) as exit_info:
        run(cfg)
    assert exit_info.value.code == 1
    with pytest.raises(ConfigError, match="optimized_metric='val/los'.*val/loss"):
        run.__wrapped__(cfg)


@pytest.mark.slow
def test_a_real_search_survives_a_diverged_trial(mnist_dir, tmp_path):
    """3 trials on fake MNIST: learning rate 1e30, whose trials diverge, and 1e-3."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            "hparams_search=vae_optuna",
            f"data.data_dir={mnist_dir}",
            "data.val_size=50",
            "data.batch_size=16",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=1",
            # The command line narrows the preset's search space; 3 random trials with this seed try both.
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.sampler.seed=0",
            "model.optimizer.lr=choice(1e30,1e-3)",
            "model.beta=1.0",
            "model.latent_dim=4",
        ],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (sweep_dir,) = (tmp_path / "outputs" / "vae_optuna" / "multiruns").iterdir()
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_params"]["model.optimizer.lr"] == 1e-3 and math.isfinite(results["best_value"])
    failed = list(sweep_dir.glob("*/failed.json"))
    assert failed and "diverged" in failed[0].read_text()  # recorded, and the study went on
    assert "Best parameters" in result.stderr + result.stdout
