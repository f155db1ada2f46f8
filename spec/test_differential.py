"""impl against fastai as the oracle: differential properties on drawn inputs, edge inputs included (IMPL-18..21,
and IMPL-42: ParamScheduler and LRFinder in a fit of a tiny learner).

Each test calls impl directly and fastai directly on the same drawn inputs (empty, single element, soft and integer
targets, extreme logits, axis != -1, reduction 'sum'/'none', flatten off, thresh/sigmoid, pos 0 and near 1, lists
and tensors) and compares values, shapes and dtypes. Where impl deliberately differs (a clear error where fastai
returns garbage), the IMPL claim says so and the test asserts impl's behaviour. These are our own contract: they
run once, on impl, with fastai as the oracle.
"""

import math
import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

pytest.importorskip("fastai", reason="the oracle, fastai, is not installed")

from fastai import collab as fc  # noqa: E402
from fastai import interpret as fi  # noqa: E402
from fastai import layers as fl  # noqa: E402
from fastai import losses as fls  # noqa: E402
from fastai import metrics as fm  # noqa: E402
from fastai.callback import schedule as fs  # noqa: E402
from fastai.data.transforms import CategoryMap  # noqa: E402
from fastai.optimizer import Optimizer, sgd_step  # noqa: E402
from fastai.torch_core import one_hot as fa_one_hot  # noqa: E402
from fastcore.basics import even_mults as fa_even_mults  # noqa: E402

import impl.callback as CB  # noqa: E402
import impl.collab as C  # noqa: E402
import impl.interpret as I  # noqa: E402
import impl.layers as L  # noqa: E402
import impl.losses as LS  # noqa: E402
import impl.lr_find as LF  # noqa: E402
import impl.metrics as M  # noqa: E402
import impl.schedule as S  # noqa: E402
from spec.backends import get  # noqa: E402
from spec.checks import equal  # noqa: E402
from spec.tiny import make, one_thread, params, plain  # noqa: E402, F401


def same(a, b, what, rtol=1.3e-6, atol=1e-5, dtype=True):
    "assert_close on plain tensors (NaN == NaN), naming the claim and the inputs on failure."
    a, b = plain(a), plain(b)
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True, check_dtype=dtype,
                               msg=lambda m: f"{what}\n{m}\nimpl={a}\nfastai={b}")


def shape(data, max_dims=3, max_side=4, min_side=0, label="shape"):
    return tuple(data.draw(st.lists(st.integers(min_side, max_side), min_size=1, max_size=max_dims), label=label))


def floats(data, shp, lo=-20.0, hi=20.0, dtype=torch.float32, label="x"):
    n = math.prod(shp)
    v = data.draw(st.lists(st.floats(lo, hi, width=32), min_size=n, max_size=n), label=label)
    return torch.tensor(v, dtype=dtype).view(shp)


# ---------------------------------------------------------------- layers (IMPL-18)
@pytest.mark.claim("IMPL-18")
@given(data=st.data())
def test_one_hot_agrees(data):
    "An int, a list/tuple (duplicates, []) or an integer tensor of any shape (empty included): the same uint8 vector."
    n = data.draw(st.integers(1, 40), label="n")
    idx = st.integers(0, n - 1)
    kind = data.draw(st.sampled_from(["int", "list", "tuple", "tensor", "int32", "empty list", "empty float"]), "kind")
    if kind == "int":
        i = data.draw(idx, label="i")
    elif kind in ("list", "tuple"):
        i = data.draw(st.lists(idx, max_size=8), label="i")
        i = tuple(i) if kind == "tuple" else i
    elif kind in ("tensor", "int32"):
        shp = shape(data, max_dims=2, max_side=3, min_side=1)  # fastai fails on an empty (2, 0) tensor; impl: zeros
        v = data.draw(st.lists(idx, min_size=math.prod(shp), max_size=math.prod(shp)), label="i")
        i = torch.tensor(v, dtype=torch.long if kind == "tensor" else torch.int32).view(shp)
    else:
        i = [] if kind == "empty list" else torch.tensor([])  # fastai's own test: one_hot(tensor([]), 5) is all zeros
    a, b = L.one_hot(i, n), fa_one_hot(i, n)
    assert a.dtype == b.dtype == torch.uint8 and a.shape == (n,), f"one_hot({i!r}, {n}): {a.dtype}, {a.shape}"
    assert torch.equal(a, plain(b)), f"one_hot({i!r}, {n}): impl {a.tolist()}, fastai {b.tolist()}"
    ref = torch.zeros(n, dtype=torch.uint8)
    ref[sorted({int(k) for k in torch.as_tensor(i, dtype=torch.long).reshape(-1).tolist()})] = 1
    assert torch.equal(a, ref), f"one_hot({i!r}, {n}) = {a.tolist()}, expected ones at the indices"


@pytest.mark.claim("IMPL-18")
@pytest.mark.parametrize("bad", [-1, 5, [0, -2], torch.tensor([7]), 2.0, [1.0], torch.tensor([True, False, True])])
def test_one_hot_deliberate_errors(bad):
    "Where fastai wraps a negative index, takes a float or reads bools as a mask, impl names the bad index."
    with pytest.raises((ValueError, TypeError), match=r"i must (lie in \[0, 5\)|hold integers)"):
        L.one_hot(bad, 5)


