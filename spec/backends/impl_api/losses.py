"""Losses on impl: the MNIST loss, BCE on logits, the flattened losses."""

from impl.losses import (  # noqa: F401
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    MSELossFlat,
    binary_cross_entropy,
    mnist_loss,
)
