"""Every option of impl's training modules (impl.learner, impl.lr_find, impl.fp16): each keyword argument, given a
non-default value, has the effect its docstring states, checked against the lesson, an independent formula (the
1cycle and exponential schedules, the debiased EMA, the AdamW and SGD updates, the suggestion rules, all written out
here) or fastai's behaviour.

Options whose effect is asserted elsewhere are not repeated: fit_one_cycle(lr_max=None and slice) (OC-4), Learner(lr)
with fit_one_cycle (OC-4), Learner(train_bn) with freeze() (FT-6), freeze_to(1) (FT-7), fine_tune(base_lr,
freeze_epochs) (FT-3..5), lr_find(start_lr, end_lr, num_it) on drawn values (LR-3), lr_find(stop_div=True) (LR-6),
the mark of the valley suggestion (LR-11), the GradScaler defaults (FP16-3) in spec/test_learner.py,
test_lr_find.py and test_fp16.py; Learner(progress) and the epoch table (IMPL-38) in their own module. Through the
`backend` fixture where both adapters have the name and a lesson claim says what the option does; impl's own options
(IMPL-39) on impl alone. fastai's GradScaler options need CUDA (skipped on a CPU, FP16-5).
"""

import copy
import functools
import io
import math
import re
import sys

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spec.backends import BackendUnavailable, get
from spec.tiny import (  # noqa: F401
    close_rel,
    cnn,
    data,
    ema,
    group_of,
    is_norm,
    make,
    mlp,
    one_thread,
    params,
    plain,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
IMPL = get("impl")  # IMPL-n claims are impl's own contract: tested on impl only
DEV = "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- independent formulas
def cos(s, e, p):
    "Half a cosine from s (p=0) to e (p=1)."
    return s + (1 + np.cos(np.pi * (1 - p))) * (e - s) / 2


def cycle(n, starts, peaks, ends, pct):
    "n batches (p = i/n) x groups: cosine start -> peak over pct of the batches, then peak -> end."
    p = (np.arange(n) / n)[:, None]
    s, m, e = (np.asarray(v, dtype=float)[None, :] for v in (starts, peaks, ends))
    return np.where(p < pct, cos(s, m, p / pct), cos(m, e, (p - pct) / (1 - pct)))


def lr_cycle(n, peaks, div=25.0, div_final=1e5, pct=0.25):
    hi = np.asarray(peaks, dtype=float)
    return cycle(n, hi / div, hi, hi / div_final, pct)


def mom_cycle(n, n_groups, moms, pct=0.25):
    return cycle(n, [moms[0]] * n_groups, [moms[1]] * n_groups, [moms[2]] * n_groups, pct)


def changed(before, m):
    return [not torch.equal(a, b) for a, b in zip(before, params(m))]


def other_loader(n=20, bs=6, seed=7):
    "Fresh data the learner never saw, an uneven last batch: (loader, x, y)."
    x, y = data(n, seed=seed)
    return DataLoader(TensorDataset(x, y), batch_size=bs), x, y


@torch.no_grad()
def outputs(model, x):
    "The model's outputs in eval mode (its train/eval mode put back)."
    was = model.training
    model.eval()
    try:
        return plain(model(x.to(next(model.parameters()).device))).float().cpu()
    finally:
        model.train(was)


# ---------------------------------------------------------------- fit_one_cycle and Learner(moms)
@pytest.mark.claim("OC-1", "OC-2")
def test_one_cycle_every_option_and_learner_moms(backend):
    """Learner(moms=(0.9, 0.7, 0.9)) is the momentum cycle of every fit_one_cycle without moms; div, div_final,
    pct_start and moms given to fit_one_cycle shape that fit's cycle as the formula says."""
    learn, *_ = make(backend, moms=(0.9, 0.7, 0.9))
    learn.fit_one_cycle(2, 3e-3, div=10, div_final=1e3, pct_start=0.5)
    log = backend.train_log(learn)
    close_rel(log["lrs"], lr_cycle(16, [3e-3] * 3, 10, 1e3, 0.5), what="OC-1: div=10, div_final=1e3, pct_start=0.5")
    assert math.isclose(log["lrs"][0, 0], 3e-4, rel_tol=1e-6), f"OC-1: first LR {log['lrs'][0, 0]}, lr_max/div = 3e-4"
    close_rel(log["moms"], mom_cycle(16, 3, (0.9, 0.7, 0.9), 0.5), what="OC-2: Learner(moms=(0.9, 0.7, 0.9))")
    learn.fit_one_cycle(1, slice(1e-4, 1e-2), div=4, div_final=50, pct_start=0.125, moms=(0.8, 0.6, 0.85))
    log = backend.train_log(learn)
    close_rel(log["lrs"][16:], lr_cycle(8, [1e-4, 1e-3, 1e-2], 4, 50, 0.125), what="OC-1: second fit's own cycle")
    close_rel(log["moms"][16:], mom_cycle(8, 3, (0.8, 0.6, 0.85), 0.125), what="OC-2: moms=(0.8, 0.6, 0.85) overrides")
    assert log["lrs"][16:, 2].argmax() == 1, "OC-1: pct_start=0.125 of 8 batches peaks at batch 1"


@pytest.mark.claim("OC-1")
def test_one_cycle_defaults_are_fastais(backend):
    """fit_one_cycle(1, lr_max) without div, div_final or pct_start over 64 one-item batches: fastai's defaults
    (div=25, div_final=1e5, pct_start=0.25). The first LR is lr_max/25; the last is lr_max/1e5 + 0.1 % of the way
    back up (div_final=100001 would move it by 9e-8 relative): impl computes the schedule in float64, so it matches the
    formula to rounding (1e-9 relative); fastai's float32 positions to 1e-5."""
    torch.manual_seed(0)
    x, y = torch.randn(68, 2), torch.randn(68, 1)
    tr = DataLoader(TensorDataset(x[4:], y[4:]), batch_size=1)
    va = DataLoader(TensorDataset(x[:4], y[:4]), batch_size=4)
    learn = backend.learner(backend.dls_from_loaders(tr, va), nn.Linear(2, 1), nn.MSELoss())
    learn.fit_one_cycle(1, 1e-3)
    lrs, want = np.asarray(backend.train_log(learn)["lrs"], dtype=float), lr_cycle(64, [1e-3])
    close_rel(lrs, want, what="OC-1: fit_one_cycle(1, 1e-3) with the default div, div_final, pct_start")
    rtol = 1e-9 if backend.name == "impl" else 1e-5
    close_rel(lrs[[0, -1], 0], [1e-3 / 25, want[-1, 0]], rtol=rtol, what="OC-1: first LR lr_max/25, last near /1e5")


@pytest.mark.claim("IMPL-59")
def test_hypers_without_k_are_the_lrs():
    "hypers() is every group's LR (fit(lr=slice(1e-4, 1e-2)): 1e-4, 1e-3, 1e-2); hypers('mom'), hypers('weight_decay')."
    learn, *_ = make(IMPL)
    learn.fit(1, slice(1e-4, 1e-2), wd=0.1)
    close_rel(learn.hypers(), [1e-4, 1e-3, 1e-2], rtol=1e-12, what="IMPL-59: hypers() = each group's lr")
    close_rel(learn.hypers("mom"), [0.9] * 3, rtol=0, what="IMPL-59: hypers('mom') = Adam's betas[0], torch's 0.9")
    close_rel(learn.hypers("weight_decay"), [0.1] * 3, rtol=0, what="IMPL-59: hypers('weight_decay') = fit's wd")


# ---------------------------------------------------------------- freeze_to with train_bn=False
@pytest.mark.claim("FT-7")
def test_freeze_to_n_with_train_bn_false(backend):
    """train_bn=False freezes a frozen group's BatchNorm too: freeze_to(-2) = freeze_to(1) (groups 1, 2 train),
    freeze_to(2) only the head; a fit moves exactly the parameters that require grad."""
    learn, *_ = make(backend, train_bn=False)
    g, bn = group_of(learn.model), is_norm(learn.model)
    for n, k in ((-2, 1), (2, 2), (0, 0)):
        learn.freeze_to(n)
        want = [i >= k for i in g]
        assert backend.requires_grad(learn) == want, f"FT-7: freeze_to({n}) with train_bn=False: requires_grad"
    learn.freeze_to(2)
    before = params(learn.model)
    learn.fit(1, 1e-2)
    want = [i == 2 for i in g]
    assert changed(before, learn.model) == want, f"FT-7: freeze_to(2), train_bn=False: changed parameters ({bn})"


# ---------------------------------------------------------------- fine_tune
@pytest.mark.claim("FT-3", "FT-4", "FT-5")
def test_fine_tune_every_option(backend):
    """fine_tune(1, base_lr=1e-2, freeze_epochs=2, lr_mult=10, pct_start=0.5, div=2, div_final=1e3,
    moms=(0.9, 0.8, 0.9)): 2 frozen epochs at slice(1e-2) (pct_start .99, div 25), then 1 unfrozen epoch at
    slice(5e-3/10, 5e-3) (LR ratio 10 between the first and last group), with pct_start .5 and div 2; div_final and
    moms go to both phases."""
    learn, tr, va = make(backend)
    before = params(learn.model)
    learn.fine_tune(1, base_lr=1e-2, freeze_epochs=2, lr_mult=10, pct_start=0.5, div=2.0, div_final=1e3,
                    moms=(0.9, 0.8, 0.9))
    log = backend.train_log(learn)
    assert (log["epochs"], va.iters, len(log["lrs"])) == (3, 3, 24), (
        f"FT-3: {log['epochs']} epochs, {va.iters} validations, {len(log['lrs'])} batches; expected 2 + 1 epochs")
    want = lr_cycle(16, [1e-3, 1e-3, 1e-2], 25, 1e3, 0.99)
    close_rel(log["lrs"][:16], want, what="FT-4: frozen phase, div_final=1e3")
    peaks = 5e-4 * 10 ** (np.arange(3) / 2)  # even_mults(base_lr/2/lr_mult, base_lr/2, 3)
    want = lr_cycle(8, peaks, 2.0, 1e3, 0.5)
    close_rel(log["lrs"][16:], want, what="FT-5: unfrozen phase, lr_mult=10, div=2, pct .5")
    close_rel(log["lrs"][16:, 2] / log["lrs"][16:, 0], [10.0] * 8, what="FT-5: last/first group LR = lr_mult")
    close_rel(log["moms"][:16], mom_cycle(16, 3, (0.9, 0.8, 0.9), 0.99), what="FT-3: moms in the frozen phase")
    close_rel(log["moms"][16:], mom_cycle(8, 3, (0.9, 0.8, 0.9), 0.5), what="FT-3: moms in the unfrozen phase")
    frozen = torch.tensor([g < 2 and not b for g, b in zip(group_of(learn.model), is_norm(learn.model))])
    mask = torch.repeat_interleave(frozen, torch.tensor([p.numel() for p in before]))
    first = torch.cat([b.flatten() for b in before])
    assert torch.equal(log["params"][15][mask], first[mask]), "FT-3: the body moved in the 2 frozen epochs"
    assert not torch.equal(log["params"][16][mask], first[mask]), "FT-3: the body never moved after unfreeze"


@pytest.mark.claim("FT-3")
def test_fine_tune_without_frozen_epochs(backend):
    "freeze_epochs=0: no frozen epoch; one unfrozen 1cycle at slice(base_lr/2/lr_mult, base_lr/2), everything trains."
    learn, tr, va = make(backend)
    learn.fine_tune(1, base_lr=4e-3, freeze_epochs=0)
    log = backend.train_log(learn)
    assert (log["epochs"], len(log["lrs"])) == (1, 8), f"FT-3: {log['epochs']} epochs, {len(log['lrs'])} batches"
    close_rel(log["lrs"], lr_cycle(8, [2e-5, 2e-4, 2e-3], 5.0, 1e5, 0.3), what="FT-3: freeze_epochs=0, unfrozen cycle")
    assert all(backend.requires_grad(learn)), "FT-3: fine_tune ends unfrozen"


# ---------------------------------------------------------------- lr_find
def _blow_up_after(k, factor=100.0):
    "A cross-entropy multiplied by `factor` from the (k+1)-th call on: the loss diverges, finitely."
    ce, calls = nn.CrossEntropyLoss(), [0]

    def loss(o, y):
        calls[0] += 1
        return ce(o, y) * (factor if calls[0] > k else 1.0)

    return loss


@pytest.mark.claim("LR-3", "LR-6")
def test_lr_find_schedule_and_stop_div(backend):
    """start_lr=1e-5, end_lr=1, num_it=30: batch i at 1e-5 * 1e5**(i/30); with stop_div=False all 30 batches run
    although the loss diverges (x100 from batch 11), with stop_div=True the sweep stops at batch 11."""
    learn, *_ = make(backend, loss_func=_blow_up_after(10))
    backend.lr_find(learn, start_lr=1e-5, end_lr=1, num_it=30, stop_div=False)
    lrs, s = backend.finder_curve(learn)
    close_rel(lrs, 1e-5 * 1e5 ** (np.arange(30) / 30), rtol=1e-9, what="LR-3: start_lr=1e-5, end_lr=1, num_it=30")
    assert s[-1] > 4 * s.min(), f"LR-6: the loss did diverge (smoothed {s[-1]:.3g} vs best {s.min():.3g})"
    learn, *_ = make(backend, loss_func=_blow_up_after(10))
    backend.lr_find(learn, start_lr=1e-5, end_lr=1, num_it=30, stop_div=True)
    lrs, s = backend.finder_curve(learn)
    assert len(s) == 11, f"LR-6: stop_div=True stopped after {len(s)} batches, expected 11 (first > 4x best)"
    close_rel(lrs, 1e-5 * 1e5 ** (np.arange(11) / 30), rtol=1e-9, what="LR-3: the stopped sweep's LRs")


def valley_ref(lrs, losses):
    "Longest strictly decreasing subsequence (the first of maximal length), 1/3 + 1/6 of its length in."
    n, lds = len(losses), np.ones(len(losses), int)
    for i in range(1, n):
        prev = lds[:i][losses[:i] > losses[i]]
        lds[i] = 1 + prev.max() if len(prev) else 1
    end = int(np.argmax(lds))
    if lds[end] == 1:
        return lrs[0]
    k = lds[end] / 3
    return lrs[end - lds[end] + int(k) + int(k / 2)]


def slide_ref(lrs, losses, lr_diff=15, thresh=0.005, adjust_value=1.0):
    "Move [l, r] = [n-1-k-lr_diff, n-1-k] left while the loss gradient differs by > thresh at its ends; lrs[l]."
    g, n = np.gradient(np.float64(losses)), len(losses)
    k = 0
    while n - 1 - k - lr_diff >= 0 and abs(g[n - 1 - k] - g[n - 1 - k - lr_diff]) > thresh:
        k += 1
    return float(lrs[n - lr_diff - max(k, 1)]) * adjust_value


def steep_refs(lrs, losses):
    "Every LR whose slope d loss / d log(lr) ties the lowest within float32 noise."
    slope = np.diff(np.float64(losses)) / np.diff(np.log(np.float64(lrs)))
    return lrs[:-1][slope <= slope.min() + 1e-4 * abs(slope.min()) + 1e-5]


@pytest.mark.claim("LR-10", "LR-15")
def test_lr_find_all_four_suggestions(backend):
    """suggest_funcs=(minimum, steep, slide, valley) with num_it=50: SuggestedLRs with those four names in that order,
    each the rule's value on the curve without its first num_it//10 = 5 and last 5 points."""
    learn, *_ = make(backend)
    r = backend.lr_find(learn, num_it=50, suggest_funcs=(backend.minimum, backend.steep, backend.slide, backend.valley))
    assert type(r).__name__ == "SuggestedLRs" and r._fields == ("minimum", "steep", "slide", "valley"), f"LR-10: {r!r}"
    lrs, s = backend.finder_curve(learn)
    assert len(lrs) == 50, f"LR-10: {len(lrs)} points, expected num_it=50 (stop_div never triggers here)"
    lrs, s = np.float32(lrs[5:-5]), np.float32(s[5:-5])
    assert math.isclose(r.minimum, lrs[np.argmin(s)] / 10, rel_tol=1e-6), f"LR-15: minimum {r.minimum}"
    assert np.isclose(r.steep, steep_refs(lrs, s), rtol=1e-6).any(), f"LR-15: steep {r.steep}"
    assert math.isclose(r.slide, slide_ref(lrs, s), rel_tol=1e-6), f"LR-10: slide {r.slide}, rule {slide_ref(lrs, s)}"
    assert math.isclose(r.valley, valley_ref(lrs, s), rel_tol=1e-6), f"LR-10: valley {r.valley}"


def _curve():
    "A float32 LR-finder-like curve: flat, a long fall, a rise; with a wiggle so no two gradients are equal."
    lrs = torch.tensor(10 ** (-7 + 0.08 * np.arange(80)), dtype=torch.float32)
    i = np.arange(80)
    loss = 2.0 - 1.5 / (1 + np.exp(-(i - 35) / 6)) + np.where(i > 60, 0.02 * (i - 60) ** 2, 0) + 0.01 * np.sin(i)
    return lrs, torch.tensor(loss, dtype=torch.float32)


@pytest.mark.claim("LR-10")
@pytest.mark.parametrize("kw", [dict(lr_diff=5), dict(thresh=0.05), dict(adjust_value=0.5),
                                dict(lr_diff=8, thresh=0.02, adjust_value=2.0)], ids=str)
def test_slide_options(backend, kw):
    "slide(lrs, losses, num_it, lr_diff, thresh, adjust_value): each option changes the suggestion as the rule says."
    lrs, losses = _curve()
    lr, (x, y) = backend.slide(lrs, losses, 100, **kw)
    want = slide_ref(lrs.numpy(), losses.numpy(), **kw)
    assert math.isclose(lr, want, rel_tol=1e-6), f"LR-10: slide(**{kw}) = {lr}, the rule gives {want}"
    assert want != slide_ref(lrs.numpy(), losses.numpy()), f"LR-10: {kw} should change the suggestion on this curve"
    yi = np.interp(np.log10(want), np.log10(lrs.numpy()), losses.numpy())
    assert math.isclose(x, want, rel_tol=1e-6) and math.isclose(y, yi, rel_tol=1e-5), f"LR-10: point {(x, y)}"


@pytest.mark.claim("LR-10")
def test_lr_find_partial_suggestion_and_none(backend):
    "A functools.partial suggestion is named after its function and keeps its options; suggest_funcs=None: None."
    learn, *_ = make(backend)
    r = backend.lr_find(learn, suggest_funcs=(functools.partial(backend.slide, lr_diff=5, adjust_value=0.5),))
    lrs, s = backend.finder_curve(learn)
    want = slide_ref(np.float32(lrs[10:-5]), np.float32(s[10:-5]), lr_diff=5, adjust_value=0.5)
    assert r._fields == ("slide",) and math.isclose(r.slide, want, rel_tol=1e-6), f"LR-10: {r!r}, expected {want}"
    assert backend.lr_find(learn, num_it=20, suggest_funcs=None) is None, "LR-10: suggest_funcs=None returns None"
    assert len(backend.finder_curve(learn)[0]) == 20, "LR-10: suggest_funcs=None still sweeps"


# ---------------------------------------------------------------- plots
def _lines(fig=None):
    ax = fig.axes[0] if fig is not None else plt.gca()
    return ax, ax.get_lines()


@pytest.mark.claim("LR-11")
def test_plot_lr_find_options(backend):
    """show_plot=False draws nothing; recorder.plot_lr_find(skip_end=10) plots the curve less its last 10 points,
    skip_end=0 all of it; suggestions=[(x, y)] with nms=['here'] marks that point with that label."""
    plt.close("all")
    learn, *_ = make(backend)
    backend.lr_find(learn, num_it=40, stop_div=False)
    assert plt.get_fignums() == [], "LR-11: lr_find(show_plot=False) drew a figure"
    lrs, s = backend.finder_curve(learn)
    for k in (10, 0):
        plt.close("all")
        learn.recorder.plot_lr_find(skip_end=k)
        ax, (line, *rest) = _lines()
        close_rel(line.get_xdata(), lrs[: len(lrs) - k], rtol=1e-7, what=f"LR-11: skip_end={k}: x = the LRs")
        close_rel(line.get_ydata(), s[: len(s) - k], rtol=1e-7, what=f"LR-11: skip_end={k}: y = the smoothed losses")
        assert rest == [], f"LR-11: no suggestions, no marks: {len(rest)} extra lines"
    plt.close("all")
    learn.recorder.plot_lr_find(suggestions=[(float(lrs[20]), float(s[20]))], nms=["here"])
    ax, (line, mark) = _lines()
    assert mark.get_label() == "here" and ax.get_legend() is not None, f"LR-11: mark label {mark.get_label()!r}"
    close_rel([mark.get_xdata()[0], mark.get_ydata()[0]], [lrs[20], s[20]], rtol=1e-7, what="LR-11: the marked point")
    assert len(line.get_xdata()) == len(lrs) - 5, "LR-11: the default skip_end is 5"
    plt.close("all")


@pytest.mark.claim("OC-5")
def test_plot_loss_options(backend):
    """plot_loss(skip_start=2, with_valid=False): the smoothed training loss from batch 2 only;
    plot_loss(skip_start=0): from batch 0, and the validation loss at the end of each epoch (batches 8, 16)."""
    learn, *_ = make(backend)
    learn.fit(2, 1e-2)
    want = ema(backend.train_log(learn)["losses"])
    plt.close("all")
    learn.recorder.plot_loss(skip_start=2, with_valid=False)
    _, lines = _lines()
    assert len(lines) == 1, f"OC-5: with_valid=False drew {len(lines)} lines, expected the training loss only"
    assert list(lines[0].get_xdata()) == list(range(2, 16)), f"OC-5: skip_start=2: x = {list(lines[0].get_xdata())}"
    close_rel(lines[0].get_ydata(), want[2:], rtol=1e-4, what="OC-5: skip_start=2: y = smoothed losses from batch 2")
    plt.close("all")
    learn.recorder.plot_loss(skip_start=0)
    _, (train, valid) = _lines()
    close_rel(train.get_ydata(), want, rtol=1e-4, what="OC-5: skip_start=0: every smoothed loss")
    assert list(valid.get_xdata()) == [8, 16], f"OC-5: valid points at batches {list(valid.get_xdata())}"
    assert math.isclose(valid.get_ydata()[-1], backend.valid_metrics(learn)[0], rel_tol=1e-5), "OC-5: valid loss"
    plt.close("all")


@pytest.mark.claim("IMPL-39")
def test_plot_loss_skip_start_drops_early_valid_points():
    """plot_loss(skip_start=10) after 2 epochs of 8 batches: training points from batch 10, and validation points
    only from then on (batch 16; batch 8 is skipped with the training points before it), as fastai 2.8.12's
    Recorder.plot_loss does (`idx = (np.array(self.iters) < skip_start).sum()`; checked on fastai when written)."""
    learn, *_ = make(IMPL)
    learn.fit(2, 1e-2)
    plt.close("all")
    learn.recorder.plot_loss(skip_start=10)
    _, (train, valid) = _lines()
    assert list(train.get_xdata()) == list(range(10, 16)), f"IMPL-39: train x {list(train.get_xdata())}"
    assert list(valid.get_xdata()) == [16], (f"IMPL-39: skip_start=10 plots valid points at {list(valid.get_xdata())}, "
                                             "expected only batch 16 (batch 8 is before skip_start, fastai drops it)")
    plt.close("all")


def _plot_loss_look(be):
    "plot_loss(skip_start=8) after 2 epochs of 8 batches: (title, labels, line labels, legend, train x, valid x)."
    learn, *_ = make(be)
    learn.fit(2, 1e-2)
    plt.close("all")
    learn.recorder.plot_loss(skip_start=8)
    ax, (train, valid) = _lines()
    look = (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), train.get_label(), valid.get_label(),
            [t.get_text() for t in ax.get_legend().get_texts()], list(train.get_xdata()), list(valid.get_xdata()))
    plt.close("all")
    return look


