"""Training loop: fit_one_cycle schedules, discriminative LRs, freeze/unfreeze, fine_tune, plots, save/load.

Every group's LR and momentum is logged at every batch (the adapters' `train_log`) and compared with the
formulas written out here (numpy), independently of both implementations.
"""

import contextlib
import functools
import inspect
import io
import math
import re
import sys

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from spec.backends import get
from spec.tiny import (  # noqa: F401
    N_TRAIN_BATCHES,
    N_VALID_BATCHES,
    close_rel,
    data,
    ema,
    group_of,
    is_norm,
    make,
    mlp,
    one_thread,
    params,
    split,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
IMPL = get("impl")  # IMPL-n claims are impl's own contract: tested on impl only


def cos(s, e, p):
    "Half a cosine from s (p=0) to e (p=1)."
    return s + (1 + np.cos(np.pi * (1 - p))) * (e - s) / 2


def one_cycle(n, peaks, div=25.0, div_final=1e5, pct=0.25):
    "LRs of n batches (p = i/n) x groups: cosine peak/div -> peak over pct, then peak -> peak/div_final."
    p, hi = (np.arange(n) / n)[:, None], np.asarray(peaks, dtype=float)[None, :]
    return np.where(p < pct, cos(hi / div, hi, p / pct), cos(hi, hi / div_final, (p - pct) / (1 - pct)))


def moms_cycle(n, n_groups, pct=0.25, moms=(0.95, 0.85, 0.95)):
    p = np.repeat((np.arange(n) / n)[:, None], n_groups, 1)
    return np.where(p < pct, cos(moms[0], moms[1], p / pct), cos(moms[1], moms[2], (p - pct) / (1 - pct)))


# ---------------------------------------------------------------- defaults
@pytest.mark.claim("LR-1")
def test_fine_tune_default_lr_as_spoken(backend):
    "fine_tune's base_lr defaults to the 1e-2 the lecture gives."
    learn, *_ = make(backend)
    base = inspect.signature(learn.fine_tune).parameters["base_lr"].default
    assert base == 1e-2, f"LR-1: fine_tune(base_lr=...) defaults to {base}, the lecture says 1e-2"


@pytest.mark.claim("LR-1", current=True)
def test_default_learning_rates(backend):
    "fine_tune's base_lr defaults to 2e-3 (the transcript's '0.002') and the Learner's lr to 1e-3."
    learn, *_ = make(backend)
    base = inspect.signature(learn.fine_tune).parameters["base_lr"].default
    assert base == 2e-3, f"LR-1: fine_tune(base_lr=...) defaults to {base}, expected 2e-3"
    assert learn.lr == 1e-3, f"LR-1: Learner(lr=...) defaults to {learn.lr}, expected 1e-3"


# ---------------------------------------------------------------- fit_one_cycle (T:L430-442)
@pytest.mark.claim("OC-1")
def test_one_cycle_lr_warms_up_then_anneals(backend):
    "16 batches, lr_max 1e-2: cosine from 4e-4 up to 1e-2 over the first 25% (4 batches), then down towards 1e-7."
    learn, *_ = make(backend)
    learn.fit_one_cycle(2, 1e-2)
    lrs = backend.train_log(learn)["lrs"]
    close_rel(lrs, one_cycle(16, [1e-2] * 3), what="OC-1: every group's LR per batch")
    assert math.isclose(lrs[0, 0], 4e-4, rel_tol=1e-6), f"OC-1: first LR {lrs[0, 0]}, expected lr_max/25 = 4e-4"
    assert lrs[:, 0].argmax() == 4, f"OC-1: the LR peaks at batch {lrs[:, 0].argmax()} of 16, expected 4 (25%)"
    assert math.isclose(lrs.max(), 1e-2, rel_tol=1e-6), f"OC-1: peak {lrs.max()}, expected lr_max 1e-2"
    assert (np.diff(lrs[:5, 0]) > 0).all() and (np.diff(lrs[4:, 0]) < 0).all(), f"OC-1: not up then down: {lrs[:, 0]}"


@pytest.mark.claim("OC-2")
def test_one_cycle_momentum_is_mirrored(backend):
    "Momentum (Adam's beta1) goes 0.95 -> 0.85 -> 0.95, lowest where the LR peaks."
    learn, *_ = make(backend)
    learn.fit_one_cycle(2, 1e-2)
    log = backend.train_log(learn)
    close_rel(log["moms"], moms_cycle(16, 3), what="OC-2: momentum per batch and group")
    assert log["moms"][:, 0].argmin() == log["lrs"][:, 0].argmax() == 4, "OC-2: momentum lowest where the LR peaks"


@pytest.mark.claim("OC-2")
def test_one_cycle_custom_moms(backend):
    "moms=(0.9, 0.8, 0.7) is followed as given (start, middle, end)."
    learn, *_ = make(backend)
    learn.fit_one_cycle(1, 1e-2, moms=(0.9, 0.8, 0.7), pct_start=0.5)
    want = moms_cycle(8, 3, 0.5, (0.9, 0.8, 0.7))
    close_rel(backend.train_log(learn)["moms"], want, what="OC-2: moms=(0.9, 0.8, 0.7)")


@pytest.mark.claim("OC-4")
def test_one_cycle_lr_max_none_and_slice(backend):
    "lr_max=None uses learn.lr; a slice gives each group its own cycle (peaks 1e-4, 1e-3, 1e-2)."
    learn, *_ = make(backend)
    learn.fit_one_cycle(1)
    close_rel(backend.train_log(learn)["lrs"], one_cycle(8, [learn.lr] * 3), what="OC-4: lr_max=None")
    learn, *_ = make(backend, lr=3e-3)
    learn.fit_one_cycle(1)
    close_rel(backend.train_log(learn)["lrs"], one_cycle(8, [3e-3] * 3), what="OC-4: lr_max=None with Learner(lr=3e-3)")
    learn, *_ = make(backend)
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    close_rel(backend.train_log(learn)["lrs"], one_cycle(8, [1e-4, 1e-3, 1e-2]), what="OC-4: lr_max=slice(1e-4, 1e-2)")


@pytest.mark.claim("OC-1")
def test_one_cycle_options(backend):
    "div, div_final and pct_start change the cycle exactly as the formula says."
    learn, *_ = make(backend)
    learn.fit_one_cycle(2, 3e-3, div=10, div_final=100, pct_start=0.5)
    want = one_cycle(16, [3e-3] * 3, div=10, div_final=100, pct=0.5)
    close_rel(backend.train_log(learn)["lrs"], want, what="OC-1: div/div_final/pct_start")


@pytest.mark.claim("OC-5")
def test_plot_loss_shows_smoothed_train_and_valid_losses(backend):
    "plot_loss draws the smoothed training loss per batch (from batch 5) and the validation loss per epoch."
    learn, *_ = make(backend)
    learn.fit_one_cycle(2, 1e-2)
    raw = backend.train_log(learn)["losses"]
    w = 0.02 * 0.98 ** np.subtract.outer(np.arange(16), np.arange(16)).clip(0) * np.tri(16)  # EMA weights, beta 0.98
    ema = (w @ raw) / (1 - 0.98 ** np.arange(1, 17))  # debiased
    plt.close("all")
    learn.recorder.plot_loss()
    lines = plt.gca().get_lines()
    assert len(lines) == 2, f"OC-5: plot_loss drew {len(lines)} lines, expected train and valid"
    close_rel(lines[0].get_ydata(), ema[5:], rtol=1e-4, what="OC-5: train line = smoothed losses from batch 5")
    assert np.isclose(lines[1].get_ydata()[-1], backend.valid_metrics(learn)[0], rtol=1e-5), "OC-5: last valid point"
    xs = list(lines[1].get_xdata())
    assert xs == [N_TRAIN_BATCHES, 2 * N_TRAIN_BATCHES], f"OC-5: valid points at batches {xs}"
    plt.close("all")


@pytest.mark.claim("OC-5")
def test_recorder_keeps_epoch_rows(backend):
    "One row per epoch: train loss, valid loss (and the epoch time shown in the table)."
    learn, *_ = make(backend)
    learn.fit_one_cycle(3, 1e-2)
    vals = np.array([list(map(float, v)) for v in learn.recorder.values])
    assert vals.shape[0] == 3 and vals.shape[1] >= 2, f"OC-5: recorder.values has shape {vals.shape}"
    assert len(learn.recorder.losses) == 3 * N_TRAIN_BATCHES, f"OC-5: {len(learn.recorder.losses)} smoothed losses"
    assert np.isclose(vals[-1, 1], backend.valid_metrics(learn)[0], rtol=1e-5), "OC-5: last valid loss"


# ---------------------------------------------------------------- discriminative LRs (T:L406-420)
@pytest.mark.claim("DLR-1")
def test_slice_lesson_example(backend):
    "fit with slice(1e-6, 1e-4) on 3 groups trains them at 1e-6, 1e-5, 1e-4 (the lesson's example)."
    learn, *_ = make(backend)
    learn.fit(1, slice(1e-6, 1e-4))
    want = np.tile([1e-6, 1e-5, 1e-4], (N_TRAIN_BATCHES, 1))
    close_rel(backend.train_log(learn)["lrs"], want, rtol=1e-12, what="DLR-1: every group's LR per batch")


def _chain(n):
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(2, 2) for _ in range(n)])


