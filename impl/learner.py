"""A compact training loop: Learner, Recorder, fit, fit_one_cycle, freeze/unfreeze, fine_tune (T:L316-442).

One loop (`Learner._fit`) whose phases are events callbacks act on (impl.callback, as fastai's): the Recorder, the
1cycle schedule (ParamScheduler), the LR finder (impl.lr_find.LRFinder) and the progress bar are callbacks on it.
Each fit prints fastai's epoch table (epoch, train_loss, valid_loss, metrics, time), with a progress bar on a
terminal, unless `Learner(progress=False)`, `impl.callback.quiet()` or the environment variable IMPL_QUIET.

Any `dls` with `.train` and `.valid` iterables of `(x, y)` (or `(x1, ..., xn, y)`) batches works, plain
`torch.utils.data.DataLoader`s included; `dls.device`, when present, is where the model and batches go.
Hyper-parameters live in the torch optimizer's param groups: `lr`, and `mom` as Adam's `betas[0]` or SGD's
`momentum`. Schedules follow fastai 2.8.12 exactly (impl.schedule).

Faults leave the learner as it was: arguments and data are checked before anything changes, `load` checks the
whole checkpoint before copying, and a fit that fails (a batch that raises, a NaN/inf loss or parameter, a diverging
loss) puts back the state at the start of the failing epoch (_Guard: one copy per epoch, no host sync per batch).

Host syncs: the training loop reads nothing from the device per batch. `learn.loss` is the batch's loss as a 0-d
tensor on the device (as fastai's); the guard and the Recorder keep the losses there and read them once per epoch
(the epoch table's train_loss), validation once per epoch. What reads a float per batch syncs each batch: a callback
with `after_batch` (it sees only checked batches, so the loop checks each before calling it) unless it sets
`deferred = True` (impl's Recorder and progress bar do), a callback with `nonfinite` (lr_find), reading
`recorder.losses` during a fit (lr_find's smoothed loss), `float(learn.loss)`, and `train_batch` called alone.
`learn.compile()` (or `Learner(compile=True)`) runs the forward passes through torch.compile.
"""

import copy
import math
import os
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from .callback import (
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidException,
    ParamScheduler,
    ProgressBar,
    dispatch,
    format_time,
    shows,
)
from .lr_find import lr_find, valley
from .schedule import combined_cos, lrs_for

NORM = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.LayerNorm)  # fastai's norm_types