@pytest.mark.claim("IMPL-53")
def test_impl_plot_loss_looks_like_fastais():
    """plot_loss(skip_start=8) after 2 epochs of 8 batches, on impl and on fastai (the oracle): titled 'learning
    curve', x 'steps', y 'loss', lines and legend 'train' and 'valid'; the epoch ending at batch 8 (not before
    skip_start) keeps its valid point."""
    want = ("learning curve", "steps", "loss", "train", "valid", ["train", "valid"], list(range(8, 16)), [8, 16])
    got = {be.name: _plot_loss_look(be) for be in _oracle_too()}
    assert all(g == want for g in got.values()), f"IMPL-53: plot_loss looks {got}, expected {want}"


def _plot_lr_find_look(be):
    """plot_lr_find(skip_end=0) after fit_one_cycle(1, slice(1e-4, 1e-2)) on 3 groups, two suggestions, legend.loc
    'upper right' in rcParams; then a line the user adds. Checks the curve's data here, returns what it looks like."""
    learn, *_ = make(be)
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    want = ema(be.train_log(learn)["losses"])
    colors = [to_rgba(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    plt.close("all")
    with plt.rc_context({"legend.loc": "upper right"}):
        learn.recorder.plot_lr_find(skip_end=0, suggestions=[(1e-3, want[2]), (5e-3, want[5])], nms=["a", "b"])
    ax, (curve, *marks) = _lines()
    close_rel(curve.get_xdata(), lr_cycle(8, [1e-2])[:, 0], rtol=1e-6, what=f"{be.name}: x = the last group's LRs")
    close_rel(curve.get_ydata(), want, rtol=1e-4, what=f"{be.name}: y = the smoothed losses")
    leg = ax.get_legend()
    (extra,) = ax.plot([1e-3, 1e-2], [1, 1])
    look = (ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale(),
            [(m.get_label(), m.get_marker(), m.get_linestyle(), colors.index(to_rgba(m.get_color()))) for m in marks],
            [t.get_text() for t in leg.get_texts()], leg._loc, colors.index(to_rgba(extra.get_color())))
    plt.close("all")
    return look


@pytest.mark.claim("IMPL-53")
def test_impl_plot_lr_find_looks_like_fastais():
    """plot_lr_find on impl and on fastai (the oracle): axes 'Learning Rate' (log) and 'Loss'; two suggestions are
    round markers without line in the cycle's 2nd and 3rd colors, named in a legend at loc 'best' (matplotlib's code
    0, read from the legend's private _loc: no public getter) even with rcParams['legend.loc'] set otherwise, and a
    line the user adds next takes the cycle's 2nd color (the marks did not advance the axes' cycle)."""
    want = ("Learning Rate", "Loss", "log", [("a", "o", "None", 1), ("b", "o", "None", 2)], ["a", "b"], 0, 1)
    got = {be.name: _plot_lr_find_look(be) for be in _oracle_too()}
    assert all(g == want for g in got.values()), f"IMPL-53: plot_lr_find looks {got}, expected {want}"


def _oracle_too():
    "impl, and fastai where it is installed (the oracle for what impl's plots look like)."
    try:
        return [IMPL, get("fastai")]
    except BackendUnavailable:  # fastai not installed: impl is still checked against the values
        return [IMPL]


class _Terminal(io.StringIO):
    "A terminal's stderr: tqdm draws its bar there (disable=None) and asks its width (os.get_terminal_size)."

    def isatty(self):
        return True

    def fileno(self):
        return 2


@pytest.mark.claim("IMPL-47")
def test_progress_bar_per_epoch_follows_width_and_is_cleared(monkeypatch):
    """fit(2) on a terminal 60 columns wide, widened to 100 during the 3rd batch: bars 'epoch 1/2' and 'epoch 2/2'
    over 8 batches, drawn 59 wide (tqdm keeps the last column free), then 99 wide from the resize on; each bar is
    cleared at the end of its epoch's training (a carriage return, no newline: nothing of it stays on screen)."""
    import os
    import time

    from impl.callback import Callback

    cols = [60]
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((cols[0], 24)))
    monkeypatch.setattr(sys, "stderr", _Terminal())

    class Resize(Callback):
        def after_batch(self, learn):
            if len(learn.recorder.lrs) == 3:
                cols[0] = 100
                time.sleep(0.15)  # past tqdm's mininterval (0.1 s): the bar redraws at this batch

    learn, *_ = make(IMPL, progress=True)
    learn.fit(2, 1e-2, cbs=[Resize()])
    err = sys.stderr.getvalue()
    assert "\n" not in err and err.endswith("\r"), f"IMPL-47: the bars were not cleared: {err[-200:]!r}"
    drawn = [s for s in err.split("\r") if s.strip()]
    descs = sorted({s.split(":")[0] for s in drawn})
    assert descs == ["epoch 1/2", "epoch 2/2"], f"IMPL-47: bar descriptions {descs}"
    assert all("/8 [" in s for s in drawn), f"IMPL-47: a bar not over the 8 training batches: {drawn}"
    first = [len(s) for s in drawn if s.startswith("epoch 1/2")]
    assert first[0] == 59 and first[-1] == 99, f"IMPL-47: widths of the first epoch's bar {first}, 60 then 100 cols"


# ---------------------------------------------------------------- get_preds, validate, metrics
@pytest.mark.claim("ML-13")
def test_get_preds_act_decoded_and_dl(backend):
    """get_preds(act=torch.sigmoid, with_decoded=True): sigmoid of the model's outputs, the targets, and the loss's
    decodes (argmax) of those preds (of -outputs with act=torch.neg); without act the loss's softmax;
    get_preds(dl=other) predicts that loader's items, in order."""
    learn, tr, va = make(backend, loss_func=backend.CrossEntropyLossFlat())
    learn.fit(1, 1e-2)
    xv, yv = (torch.cat(t) for t in zip(*va.dl))
    p, y, d = learn.get_preds(dl=va, act=torch.sigmoid, with_decoded=True)  # fastai's default dl needs dls.valid.new
    o = outputs(learn.model, xv)
    close_rel(plain(p), torch.sigmoid(o), rtol=1e-5, atol=1e-7, what="ML-13: act=torch.sigmoid")
    assert torch.equal(plain(y).cpu(), yv), "ML-13: targets of the validation set, in order"
    assert torch.equal(plain(d).cpu(), plain(p).argmax(-1).cpu()), "ML-13: with_decoded: argmax of the preds"
    p, y, d = learn.get_preds(dl=va, act=torch.neg, with_decoded=True)  # not monotone: decodes see act's output
    assert torch.equal(plain(d).cpu(), o.argmin(-1)), "ML-13: act=torch.neg: decoded = argmax(-outputs)"
    p, y = learn.get_preds(dl=va)
    close_rel(plain(p), torch.softmax(o, -1), rtol=1e-5, atol=1e-7, what="ML-13: default act = the loss's softmax")
    dl, x2, y2 = other_loader()
    p, y = learn.get_preds(dl=dl)
    close_rel(plain(p), torch.softmax(outputs(learn.model, x2), -1), rtol=1e-5, atol=1e-7, what="ML-13: dl=other")
    assert torch.equal(plain(y).cpu(), y2), "ML-13: dl=other: that loader's targets, in order"


def _one_hot_targets(cls):
    "A subclass of the torch loss `cls` that one-hot encodes the tiny task's class targets (it adds no activation)."
    return type(cls.__name__, (cls,), {"forward": lambda self, o, y: cls.forward(self, o, F.one_hot(y, 3).float())})


@pytest.mark.claim("ML-13")
@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"])
def test_get_preds_of_a_plain_torch_loss_applies_nothing(backend, loss):
    """A plain torch loss has no activation and no decodes (fastai's getcallable(loss_func, 'activation'): noop), so
    get_preds(with_decoded=True) returns the model's raw outputs as preds and as decoded, whatever the loss."""
    learn, tr, va = make(backend, loss_func=_one_hot_targets(getattr(nn, loss))() if loss != "CrossEntropyLoss"
                         else nn.CrossEntropyLoss())
    xv, _ = (torch.cat(t) for t in zip(*va.dl))
    p, y, d = learn.get_preds(dl=va, with_decoded=True)
    o = outputs(learn.model, xv)
    close_rel(plain(p), o, rtol=1e-5, atol=1e-7, what=f"ML-13: nn.{loss}(): preds are the raw outputs")
    assert torch.equal(plain(d), plain(p)), f"ML-13: nn.{loss}(): decoded = preds (no decodes)"


@pytest.mark.claim("ML-14")
def test_metrics_and_validate_dl(backend):
    """metrics=[accuracy, error_rate]: validate() = [valid_loss, accuracy, error_rate] computed by hand, one epoch
    row [train_loss, valid_loss, accuracy, error_rate] per fit epoch; validate(dl=other) on that loader."""
    learn, tr, va = make(backend, metrics=[backend.accuracy, backend.error_rate])
    learn.fit(1, 1e-2)
    row = [float(v) for v in learn.recorder.values[-1]]  # before validate(): fastai's validate rewrites its last row
    xv, yv = (torch.cat(t) for t in zip(*va.dl))
    dl, x2, y2 = other_loader()
    for got, x, y, what in ((learn.validate(), xv, yv, "validate()"), (learn.validate(dl=dl), x2, y2, "dl=other")):
        o = outputs(learn.model, x)
        acc = (o.argmax(1) == y).float().mean().item()
        close_rel([float(v) for v in got], [F.cross_entropy(o, y).item(), acc, 1 - acc], rtol=1e-5,
              what=f"ML-14: {what} = [loss, accuracy, error_rate]")
    assert len(row) == 4, f"ML-14: the epoch row {row} has not train_loss, valid_loss and two metrics"
    close_rel(row[1:], [float(v) for v in learn.validate()], rtol=1e-5, what="ML-14: epoch row = validate()")
    learn, *_ = make(backend, metrics=backend.error_rate)
    learn.fit(1, 1e-2)
    got = [float(v) for v in learn.validate()]
    o = outputs(learn.model, xv)
    close_rel(got, [F.cross_entropy(o, yv).item(), (o.argmax(1) != yv).float().mean().item()], rtol=1e-5,
          what="ML-14: metrics=error_rate (one metric, not in a list)")


# ---------------------------------------------------------------- fp16 options
@pytest.mark.claim("FP16-3", current=True)
def test_to_fp16_scaler_options(backend):
    """to_fp16(init_scale=1024, growth_factor=4, growth_interval=3, backoff_factor=0.25) configures the GradScaler:
    the scale starts at 1024, x4 after every 3 good steps, x0.25 after an overflowing one (batch 5)."""
    if DEV == "cpu" and backend.name == "fastai":
        pytest.skip("needs a CUDA GPU: fastai's MixedPrecision autocasts on CUDA only (on a CPU it trains in float32)")
    learn, *_ = make(backend, cnn().to(DEV), loss_func=_spike_at(5))
    learn.to_fp16(init_scale=1024.0, growth_factor=4.0, growth_interval=3, backoff_factor=0.25).fit(1, 1e-3)
    log = backend.train_log(learn)
    want = [1024.0, 1024.0, 4096.0, 4096.0, 1024.0, 1024.0, 1024.0, 4096.0]
    assert log["scales"] == want, f"FP16-3: loss scales {log['scales']}, expected {want}"
    assert log["scaler_cfg"] == (4.0, 0.25, 3), f"FP16-3: (growth, backoff, interval) = {log['scaler_cfg']}"


def _spike_at(k):
    "Cross-entropy x 1e38 at call k (finite in float32, inf once scaled): that step overflows."
    ce, calls = nn.CrossEntropyLoss(), [0]

    def loss(o, y):
        calls[0] += 1
        return ce(o, y) * (1e38 if calls[0] == k else 1.0)

    return loss


# ================================================================ impl's own options (IMPL claim)
def _one_batch(**kw):
    "An impl learner whose training set is one batch of 8 items; that batch; a copy of the model before training."
    learn, tr, va = make(IMPL, n=40, bs=8, **kw)
    x, y = (torch.cat(t) for t in zip(*tr.dl))
    return learn, (x, y), copy.deepcopy(learn.model)


def _grads(model, x, y):
    "Gradients of the mean cross-entropy of (x, y) through `model` in train mode (BatchNorm on batch statistics)."
    model.train()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.claim("IMPL-39")
def test_opt_func_sgd():
    """opt_func=torch.optim.SGD: one fit batch is p - lr * grad exactly (grad computed by hand); fit_one_cycle then
    schedules SGD's `momentum` as it would Adam's beta1."""
    learn, (x, y), m0 = _one_batch(opt_func=torch.optim.SGD)
    learn.fit(1, 0.1)
    assert isinstance(learn.opt, torch.optim.SGD), f"IMPL-39: opt_func=SGD built {type(learn.opt).__name__}"
    want = [p - 0.1 * g for p, g in zip(m0.parameters(), _grads(m0, x, y))]
    for i, (a, b) in enumerate(zip(params(learn.model), want)):
        close_rel(a, b.detach(), rtol=1e-5, atol=1e-7, what=f"IMPL-39: SGD step of parameter {i}")
    learn, *_ = make(IMPL, opt_func=functools.partial(torch.optim.SGD, momentum=0.5))
    learn.fit_one_cycle(1, 1e-2, moms=(0.9, 0.7, 0.9))
    close_rel(IMPL.train_log(learn)["moms"], mom_cycle(8, 3, (0.9, 0.7, 0.9)), what="IMPL-39: SGD momentum cycle")
    assert [g["momentum"] for g in learn.opt.param_groups] == IMPL.train_log(learn)["moms"][-1].tolist()


def _adamw(p, g, lr, wd, b2=0.999, eps=1e-8):
    "The first AdamW step, written out: decoupled decay p(1 - lr wd), then lr m_hat / (sqrt(v_hat) + eps)."
    m_hat, v_hat = g, (1 - b2) * g * g / (1 - b2)
    return p * (1 - lr * wd) - lr * m_hat / (v_hat.sqrt() + eps)


WD = {  # how wd is given -> (learner kwargs, fit call, the first batch's LR, every group's weight decay)
    "fit": ({}, lambda l: l.fit(1, 1e-2, wd=0.1), 1e-2, [0.1] * 3),
    "learner": ({"wd": 0.1}, lambda l: l.fit(1, 1e-2), 1e-2, [0.1] * 3),
    "per-group": ({"wd": [0.0, 0.0, 0.5]}, lambda l: l.fit(1, 1e-2), 1e-2, [0.0, 0.0, 0.5]),
    "one-cycle": ({}, lambda l: l.fit_one_cycle(1, 1e-2, wd=0.1), 1e-2 / 25, [0.1] * 3),
    "fine-tune": ({}, lambda l: l.fine_tune(1, 2e-3, freeze_epochs=0, wd=0.1), [2e-6, 2e-5, 2e-4], [0.1] * 3),
    "none": ({}, lambda l: l.fit(1, 1e-2), 1e-2, [0.0] * 3),
}


@pytest.mark.claim("IMPL-39")
@pytest.mark.parametrize("where", list(WD))
def test_weight_decay_is_decoupled(where):
    """wd (fit(wd=0.1), Learner(wd=0.1), one per group [0, 0, 0.5], fit_one_cycle(wd=0.1), fine_tune(wd=0.1)): the
    first step is AdamW's, p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps); without wd no decay at all."""
    kw, run, lr, wds = WD[where]
    learn, (x, y), m0 = _one_batch(**kw)
    run(learn)
    got = [g["weight_decay"] for g in learn.opt.param_groups]
    assert got == wds, f"IMPL-39: {where}: weight decay per group {got}, expected {wds}"
    lrs = lr if isinstance(lr, list) else [lr] * 3
    n, gs = 0, _grads(m0, x, y)
    for i, (a, p, g, k) in enumerate(zip(params(learn.model), m0.parameters(), gs, group_of(m0))):
        lr, wd = lrs[k], wds[k]
        ok = g.abs() > 1e-5  # a bias before BatchNorm has a zero gradient up to rounding: Adam's step there is noise
        n += int(ok.sum())
        want = _adamw(p.detach(), g, lr, wd)
        close_rel(a[ok], want[ok], rtol=1e-5, atol=lr * 1e-4, what=f"IMPL-39: {where}: parameter {i}")
    assert n > 0.9 * sum(p.numel() for p in m0.parameters()), f"IMPL-39: only {n} elements have a usable gradient"


@pytest.mark.claim("IMPL-39")
def test_learner_lr_and_no_splitter():
    """Learner(lr=2e-3): fit(1) trains every group at 2e-3; without a splitter the model is one group, a slice gives
    it the slice's top, and freeze() is refused."""
    learn, *_ = make(IMPL, lr=2e-3)
    learn.fit(1)
    close_rel(IMPL.train_log(learn)["lrs"], np.full((8, 3), 2e-3), rtol=0, what="IMPL-39: fit() at Learner(lr=2e-3)")
    learn, *_ = make(IMPL, splitter=None)
    assert IMPL.set_lr(learn, slice(1e-4, 1e-2)) == [1e-2], "IMPL-39: no splitter: one group at the slice's top"
    with pytest.raises(ValueError, match="2 parameter groups"):
        learn.freeze()


@pytest.mark.claim("IMPL-39")
def test_path_model_dir_and_save_with_opt(tmp_path):
    """Learner(path, model_dir): save('a') writes path/model_dir/a.pth; with_opt=False leaves the optimizer state out
    (loading it leaves the optimizer as it was), with_opt=True puts it in (load restores it bit for bit) unless
    load(with_opt=False)."""
    learn, *_ = make(IMPL, path=tmp_path, model_dir="ck")
    learn.fit(1, 1e-2)
    f = learn.save("a", with_opt=False)
    assert f == tmp_path / "ck" / "a.pth" and f.is_file(), f"IMPL-39: save wrote {f}"
    assert set(torch.load(f, weights_only=True)) == {"model"}, "IMPL-39: with_opt=False saved optimizer state"
    learn.save("b")
    assert "opt" in torch.load(tmp_path / "ck" / "b.pth", weights_only=True), "IMPL-39: with_opt=True: no opt"
    want = IMPL.opt_tensors(learn)
    for name, with_opt, opt_after in (("a", True, []), ("b", False, []), ("b", True, want)):
        fresh, *_ = make(IMPL, path=tmp_path, model_dir="ck", seed=1)
        fresh.load(name, with_opt=with_opt)
        assert all(torch.equal(a, b) for a, b in zip(params(fresh.model), params(learn.model))), "IMPL-39: weights"
        got = IMPL.opt_tensors(fresh)
        assert len(got) == len(opt_after) and all(torch.equal(a, b) for a, b in zip(got, opt_after)), (
            f"IMPL-39: load({name!r}, with_opt={with_opt}): {len(got)} optimizer tensors, expected {len(opt_after)}")


@pytest.mark.claim("IMPL-39")
def test_load_strict_false(tmp_path):
    """load(strict=False) with a key missing from the file (and one the model lacks) loads every common tensor and
    leaves the missing one as it was; strict=True refuses the same file naming the key."""
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-2)
    learn.model.register_buffer("only_in_file", torch.ones(2))
    learn.save("m", with_opt=False)
    del learn.model.only_in_file
    other, *_ = make(IMPL, path=tmp_path, seed=1)
    other.model.register_buffer("only_in_model", torch.full((3,), 7.0))
    before = {k: v.clone() for k, v in other.model.state_dict().items()}
    with pytest.raises(ValueError, match="only_in_model"):
        other.load("m")
    assert all(torch.equal(v, other.model.state_dict()[k]) for k, v in before.items()), "IMPL-39: strict load changed"
    other.load("m", strict=False)
    sd, src = other.model.state_dict(), learn.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in src.items()), "IMPL-39: strict=False did not load the common keys"
    assert torch.equal(sd["only_in_model"], torch.full((3,), 7.0)), "IMPL-39: strict=False changed the missing key"