@pytest.mark.claim("DLR-1")
@given(lo=st.floats(-7, -1).map(lambda e: 10**e), ratio=st.floats(0.1, 5).map(lambda e: 10**e),
       n=st.integers(2, 6))
def test_slice_is_geometric_across_groups(backend, lo, ratio, n):
    "slice(lo, hi) gives group i the LR lo*(hi/lo)**(i/(n-1)): equal steps on a log scale, per group."
    m = _chain(n)
    by_layer = lambda m: [list(l.parameters()) for l in m]
    learn = backend.learner(backend.dls_from_loaders([], []), m, nn.MSELoss(), splitter=by_layer)
    got = backend.set_lr(learn, slice(lo, lo * ratio))
    want = [lo * ratio ** (i / (n - 1)) for i in range(n)]
    close_rel(got, want, rtol=1e-9, what=f"DLR-1: lo={lo}, hi={lo * ratio}, n={n}")


@pytest.mark.claim("DLR-2")
def test_slice_without_start_number_and_list(backend):
    "slice(hi) -> [hi/10, ..., hi/10, hi]; a number -> the same LR everywhere; a list of the wrong length is refused."
    learn, *_ = make(backend)
    close_rel(backend.set_lr(learn, slice(3e-3)), [3e-4, 3e-4, 3e-3], rtol=1e-12, what="DLR-2: slice(3e-3)")
    close_rel(backend.set_lr(learn, 2e-3), [2e-3] * 3, rtol=0, what="DLR-2: a float")
    close_rel(backend.set_lr(learn, [1e-3, 2e-3, 3e-3]), [1e-3, 2e-3, 3e-3], rtol=0, what="DLR-2: a list")
    with pytest.raises((ValueError, AssertionError), match="2 values|2 .*parameter groups|3 parameter groups"):
        backend.set_lr(learn, [1e-3, 2e-3])


@pytest.mark.claim("DLR-2")
def test_slice_on_one_group_is_its_top(backend):
    "fit(1, slice(1e-4, 1e-3)) on a learner with one parameter group (no splitter) trains it at 1e-3 at every batch."
    learn, *_ = make(backend, splitter=None)
    learn.fit(1, slice(1e-4, 1e-3))
    close_rel(backend.train_log(learn)["lrs"], np.full((N_TRAIN_BATCHES, 1), 1e-3), rtol=1e-12,
              what="DLR-2: slice(1e-4, 1e-3) on one group")


def _two(m):
    "Two parameter groups: m[:3] and m[3:]."
    return [list(m[:3].parameters()), list(m[3:].parameters())]


@pytest.mark.claim("IMPL-34")
@pytest.mark.parametrize("two", [True, False], ids=["two-groups", "one-group"])
def test_reversed_slice_is_refused_on_two_groups(two):
    """slice(lo, hi) with lo > hi (the first group would train fastest), on 2 groups and on 1 (where it would train at
    hi: fastai accepts it silently): ValueError in fit, fit_one_cycle, Learner."""
    kw = {"splitter": _two if two else None}
    learn, tr, _ = make(IMPL, **kw)
    msg = r"needs lo <= hi \(the first group trains slowest\), got slice\(0\.01, 0\.0001, None\)$"
    with pytest.raises(ValueError, match=r"^lr=slice\(lo, hi\) " + msg):
        learn.fit(1, slice(1e-2, 1e-4))
    with pytest.raises(ValueError, match=r"^lr_max=slice\(lo, hi\) " + msg):
        learn.fit_one_cycle(1, slice(1e-2, 1e-4))
    assert tr.batches == 0, "IMPL-34: trained before the error"
    with pytest.raises(ValueError, match=r"^lr=slice\(lo, hi\) " + msg):
        make(IMPL, lr=slice(1e-2, 1e-4), **kw)


@pytest.mark.claim("IMPL-34")
@pytest.mark.parametrize("lr", [[1e-3, -1e-2, 1e-1], (1e-3, -1e-2, 1e-1)], ids=["list", "tuple"])
def test_negative_lr_in_a_list_says_every_lr_must_be_positive(lr):
    "A list or tuple of group LRs with an entry < 0 is refused with the message of any LR <= 0: 'every LR must be > 0'."
    learn, tr, _ = make(IMPL)
    with pytest.raises(ValueError, match=r"^lr: every LR must be > 0 \(0 trains nothing, < 0 climbs the loss\), got "
                       + re.escape(repr(lr)) + "$"):
        learn.fit(1, lr)
    assert tr.batches == 0, "IMPL-34: trained before the error"


# ---------------------------------------------------------------- freeze / unfreeze (T:L322-337)
def _changed(before, m):
    return [not torch.equal(a, b) for a, b in zip(before, params(m))]


@pytest.mark.claim("FT-6")
def test_frozen_step_moves_only_the_last_group(backend):
    "The lecture: after freeze() only the last layer's weights get stepped; the whole body keeps its values."
    learn, *_ = make(backend)
    learn.freeze()
    before = params(learn.model)
    learn.fit(1, 1e-2)
    changed, want = _changed(before, learn.model), [g == 2 for g in group_of(learn.model)]
    assert changed == want, f"FT-6: parameters changed {changed}, expected the last group only {want}"


@pytest.mark.claim("FT-6", current=True)
@pytest.mark.parametrize("train_bn", [True, False])
def test_freeze_keeps_batchnorm_trainable(backend, train_bn):
    "freeze(): only the last group trains, except BatchNorm parameters while train_bn (the default); they do change."
    learn, *_ = make(backend, train_bn=train_bn)
    learn.freeze()
    want = [g == 2 or (train_bn and bn) for g, bn in zip(group_of(learn.model), is_norm(learn.model))]
    got = backend.requires_grad(learn)
    assert got == want, f"FT-6 (train_bn={train_bn}): requires_grad {got}, expected {want}"
    before = params(learn.model)
    learn.fit(1, 1e-2)
    assert _changed(before, learn.model) == want, f"FT-6 (train_bn={train_bn}): changed parameters"


