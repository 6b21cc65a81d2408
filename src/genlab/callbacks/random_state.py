"""Every random stream of a run in its checkpoints, so that a resumed run goes on exactly as the uninterrupted
one would have."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def collect_rng_states() -> dict[str, Any]:
    """The global random state of torch, torch.cuda (every visible GPU; [] without one), NumPy and Python.

    The same keys and values as the private collect helper of `lightning.fabric.utilities.seed`,
    which genlab used before, so the checkpoints written then restore alike; built here from the public
    getters of each library."""
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch.cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back a state from `collect_rng_states` (torch.cuda and NumPy only when it holds them)."""
    torch.set_rng_state(states["torch"])
    if "torch.cuda" in states:
        torch.cuda.set_rng_state_all(states["torch.cuda"])
    if "numpy" in states:
        np.random.set_state(states["numpy"])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))


class RandomState(L.Callback):
    """Saves the global random state of torch (CPU and CUDA), NumPy and Python with every checkpoint, and
    puts it back when training resumes from one.

    Lightning itself saves the weights, optimisers, loops and a stateful loader's position
    (genlab.data.base.ResumableDataLoader), but no random state: a resumed run would draw other noise,
    reparameterisation samples, dropout masks and shuffling seeds. `collect_rng_states` and `set_rng_states`
    do the work. The state is put back in `on_train_start`, after the sanity check (which draws samples too),
    where the uninterrupted run stood when it saved.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        states = collect_rng_states()
        # NumPy's state holds an ndarray, which genlab's weights_only loading refuses: keep it as a tensor.
        name, keys, position, has_gauss, gauss = states["numpy"]
        states["numpy"] = [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss]
        return {"rng": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict.get("rng")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_restore is not None:
            states = dict(self._to_restore)
            name, keys, position, has_gauss, gauss = states["numpy"]
            states["numpy"] = (name, keys.numpy().astype(np.uint32), position, has_gauss, gauss)
            set_rng_states(states)
            self._to_restore = None
