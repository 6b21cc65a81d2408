"""genlab.callbacks.random_state: every global random stream saved and put back, in the format of the
checkpoints genlab has always written."""

from __future__ import annotations

import random

import numpy as np
import torch

from genlab.callbacks.random_state import RandomState, collect_rng_states, set_rng_states


def draws() -> tuple[list[float], list[float], float]:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()


def test_a_round_trip_restores_every_stream():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    states = collect_rng_states()
    assert list(states) == ["torch", "python", "numpy", "torch.cuda"]  # what older checkpoints hold
    first = draws()
    set_rng_states(states)
    assert draws() == first


def test_the_callback_state_survives_weights_only_loading(tmp_path):
    callback = RandomState()
    path = tmp_path / "state.pt"
    torch.save(callback.state_dict(), path)
    first = draws()
    restored = RandomState()
    restored.load_state_dict(torch.load(path, weights_only=True))
    restored.on_train_start(None, None)
    assert draws() == first
