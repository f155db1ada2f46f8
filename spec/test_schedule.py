"""Schedules: per-group LRs from a slice (discriminative LRs), the cosine (1cycle) and exponential (LR finder) ones."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl.schedule as S

lr = st.floats(-8, 1).map(lambda e: 10.0**e)  # a learning rate, log-uniform in [1e-8, 10]
pos = st.floats(0, 1)


# ---------------------------------------------------------------- discriminative learning rates
@pytest.mark.claim("DLR-1")
def test_slice_1e6_1e4_on_three_groups(backend):
    "The lesson's slice(1e-6, 1e-4) on a resnet's 3 parameter groups: 1e-6, 1e-5, 1e-4."
    got = backend.lrs_for(slice(1e-6, 1e-4), 3)
    assert got == pytest.approx([1e-6, 1e-5, 1e-4], rel=1e-12), f"got {got}"


@pytest.mark.claim("DLR-1")
@given(data=st.data())
def test_slice_gives_geometric_lrs(backend, data):
    "slice(a, b) on n groups: a first, b last, log-spaced: a*(b/a)**(i/(n-1)), = even_mults(a, b, n)."
    a, b = data.draw(lr, label="a"), data.draw(lr, label="b")
    n = data.draw(st.integers(2, 12), label="n")
    got, em = backend.lrs_for(slice(a, b), n), backend.even_mults(a, b, n)
    ref = [math.exp(math.log(a) + i / (n - 1) * (math.log(b) - math.log(a))) for i in range(n)]
    assert list(got) == pytest.approx(ref, rel=1e-9), f"slice({a}, {b}) on {n} groups: {got}, expected {ref}"
    assert list(em) == pytest.approx(ref, rel=1e-9), f"even_mults({a}, {b}, {n}) = {em}, expected {ref}"
    steps = np.diff(np.log(got))
    assert np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9), f"log-steps not equal: {steps}"


@pytest.mark.claim("DLR-2")
@given(data=st.data())
def test_slice_without_start_float_and_list(backend, data):
    "slice(b) -> b/10 for every group but the last, b for the last; a float -> the same for all; a list of n -> itself."
    b = data.draw(lr, label="b")
    n = data.draw(st.integers(1, 12), label="n")
    got = backend.lrs_for(slice(b), n)
    assert list(got) == pytest.approx([b / 10] * (n - 1) + [b], rel=1e-12), f"slice({b}) on {n}: {got}"
    assert list(backend.lrs_for(b, n)) == [b] * n, f"lr={b} on {n} groups: {backend.lrs_for(b, n)}"
    lrs = data.draw(st.lists(lr, min_size=n, max_size=n), label="list")
    assert list(backend.lrs_for(lrs, n)) == lrs, f"list {lrs} on {n} groups: {backend.lrs_for(lrs, n)}"


@pytest.mark.claim("DLR-2")
def test_slice_3e3_on_three_groups(backend):
    got = backend.lrs_for(slice(3e-3), 3)
    assert got == pytest.approx([3e-4, 3e-4, 3e-3], rel=1e-12), f"slice(3e-3) on 3 groups: {got}"


@pytest.mark.claim("DLR-2")
@given(data=st.data())
def test_wrong_length_list_is_an_error(backend, data):
    "A list whose length is not the number of groups (nor 1) is rejected, naming both numbers."
    n = data.draw(st.integers(2, 8), label="n")
    k = data.draw(st.integers(2, 9).filter(lambda k: k != n), label="len(list)")
    with pytest.raises((ValueError, AssertionError), match=rf"{k} values .* {n} parameter groups"):
        backend.lrs_for([1e-3] * k, n)


# ---------------------------------------------------------------- cosine annealing (1cycle)
def cos_ref(s, e, p):
    return s + (1 + math.cos(math.pi * (1 - p))) * (e - s) / 2


@pytest.mark.claim("OC-3")
@given(data=st.data())
def test_sched_cos_formula(backend, data):
    "sched_cos(s, e, p) = s + (1+cos(pi*(1-p)))*(e-s)/2: s at p=0, e at p=1, (s+e)/2 at p=1/2, monotonic in between."
    s, e = data.draw(lr, label="s"), data.draw(lr, label="e")
    p = data.draw(pos, label="p")
    got = backend.sched_cos(s, e, p)
    assert got == pytest.approx(cos_ref(s, e, p), rel=1e-12, abs=1e-15), f"sched_cos({s}, {e}, {p}) = {got}"
    ends = [backend.sched_cos(s, e, q) for q in (0.0, 0.5, 1.0)]
    assert ends == pytest.approx([s, (s + e) / 2, e], rel=1e-12), f"at p=0, .5, 1: {ends}"
    ps = sorted(data.draw(st.lists(pos, min_size=2, max_size=20), label="ps"))
    v = np.sign(e - s) * np.array([backend.sched_cos(s, e, q) for q in ps])
    assert (np.diff(v) >= -1e-15 * max(s, e)).all(), f"not monotonic from {s} to {e}: {v.tolist()}"


@pytest.mark.claim("OC-3")
def test_combined_cos_example(backend):
    "combined_cos(0.25, .04, 1, 1e-5) at p = 0, .125, .25, .5, 1 -> 0.04, 0.52, 1.0, 0.7500025, 1e-5."
    f = backend.combined_cos(0.25, 0.04, 1, 1e-5)
    got = [f(p) for p in (0.0, 0.125, 0.25, 0.5, 1.0)]
    assert got == pytest.approx([0.04, 0.52, 1.0, 0.7500025, 1e-5], rel=1e-6, abs=1e-8), f"{got}"


@pytest.mark.claim("OC-3")
@given(data=st.data())
def test_combined_cos_is_two_cosines(backend, data):
    "combined_cos(pct, a, b, c)(p) is cos a->b at p/pct for p < pct, then cos b->c at (p-pct)/(1-pct); b at p=pct."
    pct = data.draw(st.floats(0.05, 0.95), label="pct")
    a, b, c = (data.draw(lr, label=k) for k in ("start", "middle", "end"))
    p = data.draw(pos, label="p")
    ref = cos_ref(a, b, p / pct) if p < pct else cos_ref(b, c, (p - pct) / (1 - pct))
    got = backend.combined_cos(pct, a, b, c)(p)
    tol = 1e-5 * max(a, b, c)  # fastai computes the position within a phase in float32
    assert got == pytest.approx(ref, abs=tol), f"combined_cos({pct}, {a}, {b}, {c})({p}) = {got}, expected {ref}"
    ends = [backend.combined_cos(pct, a, b, c)(q) for q in (0.0, pct, 1.0)]
    assert ends == pytest.approx([a, b, c], abs=tol), f"at 0, pct, 1: {ends}, expected {[a, b, c]}"


# ---------------------------------------------------------------- the other annealers and combine_scheds
val = st.floats(-10, 10)


@pytest.mark.claim("OC-6")
@given(data=st.data())
def test_annealers_formulas(backend, data):
    "sched_lin/no/exp(start, end, pos) and SchedLin/Cos/No/Exp(start, end)(pos), SchedPoly(start, end, power)(pos)."
    s, e, p = data.draw(val, label="start"), data.draw(val, label="end"), data.draw(pos, label="pos")
    a, b = data.draw(lr, label="exp start"), data.draw(lr, label="exp end")
    power = data.draw(st.floats(0.1, 5), label="power")
    cases = [
        ("sched_lin", backend.sched_lin(s, e, p), s + p * (e - s)),
        ("SchedLin", backend.SchedLin(s, e)(p), s + p * (e - s)),
        ("sched_no", backend.sched_no(s, e, p), s),
        ("SchedNo", backend.SchedNo(s, e)(p), s),
        ("SchedCos", backend.SchedCos(s, e)(p), cos_ref(s, e, p)),
        ("sched_exp", backend.sched_exp(a, b, p), math.exp(math.log(a) + p * (math.log(b) - math.log(a)))),
        ("SchedExp", backend.SchedExp(a, b)(p), math.exp(math.log(a) + p * (math.log(b) - math.log(a)))),
        ("SchedPoly", backend.SchedPoly(s, e, power)(p), s + (e - s) * p**power),
    ]
    for name, got, ref in cases:
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-12), f"{name} at pos={p}: {got}, expected {ref}"
    ends = [backend.SchedPoly(s, e, power)(q) for q in (0.0, 1.0)]
    assert ends == pytest.approx([s, e], abs=1e-12), f"SchedPoly({s}, {e}, {power}) at 0, 1: {ends}"


@pytest.mark.claim("OC-6")
@given(data=st.data())
def test_combine_scheds_runs_each_phase_in_its_fraction(backend, data):
    "Phase i covers [sum(pcts[:i]), sum(pcts[:i+1])) and runs scheds[i] over it, its position rescaled to [0, 1]."
    w = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).filter(lambda w: sum(w) <= 8), label="eighths")
    w[-1] += 8 - sum(w)
    pcts = [k / 8 for k in w]  # exact sums (fastai asserts sum == 1) and boundaries exact in fastai's float32
    ends = [(data.draw(val, label="start"), data.draw(val, label="end")) for _ in w]
    f = backend.combine_scheds(pcts, [backend.SchedLin(*se) for se in ends])
    p = data.draw(pos, label="pos")
    cuts = np.cumsum([0.0] + pcts)
    i = min(int(np.searchsorted(cuts, p, side="right")) - 1, len(w) - 1)
    local = (p - cuts[i]) / pcts[i]
    ref = ends[i][0] + local * (ends[i][1] - ends[i][0])
    tol = 1e-5 * max(1.0, *(abs(v) for se in ends for v in se))  # fastai computes the position in float32
    assert f(p) == pytest.approx(ref, abs=tol), f"combine_scheds({pcts}, lin {ends})({p}) = {f(p)}, want {ref}"
    starts = [f(c) for c in cuts[:-1]]
    assert starts == pytest.approx([se[0] for se in ends], abs=tol), f"each phase starts at its start: {starts}"
    assert f(1.0) == pytest.approx(ends[-1][1], abs=tol), f"pos 1 ends the last phase: {f(1.0)}"


@pytest.mark.claim("OC-6", "OC-3")
@given(data=st.data())
def test_combined_cos_is_combine_scheds_of_two_cosines(backend, data):
    "combined_cos(pct, a, b, c) == combine_scheds([pct, 1-pct], [SchedCos(a, b), SchedCos(b, c)]) at every pos."
    pct = data.draw(st.floats(0.05, 0.95), label="pct")
    a, b, c = (data.draw(lr, label=k) for k in ("start", "middle", "end"))
    p = data.draw(pos, label="pos")
    got = backend.combined_cos(pct, a, b, c)(p)
    ref = backend.combine_scheds([pct, 1 - pct], [backend.SchedCos(a, b), backend.SchedCos(b, c)])(p)
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-15), f"combined_cos({pct}, {a}, {b}, {c})({p})"


# ---------------------------------------------------------------- the LR finder's exponential schedule
@pytest.mark.claim("LR-3")
def test_lr_finder_schedule_defaults(backend):
    "1e-7 to 10 over 100 batches: the first LR is exactly 1e-7, each next is 10**0.08 = 1.2023 times the last."
    lrs = backend.lr_finder_schedule()
    assert len(lrs) == 100 and lrs[0] == 1e-7, f"{len(lrs)} LRs starting at {lrs[0]}"
    ratio = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert np.allclose(ratio, 10**0.08, rtol=1e-9), f"ratios {ratio.min()}..{ratio.max()}, expected 10**0.08"
    assert 10**0.08 == pytest.approx(1.2022644, rel=1e-7) and abs(10**0.08 - 1.25) > 0.04, "10**0.08"
    expect = [10 ** (-7 + 0.08 * i) for i in range(100)]
    assert lrs == pytest.approx(expect, rel=1e-9), f"LRs are not 10**(-7 + 0.08 i); last {lrs[-1]}"


@pytest.mark.claim("LR-14")
def test_lr_finder_step_is_25_percent(backend):
    "Each step of the finder's schedule multiplies the LR by the lecture's 1.25."
    lrs = backend.lr_finder_schedule()
    ratio = lrs[1] / lrs[0]
    assert ratio == pytest.approx(1.25, rel=1e-3), f"each step multiplies by {ratio}"


@pytest.mark.claim("LR-3")
@given(data=st.data())
def test_sched_exp_has_a_constant_ratio(backend, data):
    "sched_exp(s, e, p) = s*(e/s)**p; the finder's LR i is sched_exp at i/num_it: ratio (e/s)**(1/num_it) each step."
    s, e = data.draw(lr, label="start_lr"), data.draw(lr, label="end_lr")
    p = data.draw(pos, label="p")
    got = backend.sched_exp(s, e, p)
    assert got == pytest.approx(math.exp(math.log(s) + p * (math.log(e) - math.log(s))), rel=1e-9), f"{got}"
    n = data.draw(st.integers(6, 300), label="num_it")
    lrs = backend.lr_finder_schedule(s, e, n)
    assert len(lrs) == n and lrs[0] == pytest.approx(s, rel=1e-12), f"{len(lrs)} LRs from {lrs[0]}"
    ratio = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert np.allclose(ratio, (e / s) ** (1 / n), rtol=1e-9), f"ratio not constant (e/s)**(1/{n}): {ratio}"


# ---------------------------------------------------------------- impl's errors
@pytest.mark.claim("IMPL-5")
def test_impl_lrs_for_errors():
    with pytest.raises(ValueError, match=r"lr has 2 values but there are 3 parameter groups"):
        S.lrs_for([1e-3, 1e-2], 3)
    with pytest.raises(ValueError, match=r"n \(the number of parameter groups\) must be >= 1, got 0"):
        S.lrs_for(1e-3, 0)
    with pytest.raises(ValueError, match=r"lr slice must not have a step"):
        S.lrs_for(slice(1e-5, 1e-3, 2), 3)
    with pytest.raises(ValueError, match=r"lr slice needs a stop"):
        S.lrs_for(slice(1e-5, None), 3)
    with pytest.raises(ValueError, match=r"lr\[1\] must be >= 0, got -0.1"):
        S.lrs_for([1e-3, -0.1], 2)
    with pytest.raises(ValueError, match=r"lr must be finite, got nan"):
        S.lrs_for(math.nan, 2)
    with pytest.raises(TypeError, match=r"lr must be a real number, got '1e-3'"):
        S.lrs_for("1e-3", 2)
    with pytest.raises(TypeError, match=r"n must be an int, got 2.0"):
        S.lrs_for(1e-3, 2.0)


@pytest.mark.claim("IMPL-5")
@given(n=st.integers(-5, 0))
def test_impl_even_mults_errors(n):
    with pytest.raises(ValueError, match=rf"n must be >= 1, got {n}"):
        S.even_mults(1e-5, 1e-3, n)
    with pytest.raises(ValueError, match=r"start and stop must be > 0, got start=0.0"):
        S.even_mults(0, 1e-3, 3)
    assert S.even_mults(1e-5, 1e-3, 1) == 1e-3, "IMPL-20: even_mults(a, b, 1) is b itself, as in fastcore"


@pytest.mark.claim("IMPL-5")
@given(p=st.one_of(st.floats(-10, -1e-9), st.floats(1 + 1e-9, 10)))
def test_impl_schedules_reject_p_outside_0_1(p):
    for bad in (p, torch.tensor([0.5, p], dtype=torch.float64), np.array([p, 0.5])):
        for f in (S.sched_lin, S.sched_cos, S.sched_exp, S.sched_no, lambda s, e, q: S.combined_cos(0.25, s, 2, e)(q)):
            with pytest.raises(ValueError, match=r"pos must lie in \[0, 1\], got"):
                f(1.0, 3.0, bad)


@pytest.mark.claim("IMPL-5")
def test_impl_schedule_argument_errors():
    with pytest.raises(ValueError, match=r"start must be > 0 for an exponential schedule, got 0.0"):
        S.sched_exp(0, 1, 0.5)
    with pytest.raises(ValueError, match=r"end must be > 0 for an exponential schedule, got -1.0"):
        S.sched_exp(1, -1, 0.5)
    for pct in (0, 1, -0.5, 1.5):
        with pytest.raises(ValueError, match=rf"pct must lie strictly between 0 and 1, got {float(pct)}"):
            S.combined_cos(pct, 1, 2, 3)
    with pytest.raises(ValueError, match=r"middle must be finite, got inf"):
        S.combined_cos(0.3, 1, math.inf, 3)


# ---------------------------------------------------------------- impl's schedules on arrays, tensors and edge inputs
@pytest.mark.claim("IMPL-20")
@pytest.mark.parametrize("kind", [np.array, lambda v: torch.tensor(v, dtype=torch.float64)], ids=["numpy", "torch"])
def test_impl_schedules_take_arrays_and_tensors(kind):
    "A numpy array or torch tensor of positions gives the schedule at each element, as the same kind of object."
    ps = [0.0, 0.125, 0.25, 0.5, 1.0]
    p = kind(ps)
    cases = [
        ("sched_lin", S.sched_lin(1, 3, p), [1 + 2 * q for q in ps]),
        ("sched_cos", S.sched_cos(1, 3, p), [cos_ref(1, 3, q) for q in ps]),
        ("SchedCos", S.SchedCos(3, 1)(p), [cos_ref(3, 1, q) for q in ps]),
        ("sched_exp", S.sched_exp(1, 16, p), [16**q for q in ps]),
        ("SchedPoly", S.SchedPoly(1, 3, 2)(p), [1 + 2 * q**2 for q in ps]),
        ("combined_cos", S.combined_cos(0.25, 1, 5, 2)(p), [1, 3, 5, cos_ref(5, 2, 1 / 3), 2]),
    ]
    for name, got, ref in cases:
        assert type(got) is type(p), f"{name} of a {type(p).__name__} returned a {type(got).__name__}"
        assert np.allclose(np.asarray(got), ref, rtol=1e-12, atol=0), f"{name} at {ps}: {got}, expected {ref}"


@pytest.mark.claim("IMPL-5")
def test_impl_pos_errors_name_the_bad_value():
    "pos outside [0, 1] (or nan) is named in the error, the first bad element of an array or tensor; a bool is no pos."
    for bad, shown in [(torch.tensor([0.5, -0.25, 2.0]), "-0.25"), (np.array([[0.5], [1.5]]), "1.5"),
                       (np.array([0.0, np.nan]), "nan"), (1.5, "1.5"), (-0.5, "-0.5")]:
        with pytest.raises(ValueError, match=rf"^pos must lie in \[0, 1\], got {shown}$"):
            S.sched_lin(0, 1, bad)
    with pytest.raises(TypeError, match=r"^pos must be a real number, got True$"):
        S.sched_cos(0, 1, True)
    with pytest.raises(ValueError, match=r"^pos must be finite, got inf$"):
        S.sched_no(0, 1, math.inf)
    assert S.sched_lin(0, 1, torch.tensor([0.0, 1.0])).tolist() == [0.0, 1.0], "0 and 1 are inside"


@pytest.mark.claim("IMPL-5")
def test_impl_schedule_number_errors():
    "start, end and power: a bool or a string is a TypeError, inf a ValueError, each naming the argument."
    with pytest.raises(TypeError, match=r"^start must be a real number, got True$"):
        S.sched_lin(True, 1, 0.5)
    with pytest.raises(TypeError, match=r"^end must be a real number, got 'x'$"):
        S.sched_no(1, "x", 0.5)
    with pytest.raises(TypeError, match=r"^start must be a real number, got None$"):
        S.sched_no(None, 1, 0.5)
    with pytest.raises(ValueError, match=r"^end must be finite, got inf$"):
        S.sched_cos(0, math.inf, 0.5)
    with pytest.raises(ValueError, match=r"^pos must lie in \[0, 1\], got 2.0$"):
        S.sched_no(1, 2, 2)
    assert S.sched_no(np.float32(2), 5, 0.5) == 2.0 and S.sched_lin(0, 4, np.float64(0.25)) == 1.0, "numpy reals"
    with pytest.raises(ValueError, match=r"^power must be > 0, got 0.0$"):
        S.SchedPoly(1, 2, 0)
    with pytest.raises(TypeError, match=r"^power must be a real number, got 'x'$"):
        S.SchedPoly(1, 2, "x")
    with pytest.raises(TypeError, match=r"^end must be a real number, got 'x'$"):
        S.SchedPoly(1, "x", 2)
    with pytest.raises(TypeError, match=r"^start must be a real number, got 'x'$"):
        S.SchedPoly("x", 1, 2)
    assert S.SchedPoly(1, 3, 0.5)(0.25) == pytest.approx(2.0, rel=1e-15), "1 + 2 * 0.25**0.5"
    assert S.sched_exp(2, 2, 0.7) == pytest.approx(2.0, rel=1e-15), "start == end: constant"


@pytest.mark.claim("IMPL-5")
def test_impl_sched_constructors_check_their_arguments_at_once():
    "SchedLin/Cos/No/Exp(start, end) reject bad start or end when made, not at the first pos."
    for make in (S.SchedLin, S.SchedCos, S.SchedNo, S.SchedExp):
        with pytest.raises(TypeError, match=r"^start must be a real number, got 'a'$"):
            make("a", 1)
        with pytest.raises(ValueError, match=r"^end must be finite, got nan$"):
            make(1, math.nan)
    with pytest.raises(ValueError, match=r"^start must be > 0 for an exponential schedule, got -1.0$"):
        S.SchedExp(-1, 1)
    with pytest.raises(ValueError, match=r"^end must be > 0 for an exponential schedule, got 0.0$"):
        S.SchedExp(1, 0)
    f = S.SchedExp(1e-3, 1e-1)
    assert [f(0), f(0.5), f(1)] == pytest.approx([1e-3, 1e-2, 1e-1], rel=1e-12), "SchedExp(1e-3, 1e-1)"


@pytest.mark.claim("IMPL-20")
def test_impl_combine_scheds_errors():
    "combine_scheds rejects mismatched, negative or not-summing pcts, non-functions and a multi-element pos."
    lin = S.SchedLin(0, 1)
    with pytest.raises(ValueError, match=r"^combine_scheds needs one pct per schedule, got 0 pcts and 0 schedules$"):
        S.combine_scheds([], [])
    with pytest.raises(ValueError, match=r"^combine_scheds needs one pct per schedule, got 2 pcts and 1 schedules$"):
        S.combine_scheds((0.5, 0.5), (lin,))
    with pytest.raises(TypeError, match=r"^pcts\[1\] must be a real number, got 'x'$"):
        S.combine_scheds([0.5, "x"], [lin, lin])
    with pytest.raises(ValueError, match=r"^pcts must be >= 0 and add up to 1, got \[1.5, -0.5\]$"):
        S.combine_scheds([1.5, -0.5], [lin, lin])
    for pcts in ([0.5, 0.4], [0.5, 0.5 + 1e-8], [0.5, 0.5 - 1e-8]):
        with pytest.raises(ValueError, match=r"^pcts must be >= 0 and add up to 1, got"):
            S.combine_scheds(pcts, [lin, lin])
    f = S.combine_scheds([0.5, 0.5 + 1e-10], [lin, S.SchedLin(2, 3)])  # within 1e-9 of 1
    assert f(0.75) == pytest.approx(2.5, rel=1e-8) and f(1.0) == 3.0, f"{f(0.75)}, {f(1.0)}"
    with pytest.raises(TypeError, match=r"^scheds must be functions of pos, got \[3\]$"):
        S.combine_scheds([1.0], [3])
    with pytest.raises(TypeError, match=r"^combine_scheds' schedule takes one pos at a time, got shape \(2,\)$"):
        S.combine_scheds([1.0], [lin])(torch.tensor([0.25, 0.5]))
    with pytest.raises(TypeError, match=r"^combine_scheds' schedule takes one pos at a time, got shape \(1, 2\)$"):
        S.combine_scheds([1.0], [lin])(np.array([[0.25, 0.5]]))
    with pytest.raises(ValueError, match=r"^pos must lie in \[0, 1\], got 1.5$"):
        S.combine_scheds([1.0], [lin])(1.5)


@pytest.mark.claim("IMPL-20")
def test_impl_combine_scheds_one_element_pos_and_zero_length_phases():
    "A one-element tensor or array is a pos; zero-length phases never apply; float rounding never passes a phase's end."
    f = S.combine_scheds([0.25, 0.75], [S.SchedLin(0, 1), S.SchedLin(10, 13)])
    assert f(torch.tensor([0.5])) == pytest.approx(11.0, rel=1e-12) and f(np.array(0.125)) == 0.5, "one element"
    g = S.combine_scheds([0, 0.5, 0, 0.5, 0], [S.SchedLin(-9, -9)] + [S.SchedLin(0, 1), S.SchedLin(-9, -9)] * 2)
    assert [g(p) for p in (0.0, 0.25, 0.5, 0.75, 1.0)] == [0.0, 0.5, 0.0, 0.5, 1.0], "zero-length phases skipped"
    h = S.combine_scheds([1.0], [S.SchedLin(2, 6)])
    assert [h(0.0), h(0.25), h(1.0)] == [2.0, 3.0, 6.0], "one phase: the schedule itself"
    # np.cumsum of ten 0.1s ends at 0.9999999999999999, so at pos 1 the tenth phase's position is a hair above 1
    k = S.combine_scheds([0.1] * 10 + [0], [S.SchedLin(0, 1)] * 11)
    assert k(1.0) == 1.0, "pos 1 is the end (position 1) of the last phase of positive length"
    assert k(0.95) == pytest.approx(0.5, rel=1e-9), "the middle of the tenth phase"


@pytest.mark.claim("IMPL-20")
def test_impl_even_mults_and_lrs_for_edges():
    "even_mults and lrs_for on one group, a tuple, zero LRs and wrongly typed arguments."
    assert S.even_mults(1e-4, 1e-2, 3) == pytest.approx([1e-4, 1e-3, 1e-2], rel=1e-12), "even_mults(1e-4, 1e-2, 3)"
    assert S.even_mults(1, 8, 4) == pytest.approx([1, 2, 4, 8], rel=1e-12), "even_mults(1, 8, 4)"
    assert S.lrs_for(slice(1e-5, 1e-3), 1) == [1e-3] and S.lrs_for(slice(1e-3), 1) == [1e-3], "one group: [hi]"
    assert S.lrs_for(slice(None, 2e-3), 2) == pytest.approx([2e-4, 2e-3], rel=1e-15), "slice(None, b)"
    assert S.lrs_for((1e-3, 0), 2) == [1e-3, 0.0] and S.lrs_for(0, 2) == [0.0, 0.0], "an LR of 0 is allowed"
    with pytest.raises(ValueError, match=r"^lr must be >= 0, got -0.001$"):
        S.lrs_for(-1e-3, 2)
    with pytest.raises(TypeError, match=r"^lr.start must be a real number, got 'a'$"):
        S.lrs_for(slice("a", 1e-3), 3)
    with pytest.raises(TypeError, match=r"^lr.stop must be a real number, got 'b'$"):
        S.lrs_for(slice(1e-5, "b"), 3)
    with pytest.raises(TypeError, match=r"^lr.stop must be a real number, got 'b'$"):
        S.lrs_for(slice("b"), 3)
    with pytest.raises(ValueError, match=r"^lr slice must not have a step, got slice\(None, 0.001, 1\)$"):
        S.lrs_for(slice(None, 1e-3, 1), 3)
    with pytest.raises(ValueError, match=r"^lr slice needs a stop \(the last group's LR\), got slice\(0.1, None, No"):
        S.lrs_for(slice(0.1, None), 3)
    with pytest.raises(ValueError, match=r"^lr has 1 values but there are 2 parameter groups$"):
        S.lrs_for((1e-3,), 2)
    for n in (True, 2.0, "2"):
        with pytest.raises(TypeError, match=rf"^n must be an int, got {re.escape(repr(n))}$"):
            S.lrs_for(1e-3, n)
        with pytest.raises(TypeError, match=rf"^n must be an int, got {re.escape(repr(n))}$"):
            S.even_mults(1e-3, 1e-2, n)
    with pytest.raises(ValueError, match=r"^n \(the number of parameter groups\) must be >= 1, got -1$"):
        S.lrs_for(1e-3, -1)
    for a, b in ((1e-3, 0), (-1e-3, 1e-2)):
        msg = rf"^start and stop must be > 0, got start={float(a)!r}, stop={float(b)!r}$"
        with pytest.raises(ValueError, match=msg):
            S.even_mults(a, b, 3)
    with pytest.raises(TypeError, match=r"^stop must be a real number, got None$"):
        S.even_mults(1e-3, None, 3)
    with pytest.raises(TypeError, match=r"^start must be a real number, got None$"):
        S.even_mults(None, 1e-3, 3)
    with pytest.raises(ValueError, match=r"^pct must be finite, got nan$"):
        S.combined_cos(math.nan, 1, 2, 3)
    with pytest.raises(TypeError, match=r"^end must be a real number, got 'e'$"):
        S.combined_cos(0.5, 1, 2, "e")
    with pytest.raises(TypeError, match=r"^start must be a real number, got 's'$"):
        S.combined_cos(0.5, "s", 2, 3)


@pytest.mark.claim("IMPL-20")
@pytest.mark.parametrize("kind", [float, np.array, lambda v: torch.tensor(v, dtype=torch.float64)],
                         ids=["float", "numpy", "torch"])
def test_impl_combined_cos_at_pct_is_the_second_phase_start(kind):
    """At pos == pct the second phase applies (as in combine_scheds and fastai): exactly `middle`. The first phase's
    end would be 0.7 + (1 + cos 0) * (0.1 - 0.7) / 2 = 0.09999999999999998 in floats, not 0.1."""
    assert 0.7 + (1 + math.cos(0.0)) * (0.1 - 0.7) / 2 != 0.1, "the two phases' values at pct differ in floats"
    got = S.combined_cos(0.5, 0.7, 0.1, 0.5)(kind([0.5]) if kind is not float else 0.5)
    assert float(np.asarray(got).ravel()[0]) == 0.1, f"at pos == pct: {got!r}, expected exactly 0.1 (middle)"


@pytest.mark.claim("IMPL-20")
def test_impl_sched_cos_is_fastais_formula_bit_for_bit():
    """sched_cos computes fastai's expression start + (1 + cos(pi * (1 - pos))) * (end - start) / 2 as written: at
    pos 0.5, cos(pi/2) = 6e-17 vanishes in 1 + cos, so the value is exactly 1.0 from 0 to 2 (cos(3 pi/2) = -1.8e-16,
    a mathematically equal cos(pi * (1 + pos)), would give 0.9999999999999998)."""
    for p in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
        want = 0 + (1 + math.cos(math.pi * (1 - p))) * (2 - 0) / 2
        assert S.sched_cos(0, 2, p) == want and S.SchedCos(0, 2)(p) == want, f"at {p}: {S.sched_cos(0, 2, p)!r}"
    assert S.sched_cos(0, 2, 0.5) == 1.0, f"the midpoint: {S.sched_cos(0, 2, 0.5)!r}"
    assert S.combined_cos(0.5, 0, 2, 0)(0.25) == 1.0, "the first phase's midpoint"