def Adam(params, lr):
    """The default optimizer: Adam with decoupled weight decay (torch AdamW, as fastai's `true_wd`), none unless `wd`
    is given (then it is plain Adam), in the multi-tensor (`foreach`) implementation."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=True)


def norm_params(m):
    "Parameters of normalisation layers (they stay trainable in a frozen group when `train_bn`, FT-6)."
    return [p for mod in m.modules() if isinstance(mod, NORM) for p in mod.parameters(recurse=False)]


class NonFiniteLoss(FloatingPointError):
    "A NaN or infinite training loss; the learner is put back as at the start of the epoch (before that batch alone)."


class NonFiniteStep(FloatingPointError):
    "An optimizer step made a parameter NaN or infinite; parameters, buffers and optimizer state are put back."


class Diverged(FloatingPointError):
    "Two batch losses in a row above DIVERGE x the fit's first: the step that led to the first is undone."


DIVERGE = 1e6  # a fit stops (Diverged) after two batch losses in a row above DIVERGE x max(its first loss, 1e-6)


def _pos(v, name, lo=0.0, hi=math.inf, open_lo=True):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a number, got {v!r}")
    if not (lo < v if open_lo else lo <= v) or not v < hi or math.isnan(v):
        raise ValueError(f"{name} must lie in {'(' if open_lo else '['}{lo}, {hi}), got {v!r}")
    return float(v)


def _n_epoch(n, name="n_epoch", least=1):
    if isinstance(n, bool) or not isinstance(n, int) or n < least:
        raise ValueError(f"{name} must be an int >= {least}, got {n!r}")
    return n


def _moms(moms, name="moms"):
    "(start, middle, end) momentums, each in [0, 1) (Adam's beta1 or SGD's momentum)."
    if not isinstance(moms, (list, tuple)) or len(moms) != 3:
        raise ValueError(f"{name} must be (start, middle, end), got {moms!r}")
    return tuple(_pos(m, f"{name}[{i}]", 0.0, 1.0, open_lo=False) for i, m in enumerate(moms))


def _wd(wd, name="wd"):
    "None (leave the optimizer's), a number >= 0, or one per group."
    if wd is None or isinstance(wd, (list, tuple)):
        return wd if wd is None else [_pos(w, f"{name}[{i}]", open_lo=False) for i, w in enumerate(wd)]
    return _pos(wd, name, open_lo=False)


def _bn_batch_error(e, b):
    "torch's error for a training batch of one item through BatchNorm, raised again plainly (other errors: nothing)."
    if "Expected more than 1 value per channel" in str(e):
        n = len(b[-1]) if isinstance(b[-1], torch.Tensor) and b[-1].ndim else "?"
        raise ValueError(f"a training batch of {n} item(s) reached a BatchNorm layer, which needs more than one value "
                         f"per channel in training: use bs >= 2, and drop_last=True for the training DataLoader ({e})"
                         ) from None


class _Guard:
    """A failed fit leaves the learner as at the start of the failing epoch, for almost nothing per batch: `save` copies
    the trainable parameters, their optimizer state, the hyper-parameters, the buffers and the fp16 loss scale once
    per epoch (into reused memory: pinned CPU memory, copied non_blocking, for a CUDA model); `after_step` keeps the
    loss and the parameters' largest |values| on the device (two kernels); `settle` reads them (one host sync: at the
    epoch's end, after every batch when `eager`) and at the first fault puts the copies back (`failed`) and raises."""

    def __init__(self, learn):
        self.learn, self.key = learn, None
        self.start(False, False)

    def start(self, diverge, fitting=True, eager=True):
        "A new fit: its first loss sets the divergence limit (DIVERGE x it, when `diverge`); eager: settle every batch."
        self.diverge, self.fitting, self.eager = diverge, fitting, eager
        self.first, self.limit, self.held, self.todo = None, math.inf, False, []

    @torch.no_grad()
    def save(self, epoch=None):
        "Copy the state at the start of `epoch` (None: before a batch trained alone, outside a fit)."
        l = self.learn
        self.ps = [p for g in l.opt.param_groups for p in g["params"] if p.requires_grad]
        self.st = {p: dict(l.opt.state[p]) for p in self.ps if p in l.opt.state}
        live = self.ps + [v for s in self.st.values() for v in s.values() if isinstance(v, torch.Tensor)]
        live += list(l.model.buffers()) + _scaler_state(l.amp)
        key = [(id(t), t.shape, t.stride(), t.dtype, t.device) for t in live]
        if key != self.key:  # new memory only when the tensors changed
            self.key, self.mem = key, (live, [torch.empty_strided(t.size(), t.stride(), dtype=t.dtype,
                                                                   pin_memory=t.is_cuda) for t in live])
        for t, c in zip(*self.mem):
            c.copy_(t, non_blocking=True)
        self.hypers = [{k: v for k, v in g.items() if k != "params"} for g in l.opt.param_groups]
        self.epoch, self.todo, self.n = epoch, [], 0

    @torch.no_grad()
    def after_step(self, loss):
        "Keep [the loss, each trainable parameter's largest |value|] on the device (all finite: so are the parameters)."
        self.todo.append(torch.stack([loss.detach().float(), *torch._foreach_norm(self.ps, math.inf)]))
        self.n += 1

    def settle(self):
        "Read the kept losses and flags (one host sync); at the first fault: `failed`, raise it (e.batch: its index)."
        if not self.todo:
            return
        t, i0 = torch.stack(self.todo), self.n - len(self.todo)
        rows, self.todo = torch.stack([t[:, 0], t.amax(1)], 1).tolist(), []  # amax: NaN or inf if any is
        for i, (v, big) in enumerate(rows):
            if e := self.fault(v, math.isfinite(big)):
                e.batch = i0 + i
                self.failed(e)
                raise e

    def fault(self, v, ok):
        "The batch's error in loop order, or None: a NaN/inf loss, a second loss in a row over the limit, its step."
        if not math.isfinite(v):
            return NonFiniteLoss(f"training loss is {v}")
        if self.diverge and self.first is None:
            self.first, self.limit = v, DIVERGE * max(v, 1e-6)
        if v > self.limit and self.held:
            return Diverged(f"the learning rate is too high (T:L93): training loss {v:.3g} is over {DIVERGE:g}x the "
                            f"first batch's ({self.first:.3g}) for the second batch in a row")
        self.held = v > self.limit
        return None if ok else NonFiniteStep("the step made a parameter NaN or infinite")

    @torch.no_grad()
    def failed(self, e):
        "Put the copies back (optimizer state created since is dropped), no gradients; `e` says which state: e.at."
        l, (live, copies) = self.learn, self.mem
        for t, c in zip(live, copies):
            t.copy_(c, non_blocking=True)
        for p in self.ps:
            l.opt.state.pop(p, None)
        l.opt.state.update({p: dict(s) for p, s in self.st.items()})
        for g, h in zip(l.opt.param_groups, self.hypers):
            g.update(h)
        l.opt.zero_grad(set_to_none=True)
        self.todo, self.held, e.at = [], False, None if self.epoch is None else (self.epoch, 0)
        if not isinstance(e, FloatingPointError):  # those say it in their message (Learner._locate)
            e.add_note(f"impl.Learner: {_restored(e.at)}")


