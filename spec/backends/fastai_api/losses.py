"""Losses on fastai: its flattened losses; the lesson's BCE is fastai's BCEWithLogitsLossFlat.

fastai has no MNIST loss: `mnist_loss` is the book's code (fastbook chapter 4), the loss the lesson builds BCE from.
"""

import torch
from fastai.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat  # noqa: F401


def mnist_loss(preds, targets):
    "fastbook 04_mnist_basics: sigmoid, torch.where, mean."
    preds = preds.sigmoid()
    return torch.where(targets == 1, 1 - preds, preds).mean()


def binary_cross_entropy(preds, targets):
    "The loss fastai picks for multi-label data (T:L1245), on logits and 0/1 targets."
    return BCEWithLogitsLossFlat()(preds, targets)
