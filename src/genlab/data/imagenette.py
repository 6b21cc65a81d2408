"""Imagenette (10 ImageNet classes) through torchvision, decoded once into a cached uint8 tensor."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import Imagenette
from torchvision.transforms.v2 import functional as F

from genlab.cache import cache_dir, fingerprint, load_or_build
from genlab.data.base import ImageDataModule, UInt8ImageDataset
from genlab.errors import DataError, one_line, require

log = logging.getLogger(__name__)

SIZES = {"160px": "imagenette2-160", "320px": "imagenette2-320", "full": "imagenette2"}
CACHE_FORMAT = 2  # bump when the cached tensors' layout or preprocessing changes


def load_image(path: str, image_size: int) -> torch.Tensor:
    """Decode one JPEG to RGB uint8, resize its shorter side to `image_size`, centre-crop a square."""
    try:
        with Image.open(path) as file:
            image = F.pil_to_tensor(file.convert("RGB"))  # grey and CMYK JPEGs exist in ImageNet
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"cannot decode image {path}: {error}. Delete or replace the file.") from error
    image = F.resize(image, [image_size], antialias=True)
    return F.center_crop(image, [image_size, image_size])


class ImagenetteDataModule(ImageDataModule):
    """Imagenette: train with a fixed-seed val hold-out; the official val split is the test split."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int,
        pixel_range: Sequence[float],
        size: str,
        image_size: int,
        val_fraction: float,
        cache_dir: str | None,
        num_workers: int,
        pin_memory: bool,
        split_seed: int,
        download: bool,
        device: str,
        hflip: bool,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
            batch_size=batch_size,
            pixel_range=pixel_range,
            num_workers=num_workers,
            pin_memory=pin_memory,
            split_seed=split_seed,
            download=download,
            device=device,
        )
        self.hflip = bool(hflip)
        require(size in SIZES, "data.size", size, f"choose one of {sorted(SIZES)}")
        require(image_size >= 8, "data.image_size", image_size, "must be at least 8 (the study uses 160)")
        require(0.0 < val_fraction < 1.0, "data.val_fraction", val_fraction, "must be between 0 and 1")
        self.size = size
        self.image_size = image_size
        self.val_fraction = val_fraction
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else None

    @property
    def name(self) -> str:  # type: ignore[override]  # see ImageDataModule.name
        return f"imagenette-{self.size}"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def root(self) -> Path:
        return self.data_dir / SIZES[self.size]

    def check_available(self) -> None:
        for split in ("train", "val"):
            if not (self.root / split).is_dir():
                self._missing_error(split)  # raises unless download is on
                self._download(split)  # now, before any model is built: offline, this fails in seconds

    def prepare_data(self) -> None:
        self._load("train")
        self._load("val")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            images, labels = self._load("train")
            self._hold_out(images, labels, max(1, round(self.val_fraction * len(images))))
        if stage in (None, "test", "predict") and "test" not in self.splits:
            self.splits["test"] = UInt8ImageDataset(*self._load("val"))

    def _split_files(self, split: str) -> list[Path]:
        return [path for path in (self.root / split).rglob("*") if path.is_file()]

    def source_files(self) -> list[Path]:
        return self._split_files("train") + self._split_files("val")

    def _cache_file(self, split: str, source: str) -> Path:
        """The decoded `split` of the data whose fingerprint is `source`: data on other paths shares it, other
        data (another copy, the tests' fakes) gets its own file."""
        name = f"{SIZES[self.size]}_{split}_{self.image_size}px_{source[:16]}.pt"
        return cache_dir(self.cache_dir) / name

    def _missing_error(self, split: str) -> None:
        """A DataError naming the expected folder when `split` is missing and download is off."""
        folder = self.root / split
        if not folder.is_dir() and not self.download:
            raise DataError(
                f"Imagenette ({self.size}) not found: expected {folder}/<wnid>/*.JPEG, the layout "
                f"torchvision.datasets.Imagenette(root='{self.data_dir}', size='{self.size}') reads. "
                "Fix: set data.data_dir to the folder that holds "
                f"{SIZES[self.size]}/, or add data.download=true to download it (needs internet)."
            )

    def _download(self, split: str) -> None:
        try:
            Imagenette(str(self.data_dir), split=split, size=self.size, download=True)
        except (OSError, RuntimeError, ValueError) as error:
            raise DataError(
                f"Imagenette ({self.size}) not found: expected {self.root / split}/<wnid>/*.JPEG, and its "
                f"download into {self.data_dir} failed ({type(error).__name__}: {one_line(error)}). Offline? "
                f"Fix: set data.data_dir to the folder that holds {SIZES[self.size]}/, or put "
                f"{SIZES[self.size]}/{{train,val}}/<wnid>/*.JPEG there by hand."
            ) from error

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Load `split` ("train" or the official "val") from the cache, (re)building it when stale."""
        folder = self.root / split
        if not folder.is_dir():
            self._missing_error(split)
            self._download(split)
        source = fingerprint(folder, self._split_files(split), cache_dir(self.cache_dir))
        key = {"format": CACHE_FORMAT, "fingerprint": source}
        cached = load_or_build(self._cache_file(split, source), key, lambda: self._decode(split))
        return cached["images"], cached["labels"]

    def _decode(self, split: str) -> dict[str, torch.Tensor]:
        dataset = Imagenette(str(self.data_dir), split=split, size=self.size, loader=str)
        if len(dataset) == 0:
            raise DataError(f"Imagenette folder {self.root / split} holds no <wnid>/*.JPEG files")
        paths, labels = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
        log.info("decoding %d Imagenette %s images to %dpx (once)", len(paths), split, self.image_size)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            images = list(pool.map(lambda path: load_image(path, self.image_size), paths))
        return {"images": torch.stack(images), "labels": torch.tensor(labels, dtype=torch.long)}
