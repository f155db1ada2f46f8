"""A compact training loop: Learner, Recorder, fit, fit_one_cycle, freeze/unfreeze, fine_tune (T:L316-442).

Any `dls` with `.train` and `.valid` iterables of `(x, y)` (or `(x1, ..., xn, y)`) batches works, plain
`torch.utils.data.DataLoader`s included; `dls.device`, when present, is where the model and batches go.
Hyper-parameters live in the torch optimizer's param groups: `lr`, and `mom` as Adam's `betas[0]` or SGD's
`momentum`. Schedules follow fastai 2.8.12 exactly (impl.schedule).
"""

import functools
import math
import os
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

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
    "A NaN or infinite training loss; raised before the step, so the weights are those before that batch."


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


def _default_act(loss_func):
    "The activation that turns model outputs into predictions: the loss's own, else by the loss's type."
    if hasattr(loss_func, "activation"):
        return loss_func.activation
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is F.cross_entropy:
        return functools.partial(F.softmax, dim=-1)
    if isinstance(loss_func, nn.BCEWithLogitsLoss) or loss_func is F.binary_cross_entropy_with_logits:
        return torch.sigmoid
    return lambda x: x


def _default_decodes(loss_func):
    if hasattr(loss_func, "decodes"):
        return loss_func.decodes
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is F.cross_entropy:
        return lambda x: x.argmax(-1)
    if isinstance(loss_func, nn.BCEWithLogitsLoss) or loss_func is F.binary_cross_entropy_with_logits:
        return lambda x: x > 0.5
    return lambda x: x


