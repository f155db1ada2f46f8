"""Metrics on impl: accuracy, error_rate, accuracy_multi."""

from impl.metrics import accuracy, accuracy_multi, error_rate  # noqa: F401
