"""DiffAugment (Zhao et al. 2020): differentiable augmentations that D sees on real and fake images alike.

A port of the authors' DiffAugment_pytorch.py (mit-han-lab/data-efficient-gans) in plain torch: kornia is not
a genlab dependency, and its augmentations draw their parameters through a module API built for data
pipelines, where these are three small per-image functions. Two changes from the original, so that it works
in either pixel range ([-1, 1] or [0, 1]) and for 1-channel MNIST:

- the brightness shift, U(-0.5, 0.5) for [-1, 1] images, is scaled to the range's width;
- translation and cutout fill with the range's low end (black, MNIST's background) instead of 0, which is
  mid-grey in [-1, 1].

Saturation is a no-op on 1-channel images (each pixel is its own channel mean), as in the original. Every
image draws its own parameters from torch's global RNG (a seeded run repeats them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from genlab.errors import require


def rand_brightness(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """Add one shift per image, uniform in +-1/4 of the pixel range's width."""
    low, high = pixel_range
    shift = torch.rand(len(images), 1, 1, 1, dtype=images.dtype, device=images.device) - 0.5
    return images + shift * (high - low) / 2


def rand_saturation(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """Scale each pixel's distance to its channel mean by a factor in [0, 2) per image."""
    mean = images.mean(dim=1, keepdim=True)
    scale = torch.rand(len(images), 1, 1, 1, dtype=images.dtype, device=images.device) * 2
    return (images - mean) * scale + mean


def rand_contrast(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """Scale each image's distance to its mean by a factor in [0.5, 1.5)."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    scale = torch.rand(len(images), 1, 1, 1, dtype=images.dtype, device=images.device) + 0.5
    return (images - mean) * scale + mean


def rand_translation(
    images: torch.Tensor, pixel_range: Sequence[float], ratio: float = 0.125
) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in both directions, filling with black."""
    n, _, height, width = images.shape
    max_dy, max_dx = int(height * ratio), int(width * ratio)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=images.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=images.device)
    # Index into a copy padded by one black pixel: every source outside the image lands on the padding.
    rows = (torch.arange(height, device=images.device).view(1, -1, 1) + dy + 1).clamp(0, height + 1)
    cols = (torch.arange(width, device=images.device).view(1, 1, -1) + dx + 1).clamp(0, width + 1)
    padded = F.pad(images, (1, 1, 1, 1), value=pixel_range[0])
    batch = torch.arange(n, device=images.device).view(-1, 1, 1)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # [n, h, w, c] -> [n, c, h, w]


def rand_cutout(images: torch.Tensor, pixel_range: Sequence[float], ratio: float = 0.5) -> torch.Tensor:
    """Blacken one square of `ratio` x the image size per image, centred anywhere (clipped at the edges)."""
    n, _, height, width = images.shape
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    top = torch.randint(0, height + 1 - cut_h % 2, (n, 1, 1), device=images.device) - cut_h // 2
    left = torch.randint(0, width + 1 - cut_w % 2, (n, 1, 1), device=images.device) - cut_w // 2
    rows = torch.arange(height, device=images.device).view(1, -1, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return images.masked_fill(inside.unsqueeze(1), pixel_range[0])


AUGMENTATIONS: dict[str, tuple[Callable[[torch.Tensor, Sequence[float]], torch.Tensor], ...]] = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """`model.diffaugment` ("", "color,translation,cutout" or a list of names) -> the names, checked."""
    names = tuple(name.strip() for name in (policy.split(",") if isinstance(policy, str) else policy))
    names = tuple(name for name in names if name)
    unknown = [name for name in names if name not in AUGMENTATIONS]
    require(
        not unknown,
        "model.diffaugment",
        policy,
        f'use "" or a comma list of {", ".join(AUGMENTATIONS)} (unknown: {", ".join(unknown)})',
    )
    return names


def diff_augment(images: torch.Tensor, policy: Sequence[str], pixel_range: Sequence[float]) -> torch.Tensor:
    """`images` through each augmentation of `policy` in turn (differentiable; identity for no policy)."""
    for name in policy:
        for augmentation in AUGMENTATIONS[name]:
            images = augmentation(images, pixel_range)
    return images
