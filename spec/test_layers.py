"""Layers: sigmoid_range (y_range) and its float32 saturation, one-hot @ matrix = embedding lookup, dot products."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl.layers as L

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
DTYPES = st.sampled_from([torch.float32, torch.float64])


def dyadic_bounds(m=800):
    "lo < hi, multiples of 1/8 in [-m/8, m/8]: exact in float32, and so is hi - lo: rounding cannot leave [lo, hi]."
    ints = st.tuples(st.integers(-m, m), st.integers(-m, m)).filter(lambda t: t[0] < t[1])
    return ints.map(lambda t: (t[0] / 8, t[1] / 8))


def f32_grid(a, b):
    "Every float32 in [a, b] (0 <= a <= b), ascending."
    i = np.arange(np.float32(a).view(np.int32), np.float32(b).view(np.int32) + 1, dtype=np.int32)
    return torch.from_numpy(i.view(np.float32))


# ---------------------------------------------------------------- the sigmoid (PyTorch only)


@pytest.mark.claim("ML-18")
@given(data=st.data())
def test_sigmoid_maps_into_0_1(data):
    "1/(1+exp(-x)): strictly inside (0, 1) (float64, |x| <= 30), increasing, 0.5 at 0, sigmoid(-x) = 1 - sigmoid(x)."
    k = data.draw(st.lists(st.integers(-30_000, 30_000), min_size=2, max_size=30, unique=True), label="x*1000")
    x = torch.tensor(sorted(k), dtype=torch.float64) / 1000
    s = torch.sigmoid(x)
    ref = np.array([1 / (1 + math.exp(-v)) for v in x.tolist()])
    assert np.allclose(s.numpy(), ref, rtol=1e-14, atol=0), f"x={x.tolist()}, sigmoid={s.tolist()}"
    assert ((s > 0) & (s < 1)).all() and (s.diff() > 0).all(), f"x={x.tolist()}, sigmoid={s.tolist()}"
    assert torch.allclose(torch.sigmoid(-x), 1 - s, rtol=0, atol=1e-15), "sigmoid(-x) != 1 - sigmoid(x)"
    assert torch.sigmoid(torch.zeros(1, dtype=torch.float64)).item() == 0.5 == torch.sigmoid(torch.zeros(1)).item()


@pytest.mark.claim("ML-18")
def test_sigmoid_float32_range_is_closed():
    """In float32 sigmoid is exactly 1.0 from x = ln(2**24) = 16.64 (1 + exp(-x) rounds to 1) and exactly 0.0 from
    x = -ln(FLT_MAX) = -88.72 (exp(-x) overflows), and strictly inside (0, 1) in between."""
    x = f32_grid(12, 20)
    s = torch.sigmoid(x)
    i = (s == 1).nonzero()[0].item()
    assert (s[i:] == 1).all() and (s[:i] < 1).all(), f"1.0 not a clean threshold at {x[i].item()}"
    assert x[i].item() == pytest.approx(math.log(2**24), abs=1e-3), f"1.0 first at x={x[i].item()}"
    ax = f32_grid(85, 92)
    s = torch.sigmoid(-ax)
    j = (s == 0).nonzero()[0].item()
    assert (s[j:] == 0).all() and (s[:j] > 0).all(), f"0.0 not a clean threshold at {-ax[j].item()}"
    flt_max = float(np.finfo(np.float32).max)
    assert ax[j].item() == pytest.approx(math.log(flt_max), abs=1e-3), f"0.0 first at x={-ax[j].item()}"
    ends = torch.sigmoid(torch.tensor([-math.inf, -flt_max, flt_max, math.inf]))
    assert ends.tolist() == [0.0, 0.0, 1.0, 1.0], f"the float32 range is not the closed [0, 1]: {ends}"


# ---------------------------------------------------------------- sigmoid_range (y_range)
@pytest.mark.claim("REG-12")
@given(data=st.data())
def test_sigmoid_range_never_leaves_bounds(backend, data):
    "For any finite input, however large, the output stays in [lo, hi] (closed: float rounding reaches the bounds)."
    lo, hi = data.draw(dyadic_bounds(), label="lo, hi")
    dt = data.draw(DTYPES, label="dtype")
    x = torch.tensor(data.draw(st.lists(f32, min_size=1, max_size=30), label="x"), dtype=dt)
    o = backend.sigmoid_range(x, lo, hi).double()
    assert ((o >= lo) & (o <= hi)).all(), f"output left [{lo}, {hi}]: x={x.tolist()}, out={o.tolist()}"


@pytest.mark.claim("REG-12")
@given(data=st.data())
def test_sigmoid_range_strictly_inside_in_float64(backend, data):
    "The sigmoid never reaches 0 or 1: in float64, for |x| <= 30, the output is strictly between lo and hi."
    lo, hi = data.draw(dyadic_bounds(), label="lo, hi")
    x = torch.tensor(data.draw(st.lists(st.floats(-30, 30), min_size=1, max_size=30), label="x"), dtype=torch.float64)
    o = backend.sigmoid_range(x, lo, hi)
    assert ((o > lo) & (o < hi)).all(), f"not strictly inside ({lo}, {hi}): x={x.tolist()}, out={o.tolist()}"


@pytest.mark.claim("REG-12")
@given(data=st.data())
def test_sigmoid_range_matches_the_formula(backend, data):
    "sigmoid(x)*(hi-lo)+lo, checked against math.exp in float64, for any real lo < hi (within rounding)."
    lo, hi = sorted(data.draw(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=2, unique=True), label="lo, hi"))
    xs = data.draw(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30), label="x")
    o = backend.sigmoid_range(torch.tensor(xs, dtype=torch.float64), lo, hi).numpy()
    sig = [1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x)) for x in xs]
    ref = np.array(sig) * (hi - lo) + lo
    tol = 8 * np.spacing(max(abs(lo), abs(hi)))
    assert np.abs(o - ref).max() <= tol, f"lo={lo}, hi={hi}, x={xs}, out={o.tolist()}, formula={ref.tolist()}"


@pytest.mark.claim("REG-12")
@given(data=st.data())
def test_sigmoid_range_midpoint_at_zero(backend, data):
    "At x = 0 the sigmoid is exactly 1/2, so the output is the middle of the range, (lo+hi)/2."
    lo, hi = data.draw(dyadic_bounds(), label="lo, hi")
    dt = data.draw(DTYPES, label="dtype")
    o = backend.sigmoid_range(torch.zeros(3, dtype=dt), lo, hi)
    assert (o.double() == (lo + hi) / 2).all(), f"at x=0 expected (lo+hi)/2={(lo + hi) / 2}, got {o.tolist()}"


@pytest.mark.claim("REG-12")
@given(data=st.data())
def test_sigmoid_range_is_monotonic(backend, data):
    "Non-decreasing in x for any inputs (float32); strictly increasing where float64 can resolve it."
    lo, hi = data.draw(dyadic_bounds(), label="lo, hi")
    x = torch.tensor(sorted(data.draw(st.lists(f32, min_size=2, max_size=30), label="x")), dtype=torch.float32)
    o = backend.sigmoid_range(x, lo, hi)
    assert (o.diff() >= 0).all(), f"not monotonic: x={x.tolist()}, out={o.tolist()}"
    k = data.draw(st.lists(st.integers(-20_000, 20_000), min_size=2, max_size=30, unique=True), label="x*1000")
    x = torch.tensor(sorted(k), dtype=torch.float64) / 1000  # |x| <= 20, gaps >= 1e-3
    o = backend.sigmoid_range(x, lo, hi)
    assert (o.diff() > 0).all(), f"not strictly increasing in float64: x={x.tolist()}, out={o.tolist()}"


@pytest.mark.claim("REG-12")
@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (0.0, 5.5), (0.0, 1.0)])
def test_sigmoid_range_float32_saturation(backend, lo, hi):
    """The bounds are reached in float32 from |x| of about 17, stated exactly:

    Let x0 be the smallest float32 with sigmoid_range(x0, lo, hi) == hi. Then every float32 x >= x0 gives exactly hi,
    every float32 x < x0 gives less than hi, and ln(2**24 - 1) <= x0 <= ln(2**25 - 1), i.e. 16.64 <= x0 <= 17.33:
    no faithfully rounded sigmoid can round up to 1 before 1 - sigmoid(x) < 2**-24 (one ulp below 1), and a correctly
    rounded one does from 1 - sigmoid(x) <= 2**-25. (PyTorch's CPU kernel gives ln(2**24) = 16.6355: 1 + exp(-x)
    rounds to 1.) The lower bound -1 of (-1, 1) is reached for x <= -ln(2**26) = -18.02 (2*sigmoid(x) < 2**-25);
    a lower bound 0 is not reached before x < -80. In float64 the output is strictly inside for |x| <= 36.
    """
    x = f32_grid(12, 20)
    o = backend.sigmoid_range(x, lo, hi)
    at = (o == hi).nonzero()
    assert len(at), f"sigmoid_range(x, {lo}, {hi}) never reached hi={hi} for float32 x in [12, 20]"
    i = at[0].item()
    x0 = x[i].item()
    assert (o[i:] == hi).all() and (o[:i] < hi).all(), f"saturation at hi={hi} not a clean threshold at {x0}"
    assert math.log(2**24 - 1) <= x0 <= math.log(2**25 - 1), f"first float32 x giving exactly hi={hi} is {x0}"
    big = torch.tensor([x0, 20.0, 100.0, 1e4, 3.4e38, math.inf], dtype=torch.float32)
    assert (backend.sigmoid_range(big, lo, hi) == hi).all(), f"x >= {x0} must give exactly {hi}"
    if lo == -1.0:  # the lower bound: x from -17 down to -19
        ax = f32_grid(17, 19)
        neg = backend.sigmoid_range(-ax, lo, hi)
        j = (neg == lo).nonzero()[0].item()
        assert (neg[j:] == lo).all() and (neg[:j] > lo).all(), f"-1 not a clean threshold at x={-ax[j].item()}"
        x1 = ax[j].item()
        assert x1 == pytest.approx(math.log(2**26), abs=1e-3), f"-1 first reached at x={-x1}"
    else:
        assert (backend.sigmoid_range(torch.tensor([-80.0]), lo, hi) > lo).all(), f"{lo} reached by x=-80"
    x64 = torch.linspace(-36, 36, 200_001, dtype=torch.float64)
    o64 = backend.sigmoid_range(x64, lo, hi)
    assert ((o64 > lo) & (o64 < hi)).all(), "float64 output reached a bound for |x| <= 36"


@pytest.mark.claim("REG-12")
@given(data=st.data())
def test_sigmoid_range_layer_is_the_function(backend, data):
    "SigmoidRange(lo, hi), the last layer that y_range adds, computes sigmoid_range(x, lo, hi)."
    lo, hi = data.draw(dyadic_bounds(), label="lo, hi")
    x = torch.tensor(data.draw(st.lists(f32, min_size=1, max_size=30), label="x"))
    m, f = backend.SigmoidRange(lo, hi)(x), backend.sigmoid_range(x, lo, hi)
    assert torch.equal(m, f), f"SigmoidRange({lo}, {hi})(x)={m.tolist()} != sigmoid_range={f.tolist()}"


# ---------------------------------------------------------------- one-hot and embeddings
@pytest.mark.claim("CF-11")
def test_one_hot_3_with_n_users(backend):
    "The lesson's example: one_hot(3, n_users) is a vector of n_users = 944 numbers with a single 1, at index 3."
    n_users = 944
    v = backend.one_hot(3, n_users)
    assert v.shape == (944,), f"length {tuple(v.shape)}, expected (944,)"
    assert v.dtype == torch.uint8 and v.sum() == 1 and v[3] == 1, f"dtype {v.dtype}, ones at {v.nonzero()}"
    torch.manual_seed(0)
    uf = torch.randn(n_users, 5)
    assert torch.equal(uf.t() @ v.float(), uf[3]), "user_factors.t() @ one_hot(3) != user_factors[3]"


@pytest.mark.claim("CF-22")
def test_one_hot_3_has_size_924(backend):
    "one_hot(3, n_users) has the length the lecture gives, 924 (n_users = 944)."
    v = backend.one_hot(3, 944)
    assert len(v) == 924, f"len(one_hot(3, 944)) = {len(v)}"


@pytest.mark.claim("CF-11")
@given(data=st.data())
def test_one_hot_matmul_is_indexing(backend, data):
    "For any n, index i < n and width k: one_hot(i, n) has one 1 at i, and M.t() @ one_hot(i, n) == M[i] exactly."
    n = data.draw(st.integers(1, 300), label="n")
    i = data.draw(st.integers(0, n - 1), label="i")
    k = data.draw(st.integers(1, 16), label="k")
    v = backend.one_hot(i, n)
    assert v.shape == (n,) and v.nonzero().flatten().tolist() == [i], f"one_hot({i}, {n}) = {v.tolist()}"
    m = torch.randn(n, k, generator=torch.Generator().manual_seed(n * 1000 + i))
    assert torch.equal(m.t() @ v.float(), m[i]), f"n={n}, i={i}, k={k}: {m.t() @ v.float()} != {m[i]}"


@pytest.mark.claim("CF-12")
@given(data=st.data())
def test_embedding_is_one_hot_matmul_in_values_and_gradients(backend, data):
    "Embedding(n, k)(idx) == one-hot rows @ W, and dLoss/dW is identical, repeated indices accumulating."
    n = data.draw(st.integers(1, 50), label="n")
    k = data.draw(st.integers(1, 8), label="k")
    idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=40), label="idx")
    torch.manual_seed(len(idx))
    emb = backend.Embedding(n, k)
    w = emb.weight.detach().clone().requires_grad_()
    t = torch.tensor(idx)
    look, mm = emb(t), torch.stack([backend.one_hot(i, n) for i in idx]).float() @ w
    assert torch.equal(look, mm), f"values differ: idx={idx}, lookup={look.tolist()}, matmul={mm.tolist()}"
    g = torch.randn(len(idx), k)
    (look * g).sum().backward()
    (mm * g).sum().backward()
    ref = np.zeros((n, k))
    np.add.at(ref, np.array(idx), g.double().numpy())  # each row's gradient: the sum of g over its occurrences
    assert torch.allclose(emb.weight.grad, w.grad, atol=1e-5), f"gradients differ: idx={idx}"
    assert np.allclose(emb.weight.grad.double().numpy(), ref, atol=1e-5), f"not the sum of g over idx={idx}"


# ---------------------------------------------------------------- dot products (PyTorch/numpy only)
@pytest.mark.claim("CF-2")
def test_dot_product_examples():
    "user1 . last_skywalker = 2.142 (printed 2.1420000000000003), user1 . casablanca = -1.611."
    last_skywalker = np.array([0.98, 0.9, -0.9])
    user1 = np.array([0.9, 0.8, -0.6])
    casablanca = np.array([-0.99, -0.3, 0.8])
    sw, ca = (user1 * last_skywalker).sum(), (user1 * casablanca).sum()
    assert sw == pytest.approx(2.142, abs=1e-12) and repr(float(sw)) == "2.1420000000000003", f"got {sw!r}"
    assert ca == pytest.approx(-1.611, abs=1e-12), f"user1 . casablanca = {ca!r}"
    t = torch.tensor(user1, dtype=torch.float32)
    assert (t * torch.tensor(last_skywalker, dtype=torch.float32)).sum().item() == pytest.approx(2.142, rel=1e-6)


@pytest.mark.claim("CF-3")
@given(data=st.data())
def test_elementwise_product_summed_is_matmul(data):
    "(a*b) is element-wise with a's shape; (a*b).sum() == a @ b, the dot product, for any 1-D vectors."
    n = data.draw(st.integers(1, 64), label="n")
    v = st.lists(st.floats(-100, 100), min_size=n, max_size=n)
    a, b = (torch.tensor(data.draw(v, label=k), dtype=torch.float64) for k in ("a", "b"))
    assert (a * b).shape == a.shape and torch.equal(a * b, torch.tensor(a.numpy() * b.numpy())), "a*b"
    assert (a * b).sum().item() == pytest.approx((a @ b).item(), abs=1e-9), f"a={a.tolist()}, b={b.tolist()}"


# ---------------------------------------------------------------- impl's errors
@pytest.mark.claim("IMPL-5")
@given(lo=st.floats(-10, 10), gap=st.floats(0, 10))
def test_impl_sigmoid_range_rejects_lo_ge_hi(lo, gap):
    with pytest.raises(ValueError, match=r"lo < hi.*lo=.*hi="):
        L.sigmoid_range(torch.zeros(2), lo, lo - gap)
    with pytest.raises(ValueError, match=r"lo < hi"):
        L.SigmoidRange(lo, lo - gap)


@pytest.mark.claim("IMPL-5")
def test_impl_layer_errors():
    with pytest.raises(ValueError, match="lo must be finite"):
        L.sigmoid_range(torch.zeros(2), math.nan, 1)
    with pytest.raises(TypeError, match="hi must be a real number"):
        L.sigmoid_range(torch.zeros(2), 0, "1")
    with pytest.raises(ValueError, match=r"n \(the number of classes\) must be >= 1, got 0"):
        L.one_hot(0, 0)
    for n, shown in [(2.0, "2.0"), (True, "True"), ("3", "'3'")]:
        with pytest.raises(TypeError, match=rf"^n must be an int, got {shown}$"):
            L.one_hot(0, n)
    for i in (5, -1, [1, 7]):
        with pytest.raises(ValueError, match=r"i must lie in \[0, 5\)"):
            L.one_hot(i, 5)
    with pytest.raises(TypeError, match="i must hold integers"):
        L.one_hot(1.0, 5)
    with pytest.raises(ValueError, match=r"equal last dimensions.*\(3,\) and \(4,\)"):
        L.dot(torch.ones(3), torch.ones(4))


# ---------------------------------------------------------------- impl's own helpers and options
@pytest.mark.claim("IMPL-18")
@given(data=st.data())
def test_impl_one_hot_matmul_and_dot(data):
    "one_hot_matmul(idx, w) == w[idx] exactly (any shape of idx); dot(a, b) == (a*b).sum(-1), row by row."
    n, k = data.draw(st.integers(1, 30), label="n"), data.draw(st.integers(1, 8), label="k")
    shp = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2), label="idx shape"))
    idx = torch.tensor(data.draw(st.lists(st.integers(0, n - 1), min_size=math.prod(shp), max_size=math.prod(shp)),
                                 label="idx")).view(shp)
    w = torch.randn(n, k, generator=torch.Generator().manual_seed(n * 100 + k), dtype=torch.float64)
    got = L.one_hot_matmul(idx, w)
    assert got.shape == (*shp, k) and torch.equal(got, w[idx]), f"IMPL-18: one_hot_matmul({idx.tolist()}) != w[idx]"
    a, b = w[idx], w.flip(0)[idx]
    ref = np.einsum("...k,...k->...", a.numpy(), b.numpy())
    assert np.allclose(L.dot(a, b).numpy(), ref, rtol=1e-12, atol=1e-12), "IMPL-18: dot(a, b) is not row by row"


@pytest.mark.claim("IMPL-18")
def test_impl_sigmoid_range_options():
    "One-element tensor bounds act as numbers; the layer shows its bounds; an empty input gives an empty output."
    x = torch.linspace(-5, 5, 11)
    got = L.sigmoid_range(x, torch.tensor(-1.0), torch.tensor([2.0]))
    assert torch.equal(got, L.sigmoid_range(x, -1.0, 2.0)), "IMPL-18: tensor bounds differ from number bounds"
    assert repr(L.SigmoidRange(-1, 1)) == "SigmoidRange(lo=-1, hi=1)", f"IMPL-18: {L.SigmoidRange(-1, 1)!r}"
    assert L.SigmoidRange(0, 5.5)(torch.zeros(0, 3)).shape == (0, 3), "IMPL-18: empty input"
    with pytest.raises(TypeError, match="lo must be a real number"):
        L.sigmoid_range(x, torch.tensor([0.0, 1.0]), 2.0)


@pytest.mark.claim("IMPL-18")
def test_impl_trunc_normal_defaults_are_fastais():
    "trunc_normal_(x) with its defaults (mean 0, std 1, as fastai's): a standard normal folded into (-2, 2) by fmod."
    torch.manual_seed(0)
    want = torch.empty(2000).normal_().fmod_(2)
    torch.manual_seed(0)
    got = L.trunc_normal_(torch.empty(2000))
    assert torch.equal(got, want), f"IMPL-18: trunc_normal_(x) max |got - want| {(got - want).abs().max():.3g}"