@pytest.mark.claim("FT-12")
def test_frozen_step_keeps_body_weights(backend):
    "After freeze() the body's Linear weights need no gradient and stay bit-identical in an epoch; the head moves."
    learn, *_ = make(backend)
    learn.freeze()
    body = [g < 2 and not bn for g, bn in zip(group_of(learn.model), is_norm(learn.model))]
    rg = backend.requires_grad(learn)
    assert not any(r for r, b in zip(rg, body) if b), f"FT-12: body weights requiring grad: {rg}"
    before = params(learn.model)
    learn.fit(1, 1e-2)
    ch = _changed(before, learn.model)
    assert not any(c for c, b in zip(ch, body) if b), f"FT-12: body weights changed: {ch}"
    assert all(c for c, g in zip(ch, group_of(learn.model)) if g == 2), f"FT-12: the head did not move: {ch}"


@pytest.mark.claim("FT-7")
def test_unfreeze_trains_everything_and_freeze_to_clears_state(backend):
    "unfreeze(): every parameter requires grad; freeze_to clears the optimizer state."
    learn, *_ = make(backend)
    learn.fit(1, 1e-3)
    assert backend.opt_tensors(learn), "FT-7: a fit leaves optimizer state"
    learn.freeze()
    assert backend.opt_tensors(learn) == [], "FT-7: freeze() clears the optimizer state"
    learn.fit(1, 1e-3)
    learn.unfreeze()
    assert all(backend.requires_grad(learn)), f"FT-7: requires_grad after unfreeze() {backend.requires_grad(learn)}"
    assert backend.opt_tensors(learn) == [], "FT-7: freeze_to (here via unfreeze) clears the optimizer state"
    before = params(learn.model)
    learn.fit(1, 1e-3)
    ch = _changed(before, learn.model)
    assert all(ch), f"FT-7: after unfreeze every parameter (of every group) is stepped: changed {ch}"
    learn.freeze_to(1)
    rg = backend.requires_grad(learn)
    want = [g >= 1 or bn for g, bn in zip(group_of(learn.model), is_norm(learn.model))]
    assert rg == want, f"FT-7: freeze_to(1) requires_grad {rg}, expected {want}"


# ---------------------------------------------------------------- fine_tune (T:L316-350)
@pytest.mark.claim("FT-3")
def test_fine_tune_algorithm(backend):
    """fine_tune(2): 1 frozen epoch (1cycle at slice(base_lr), pct_start .99), then 2 unfrozen epochs
    (1cycle at slice(base_lr/2/100, base_lr/2), pct_start .3, div 5)."""
    learn, tr, va = make(backend)
    nb = N_TRAIN_BATCHES
    before = params(learn.model)
    learn.fine_tune(2, base_lr=2e-3)
    log = backend.train_log(learn)
    assert log["epochs"] == 3 and va.iters == 3 and len(log["lrs"]) == 3 * nb, (
        f"FT-3: {log['epochs']} epochs, {va.iters} validations, {len(log['lrs'])} batches; expected 3, 3, {3 * nb}")
    close_rel(log["lrs"][:nb], one_cycle(nb, [2e-4, 2e-4, 2e-3], pct=0.99), what="FT-3: frozen epoch LRs")
    close_rel(log["lrs"][nb:], one_cycle(2 * nb, [1e-5, 1e-4, 1e-3], div=5, pct=0.3), what="FT-3: unfrozen epochs LRs")
    close_rel(log["moms"][:nb], moms_cycle(nb, 3, 0.99), what="FT-3: frozen epoch momentum")
    close_rel(log["moms"][nb:], moms_cycle(2 * nb, 3, 0.3), what="FT-3: unfrozen epochs momentum")
    frozen = torch.tensor([g < 2 and not bn for g, bn in zip(group_of(learn.model), is_norm(learn.model))])
    sizes = [p.numel() for p in before]
    first = torch.cat([b.flatten() for b in before])
    mask = torch.repeat_interleave(frozen, torch.tensor(sizes))
    assert torch.equal(log["params"][nb - 1][mask], first[mask]), "FT-3: body weights moved during the frozen epoch"
    assert not torch.equal(log["params"][-1][mask], first[mask]), "FT-3: body weights never moved after unfreeze"
    assert all(backend.requires_grad(learn)), "FT-3: fine_tune ends unfrozen"


@pytest.mark.claim("FT-3")
def test_fine_tune_freeze_epochs(backend):
    "Total epochs = freeze_epochs + epochs."
    learn, tr, va = make(backend)
    learn.fine_tune(1, freeze_epochs=2)
    log = backend.train_log(learn)
    assert (log["epochs"], va.iters, len(log["lrs"])) == (3, 3, 3 * N_TRAIN_BATCHES), (
        f"FT-3: freeze_epochs=2, epochs=1: {log['epochs']} epochs, {va.iters} validations, {len(log['lrs'])} batches")
    nb2 = 2 * N_TRAIN_BATCHES
    close_rel(log["lrs"][:nb2], one_cycle(nb2, [2e-4, 2e-4, 2e-3], pct=0.99), what="FT-3: two frozen epochs")


@pytest.mark.claim("FT-4", "FT-5")
def test_fine_tune_phases_reach_their_peaks(backend):
    """100 batches per phase: frozen LRs start at [8e-6, 8e-6, 8e-5] and peak at [2e-4, 2e-4, 2e-3] at 99%;
    unfrozen ones peak at [1e-5, 1e-4, 1e-3] at 30% and start at peak/5."""
    learn, *_ = make(backend, n=232, bs=2)
    learn.fine_tune(1, base_lr=2e-3)
    lrs = backend.train_log(learn)["lrs"]
    fz, uf = lrs[:100], lrs[100:]
    close_rel(fz[0], [8e-6, 8e-6, 8e-5], rtol=1e-6, what="FT-4: frozen start")
    assert fz[:, 2].argmax() == 99, f"FT-4: frozen peak at batch {fz[:, 2].argmax()}, expected 99 (99%)"
    close_rel(fz[99], [2e-4, 2e-4, 2e-3], rtol=1e-6, what="FT-4: frozen peak")
    close_rel(uf[0], [2e-6, 2e-5, 2e-4], rtol=1e-6, what="FT-5: unfrozen start = peak/5")
    assert uf[:, 2].argmax() == 30, f"FT-5: unfrozen peak at batch {uf[:, 2].argmax()}, expected 30 (pct_start 0.3)"
    close_rel(uf[30], [1e-5, 1e-4, 1e-3], rtol=1e-6, what="FT-5: unfrozen peak = even_mults(base_lr/200, base_lr/2, 3)")
    close_rel(uf, one_cycle(100, [1e-5, 1e-4, 1e-3], div=5, pct=0.3), what="FT-5: unfrozen, towards peak/1e5")


