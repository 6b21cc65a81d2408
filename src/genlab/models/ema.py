"""An exponential moving average of a network's weights, to sample from (GAN generators, flow nets).

torch's `AveragedModel` holds the average (its EMA function and checkpoint layout: `<name>.module.*` and
`<name>.n_averaged`). Lightning's WeightAveraging callback does not fit: it averages the whole
LightningModule and swaps the average into the live weights for validation and at the end of fit, where a
GAN needs D and G live and only its pictures and metrics drawn from the average.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.compat import is_batch_norm
from genlab.errors import require

#: draws `n` inputs of the averaged net from a generator: (n, generator) -> tensor
InputSampler = Callable[[int, torch.Generator], torch.Tensor]


class EMA(AveragedModel):
    """The average of `net`'s weights with `decay`, starting from a copy of its initial weights.

    For the first `start` updates the average just copies the net. BatchNorm statistics are copied at each
    update, as AveragedModel does; `prepare_sampling` then recomputes them for the averaged weights from
    `standing_stats` batches (BigGAN's "standing statistics"; 0 = keep the copied ones), because the live
    net's running statistics belong to the live weights: the averaged weights normalised by them wash
    their images out. Sampling code calls `prepare_sampling` explicitly; the average never changes itself
    when it is called.
    """

    def __init__(self, net: nn.Module, decay: float, start: int, standing_stats: int) -> None:
        require(0 < decay < 1, "model.ema_decay", decay, "must be in (0, 1) or null")
        require(int(start) >= 0, "model.ema_start", start, "must be >= 0 (batches)")
        require(int(standing_stats) >= 0, "model.ema_standing_stats", standing_stats, "must be >= 0")
        super().__init__(net, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.requires_grad_(False)
        self.start = int(start)
        self.standing_stats = int(standing_stats)
        # whether the BatchNorm statistics are the average's own (see prepare_sampling)
        self.statistics_fresh = False

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        """Move the average towards `net` after its `step`-th update (0-based, a Python int).

        AveragedModel.update_parameters would do this too, but it branches on its on-device count
        (`n_averaged == 0`), a host-device synchronisation per batch on a GPU; here the branch is on
        `step`."""
        averaged: list[torch.Tensor] = list(self.module.parameters())
        live = [weight.detach() for weight in net.parameters()]
        if step <= self.start:
            for average, weight in zip(averaged, live, strict=True):
                average.copy_(weight)
        else:
            assert self.multi_avg_fn is not None  # set in __init__
            self.multi_avg_fn(averaged, live, self.n_averaged)
        for average_buffer, buffer in zip(self.module.buffers(), net.buffers(), strict=True):
            average_buffer.copy_(buffer)
        self.n_averaged += 1
        self.statistics_fresh = False

    @torch.no_grad()
    def prepare_sampling(
        self, inputs: InputSampler, device: torch.device, batch_size: int, seed: int
    ) -> None:
        """Recompute the BatchNorm statistics from `standing_stats` batches of `batch_size` fixed inputs
        drawn by `inputs` from a `seed`-ed generator (the global RNG, and a resumed run, stay untouched),
        unless they are fresh. torch's swa_utils.update_bn does this for a net fed by a data loader."""
        if self.statistics_fresh:
            return
        self.statistics_fresh = True
        norms: list[Any] = [m for m in self.modules() if is_batch_norm(m)]
        if not norms or not self.standing_stats:
            return
        modes = [(m, m.training, m.momentum) for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.train()
            norm.momentum = None  # a cumulative average over the batches
        rng = torch.Generator(device=device).manual_seed(seed)
        for _ in range(self.standing_stats):
            self(inputs(batch_size, rng))
        for norm, training, momentum in modes:
            norm.train(training)
            norm.momentum = momentum

    @staticmethod
    def adopt_state(ema: EMA | None, state: dict[str, torch.Tensor], prefix: str, net_prefix: str) -> None:
        """Make a checkpoint's state_dict fit `ema` (its keys under `prefix`), in place: without an average
        in the checkpoint, `ema` starts from the net's weights there (under `net_prefix`); an average that
        the model does not keep (`ema` None) is dropped."""
        if ema is None:
            for name in [name for name in state if name.startswith(prefix)]:
                del state[name]
            return
        ema.statistics_fresh = False
        if f"{prefix}n_averaged" not in state:
            net = {name[len(net_prefix) :]: v for name, v in state.items() if name.startswith(net_prefix)}
            state.update({f"{prefix}module.{name}": value for name, value in net.items()})
            state[f"{prefix}n_averaged"] = torch.tensor(0)
