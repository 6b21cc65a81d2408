"""Callbacks: what a model learned (samples, interpolations, reconstructions, trajectories, curves,
metrics), and the per-batch training scalars (logged, checked for NaN, kept for the curves)."""

from genlab.callbacks.interpolation import Interpolation
from genlab.callbacks.loss_curves import LossCurves
from genlab.callbacks.reconstructions import Reconstructions
from genlab.callbacks.samples import SampleGrid
from genlab.callbacks.training_scalars import TrainingScalars
from genlab.callbacks.trajectory import Trajectory

__all__ = ["Interpolation", "LossCurves", "Reconstructions", "SampleGrid", "TrainingScalars", "Trajectory"]
