"""Layers on impl: sigmoid_range, SigmoidRange, one_hot, Embedding."""

from impl.layers import Embedding, SigmoidRange, one_hot, sigmoid_range  # noqa: F401