class _Spy:
    "A callback that writes its name and the event into a shared list."

    def __init__(self, name, seen, order=0):
        self.name, self.seen, self.order = name, seen, order

    def before_fit(self, learn):
        self.seen.append((self.name, "before_fit"))

    def after_batch(self, learn):
        self.seen.append((self.name, "after_batch"))

    def after_epoch(self, learn):
        self.seen.append((self.name, "after_epoch"))


@pytest.mark.claim("IMPL-39")
def test_learner_cbs_and_fit_cbs():
    """Learner(cbs=[...]) callbacks see every fit's events (after every training batch and epoch); fit(cbs=[...])
    ones only that fit's; callbacks run sorted by `order`."""
    from impl.learner import Learner

    seen, (_, tr, va) = [], make(IMPL)
    learn = Learner(IMPL.dls_from_loaders(tr, va), mlp(), nn.CrossEntropyLoss(), cbs=[_Spy("late", seen, order=10)],
                    progress=False)
    learn.fit(1, 1e-3, cbs=[_Spy("early", seen, order=-5)])
    n = len(tr)
    assert seen.count(("late", "after_batch")) == n and seen.count(("early", "after_batch")) == n, f"IMPL-39: {seen}"
    assert seen[:2] == [("early", "before_fit"), ("late", "before_fit")], f"IMPL-39: order -5 before 10: {seen[:2]}"
    assert seen[-2:] == [("early", "after_epoch"), ("late", "after_epoch")], f"IMPL-39: {seen[-2:]}"
    seen.clear()
    learn.fit(2, 1e-3)
    assert {s for s, _ in seen} == {"late"} and seen.count(("late", "after_epoch")) == 2, f"IMPL-39: second fit {seen}"