@pytest.mark.claim("IMPL-18")
@given(data=st.data())
def test_sigmoid_range_agrees(data):
    "Any lo < hi, float32 or float64 x of any shape (empty included): the function and the layer, bit-identical."
    lo, hi = sorted(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2, unique=True), label="lo, hi"))
    dt = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    x = floats(data, shape(data), -1e4, 1e4, dt)
    a, b = L.sigmoid_range(x, lo, hi), fl.sigmoid_range(x, lo, hi)
    assert a.dtype == b.dtype and torch.equal(a, b), f"sigmoid_range(x, {lo}, {hi}): {a} vs {b}"
    assert torch.equal(L.SigmoidRange(lo, hi)(x), plain(fl.SigmoidRange(lo, hi)(x))), "SigmoidRange differs"


@pytest.mark.claim("IMPL-18")
@given(data=st.data())
def test_trunc_normal_and_embedding_agree(data):
    "The same seed: trunc_normal_(x, mean, std) and Embedding(ni, nf, std) give identical weights, in mean +- 2 std."
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    mean, std = data.draw(st.floats(-5, 5), label="mean"), data.draw(st.floats(1e-4, 3), label="std")
    shp = shape(data, min_side=1)
    torch.manual_seed(seed)
    a = L.trunc_normal_(torch.empty(shp), mean=mean, std=std)
    torch.manual_seed(seed)
    b = fl.trunc_normal_(torch.empty(shp), mean=mean, std=std)
    assert torch.equal(a, b), f"trunc_normal_(mean={mean}, std={std}) differs with seed {seed}"
    assert ((a - mean).abs() <= 2 * std * (1 + 1e-6) + 1e-6).all(), f"values outside mean +- 2 std: {a}"
    ni, nf = data.draw(st.integers(1, 20), label="ni"), data.draw(st.integers(1, 8), label="nf")
    torch.manual_seed(seed)
    ea = L.Embedding(ni, nf, std=std)
    torch.manual_seed(seed)
    eb = fl.Embedding(ni, nf, std=std)
    assert ea.weight.shape == (ni, nf) and torch.equal(ea.weight, eb.weight), f"Embedding({ni}, {nf}, {std})"
    assert (ea.weight.abs() <= 2 * std * (1 + 1e-6)).all(), f"Embedding std={std}: |w| > 2 std"


@pytest.mark.claim("IMPL-18")
@given(data=st.data())
def test_embedding_dot_bias_agrees(data):
    "EmbeddingDotBias(n_factors, n_users, n_items, y_range): same seed -> same parameters and outputs (bs 1 included)."
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    nf, nu, ni = (data.draw(st.integers(1, 12), label=k) for k in ("n_factors", "n_users", "n_items"))
    yr = data.draw(st.one_of(st.none(), st.tuples(st.floats(-5, 0), st.floats(0.5, 6))), label="y_range")
    torch.manual_seed(seed)
    a = C.EmbeddingDotBias(nf, nu, ni, y_range=yr)
    torch.manual_seed(seed)
    b = fc.EmbeddingDotBias(nf, nu, ni, y_range=yr)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb), f"parameter names {list(sa)} vs fastai {list(sb)}"
    assert all(torch.equal(sa[k], sb[k]) for k in sa), f"parameters differ with seed {seed}"
    bs = data.draw(st.integers(1, 10), label="bs")
    u = data.draw(st.lists(st.integers(0, nu - 1), min_size=bs, max_size=bs), label="users")
    i = data.draw(st.lists(st.integers(0, ni - 1), min_size=bs, max_size=bs), label="items")
    x = torch.tensor([u, i]).t()
    oa, ob = a(x), plain(b(x))
    assert oa.shape == ob.shape == (bs,), f"output shapes {oa.shape} vs {ob.shape}"
    same(oa, ob, f"EmbeddingDotBias({nf}, {nu}, {ni}, {yr})({x.tolist()})", rtol=1e-6, atol=1e-7)


@pytest.mark.claim("IMPL-18")
@pytest.mark.parametrize("bad", [(1, 1), (2, 1), (0,), (0, 1, 2), 5.5])
def test_collab_y_range_deliberate_errors(bad):
    "fastai takes any y_range (y_range=(2, 1) flips the output); impl names it when the model is made."
    with pytest.raises((ValueError, TypeError), match=r"y_range must be|lo < hi"):
        C.EmbeddingDotBias(3, 4, 5, y_range=bad)
    with pytest.raises((ValueError, TypeError), match=r"y_range must be|lo < hi"):
        C.DotProduct(4, 5, 3, y_range=bad)


# ---------------------------------------------------------------- losses (IMPL-19)
REDUCTION = st.sampled_from(["mean", "sum", "none"])


def targets01(data, shp, soft=True):
    "Targets in [0, 1]: soft floats, 0/1 floats, 0/1 ints or bools."
    kind = data.draw(st.sampled_from(["soft", "float", "long", "bool"] if soft else ["float", "long", "bool"]), "targ")
    n = math.prod(shp)
    if kind == "soft":
        v = data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]) | st.floats(0, 1, width=32),
                               min_size=n, max_size=n), label="targets")
        return torch.tensor(v, dtype=torch.float32).view(shp)
    v = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n), label="targets")
    return torch.tensor(v, dtype={"float": torch.float32, "long": torch.long, "bool": torch.bool}[kind]).view(shp)


