"""Callbacks that show what a model learned: samples, interpolations, reconstructions, curves, metrics."""

from genlab.callbacks.interpolation import Interpolation
from genlab.callbacks.loss_curves import LossCurves
from genlab.callbacks.reconstructions import Reconstructions
from genlab.callbacks.samples import SampleGrid

__all__ = ["Interpolation", "LossCurves", "Reconstructions", "SampleGrid"]
