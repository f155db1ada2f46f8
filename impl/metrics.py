"""Metrics of Lesson 6: accuracy and error rate (single label), accuracy_multi (multi-label, thresholded)."""
import numbers

import torch


def accuracy(inp, targ, axis=-1):
    "argmax of the activations, compared with the target, then the floating-point mean (T:L1190)."
    pred = inp.argmax(dim=axis)
    if pred.numel() != targ.numel():
        raise ValueError(f"accuracy: one target per prediction needed, got {pred.numel()} predictions (input shape {tuple(inp.shape)}, axis {axis}) and target shape {tuple(targ.shape)}")
    return (pred.reshape(-1) == targ.reshape(-1)).float().mean()


def error_rate(inp, targ, axis=-1):
    "Error rate is 1 - accuracy (T:L1186)."
    return 1 - accuracy(inp, targ, axis=axis)


def accuracy_multi(inp, targ, thresh=0.5, sigmoid=True):
    "Each (sigmoid of the) activation > thresh is a predicted label; compare with the 0/1 targets, floating-point mean (T:L1205)."
    if inp.numel() != targ.numel():
        raise ValueError(f"accuracy_multi: input and target need the same number of elements, got shapes {tuple(inp.shape)} and {tuple(targ.shape)}")
    if not ((targ == 0) | (targ == 1)).all():
        raise ValueError(f"accuracy_multi: targets must be 0 or 1, got {targ[(targ != 0) & (targ != 1)].flatten()[0].item()!r}")
    if isinstance(thresh, bool) or not isinstance(thresh, numbers.Real): raise TypeError(f"thresh must be a real number, got {thresh!r}")
    p = inp.reshape(-1).sigmoid() if sigmoid else inp.reshape(-1)
    return ((p > thresh) == targ.reshape(-1).bool()).float().mean()