def both_losses(impl_cls, fa_cls, x, t, **kw):
    "The impl loss and the fastai loss, built with the same options, on the same inputs."
    a, b = impl_cls(**kw), fa_cls(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fastai: 'mean of empty tensor' and the like
        return a, b, a(x, t), plain(b(x, t))


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_bce_with_logits_loss_flat_agrees(data):
    "Soft/0-1/int/bool targets, logits up to 1e4, any axis, reduction, flatten and thresh: value, shape, dtype."
    shp = shape(data)
    x = floats(data, shp, -1e4, 1e4) if data.draw(st.booleans(), label="extreme") else floats(data, shp)
    t = targets01(data, shp)
    kw = dict(axis=data.draw(st.integers(-len(shp), len(shp) - 1), label="axis"),
              reduction=data.draw(REDUCTION, label="reduction"), flatten=data.draw(st.booleans(), label="flatten"),
              thresh=data.draw(st.floats(0, 1), label="thresh"))
    a, b, la, lb = both_losses(LS.BCEWithLogitsLossFlat, fls.BCEWithLogitsLossFlat, x, t, **kw)
    assert la.shape == lb.shape, f"BCEWithLogitsLossFlat({kw}) shapes {la.shape} vs {lb.shape}"
    same(la, lb, f"BCEWithLogitsLossFlat({kw})(x{tuple(shp)}, {t.dtype} targets)", rtol=1e-5, atol=1e-4)
    assert torch.equal(a.activation(x), b.activation(x)), "activation differs"
    assert torch.equal(a.decodes(x), b.decodes(x)), f"decodes(x) differs for thresh={kw['thresh']}"
    assert repr(a) == repr(b) and a.reduction == b.reduction == kw["reduction"], f"{a!r} vs {b!r}"


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_mse_loss_flat_agrees(data):
    "(bs, 2) points against (bs, 1, 2) or (bs, 2) targets, float or integer, any reduction; flatten off: equal shapes."
    bs = data.draw(st.integers(0, 6), label="bs")
    x = floats(data, (bs, 2), -1e3, 1e3)
    flatten = data.draw(st.booleans(), label="flatten")
    tshape = (bs, 2) if not flatten or data.draw(st.booleans(), label="same shape") else (bs, 1, 2)
    if data.draw(st.booleans(), label="int targets"):
        t = torch.tensor(data.draw(st.lists(st.integers(-9, 9), min_size=2 * bs, max_size=2 * bs), "t")).view(tshape)
    else:
        t = floats(data, tshape, -1e3, 1e3, label="t")
    kw = dict(reduction=data.draw(REDUCTION, label="reduction"), flatten=flatten,
              axis=data.draw(st.sampled_from([-1, 0]), label="axis") if tshape == (bs, 2) else -1)
    a, b, la, lb = both_losses(LS.MSELossFlat, fls.MSELossFlat, x, t, **kw)
    assert la.shape == lb.shape, f"MSELossFlat({kw}) shapes {la.shape} vs {lb.shape}"
    same(la, lb, f"MSELossFlat({kw})(x{tuple(x.shape)}, t{tuple(t.shape)} {t.dtype})", rtol=1e-5, atol=1e-3)
    assert repr(a) == repr(b) == "FlattenedLoss of MSELoss()", f"{a!r} vs {b!r}"


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_cross_entropy_loss_flat_agrees(data):
    "(bs, C), (bs, seq, C) or (bs, C, L) with axis=1; long or int32 targets; any reduction; flatten off on 2-D."
    bs, c = data.draw(st.integers(0, 5), label="bs"), data.draw(st.integers(1, 5), label="C")
    layout = data.draw(st.sampled_from(["2d", "seq", "axis1"]), label="layout")
    seq = data.draw(st.integers(1, 3), label="seq")
    xshape, tshape, axis = {"2d": ((bs, c), (bs,), -1), "seq": ((bs, seq, c), (bs, seq), -1),
                            "axis1": ((bs, c, seq), (bs, seq), 1)}[layout]
    x = floats(data, xshape, -50, 50)
    n = math.prod(tshape)
    tdt = data.draw(st.sampled_from([torch.long, torch.int32]), label="target dtype")
    t = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n), "t"), dtype=tdt).view(tshape)
    kw = dict(axis=axis, reduction=data.draw(REDUCTION, label="reduction"),
              flatten=layout != "2d" or data.draw(st.booleans(), label="flatten"))
    a, b, la, lb = both_losses(LS.CrossEntropyLossFlat, fls.CrossEntropyLossFlat, x, t, **kw)
    assert la.shape == lb.shape, f"CrossEntropyLossFlat({kw}) shapes {la.shape} vs {lb.shape}"
    same(la, lb, f"CrossEntropyLossFlat({kw})(x{xshape}, {tdt} t{tshape})", rtol=1e-5, atol=1e-5)
    same(a.activation(x), b.activation(x), f"activation (softmax over axis {axis})", rtol=0, atol=0)
    assert torch.equal(a.decodes(x), b.decodes(x)), f"decodes (argmax over axis {axis})"


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_losses_reduction_property_agrees(data):
    "Setting .reduction after construction changes the loss as in fastai (its `reduction` setter)."
    shp = shape(data, min_side=1)
    x, t = floats(data, shp), targets01(data, shp, soft=False)
    r = data.draw(REDUCTION, label="reduction")
    for ic, fc_ in ((LS.BCEWithLogitsLossFlat, fls.BCEWithLogitsLossFlat), (LS.MSELossFlat, fls.MSELossFlat)):
        a, b = ic(), fc_()
        a.reduction, b.reduction = r, r
        same(a(x, t), plain(b(x, t)), f"{ic.__name__} after .reduction = {r!r}", rtol=1e-5, atol=1e-5)


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_flat_loss_base_agrees(data):
    "FlatLoss(func, axis, flatten) around any PyTorch loss (nn.L1Loss) = fastai's BaseLoss(floatify=True, is_2d=False)."
    shp = shape(data)
    x, t = floats(data, shp), floats(data, shp, label="t")
    kw = dict(axis=data.draw(st.integers(-len(shp), len(shp) - 1), label="axis"),
              flatten=data.draw(st.booleans(), label="flatten"))
    r = data.draw(REDUCTION, label="reduction")
    a = LS.FlatLoss(torch.nn.L1Loss(reduction=r), **kw)
    b = fls.BaseLoss(torch.nn.L1Loss, reduction=r, floatify=True, is_2d=False, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        la, lb = a(x, t), plain(b(x, t))
    assert la.shape == lb.shape and repr(a) == repr(b), f"FlatLoss(L1Loss, {kw}): {la.shape}, {a!r} vs {b!r}"
    same(la, lb, f"FlatLoss(L1Loss(reduction={r!r}), {kw})", rtol=1e-5, atol=1e-4)
    assert torch.equal(a.activation(x), x) and torch.equal(a.decodes(x), x), "FlatLoss activation/decodes"


@pytest.mark.claim("IMPL-19")
def test_losses_deliberate_differences():
    "What fastai computes silently or fails on obscurely, impl names; its losses and metrics keep float64 in float64."
    with pytest.raises(ValueError, match=r"BCEWithLogitsLossFlat: targets must lie in \[0, 1\], got 2.0"):
        LS.BCEWithLogitsLossFlat()(torch.zeros(3), torch.tensor([0.0, 2.0, 1.0]))  # fastai: a (negative) number
    with pytest.raises(ValueError, match=r"MSELossFlat: .*shapes \(4,\) and \(2,\)"):
        LS.MSELossFlat()(torch.zeros(4), torch.zeros(2))  # fastai: a broadcast RuntimeError or a warning
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\), got -100"):
        LS.CrossEntropyLossFlat()(torch.zeros(2, 3), torch.tensor([0, -100]))  # fastai: ignored (ignore_index)
    x, t = torch.zeros(2, 3, dtype=torch.float64), torch.full((2, 3), 0.9, dtype=torch.float64)
    equal(LS.BCEWithLogitsLossFlat()(x, t).dtype, torch.float64, "float64 BCE not computed in float64")
    assert fls.BCEWithLogitsLossFlat()(x, t).dtype == torch.float32, "fastai's BCE computes float64 in float32"
    y = torch.tensor([0.1, 0.2], dtype=torch.float64)
    assert M.mse(y, 2 * y).dtype == torch.float64 and fm.mse(y, 2 * y).dtype == torch.float32, "metric dtype"
    x3, t3 = torch.randn(2, 4, 3), torch.randint(0, 3, (2, 4))
    got = LS.CrossEntropyLossFlat(flatten=False, reduction="none")(x3, t3)
    ref = torch.nn.functional.cross_entropy(x3.reshape(-1, 3), t3.reshape(-1), reduction="none").view(2, 4)
    same(got, ref, "CrossEntropyLossFlat(flatten=False) on (bs, seq, C): one loss per (bs, seq)")


