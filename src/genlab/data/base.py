"""The in-memory image data module shared by MNIST and Imagenette.

Each split is held as ONE uint8 tensor [N, C, H, W]; the loader fetches a whole batch with one indexing
operation (`__getitems__`) and the conversion to float in the model's pixel range happens after the
batch reached the device (`on_after_batch_transfer`), so a GPU receives 4x fewer bytes and no
per-sample PIL work is ever done.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from genlab.cache import fingerprint
from genlab.errors import ConfigError, require


class UInt8ImageDataset(Dataset):
    """Images as one uint8 tensor plus labels; `__getitems__` returns a whole batch at once."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.images.is_cuda:  # a pinned, asynchronous copy of the index: no synchronisation per batch
            index = index.pin_memory().to(self.images.device, non_blocking=True)
        # index_select copies whole rows: ~9x faster than `images[index]`'s element-wise gather on a CPU.
        return self.images.index_select(0, index), self.labels.index_select(0, index)

    def to(self, device: torch.device) -> UInt8ImageDataset:
        """This dataset with its tensors on `device`."""
        return UInt8ImageDataset(self.images.to(device), self.labels.to(device))


class ResumableRandomSampler(RandomSampler):
    """torch's RandomSampler, with an epoch order that a resumed run can replay from any position.

    Each epoch draws its shuffling seed from the global torch RNG exactly as RandomSampler does (so runs are
    unchanged), records it, and can start at an offset. torch's sampler has neither: a resumed run would
    shuffle afresh and start the epoch over. `ResumableDataLoader` counts the batches and sets the offset.
    """

    def __init__(self, data_source: Sized) -> None:
        super().__init__(data_source)
        self.epoch_seed: int | None = None  # the current epoch's shuffling seed
        self.resume_seed: int | None = None  # replay this epoch's order (set by a resumed loader)
        self.start = 0  # the index to start the next replayed order at

    def __iter__(self) -> Iterator[int]:
        if self.resume_seed is None:
            # RandomSampler's own draw (torch/utils/data/sampler.py), from the global RNG.
            self.epoch_seed = int(torch.empty((), dtype=torch.int64).random_().item())
            start = 0
        else:
            self.epoch_seed, start = self.resume_seed, self.start
            self.resume_seed, self.start = None, 0
        self.generator = torch.Generator().manual_seed(self.epoch_seed)
        try:
            yield from islice(super().__iter__(), start, None)
        finally:
            self.generator = None


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position within the epoch is saved in checkpoints and restored on resume.

    Lightning calls `state_dict`/`load_state_dict` on a train loader that has them (its `_Stateful` protocol)
    and, when it resumes in the middle of an epoch, takes the remaining batches from it. The state is the
    epoch's shuffling seed and the number of batches handed out, so the resumed epoch goes on with the same
    order where the interrupted one stopped. Only for a `ResumableRandomSampler`.
    """

    batches_done = 0
    _resume: dict[str, Any] | None = None

    # A generator rather than torch's _BaseDataLoaderIter: Lightning only iterates over it.
    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler = self.sampler
        assert isinstance(sampler, ResumableRandomSampler), (
            "ResumableDataLoader needs a ResumableRandomSampler"
        )
        resume, self._resume = self._resume, None
        # An interrupted epoch goes on; a checkpoint at an epoch's end starts the next epoch afresh.
        self.batches_done = 0
        if resume is not None and resume["batches_done"] < len(self):
            assert self.batch_size is not None, "ResumableDataLoader needs a batch_size"
            self.batches_done = resume["batches_done"]
            sampler.resume_seed, sampler.start = resume["epoch_seed"], self.batches_done * self.batch_size
            # torch's loader iterator draws its workers' base seed from the global RNG, which the interrupted
            # epoch did before its checkpoint: the resumed epoch must not draw it again.
            with torch.random.fork_rng(devices=[]):
                batches = super().__iter__()
        else:
            batches = super().__iter__()
        for batch in batches:
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        assert isinstance(sampler, ResumableRandomSampler), (
            "ResumableDataLoader needs a ResumableRandomSampler"
        )
        return {"epoch_seed": sampler.epoch_seed, "batches_done": self.batches_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = dict(state_dict) if state_dict.get("epoch_seed") is not None else None


def _batch_as_is(batch: Any) -> Any:
    """`__getitems__` already built the batch; a module-level function so workers can pickle it."""
    return batch


def to_pixel_range(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """uint8 [0, 255] -> float in `pixel_range` ([0, 1] for the VAE, [-1, 1] for the GAN)."""
    low, high = float(pixel_range[0]), float(pixel_range[1])
    scaled = images.float().mul_((high - low) / 255.0)
    return scaled.add_(low) if low else scaled


#: `data.binarize` options: null keeps the grey levels; dynamic draws binary pixels (see ImageDataModule)
BINARIZE = (None, "dynamic")
#: the seed of the one fixed binarisation of every image outside training (the same for every run)
FIXED_BINARIZATION_SEED = 0
_MASK32 = 0xFFFFFFFF
_HASH_MULTIPLIER = 0x45D9F3B  # below 2**31, so a 32-bit value times it never overflows int64


def _hash32(values: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer mix (T. Mueller's), in int64 arithmetic: counter-based random bits."""
    values = values & _MASK32
    for _ in range(2):
        values = (((values >> 16) ^ values) * _HASH_MULTIPLIER) & _MASK32
    return (values >> 16) ^ values


