"""Every random stream of a run in its checkpoints, so that a resumed run goes on exactly as the uninterrupted
one would have."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states


class RandomState(L.Callback):
    """Saves the global random state of torch (CPU and CUDA), NumPy and Python with every checkpoint, and
    puts it back when training resumes from one.

    Lightning itself saves the weights, optimisers, loops and a stateful loader's position
    (genlab.data.base.ResumableDataLoader), but no random state: a resumed run would draw other noise,
    reparameterisation samples, dropout masks and shuffling seeds. Lightning's own collect/set helpers do the
    work. The state is put back in `on_train_start`, after the sanity check (which draws samples too), where
    the uninterrupted run stood when it saved.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        states = _collect_rng_states(include_cuda=True)
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
            _set_rng_states(states)
            self._to_restore = None