# ---------------------------------------------------------------- metrics (IMPL-19)
@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_accuracy_and_error_rate_agree(data):
    "(bs, C) or (C, bs) with axis=0, long/float/(bs, 1) targets, bs = 0 and C = 1 included."
    bs, c = data.draw(st.integers(0, 8), label="bs"), data.draw(st.integers(1, 5), label="C")
    x = floats(data, (bs, c))
    t = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=bs, max_size=bs), label="t"))
    t = {"long": t, "float": t.float(), "column": t.view(bs, 1)}[data.draw(st.sampled_from(["long", "float", "column"]),
                                                                            label="targets")]
    axis = data.draw(st.sampled_from([-1, 0]), label="axis")
    xx = x if axis == -1 else x.t().contiguous()
    for f, g in ((M.accuracy, fm.accuracy), (M.error_rate, fm.error_rate)):
        a, b = f(xx, t, axis=axis), plain(g(xx, t, axis=axis))
        assert a.dtype == b.dtype, f"{f.__name__} dtype {a.dtype} vs {b.dtype}"
        same(a, b, f"{f.__name__}(x{tuple(xx.shape)}, t{tuple(t.shape)} {t.dtype}, axis={axis})")


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_accuracy_multi_agrees(data):
    "Any thresh, sigmoid on/off, 0/1 float, int or bool targets, logits up to 1e4, empty and single element included."
    shp = shape(data)
    x = floats(data, shp, -1e4, 1e4) if data.draw(st.booleans(), label="extreme") else floats(data, shp)
    t = targets01(data, shp, soft=False)
    thresh, sig = data.draw(st.floats(-2, 2), label="thresh"), data.draw(st.booleans(), label="sigmoid")
    a = M.accuracy_multi(x, t, thresh=thresh, sigmoid=sig)
    b = plain(fm.accuracy_multi(x, t, thresh=thresh, sigmoid=sig))
    same(a, b, f"accuracy_multi(x{shp}, {t.dtype} t, thresh={thresh}, sigmoid={sig})", rtol=0, atol=0)


