"""LightningDataModules that hold each split as one uint8 tensor and batch by index."""

from genlab.data.imagenette import ImagenetteDataModule
from genlab.data.mnist import MNISTDataModule

__all__ = ["ImagenetteDataModule", "MNISTDataModule"]