@pytest.mark.claim("FT-3", "FT-5")
@pytest.mark.parametrize("lr_mult", [1, 1.25])
def test_fine_tune_lr_mult_from_1(backend, lr_mult):
    """lr_mult=1 (every group at base_lr/2 after unfreezing) and 1.25 are accepted: the unfrozen epoch's peaks are
    even_mults(base_lr/2/lr_mult, base_lr/2, 3)."""
    learn, *_ = make(backend)
    learn.fine_tune(1, base_lr=2e-3, freeze_epochs=0, lr_mult=lr_mult)
    lrs, nb = backend.train_log(learn)["lrs"], N_TRAIN_BATCHES
    peaks = np.geomspace(1e-3 / lr_mult, 1e-3, 3)
    assert len(lrs) == nb, f"FT-3: {len(lrs)} batches, expected {nb} (freeze_epochs=0)"
    close_rel(lrs, one_cycle(nb, peaks, div=5, pct=0.3), what=f"FT-5: lr_mult={lr_mult}")


@pytest.mark.claim("FT-3", "FT-4", "FT-5")
def test_fine_tune_two_groups(backend):
    "Two groups (body, head): the frozen epoch at slice(2e-3) = [2e-4, 2e-3], the unfrozen at slice(1e-5, 1e-3)."
    learn, *_ = make(backend, splitter=lambda m: [list(m[:6].parameters()), list(m[6:].parameters())])
    learn.fine_tune(1)
    lrs, nb = backend.train_log(learn)["lrs"], N_TRAIN_BATCHES
    close_rel(lrs[:nb], one_cycle(nb, [2e-4, 2e-3], pct=0.99), what="FT-4: two groups, frozen epoch")
    close_rel(lrs[nb:], one_cycle(nb, [1e-5, 1e-3], div=5, pct=0.3), what="FT-5: two groups, unfrozen epoch")


@pytest.mark.claim("IMPL-34")
def test_fine_tune_accepts_a_lowest_lr_that_does_not_round_to_0():
    """base_lr 1e-300, lr_mult 1.6667e23: the first group's unfrozen LR, 1e-300 / 2 / 1.6667e23 = 3e-324, is the
    smallest float64 above 0, not 0: fine_tune trains (IMPL-34 refuses only an LR <= 0)."""
    learn, *_ = make(IMPL)
    learn.fine_tune(1, base_lr=1e-300, freeze_epochs=0, lr_mult=1.6667e23)
    lrs = IMPL.train_log(learn)["lrs"]
    assert len(lrs) == N_TRAIN_BATCHES and (lrs > 0).any(0).all(), f"IMPL-34: LRs {lrs[:2]}"


# ---------------------------------------------------------------- IMPL contract
def _bad_after(k, bad=float("nan"), exc=None):
    "A cross-entropy loss whose calls after the k-th are multiplied by `bad` (or raise `exc`)."
    ce, calls = nn.CrossEntropyLoss(), [0]

    def loss(o, y):
        calls[0] += 1
        if calls[0] > k and exc is not None:
            raise exc
        return ce(o, y) * (bad if calls[0] > k else 1.0)

    return loss


@pytest.mark.claim("IMPL-3")
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nan_loss_stops_fit_with_weights_before_that_step(bad):
    """A NaN (or inf) loss at epoch 1 batch 3 stops fit with an error naming both; the weights are those at the start
    of epoch 1 (after epoch 0's N_TRAIN_BATCHES: IMPL-35)."""
    learn, *_ = make(IMPL, loss_func=_bad_after(N_TRAIN_BATCHES + N_VALID_BATCHES + 3, bad))  # epoch 0, then 3 batches
    with pytest.raises(FloatingPointError, match=rf"{bad}.*epoch 1, batch 3.*at the start of epoch 1") as e:
        learn.fit(2, 1e-2)
    log = IMPL.train_log(learn)
    want = N_TRAIN_BATCHES + 3
    assert len(log["params"]) == want, f"IMPL-3: {len(log['params'])} batches logged before the {bad}, expected {want}"
    now = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
    start = log["params"][N_TRAIN_BATCHES - 1]  # after epoch 0's last step
    assert torch.equal(now, start), f"IMPL-3: weights not those at the start of epoch 1 ({e.value})"
    assert torch.isfinite(now).all(), "IMPL-3: weights are finite"


@pytest.mark.claim("IMPL-4")
@pytest.mark.parametrize("call, arg", [
    (lambda l: l.fit_one_cycle(1, pct_start=0), "pct_start"),
    (lambda l: l.fit_one_cycle(1, pct_start=1), "pct_start"),
    (lambda l: l.fit_one_cycle(1, pct_start=1.5), "pct_start"),
    (lambda l: l.fine_tune(1, pct_start=1.5), "pct_start"),
    (lambda l: l.fit_one_cycle(1, div=0), "div"),
    (lambda l: l.fit_one_cycle(1, lr_max=[1e-3, 1e-2]), "lr"),
    (lambda l: l.fit(1, lr=-1e-3), "lr"),
    (lambda l: l.fit(0), "n_epoch"),
    (lambda l: l.fit_one_cycle(0), "n_epoch"),
    (lambda l: l.fine_tune(1, base_lr=0), "base_lr"),
    (lambda l: l.lr_find(start_lr=1, end_lr=1e-3), "start_lr"),
    (lambda l: l.lr_find(num_it=0), "num_it"),
], ids=["pct0", "pct1", "pct1.5", "ft-pct1.5", "div0", "lr-list-len", "lr-negative", "fit0", "one-cycle0", "base_lr",
        "start>end", "num_it"])
def test_bad_arguments_raise_clear_errors(call, arg):
    "Bad schedule arguments raise ValueError naming the argument, before any training step."
    learn, tr, _ = make(IMPL)
    before = params(learn.model)
    with pytest.raises(ValueError, match=arg):
        call(learn)
    assert tr.batches == 0 and not _changed(before, learn.model).count(True), "IMPL-4: trained before the error"


@pytest.mark.claim("IMPL-4")
def test_epoch_counts_must_be_ints():
    """n_epoch (fit, fit_one_cycle), epochs and freeze_epochs (fine_tune) must be ints (not bools, not floats) of at
    least 1 (freeze_epochs 0): ValueError naming the argument, its bound and the value, before any batch."""
    learn, tr, _ = make(IMPL)
    cases = [(lambda: learn.fit(0), "n_epoch must be an int >= 1, got 0"),
             (lambda: learn.fit(True), "n_epoch must be an int >= 1, got True"),
             (lambda: learn.fit_one_cycle(2.0), "n_epoch must be an int >= 1, got 2.0"),
             (lambda: learn.fine_tune(0), "epochs must be an int >= 1, got 0"),
             (lambda: learn.fine_tune(1, freeze_epochs=-1), "freeze_epochs must be an int >= 0, got -1")]
    for call, msg in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
            call()
    assert tr.batches == 0, f"IMPL-4: {tr.batches} batches trained before the error"


@pytest.mark.claim("IMPL-34")
def test_hyper_parameters_must_be_numbers():
    """A string, None or a bool where a number is needed: TypeError naming the argument and the value; a moms entry
    outside [0, 1): ValueError naming moms[i] and the range. Nothing trains."""
    learn, tr, _ = make(IMPL)
    cases = [(lambda: learn.fit_one_cycle(1, 1e-3, div="25"), TypeError, "div must be a number, got '25'"),
             (lambda: learn.fit(1, 1e-3, wd=True), TypeError, "wd must be a number, got True"),
             (lambda: learn.fit(1, 1e-3, wd=[0.1, "0.1", 0.1]), TypeError, "wd[1] must be a number, got '0.1'"),
             (lambda: learn.fit_one_cycle(1, 1e-3, moms=(0.95, None, 0.95)), TypeError,
              "moms[1] must be a number, got None"),
             (lambda: learn.fine_tune(1, lr_mult="100"), TypeError, "lr_mult must be a number, got '100'"),
             (lambda: learn.fit_one_cycle(1, 1e-3, moms=(0.95, 1.5, 0.95)), ValueError,
              "moms[1] must lie in [0.0, 1.0), got 1.5"),
             (lambda: make(IMPL, moms=(0.95, 0.85, 1.0)), ValueError, "moms[2] must lie in [0.0, 1.0), got 1.0")]
    for call, exc, msg in cases:
        with pytest.raises(exc, match=f"^{re.escape(msg)}$"):
            call()
    assert tr.batches == 0, f"IMPL-34: {tr.batches} batches trained before the error"


