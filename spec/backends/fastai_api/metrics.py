"""Metrics on fastai: fastai.metrics.accuracy, error_rate, accuracy_multi."""

from fastai.metrics import accuracy, accuracy_multi, error_rate  # noqa: F401
