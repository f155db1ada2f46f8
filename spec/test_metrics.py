"""Metrics: accuracy (argmax), error_rate = 1 - accuracy, accuracy_multi (threshold, sigmoid flag), partial."""

from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import impl.metrics as M
from spec.tiny import points

logit = st.floats(-20, 20, width=32)


def single_label(data):
    "(bs, C) float32 activations and bs integer targets."
    bs = data.draw(st.integers(1, 12), label="bs")
    c = data.draw(st.integers(1, 6), label="C")
    x = torch.tensor(data.draw(st.lists(logit, min_size=bs * c, max_size=bs * c), label="activations")).view(bs, c)
    t = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=bs, max_size=bs), label="targets"))
    return x, t


def multi_label(data):
    "(bs, C) float32 logits and 0/1 float targets."
    bs = data.draw(st.integers(1, 8), label="bs")
    c = data.draw(st.integers(1, 6), label="C")
    x = torch.tensor(data.draw(st.lists(logit, min_size=bs * c, max_size=bs * c), label="logits")).view(bs, c)
    t = torch.tensor(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=bs * c, max_size=bs * c), label="t"))
    return x, t.view(bs, c)


# ---------------------------------------------------------------- single label
@pytest.mark.claim("ML-10")
@given(data=st.data())
def test_accuracy_is_mean_of_argmax_equals_target(backend, data):
    "accuracy = mean(argmax(activations) == target); error_rate = 1 - accuracy."
    x, t = single_label(data)
    ref = np.mean(np.argmax(x.numpy(), axis=-1) == t.numpy())
    acc, err = backend.accuracy(x, t), backend.error_rate(x, t)
    assert float(acc) == pytest.approx(ref, abs=1e-6), f"accuracy={float(acc)}, expected {ref}, x={x}, t={t}"
    assert float(err) == pytest.approx(1 - ref, abs=1e-6), f"error_rate={float(err)}, 1-accuracy={1 - ref}"
    assert float(acc) * len(t) == pytest.approx(round(ref * len(t)), abs=1e-4), "not a multiple of 1/bs"


@pytest.mark.claim("ML-10")
@given(data=st.data())
def test_accuracy_axis(backend, data):
    "`axis` names the class axis: accuracy(x.T, t, axis=0) == accuracy(x, t)."
    x, t = single_label(data)
    a, b = backend.accuracy(x.t().contiguous(), t, axis=0), backend.accuracy(x, t)
    assert float(a) == float(b), f"axis=0 on the transpose gives {float(a)}, axis=-1 gives {float(b)}"


@pytest.mark.claim("ML-10")
@given(data=st.data())
def test_error_rate_axis(backend, data):
    "error_rate passes `axis` on: error_rate(x.T, t, axis=0) == 1 - accuracy(x, t)."
    x, t = single_label(data)
    a, b = backend.error_rate(x.t().contiguous(), t, axis=0), 1 - backend.accuracy(x, t)
    assert float(a) == pytest.approx(float(b), abs=1e-7), f"error_rate axis=0 {float(a)}, 1-accuracy {float(b)}"


# ---------------------------------------------------------------- multi-label
@pytest.mark.claim("ML-11")
@given(data=st.data())
def test_accuracy_multi_is_thresholded_sigmoid_vs_target(backend, data):
    "accuracy_multi = mean over all bs*C items of ((σ(x) > thresh) == target), or (x > thresh) with sigmoid=False."
    x, t = multi_label(data)
    thresh = data.draw(st.floats(0.01, 0.99), label="thresh")
    sig = data.draw(st.booleans(), label="sigmoid")
    xd = x.double().numpy()
    p = 1 / (1 + np.exp(-xd)) if sig else xd
    assume(np.abs(p - thresh).min() > 1e-6)  # float32 vs float64 may disagree right at the threshold
    ref = np.mean((p > thresh) == (t.numpy() == 1))
    acc = backend.accuracy_multi(x, t, thresh=thresh, sigmoid=sig)
    assert float(acc) == pytest.approx(ref, abs=1e-6), f"got {float(acc)}, expected {ref}: x={x}, t={t}"


