"""Loss-curve figures: per-batch values with a moving average, one panel per metric or group of metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


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
) -> Figure:
    """One panel per metric (or per group in `together`): the per-batch values, and their moving average
    when there are many."""
    panels = group_panels(list(history), together)
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    # A pyplot-free figure on its own Agg canvas: no display, no global figure registry to close.
    fig = Figure(figsize=(4.5 * cols, 3.2 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
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


def figure_image(fig: Figure) -> torch.Tensor:
    """A rendered matplotlib figure as a [3, H, W] float image in [0, 1]."""
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):  # plot_curves' figures have one
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255.0
