"""Loss curves: every logged training scalar per batch, plotted to <run dir>/loss_curves.png at the end."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from genlab.callbacks.images import log_image

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """The trailing mean over `window` values (shorter at the start), to see a trend in noisy batches."""
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(end - window, 0)
    return (cumsum[end] - cumsum[start]) / (end - start)


def group_panels(names: Sequence[str], together: Sequence[Sequence[str]] = ()) -> list[list[str]]:
    """Panels of metric names: each group of `together` that was logged shares one panel (in that
    order); every other name gets its own panel."""
    panels = [[name for name in group if name in names] for group in together]
    panels = [panel for panel in panels if panel]
    grouped = {name for panel in panels for name in panel}
    return panels + [[name] for name in sorted(names) if name not in grouped]


def plot_curves(
    history: dict[str, tuple[list[int], list[float]]], together: Sequence[Sequence[str]] = (), title: str = ""
) -> plt.Figure:
    """One panel per metric (or per group in `together`): the per-batch values, and their moving average
    when there are many."""
    panels = group_panels(list(history), together)
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for index, name in enumerate(panel):
            steps, values = (np.asarray(v, dtype=float) for v in history[name])
            color = f"C{index}"
            # Thin: every batch; thick: the moving average, when there are enough batches to need one.
            smooth = len(values) > 50
            ax.plot(
                steps,
                values,
                lw=0.6,
                color=color,
                alpha=0.35 if smooth else 1.0,
                label=None if smooth else name,
            )
            if smooth:
                ax.plot(
                    steps, moving_average(values, max(2, len(values) // 50)), lw=1.4, color=color, label=name
                )
        ax.legend(fontsize="small")
        ax.set_title(", ".join(panel))
        ax.set_xlabel("batch")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def figure_image(fig: plt.Figure) -> torch.Tensor:
    """A rendered matplotlib figure as a [3, H, W] float image in [0, 1]."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255.0


class LossCurves(Callback):
    """Collects every training scalar whose name starts with `prefix` after each batch (VAE: loss, recon,
    kl; GAN: d_loss, g_loss, d_real, d_fake) and, at the end of training, plots them to
    <run dir>/loss_curves.png and logs the plot under the tag `loss_curves`. The history is kept in the
    checkpoint, so a resumed run's curves start at its first batch. Each group of names in `together`
    (without the prefix) shares a panel, e.g. [[d_loss, g_loss], [d_real, d_fake]]."""

    def __init__(self, prefix: str = "train/", together: Sequence[Sequence[str]] = ()) -> None:
        self.prefix = prefix
        self.together = [list(group) for group in together]
        self.batches = 0
        self.history: dict[str, tuple[list[int], list[float]]] = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args, **kwargs) -> None:
        self.batches += 1
        for name, value in trainer.callback_metrics.items():
            if name.startswith(self.prefix) and isinstance(value, torch.Tensor) and value.numel() == 1:
                steps, values = self.history.setdefault(name.removeprefix(self.prefix), ([], []))
                steps.append(self.batches)
                values.append(float(value))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.history:
            return
        fig = plot_curves(
            self.history, self.together, title=f"{type(pl_module).__name__}: training losses per batch"
        )
        try:
            path = Path(trainer.default_root_dir) / "loss_curves.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100)
            log_image(trainer, "loss_curves", figure_image(fig))
        finally:
            plt.close(fig)

    def state_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "history": {
                name: torch.tensor([steps, values], dtype=torch.float64)
                for name, (steps, values) in self.history.items()
            },
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = int(state_dict.get("batches", 0))
        self.history = {
            name: ([int(s) for s in pair[0].tolist()], pair[1].tolist())
            for name, pair in state_dict.get("history", {}).items()
        }
