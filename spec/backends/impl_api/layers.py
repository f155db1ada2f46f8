"""Layers on impl: sigmoid_range, SigmoidRange, one_hot, Embedding, trunc_normal_."""

from impl.layers import Embedding, SigmoidRange, one_hot, sigmoid_range, trunc_normal_  # noqa: F401