@pytest.mark.claim("IMPL-39")
def test_recorder_beta():
    "Recorder(beta=0.9): recorder.losses is the debiased EMA with beta 0.9 of the raw batch losses."
    from impl.learner import Recorder

    learn, *_ = make(IMPL)
    learn.recorder = Recorder(beta=0.9)
    learn.fit(1, 1e-2)
    raw = IMPL.train_log(learn)["losses"]
    close_rel(learn.recorder.losses, ema(raw, 0.9), rtol=1e-6, what="IMPL-39: Recorder(beta=0.9) smoothing")
    assert not np.allclose(ema(raw, 0.9), ema(raw), rtol=1e-6), "IMPL-39: beta 0.9 and 0.98 should differ here"
    assert math.isclose(learn.recorder.values[-1][0], ema(raw, 0.9)[-1], rel_tol=1e-6), "IMPL-39: epoch train_loss"


@pytest.mark.claim("IMPL-39", "IMPL-46")
def test_plot_sched_draws_every_group():
    """recorder.plot_sched(): one LR line and one momentum line per group, their points the schedule's values, on
    two axes side by side (LR left, y label 'lr'; momentum right, 'mom') of a 12x4-inch figure, as fastai's
    plot_sched(keys=['lr', 'mom']) lays them out (rows 1, cols 2, figsize (6 * cols, 4 * rows))."""
    learn, *_ = make(IMPL)
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    log = IMPL.train_log(learn)
    plt.close("all")
    fig = learn.recorder.plot_sched()
    assert tuple(fig.get_size_inches()) == (12, 4), f"IMPL-46: plot_sched's figure is {fig.get_size_inches()} inches"
    assert len(fig.axes) == 2, f"IMPL-46: plot_sched drew {len(fig.axes)} axes, expected lr and mom"
    (lx, ly, lw, _), (rx, ry, *_) = (ax.get_position().bounds for ax in fig.axes)
    assert ry == ly and rx > lx + lw, "IMPL-46: the momentum axes is not right of the LR axes"
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["lr", "mom"], f"IMPL-46: plot_sched's y labels {labels}"
    for ax, k in zip(fig.axes, ("lrs", "moms")):
        lines = ax.get_lines()
        assert len(lines) == 3, f"IMPL-39: plot_sched drew {len(lines)} {k} lines, expected one per group"
        close_rel(np.array([ln.get_ydata() for ln in lines]).T, log[k], rtol=1e-12, what=f"IMPL-39: plot_sched {k}")
    plt.close("all")