@pytest.mark.claim("IMPL-19")
@given(bad=st.floats(0.01, 0.99))
def test_accuracy_multi_deliberate_soft_targets(bad):
    "fastai reads a soft target 0.1 as label present (targ.bool()); impl says targets must be 0 or 1."
    with pytest.raises(ValueError, match=r"accuracy_multi: targets must be 0 or 1, got"):
        M.accuracy_multi(torch.zeros(3), torch.tensor([0.0, bad, 1.0]))


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_regression_metrics_agree(data):
    "mse, rmse, mae: (bs, 2) against (bs, 1, 2) or (bs, 2), float or integer targets, bs = 0 and 1 included."
    bs = data.draw(st.integers(0, 6), label="bs")
    x = floats(data, (bs, 2), -1e3, 1e3)
    tshape = data.draw(st.sampled_from([(bs, 2), (bs, 1, 2), (2 * bs,)]), label="target shape")
    if data.draw(st.booleans(), label="int targets"):
        t = torch.tensor(data.draw(st.lists(st.integers(-9, 9), min_size=2 * bs, max_size=2 * bs), "t")).view(tshape)
    else:
        t = floats(data, tshape, -1e3, 1e3, label="t")
    for f, g in ((M.mse, fm.mse), (M.rmse, fm.rmse), (M.mae, fm.mae)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = f(x, t), plain(g(x, t))
        assert a.shape == b.shape == () and a.dtype == b.dtype, f"{f.__name__}: {a.shape} {a.dtype} vs {b}"
        same(a, b, f"{f.__name__}(x{tuple(x.shape)}, t{tshape} {t.dtype})", rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- schedules (IMPL-20)
POS = st.one_of(st.sampled_from([0.0, 1.0, 1 - 1e-12, 0.5]), st.floats(0, 1))
VAL = st.floats(-10, 10)
POSITIVE = st.floats(-8, 1).map(lambda e: 10.0**e)


@pytest.mark.claim("IMPL-20")
@given(data=st.data())
def test_sched_functions_agree(data):
    "sched_lin/cos/no/exp(start, end, pos) and Sched*(start, end)(pos), pos 0, 1, 1-1e-12 and between."
    pos = data.draw(POS, label="pos")
    for name, vals in (("lin", VAL), ("cos", VAL), ("no", VAL), ("exp", POSITIVE)):
        s, e = data.draw(vals, label=f"{name} start"), data.draw(vals, label=f"{name} end")
        f, g = getattr(S, f"sched_{name}"), getattr(fs, f"sched_{name}")
        big = getattr(S, f"Sched{name.capitalize()}")(s, e)
        want = g(s, e, pos)
        assert f(s, e, pos) == pytest.approx(want, rel=1e-12, abs=1e-12), f"sched_{name}({s}, {e}, {pos})"
        assert big(pos) == pytest.approx(want, rel=1e-12, abs=1e-12), f"Sched{name.capitalize()}({s}, {e})"
        assert pickle.loads(pickle.dumps(big))(pos) == big(pos), f"Sched{name.capitalize()} does not pickle"
    s, e = data.draw(VAL, label="poly start"), data.draw(VAL, label="poly end")
    power = data.draw(st.floats(0.1, 5), label="power")
    got, want = S.SchedPoly(s, e, power)(pos), fs.SchedPoly(s, e, power)(pos)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12), f"SchedPoly({s}, {e}, {power})({pos})"


@pytest.mark.claim("IMPL-20")
@given(data=st.data())
def test_sched_on_tensors_and_arrays_agree(data):
    "sched_lin and sched_exp broadcast over a tensor or an array of positions, as fastai's do."
    ps = data.draw(st.lists(POS, min_size=1, max_size=10), label="positions")
    s, e = data.draw(POSITIVE, label="start"), data.draw(POSITIVE, label="end")
    for pos in (torch.tensor(ps, dtype=torch.float64), np.array(ps)):
        for name in ("lin", "exp"):
            a, b = getattr(S, f"sched_{name}")(s, e, pos), getattr(fs, f"sched_{name}")(s, e, pos)
            assert type(a) is type(b) and np.allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=0), (
                f"sched_{name}({s}, {e}, {type(pos).__name__}): {a} vs {b}"
            )


def phases(data, vals=POSITIVE):
    "pcts on a 1/8 grid (exact sums, exact float32 boundaries), zero-length phases but not the last, and schedules."
    w = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4).filter(lambda w: w[-1] > 0), label="eighths")
    w[-1] += 8 - sum(w) if sum(w) < 8 else 0
    assume(sum(w) == 8)
    kinds = data.draw(st.lists(st.sampled_from(["Lin", "Cos", "No", "Exp"]), min_size=len(w), max_size=len(w)), "k")
    ends = [(data.draw(vals, label="start"), data.draw(vals, label="end")) for _ in w]
    return [k / 8 for k in w], kinds, ends


