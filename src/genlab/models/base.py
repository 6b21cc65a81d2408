"""What every genlab model offers: a latent prior, `generate(z)` and `sample(n)` in its pixel range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from genlab.errors import require
from genlab.instantiate import build

PIXEL_RANGES = {(0.0, 1.0): torch.sigmoid, (-1.0, 1.0): torch.tanh}


def plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists, so hparams and checkpoints stay weights_only-loadable."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def build_net(config: Mapping[str, Any], key: str, **sizes: Any) -> nn.Module:
    """Instantiate a net from its `_target_` config, passing the sizes that the model knows."""
    require(
        isinstance(config, Mapping) and "_target_" in config,
        key,
        config,
        "must be a net config with a `_target_` (see conf/nets/)",
    )
    return build(config, **sizes)


class GenerativeModel(L.LightningModule):
    """Shared by the VAE and the GAN: shapes, prior, output range, sampling."""

    #: the prior's family; the GAN can switch to "uniform" noise on [-1, 1]
    noise: str = "normal"

    def __init__(self, image_shape: Sequence[int], latent_dim: int, pixel_range: Sequence[float]) -> None:
        super().__init__()
        require(
            len(image_shape) == 3 and all(int(s) > 0 for s in image_shape),
            "model.image_shape",
            list(image_shape),
            "must be [channels, height, width] (it normally comes from data.image_shape)",
        )
        require(int(latent_dim) > 0, "model.latent_dim", latent_dim, "must be a positive integer")
        pixel_range = tuple(float(v) for v in pixel_range)
        require(pixel_range in PIXEL_RANGES, "model.pixel_range", list(pixel_range), "use [0, 1] or [-1, 1]")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = int(latent_dim)
        self.pixel_range = pixel_range
        self.output_activation = PIXEL_RANGES[pixel_range]

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` latent vectors from the prior: N(0, I), or U(-1, 1) for `noise: uniform`."""
        device = generator.device if generator is not None else self.device
        if self.noise == "uniform":
            z = torch.rand(n, self.latent_dim, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return z.to(self.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in the model's pixel range from latent vectors `z`."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` new images from the prior, in the model's pixel range."""
        return self.generate(self.sample_latent(n, generator))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lets genlab.checkpoints tell a genlab model (and which one) from any other file, before loading.
        checkpoint["genlab"] = {"model": type(self).__name__, "image_shape": list(self.image_shape)}

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Images in the model's pixel range -> [0, 1], for display and metrics."""
        low, high = self.pixel_range
        return ((images - low) / (high - low)).clamp(0.0, 1.0)
