"""The training loop's events and callbacks, as fastai 2.8.12's (fastai.callback.core): what acts on the one loop.

`Learner.fit` runs one loop whose phases are events: before_fit, then per epoch before_epoch, before_train, per
training batch before_batch and after_batch, after_train, before_validate, after_validate, after_epoch, and
after_fit. A callback is any object with methods named after events, each taking the learner (`order` sorts them,
default 0; impl's Recorder is 50, ParamScheduler, LRFinder and the progress bar 60, as in fastai). A callback stops a
phase by raising Cancel{Fit,Epoch,Train,Valid}Exception: the loop then calls `after_cancel_<phase>` and still
`after_<phase>`, and goes on after that phase (fastai's `_with_events`). A training batch is one event pair (no
after_loss/after_step): a failure in it puts the learner back as at the start of the epoch (impl.learner._Guard).

A callback with `nonfinite = True` takes charge of bad losses: during its fits a NaN/inf loss or step puts the
learner back as at the epoch's start and is recorded as `learn.loss = nan` (then after_batch as usual), not raised,
and a diverging loss is not stopped by the loop (the LR finder stops the sweep itself).

`learn.loss` is a 0-d tensor on the device. The loop checks the losses and steps once per epoch (one host sync), so
a bad batch is found at the epoch's end, unless a callback needs each batch checked before its `after_batch` runs:
any callback with `after_batch` does (the loop then syncs once per batch) unless it sets `deferred = True`, saying
its after_batch may see a batch not checked yet (impl's Recorder and ProgressBar do).
"""

import os
from contextlib import contextmanager

EVENTS = ("before_fit", "before_epoch", "before_train", "before_batch", "after_batch", "after_train",
          "before_validate", "after_validate", "after_epoch", "after_fit",
          "after_cancel_fit", "after_cancel_epoch", "after_cancel_train", "after_cancel_validate")


class CancelFitException(Exception):
    "Raised by a callback: stop the fit (after_cancel_fit and after_fit still run)."


class CancelEpochException(Exception):
    "Raised by a callback: skip the rest of this epoch (after_cancel_epoch, after_epoch still run)."


class CancelTrainException(Exception):
    "Raised by a callback: skip the rest of this epoch's training (after_cancel_train, after_train still run)."


class CancelValidException(Exception):
    "Raised by a callback (in before_validate, say): skip this epoch's validation (after_cancel_validate still runs)."


class Callback:
    "Optional base: `order` (default 0). Define any of EVENTS as a method taking the learner."

    order = 0


def dispatch(cbs):
    "{event: [bound methods]} for `cbs` sorted by `order` (stable): computed once per fit, so an event costs a loop."
    cbs = sorted(cbs, key=lambda cb: getattr(cb, "order", 0))
    return {ev: [getattr(cb, ev) for cb in cbs if callable(getattr(cb, ev, None))] for ev in EVENTS}


class ParamScheduler(Callback):
    """Before each training batch: every group's hyper-parameter `k` from its schedule at p = batches done / total.
    `scheds`: {'lr'|'mom'|'weight_decay': one function of p for every group (as fastai's), or a list, one per group}."""

    order = 60

    def __init__(self, scheds):
        for k, fs in scheds.items():
            if not all(map(callable, fs if isinstance(fs, (list, tuple)) else [fs])):
                raise TypeError(f"ParamScheduler: scheds[{k!r}] must be a function of p or a list of them, got {fs!r}")
        self.scheds = scheds

    def before_fit(self, learn):
        g = learn.opt.param_groups[0]
        bad = [k for k in self.scheds if k != "mom" and k not in g]  # fastai's 'wd' is torch's 'weight_decay'
        if bad:
            has = ["mom"] + [k for k, v in g.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            raise ValueError(f"ParamScheduler: the optimizer has no hyper-parameter {bad}; it has {has}")
        self.nb = len(learn.dls.train)
        self.total = learn.n_epoch * self.nb

    def before_batch(self, learn):
        p = (learn.epoch * self.nb + learn.iter) / self.total
        for k, fs in self.scheds.items():
            learn.set_hyper(k, [f(p) for f in fs] if isinstance(fs, (list, tuple)) else fs(p))


# ------------------------------------------------------------ quiet or not: the epoch table and the progress bar
_quiet = [0]  # how many `quiet()` blocks we are in


@contextmanager
def quiet():
    "Inside: no epoch table and no progress bar, for every learner made with progress=None (the default)."
    _quiet[0] += 1
    try:
        yield
    finally:
        _quiet[0] -= 1


def shows(progress):
    """Whether a fit prints its epoch table (and a progress bar on a terminal): progress=True/False, or None: unless in
    `quiet()` or the environment variable IMPL_QUIET is set (to anything but '' or '0')."""
    if progress is not None:
        return bool(progress)
    return not _quiet[0] and os.environ.get("IMPL_QUIET", "") in ("", "0")


def format_time(t):
    "Seconds as mm:ss, or h:mm:ss from an hour (fastprogress's format_time)."
    t = int(t)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressBar(Callback):
    "A tqdm bar over each epoch's training batches: on a terminal or in a notebook only (tqdm's disable=None)."

    order, deferred = 60, True  # counts batches, reads no loss: no host sync per batch

    def __init__(self):
        self.bar = None

    def before_train(self, learn):
        from tqdm.auto import tqdm  # only when a bar may show: importing impl never imports tqdm

        self.after_fit(learn)
        self.bar = tqdm(total=len(learn.dls.train), desc=f"epoch {learn.epoch + 1}/{learn.n_epoch}", leave=False,
                        disable=None, dynamic_ncols=True)

    def after_batch(self, learn):
        self.bar.update()

    def after_train(self, learn):
        self.after_fit(learn)

    def after_fit(self, learn):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
