"""genlab: train, sweep and compare VAEs and GANs with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