@pytest.mark.claim("ML-11")
@given(data=st.data())
def test_accuracy_multi_defaults_threshold_half_with_sigmoid(backend, data):
    "Defaults thresh=0.5, sigmoid=True: σ(x) > 0.5 means x > 0, so the metric is mean((x > 0) == target)."
    x, t = multi_label(data)
    assume(((x == 0) | (x.abs() > 1e-6)).all())  # float32 σ(x) rounds to exactly 0.5 for 0 < x < ~6e-8
    ref = np.mean((x.numpy() > 0) == (t.numpy() == 1))
    acc = backend.accuracy_multi(x, t)
    assert float(acc) == pytest.approx(ref, abs=1e-6), f"got {float(acc)}, expected {ref}: x={x}, t={t}"


@pytest.mark.claim("ML-11")
@given(data=st.data())
def test_accuracy_multi_on_probabilities(backend, data):
    "Predictions that already went through the sigmoid (get_preds) are scored with sigmoid=False: same result."
    x, t = multi_label(data)
    thresh = data.draw(st.floats(0.01, 0.99), label="thresh")
    a = backend.accuracy_multi(torch.sigmoid(x), t, thresh=thresh, sigmoid=False)
    b = backend.accuracy_multi(x, t, thresh)
    assert float(a) == float(b), f"on probabilities {float(a)}, on logits {float(b)}"


@pytest.mark.claim("ML-11")
def test_accuracy_multi_averages_every_item(backend):
    "The mean is over all bs*C items, not rows: 4 of 6 labels right gives 4/6 (no row is entirely right here)."
    x = torch.tensor([[5.0, -5.0, 5.0], [-5.0, -5.0, 5.0]])
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    assert float(backend.accuracy_multi(x, t)) == pytest.approx(4 / 6), "expected 4/6"
    assert float(backend.accuracy_multi(x, t, thresh=0.999)) == pytest.approx(3 / 6), "thresh .999: 3/6"


# ---------------------------------------------------------------- regression metrics


@pytest.mark.claim("REG-18")
@given(data=st.data())
def test_regression_metrics_formulas(backend, data):
    "(bs, 2) predictions against (bs, 1, 2) point targets: mean squared error, its root, mean absolute error."
    p, y = points(data)
    d = p.double().numpy().ravel() - y.double().numpy().ravel()
    for name, ref in (("mse", np.mean(d**2)), ("rmse", np.sqrt(np.mean(d**2))), ("mae", np.mean(np.abs(d)))):
        got = float(getattr(backend, name)(p, y))
        assert got == pytest.approx(ref, rel=1e-5, abs=1e-6), f"{name} = {got}, expected {ref}: p={p}, y={y}"


