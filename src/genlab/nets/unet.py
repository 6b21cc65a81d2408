"""The U-Net of flow models: torchcfm's `UNetModel` (the guided-diffusion U-Net of Dhariwal & Nichol 2021,
with a sinusoidal time embedding), a velocity v(t, x) of the image's shape."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchcfm.models.unet.unet import UNetModelWrapper

from genlab.errors import require

#: torchcfm's U-Net normalises with GroupNorm(32 groups) throughout
GROUPS = 32


class UNet(nn.Module):
    """`channels` at full resolution, times `channel_mult[i]` at level i (each level halves the image),
    `res_blocks` residual blocks per level, self-attention with `heads` heads at the levels listed in
    `attention_levels` (0: full resolution; e.g. [2] with three levels at 28 px: at 7 px), so that one config
    serves every image size."""

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: int,
        res_blocks: int,
        channel_mult: Sequence[int],
        attention_levels: Sequence[int],
        heads: int,
        dropout: float,
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        require(h == w, "model.image_shape", list(image_shape), "the U-Net needs square images")
        levels = len(channel_mult)
        require(levels >= 1, "model.net.channel_mult", list(channel_mult), "give one multiplier per level")
        factor = 2 ** (levels - 1)
        require(
            h % factor == 0,
            "model.net.channel_mult",
            list(channel_mult),
            f"{levels} levels halve the image {levels - 1} times, and {h} px is not divisible by {factor}: "
            f"use at most {_max_levels(h)} levels at {h} px",
        )
        require(
            channels > 0 and all(channels * m % GROUPS == 0 for m in channel_mult),
            "model.net.channels",
            channels,
            f"channels times each channel_mult must be a multiple of {GROUPS} (GroupNorm groups)",
        )
        require(
            all(0 <= int(level) < levels for level in attention_levels),
            "model.net.attention_levels",
            list(attention_levels),
            f"the U-Net has levels 0 to {levels - 1} (0: full resolution); pick from them, or [] for none",
        )
        require(int(res_blocks) >= 1, "model.net.res_blocks", res_blocks, "must be >= 1")
        # torchcfm names attention resolutions by the image size divided by the downsampling factor; an empty
        # list takes a size no level has.
        attention = ",".join(str(h // 2 ** int(level)) for level in attention_levels) or str(2 * h)
        self.unet = UNetModelWrapper(
            dim=(c, h, w),
            num_channels=int(channels),
            num_res_blocks=int(res_blocks),
            channel_mult=tuple(int(m) for m in channel_mult),
            attention_resolutions=attention,
            num_heads=int(heads),
            dropout=float(dropout),
        )

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The velocity at times `t` (0-d, or one per image) of images `x`."""
        return self.unet(t.to(x.dtype).expand(len(x)) if t.dim() == 0 else t.to(x.dtype), x)


def _max_levels(size: int) -> int:
    levels = 1
    while size % 2**levels == 0:
        levels += 1
    return levels
