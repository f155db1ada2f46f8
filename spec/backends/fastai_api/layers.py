"""Layers on fastai: fastai.layers.sigmoid_range, SigmoidRange, Embedding, trunc_normal_; torch_core.one_hot."""

from fastai.layers import Embedding, SigmoidRange, sigmoid_range, trunc_normal_  # noqa: F401  (bounds: low, high)
from fastai.torch_core import one_hot  # noqa: F401