@pytest.mark.claim("IMPL-39")
def test_lr_find_one_suggestion_function_alone():
    "suggest_funcs may be a single function (not in a tuple): SuggestedLRs with that one name."
    learn, *_ = make(IMPL)
    r = IMPL.lr_find(learn, suggest_funcs=IMPL.minimum)
    lrs, s = IMPL.finder_curve(learn)
    assert r._fields == ("minimum",), f"IMPL-39: {r!r}"
    lrs, s = np.float32(lrs[10:-5]), np.float32(s[10:-5])
    assert math.isclose(r.minimum, lrs[np.argmin(s)] / 10, rel_tol=1e-6), f"IMPL-39: minimum {r.minimum}"


@pytest.mark.claim("IMPL-39")
def test_lr_find_show_plot_without_suggestions():
    "lr_find(suggest_funcs=None, show_plot=True) draws the curve (less its last 5 points) with no mark; returns None."
    plt.close("all")
    learn, *_ = make(IMPL)
    assert learn.lr_find(num_it=20, suggest_funcs=None, show_plot=True) is None, "IMPL-39: suggest_funcs=None"
    lrs, s = IMPL.finder_curve(learn)
    assert plt.get_fignums() != [], "IMPL-39: show_plot=True drew no figure"
    ax, lines = _lines()
    assert len(lines) == 1 and ax.get_legend() is None, f"IMPL-39: {len(lines)} lines, legend {ax.get_legend()}"
    close_rel(lines[0].get_xdata(), lrs[:-5], rtol=1e-7, what="IMPL-39: x = the LRs but the last 5")
    close_rel(lines[0].get_ydata(), s[:-5], rtol=1e-7, what="IMPL-39: y = the smoothed losses but the last 5")
    plt.close("all")