@pytest.mark.claim("IMPL-20")
@given(data=st.data())
def test_combine_scheds_agrees(data):
    "combine_scheds(pcts, scheds)(pos): the same phase and the same value (fastai's position is float32)."
    pcts, kinds, ends = phases(data)
    a = S.combine_scheds(pcts, [getattr(S, f"Sched{k}")(*se) for k, se in zip(kinds, ends)])
    b = fs.combine_scheds(pcts, [getattr(fs, f"Sched{k}")(*se) for k, se in zip(kinds, ends)])
    for pos in [0.0, 1.0] + [sum(pcts[:i]) for i in range(1, len(pcts))] + [data.draw(POS, label="pos")]:
        got, want = a(pos), b(pos)
        scale = max(abs(v) for se in ends for v in se)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6 * scale), f"{pcts} {kinds} {ends} at {pos}"
        t = torch.tensor(pos)  # fastai's own notebook plots f(o) for o in torch.linspace(0, 1, 100)
        assert a(t) == pytest.approx(b(t), rel=1e-5, abs=1e-6 * scale), f"at a 0-dim tensor pos {t}"


@pytest.mark.claim("IMPL-20")
@given(data=st.data())
def test_combined_cos_agrees(data):
    "combined_cos(pct, start, middle, end)(pos) for any pct in (0, 1), pos 0, pct, 1 and between."
    pct = data.draw(st.floats(0.01, 0.99), label="pct")
    a3 = [data.draw(POSITIVE, label=k) for k in ("start", "middle", "end")]
    f, g = S.combined_cos(pct, *a3), fs.combined_cos(pct, *a3)
    for pos in (0.0, pct, 1.0, data.draw(POS, label="pos")):
        assert f(pos) == pytest.approx(g(pos), rel=1e-5, abs=1e-6 * max(a3)), f"combined_cos({pct}, {a3})"


@pytest.mark.claim("IMPL-20")
@given(data=st.data())
def test_even_mults_and_lrs_for_agree(data):
    "even_mults(start, stop, n): n = 1 gives stop itself; lrs_for = a fastai Optimizer's per-group lr, one group too."
    a, b, n = data.draw(POSITIVE, label="start"), data.draw(POSITIVE, label="stop"), data.draw(st.integers(1, 12), "n")
    got, want = S.even_mults(a, b, n), fa_even_mults(a, b, n)
    assert isinstance(got, list) == isinstance(want, list), f"even_mults({a}, {b}, {n}) = {got!r} vs {want!r}"
    assert got == pytest.approx(want, rel=1e-12), f"even_mults({a}, {b}, {n}) = {got} vs {want}"
    for lr in (slice(a, b), slice(b), b, [a] * n):
        opt = Optimizer([[torch.nn.Parameter(torch.zeros(1))] for _ in range(n)], [sgd_step], lr=lr)
        want = [h["lr"] for h in opt.hypers]
        assert S.lrs_for(lr, n) == pytest.approx(want, rel=1e-12), f"lrs_for({lr}, {n}) vs fastai {want}"


@pytest.mark.claim("IMPL-20")
def test_schedule_deliberate_differences():
    "A last phase of length 0: fastai returns nan at pos 1, impl ends the phase before; sums off by 1e-16 are fine."
    a = S.combine_scheds([1.0, 0.0], [S.SchedLin(0, 2), S.SchedLin(5, 6)])
    assert a(1.0) == 2.0 and a(0.5) == 1.0, f"zero-length last phase: {a(1.0)}, {a(0.5)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(fs.combine_scheds([1.0, 0.0], [fs.SchedLin(0, 2), fs.SchedLin(5, 6)])(1.0))
    pcts = [0.6, 0.3, 0.1]  # sum([0.6, 0.3, 0.1]) == 0.9999999999999999: fastai's exact assertion fails
    with pytest.raises(AssertionError):
        fs.combine_scheds(pcts, [fs.SchedNo(1, 1)] * 3)
    assert S.combine_scheds(pcts, [S.SchedNo(1, 1), S.SchedNo(2, 2), S.SchedNo(3, 3)])(0.7) == 2.0
    for args, msg in (([[0.5, 0.6], [S.SchedNo(1, 1)] * 2], r"add up to 1"), ([[-0.5, 1.5], [S.SchedNo(1, 1)] * 2],
                      r"must be >= 0"), ([[1.0], []], r"one pct per schedule"), ([[1.0], [3]], r"functions of pos")):
        with pytest.raises((ValueError, TypeError), match=msg):
            S.combine_scheds(*args)
    with pytest.raises(TypeError, match=r"one pos at a time, got shape \(2,\)"):
        S.combine_scheds([0.5, 0.5], [S.SchedNo(1, 1)] * 2)(torch.tensor([0.1, 0.2]))  # fastai: ambiguous bool
    with pytest.raises(ValueError, match=r"power must be > 0, got 0.0"):
        S.SchedPoly(1, 2, 0)
    with pytest.raises(ValueError, match=r"start must be > 0 for an exponential schedule"):
        S.SchedExp(0, 1)  # checked when made, not at the first batch
    with pytest.raises(ValueError, match=r"pos must lie in \[0, 1\], got 1.5"):
        S.SchedPoly(1, 2, 2)(1.5)