class _TwoInputs(nn.Module):
    "model(a, b) = lin(a) + lin(b * s): b a tensor, or a list of per-item scales s (b = a); records what it gets."

    def __init__(self):
        super().__init__()
        self.lin, self.calls = nn.Linear(8, 3), []

    def forward(self, a, b):
        self.calls.append((a, b))
        return self.lin(a) + self.lin(b if isinstance(b, torch.Tensor) else a * torch.tensor(b)[:, None])


@pytest.mark.claim("IMPL-37")
@pytest.mark.parametrize("second", ["tensor", "list"])
def test_batch_items_before_the_last_are_the_models_inputs(second):
    """Batches (a, b, y): fit, validate and get_preds call model(a, b) and loss_func(output, y), for b a tensor and
    for b a plain list (passed on as it is)."""
    x, y = data(24)
    g = torch.Generator().manual_seed(1)
    xs = [x, torch.randn(24, 8, generator=g)] if second == "tensor" else [x, torch.rand(24, generator=g).tolist()]
    batches = [(xs[0][i:i + 6], xs[1][i:i + 6], y[i:i + 6]) for i in range(0, 24, 6)]
    targets = []

    def loss(o, t):
        targets.append(t)
        return nn.functional.cross_entropy(o, t)

    model = _TwoInputs()
    learn = IMPL.learner(IMPL.dls_from_loaders(batches[:3], batches[3:]), model, loss)
    learn.fit(1, 1e-3)
    learn.validate()
    preds, ys = learn.get_preds()
    want = batches[:3] + batches[3:] * 3  # three training batches, then the validation batch (fit, validate, preds)
    assert len(model.calls) == len(targets) == len(want), f"IMPL-37: {len(model.calls)} calls, {len(targets)} losses"
    for k, ((a, b), t, (wa, wb, wy)) in enumerate(zip(model.calls, targets, want)):
        assert torch.equal(a, wa), f"IMPL-37: call {k}: the model's first input is not the batch's first item"
        assert type(b) is type(wb) and (torch.equal(b, wb) if second == "tensor" else b == wb), \
            f"IMPL-37: call {k}: the model's second input {b!r} is not the batch's second item {wb!r}"
        assert torch.equal(t, wy), f"IMPL-37: call {k}: the loss got {t!r}, not the batch's target {wy!r}"
    assert torch.equal(ys, batches[3][2]), f"IMPL-37: get_preds' targets {ys}, want {batches[3][2]}"
    assert preds.shape == (6, 3), f"IMPL-37: get_preds' predictions have shape {tuple(preds.shape)}, want (6, 3)"


@pytest.mark.claim("IMPL-33")
def test_no_training_batch_error_names_the_data_and_the_fix():
    """dls.train yielding no batch: the error names the training items, bs and drop_last, read from the loader itself
    (a plain torch DataLoader) or '?' and None when it has none of them (an empty list), and says what to do."""
    from torch.utils.data import DataLoader, TensorDataset

    x, y = data(16)
    va = DataLoader(TensorDataset(x[8:], y[8:]), batch_size=8)
    tail = ": nothing would train; lower bs or add training data"
    for tr, what in [(DataLoader(TensorDataset(x[:5], y[:5]), batch_size=8, drop_last=True),
                      "5 items, bs=8, drop_last=True"), ([], "? items, bs=None, drop_last=None")]:
        learn = IMPL.learner(IMPL.dls_from_loaders(tr, va), mlp(), nn.CrossEntropyLoss(), splitter=split)
        with pytest.raises(ValueError, match=f"^{re.escape(f'dls.train yields no batches ({what}){tail}')}$"):
            learn.fit(1, 1e-3)


@pytest.mark.claim("IMPL-55")
def test_validation_loss_is_summed_in_float64():
    """validate(dl) over one-item batches of loss 2**24, 1, 1, 1: the exact mean (2**24 + 3) / 4 (a float32 running
    sum rounds each 2**24 + 1 back to 2**24 and gives 2**22)."""
    learn, *_ = make(IMPL, loss_func=lambda o, y: y.mean())
    x = torch.zeros(1, 8)
    dl = [(x, torch.tensor([2.0**24]))] + [(x, torch.tensor([1.0]))] * 3
    got = learn.validate(dl)[0]
    assert got == (2**24 + 3) / 4, f"IMPL-55: valid_loss {got!r}, want {(2**24 + 3) / 4!r}"


@pytest.mark.claim("IMPL-56")
def test_recorder_takes_numbers_and_tensors():
    "Recorder.add_batch with losses given as numbers and 0-d tensors, mixed: read back in order, smoothed."
    from impl.learner import Recorder

    r, raw = Recorder(), [0.5, 0.25, 2.0, 4.0, 1.0]
    for v in (0.5, torch.tensor(0.25), 2, torch.tensor(4.0, dtype=torch.float64), 1.0):
        r.add_batch([1e-3], [0.9], v)
    assert r.batch_losses == raw, f"IMPL-56: batch_losses {r.batch_losses}"
    close_rel(r.losses, ema(raw), rtol=1e-12, what="IMPL-56: the smoothed losses")


@pytest.mark.claim("IMPL-57")
def test_default_opt_func_is_adamw_at_the_given_lr():
    """impl.learner.Adam(params, lr=0.5): the first step is -0.5 * g / (|g| + 1e-8) (no weight decay); a group with
    its own lr keeps it."""
    from impl.learner import Adam

    w, u = torch.tensor([1.0, -2.0, 3.0], requires_grad=True), torch.tensor([1.0, 1.0], requires_grad=True)
    g, h = torch.tensor([0.1, -3.0, 1e-3]), torch.tensor([2.0, -0.5])
    opt = Adam([{"params": [w]}, {"params": [u], "lr": 0.1}], lr=0.5)
    w.grad, u.grad = g.clone(), h.clone()
    opt.step()
    close_rel(w.detach(), torch.tensor([1.0, -2.0, 3.0]) - 0.5 * g / (g.abs() + 1e-8), rtol=1e-6,
              what="IMPL-57: Adam(lr=0.5)'s first step")
    close_rel(u.detach(), torch.tensor([1.0, 1.0]) - 0.1 * h / (h.abs() + 1e-8), rtol=1e-6,
              what="IMPL-57: a group's own lr")


