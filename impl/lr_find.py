"""Leslie Smith's LR finder (T:L100-147, T:L250-272) and fastai 2.8.12's four suggestion functions.

An exponential LR schedule from `start_lr` to `end_lr` over `num_it` successive (shuffled) training batches,
no validation; the loss is smoothed (beta 0.98, debiased) and the sweep stops once it exceeds 4x the best.
The sweep is a callback (LRFinder) on the learner's own loop, `learn.fit`, which it cancels; this module never
imports impl.learner. Weights, optimizer state (and the fp16 scaler's) are put back afterwards, also when it raises.
"""

import collections
import copy
import functools
import math

import numpy as np
import torch

from .callback import Callback, CancelFitException, CancelValidException
from .schedule import sched_exp


def valley(lrs, losses, num_it):
    "The longest valley (longest decreasing run of the loss), 1/3 + 1/6 of the way in (fastai's default, LR-10)."
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), float(losses[idx]))


def slide(lrs, losses, num_it, lr_diff=15, thresh=0.005, adjust_value=1.0):
    "Slide an interval of `lr_diff` points left from the end until the loss gradient flattens (fastai's `slide`)."
    losses = np.asarray(losses)
    loss_grad = np.gradient(losses)
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    suggestion = float(local_min_lr) * adjust_value
    y = np.interp(np.log10(suggestion), np.log10(np.asarray(lrs)), losses)
    return suggestion, (suggestion, float(y))


def minimum(lrs, losses, num_it):
    "One tenth of the LR at the minimum loss (T:L143 'the minimum point divided by ten')."
    lr_min = lrs[losses.argmin()].item()
    y = losses[min(range(len(lrs)), key=lambda i: abs(lrs[i] - lr_min))]
    return lr_min / 10, (lr_min, float(y))


def steep(lrs, losses, num_it):
    "The LR where the loss falls fastest against log(lr) (T:L141 'where was it steepest')."
    grads = (losses[1:] - losses[:-1]) / (lrs[1:].log() - lrs[:-1].log())
    lr_steep = lrs[grads.argmin()].item()
    y = losses[min(range(len(lrs)), key=lambda i: abs(lrs[i] - lr_steep))]
    return lr_steep, (lr_steep, float(y))


class SuggestionMethod:
    "The four suggestion functions by name, as fastai's `SuggestionMethod` (LR-10)."

    Valley, Slide = staticmethod(valley), staticmethod(slide)
    Minimum, Steep = staticmethod(minimum), staticmethod(steep)


def _snapshot(learn):
    return (
        {k: v.detach().clone() for k, v in learn.model.state_dict().items()},
        copy.deepcopy(learn.opt.state_dict()),
        copy.deepcopy(learn.amp.scaler.state_dict()) if getattr(learn.amp, "scaler", None) else None,
        learn.model.training,
    )


def _restore(learn, snap):
    model, opt, scaler, training = snap
    learn.opt.zero_grad(set_to_none=True)
    learn.model.load_state_dict(model)
    learn.opt.load_state_dict(opt)
    if scaler is not None:
        learn.amp.scaler.load_state_dict(scaler)
    learn.model.train(training)


def _check(start_lr, end_lr, num_it):
    for v, nm in ((start_lr, "start_lr"), (end_lr, "end_lr")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{nm} must be a finite number > 0, got {v!r}")
    if start_lr >= end_lr:
        raise ValueError(f"start_lr must be < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
    if isinstance(num_it, bool) or not isinstance(num_it, int) or num_it < 1:
        raise ValueError(f"num_it must be an int >= 1, got {num_it!r}")


class LRFinder(Callback):
    """The sweep as a callback on the learner's one loop (fastai's LRFinder): before each training batch the LR
    start_lr*(end_lr/start_lr)**(i/num_it) for batch i; after it, cancel the fit after num_it batches, or once the
    smoothed loss exceeds 4x its best (stop_div) or a loss is not finite; no validation, no epoch table. Weights,
    optimizer state, the fp16 scaler and train/eval mode are put back after the fit (fastai's LRFinder too)."""

    order, nonfinite = 60, True  # after the Recorder (its smoothed loss); NaN/inf losses come here as nan

    def __init__(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True):
        self.start_lr, self.end_lr, self.num_it, self.stop_div = start_lr, end_lr, max(num_it, 6), stop_div  # fastai's

    def before_fit(self, learn):
        self.best, self.snap = math.inf, _snapshot(learn)
        learn.recorder.table = False

    def after_fit(self, learn):
        _restore(learn, self.snap)

    def before_batch(self, learn):
        learn.set_hyper("lr", sched_exp(self.start_lr, self.end_lr, learn.train_iter / self.num_it))

    def after_batch(self, learn):
        s = learn.recorder.losses[-1]
        self.best = min(self.best, s)
        if math.isnan(learn.loss) or (self.stop_div and s > 4 * self.best) or learn.train_iter >= self.num_it:
            raise CancelFitException

    def before_validate(self, learn):
        raise CancelValidException


def lr_find(learn, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True, show_plot=True, suggest_funcs=(valley,)):
    """Sweep the LR 10**(log10(start_lr) + i*log10(end_lr/start_lr)/num_it) for i = 0, 1, ... (LR-3), one training
    batch each (LR-4); stop when the smoothed loss > 4x its best (LR-6) or is not finite; restore weights and
    optimizer (LR-5, IMPL-2): the learner's own loop with an LRFinder callback, which restores them after the fit
    (and lr_find when the fit raises). Returns SuggestedLRs named after `suggest_funcs` (LR-8), or None without them."""
    _check(start_lr, end_lr, num_it)
    num_it = max(num_it, 6)  # as fastai's LRFinder
    if learn.opt is None:
        learn.create_opt()
    cb = LRFinder(start_lr, end_lr, num_it, stop_div)
    try:
        learn.fit(num_it // len(learn.dls.train) + 1, cbs=[cb])
    except BaseException:
        if getattr(cb, "snap", None) is not None:  # the sweep had begun: its after_fit did not run
            _restore(learn, cb.snap)
        raise
    rec = learn.recorder
    if not rec.losses:
        raise ValueError("lr_find: dls.train yielded no batches")
    if suggest_funcs is None:
        if show_plot:
            rec.plot_lr_find()
        return None
    lrs = torch.tensor([g[-1] for g in rec.lrs[num_it // 10 : -5]])  # float32, last group, as fastai
    losses = torch.tensor(rec.losses[num_it // 10 : -5])  # no NaN: the sweep stops at the first, which -5 drops
    funcs = tuple(suggest_funcs) if isinstance(suggest_funcs, (list, tuple)) else (suggest_funcs,)
    nms = [f.func.__name__ if isinstance(f, functools.partial) else f.__name__ for f in funcs]
    res = [f(lrs, losses, num_it) for f in funcs]
    if show_plot:
        rec.plot_lr_find(suggestions=[p for _, p in res], nms=nms)
    return collections.namedtuple("SuggestedLRs", nms)(*[lr for lr, _ in res])
