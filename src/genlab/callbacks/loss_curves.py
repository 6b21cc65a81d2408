"""Loss curves: every training scalar per batch, plotted to <run dir>/loss_curves.png at the end."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import lightning as L
from lightning.pytorch.callbacks import Callback

from genlab import run_dir
from genlab.callbacks.training_scalars import TrainingScalars
from genlab.compat import trainer_callbacks
from genlab.pictures.curves import figure_image, plot_curves
from genlab.pictures.images import log_image

log = logging.getLogger(__name__)


class LossCurves(Callback):
    """At the end of training, plots every training scalar of every batch (VAE: loss, recon, kl; GAN: d_loss,
    g_loss, d_real, d_fake) to <run dir>/loss_curves.png and logs the plot under the tag `loss_curves`. The
    values are those `TrainingScalars` recorded (part of every train.py run), whose history a resumed run
    takes from its checkpoint. Each group of names in `together` shares a panel, e.g.
    [[d_loss, g_loss], [d_real, d_fake]]."""

    def __init__(self, together: Sequence[Sequence[str]] = ()) -> None:
        self.together = [list(group) for group in together]

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        recorders = [c for c in trainer_callbacks(trainer) if isinstance(c, TrainingScalars)]
        if not recorders:
            log.warning("LossCurves: no TrainingScalars callback recorded the losses; no loss_curves.png")
            return
        recorders[0].flush(trainer)
        if not recorders[0].history:
            return
        fig = plot_curves(
            recorders[0].history,
            self.together,
            title=f"{type(pl_module).__name__}: training losses per batch",
        )
        path = run_dir.loss_curves(trainer.default_root_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        log_image(trainer, "loss_curves", figure_image(fig))