# ---------------------------------------------------------------- interpretation (IMPL-21)
class _Preds:
    "A stand-in learner for fastai's ClassificationInterpretation: get_preds returns fixed targets and decodes."

    def __init__(self, targs, decoded):
        self.targs, self.decoded = targs, decoded

    def get_preds(self, **kw):
        return None, self.targs, self.decoded


@pytest.mark.claim("IMPL-21")
@given(data=st.data())
def test_confusion_matrix_and_most_confused_agree(data):
    "The same matrix (dtype integer) and the same most_confused list in the same order, for any predictions."
    n = data.draw(st.integers(1, 6), label="n classes")
    k = data.draw(st.integers(0, 30), label="n items")
    actual = data.draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k), label="actual")
    predicted = data.draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k), label="predicted")
    vocab = [f"c{i}" for i in range(n)]
    fa = fi.ClassificationInterpretation(_Preds(torch.tensor(actual, dtype=torch.long),
                                                torch.tensor(predicted, dtype=torch.long)),
                                         SimpleNamespace(vocab=CategoryMap(vocab, sort=False)), losses=None)
    cm, want = I.confusion_matrix(actual, predicted, n), fa.confusion_matrix()
    assert np.issubdtype(cm.dtype, np.integer) and cm.tolist() == want.tolist(), f"{cm} vs fastai {want}"
    for min_val in (1, 2, 3):
        got = [(a, p, int(c)) for a, p, c in I.most_confused(cm, vocab, min_val)]
        ref = [(a, p, int(c)) for a, p, c in fa.most_confused(min_val)]
        assert got == ref, f"most_confused(min_val={min_val}): {got} vs fastai {ref}"


# ---------------------------------------------------------------- callbacks: ParamScheduler, LRFinder (IMPL-42)
IMPL, FASTAI = get("impl"), get("fastai")
LR = st.floats(-6, -1).map(lambda e: 10.0**e)
MOM = st.floats(0.5, 0.99)


def sched_pair(data, vals, label):
    "One drawn schedule as (impl's, fastai's), built from the same numbers by each library's own functions."
    kind = data.draw(st.sampled_from(["Lin", "Cos", "No", "Exp", "Poly", "combined_cos", "combine"]), f"{label} kind")
    if kind == "combine":
        pcts, kinds, ends = phases(data, vals)
        return tuple(lib.combine_scheds(pcts, [getattr(lib, f"Sched{k}")(*se) for k, se in zip(kinds, ends)])
                     for lib in (S, fs))
    v = [data.draw(vals, label=f"{label} {k}") for k in ("start", "end", "middle")]
    if kind == "combined_cos":
        a = (data.draw(st.floats(0.01, 0.99), label=f"{label} pct"), v[0], v[2], v[1])
        return S.combined_cos(*a), fs.combined_cos(*a)
    if kind == "Poly":
        a = (v[0], v[1], data.draw(st.floats(0.1, 5), label=f"{label} power"))
        return S.SchedPoly(*a), fs.SchedPoly(*a)
    return getattr(S, f"Sched{kind}")(v[0], v[1]), getattr(fs, f"Sched{kind}")(v[0], v[1])


def scheds(data, vals, label, n=3):
    "({k: impl's}, {k: fastai's}) for one key: one schedule for every group, or one per group (a list on impl)."
    if data.draw(st.booleans(), label=f"{label} per group"):
        pairs = [sched_pair(data, vals, f"{label}[{i}]") for i in range(n)]
        return [a for a, _ in pairs], lambda p: [b(p) for _, b in pairs]  # fastai's set_hyper takes a list
    a, b = sched_pair(data, vals, label)
    return (a if data.draw(st.booleans(), label=f"{label} one function") else [a] * n), b


@pytest.mark.claim("IMPL-42")
@pytest.mark.usefixtures("one_thread")
@given(data=st.data())
def test_param_scheduler_agrees(data):
    "The same schedules for lr (and mom) in a fit of 1-3 epochs of 1-4 batches: the same values in every group."
    n_epoch, k = data.draw(st.integers(1, 3), label="epochs"), data.draw(st.integers(1, 4), label="batches")
    si, sf = {}, {}
    si["lr"], sf["lr"] = scheds(data, LR, "lr")
    if data.draw(st.booleans(), label="mom too"):
        si["mom"], sf["mom"] = scheds(data, MOM, "mom")
    li, *_ = make(IMPL, n=32 + 8 * k)
    lf, *_ = make(FASTAI, n=32 + 8 * k)
    li.fit(n_epoch, cbs=[CB.ParamScheduler(si)])
    lf.fit(n_epoch, cbs=[fs.ParamScheduler(sf)])
    a, b = IMPL.train_log(li), FASTAI.train_log(lf)
    for h in ("lrs", "moms"):
        assert a[h].shape == b[h].shape == (n_epoch * k, 3), f"{h}: {a[h].shape} vs fastai {b[h].shape}"
        np.testing.assert_allclose(a[h], b[h], rtol=1e-5, atol=0, err_msg=f"{h} per batch and group, {si}")


def stops_at(s, raw, stop_div, total, nan_stops):
    "The number of batches a sweep runs by its rule: s smoothed, raw the batch losses, total the cap."
    best = math.inf
    for i, (v, r) in enumerate(zip(s, raw)):
        best = min(best, v)  # a NaN never becomes the best, in either library
        if (nan_stops and not math.isfinite(r)) or (stop_div and v > 4 * best) or i + 1 >= total:
            return i + 1
    return total


