"""Layers on fastai: fastai.layers.sigmoid_range / SigmoidRange / Embedding, fastai.torch_core.one_hot."""

from fastai.layers import Embedding, SigmoidRange, sigmoid_range  # noqa: F401  (fastai names the bounds low, high)
from fastai.torch_core import one_hot  # noqa: F401