def _scaler_state(amp):
    "The fp16 GradScaler's scale and growth tracker (device tensors once it has scaled a loss), else nothing."
    s = getattr(amp, "scaler", None)
    return [t for t in (getattr(s, "_scale", None), getattr(s, "_growth_tracker", None)) if t is not None]


def _restored(at):
    "What a failure put back (parameters, buffers, optimizer state, hyper-parameters), for its message."
    return "the weights are those " + ("before this batch" if at is None else f"at the start of epoch {at[0]}")


def _noop(x):
    return x


def _default_act(loss_func):
    "The activation that turns outputs into predictions: the loss's own (a plain torch loss has none), as fastai."
    return getattr(loss_func, "activation", _noop)


def _default_decodes(loss_func):
    "The loss's decodes (argmax for CrossEntropyLossFlat, > thresh for BCEWithLogitsLossFlat), else none."
    return getattr(loss_func, "decodes", _noop)


class Recorder:
    """A callback on every fit (order 50, as fastai's). Per training batch: every group's `lrs` and `moms`, the raw
    `batch_losses` and the smoothed `losses` (exponential moving average, beta 0.98, debiased, as fastai's
    AvgSmoothLoss: LR-7). Per epoch: `values` rows [train_loss (smoothed, as fastai), valid_loss, *metrics] (nan
    for a cancelled validation), `times` (wall seconds from before_epoch to after_epoch: the table's time column),
    and, when `table`, one row of fastai's epoch table printed (`log`). Reset by each fit. The batch losses stay on
    the device until read: `losses` and `batch_losses` read those kept so far (one host sync), after_epoch does."""

    order, deferred = 50, True  # its after_batch needs no checked batch: the loop does not sync for it

    def __init__(self, beta=0.98):
        self.beta, self.table = beta, False
        self.reset()

    def before_fit(self, learn):
        self.reset([_name(m) for m in learn.metrics])
        self.table = shows(learn.progress)

    def before_epoch(self, learn):
        self._t0 = time.perf_counter()

    def after_batch(self, learn):
        self.add_batch(learn.hypers("lr"), learn.hypers("mom"), learn.loss)

    def after_epoch(self, learn):
        v = learn.valid_values
        self.add_epoch([math.nan] * (len(self.metric_names) - 1) if v is None else v, time.perf_counter() - self._t0)
        if self.table:
            self.log(learn.epoch)

    def log(self, epoch):
        "Print the row of `epoch` (the last one recorded), after the header when it is the fit's first row."
        names = [f"{n:<8}" for n in ["epoch", *self.metric_names, "time"]]  # fastprogress's console table
        if len(self.values) == 1:
            print("  ".join(names).rstrip(), flush=True)
        cells = [str(epoch), *(f"{v:.6f}" for v in self.values[-1]), format_time(self.times[-1])]
        print("".join(f"{c:<{len(n)}}  " for c, n in zip(cells, names)).rstrip(), flush=True)

    def reset(self, metric_names=()):
        self.lrs, self.moms, self._raw, self._smooth, self._new = [], [], [], [], []
        self.values, self.times, self.iters = [], [], []
        self.metric_names = ["train_loss", "valid_loss", *metric_names]
        self._avg, self._n = 0.0, 0

    def add_batch(self, lrs, moms, loss):
        "One training batch: `loss` a number or a 0-d tensor (kept as it is until read)."
        self.lrs.append(lrs)
        self.moms.append(moms)
        self._new.append(loss)

    @property
    def batch_losses(self):
        return self._read()[0]

    @property
    def losses(self):
        return self._read()[1]

    def _read(self):
        "The kept batch losses as floats (one host sync for all), appended with their smoothed values."
        for v in _floats(self._new):
            self._n += 1
            self._avg = self.beta * self._avg + (1 - self.beta) * v  # torch.lerp(loss, avg, beta)
            self._raw.append(v)
            self._smooth.append(self._avg / (1 - self.beta**self._n))
        self._new = []
        return self._raw, self._smooth

    def add_epoch(self, valid, secs):
        self.values.append([self.losses[-1] if self.losses else math.nan, *valid])
        self.times.append(secs)
        self.iters.append(len(self.losses))

    def plot_loss(self, skip_start=5, with_valid=True):
        "Smoothed training loss per batch, validation loss per epoch (OC-5)."
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(range(skip_start, len(self.losses)), self.losses[skip_start:], label="train")
        if with_valid and self.values:
            k = sum(i < skip_start for i in self.iters)  # epochs that ended before skip_start, as fastai
            ax.plot(self.iters[k:], [v[1] for v in self.values[k:]], label="valid")
        ax.set(xlabel="steps", ylabel="loss", title="learning curve")
        ax.legend()
        return fig

    def plot_sched(self):
        "Every group's LR and momentum per batch."
        import matplotlib.pyplot as plt

        fig, axs = plt.subplots(1, 2, figsize=(12, 4))
        axs[0].plot(self.lrs), axs[0].set_ylabel("lr")
        axs[1].plot(self.moms), axs[1].set_ylabel("mom")
        return fig

    def plot_lr_find(self, skip_end=5, suggestions=None, nms=None):
        "Smoothed loss against the last group's LR on a log x axis (T:L148), suggestions marked (LR-11)."
        import matplotlib.pyplot as plt

        n = len(self.losses) - skip_end
        fig, ax = plt.subplots()
        ax.plot([g[-1] for g in self.lrs[:n]], self.losses[:n])
        ax.set(xlabel="Learning Rate", ylabel="Loss", xscale="log")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"][1:]
        for (x, y), nm, c in zip(suggestions or (), nms or (), colors):
            ax.plot(x, y, "o", label=nm, c=c)
        if suggestions:
            ax.legend(loc="best")
        return fig