@pytest.mark.claim("IMPL-37")
def test_lr_find_puts_back_the_fp16_scaler():
    """On an fp16 learner whose GradScaler doubles its scale after every step (growth_interval=1), the sweep's steps
    change the scale; lr_find puts the scaler's state back with the weights and the optimizer."""
    learn, *_ = make(IMPL)
    learn.to_fp16(init_scale=8.0, growth_interval=1)
    learn.fit(1, 1e-3)
    scaler = learn.amp.scaler
    before, w = copy.deepcopy(scaler.state_dict()), params(learn.model)
    assert before["scale"] == 8.0 * 2 ** len(learn.amp.scales), f"the fit's steps doubled the scale: {before}"
    n = len(learn.amp.scales)
    IMPL.lr_find(learn, num_it=10, stop_div=False)
    assert len(learn.amp.scales) == n + 10, f"IMPL-37: the sweep took {len(learn.amp.scales) - n} fp16 steps, not 10"
    assert scaler.state_dict() == before, f"IMPL-37: the scaler after lr_find {scaler.state_dict()}, before {before}"
    assert all(torch.equal(a, b) for a, b in zip(w, params(learn.model))), "IMPL-37: the weights were not put back"


@pytest.mark.claim("IMPL-39")
@pytest.mark.parametrize("mode", ["fp16", "bf16"])
def test_channels_last(mode):
    """to_fp16/to_bf16(channels_last=True): the model's 4-d weights and each training batch in channels_last memory
    format, autocast to that dtype; to_fp32() puts the weights back in the contiguous format."""
    learn, *_ = make(IMPL, cnn().to(DEV))
    seen = []
    learn.model[0].register_forward_hook(
        lambda m, i, o: seen.append((i[0].is_contiguous(memory_format=torch.channels_last), o.dtype)) and None)
    getattr(learn, f"to_{mode}")(channels_last=True)
    w = learn.model[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous(), "IMPL-39: weights not NHWC"
    learn.fit(1, 1e-3)
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[mode]
    assert seen and all(s == (True, dt) for s in seen), f"IMPL-39: {mode} channels_last batches: {set(seen)}"
    learn.to_fp32()
    assert learn.model[0].weight.is_contiguous(), "IMPL-39: to_fp32() leaves the weights channels_last"
    seen.clear()
    learn.fit(1, 1e-3)
    assert all(s == (False, torch.float32) for s in seen), f"IMPL-39: after to_fp32: {set(seen)}"


@pytest.mark.claim("IMPL-39")
def test_amp_object_options():
    """impl.fp16.Amp(dtype, device_type, channels_last, **scaler_kw): fp16 has a GradScaler at init_scale, bf16 none;
    abort() forgets a half-done unscale, so the next step unscales its own gradients (p - lr * true grad)."""
    from impl.fp16 import Amp

    a = Amp(torch.bfloat16, "cpu")
    assert a.scaler is None and a.scales == [] and a.skipped == [], "IMPL-39: bf16 Amp has a scaler"
    with a.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16, "IMPL-39: bf16 autocast"
    a = Amp(torch.float16, "cpu", init_scale=4.0)
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([p], lr=0.1)
    a.backward((p * 3).sum())
    assert torch.equal(p.grad, torch.tensor([12.0, 12.0])), f"IMPL-39: init_scale=4: scaled grad {p.grad}"
    a.scaler.unscale_(opt)  # ... and the batch is interrupted here, before the step
    opt.zero_grad()
    a.abort()
    a.backward((p * 3).sum())
    a.step(opt)
    assert torch.allclose(p.detach(), torch.tensor([0.7, 1.7])), f"IMPL-39: after abort, the step is p - 0.1*3: {p}"
    assert a.scales == [4.0] and a.skipped == [False], f"IMPL-39: scales {a.scales}, skipped {a.skipped}"


@pytest.mark.claim("IMPL-39")
def test_default_weight_decay_differs_from_fastai_as_stated():
    """The deliberate difference IMPL-39 states: impl's default optimizer decays nothing (every group's weight_decay
    0.0 after a fit), while fastai's default Learner (its Adam, wd_bn_bias=False) has wd 0.01 and turns decay off for
    biases and BatchNorm parameters only, here a Linear -> BatchNorm1d -> Linear model."""
    from fastai.data.core import DataLoaders as FDataLoaders
    from fastai.data.load import DataLoader as FDataLoader
    from fastai.learner import Learner as FLearner

    learn, *_ = make(IMPL)
    learn.fit(1, 1e-2)
    assert {g["weight_decay"] for g in learn.opt.param_groups} == {0.0}, "IMPL-39: impl's default decays"
    ds = [(torch.randn(4), torch.tensor(0)) for _ in range(8)]
    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    fl = FLearner(FDataLoaders(FDataLoader(ds, bs=4), FDataLoader(ds, bs=4)), m, loss_func=nn.CrossEntropyLoss())
    fl.create_opt()
    assert [h["wd"] for h in fl.opt.hypers] == [0.01], f"fastai's default wd: {fl.opt.hypers}"
    do_wd = [fl.opt.state[p].get("do_wd", True) for p in m.parameters()]
    assert do_wd == [True, False, False, False, True, False], f"fastai decays (weights, biases, BN): {do_wd}"


# ---------------------------------------------------------------- wd and moms bounds (IMPL-34), Learner(cbs=None)
@pytest.mark.claim("IMPL-34")
def test_zero_weight_decay_and_zero_momentum_are_accepted():
    """wd=0 (no decay) and momentum 0 are legal values, not errors: Learner(moms=(0, 0, 0)) 1cycles every group's
    beta1 at 0 exactly; fit(wd=0.0) after a fit at wd=0.1 sets every group's weight_decay back to 0; a wd of 0 per
    group and fit_one_cycle(moms=(0.0, 0.0, 0.0)) are taken as given."""
    learn, *_ = make(IMPL, moms=(0.0, 0.0, 0.0))
    learn.fit_one_cycle(1, 1e-2)
    moms = IMPL.train_log(learn)["moms"]
    assert moms.shape == (8, 3) and (moms == 0.0).all(), f"IMPL-34: Learner(moms=(0, 0, 0)) scheduled {moms}"
    assert [g["betas"][0] for g in learn.opt.param_groups] == [0.0] * 3, "IMPL-34: beta1 after the cycle"
    learn.fit(1, 1e-2, wd=0.1)
    learn.fit(1, 1e-2, wd=0.0)
    got = [g["weight_decay"] for g in learn.opt.param_groups]
    assert got == [0.0] * 3, f"IMPL-34: fit(wd=0.0) after wd=0.1 left weight decay {got}"
    learn.fit(1, 1e-2, wd=[0.0, 0.1, 0])
    got = [g["weight_decay"] for g in learn.opt.param_groups]
    assert got == [0.0, 0.1, 0.0], f"IMPL-34: fit(wd=[0.0, 0.1, 0]) gave weight decay {got}"
    learn, *_ = make(IMPL)
    learn.fit_one_cycle(1, 1e-2, wd=0, moms=(0.0, 0.0, 0.0))
    moms = IMPL.train_log(learn)["moms"]
    assert (moms == 0.0).all(), f"IMPL-34: fit_one_cycle(moms=(0.0, 0.0, 0.0)) scheduled {moms}"
    assert [g["weight_decay"] for g in learn.opt.param_groups] == [0.0] * 3, "IMPL-34: fit_one_cycle(wd=0)"


@pytest.mark.claim("IMPL-34")
def test_weight_decay_and_momentum_out_of_range_name_the_value_and_range():
    """A wd below 0 or not finite, as a number or as a group's entry, and a moms entry below 0 or from 1 up raise
    ValueError with the whole message: the argument (wd, wd[i], moms[i]), the range it must lie in ([0.0, inf) or
    [0.0, 1.0): 0 included) and the value; in Learner(...) too. Nothing trains, no parameter changes."""
    learn, tr, _ = make(IMPL)
    before = params(learn.model)
    one_cycle = learn.fit_one_cycle
    cases = [(lambda: learn.fit(1, 1e-3, wd=-1.0), "wd must lie in [0.0, inf), got -1.0"),
             (lambda: one_cycle(1, 1e-3, wd=math.inf), "wd must lie in [0.0, inf), got inf"),
             (lambda: learn.fit(1, 1e-3, wd=[0.1, -1.0, 0.1]), "wd[1] must lie in [0.0, inf), got -1.0"),
             (lambda: learn.fit(1, 1e-3, wd=(0.0, 0.1, math.nan)), "wd[2] must lie in [0.0, inf), got nan"),
             (lambda: make(IMPL, wd=-0.5), "wd must lie in [0.0, inf), got -0.5"),
             (lambda: make(IMPL, wd=[0.1, -0.5, 0.1]), "wd[1] must lie in [0.0, inf), got -0.5"),
             (lambda: one_cycle(1, 1e-3, moms=(-0.1, 0.85, 0.95)), "moms[0] must lie in [0.0, 1.0), got -0.1"),
             (lambda: one_cycle(1, 1e-3, moms=(0.95, 0.85, 1.5)), "moms[2] must lie in [0.0, 1.0), got 1.5"),
             (lambda: make(IMPL, moms=(0.95, 1.2, 0.95)), "moms[1] must lie in [0.0, 1.0), got 1.2")]
    for call, msg in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
            call()
    assert learn.opt is None, "IMPL-34: a refused fit created the optimizer"
    assert not any(changed(before, learn.model)), "IMPL-34: a refused fit changed a parameter"


@pytest.mark.claim("IMPL-39")
def test_learner_cbs_none_is_no_callbacks():
    """Learner(cbs=None), as fastai's, has no callbacks of its own (learn.cbs is empty; one callback given alone is
    a list of it), and fit(cbs=None) / fit_one_cycle(cbs=None) train as without callbacks."""
    from impl.learner import Learner

    _, tr, va = make(IMPL)
    dls = IMPL.dls_from_loaders(tr, va)
    learn = Learner(dls, mlp(), nn.CrossEntropyLoss(), cbs=None, progress=False)
    assert learn.cbs == [], f"IMPL-39: Learner(cbs=None) has callbacks {learn.cbs}"
    spy = _Spy("one", [])
    assert Learner(dls, mlp(), nn.CrossEntropyLoss(), cbs=spy, progress=False).cbs == [spy], "IMPL-39: cbs=one"
    before = params(learn.model)
    learn.fit(1, 1e-2, cbs=None)
    learn.fit_one_cycle(1, 1e-2, cbs=None)
    assert all(changed(before, learn.model)) and len(learn.recorder.losses) == len(tr), "IMPL-39: fit(cbs=None)"


@pytest.mark.claim("IMPL-38")
def test_recorder_alone_prints_nothing_until_its_table_is_set(capsys):
    """A Recorder is quiet until a fit (its before_fit) turns its table on: one made alone and driven by hand through
    an epoch (before_epoch, after_batch, after_epoch) records the row and prints nothing; with table set, the same
    epoch prints the header and the row."""
    from types import SimpleNamespace

    from impl.learner import Recorder

    fake = SimpleNamespace(hypers=lambda k: [1e-3], loss=torch.tensor(0.5), valid_values=[0.25], epoch=0)
    r = Recorder()
    r.before_epoch(fake)
    r.after_batch(fake)
    r.after_epoch(fake)
    assert r.values == [[pytest.approx(0.5), 0.25]], f"IMPL-38: a Recorder alone recorded {r.values}"
    assert capsys.readouterr().out == "", "IMPL-38: a Recorder alone printed a table"
    r.reset()
    r.table = True
    r.before_epoch(fake)
    r.after_batch(fake)
    r.after_epoch(fake)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:3] for ln in lines] == [["epoch", "train_loss", "valid_loss"], ["0", "0.500000", "0.250000"]]
