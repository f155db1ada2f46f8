"""Metrics of Lesson 6: accuracy and error rate (single label), accuracy_multi (multi-label, thresholded), and the
regression metrics mse, rmse, mae."""

import numbers

from impl.losses import _shapes, _zero_one


def accuracy(inp, targ, axis=-1):
    "argmax of the activations, compared with the target, then the floating-point mean (T:L1190)."
    pred = inp.argmax(dim=axis)
    if pred.numel() != targ.numel():
        raise ValueError(f"accuracy: one target per prediction (argmax over axis {axis}), {_shapes(inp, targ)}")
    return (pred.reshape(-1) == targ.reshape(-1)).float().mean()


def error_rate(inp, targ, axis=-1):
    "Error rate is 1 - accuracy (T:L1186)."
    return 1 - accuracy(inp, targ, axis=axis)


def accuracy_multi(inp, targ, thresh=0.5, sigmoid=True):
    "(sigmoid of) each activation > thresh means the label is there; compare with the 0/1 targets, mean (T:L1205)."
    if inp.numel() != targ.numel():
        raise ValueError(f"accuracy_multi: input and target need as many elements, {_shapes(inp, targ)}")
    _zero_one(targ, "accuracy_multi")
    if isinstance(thresh, bool) or not isinstance(thresh, numbers.Real):
        raise TypeError(f"accuracy_multi: thresh must be a real number, got {thresh!r}")
    p = inp.reshape(-1).sigmoid() if sigmoid else inp.reshape(-1)
    return ((p > thresh) == targ.reshape(-1).bool()).float().mean()


def _diff(inp, targ, what):
    "inp - targ, both flattened, in floating point (integer inputs count as float32)."
    if inp.numel() != targ.numel():
        raise ValueError(f"{what}: input and target need as many elements, {_shapes(inp, targ)}")
    d = inp.reshape(-1) - targ.reshape(-1)
    return d if d.is_floating_point() else d.float()


def mse(inp, targ):
    "Mean squared error of the flattened tensors (the regression loss as a metric)."
    return (_diff(inp, targ, "mse") ** 2).mean()


def rmse(inp, targ):
    "Root mean squared error: sqrt(mse), in the target's units (on the whole validation set, not per batch)."
    return (_diff(inp, targ, "rmse") ** 2).mean().sqrt()


def mae(inp, targ):
    "Mean absolute error of the flattened tensors."
    return _diff(inp, targ, "mae").abs().mean()