@pytest.mark.claim("IMPL-58")
def test_loop_counters_start_at_0_in_every_fit():
    """A second fit(2): learn.epoch, learn.iter and learn.train_iter are 0 at before_fit and until the first batch
    (the first fit left 0, 7 and 8), then count the epoch, the batch in it and the batches of this fit."""
    learn, *_ = make(IMPL)
    learn.fit(1, 1e-3)
    seen = []

    class Rec:
        def __init__(self):
            for ev in ("before_fit", "before_epoch", "before_train", "before_batch", "after_batch", "after_train"):
                setattr(self, ev, lambda l, ev=ev: seen.append((ev, l.epoch, l.iter, l.train_iter)))

    learn.fit(2, 1e-3, cbs=[Rec()])
    nb = N_TRAIN_BATCHES
    want = [("before_fit", 0, 0, 0)]
    for e in range(2):
        want += [("before_epoch", e, nb - 1 if e else 0, e * nb), ("before_train", e, nb - 1 if e else 0, e * nb)]
        for i in range(nb):
            want += [("before_batch", e, i, e * nb + i), ("after_batch", e, i, e * nb + i + 1)]
        want += [("after_train", e, nb - 1, (e + 1) * nb)]
    assert seen == want, f"IMPL-58: (event, epoch, iter, train_iter) {seen[:4]} ..., want {want[:4]} ..."


@pytest.mark.claim("IMPL-7")
def test_save_load_round_trip(tmp_path):
    "save then load (weights only) puts back bit-identical weights, BatchNorm statistics and optimizer state."
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-2)
    learn.save("m")
    sd, o = {k: v.clone() for k, v in learn.model.state_dict().items()}, IMPL.opt_tensors(learn)
    learn.fit(1, 1e-2)
    learn.load("m")
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in sd.items()), "IMPL-7: model state after load"
    assert all(torch.equal(a, b) for a, b in zip(o, IMPL.opt_tensors(learn))), "IMPL-7: optimizer state after load"


@pytest.mark.claim("IMPL-32")
def test_learner_without_path_saves_under_the_working_directory(tmp_path, monkeypatch):
    "Learner(...) without path or model_dir: save('m') writes models/m.pth in the working directory (fastai's default)."
    from impl.learner import Learner

    monkeypatch.chdir(tmp_path)
    tr, va = make(IMPL)[1:]
    learn = Learner(IMPL.dls_from_loaders(tr, va), mlp(), nn.CrossEntropyLoss(), progress=False)
    learn.save("m")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["models", "models/m.pth"], (
        f"IMPL-32: files written {sorted(tmp_path.rglob('*'))}")
    learn.load("m")