class Recorder:
    """Per training batch: every group's `lrs` and `moms`, the raw `batch_losses` and the smoothed `losses`
    (exponential moving average, beta 0.98, debiased, as fastai's AvgSmoothLoss: LR-7). Per epoch: `values`
    rows [train_loss (smoothed, as fastai), valid_loss, *metrics] and `times` (wall seconds). Reset by each fit."""

    def __init__(self, beta=0.98):
        self.beta = beta
        self.reset()

    def reset(self, metric_names=()):
        self.lrs, self.moms, self.batch_losses, self.losses = [], [], [], []
        self.values, self.times, self.iters = [], [], []
        self.metric_names = ["train_loss", "valid_loss", *metric_names]
        self._avg, self._n = 0.0, 0

    def add_batch(self, lrs, moms, loss):
        self._n += 1
        self._avg = self.beta * self._avg + (1 - self.beta) * loss  # torch.lerp(loss, avg, beta)
        self.lrs.append(lrs)
        self.moms.append(moms)
        self.batch_losses.append(loss)
        self.losses.append(self._avg / (1 - self.beta**self._n))

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
            ax.plot(self.iters, [v[1] for v in self.values], label="valid")
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
    "Model + data + loss + optimizer; parameter groups from `splitter(model)` (a list of lists of parameters)."

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
    ):
        for a in ("train", "valid"):
            if not hasattr(dls, a):
                raise TypeError(f"dls must have .train and .valid, got {type(dls).__name__} without .{a}")
        if not callable(loss_func):
            raise TypeError(f"loss_func must be callable, got {loss_func!r}")
        if len(moms) != 3:
            raise ValueError(f"moms must be (start, middle, end), got {moms!r}")
        self.dls, self.model, self.loss_func, self.opt_func = dls, model, loss_func, opt_func
        self.lr, self.splitter, self.train_bn, self.moms, self.wd = lr, splitter, train_bn, tuple(moms), wd
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        self.path, self.model_dir = Path(path), model_dir
        self.opt, self.amp, self.recorder, self.cbs = None, None, Recorder(), list(cbs)
        self.groups = self._groups()

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
            o = self.model(*xb)
            if self.amp is not None:
                o = o.float()  # the loss in fp32 (FP16-2)
            return o, y, self.loss_func(o, y)

    def train_batch(self, b):
        "Forward, loss, backward, step, zero_grad; returns the loss as a float. A NaN/inf loss raises before the step."
        _, _, loss = self._forward(b)
        v = loss.item()
        if not math.isfinite(v):
            self.opt.zero_grad()
            raise NonFiniteLoss(f"training loss is {v}")
        if self.amp is not None:
            self.amp.step(self, loss)
        else:
            loss.backward()
            self.opt.step()
        self.opt.zero_grad()
        return v

    # ------------------------------------------------------------ fit
    def _call(self, event):
        for cb in self.cbs:
            if hasattr(cb, event):
                getattr(cb, event)(self)

    def _fit(self, n_epoch, scheds=None, wd=None, lr=None):
        "The loop. `scheds`: {'lr'|'mom': [one callable of p in [0, 1) per group]}, p = batches done / total."
        n_epoch = _n_epoch(n_epoch)
        if self.opt is None:
            self.create_opt()
        if wd is not None:
            self.set_hyper("weight_decay", wd)
        self.set_hyper("lr", self.lr if lr is None else lr)
        self.model.to(self.device)
        nb = len(self.dls.train)
        total = max(n_epoch * nb, 1)
        self.recorder.reset([_name(m) for m in self.metrics])
        self.epoch, self.iter = 0, 0
        self._call("before_fit")
        for self.epoch in range(n_epoch):
            t0 = time.perf_counter()
            self.model.train()
            for i, b in enumerate(self.dls.train):
                self.iter, p = i, (self.epoch * nb + i) / total
                for k, fs in (scheds or {}).items():
                    self.set_hyper(k, [f(p) for f in fs])
                try:
                    self.loss = self.train_batch(b)
                except NonFiniteLoss as e:
                    msg = f"{e} at epoch {self.epoch}, batch {i}; fit stopped, the weights are those before this step"
                    raise NonFiniteLoss(msg) from None
                self.recorder.add_batch(self.hypers("lr"), self.hypers("mom"), self.loss)
                self._call("after_batch")
            self.recorder.add_epoch(self.validate(), time.perf_counter() - t0)
            self._call("after_epoch")
        self._call("after_fit")
        return self

    def fit(self, n_epoch, lr=None, wd=None):
        "Train `n_epoch` epochs at a constant LR (default `self.lr`; a slice gives discriminative LRs)."
        return self._fit(n_epoch, wd=wd, lr=lr)

    def fit_one_cycle(self, n_epoch, lr_max=None, div=25.0, div_final=1e5, pct_start=0.25, wd=None, moms=None):
        """1cycle (T:L430-442): per group, cosine from lr_max/div up to lr_max over pct_start of the batches, then
        cosine down to lr_max/div_final; momentum mirrored, moms[0] -> moms[1] -> moms[2] (OC-1, OC-2)."""
        div, div_final = _pos(div, "div"), _pos(div_final, "div_final")
        pct_start = _pos(pct_start, "pct_start", 0.0, 1.0)
        moms = self.moms if moms is None else tuple(moms)
        if len(moms) != 3:
            raise ValueError(f"moms must be (start, middle, end), got {moms!r}")
        if self.opt is None:
            self.create_opt()
        lrs = lrs_for(self.lr if lr_max is None else lr_max, len(self.groups))
        scheds = {
            "lr": [combined_cos(pct_start, l / div, l, l / div_final) for l in lrs],
            "mom": [combined_cos(pct_start, *moms)] * len(lrs),
        }
        return self._fit(n_epoch, scheds, wd=wd, lr=lrs)

    def fine_tune(self, epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5.0, **kw):
        """fastai's algorithm (T:L316-350): freeze; 1cycle for freeze_epochs at slice(base_lr), pct_start 0.99;
        halve base_lr; unfreeze; 1cycle for epochs at slice(base_lr/lr_mult, base_lr), pct_start, div."""
        _n_epoch(epochs, "epochs"), _n_epoch(freeze_epochs, "freeze_epochs", 0), _pos(div, "div")
        _pos(base_lr, "base_lr"), _pos(lr_mult, "lr_mult"), _pos(pct_start, "pct_start", 0.0, 1.0)
        self.freeze()
        if freeze_epochs:  # fastai's fit_one_cycle(0, ...) trains nothing
            self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kw)
        base_lr /= 2
        self.unfreeze()
        return self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kw)

    def lr_find(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True, show_plot=True, suggest_funcs=(valley,)):
        "The LR finder (impl.lr_find.lr_find): returns SuggestedLRs named after `suggest_funcs`."
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
                tot, n = tot + loss.item() * len(y), n + len(y)  # mean weighted by batch size, as fastai's AvgLoss
        finally:
            self.model.train(was)
        if not os_:
            return None, None, math.nan
        return torch.cat(os_), torch.cat(ys), tot / n

    def validate(self, dl=None):
        "[valid_loss, *metrics] on `dl` (default dls.valid); metrics on the whole set's outputs."
        self.model.to(self.device)
        o, y, loss = self._outputs(self.dls.valid if dl is None else dl)
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
        return self.path / self.model_dir / f"{name}.pth"

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
        "Load what `save` wrote; torch.load(weights_only=True) refuses arbitrary pickles (IMPL-7)."
        f = self._file(name)
        if not f.exists():
            raise FileNotFoundError(f"no saved model {f}")
        state = torch.load(f, map_location=self.device, weights_only=True)
        if not (isinstance(state, dict) and "model" in state):
            state = {"model": state}
        self.model.load_state_dict(state["model"], strict=strict)
        if with_opt and "opt" in state:
            if self.opt is None:
                self.create_opt()
            self.opt.load_state_dict(state["opt"])
        return self


def _name(m):
    return getattr(m, "__name__", None) or getattr(getattr(m, "func", None), "__name__", type(m).__name__)


def _float(v):
    return v.item() if isinstance(v, torch.Tensor) else float(v)


def _set_mom(g, m):
    if "betas" in g:
        g["betas"] = (m, g["betas"][1])
    elif "momentum" in g:
        g["momentum"] = m


def _get_mom(g):
    return g["betas"][0] if "betas" in g else g.get("momentum")
