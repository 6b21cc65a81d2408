"""Callbacks that show what a model learned: samples, interpolations, reconstructions, metrics."""
