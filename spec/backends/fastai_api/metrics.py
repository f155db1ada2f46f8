"""Metrics on fastai: fastai.metrics.accuracy, error_rate, accuracy_multi; mse, rmse (an AccumMetric: called on
(preds, targs) it computes the metric of that one set), mae."""

from fastai.metrics import accuracy, accuracy_multi, error_rate, mae, mse, rmse  # noqa: F401
