"""Checkpoints of an older genlab (likelihood and prior named by strings, their tensors on the VAE) load in
today's form and draw the same samples. benchmarks/behaviour_check.py checks real ones of an old commit."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.checkpoints import check_architecture, load_model
from genlab.models.likelihoods import LearnedSigmaGaussian
from genlab.models.priors import GaussianMixture
from genlab.train import train

OLD_NAMES = {"likelihood.raw_log_sigma": "log_sigma"}


def as_old_checkpoint(path: Path, old: Path) -> None:
    """Rewrite today's checkpoint at `path` in the older layout, at `old`."""
    checkpoint = torch.load(path, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    hparams.pop("likelihood")
    components = hparams.pop("prior")["components"]
    hparams |= {"recon_loss": "gaussian_learned", "prior": "gmm", "gmm_components": components}
    state = checkpoint["state_dict"]
    for key in list(state):
        if key in OLD_NAMES or key.startswith("prior."):
            state[OLD_NAMES.get(key, key.replace("prior.", "latent_prior.", 1))] = state.pop(key)
    torch.save(checkpoint, old)


def test_an_old_vae_checkpoint_loads_and_draws_the_same_samples(make_cfg, tmp_path, one_thread):
    cfg = make_cfg(
        "likelihood=learned_sigma_gaussian",
        "prior=gaussian_mixture",
        "model.prior.components=2",
        "trainer.max_steps=3",
        "logger=none",
        "callbacks=[model_checkpoint]",
    )
    train(cfg)
    new = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    old = tmp_path / "old.ckpt"
    as_old_checkpoint(new, old)
    assert "log_sigma" in torch.load(old, weights_only=True)["state_dict"]
    today, legacy = load_model(new), load_model(old)
    assert isinstance(legacy.likelihood, LearnedSigmaGaussian) and isinstance(legacy.prior, GaussianMixture)
    assert legacy.prior.components == 2 and bool(legacy.prior.fitted)
    assert torch.equal(legacy.likelihood.raw_log_sigma, today.likelihood.raw_log_sigma)
    seeded = torch.Generator().manual_seed
    assert torch.equal(legacy.sample(8, seeded(0)), today.sample(8, seeded(0)))
    # and a run resumes from it: its nets are this run's
    check_architecture(old, dict(cfg.model) | {"image_shape": list(today.image_shape)})
