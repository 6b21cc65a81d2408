"""Loss curves: every logged training scalar per batch, plotted to <run dir>/loss_curves.png at the end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from genlab.pictures.curves import figure_image, plot_curves
from genlab.pictures.images import log_image


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
        path = Path(trainer.default_root_dir) / "loss_curves.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        log_image(trainer, "loss_curves", figure_image(fig))

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
