"""genlab's precision/recall convention, pinned on synthetic features: precision is the fraction of generated
samples that look real (fidelity), recall the fraction of real samples that the generator covers (diversity).
A swapped argument order in evaluate.py or distribution.py would pass the symmetric checks of
test_metrics.py; these asymmetric cases catch it."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from genlab.evaluate import compare
from genlab.metrics import distribution


def real_features(n: int = 200, dim: int = 8) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(0))


def test_a_generator_that_copies_the_real_set_has_precision_and_recall_one():
    real = real_features()
    scores = distribution.precision_recall(real, real.clone(), nearest_k=5)
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    assert 0.9 < scores["density"] < 1.5  # each copy lies in its own ball and in about k - 1 others


def test_mode_collapse_has_recall_near_zero_and_precision_one():
    real = real_features()
    collapsed = real[:1].repeat(200, 1)  # every fake is the same real image
    scores = distribution.precision_recall(real, collapsed, nearest_k=5)
    assert scores["precision"] == 1.0 and scores["recall"] == 0.0
    assert scores["coverage"] < 0.05  # only the balls around that one image hold a fake
    # nearly collapsed: fakes jittered around one real point still cover almost none of the real set
    jitter = 0.01 * torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    scores = distribution.precision_recall(real, real[:1] + jitter, nearest_k=5)
    assert scores["precision"] == 1.0 and scores["recall"] < 0.05


def test_a_diverse_but_unrealistic_generator_has_recall_and_no_precision():
    real = real_features()
    # fakes far from the data but spread so widely that their k-NN balls swallow every real point
    wide = 50.0 * torch.randn(200, 8, generator=torch.Generator().manual_seed(2))
    scores = distribution.precision_recall(real, wide, nearest_k=5)
    assert scores["precision"] < 0.05 and scores["recall"] > 0.9


def test_evaluate_passes_real_and_generated_features_in_that_order():
    real = real_features()
    collapsed = real[:1].repeat(200, 1) + 1e-3 * real_features(200)  # distinct points: FID's covariance
    settings = {"kid": {"subsets": 2, "subset_size": 50}, "seed": 0, "nearest_k": 5}
    scores = compare(real, collapsed, OmegaConf.create(settings))
    assert scores["precision"] == 1.0 and scores["recall"] < 0.05