class Learner:
    """Model + data + loss + optimizer; parameter groups from `splitter(model)` (a list of lists of parameters);
    `compile`: True (torch.compile's default mode) or a mode name runs the forward passes compiled (`compile`)."""

    def __init__(
        self,
        dls,
        model,
        loss_func,
        opt_func=Adam,
        lr=1e-3,
        splitter=None,
        metrics=(),
        train_bn=True,
        moms=(0.95, 0.85, 0.95),
        wd=None,
        path=".",
        model_dir="models",
        cbs=(),
        progress=None,
        compile=False,
    ):
        if not (isinstance(compile, (bool, str)) or compile is None):
            raise TypeError(f"compile must be False, True or a torch.compile mode name, got {compile!r}")
        for a in ("train", "valid"):
            if not hasattr(dls, a):
                raise TypeError(f"dls must have .train and .valid, got {type(dls).__name__} without .{a}")
        if not callable(loss_func):
            raise TypeError(f"loss_func must be callable, got {loss_func!r}")
        self.dls, self.model, self.loss_func, self.opt_func = dls, model, loss_func, opt_func
        self.splitter, self.train_bn, self.moms, self.wd = splitter, train_bn, _moms(moms), _wd(wd)
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        self.path, self.model_dir = Path(path), model_dir
        self.opt, self.amp, self.recorder, self.cbs = None, None, Recorder(), _cbs(cbs)
        self.progress = progress  # None: the table and bar unless quiet (impl.callback.shows)
        self.groups = self._groups()
        self._lrs(lr)
        self.lr, self._guard, self._compiled = lr, None, None
        if compile:
            self.compile(None if compile is True else compile)

    # ------------------------------------------------------------ parameter groups, optimizer, hypers
    def _groups(self):
        gs = [list(self.model.parameters())] if self.splitter is None else [list(g) for g in self.splitter(self.model)]
        if not gs or any(len(g) == 0 for g in gs):
            raise ValueError(f"splitter gave an empty parameter group: sizes {[len(g) for g in gs]}")
        seen = [id(p) for g in gs for p in g]
        if len(seen) != len(set(seen)):
            raise ValueError("splitter put a parameter in two groups")
        return gs

    @property
    def device(self):
        return getattr(self.dls, "device", None) or next(self.model.parameters()).device

    def compile(self, mode=None, **kw):
        """Run this learner's forward passes (training, validate, get_preds, lr_find) through torch.compile(self.model,
        mode=mode, **kw) (mode: None or 'default', 'reduce-overhead', 'max-autotune', ...; kw: torch.compile's);
        mode=False goes back to the plain module. `self.model` stays the module itself: save, load, state_dict and
        the parameter groups are those of the uncompiled learner (files interchangeable). The first batches of each
        shape compile (seconds to minutes). Returns self."""
        if mode is False:
            self._compiled = None
            return self
        self._compiled = (self.model, torch.compile(self.model, mode=mode, **kw))
        return self

    def _net(self):
        "What runs the forward pass: the compiled module while it is of `self.model` (learn.compile), else the model."
        m, c = self._compiled or (None, None)
        return c if m is self.model else self.model

    def create_opt(self):
        lrs = lrs_for(self.lr, len(self.groups))
        self.opt = self.opt_func([{"params": g, "lr": l} for g, l in zip(self.groups, lrs)], lr=lrs[-1])
        if self.wd is not None:
            self.set_hyper("weight_decay", self.wd)
        return self.opt

    def set_hyper(self, k, v):
        "Set `k` ('lr', 'mom', 'weight_decay') per group: a number, a list; for lr also slice(lo, hi), slice(hi)."
        n = len(self.groups)
        vs = lrs_for(v, n) if k == "lr" else list(v) if isinstance(v, (list, tuple)) else [v] * n
        if len(vs) != len(self.groups):
            raise ValueError(f"{k} has {len(vs)} values but there are {len(self.groups)} parameter groups")
        for g, x in zip(self.opt.param_groups, vs):
            if k == "mom":
                _set_mom(g, x)
            else:
                g[k] = x

    def _lrs(self, lr, name="lr"):
        "One LR per group from a number, a list, slice(hi) or slice(lo, hi): every LR > 0, a slice's lo <= hi."
        vs = [lr.start, lr.stop] if isinstance(lr, slice) else list(lr) if isinstance(lr, (list, tuple)) else [lr]
        if any(isinstance(v, (int, float)) and not v > 0 for v in vs):
            raise ValueError(f"{name}: every LR must be > 0 (0 trains nothing, < 0 climbs the loss), got {lr!r}")
        try:
            lrs = lrs_for(lr, len(self.groups))
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name}: {e}") from None
        if any(not v > 0 for v in lrs):
            raise ValueError(f"{name}: every LR must be > 0 (0 trains nothing, < 0 climbs the loss), got {lr!r}")
        if isinstance(lr, slice) and lr.start is not None and lr.start > lr.stop:  # one group too
            raise ValueError(f"{name}=slice(lo, hi) needs lo <= hi (the first group trains slowest), got {lr!r}")
        return lrs

    def hypers(self, k="lr"):
        "The current value of `k` in every group (momentum: Adam's betas[0] or SGD's momentum)."
        return [_get_mom(g) if k == "mom" else g[k] for g in self.opt.param_groups]

    # ------------------------------------------------------------ freezing (T:L322-337)
    def freeze_to(self, n):
        "Groups before `n` stop training (norm layers stay trainable when train_bn), the rest train; clears opt state."
        if self.opt is None:
            self.create_opt()
        k = n if n >= 0 else len(self.groups) + n
        if k >= len(self.groups):
            warnings.warn(f"freezing {k} groups; model has {len(self.groups)}; whole model is frozen", stacklevel=2)
        keep = {id(p) for p in norm_params(self.model)} if self.train_bn else set()
        for i, g in enumerate(self.groups):
            for p in g:
                p.requires_grad_(i >= k or id(p) in keep)
        self.opt.state.clear()

    def freeze(self):
        "Only the last group trains (and norm layers, when train_bn): T:L322."
        if len(self.groups) < 2:
            raise ValueError(f"freeze needs at least 2 parameter groups, got {len(self.groups)}; pass a splitter")
        self.freeze_to(-1)

    def unfreeze(self):
        "Every parameter trains (T:L333)."
        self.freeze_to(0)

    # ------------------------------------------------------------ one batch
    def _to(self, b):
        d = self.device
        b = [t.to(d, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in b]
        if self.amp is not None and self.amp.channels_last:
            b = [
                t.contiguous(memory_format=torch.channels_last) if isinstance(t, torch.Tensor) and t.ndim == 4 else t
                for t in b
            ]
        return b[:-1], b[-1]

    def _forward(self, b):
        xb, y = self._to(b)
        with self.amp.autocast() if self.amp is not None else nullcontext():
            o = self._net()(*xb)
            if self.amp is not None:
                o = o.float()  # the loss in fp32 (FP16-2)
            return o, y, self.loss_func(o, y)

    def train_batch(self, b):
        """Forward, loss, backward, step, zero_grad; returns the loss (detached, on the device). When it raises (a
        NaN/inf loss or step, Diverged, any exception, KeyboardInterrupt included) no gradient is left and the
        parameters, buffers, optimizer state and hyper-parameters are as at the start of the epoch (_Guard); called
        outside a fit, as before this batch (checked at once: one host sync). In a fit, no host sync: the loss and
        step are checked at the epoch's end (after each batch when the guard is eager)."""
        g = self._guard = self._guard or _Guard(self)
        alone = not g.fitting
        if alone:
            g.save()
        try:
            try:
                _, _, loss = self._forward(b)
            except ValueError as e:
                _bn_batch_error(e, b)
                raise
            self.amp.backward(loss) if self.amp is not None else loss.backward()
            self.amp.step(self.opt) if self.amp is not None else self.opt.step()
        except BaseException as e:
            if self.amp is not None:
                self.amp.abort()
            g.settle()  # a fault earlier in this epoch comes first: raised instead, the copies put back
            g.failed(e)
            raise
        g.after_step(loss)
        self.opt.zero_grad()
        if alone or g.eager:
            g.settle()
        return loss.detach()

    # ------------------------------------------------------------ fit: one loop, its phases events (impl.callback)
    def _check_data(self):
        "A fit that would train on zero batches raises here, before anything changes."
        if len(self.dls.train) == 0:
            dl = getattr(self.dls.train, "dl", self.dls.train)  # impl's DataLoader (and spec.tiny's) wrap torch's
            ds, bs, drop = (getattr(dl, a, None) for a in ("dataset", "batch_size", "drop_last"))
            n = len(ds) if hasattr(ds, "__len__") else "?"
            raise ValueError(f"dls.train yields no batches ({n} items, bs={bs}, drop_last={drop}): nothing would "
                             "train; lower bs or add training data")

    def _one_cycle_args(self, n_epoch, lr_max=None, div=25.0, div_final=1e5, pct_start=0.25, wd=None, moms=None):
        "fit_one_cycle's arguments checked (an unknown keyword is a TypeError): (n_epoch, lrs, scheds, wd)."
        n_epoch, div, div_final = _n_epoch(n_epoch), _pos(div, "div"), _pos(div_final, "div_final")
        pct_start, wd = _pos(pct_start, "pct_start", 0.0, 1.0), _wd(wd)
        moms = self.moms if moms is None else _moms(moms)
        lrs = self._lrs(self.lr if lr_max is None else lr_max, "lr_max")
        scheds = {
            "lr": [combined_cos(pct_start, l / div, l, l / div_final) for l in lrs],
            "mom": [combined_cos(pct_start, *moms)] * len(lrs),
        }
        return n_epoch, lrs, scheds, wd

    def _fit(self, n_epoch, lrs, wd=None, cbs=()):
        """The loop; arguments already checked. Callbacks: the Recorder, `self.cbs`, `cbs` (this fit's), the progress
        bar when shown. On an exception the model goes back to its train/eval mode."""
        self._check_data()
        if self.opt is None:
            self.create_opt()
        if wd is not None:
            self.set_hyper("weight_decay", wd)
        self.set_hyper("lr", lrs)
        self.model.to(self.device)
        cbs, bar = [self.recorder, *self.cbs, *cbs], ProgressBar() if shows(self.progress) else None
        self._on = dispatch(cbs + [bar] if bar else cbs)
        self._nonfinite = any(getattr(cb, "nonfinite", False) for cb in cbs)  # a callback takes bad losses
        checks = [cb for cb in cbs if callable(getattr(cb, "after_batch", None)) and not getattr(cb, "deferred", 0)]
        self.n_epoch, self.epoch, self.iter, self.train_iter, self.loss = n_epoch, 0, 0, 0, math.nan
        was, g = self.model.training, self._guard or _Guard(self)
        self._guard = g
        g.start(diverge=not self._nonfinite, eager=self._nonfinite or bool(checks))  # eager: a host sync per batch
        try:
            self._with_events(self._do_fit, "fit", CancelFitException)
        except BaseException:
            self.model.train(was)
            raise
        finally:
            g.start(False, False)  # train_batch alone after the fit: no divergence limit, as on a new learner
            if bar:
                bar.after_fit(self)  # closed also when the fit raised
        return self

    def _event(self, ev):
        for f in self._on[ev]:
            f(self)

    def _with_events(self, f, name, cancel):
        "before_<name>, f(), after_<name>; a `cancel` exception raised by either runs after_cancel_<name> (fastai's)."
        try:
            self._event(f"before_{name}")
            f()
        except cancel:
            self._event(f"after_cancel_{name}")
        self._event(f"after_{name}")

    def _do_fit(self):
        n = self.n_epoch
        for self.epoch in range(n):
            self.valid_values = None  # [valid_loss, *metrics] once validated
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _do_epoch(self):
        self._guard.save(self.epoch)
        try:
            self._with_events(self._do_train, "train", CancelTrainException)
        finally:  # also when a callback cut the epoch or fit short: the epoch's losses and steps checked (one sync)
            self._located(self._guard.settle)
        self._with_events(self._do_validate, "validate", CancelValidException)

    def _do_train(self):
        self.model.train()
        dl = self.dls.train
        for self.iter, b in enumerate(dl):
            self._event("before_batch")
            self.loss = self._batch(b)
            self.train_iter += 1
            self._event("after_batch")

    def _batch(self, b):
        "train_batch(b); a NaN/inf loss or step is nan when a callback takes them (`nonfinite`), else an error."
        try:
            return self.train_batch(b)
        except (NonFiniteLoss, NonFiniteStep, Diverged) as e:  # Diverged only without `nonfinite`
            if not self._nonfinite:
                raise self._locate(e) from None
            return torch.full((), math.nan, device=self.device)

    def _do_validate(self):
        self.valid_values = self.validate()

    def _located(self, f, *a):
        "f(*a); a NaN/inf loss or parameter, or a diverging loss, raises again naming the epoch and batch (IMPL-3)."
        try:
            return f(*a)
        except (NonFiniteLoss, NonFiniteStep, Diverged) as e:
            raise self._locate(e) from None

    def _locate(self, e):
        "The same error, its message naming the epoch and batch and what the learner was put back to."
        n = type(e)(f"{e}; found at epoch {self.epoch}, batch {e.batch}: fit stopped, {_restored(e.at)}")
        n.at = e.at
        return n

    def fit(self, n_epoch, lr=None, wd=None, cbs=()):
        "`n_epoch` epochs at a constant LR (default `self.lr`; a slice gives discriminative LRs); `cbs`: this fit's."
        n_epoch, lrs, wd, cbs = _n_epoch(n_epoch), self._lrs(self.lr if lr is None else lr), _wd(wd), _cbs(cbs)
        return self._fit(n_epoch, lrs, wd=wd, cbs=cbs)

    def fit_one_cycle(self, n_epoch, lr_max=None, div=25.0, div_final=1e5, pct_start=0.25, wd=None, moms=None,
                      cbs=()):
        """1cycle (T:L430-442): per group, cosine from lr_max/div up to lr_max over pct_start of the batches, then
        cosine down to lr_max/div_final; momentum mirrored, moms[0] -> moms[1] -> moms[2] (OC-1, OC-2)."""
        n_epoch, lrs, scheds, wd = self._one_cycle_args(n_epoch, lr_max, div, div_final, pct_start, wd, moms)
        return self._fit(n_epoch, lrs, wd=wd, cbs=[ParamScheduler(scheds), *_cbs(cbs)])

    def fine_tune(self, epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5.0, **kw):
        """fastai's algorithm (T:L316-350): freeze; 1cycle for freeze_epochs at slice(base_lr), pct_start 0.99;
        halve base_lr; unfreeze; 1cycle for epochs at slice(base_lr/lr_mult, base_lr), pct_start, div.
        Every argument (and `kw`, passed to fit_one_cycle) is checked before the model is frozen."""
        _n_epoch(epochs, "epochs"), _n_epoch(freeze_epochs, "freeze_epochs", 0), _pos(div, "div")
        _pos(base_lr, "base_lr"), _pos(lr_mult, "lr_mult", 1.0, open_lo=False), _pos(pct_start, "pct_start", 0.0, 1.0)
        if len(self.groups) < 2:
            raise ValueError(f"freeze needs at least 2 parameter groups, got {len(self.groups)}; pass a splitter")
        if bad := sorted(set(kw) - {"div_final", "wd", "moms"}):
            raise TypeError(f"fine_tune got unexpected keyword argument(s) {bad}; it passes only div_final, wd and "
                            "moms on to fit_one_cycle")
        self._one_cycle_args(max(freeze_epochs, 1), slice(base_lr), pct_start=0.99, **kw)
        self._one_cycle_args(epochs, slice(base_lr / 2 / lr_mult, base_lr / 2), pct_start=pct_start, div=div, **kw)
        self._check_data()
        self.freeze()
        if freeze_epochs:  # fastai's fit_one_cycle(0, ...) trains nothing
            self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kw)
        base_lr /= 2
        self.unfreeze()
        return self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kw)

    def lr_find(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True, show_plot=True, suggest_funcs=(valley,)):
        "The LR finder (impl.lr_find.lr_find): returns SuggestedLRs named after `suggest_funcs`."
        self._check_data()
        return lr_find(self, start_lr, end_lr, num_it, stop_div, show_plot, suggest_funcs)

    # ------------------------------------------------------------ mixed precision (impl.fp16)
    def to_fp16(self, channels_last=False, **scaler_kw):
        from .fp16 import to_fp16

        return to_fp16(self, channels_last=channels_last, **scaler_kw)

    def to_bf16(self, channels_last=False):
        from .fp16 import to_bf16

        return to_bf16(self, channels_last=channels_last)

    def to_fp32(self):
        from .fp16 import to_fp32

        return to_fp32(self)

    # ------------------------------------------------------------ inference
    @torch.no_grad()
    def _outputs(self, dl):
        was = self.model.training
        self.model.eval()
        os_, ys, tot, n = [], [], 0.0, 0
        try:
            for b in dl:
                o, y, loss = self._forward(b)
                os_.append(o.detach()), ys.append(y.detach())
                tot, n = tot + loss.detach().to(_acc(loss)) * len(y), n + len(y)  # weighted by batch size (AvgLoss)
        finally:
            self.model.train(was)
        if not os_:
            return None, None, math.nan
        return torch.cat(os_), torch.cat(ys), (tot / n).item()  # one host sync

    def validate(self, dl=None):
        "[valid_loss, *metrics] on `dl` (default dls.valid); metrics on the whole set's outputs."
        self.model.to(self.device)
        o, y, loss = self._outputs(self.dls.valid if dl is None else dl)
        if o is None:
            warnings.warn("the validation DataLoader yielded no batches: valid_loss and metrics are nan (fastai "
                          "records None)", RuntimeWarning, stacklevel=2)
        return [loss] + [math.nan if o is None else _float(m(o, y)) for m in self.metrics]

    def get_preds(self, dl=None, act=None, with_decoded=False):
        "(preds, targets[, decoded]) on `dl` (default dls.valid); `act` defaults to the loss's activation."
        self.model.to(self.device)
        o, y, _ = self._outputs(self.dls.valid if dl is None else dl)
        if o is None:
            raise ValueError("get_preds: the DataLoader yielded no batches")
        p = (_default_act(self.loss_func) if act is None else act)(o)
        return (p, y, _default_decodes(self.loss_func)(p)) if with_decoded else (p, y)

    # ------------------------------------------------------------ save / load (weights only)
    def _file(self, name):
        "path/model_dir/name.pth; `name` must stay inside model_dir (no absolute path, no '..' leading out)."
        if not isinstance(name, (str, os.PathLike)) or not str(name):
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        d, n = self.path / self.model_dir, os.path.normpath(f"{name}.pth")
        if os.path.isabs(n) or n.split(os.sep)[0] == "..":
            raise ValueError(f"name must stay inside the model folder {d}, got {name!r}")
        return d / n

    def save(self, name, with_opt=True):
        "Weights (and optimizer state) to path/model_dir/name.pth, via a temp file and os.replace: never half-written."
        f = self._file(name)
        f.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": self.model.state_dict()}
        if with_opt and self.opt is not None:
            state["opt"] = self.opt.state_dict()
        fd, tmp = tempfile.mkstemp(dir=f.parent, prefix=f".{f.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, f)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f

    def load(self, name, with_opt=True, strict=True):
        """Load what `save` wrote, all or nothing: every shape (and the optimizer's groups) is checked before anything
        is copied. torch.load(weights_only=True) refuses arbitrary pickles (IMPL-7); a truncated, empty or corrupt
        file raises ValueError naming it."""
        f = self._file(name)
        if not f.exists():
            raise FileNotFoundError(f"no saved model {f}")
        try:
            state = torch.load(f, map_location=self.device, weights_only=True)
        except Exception as e:
            raise ValueError(f"cannot load {f} (truncated, empty or not a checkpoint?): {type(e).__name__}: {e}") from e
        if not (isinstance(state, dict) and "model" in state):
            state = {"model": state}
        opt = state.get("opt") if with_opt else None
        self._check_state(f, state["model"], opt, strict)
        model_was = {k: v.clone() for k, v in self.model.state_dict().items()}
        opt_was = None if self.opt is None else copy.deepcopy(self.opt.state_dict())
        try:
            self.model.load_state_dict(state["model"], strict=strict)
            if opt is not None:
                if self.opt is None:
                    self.create_opt()
                self.opt.load_state_dict(opt)
        except BaseException:
            self.model.load_state_dict(model_was)
            if opt_was is not None:
                self.opt.load_state_dict(opt_was)
            raise
        return self

    def _check_state(self, f, sd, opt, strict):
        "What `load` would copy from file `f` fits: names (when strict), shapes, the optimizer's groups."
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ValueError(f"{f}: 'model' is not a state dict of tensors")
        own = self.model.state_dict()
        missing, extra = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
        if strict and (missing or extra):
            raise ValueError(f"{f} does not fit the model: missing {missing[:5]}, unexpected {extra[:5]}")
        bad = [f"{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model"
               for k, v in sd.items() if k in own and v.shape != own[k].shape]
        if bad:
            raise ValueError(f"{f} does not fit the model: {'; '.join(bad[:5])}")
        if opt is None:
            return
        try:
            sizes, ps = [len(g["params"]) for g in opt["param_groups"]], opt["state"]
        except (KeyError, TypeError) as e:
            raise ValueError(f"{f}: 'opt' is not an optimizer state dict ({e!r})") from None
        if sizes != [len(g) for g in self.groups]:
            raise ValueError(f"{f}: the optimizer has parameter groups of sizes {sizes}, this learner "
                             f"{[len(g) for g in self.groups]}")
        flat = [p for g in self.groups for p in g]
        for i, st in ps.items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.ndim and not (0 <= i < len(flat) and v.shape == flat[i].shape):
                    raise ValueError(f"{f}: optimizer state {k!r} of parameter {i} has shape {tuple(v.shape)}, the "
                                     f"parameter {tuple(flat[i].shape) if 0 <= i < len(flat) else 'does not exist'}")


def _cbs(cbs):
    "A list of callbacks from None, one callback, or a list/tuple of them."
    return [] if cbs is None else list(cbs) if isinstance(cbs, (list, tuple)) else [cbs]


def _name(m):
    return getattr(m, "__name__", None) or getattr(getattr(m, "func", None), "__name__", type(m).__name__)


def _float(v):
    return v.item() if isinstance(v, torch.Tensor) else float(v)


def _floats(xs):
    "Numbers and 0-d tensors as floats: one host sync for all the tensors."
    ts = [x.detach().reshape(1) for x in xs if isinstance(x, torch.Tensor)]
    vs = iter(torch.cat(ts).tolist() if ts else ())
    return [next(vs) if isinstance(x, torch.Tensor) else float(x) for x in xs]


def _acc(t):
    "The dtype validation sums a loss in: float64 (the host's), float32 where the device has no float64 (MPS)."
    return torch.float32 if t.device.type == "mps" else torch.float64


def _set_mom(g, m):
    if "betas" in g:
        g["betas"] = (m, g["betas"][1])
    elif "momentum" in g:
        g["momentum"] = m


def _get_mom(g):
    return g["betas"][0] if "betas" in g else g.get("momentum")