def fixed_binarization(images: torch.Tensor, seed: int = FIXED_BINARIZATION_SEED) -> torch.Tensor:
    """uint8 images -> uint8 {0, 255}: each pixel 255 with probability intensity / 255, drawn ONCE per image.

    The uniform noise of each pixel is a hash of its position, of the whole image's pixels and of `seed`,
    not a draw from an RNG: an image gets the same bits wherever it is converted (the validation loader,
    evaluate.py's test subset, the pictures), in any order, batch or device, so bounds are comparable.
    """
    flat = images.flatten(1).long()
    position = torch.arange(flat.shape[1], device=flat.device)
    image_key = _hash32(_hash32(position * 256 + flat).sum(1) + seed)
    noise = _hash32(image_key.unsqueeze(1) ^ _hash32(position))  # uniform on [0, 2**32)
    ones = noise * 255 < flat << 32  # noise / 2**32 < intensity / 255, in exact integers
    return (ones.to(torch.uint8) * 255).view_as(images)


def random_hflip(images: torch.Tensor) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2, drawn per image from the images' device RNG.

    By hand because torchvision's RandomHorizontalFlip draws one coin per call, so it flips a whole batch
    or none of it; one `torch.where` flips each image on its own, on the GPU when the batch is there.
    """
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip.view(-1, *([1] * (images.ndim - 1))), images.flip(-1), images)


def dynamic_binarization(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> uint8 {0, 255}, each pixel a fresh Bernoulli(intensity / 255) draw from the global
    RNG of the images' device (restored on resume, so a resumed run draws the same bits)."""
    return torch.bernoulli(images.float().div_(255.0)).to(torch.uint8).mul_(255)