@pytest.mark.claim("REG-18")
def test_rmse_is_in_the_targets_units(backend):
    "Every point off by 0.01 in [-1, 1] coordinates: MSE 1e-4 (the order REG-14 reports), RMSE and MAE 0.01."
    y = torch.rand(64, 1, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.8 - 0.9
    p = (y + 0.01 * torch.tensor([1.0, -1.0], dtype=torch.float64)).view(64, 2)
    got = [float(backend.mse(p, y)), float(backend.rmse(p, y)), float(backend.mae(p, y))]
    assert got == pytest.approx([1e-4, 0.01, 0.01], rel=1e-6), f"mse, rmse, mae = {got}"  # fastai: float32


@pytest.mark.claim("REG-18")
def test_regression_metrics_need_as_many_elements(backend):
    "Predictions and targets with different element counts are an error, not a broadcast."
    for name in ("mse", "rmse", "mae"):
        with pytest.raises((ValueError, AssertionError)):
            getattr(backend, name)(torch.zeros(4, 2), torch.zeros(4, 1, 3))


# ---------------------------------------------------------------- partial
def say_hello(name, say_what="Hello"):
    return f"{say_what} {name}."


@pytest.mark.claim("ML-12")
def test_say_hello_partial():
    "The lesson's example: partial fixes say_what='Bonjour' and makes a new function."
    assert say_hello("Jeremy") == "Hello Jeremy.", f"{say_hello('Jeremy')!r}"
    assert say_hello("Jeremy", "Ahoy!") == "Ahoy! Jeremy.", f"{say_hello('Jeremy', 'Ahoy!')!r}"
    f = partial(say_hello, say_what="Bonjour")
    assert (f("Jeremy"), f("Sylvain")) == ("Bonjour Jeremy.", "Bonjour Sylvain."), f"{f('Jeremy')!r}"


@pytest.mark.claim("ML-12")
@given(data=st.data())
def test_partial_accuracy_multi_fixes_the_threshold(backend, data):
    "partial(accuracy_multi, thresh=0.2) is accuracy_multi with thresh 0.2, still named accuracy_multi underneath."
    x, t = multi_label(data)
    f = partial(backend.accuracy_multi, thresh=0.2)
    assert float(f(x, t)) == float(backend.accuracy_multi(x, t, thresh=0.2)), f"x={x}, t={t}"
    assert f.func.__name__ == "accuracy_multi" and f.keywords == {"thresh": 0.2}, f"{f!r}"


# ---------------------------------------------------------------- impl's errors
@pytest.mark.claim("IMPL-5")
def test_impl_metric_errors():
    with pytest.raises(ValueError, match=r"accuracy: one target per prediction.*\(4, 3\) and \(3,\)"):
        M.accuracy(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"accuracy_multi: .*shapes \(4, 3\) and \(4, 2\)"):
        M.accuracy_multi(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(TypeError, match=r"thresh must be a real number, got '0.5'"):
        M.accuracy_multi(torch.zeros(2), torch.zeros(2), thresh="0.5")


@pytest.mark.claim("IMPL-5")
def test_impl_regression_metric_errors_name_the_metric():
    "mse, rmse, mae on element counts that differ: a ValueError naming the metric and both shapes."
    for name in ("mse", "rmse", "mae"):
        msg = rf"^{name}: input and target need as many elements, got shapes \(4, 2\) and \(4, 1, 3\)"
        with pytest.raises(ValueError, match=msg):
            getattr(M, name)(torch.zeros(4, 2), torch.zeros(4, 1, 3))


@pytest.mark.claim("IMPL-19")
def test_impl_regression_metrics_on_integer_tensors():
    """Integer predictions and targets count as float32 (fastai: an error): differences 3, -1, 0, 2 give mse 3.5,
    rmse sqrt(3.5), mae 1.5."""
    p, y = torch.tensor([[4, 0], [1, 3]]), torch.tensor([1, 1, 1, 1])
    for name, want in (("mse", 3.5), ("rmse", 3.5**0.5), ("mae", 1.5)):
        got = getattr(M, name)(p, y)
        assert got.dtype == torch.float32, f"{name} of int64 tensors has dtype {got.dtype}, want float32"
        assert float(got) == pytest.approx(want, rel=1e-6), f"{name} = {float(got)}, want {want}"


@pytest.mark.claim("ML-10")
def test_error_rate_axis_example(backend):
    "Classes along axis 0 (3 classes x 2 items): argmax over axis 0 is [2, 0]; targets [2, 1] give error rate 1/2."
    x = torch.tensor([[0.0, 5.0], [1.0, 0.0], [3.0, 2.0]])
    t = torch.tensor([2, 1])
    assert float(backend.error_rate(x, t, axis=0)) == pytest.approx(0.5), "error_rate(axis=0)"
    assert float(backend.accuracy(x, t, axis=0)) == pytest.approx(0.5), "accuracy(axis=0)"


@pytest.mark.claim("IMPL-5")
@given(bad=st.floats(-5, 5, width=32).filter(lambda v: v not in (0.0, 1.0)))
def test_impl_accuracy_multi_rejects_targets_not_0_1(bad):
    with pytest.raises(ValueError, match=r"accuracy_multi: targets must be 0 or 1, got"):
        M.accuracy_multi(torch.zeros(3), torch.tensor([0.0, bad, 1.0]))
