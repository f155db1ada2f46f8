"""Losses: BCE is the MNIST loss plus a log, applied to every column; PyTorch's BCE/CE family; fastai's flat losses."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import impl.losses as LS
from spec.checks import equal
from spec.tiny import plain, points


def np_logsig(x):
    "log(sigmoid(x)) in float64, stable for any x."
    return -np.logaddexp(0, -x)


def np_bce(x, t):
    "Binary cross entropy on logits, element-wise mean, numpy float64."
    return -np.mean(np.where(t == 1, np_logsig(x), np_logsig(-x)))


def batch(data, lo=-10.0, hi=10.0, max_bs=8, max_c=6):
    "(bs, C) float32 logits and 0/1 float32 targets."
    bs = data.draw(st.integers(1, max_bs), label="bs")
    c = data.draw(st.integers(1, max_c), label="C")
    x = data.draw(st.lists(st.floats(lo, hi, width=32), min_size=bs * c, max_size=bs * c), label="logits")
    t = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=bs * c, max_size=bs * c), label="targets")
    return torch.tensor(x).view(bs, c), torch.tensor(t).view(bs, c)


def close(a, b, rel=1e-5, abs=1e-6):
    return float(a) == pytest.approx(float(b), rel=rel, abs=abs)


# ---------------------------------------------------------------- the MNIST loss and BCE
@pytest.mark.claim("ML-6")
@given(data=st.data())
def test_bce_is_mnist_loss_plus_log(backend, data):
    "mnist_loss averages m = where(t==1, 1-σ(x), σ(x)); BCE averages -log(1-m): the same thing plus a log."
    x, t = batch(data)
    xd, td = x.double().numpy(), t.double().numpy()
    p = 1 / (1 + np.exp(-xd))
    m = np.where(td == 1, 1 - p, p)  # the MNIST loss's per-item distance from the target
    mnist, bce = backend.mnist_loss(x, t), backend.binary_cross_entropy(x, t)
    assert close(mnist, m.mean()), f"mnist_loss={float(mnist)}, mean(m)={m.mean()}, x={x.tolist()}, t={t}"
    assert close(bce, -np.log(1 - m).mean()), f"BCE={float(bce)}, -mean(log(1-m))={-np.log(1 - m).mean()}"
    assert close(bce, F.binary_cross_entropy_with_logits(x, t)), f"BCE={float(bce)} != with_logits"
    assert close(bce, nn.BCEWithLogitsLoss()(x, t)), f"BCE={float(bce)} != nn.BCEWithLogitsLoss"


@pytest.mark.claim("ML-6")
@given(data=st.data())
def test_bce_is_stable_for_large_logits(backend, data):
    "BCE on logits is finite and exact even where float32 σ(x) is 0 or 1 (|x| up to 1e4): computed via log-sigmoid."
    x, t = batch(data, -1e4, 1e4)
    bce, ref = backend.binary_cross_entropy(x, t), np_bce(x.double().numpy(), t.double().numpy())
    assert torch.isfinite(bce) and close(bce, ref), f"BCE={float(bce)}, reference={ref}, x={x.tolist()}"


@pytest.mark.claim("ML-17")
def test_mnist_loss_with_a_log_is_bce(backend):
    "The lesson, literally: the MNIST loss's term with .log added, -where(t==1, 1-σ(x), σ(x)).log().mean(), is BCE."
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(4, 3, generator=g), (torch.rand(4, 3, generator=g) > 0.5).float()
    p = x.sigmoid()
    literal = -torch.where(t == 1, 1 - p, p).log().mean()
    bce = backend.binary_cross_entropy(x, t)
    assert close(literal, bce), f"literal={float(literal)}, BCE={float(bce)}, x={x.tolist()}, t={t.tolist()}"


@pytest.mark.claim("ML-17", current=True)
@given(data=st.data())
def test_mnist_loss_with_a_log_is_bce_of_flipped_targets(data):
    "What that literal form (the fastbook notebook's binary_cross_entropy) is: BCE against 1 - t, rewarding errors."
    x, t = batch(data)
    p = x.double().sigmoid()
    literal = -torch.where(t == 1, 1 - p, p).log().mean()
    ref = np_bce(x.double().numpy(), 1 - t.double().numpy())
    assert close(literal, ref, rel=1e-9), f"literal={float(literal)}, BCE(x, 1-t)={ref}, x={x}, t={t}"


@pytest.mark.claim("ML-7")
@given(data=st.data())
def test_bce_applies_to_every_column(backend, data):
    "BCE of a (bs, C) batch = mean over all bs*C items = mean of the C per-column BCEs."
    x, t = batch(data)
    full = backend.binary_cross_entropy(x, t)
    cols = [backend.binary_cross_entropy(x[:, j], t[:, j]) for j in range(x.shape[1])]
    per_item = np.mean([np_bce(a, b) for a, b in zip(x.double().numpy().ravel(), t.double().numpy().ravel())])
    assert close(full, np.mean([float(c) for c in cols])), f"full={float(full)}, columns={cols}"
    assert close(full, per_item), f"full={float(full)}, mean of per-item BCEs={per_item}"


# ---------------------------------------------------------------- PyTorch's names (PyTorch only)
@pytest.mark.claim("ML-8")
@given(data=st.data())
def test_pytorch_bce_function_and_module_agree(data):
    "F.binary_cross_entropy == nn.BCELoss (on probabilities); ..._with_logits == nn.BCEWithLogitsLoss == BCE of σ(x)."
    x, t = (a.double() for a in batch(data))
    p = torch.sigmoid(x)
    assert torch.equal(F.binary_cross_entropy(p, t), nn.BCELoss()(p, t)), f"p={p.tolist()}, t={t.tolist()}"
    wl = F.binary_cross_entropy_with_logits(x, t)
    assert torch.equal(wl, nn.BCEWithLogitsLoss()(x, t)), f"x={x.tolist()}, t={t.tolist()}"
    assert close(wl, F.binary_cross_entropy(p, t), rel=1e-9), f"with_logits={float(wl)} vs BCE(σ(x))"
    assert close(wl, np_bce(x.numpy(), t.numpy()), rel=1e-9), f"with_logits={float(wl)} vs the formula"


@pytest.mark.claim("ML-8")
def test_pytorch_bce_takes_probabilities_and_with_logits_is_better_behaved():
    "binary_cross_entropy has no sigmoid (inputs in [0, 1]); in float32 σ(40) == 1, so it clamps log(0) to -100."
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([2.0]), torch.tensor([1.0]))
    x, t = torch.tensor([40.0]), torch.tensor([0.0])
    equal(F.binary_cross_entropy(torch.sigmoid(x), t).item(), 100.0, "BCE(σ(40), 0) should be clamped to 100")
    assert close(F.binary_cross_entropy_with_logits(x, t), 40.0), "with_logits(40, 0) should be 40 (exact)"


@pytest.mark.claim("ML-8")
@given(data=st.data())
def test_cross_entropy_is_nll_of_log_softmax(data):
    "F.cross_entropy(x, t) == F.nll_loss(F.log_softmax(x, -1), t) == nn.CrossEntropyLoss()(x, t) (single label)."
    x, _ = batch(data, -30, 30)
    x = x.double()
    t = torch.tensor(data.draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=len(x), max_size=len(x)), label="t"))
    ce = F.cross_entropy(x, t)
    assert close(ce, F.nll_loss(F.log_softmax(x, -1), t), rel=1e-12), f"x={x.tolist()}, t={t.tolist()}"
    assert torch.equal(ce, nn.CrossEntropyLoss()(x, t)), "F.cross_entropy != nn.CrossEntropyLoss"
    xs = x.numpy()
    ref = -np.mean(xs[np.arange(len(t)), t.numpy()] - np.logaddexp.reduce(xs, axis=1))
    assert close(ce, ref, rel=1e-9), f"cross_entropy={float(ce)}, -mean log softmax[t]={ref}"


# ---------------------------------------------------------------- the flattened losses fastai picks
@pytest.mark.claim("ML-9")
@given(data=st.data())
def test_bce_with_logits_loss_flat(backend, data):
    "BCEWithLogitsLossFlat: BCE on logits of the flattened batch; its activation is sigmoid, decodes is > 0.5."
    x, t = batch(data, -50, 50)
    lf = backend.BCEWithLogitsLossFlat()
    assert repr(lf) == "FlattenedLoss of BCEWithLogitsLoss()", f"repr {lf!r}"
    loss, ref = lf(x, t), np_bce(x.double().numpy(), t.double().numpy())
    assert close(loss, ref), f"loss={float(loss)}, reference={ref}, x={x.tolist()}, t={t.tolist()}"
    assert torch.equal(lf.activation(x), torch.sigmoid(x)), "activation is not sigmoid"
    assert torch.equal(lf.decodes(x), x > 0.5), "decodes is not x > thresh=0.5"


@pytest.mark.claim("REG-13")
@given(data=st.data())
def test_mse_loss_flat_flattens_points(backend, data):
    "MSELossFlat compares (bs, 2) predictions with (bs, 1, 2) point targets: the mean of the squared differences."
    p, y = points(data)
    loss, ref = backend.MSELossFlat()(p, y), ((p.double().numpy() - y.double().numpy().reshape(p.shape)) ** 2).mean()
    assert close(loss, ref), f"loss={float(loss)}, mean squared difference={ref}"
    assert repr(backend.MSELossFlat()) == "FlattenedLoss of MSELoss()", f"repr {backend.MSELossFlat()!r}"


@pytest.mark.claim("ML-8")
@given(data=st.data())
def test_cross_entropy_loss_flat(backend, data):
    "CrossEntropyLossFlat flattens (bs, ..., C) logits to (N, C) and targets to N: the mean of -log softmax[target]."
    x, _ = batch(data, -30, 30)
    seq = data.draw(st.integers(1, 3), label="seq")
    x = x.unsqueeze(1).expand(-1, seq, -1).contiguous()  # (bs, seq, C)
    n, c = x.shape[0] * seq, x.shape[2]
    t = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n), label="t")).view(-1, seq)
    xs, ts = x.double().numpy().reshape(n, c), t.numpy().ravel()
    ref = -np.mean(xs[np.arange(n), ts] - np.logaddexp.reduce(xs, axis=1))
    lf = backend.CrossEntropyLossFlat()
    assert close(lf(x, t), ref), f"CrossEntropyLossFlat={float(lf(x, t))}, reference={ref}"
    assert torch.equal(lf.decodes(x), x.argmax(-1)), "decodes is not argmax"


# ---------------------------------------------------------------- the flattened losses' options
def np_bce_items(x, t):
    "Element-wise binary cross entropy on logits, numpy float64."
    return -np.where(t == 1, np_logsig(x), np_logsig(-x))


@pytest.mark.claim("ML-9")
@given(data=st.data())
def test_bce_with_logits_loss_flat_options(backend, data):
    "thresh moves decodes; reduction 'sum'/'none' (also set later); flatten=False keeps (bs, C); axis=0 reads x.T."
    x, t = batch(data, -50, 50)
    items = np_bce_items(x.double().numpy(), t.double().numpy())
    thresh = data.draw(st.floats(0.01, 0.99), label="thresh")
    lf = backend.BCEWithLogitsLossFlat(thresh=thresh)
    assert torch.equal(plain(lf.decodes(x)), x > thresh), f"decodes with thresh={thresh} is not x > thresh"
    s = backend.BCEWithLogitsLossFlat(reduction="sum")(x, t)
    assert close(s, items.sum(), rel=1e-5, abs=1e-4), f"reduction='sum' gives {float(s)}, not {items.sum()}"
    n = plain(backend.BCEWithLogitsLossFlat(reduction="none")(x, t))
    assert n.shape == (x.numel(),) and np.allclose(n.numpy(), items.ravel(), rtol=1e-5, atol=1e-5), "'none'"
    nf = plain(backend.BCEWithLogitsLossFlat(reduction="none", flatten=False)(x, t))
    assert nf.shape == x.shape and np.allclose(nf.numpy(), items, rtol=1e-5, atol=1e-5), "flatten=False"
    a0 = plain(backend.BCEWithLogitsLossFlat(axis=0, reduction="none")(x.t(), t.t()))
    assert np.allclose(a0.numpy(), items.ravel(), rtol=1e-5, atol=1e-5), "axis=0 on x.T is not x's order"
    lf.reduction = "sum"
    assert lf.reduction == "sum" and close(lf(x, t), s), f"setting .reduction = 'sum' gives {float(lf(x, t))}"


@pytest.mark.claim("REG-13")
@given(data=st.data())
def test_mse_loss_flat_options(backend, data):
    "reduction 'sum' and 'none' (one squared error per element); flatten=False on equal shapes keeps them."
    p, y3 = points(data)
    bs, y = len(p), y3.view(p.shape)
    sq = (p.double().numpy() - y.double().numpy()) ** 2
    s = backend.MSELossFlat(reduction="sum")(p, y3)
    assert close(s, sq.sum(), rel=1e-5, abs=1e-5), f"reduction='sum' gives {float(s)}, not {sq.sum()}"
    n = plain(backend.MSELossFlat(reduction="none")(p, y3))
    assert n.shape == (2 * bs,) and np.allclose(n.numpy(), sq.ravel(), atol=1e-6), f"'none' {n.shape}"
    nf = plain(backend.MSELossFlat(reduction="none", flatten=False)(p, y))
    assert nf.shape == (bs, 2) and np.allclose(nf.numpy(), sq, atol=1e-6), f"flatten=False {nf.shape}"
    a0 = plain(backend.MSELossFlat(axis=0, reduction="none", flatten=False)(p.t(), y.t()))
    assert a0.shape == (bs, 2) and np.allclose(a0.numpy(), sq, atol=1e-6), "axis=0 moves the axis last"


@pytest.mark.claim("ML-8")
@given(data=st.data())
def test_cross_entropy_loss_flat_axis_and_reduction(backend, data):
    "axis=1 (a class axis in the middle, as in segmentation): softmax, argmax and the loss over that axis."
    bs, c, seq = (data.draw(st.integers(1, 3), label=k) for k in ("bs", "C", "L"))
    n = bs * c * seq
    x = torch.tensor(data.draw(st.lists(st.floats(-30, 30, width=32), min_size=n, max_size=n), label="x"))
    x = x.view(bs, c, seq)
    t = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=bs * seq, max_size=bs * seq), label="t"))
    t = t.view(bs, seq)
    xs = x.double().numpy().transpose(0, 2, 1).reshape(-1, c)  # rows (b, l)
    items = np.logaddexp.reduce(xs, axis=1) - xs[np.arange(len(xs)), t.numpy().ravel()]
    lf = backend.CrossEntropyLossFlat(axis=1)
    assert close(lf(x, t), items.mean()), f"CrossEntropyLossFlat(axis=1) {float(lf(x, t))} vs {items.mean()}"
    none = plain(backend.CrossEntropyLossFlat(axis=1, reduction="none")(x, t))
    assert np.allclose(none.numpy(), items, rtol=1e-5, atol=1e-5), f"reduction='none' {none} vs {items}"
    assert close(backend.CrossEntropyLossFlat(axis=1, reduction="sum")(x, t), items.sum(), rel=1e-5, abs=1e-4)
    assert torch.allclose(plain(lf.activation(x)), torch.softmax(x, 1)), "activation is not softmax(dim=1)"
    assert torch.equal(plain(lf.decodes(x)), x.argmax(1)), "decodes is not argmax(dim=1)"
    x2 = x[:, :, 0]
    nf = plain(backend.CrossEntropyLossFlat(reduction="none", flatten=False)(x2, t[:, 0]))
    assert nf.shape == (bs,) and torch.allclose(nf, F.cross_entropy(x2, t[:, 0], reduction="none")), "flat"


# ---------------------------------------------------------------- impl's errors
@pytest.mark.claim("IMPL-5")
@given(bad=st.one_of(st.floats(-5, -2**-20, width=32), st.floats(1 + 2**-20, 5, width=32), st.just(float("nan"))))
def test_impl_bce_rejects_targets_outside_0_1(bad):
    x, t = torch.zeros(2, 3), torch.tensor([[0.0, 1.0, 1.0], [0.0, bad, 0.0]])
    with pytest.raises(ValueError, match=r"binary_cross_entropy: targets must lie in \[0, 1\], got"):
        LS.binary_cross_entropy(x, t)
    with pytest.raises(ValueError, match=r"BCEWithLogitsLossFlat: targets must lie in \[0, 1\], got"):
        LS.BCEWithLogitsLossFlat()(x, t)


@pytest.mark.claim("IMPL-19")
@given(data=st.data())
def test_impl_bce_takes_soft_targets(data):
    "Soft targets t in [0, 1] (0.9, label smoothing) weigh the two terms: -mean(t logσ(x) + (1-t) logσ(-x)), as torch."
    x, _ = batch(data)
    v = st.sampled_from([0.0, 0.1, 0.9, 1.0]) | st.floats(0, 1, width=32)
    t = torch.tensor(data.draw(st.lists(v, min_size=x.numel(), max_size=x.numel()), label="soft targets")).view(x.shape)
    xd, td = x.double().numpy(), t.double().numpy()
    ref = -np.mean(td * np_logsig(xd) + (1 - td) * np_logsig(-xd))
    for name, got in (("binary_cross_entropy", LS.binary_cross_entropy(x, t)),
                      ("BCEWithLogitsLossFlat", LS.BCEWithLogitsLossFlat()(x, t))):
        assert close(got, ref), f"IMPL-19: {name} on soft targets = {float(got)}, expected {ref}: x={x}, t={t}"


@pytest.mark.claim("IMPL-5")
def test_impl_flat_loss_shape_errors():
    with pytest.raises(ValueError, match=r"MSELossFlat: .*shapes \(4, 2\) and \(4, 1, 3\)"):
        LS.MSELossFlat()(torch.zeros(4, 2), torch.zeros(4, 1, 3))
    with pytest.raises(ValueError, match=r"BCEWithLogitsLossFlat: .*shapes \(4, 3\) and \(4, 2\)"):
        LS.BCEWithLogitsLossFlat()(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"CrossEntropyLossFlat: .*one target per row.*\(4, 3\) and \(3,\)"):
        LS.CrossEntropyLossFlat()(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"CrossEntropyLossFlat: targets must lie in \[0, 3\), got 3"):
        LS.CrossEntropyLossFlat()(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match=r"CrossEntropyLossFlat: targets must be class indices"):
        LS.CrossEntropyLossFlat()(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"MSELossFlat needs tensors, got list"):
        LS.MSELossFlat()([1.0, 2.0], torch.zeros(2))


@pytest.mark.claim("ML-6")
def test_bce_takes_bool_int_and_float64_targets(backend):
    "0/1 targets as bool, int64 or float64 give the float targets' loss, in the logits' dtype (float32)."
    x, t = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]]), torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    ref = np_bce(x.double().numpy(), t.double().numpy())
    for tt in (t.bool(), t.long(), t.double()):
        got = plain(backend.binary_cross_entropy(x, tt))
        assert got.dtype == torch.float32, f"{tt.dtype} targets: loss dtype {got.dtype}, want float32"
        assert close(got, ref), f"{tt.dtype} targets: loss {float(got)}, want {ref}"


@pytest.mark.claim("ML-8")
def test_cross_entropy_loss_flat_takes_a_target_column(backend):
    "(bs, C) logits with (bs, 1) targets: flattened like (bs,) targets, the same mean of -log softmax[target]."
    x = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 0.0], [-1.0, 0.0, 1.0]])
    t = torch.tensor([0, 2, 1, 1])
    xd = x.double().numpy()
    ref = -np.mean(xd[np.arange(4), t.numpy()] - np.logaddexp.reduce(xd, axis=1))
    got = backend.CrossEntropyLossFlat()(x, t.view(4, 1))
    assert close(got, ref), f"CrossEntropyLossFlat with a (4, 1) target column = {float(got)}, want {ref}"


@pytest.mark.claim("IMPL-19")
def test_impl_flat_loss_edge_inputs():
    """One value (0-dim) has no axis to move, whatever `axis`; a float64 target makes a float64 loss, an integer one
    counts as float32 (so half logits give a float32 loss, integer logits a loss at all); CrossEntropyLossFlat with
    flatten=False takes one unbatched item, (C,) logits and a 0-dim class; FlatLoss flattens by default."""
    equal(float(LS.MSELossFlat(axis=1)(torch.tensor(3.0), torch.tensor(1.0))), 4.0, "0-dim MSE with axis=1")
    got = LS.MSELossFlat()(torch.tensor([0.5, 1.0]), torch.tensor([0.0, 1.0], dtype=torch.float64))
    equal((got.dtype, float(got)), (torch.float64, 0.125), "float32 input, float64 target: (dtype, mse)")
    half = LS.BCEWithLogitsLossFlat()(torch.tensor([0.0, 0.0], dtype=torch.float16), torch.tensor([1, 0]))
    equal(half.dtype, torch.float32, "float16 logits, int64 targets: loss dtype")
    assert close(half, np.log(2)), f"BCE of logits 0 = {float(half)}, want log 2"
    ints = LS.BCEWithLogitsLossFlat()(torch.tensor([0, 0]), torch.tensor([1, 0]))
    assert ints.dtype == torch.float32 and close(ints, np.log(2)), f"int64 logits 0: {ints!r}, want float32 log 2"
    x = torch.tensor([1.0, 2.0, 0.5])
    ref = np.logaddexp.reduce(x.double().numpy()) - 2.0  # -log softmax(x)[1]
    got = LS.CrossEntropyLossFlat(flatten=False)(x, torch.tensor(1))
    assert close(got, ref), f"CrossEntropyLossFlat(flatten=False) on (3,) logits, class 1: {float(got)}, want {ref}"
    got = LS.FlatLoss(nn.MSELoss())(torch.zeros(4, 2), torch.ones(4, 1, 2))
    equal(float(got), 1.0, "FlatLoss(nn.MSELoss()) on (4, 2) input, (4, 1, 2) target")


@pytest.mark.claim("IMPL-5")
def test_impl_flat_loss_errors_name_what_was_given():
    "A 0-dim input to CrossEntropyLossFlat has no class axis: a ValueError; a non-tensor target is named by type."
    with pytest.raises(ValueError, match=r"CrossEntropyLossFlat: input \(\.\.\., C\) needs one target per row"):
        LS.CrossEntropyLossFlat()(torch.tensor(1.0), torch.tensor(0))
    with pytest.raises(TypeError, match=r"^MSELossFlat needs tensors, got Tensor and list$"):
        LS.MSELossFlat()(torch.zeros(2), [1.0, 2.0])
