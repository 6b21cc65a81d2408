"""The data modules on fake files in the real on-disk formats: shapes, ranges, splits, cache, errors."""

import inspect
import os
import shutil
import urllib.error

import pytest
import torch
from helpers import CONF_DIR, make_datamodule, write_fake_imagenette, write_fake_mnist
from hydra.utils import get_class
from omegaconf import OmegaConf
from PIL import Image

from genlab import cache as genlab_cache
from genlab.cache import fingerprint, load_or_build
from genlab.data import ImagenetteDataModule
from genlab.data.base import random_hflip
from genlab.data.config import conf_file, data_settings
from genlab.errors import ConfigError, DataError


def first_batch(datamodule, loader: str = "train_dataloader"):
    batch = next(iter(getattr(datamodule, loader)()))
    return datamodule.on_after_batch_transfer(batch, 0)


def test_mnist_splits_dtypes_and_ranges(mnist_dir):
    dm = make_datamodule("mnist", data_dir=mnist_dir, batch_size=16, val_size=50)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.splits["train"]) == 250 and len(dm.splits["val"]) == 50 and len(dm.splits["test"]) == 100
    assert dm.split_images("train").dtype == torch.uint8
    assert dm.split_images("train").shape[1:] == (1, 28, 28) == dm.image_shape
    raw = next(iter(dm.train_dataloader()))[0]
    assert raw.dtype == torch.uint8 and raw.shape == (16, 1, 28, 28)  # uint8 until on the device
    images, labels = first_batch(dm)
    assert images.dtype == torch.float32 and images.min() >= 0 and images.max() <= 1 and images.max() == 1
    assert labels.dtype == torch.long and len(labels) == 16
    gan = make_datamodule("mnist", data_dir=mnist_dir, batch_size=16, val_size=50, pixel_range=(-1, 1))
    gan.setup("fit")
    images, _ = first_batch(gan)
    assert images.min() == -1 and images.max() == 1


def test_mnist_val_split_is_fixed_by_split_seed(mnist_dir):
    a, b, c = (make_datamodule("mnist", data_dir=mnist_dir, val_size=50, split_seed=s) for s in (0, 0, 1))
    for dm in (a, b, c):
        dm.setup("fit")
    assert torch.equal(a.split_images("val"), b.split_images("val"))
    assert not torch.equal(a.split_images("val"), c.split_images("val"))


def test_mnist_missing_offline_names_path_and_fix(tmp_path):
    dm = make_datamodule("mnist", data_dir=tmp_path / "nowhere", download=False)
    with pytest.raises(DataError, match=r"MNIST/raw.*data\.download=true"):
        dm.check_available()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        dm.prepare_data()


def test_mnist_download_failure_offline_is_explained(tmp_path, monkeypatch):
    # The real torchvision download path runs; only the network is replaced by an offline failure.
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", offline)
    dm = make_datamodule("mnist", data_dir=tmp_path, download=True)
    with pytest.raises(DataError, match="(?s)download .*failed.*Offline"):
        dm.prepare_data()
    with pytest.raises(DataError, match="(?s)MNIST not found.*download .*failed.*data.data_dir"):
        dm.check_available()  # what train.py calls first: the download is tried before any model is built


def test_mnist_corrupt_file_is_named(tmp_path):
    root = write_fake_mnist(tmp_path, n_train=20, n_test=10)
    bad = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*corrupt or truncated"):
        make_datamodule("mnist", data_dir=root, val_size=5).prepare_data()


def test_invalid_values_name_the_key(mnist_dir):
    with pytest.raises(ConfigError, match="data.batch_size"):
        make_datamodule("mnist", data_dir=mnist_dir, batch_size=0)
    with pytest.raises(ConfigError, match="data.pixel_range"):
        make_datamodule("mnist", data_dir=mnist_dir, pixel_range=(0, 255))
    with pytest.raises(ConfigError, match="data.val_size"):
        make_datamodule("mnist", data_dir=mnist_dir, val_size=10**6).setup("fit")
    with pytest.raises(ConfigError, match="data.size"):
        make_datamodule("imagenette", data_dir=mnist_dir, size="64px")