@pytest.mark.claim("IMPL-42")
@pytest.mark.usefixtures("one_thread")
@given(data=st.data())
def test_lr_finder_agrees(data):
    """lr_find(start_lr, end_lr, num_it, stop_div), or a fit of n epochs with an LRFinder callback: the same LR in every
    group at every batch, each stopping by its rule, the weights put back. num_it 1 to 40, end_lr up to 1e5."""
    lo = 10.0 ** data.draw(st.floats(-8, -3), label="log10 start_lr")
    hi = lo * 10.0 ** data.draw(st.floats(0.5, 8), label="decades")
    num_it, stop_div = data.draw(st.integers(1, 40), label="num_it"), data.draw(st.booleans(), label="stop_div")
    k, via = data.draw(st.integers(1, 8), label="batches"), data.draw(st.sampled_from(["lr_find", "LRFinder"]), "via")
    n_epoch = data.draw(st.integers(1, 4), label="epochs")
    n_it = max(num_it, 6)
    out = {}
    for be, fin in ((IMPL, LF.LRFinder), (FASTAI, fs.LRFinder)):
        learn, *_ = make(be, n=32 + 8 * k)
        w = params(learn.model)
        if via == "lr_find":
            be.lr_find(learn, start_lr=lo, end_lr=hi, num_it=num_it, stop_div=stop_div, suggest_funcs=None)
            cap = n_it if be is IMPL else min(n_it, (num_it // k + 1) * k)  # fastai's epochs from the num_it given
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fastai's recorder: mean of empty slice (no validation)
                learn.fit(n_epoch, cbs=[fin(lo, hi, num_it, stop_div)])
            cap = min(n_it, n_epoch * k)
        log, (lrs, s) = be.train_log(learn), be.finder_curve(learn)
        want = stops_at(s, log["losses"], stop_div, cap, nan_stops=be is IMPL)
        assert len(s) == len(log["lrs"]) == want, f"{be.name}: {len(s)} batches, its rule says {want} ({via})"
        assert all(torch.equal(x, y) for x, y in zip(w, params(learn.model))), f"{be.name}: weights not put back"
        out[be.name] = log["lrs"], lrs
    (a, ra), (b, rb) = out["impl"], out["fastai"]
    n = min(len(a), len(b))
    assert n >= min(6, cap), f"a sweep stopped at once: impl {len(a)}, fastai {len(b)} batches"
    np.testing.assert_allclose(a[:n], b[:n], rtol=1e-12, atol=0, err_msg="LR per batch and group")
    np.testing.assert_allclose(ra[:n], rb[:n], rtol=1e-12, atol=0, err_msg="recorder.lrs (last group)")
    np.testing.assert_allclose(a[:, 0], lo * (hi / lo) ** (np.arange(len(a)) / n_it), rtol=1e-9, err_msg="formula")


class _NanAt:
    "Cross-entropy, NaN at the k-th call (counting from 1)."

    def __init__(self, k):
        self.k, self.n = k, 0

    def __call__(self, o, y):
        self.n += 1
        loss = torch.nn.functional.cross_entropy(o, y)
        return loss * math.nan if self.n == self.k else loss


@pytest.mark.claim("IMPL-42")
@pytest.mark.usefixtures("one_thread")
def test_lr_finder_deliberate_differences():
    "impl stops at a NaN loss (fastai sweeps on); num_it < 6 runs 6 batches; lists and unknown keys raise."
    for be, want in ((IMPL, 4), (FASTAI, 20)):
        learn, *_ = make(be, loss_func=_NanAt(4))
        be.lr_find(learn, num_it=20, stop_div=False, suggest_funcs=None)
        raw = be.train_log(learn)["losses"]
        assert len(raw) == want and math.isnan(raw[3]), f"{be.name}: {len(raw)} batches after a NaN at the 4th"
    for be, want in ((IMPL, 6), (FASTAI, 4)):  # num_it=3 over 2 batches an epoch: fastai fits 3 // 2 + 1 epochs
        learn, *_ = make(be, n=32 + 16)
        be.lr_find(learn, num_it=3, stop_div=False, suggest_funcs=None)
        assert len(be.finder_curve(learn)[0]) == want, f"{be.name}: num_it=3 with 2 batches an epoch"
    learn, *_ = make(IMPL)
    with pytest.raises(ValueError, match=r"start_lr must be a finite number > 0, got \[1e-07"):
        IMPL.lr_find(learn, start_lr=[1e-7] * 3, end_lr=[10] * 3)  # fastai: one sweep per group
    with pytest.raises(ValueError, match=r"optimizer has no hyper-parameter \['wd'\]; it has \['mom', 'lr'"):
        learn.fit(1, cbs=[CB.ParamScheduler({"wd": S.SchedLin(0.1, 0.0)})])  # fastai's name; impl: weight_decay
    with pytest.raises(TypeError, match=r"scheds\['lr'\] must be a function of p or a list of them, got 0.1"):
        CB.ParamScheduler({"lr": 0.1})
    learn.fit(1, cbs=[CB.ParamScheduler({"weight_decay": S.SchedLin(0.1, 0.05)})])
    assert learn.hypers("weight_decay") == [pytest.approx(0.1 - 0.05 * 7 / 8)] * 3, "weight_decay not scheduled"
