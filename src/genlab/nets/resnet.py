"""The SNGAN ResNet pair (Miyato et al. 2018; the "ResNet" nets of StudioGAN and DiffAugment's CIFAR runs),
sized by `width` for a CPU or a GPU.

Generator: Linear to a base x base map, then residual up-blocks (BatchNorm, ReLU, nearest x2, conv 3x3,
BatchNorm, ReLU, conv 3x3; shortcut: x2 then conv 1x1), then BatchNorm, ReLU and a conv 3x3 to the image.
Discriminator: residual down-blocks (ReLU, conv 3x3, ReLU, conv 3x3, average pool; shortcut: conv 1x1 and
pool), one more block without pooling, ReLU, a sum over positions and a Linear; spectral norm on every
layer. torchvision has no GAN nets, so these are written out; the block layout follows the papers' code.
Sizes are 4..7 x a power of 2 (genlab.nets.dcgan.stages): 32 and 64 px, 28 for MNIST, 128 and 160.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genlab.nets.dcgan import normalised, stages, widths


class UpBlock(nn.Module):
    """x2 residual block of the generator, `c_in` to `c_out` channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c_in, c_out, 3, 1, 1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class DownBlock(nn.Module):
    """Residual block of the discriminator, halving the size when `down`. The `first` block sees the image:
    no ReLU before its first conv, and its shortcut pools before the 1x1 conv (SNGAN's optimised block)."""

    def __init__(
        self, c_in: int, c_out: int, down: bool = True, first: bool = False, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        pool = [nn.AvgPool2d(2)] if down else []
        self.main = nn.Sequential(
            *([] if first else [nn.ReLU()]),
            normalised(nn.Conv2d(c_in, c_out, 3, 1, 1), spectral_norm),
            nn.ReLU(),
            normalised(nn.Conv2d(c_out, c_out, 3, 1, 1), spectral_norm),
            *pool,
        )
        if c_in == c_out and not down:
            self.shortcut: nn.Module = nn.Identity()
        else:
            conv = normalised(nn.Conv2d(c_in, c_out, 1), spectral_norm)
            self.shortcut = nn.Sequential(*pool, conv) if first else nn.Sequential(conv, *pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """Linear to base x base x (deepest width), then one UpBlock per x2 stage, then BN, ReLU, conv 3x3.

    Widths from the image side inwards: `width`, 2 x `width`, ... capped at `max_width`.
    """

    def __init__(self, latent_dim: int, image_shape: Sequence[int], width: int, max_width: int) -> None:
        super().__init__()
        n, base = stages(image_shape[1])
        chans = widths(n, width, max_width)[::-1]  # deepest first
        chans = [chans[0], *chans]  # the base map has the deepest width too
        self.base = (chans[0], base, base)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, chans[0] * base * base), nn.Unflatten(1, self.base)
        )
        self.blocks = nn.Sequential(
            *[UpBlock(c_in, c_out) for c_in, c_out in zip(chans, chans[1:], strict=False)]
        )
        self.to_image = nn.Sequential(
            nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], image_shape[0], 3, 1, 1)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.blocks(self.project(z)))


class ResNetDiscriminator(nn.Module):
    """One DownBlock per /2 stage down to base x base, one more without pooling, ReLU, sum over positions,
    Linear. `features(images)` gives the summed features, the input of the last layer (feature matching)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        out_features: int,
        width: int,
        max_width: int,
        spectral_norm: bool,
    ) -> None:
        super().__init__()
        n, _ = stages(image_shape[1])
        chans = [image_shape[0], *widths(n, width, max_width)]
        blocks = [
            DownBlock(c_in, c_out, first=i == 0, spectral_norm=spectral_norm)
            for i, (c_in, c_out) in enumerate(zip(chans, chans[1:], strict=False))
        ]
        blocks.append(DownBlock(chans[-1], chans[-1], down=False, spectral_norm=spectral_norm))
        self.blocks = nn.Sequential(*blocks, nn.ReLU())
        self.head = normalised(nn.Linear(chans[-1], out_features), spectral_norm)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(images).sum(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
