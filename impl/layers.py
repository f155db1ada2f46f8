"""Layers of Lesson 6: sigmoid_range / SigmoidRange (y_range), one-hot encoding, embeddings, dot products."""

import math
import numbers

import torch
from torch import nn


def _bounds(lo, hi):
    "Check `lo < hi` (finite numbers, or one-element tensors) and return them as numbers."
    lo, hi = (v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v for v in (lo, hi))
    for name, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if lo >= hi:
        raise ValueError(f"sigmoid_range needs lo < hi, got lo={lo!r}, hi={hi!r}")
    return lo, hi


def sigmoid_range(x, lo, hi):
    "sigmoid of x, times hi minus lo, plus lo (T:L1452): a sigmoid whose bottom is lo and top is hi."
    lo, hi = _bounds(lo, hi)
    return torch.sigmoid(x) * (hi - lo) + lo


class SigmoidRange(nn.Module):
    "`sigmoid_range` as a layer: the last layer of a model with `y_range=(lo, hi)`."

    def __init__(self, lo, hi):
        super().__init__()
        self.lo, self.hi = _bounds(lo, hi)

    def forward(self, x):
        return sigmoid_range(x, self.lo, self.hi)

    def extra_repr(self):
        return f"lo={self.lo}, hi={self.hi}"


def one_hot(i, n):
    "Length-`n` uint8 vector with a 1 at index `i`, or at every index of a list/tensor `i` ([] -> all zeros) (T:L1898)."
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"n (the number of classes) must be >= 1, got {n!r}")
    res = torch.zeros(n, dtype=torch.uint8)
    idx = torch.as_tensor(i).reshape(-1)
    if idx.numel() == 0:  # a multi-label item with no label
        return res
    if idx.is_floating_point() or idx.dtype == torch.bool:
        raise TypeError(f"i must hold integers, got {i!r}")
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        raise ValueError(f"i must lie in [0, {n}), got {idx[bad][0].item()}")
    res[idx] = 1
    return res


def trunc_normal_(x, mean=0.0, std=1.0):
    "In place: normal(0, 1) folded into (-2, 2) by fmod, times `std`, plus `mean` (fastai's approximation)."
    with torch.no_grad():
        return x.normal_().fmod_(2).mul_(std).add_(mean)


class Embedding(nn.Embedding):
    "An `nn.Embedding` of `ni` rows of `nf`, initialised with a truncated normal of std 0.01 (T:L1944)."

    def __init__(self, ni, nf, std=0.01):
        super().__init__(ni, nf)
        trunc_normal_(self.weight, std=std)


def one_hot_matmul(idx, w):
    "The slow equivalent of `w[idx]`: one-hot rows times the matrix (T:L1905)."
    return nn.functional.one_hot(idx, w.shape[0]).to(w.dtype) @ w


def dot(a, b):
    "Element-wise product summed over the last axis (T:L1765): the dot product of each pair of rows."
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"dot needs equal last dimensions, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return (a * b).sum(-1)
