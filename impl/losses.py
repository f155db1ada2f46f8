"""Losses of Lesson 6: the MNIST loss, binary cross entropy on logits, and fastai-style "flat" losses."""

import torch
import torch.nn.functional as F
from torch import nn


def _shapes(a, b):
    return f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"


def _zero_one(targ, what):
    "Targets of a binary metric must be 0 or 1."
    bad = targ[(targ != 0) & (targ != 1)]
    if bad.numel():
        raise ValueError(f"{what}: targets must be 0 or 1, got {bad.flatten()[0].item()!r}")


def _in_0_1(targ, what):
    "Targets of a binary cross entropy are probabilities: 0 or 1, or soft (e.g. 0.9); anything outside [0, 1] is a bug."
    bad = targ[~((targ >= 0) & (targ <= 1))]
    if bad.numel():
        raise ValueError(f"{what}: targets must lie in [0, 1], got {bad.flatten()[0].item()!r}")


def mnist_loss(preds, targets):
    "Lesson 4's loss: sigmoid, then torch.where, then mean (T:L1123): how far each prediction is from its 0/1 target."
    p = preds.sigmoid()
    return torch.where(targets == 1, 1 - p, p).mean()


def binary_cross_entropy(preds, targets):
    """MNIST loss plus a log (T:L1128): -where(t==1, logσ(x), logσ(-x)).mean() for 0/1 targets; soft targets t in
    [0, 1] weigh the two terms, -(t logσ(x) + (1-t) logσ(-x)).mean(), as torch does. logσ never overflows."""
    _in_0_1(targets, "binary_cross_entropy")
    t = targets.to(preds.dtype)
    return -(t * F.logsigmoid(preds) + (1 - t) * F.logsigmoid(-preds)).mean()  # log(1-σ(x)) = logσ(-x)


class FlatLoss:
    """A PyTorch loss on inputs and targets with the class axis `axis` moved last and, if `flatten`, flattened (fastai's
    `BaseLoss`). Targets become floating point (`floatify`): the loss is computed in the promoted dtype of input and
    target, integer targets counting as float32."""

    is_2d, floatify = False, True

    def __init__(self, func, axis=-1, flatten=True):
        self.func, self.axis, self.flatten = func, axis, flatten

    def __repr__(self):
        return f"FlattenedLoss of {self.func}"

    @property
    def reduction(self):
        return self.func.reduction

    @reduction.setter
    def reduction(self, v):
        self.func.reduction = v

    def check(self, inp, targ):
        if inp.numel() != targ.numel() or (not self.flatten and inp.shape != targ.shape):
            raise ValueError(f"{type(self).__name__}: input and target need as many elements, {_shapes(inp, targ)}")

    def __call__(self, inp, targ):
        if not isinstance(inp, torch.Tensor) or not isinstance(targ, torch.Tensor):
            raise TypeError(f"{type(self).__name__} needs tensors, got {type(inp).__name__} and {type(targ).__name__}")
        inp = inp.transpose(self.axis, -1).contiguous() if inp.ndim else inp
        targ = targ.transpose(self.axis, -1).contiguous() if targ.ndim else targ
        self.check(inp, targ)
        if self.floatify:
            dt = torch.promote_types(inp.dtype, targ.dtype if targ.is_floating_point() else torch.float32)
            inp, targ = inp.to(dt), targ.to(dt)
        else:
            targ = targ.long()
        if not self.flatten:  # class axis last, except for cross entropy, which wants it at dim 1
            return self.func(inp.movedim(-1, 1) if self.is_2d and inp.ndim > 2 else inp, targ)
        return self.func(inp.view(-1, inp.shape[-1]) if self.is_2d else inp.view(-1), targ.view(-1))

    def activation(self, x):
        return x

    def decodes(self, x):
        return x


class BCEWithLogitsLossFlat(FlatLoss):
    "Multi-label: `nn.BCEWithLogitsLoss` on flattened logits, targets in [0, 1]; activation sigmoid, decodes > thresh."

    def __init__(self, *, axis=-1, thresh=0.5, reduction="mean", flatten=True):
        super().__init__(nn.BCEWithLogitsLoss(reduction=reduction), axis, flatten)
        self.thresh = thresh

    def check(self, inp, targ):
        super().check(inp, targ)
        _in_0_1(targ, "BCEWithLogitsLossFlat")

    def activation(self, x):
        return torch.sigmoid(x)

    def decodes(self, x):
        return x > self.thresh


class MSELossFlat(FlatLoss):
    "Regression: `nn.MSELoss` on flattened predictions and targets (e.g. (bs,2) points vs (bs,1,2) targets)."

    def __init__(self, *, axis=-1, reduction="mean", flatten=True):
        super().__init__(nn.MSELoss(reduction=reduction), axis, flatten)


class CrossEntropyLossFlat(FlatLoss):
    "Single label: `nn.CrossEntropyLoss` on (N, C) logits and N class indices; activation softmax, decodes argmax."

    is_2d, floatify = True, False

    def __init__(self, *, axis=-1, reduction="mean", flatten=True):
        super().__init__(nn.CrossEntropyLoss(reduction=reduction), axis, flatten)

    def check(self, inp, targ):
        c = inp.shape[-1] if inp.ndim else 0
        if c == 0 or inp.numel() != targ.numel() * c or (not self.flatten and inp.shape[:-1] != targ.shape):
            raise ValueError(f"CrossEntropyLossFlat: input (..., C) needs one target per row, {_shapes(inp, targ)}")
        if targ.is_floating_point() or targ.dtype == torch.bool:
            raise TypeError(f"CrossEntropyLossFlat: targets must be class indices, got dtype {targ.dtype}")
        bad = targ[(targ < 0) | (targ >= c)]
        if bad.numel():
            raise ValueError(f"CrossEntropyLossFlat: targets must lie in [0, {c}), got {bad[0].item()}")

    def activation(self, x):
        return F.softmax(x, dim=self.axis)

    def decodes(self, x):
        return x.argmax(dim=self.axis)


BCEWithLogitsFlat, MSEFlat, CrossEntropyFlat = BCEWithLogitsLossFlat, MSELossFlat, CrossEntropyLossFlat
