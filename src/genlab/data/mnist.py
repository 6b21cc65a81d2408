"""MNIST (28x28 grey) through torchvision, held in memory as uint8 tensors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.datasets import MNIST

from genlab.data.base import BINARIZE, ImageDataModule, UInt8ImageDataset
from genlab.errors import DataError, one_line, require

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def check_idx_file(path: Path) -> None:
    """Raise a DataError naming `path` if it is not a complete IDX file (header, dims, size)."""
    if not path.is_file():
        raise DataError(f"MNIST file missing: {path}")
    data = path.read_bytes()
    if len(data) < 8:
        raise DataError(f"MNIST file {path} is truncated ({len(data)} bytes): delete it and get it again")
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(torch.tensor(dims).prod()) if dims else -1
    if magic not in (2049, 2051) or len(data) != expected:
        raise DataError(
            f"MNIST file {path} is corrupt or truncated (magic {magic}, dims {dims}, {len(data)} bytes, "
            f"expected {expected}): delete it and get it again (data.download=true when online)"
        )


class MNISTDataModule(ImageDataModule):
    """MNIST: train 55,000 / val 5,000 (fixed `split_seed`) / test 10,000, as [N, 1, 28, 28] uint8.

    `binarize="dynamic"`: binary pixels, drawn afresh for each training batch and fixed once per image
    everywhere else (see ImageDataModule), the setting of the binarised-MNIST likelihoods in the literature.
    """

    has_digit_classifier = True

    def __init__(
        self,
        data_dir: str,
        batch_size: int,
        pixel_range: Sequence[float],
        val_size: int,
        num_workers: int,
        pin_memory: bool,
        split_seed: int,
        download: bool,
        device: str,
        binarize: str | None,
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
        require(
            binarize in BINARIZE,
            "data.binarize",
            binarize,
            "use null (grey pixels) or dynamic (Bernoulli(intensity) pixels, for a Bernoulli likelihood)",
        )
        self.val_size = val_size
        self.binarize = binarize

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 28, 28)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def source_files(self) -> list[Path]:
        return [self.raw_dir / name for name in IDX_FILES]

    def check_available(self) -> None:
        if self._missing_error():
            self._download()  # now, before any model is built: offline, this fails in seconds

    def prepare_data(self) -> None:
        self._load(train=True)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            images, labels = self._load(train=True)
            self._hold_out(images, labels, self.val_size)
        if stage in (None, "test", "predict") and "test" not in self.splits:
            self.splits["test"] = UInt8ImageDataset(*self._load(train=False))

    def _missing_error(self) -> list[str]:
        """The missing IDX files; a DataError if any is missing and download is off."""
        missing = [name for name in IDX_FILES if not (self.raw_dir / name).is_file()]
        if missing and not self.download:
            raise DataError(
                f"MNIST not found: expected the IDX files {sorted(IDX_FILES)} in {self.raw_dir} "
                f"(missing: {', '.join(missing)}), the layout torchvision.datasets.MNIST(root="
                f"'{self.data_dir}') reads. Fix: set data.data_dir to the folder that holds MNIST/raw/, or "
                "add data.download=true to download it (needs internet)."
            )
        return missing

    def _download(self) -> None:
        try:
            MNIST(str(self.data_dir), train=True, download=True)
        except (OSError, RuntimeError, ValueError) as error:
            raise DataError(
                f"MNIST not found in {self.raw_dir}, and its download failed ({type(error).__name__}: "
                f"{one_line(error)}). Offline? Fix: set data.data_dir to the folder that holds MNIST/raw/, "
                f"or put the files {sorted(IDX_FILES)} there."
            ) from error

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self._missing_error():
            self._download()
        try:
            dataset = MNIST(str(self.data_dir), train=train, download=False)
        except (OSError, RuntimeError, ValueError) as error:
            for name in IDX_FILES:
                check_idx_file(self.raw_dir / name)
            raise DataError(f"MNIST in {self.raw_dir} could not be read: {error}") from error
        images, labels = dataset.data, dataset.targets
        if images.dtype != torch.uint8 or images.shape[1:] != (28, 28):
            raise DataError(f"MNIST in {self.raw_dir} has odd images {images.dtype} {tuple(images.shape)}")
        return images.unsqueeze(1).contiguous(), labels.long()