def test_imagenette_shapes_splits_and_crop(imagenette_dir, tmp_path):
    dm = make_datamodule(
        "imagenette", data_dir=imagenette_dir, batch_size=4, image_size=32, cache_dir=str(tmp_path)
    )
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    # 3 classes x 6 train images, 10% held out; the official val (3 x 2) is the test split.
    assert len(dm.splits["train"]) + len(dm.splits["val"]) == 18 and len(dm.splits["val"]) == 2
    assert len(dm.splits["test"]) == 6
    train = dm.split_images("train")
    assert train.dtype == torch.uint8 and train.shape[1:] == (3, 32, 32) == dm.image_shape
    images, labels = first_batch(dm)
    assert images.shape == (4, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert set(dm.splits["test"].labels.tolist()) == {0, 1, 2}


def test_random_hflip_mirrors_each_image_on_its_own():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (256, 3, 4, 5), dtype=torch.uint8)
    out = random_hflip(images)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    kept = (out == images).flatten(1).all(1)
    assert bool((mirrored | kept).all())  # each image whole: as it was, or mirrored
    assert 96 < int(mirrored.sum()) < 160  # about half, drawn per image (not one coin per batch)


class _Trainer:
    def __init__(self, training: bool) -> None:
        self.training = training


def test_imagenette_hflip_applies_to_training_batches_only(imagenette_dir, tmp_path):
    dm = make_datamodule(
        "imagenette",
        data_dir=imagenette_dir,
        batch_size=16,
        image_size=8,
        cache_dir=str(tmp_path),
        hflip=True,
    )
    dm.setup("fit")
    batch = dm.splits["train"].__getitems__(list(range(16)))
    assert torch.equal(dm.on_after_batch_transfer(batch, 0)[0], dm.to_model_range(batch[0]))  # no trainer
    dm.trainer = _Trainer(training=True)
    torch.manual_seed(0)
    flipped = dm.on_after_batch_transfer(batch, 0)[0]
    torch.manual_seed(0)
    assert torch.equal(flipped, dm.to_model_range(random_hflip(batch[0])))
    assert not torch.equal(flipped, dm.to_model_range(batch[0]))
    dm.trainer = _Trainer(training=False)  # validation and test batches
    assert torch.equal(dm.on_after_batch_transfer(batch, 0)[0], dm.to_model_range(batch[0]))


def test_imagenette_cache_built_once_reused_and_rebuilt_on_change(tmp_path, monkeypatch):
    root = write_fake_imagenette(tmp_path / "data", n_train=2, n_val=1)
    cache = tmp_path / "cache"
    decoded = []
    original = ImagenetteDataModule._decode

    def counting(self, split):
        decoded.append(split)
        return original(self, split)

    monkeypatch.setattr(ImagenetteDataModule, "_decode", counting)
    first = make_datamodule("imagenette", data_dir=root, image_size=16, cache_dir=str(cache))
    first.setup("fit")
    assert decoded == ["train"] and len(list(cache.glob("*.pt"))) == 1
    second = make_datamodule("imagenette", data_dir=root, image_size=16, cache_dir=str(cache))
    second.setup("fit")
    assert decoded == ["train"]  # reused
    assert torch.equal(first.split_images("train"), second.split_images("train"))
    make_datamodule("imagenette", data_dir=root, image_size=24, cache_dir=str(cache)).setup("fit")
    assert decoded == ["train", "train"]  # another image size is another cache file
    image = next((root / "imagenette2-160" / "train").rglob("*.JPEG"))
    os.utime(image, ns=(1, 1))  # touched, the same bytes: still the same data
    make_datamodule("imagenette", data_dir=root, image_size=16, cache_dir=str(cache)).setup("fit")
    assert decoded == ["train", "train"]
    copy = shutil.copytree(root, tmp_path / "copy")  # the same files elsewhere, with new mtimes
    make_datamodule("imagenette", data_dir=copy, image_size=16, cache_dir=str(cache)).setup("fit")
    assert decoded == ["train", "train"]
    Image.new("RGB", (64, 48), (10, 20, 30)).save(image, format="JPEG")  # the source's bytes changed
    make_datamodule("imagenette", data_dir=root, image_size=16, cache_dir=str(cache)).setup("fit")
    assert decoded == ["train", "train", "train"]


