"""The ODE solver of a flow model: sampling (noise at t=0 to data at t=1), inversion (back to noise) and the
exact log-likelihood by the instantaneous change of variables (Chen et al. 2018; FFJORD, Grathwohl et al.
2019), all by torchdiffeq's `odeint`.

A velocity is any callable `velocity(t, x)` with a 0-d time tensor (a net, or its EMA).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torchdiffeq import odeint

from genlab.errors import require

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: function evaluations per step of each fixed-step method; None: adaptive (atol, rtol)
METHODS: dict[str, int | None] = {"euler": 1, "midpoint": 2, "dopri5": None}
TRACES = ("hutchinson", "exact")


class ODESampler:
    """Integrates a velocity field with a fixed-step `method` (euler, midpoint) spending `nfe` function
    evaluations in equal steps, or with the adaptive `dopri5` to tolerances `atol` and `rtol` (its NFE is
    whatever the error control needs, counted in `last_nfe`)."""

    def __init__(self, method: str, nfe: int | None, atol: float, rtol: float, key: str = "model.sampler"):
        require(method in METHODS, f"{key}.method", method, f"choose one of {sorted(METHODS)}")
        per_step = METHODS[method]
        if per_step is not None:
            require(
                isinstance(nfe, int) and nfe >= per_step and nfe % per_step == 0,
                f"{key}.nfe",
                nfe,
                f"{method} spends {per_step} evaluation(s) a step: use a positive multiple of {per_step}",
            )
        require(atol > 0, f"{key}.atol", atol, "must be > 0")
        require(rtol > 0, f"{key}.rtol", rtol, "must be > 0")
        self.method, self.nfe, self.atol, self.rtol = method, nfe, float(atol), float(rtol)
        #: function evaluations of the latest solve, and of all solves with their count
        self.last_nfe = self.total_nfe = self.solves = 0

    @property
    def adaptive(self) -> bool:
        return METHODS[self.method] is None

    def settings(self) -> dict[str, Any]:
        """What a result must record to be repeated: the method and its NFE or tolerances."""
        if self.adaptive:
            return {"method": self.method, "atol": self.atol, "rtol": self.rtol}
        return {"method": self.method, "nfe": self.nfe}

    def describe(self) -> str:
        settings = self.settings()
        return ", ".join(f"{key} {value}" for key, value in settings.items())

    def integrate(
        self, velocity: Velocity, x: torch.Tensor, t0: float, t1: float, points: int = 2
    ) -> torch.Tensor:
        """The states at `points` evenly spaced times from `t0` to `t1` (first: `x`): [points, *x.shape].
        `last_nfe` is set to the function evaluations spent."""
        return self._solve(velocity, x, t0, t1, points)

    def _solve(self, function: Callable, state: Any, t0: float, t1: float, points: int) -> Any:
        calls = [0]

        def counted(t: torch.Tensor, y: Any) -> Any:
            calls[0] += 1
            return function(t, y)

        device = (state[0] if isinstance(state, tuple) else state).device
        if self.adaptive:
            times = torch.linspace(t0, t1, points, dtype=torch.float64).float().to(device)
            path = odeint(counted, state, times, method=self.method, atol=self.atol, rtol=self.rtol)
        else:
            # the step grid itself, so that the NFE is exact; the requested times are grid points or the
            # nearest ones
            steps = int(self.nfe or 0) // int(METHODS[self.method] or 1)
            grid = torch.linspace(t0, t1, steps + 1, dtype=torch.float64).float().to(device)
            path = odeint(counted, state, grid, method=self.method)
            index = torch.linspace(0, steps, points, dtype=torch.float64).round().long().to(device)
            path = tuple(p[index] for p in path) if isinstance(path, tuple) else path[index]
        self.last_nfe = calls[0]
        self.total_nfe += calls[0]
        self.solves += 1
        return path

    @property
    def mean_nfe(self) -> float:
        """Function evaluations per solve, over every solve of this sampler (an adaptive one's vary)."""
        return self.total_nfe / self.solves if self.solves else 0.0

    def log_likelihood(
        self,
        velocity: Velocity,
        x: torch.Tensor,
        trace: str = "hutchinson",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """log p(x) per sample [N] in nats, of the flow that carries N(0, I) at t=0 along `velocity` to t=1.

        Integrates x back to t=0 together with the divergence: log p1(x) = log N(x0; 0, I) - ∫ div v dt.
        The divergence is exact (one vector-Jacobian product per dimension: cheap for few dimensions) or
        Hutchinson's unbiased estimate e^T (dv/dx) e with one Rademacher vector e per sample, fixed over the
        solve as in FFJORD."""
        require(trace in TRACES, "trace", trace, f"choose one of {TRACES}")
        flat = x.flatten(1)
        dims = flat.shape[1]
        if trace == "hutchinson":
            noise = torch.randint(
                0, 2, x.shape, generator=generator, device=generator.device if generator else None
            )
            noise = (noise.to(x) * 2 - 1).to(x.device)

        def augmented(t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple:
            with torch.enable_grad():
                y = state[0].detach().requires_grad_(True)
                v = velocity(t, y)
                if not v.requires_grad:  # a velocity that does not depend on x: no divergence
                    divergence = torch.zeros(len(y), device=y.device, dtype=y.dtype)
                elif trace == "hutchinson":
                    (vjp,) = torch.autograd.grad(v, y, noise)
                    divergence = (vjp * noise).flatten(1).sum(1)
                else:
                    rows = v.flatten(1)
                    divergence = torch.zeros(len(y), device=y.device, dtype=y.dtype)
                    for i in range(dims):
                        (grad,) = torch.autograd.grad(rows[:, i].sum(), y, retain_graph=i < dims - 1)
                        divergence = divergence + grad.flatten(1)[:, i]
            return v.detach(), divergence.detach()

        start = (x, torch.zeros(len(x), device=x.device, dtype=x.dtype))
        path, integral = self._solve(augmented, start, 1.0, 0.0, 2)
        x0, minus_integral = path[-1], integral[-1]
        log_p0 = -0.5 * x0.flatten(1).pow(2).sum(1) - 0.5 * dims * math.log(2 * math.pi)
        return log_p0 + minus_integral
