"""A likelihood is one class plus one config: a fifth one, defined in tests/, trains a VAE end to end."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from helpers import ROOT
from laplace_likelihood import Laplace

from genlab.checkpoints import load_model
from genlab.train import train

HERE = Path(__file__).resolve().parent


def test_a_fifth_likelihood_from_tests_trains_a_vae(make_cfg, tmp_path, one_thread):
    cfg = make_cfg(
        f"hydra.searchpath=[file://{HERE / 'third_model_conf'}]",
        "likelihood=laplace",
        "trainer.max_steps=3",
        "logger=none",
        "callbacks=[model_checkpoint]",
    )
    assert cfg.model.likelihood._target_ == "laplace_likelihood.Laplace"
    metrics = train(cfg)
    assert all(math.isfinite(value) for value in metrics.values())
    model = load_model(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert isinstance(model.likelihood, Laplace) and model.likelihood.scale == 0.1
    images = torch.rand(2, 1, 28, 28)
    logits = torch.zeros(2, 1, 28, 28)
    expected = (
        torch.distributions.Laplace(torch.full_like(images, 0.5), 0.1).log_prob(images).flatten(1).sum(1)
    )
    assert torch.allclose(model.log_likelihood(logits, images), expected, rtol=1e-5)
    assert model.likelihood.description.startswith("Laplace with mean sigmoid(logits)")
    # nothing in src/ names it
    assert not [p for p in (ROOT / "src").rglob("*.py") if "Laplace" in p.read_text()]
