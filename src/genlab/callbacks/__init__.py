"""Callbacks: what a model learned (samples, interpolations, reconstructions, curves, metrics), and a stop
on a NaN loss."""

from genlab.callbacks.interpolation import Interpolation
from genlab.callbacks.loss_curves import LossCurves
from genlab.callbacks.reconstructions import Reconstructions
from genlab.callbacks.samples import SampleGrid
from genlab.callbacks.stop_on_non_finite_loss import StopOnNonFiniteLoss

__all__ = ["Interpolation", "LossCurves", "Reconstructions", "SampleGrid", "StopOnNonFiniteLoss"]
