"""How close reconstructions come to their originals, per image and on average: MSE, PSNR and SSIM
(torchmetrics), a feature distance (genlab.metrics.perceptual), and for MNIST whether the digit classifier
gives the reconstruction the original's label."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from genlab.metrics import classifier


def pixel_scores(originals: torch.Tensor, reconstructions: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image [N], for images in [0, 1]: the mean squared error, PSNR in dB (capped at 100 dB where the
    two are identical: torchmetrics gives infinity) and SSIM (Gaussian window 11, sigma 1.5)."""
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals {tuple(originals.shape)} and reconstructions {tuple(reconstructions.shape)}"
        )
    originals, reconstructions = originals.float(), reconstructions.float()
    mse = (originals - reconstructions).pow(2).flatten(1).mean(1)
    psnr = peak_signal_noise_ratio(
        reconstructions, originals, data_range=1.0, reduction="none", dim=(1, 2, 3)
    ).clamp(max=PSNR_CAP)
    ssim = structural_similarity_index_measure(reconstructions, originals, data_range=1.0, reduction="none")
    return {"mse": mse, "psnr": psnr, "ssim": torch.as_tensor(ssim).reshape(len(originals))}


#: PSNR of identical images, which is infinite: reported as this many dB
PSNR_CAP = 100.0


def label_kept(net: nn.Module, originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Per image [N]: 1.0 where the digit classifier predicts the same digit for the reconstruction as for
    the original, else 0.0 (images in [0, 1])."""
    return (classifier.predict(net, reconstructions) == classifier.predict(net, originals)).float()


def summarise(per_image: dict[str, torch.Tensor]) -> dict[str, float]:
    """The mean of every per-image score, and its standard error as `<name>_se`."""
    summary: dict[str, float] = {}
    for name, values in per_image.items():
        values = values.double()
        summary[name] = float(values.mean())
        summary[f"{name}_se"] = float(values.std() / len(values) ** 0.5) if len(values) > 1 else 0.0
    return summary