class ImageDataModule(L.LightningDataModule):
    """Base class: subclasses fill `self.splits` with uint8 datasets in `setup`.

    Its arguments have no defaults: conf/data/<name>.yaml holds every one (`genlab.data.config` reads it
    outside a run), so a setting has one source.

    A subclass that takes `binarize` (MNIST) sets `self.binarize`: with "dynamic", every training batch is
    binarised afresh (`dynamic_binarization`, as the data augmentation of binarised-MNIST likelihoods), and
    every other conversion into the model's range (`to_model_range`: validation and test batches,
    evaluate.py, the pictures) uses the one fixed binarisation of each image (`fixed_binarization`).
    `split_images` stays the grey uint8 images (FID references, the classifier).

    A data module says what its data allows through class attributes, which evaluate.py reads (never the
    data set's name):

    - `has_digit_classifier`: its images are MNIST's 1 x 28 x 28 digits with their 10 labels, so genlab's
      digit classifier (`genlab.metrics.classifier`) can be trained on it; evaluate.py then adds the class
      histogram of the samples.
    """

    has_digit_classifier: ClassVar[bool] = False
    #: null (grey levels) or "dynamic"; set by subclasses that take a `binarize` argument
    binarize: str | None = None
    #: mirror each training image left-right with probability 1/2 (`random_hflip`); set by subclasses
    #: whose images have no handedness (Imagenette, not digits)
    hflip: bool = False

    def __init__(
        self,
        data_dir: str,
        batch_size: int,
        pixel_range: Sequence[float],
        num_workers: int,
        pin_memory: bool,
        split_seed: int,
        download: bool,
        device: str,
    ) -> None:
        super().__init__()
        # Every subclass's settings too: checkpoints record them, and evaluate.py and generate.py rebuild
        # the data from them.
        self.save_hyperparameters(logger=False)
        require(batch_size > 0, "data.batch_size", batch_size, "must be a positive integer")
        require(num_workers >= 0, "data.num_workers", num_workers, "must be >= 0")
        require(
            device in ("cpu", "auto") or str(device).startswith("cuda"),
            "data.device",
            device,
            "use cpu, auto (the training GPU when there is one) or cuda",
        )
        pixel_range = tuple(float(v) for v in pixel_range)
        require(
            pixel_range in {(0.0, 1.0), (-1.0, 1.0)},
            "data.pixel_range",
            list(pixel_range),
            "use [0, 1] (VAE, sigmoid output) or [-1, 1] (GAN, tanh output)",
        )
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.batch_size = batch_size
        self.pixel_range = pixel_range
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.split_seed = split_seed
        self.download = download
        self.device = device
        self.splits: dict[str, UInt8ImageDataset] = {}
        self._on_device: dict[str, UInt8ImageDataset] = {}  # the loaders' copies on the training GPU
        self._fingerprint: str | None = None

    # LightningDataModule declares `name` as a plain attribute (None), which Lightning itself never sets.
    @property
    def name(self) -> str:  # type: ignore[override]
        """The data set, for cache keys and reports: 'mnist', 'imagenette-160px' (its download)."""
        return type(self).__name__.removesuffix("DataModule").lower()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def check_available(self) -> None:
        """Raise a DataError now, before any model is built, if the data is missing and not downloaded."""
        raise NotImplementedError

    def source_files(self) -> list[Path]:
        """The files below `data_dir` the data is read from: their content keys the caches built from it."""
        raise NotImplementedError

    def fingerprint(self, cache: Path) -> str:
        """The content fingerprint of `source_files` (`genlab.cache.fingerprint`): one value for the same
        data on any path, so caches found through a symlink or a copy are reused."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.data_dir, self.source_files(), cache)
        return self._fingerprint

    def split_images(self, split: str) -> torch.Tensor:
        """All uint8 images of `split` ("train", "val" or "test"), loading the data if needed."""
        if split not in self.splits:
            self.setup("fit" if split in ("train", "val") else "test")
        return self.splits[split].images

    def to_model_range(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float in this data module's pixel range (binarised once, with `binarize`)."""
        if self.binarize == "dynamic":
            images = fixed_binarization(images)
        return to_pixel_range(images, self.pixel_range)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            if self.hflip:
                images = random_hflip(images)
            if self.binarize == "dynamic":
                return to_pixel_range(dynamic_binarization(images), self.pixel_range), labels
        return self.to_model_range(images), labels

    def loader_device(self) -> torch.device:
        """Where the loaders index the batches (`data.device`): the CPU, or the trainer's GPU."""
        root = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self.device == "cpu" or (self.device == "auto" and root.type != "cuda"):
            return torch.device("cpu")
        if root.type != "cuda":
            raise ConfigError(
                f"data.device={self.device!r} needs training on a GPU, but the trainer runs on {root}: "
                "use data.device=auto (the GPU when there is one) or trainer=gpu"
            )
        return root

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset, device = self.splits[split], self.loader_device()
        on_device = device.type != "cpu"
        if on_device:  # once per split; its batches are then indexed on the GPU
            if split not in self._on_device:
                self._on_device[split] = dataset.to(device)
            dataset = self._on_device[split]
        # One process: a shuffle that a resumed run replays exactly. Under DDP Lightning puts its
        # DistributedSampler (seeded by epoch) in place of any RandomSampler.
        distributed = self.trainer is not None and self.trainer.world_size > 1
        resumable = shuffle and not distributed
        return (ResumableDataLoader if resumable else DataLoader)(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and not resumable,
            sampler=ResumableRandomSampler(dataset) if resumable else None,
            # Full batches only in training (BatchNorm), unless the split is smaller than one batch.
            drop_last=shuffle and len(dataset) >= self.batch_size,
            collate_fn=_batch_as_is,
            # Workers cannot share GPU tensors, and nothing is left to pin.
            num_workers=0 if on_device else self.num_workers,
            pin_memory=self.pin_memory and not on_device,
            persistent_workers=self.num_workers > 0 and not on_device,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def _hold_out(self, images: torch.Tensor, labels: torch.Tensor, n_val: int) -> None:
        """Split a train set into train and a fixed-seed validation hold-out of `n_val` images."""
        require(
            0 < n_val < len(images),
            "data.val_size",
            n_val,
            f"must be between 1 and {len(images) - 1} (the train split has {len(images)} images)",
        )
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[:n_val], order[n_val:]
        self.splits["train"] = UInt8ImageDataset(images[train], labels[train])
        self.splits["val"] = UInt8ImageDataset(images[val], labels[val])
