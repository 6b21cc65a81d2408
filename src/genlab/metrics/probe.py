"""The linear probe: how much of the digit a representation holds, as the test accuracy of a logistic
regression (scikit-learn) trained on train codes to predict the label."""

from __future__ import annotations

import time
from typing import Any

import torch


def linear_probe(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor
) -> dict[str, Any]:
    """Standardise the codes (with the train codes' statistics), fit a multinomial logistic regression
    (L2, C=1, lbfgs) on the train codes, and score it on the test codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train.flatten(1).double().cpu().numpy(), train_labels.cpu().numpy())
    accuracy = probe.score(test.flatten(1).double().cpu().numpy(), test_labels.cpu().numpy())
    return {
        "accuracy": float(accuracy),
        "n_train": len(train),
        "n_test": len(test),
        "dim": int(train.flatten(1).shape[1]),
        "seconds": round(time.perf_counter() - started, 1),
    }