class _Payload:
    "Unpickling this creates the file `marker`: proof that loading ran code."

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.claim("IMPL-7")
@pytest.mark.parametrize("env", [False, True], ids=["plain", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
def test_load_refuses_arbitrary_pickle(tmp_path, monkeypatch, env):
    """A .pth holding a pickled object (not tensors) is refused by load, never executed, and the model is untouched;
    also with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (which turns torch.load's default to weights_only=False)."""
    if env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    learn, *_ = make(IMPL, path=tmp_path)
    (tmp_path / "models").mkdir()
    marker = tmp_path / "pwned"
    torch.save({"model": _Payload(marker)}, tmp_path / "models" / "evil.pth")
    before = params(learn.model)
    with pytest.raises(Exception, match="(?i)weights.only|unsupported global|unpickl"):
        learn.load("evil")
    assert not marker.exists(), "IMPL-7: loading ran the pickled code"
    assert not any(_changed(before, learn.model)), "IMPL-7: model untouched"


def _files(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.claim("IMPL-12")
def test_failures_leave_the_users_files_untouched(tmp_path, monkeypatch):
    "A fit that raises midway, then a save that fails halfway: the saved file stays byte-identical, no partial file."
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-3)
    learn.save("m")
    files = _files(tmp_path)
    loss, learn.loss_func = learn.loss_func, _bad_after(2, exc=RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        learn.fit(1, 1e-3)
    assert _files(tmp_path) == files, "IMPL-12: files changed by a fit that raised"
    learn.loss_func = loss
    learn.fit(1, 1e-3)
    real = torch.save

    def half(obj, f, *a, **k):  # writes, truncates what it wrote, fails
        real(obj, f, *a, **k)
        if hasattr(f, "truncate"):
            f.truncate(100)
        else:
            with open(f, "r+b") as fh:
                fh.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half)
    with pytest.raises(OSError, match="disk full"):
        learn.save("m")
    monkeypatch.undo()
    now = sorted(map(str, _files(tmp_path)))
    assert _files(tmp_path) == files, f"IMPL-12: a failed save damaged the file or left a partial one: {now}"
    learn.load("m")


# ---------------------------------------------------------------- the book's Pets runs (T:L83-157, T:L358-427)
BOOK_ERRORS = {  # FB05, in the order printed: LR-2, LR-12, FT-10, DLR-3 (unfrozen epochs), ARCH-4
    "LR-2": [0.504060, 0.834235], "LR-12": [0.114344, 0.127876, 0.083221],
    "FT-10": [0.102842, 0.094723, 0.074425, 0.069012, 0.059540],
    "DLR-3": [0.067659, 0.066306, 0.062246, 0.062923, 0.064276, 0.056157, 0.058863, 0.053451, 0.051421, 0.054127],
    "ARCH-4": [0.098782, 0.094723, 0.091340, 0.083897, 0.084574, 0.069012, 0.065629, 0.064276, 0.054804],
}


# ---------------------------------------------------------------- the one loop: events, cancellation (IMPL-37)
def _expected(n_epoch=2, nb=N_TRAIN_BATCHES, cancel=None):
    """impl's events for n_epoch epochs of nb training batches, written out from fastai's Learner.fit; `cancel`:
    (phase, epoch, batch) where a callback raises that phase's Cancel exception (validate: in before_validate)."""
    ph, ce, ci = cancel or (None, None, None)
    out = ["before_fit"]
    for e in range(n_epoch):
        out += ["before_epoch", "before_train"]
        for i in range(nb):
            out += ["before_batch", "after_batch"]
            if (e, i) == (ce, ci) and ph in ("fit", "epoch", "train"):
                out += [f"after_cancel_{ph}", f"after_{ph}"]
                break
        if ph in ("fit", "epoch") and e == ce:
            if ph == "fit":
                return out
            continue
        out += [] if ph == "train" and e == ce else ["after_train"]
        out += ["before_validate"] + (["after_cancel_validate"] if ph == "validate" and e == ce else [])
        out += ["after_validate", "after_epoch"]
    return out + ["after_fit"]


class _Events:
    "Records every event (and learn.epoch, learn.iter at each batch); raises `cancel` at (epoch, batch) if given."

    def __init__(self, cancel=None, order=0):
        from impl import callback as C

        self.seen, self.at, self.counts, self.cancel, self.order, self.C = [], [], [], cancel, order, C
        for ev in C.EVENTS:
            setattr(self, ev, lambda learn, ev=ev: self.on(ev, learn))

    def on(self, ev, learn):
        self.seen.append(ev)
        self.counts.append((ev, learn.epoch, learn.train_iter))
        if ev == "after_batch":
            self.at.append((learn.epoch, learn.iter))
        if self.cancel is None:
            return
        ph, e, i = self.cancel
        exc = {"fit": self.C.CancelFitException, "epoch": self.C.CancelEpochException,
               "train": self.C.CancelTrainException, "validate": self.C.CancelValidException}[ph]
        if ev == ("before_validate" if ph == "validate" else "after_batch") and (learn.epoch, learn.iter) == (e, i):
            raise exc()


@pytest.mark.claim("IMPL-37")
def test_events_fire_in_fastais_order():
    "fit(2) on 8 training batches: the events of fastai's loop, in its order, each training batch one pair."
    learn, tr, va = make(IMPL)
    ev = _Events()
    learn.fit(2, 1e-3, cbs=[ev])
    assert ev.seen == _expected(), f"IMPL-37: events {ev.seen[:12]} ... differ from fastai's order"
    want = [(e, i) for e in range(2) for i in range(N_TRAIN_BATCHES)]
    assert ev.at == want, f"IMPL-37: (epoch, iter) at each batch {ev.at}"
    assert (tr.iters, va.iters) == (2, 2), f"IMPL-37: the loaders were iterated {tr.iters}, {va.iters} times"
    learn.cbs.append(ev)  # a Learner's own callbacks (cbs=...) get the same events, on every fit
    ev.seen.clear()
    learn.fit_one_cycle(1, 1e-3)
    assert ev.seen == _expected(1), f"IMPL-37: fit_one_cycle's events {ev.seen[:12]} ..."


@pytest.mark.claim("IMPL-37", "IMPL-58")
def test_events_match_fastais_learner():
    """The same fit on fastai's Learner (the oracle), its events filtered to impl's and to the training batches; at
    each, the same learn.epoch and learn.train_iter (IMPL-58)."""
    fa = pytest.importorskip("fastai.callback.core")
    from impl import callback as C

    class Rec(fa.Callback):
        order = 90

        def __init__(self):
            self.seen = []
            for ev in fa._events:
                setattr(self, str(ev), lambda ev=ev: self.seen.append((str(ev), self.learn.epoch,
                                                                       self.learn.train_iter)))

    rec = Rec()
    learn, *_ = make(get("fastai"))
    learn.fit(2, 1e-3, cbs=[rec])
    valid, want = False, []
    for ev, *counts in rec.seen:  # fastai fires the batch events on validation batches too: impl validates in one call
        valid = (valid or ev == "before_validate") and ev != "after_validate"
        if ev in C.EVENTS and not (valid and ev in ("before_batch", "after_batch")):
            want.append((ev, *counts))
    learn, *_ = make(IMPL)
    ev = _Events()
    learn.fit(2, 1e-3, cbs=[ev])
    assert ev.seen == [w[0] for w in want], f"IMPL-37: impl's events differ from fastai's: {ev.seen[:12]} ..."
    assert ev.counts == want, f"IMPL-58: (event, epoch, train_iter) {ev.counts[:4]} ..., fastai's {want[:4]} ..."


@pytest.mark.claim("IMPL-37")
@pytest.mark.parametrize("cancel", [("fit", 0, 3), ("epoch", 0, 3), ("train", 0, 3), ("validate", 1, 7),
                                    ("fit", 1, 7)], ids=["fit", "epoch", "train", "validate", "fit-last"])
def test_cancel_ends_its_phase_and_the_fit_goes_on(cancel):
    """Cancel{Fit,Epoch,Train,Valid}Exception: after_cancel_<phase> and after_<phase> run, the loop goes on after the
    phase; the batches trained, the validations run and recorder.values follow."""
    learn, tr, va = make(IMPL)
    ev = _Events(cancel)
    learn.fit(2, 1e-3, cbs=[ev])
    ph, e, i = cancel
    assert ev.seen == _expected(cancel=cancel), f"IMPL-37: cancel {cancel}: events {ev.seen}"
    nb = N_TRAIN_BATCHES
    trained = {"fit": nb * e + i + 1, "epoch": nb + i + 1, "train": nb + i + 1, "validate": 2 * nb}[ph]
    assert tr.batches == trained == len(IMPL.train_log(learn)["losses"]), f"IMPL-37: {tr.batches} batches trained"
    vals = np.array(learn.recorder.values, dtype=float)
    n_rows, n_valid = {"fit": (e, e), "epoch": (2, 1), "train": (2, 2), "validate": (2, 1)}[ph]
    assert len(vals) == n_rows and va.iters == n_valid, f"IMPL-37: {len(vals)} epochs recorded, {va.iters} validated"
    if ph in ("epoch", "validate"):  # after_epoch still records the epoch: its validation as nan (fastai: absent)
        assert np.isnan(vals[e, 1]) and np.isfinite(vals[1 - e]).all(), f"IMPL-37: a skipped validation: {vals}"
    learn.fit(1, 1e-3)  # and the learner trains on
    assert len(learn.recorder.values) == 1 and np.isfinite(learn.recorder.values[0]).all(), "IMPL-37: next fit"


@pytest.mark.claim("IMPL-37")
def test_callbacks_run_by_order_and_can_schedule():
    "`order` sorts callbacks (stable); a before_batch that sets the LR is the LR that batch trains with."
    learn, *_ = make(IMPL)
    late, early = _Events(order=70), _Events(order=-5)
    seen = []
    late.on = lambda ev, l: seen.append("late") if ev == "before_fit" else None
    early.on = lambda ev, l: seen.append("early") if ev == "before_fit" else None

    class Sched:
        def before_batch(self, learn):
            learn.set_hyper("lr", 1e-4 * (learn.train_iter + 1))

    learn.fit(2, 1e-3, cbs=[late, Sched(), early])
    assert seen == ["early", "late"], f"IMPL-37: before_fit ran in the order {seen}"
    close_rel(IMPL.train_log(learn)["lrs"], np.outer(1e-4 * np.arange(1, 17), [1, 1, 1]), rtol=1e-12,
          what="IMPL-37: the LR a before_batch callback set")


# ---------------------------------------------------------------- the epoch table (IMPL-38)
def _fastprogress_table(names, rows):
    "fastprogress's console table (fastai's ProgressCallback._write_stats -> ConsoleMasterBar.write), captured."
    import contextlib
    import io

    fp = pytest.importorskip("fastprogress.fastprogress")
    bar, out = fp.ConsoleMasterBar(range(len(rows))), io.StringIO()
    with contextlib.redirect_stdout(out):
        for line in [names, *rows]:
            bar.write([f"{v:.6f}" if isinstance(v, float) else str(v) for v in line], table=True)
    return [ln.rstrip() for ln in out.getvalue().splitlines()]


def _acc(o, y):
    return (o.argmax(-1) == y).float().mean()


@pytest.mark.claim("IMPL-38")
def test_fit_prints_fastais_epoch_table(capsys):
    "fit(3) with a metric prints fastprogress's table: the header, then epoch, recorder.values, recorder.times."
    from fastprogress.fastprogress import format_time

    learn, *_ = make(IMPL, progress=True, metrics=[_acc])
    learn.fit(3, 1e-2)
    out, err = capsys.readouterr()
    r = learn.recorder
    assert len(r.values) == len(r.times) == 3, f"IMPL-38: {len(r.values)} rows, {len(r.times)} times"
    rows = [[e, *map(float, v), format_time(t)] for e, (v, t) in enumerate(zip(r.values, r.times))]
    want = _fastprogress_table(["epoch", "train_loss", "valid_loss", "_acc", "time"], rows)
    assert out.splitlines() == want, f"IMPL-38: printed\n{out}\nfastprogress prints\n" + "\n".join(want)
    assert err == "", f"IMPL-38: no progress bar when stderr is not a terminal, got {err!r}"


class _Err:
    "A metric object: no __name__ of its own."

    def __call__(self, o, y):
        return 1 - _acc(o, y)


def _half(o, y):
    "A metric that returns a plain float."
    return 0.5


class _Flushes(io.StringIO):
    "stdout that remembers what had been written at each flush."

    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(self.getvalue())


@pytest.mark.claim("IMPL-38")
def test_metric_names_in_the_table_and_each_line_flushed(monkeypatch):
    """Metric names: a function's __name__, a functools.partial's function's (as fastai), an object's class name; a
    metric returning a plain float is recorded as it is; the header and every row are flushed as printed (a log
    piped to a file shows each epoch when it ends)."""
    out = _Flushes()
    monkeypatch.setattr(sys, "stdout", out)
    learn, *_ = make(IMPL, progress=True, metrics=[functools.partial(_acc), _Err(), _half])
    learn.fit(2, 1e-2)
    monkeypatch.undo()
    lines = out.getvalue().splitlines(keepends=True)
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "_acc", "_Err", "_half", "time"], lines[0]
    assert [r[-1] for r in learn.recorder.values] == [0.5, 0.5], f"IMPL-38: {learn.recorder.values}"
    ends = ["".join(lines[: i + 1]) for i in range(len(lines))]
    assert len(lines) == 3 and all(e in out.flushed for e in ends), (
        f"IMPL-38: printed {lines}, flushed after {[len(f.splitlines()) for f in out.flushed]} lines")


@pytest.mark.claim("IMPL-38")
def test_time_column_is_the_epochs_wall_time(capsys):
    "A callback sleeping 1.1 s in epoch 1's training: recorder.times[1] >= 1.1, printed 00:01; epoch 0 under 1 s."
    import time

    class Slow:
        def after_train(self, learn):
            if learn.epoch == 1:
                time.sleep(1.1)

    learn, *_ = make(IMPL, progress=True)
    learn.fit(2, 1e-2, cbs=[Slow()])
    t = learn.recorder.times
    rows = capsys.readouterr().out.splitlines()
    assert t[1] >= 1.1 > t[0], f"IMPL-38: recorder.times {t}"
    assert [r.split()[-1] for r in rows[1:]] == ["00:00", "00:01"], f"IMPL-38: time column of {rows}"


@pytest.mark.claim("IMPL-38")
@given(t=st.floats(0, 4e5))
def test_format_time_is_fastprogress(t):
    "mm:ss, h:mm:ss from an hour: the same string as fastprogress's format_time."
    fp = pytest.importorskip("fastprogress.fastprogress")
    from impl.callback import format_time

    assert format_time(t) == fp.format_time(t), f"IMPL-38: format_time({t}) = {format_time(t)!r}"


@pytest.mark.claim("IMPL-38")
@pytest.mark.parametrize("how", ["progress=False", "IMPL_QUIET=1", "quiet()", "default", "True in quiet()"])
def test_quiet_prints_nothing(how, capsys, monkeypatch):
    "No table and no bar with progress=False, IMPL_QUIET or quiet(); the default prints; an explicit True wins."
    from impl.callback import quiet

    monkeypatch.delenv("IMPL_QUIET", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # tqdm draws on a terminal
    if how == "IMPL_QUIET=1":
        monkeypatch.setenv("IMPL_QUIET", "1")
    learn, *_ = make(IMPL, progress={"progress=False": False, "True in quiet()": True}.get(how))
    with quiet() if "quiet()" in how else contextlib.nullcontext():
        learn.fit(2, 1e-2)
    out, err = capsys.readouterr()
    if how in ("default", "True in quiet()"):
        assert len(out.splitlines()) == 3 and out.split()[:3] == ["epoch", "train_loss", "valid_loss"], out
        assert "epoch 2/2" in err and "/8 " in err, f"IMPL-38: the progress bar on a terminal: {err!r}"
    else:
        assert (out, err) == ("", ""), f"IMPL-38: {how} printed {out!r} {err!r}"


@pytest.mark.claim("DLR-4")
def test_book_error_rates_are_multiples_of_1_over_1478():
    "Every Pets error rate the book prints is k/1478 to 6 decimals (1478 = 20% of 7390); 1477 or 1479 would not do."
    vals = [v for vs in BOOK_ERRORS.values() for v in vs]
    bad = [v for v in vals if abs(round(v * 1478) / 1478 - v) >= 5e-7]
    assert not bad, f"DLR-4: not k/1478 to 6 decimals: {bad}"
    for n in (1477, 1479):
        assert any(abs(round(v * n) / n - v) >= 5e-7 for v in vals), f"DLR-4: {n} fits too: the check proves nothing"


_RUNS = {}


def _pets(backend, real_data, recipe):
    "Final (and intermediate) error rates of a recipe on real Pets with a pretrained resnet34 (cached per backend)."
    key = (backend.name, recipe)
    if key not in _RUNS:
        from torchvision.models import resnet34

        torch.manual_seed(42)
        dls = backend.pets_dls(real_data / "oxford-iiit-pet", bs=64, size=224, seed=42, device="cuda")
        learn = backend.vision_learner(dls, resnet34, pretrained=True, metrics=[backend.error_rate])
        errs = []
        if recipe[0] == "fine_tune":
            learn.fine_tune(recipe[1], base_lr=recipe[2])
        else:  # ("manual", lr_max after unfreezing, epochs): fit_one_cycle(3, 3e-3); unfreeze(); fit_one_cycle(...)
            learn.fit_one_cycle(3, 3e-3)
            errs.append(backend.valid_metrics(learn)[1])
            learn.unfreeze()
            learn.fit_one_cycle(recipe[2], lr_max=recipe[1])
        _RUNS[key] = errs + [backend.valid_metrics(learn)[1]]
    return _RUNS[key]


def real_pets(f):
    "Real Pets, ImageNet weights, a GPU; long."
    for m in (pytest.mark.real_data, pytest.mark.pretrained, pytest.mark.cuda, pytest.mark.slow):
        f = m(f)
    return f


@pytest.mark.claim("LR-2")
@real_pets
def test_real_too_high_lr_gets_most_wrong(backend, real_data):
    "fine_tune(1, base_lr=0.1) ends with most of the validation set wrong: error > 0.5 and > 3x the default LR's."
    hi, = _pets(backend, real_data, ("fine_tune", 1, 0.1))
    ok, = _pets(backend, real_data, ("fine_tune", 1, 2e-3))
    assert hi > 0.5 and hi > 3 * ok, f"LR-2: error {hi:.4f} at base_lr 0.1 vs {ok:.4f} at 2e-3 (book 0.834 vs ~0.08)"


@pytest.mark.claim("LR-12")
@real_pets
def test_real_fine_tune_at_3e_3(backend, real_data):
    "fine_tune(2, base_lr=3e-3): 3 epochs in all, final error < 0.10 (book 0.083221)."
    err, = _pets(backend, real_data, ("fine_tune", 2, 3e-3))
    assert err < 0.10, f"LR-12: final error {err:.4f}, book 0.083221"


@pytest.mark.claim("FT-10")
@real_pets
def test_real_manual_unfreeze_at_1e_5(backend, real_data):
    "fit_one_cycle(3, 3e-3); unfreeze(); fit_one_cycle(6, lr_max=1e-5): final < 0.075 and below the frozen error."
    frozen, final = _pets(backend, real_data, ("manual", 1e-5, 6))
    assert final < 0.075 and final < frozen, f"FT-10: error {frozen:.4f} frozen -> {final:.4f} (book 0.074 -> 0.0595)"


@pytest.mark.claim("DLR-3")
@real_pets
def test_real_discriminative_lrs(backend, real_data):
    "... fit_one_cycle(12, lr_max=slice(1e-6, 1e-4)): final < 0.065 and not above FT-10's final error + 0.01."
    _, final = _pets(backend, real_data, ("manual", slice(1e-6, 1e-4), 12))
    _, ft10 = _pets(backend, real_data, ("manual", 1e-5, 6))
    assert final < 0.065 and final <= ft10 + 0.01, f"DLR-3: error {final:.4f} vs FT-10's {ft10:.4f} (book 0.054)"