def test_imagenette_default_cache_is_the_user_cache_and_a_read_only_data_dir_stays_unwritten(
    tmp_path, monkeypatch
):
    root = write_fake_imagenette(tmp_path / "data", n_train=1, n_val=1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = sorted(root.rglob("*"))
    folders = [root, *(path for path in before if path.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        dm = make_datamodule("imagenette", data_dir=root, image_size=16)
        dm.setup("fit")
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert sorted(root.rglob("*")) == before
    assert len(list((tmp_path / "xdg" / "genlab").glob("imagenette2-160_train_16px_*.pt"))) == 1


def test_imagenette_missing_offline_names_path_and_fix(tmp_path):
    dm = make_datamodule("imagenette", data_dir=tmp_path / "nonexistent", download=False)
    with pytest.raises(DataError, match=r"imagenette2-160/train/<wnid>/\*\.JPEG.*data\.download=true"):
        dm.check_available()


def test_imagenette_download_failure_offline_is_explained(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", offline)
    with pytest.raises(DataError, match="(?s)download .*failed.*Offline"):
        make_datamodule("imagenette", data_dir=tmp_path, download=True).prepare_data()
    with pytest.raises(DataError, match="(?s)Imagenette .160px. not found.*download .*failed.*data.data_dir"):
        make_datamodule("imagenette", data_dir=tmp_path, download=True).check_available()


def test_imagenette_corrupt_jpeg_is_named(tmp_path):
    root = write_fake_imagenette(tmp_path / "data", n_train=1, n_val=1)
    bad = next((root / "imagenette2-160" / "train").rglob("*.JPEG"))
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(DataError, match=bad.name):
        make_datamodule("imagenette", data_dir=root, image_size=16, cache_dir=str(tmp_path / "c")).setup(
            "fit"
        )


def test_load_or_build_rebuilds_stale_foreign_and_old_format_caches(tmp_path):
    path, built = tmp_path / "c" / "thing.pt", []

    def build():
        built.append(1)
        return {"x": torch.arange(3)}

    assert torch.equal(load_or_build(path, {"v": 1}, build)["x"], torch.arange(3)) and len(built) == 1
    load_or_build(path, {"v": 1}, build)
    assert len(built) == 1  # reused
    load_or_build(path, {"v": 2}, build)
    assert len(built) == 2  # another key: rebuilt
    torch.save({"key": {"v": 2}, "features": torch.zeros(1)}, path)  # an older genlab's layout
    load_or_build(path, {"v": 2}, build)
    path.write_bytes(b"truncated")  # a half-written file
    load_or_build(path, {"v": 2}, build)
    assert len(built) == 4 and not list(path.parent.glob("*.tmp"))  # saves are atomic


@pytest.mark.parametrize("path", sorted((CONF_DIR / "data").glob("*.yaml")), ids=lambda path: path.stem)
def test_each_data_file_sets_every_argument_and_the_classes_have_no_defaults(path):
    config = conf_file(path)
    parameters = inspect.signature(get_class(config._target_)).parameters
    assert set(config) - {"_target_"} == set(parameters)
    assert all(parameter.default is inspect.Parameter.empty for parameter in parameters.values())
    # what a caller outside a run starts from: every literal value, none of the run's interpolations
    assert set(data_settings(path.stem)) == set(config) - {"data_dir", "pixel_range"}
    # a class's settings are those of its own file, not of a preset that derives from it (imagenette_64)
    own_file = OmegaConf.load(path).get("defaults", [path.stem])[0]
    assert data_settings(config._target_) == data_settings(own_file)


def test_only_mnist_has_the_digit_classifier(mnist_dir, imagenette_dir):
    assert make_datamodule("mnist", data_dir=mnist_dir).has_digit_classifier
    assert not make_datamodule("imagenette", data_dir=imagenette_dir).has_digit_classifier
    with pytest.raises(
        ConfigError, match=r"data='cifar'.*choose one of \['imagenette', 'imagenette_64', 'mnist'\]"
    ):
        data_settings("cifar")


def test_fingerprint_is_the_content_and_remembers_hashes_by_path_size_and_mtime(
    tmp_path, monkeypatch, caplog
):
    data = write_fake_mnist(tmp_path / "data", n_train=10, n_test=5)
    files = sorted((data / "MNIST" / "raw").iterdir())
    cache, hashed = tmp_path / "cache", []
    original = genlab_cache._sha256

    def counting(path):
        hashed.append(path)
        return original(path)

    monkeypatch.setattr(genlab_cache, "_sha256", counting)
    first = fingerprint(data, files, cache)
    assert len(hashed) == 4 and fingerprint(data, files, cache) == first and len(hashed) == 4  # remembered
    copy = shutil.copytree(data, tmp_path / "copy")
    assert fingerprint(copy, sorted((copy / "MNIST" / "raw").iterdir()), cache) == first and len(hashed) == 8
    (cache / genlab_cache.FILE_HASHES).write_text("{half")  # a corrupt index: hashed again, then rewritten
    assert fingerprint(data, files, cache) == first and "unreadable" in caplog.text and len(hashed) == 12
    content = files[0].read_bytes()
    files[0].write_bytes(content[:-1] + bytes([content[-1] ^ 1]))  # one byte changed, same size
    os.utime(files[0], ns=(1, 1))
    assert fingerprint(data, files, cache) != first
