"""Metrics on impl: accuracy, error_rate, accuracy_multi; mse, rmse, mae."""

from impl.metrics import accuracy, accuracy_multi, error_rate, mae, mse, rmse  # noqa: F401
