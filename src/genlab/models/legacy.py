"""Checkpoints of an older genlab, read in today's form: users keep their runs.

Before likelihoods and priors were parts, a VAE's hyperparameters named them by string (`recon_loss`,
`prior`, `gmm_components`) and their tensors lived on the VAE itself (`log_sigma`, `calibrated_mse`,
`latent_prior.*`). These tables say what those meant; the values are the ones those versions hard-coded.
"""

from __future__ import annotations

from typing import Any

LIKELIHOODS = {
    "bce": {"_target_": "genlab.models.likelihoods.Bernoulli"},
    "mse": {"_target_": "genlab.models.likelihoods.FixedGaussian"},
    "gaussian_learned": {"_target_": "genlab.models.likelihoods.LearnedSigmaGaussian", "min_log_sigma": -6.0},
    "gaussian_calibrated": {
        "_target_": "genlab.models.likelihoods.CalibratedSigmaGaussian",
        "min_log_sigma": -6.0,
        "momentum": 0.1,
    },
}
GMM = {"_target_": "genlab.models.priors.GaussianMixture", "components": 10, "fit_images": 10_000}
STANDARD = {"_target_": "genlab.models.priors.StandardNormal"}
STATE = {"log_sigma": "likelihood.raw_log_sigma", "calibrated_mse": "likelihood.calibrated_mse"}


def upgrade_vae_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """A VAE's hyperparameters with `recon_loss`, `prior` and `gmm_components` as today's part configs."""
    hparams = dict(hparams)
    if "recon_loss" in hparams:
        hparams["likelihood"] = LIKELIHOODS[hparams.pop("recon_loss")]
    if isinstance(hparams.get("prior"), str):
        components = hparams.pop("gmm_components", GMM["components"])
        hparams["prior"] = GMM | {"components": components} if hparams["prior"] == "gmm" else STANDARD
    return hparams


def upgrade_vae_state(state: dict[str, Any]) -> None:
    """Rename a VAE state_dict's likelihood and mixture tensors, in place, to their parts' names."""
    for key in [key for key in state if key in STATE or key.startswith("latent_prior.")]:
        state[STATE.get(key, key.replace("latent_prior.", "prior.", 1))] = state.pop(key)
