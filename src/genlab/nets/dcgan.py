"""DCGAN-style nets with a spectrally normalised discriminator: genlab's answer to study A's Imagenette GAN.

Where the study's generator upsamples to 256px and then interpolates to 160px, and its discriminator pools
the image away with ReLUs and MaxPool, these follow the recipe that is known to train (Radford et al. 2016;
Miyato et al. 2018): strided (transposed) convolutions that double or halve the size exactly, BatchNorm +
ReLU in the generator, LeakyReLU and spectral normalisation (no BatchNorm) in the discriminator. Sizes are
4..7 x a power of 2, so MNIST's 28 (7 -> 14 -> 28) works as well as 32, 64, 128 and 160.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrizations

from genlab.errors import ConfigError, require

#: how the generator doubles the size: a transposed conv k4 s2 (DCGAN), or resizing then a conv k3, which
#: avoids the checkerboard artefacts of overlapping transposed kernels (Odena et al. 2016)
UPSAMPLES = ("transposed", "nearest", "bilinear")


def stages(image_size: int) -> tuple[int, int]:
    """(number of x2 stages, base size in 4..7) so that base * 2**stages == image_size."""
    n, base = 0, image_size
    while base >= 8 and base % 2 == 0:
        n, base = n + 1, base // 2
    if not 4 <= base <= 7 or n < 2:
        raise ConfigError(
            f"image size {image_size} does not suit the DCGAN nets (needs 4..7 x a power of 2 >= 4): "
            "set data.image_size to 32, 64, 128 or 160 (MNIST's 28 works too)"
        )
    return n, base


def widths(n: int, width: int, max_width: int) -> list[int]:
    """Channel widths from the image side inwards: width, 2 x width, ... capped at max_width."""
    return [min(max_width, width * 2**i) for i in range(n)]


def upsampling(upsample: str, c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    """One x2 stage's layers from `c_in` to `c_out` channels, by the `upsample` method."""
    if upsample == "transposed":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode=upsample), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]


def normalised(layer: nn.Module, spectral_norm: bool) -> nn.Module:
    """`layer` with spectral normalisation of its weight (Miyato et al. 2018), or as it is."""
    return parametrizations.spectral_norm(layer) if spectral_norm else layer


class DCGANGenerator(nn.Module):
    """Linear to a base x base map, then x2 stages (BatchNorm, ReLU) to the image size.

    `upsample`: "transposed" (ConvTranspose k4 s2, DCGAN), or "nearest" / "bilinear" (resize x2, then
    Conv k3), see UPSAMPLES.
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        width: int,
        max_width: int,
        upsample: str,
    ) -> None:
        super().__init__()
        require(upsample in UPSAMPLES, "model.generator.upsample", upsample, f"choose one of {UPSAMPLES}")
        n, base = stages(image_shape[1])
        chans = widths(n, width, max_width)[::-1]  # deepest first
        self.base = (chans[0], base, base)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, chans[0] * base * base, bias=False),
            nn.Unflatten(1, self.base),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:], strict=False):
            layers += [*upsampling(upsample, c_in, c_out, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += upsampling(upsample, chans[-1], image_shape[0], bias=True)
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.project(z))


class DCGANDiscriminator(nn.Module):
    """Conv k4 s2 + LeakyReLU(0.2) stages down to base x base, then Linear; spectral norm on every layer
    unless `spectral_norm` is false; with `batch_norm`, BatchNorm after every conv but the first (Radford et
    al.'s D, which sees real and fake images in separate batches, as genlab.models.GAN feeds them).
    `conv3x3`: a Conv k3 s1 + LeakyReLU before each strided conv, twice the depth at the same widths (Miyato
    et al.'s "standard CNN", StudioGAN's DCGAN D). No preset uses it: it doubles D's convolutions, and
    with them most of a training step's cost on a CPU.

    `features(images)` gives the flattened output of the last conv stage, the penultimate features that
    feature matching (genlab.models.GAN, `feature_matching`) compares.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        out_features: int,
        width: int,
        max_width: int,
        spectral_norm: bool,
        batch_norm: bool,
        conv3x3: bool,
    ) -> None:
        super().__init__()
        n, base = stages(image_shape[1])
        chans = [image_shape[0], *widths(n, width, max_width)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(chans, chans[1:], strict=False)):
            if conv3x3:
                layers += [normalised(nn.Conv2d(c_in, c_out, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2)]
                c_in = c_out
            layers.append(
                normalised(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not (batch_norm and i)), spectral_norm)
            )
            layers += [nn.BatchNorm2d(c_out)] if batch_norm and i else []
            layers.append(nn.LeakyReLU(0.2))
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = normalised(nn.Linear(chans[-1] * base * base, out_features), spectral_norm)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
