"""Training on fastai: `fastai.learner.Learner` on plain torch DataLoaders, with the same per-batch log as impl's.

fastai's Recorder keeps only the last group's LR (`opt.hypers[-1]['lr']`, LR-7) and each fit resets it, so
`learner(...)` adds the shared `BatchLog` (spec/backends/recorder.py) in a fastai callback (order 55: after the
Recorder, before ParamScheduler/LRFinder end a fit), reading fastai's `opt.hypers`, `loss` and `scaler`. The
progress bar and the epoch table are switched off.
"""

import tempfile

import fastai.callback.fp16 as _fp16  # patches Learner.to_fp16/to_bf16/to_fp32
import fastai.callback.schedule  # noqa: F401  patches fit_one_cycle, fine_tune, lr_find
import numpy as np
import torch
from fastai.callback.core import Callback as _Callback
from fastai.callback.progress import ProgressCallback as _Progress
from fastai.callback.schedule import SuggestionMethod, minimum, slide, steep, valley  # noqa: F401
from fastai.data.core import DataLoaders as _DataLoaders
from fastai.learner import Learner as _Learner

from spec.backends.recorder import BatchLog as _BatchLog


def _read(learn):
    "(every group's LR, every group's momentum, the raw loss, the GradScaler or None) after a training batch."
    hs = learn.opt.hypers
    sc = getattr(learn, "scaler", None)
    return [float(h["lr"]) for h in hs], [float(h["mom"]) for h in hs], float(learn.loss.detach()), sc


class _Log(_Callback):
    "The shared BatchLog on fastai's callback events (order 55: after the Recorder, before LRFinder ends a fit)."

    order = 55

    def __init__(self):
        self.batch_log = _BatchLog(_read)

    def after_batch(self):
        if self.training:
            self.batch_log.after_batch(self.learn)

    def after_epoch(self):
        self.batch_log.after_epoch(self.learn)


def dls_from_loaders(train, valid):
    "The backend's DataLoaders around two iterables of (x, y) batches with len (torch DataLoaders)."
    return _DataLoaders(train, valid)


def learner(dls, model, loss_func, splitter=None, path=None, **kw):
    "A Learner with the spec's per-batch log; `path` defaults to a fresh temp folder (lr_find writes under it)."
    path = tempfile.mkdtemp(prefix="l6spec-") if path is None else path
    if splitter is not None:
        kw["splitter"] = splitter
    learn = _Learner(dls, model, loss_func=loss_func, path=path, cbs=[_Log()], **kw)
    learn.remove_cb(_Progress)
    learn.logger = lambda *a, **k: None
    return learn


def train_log(learn):
    "The per-batch log since the learner was made (spec/backends/recorder.py, BatchLog.as_dict)."
    return next(cb for cb in learn.cbs if isinstance(cb, _Log)).batch_log.as_dict()


def lr_find(learn, **kw):
    "learn.lr_find without showing the plot."
    return learn.lr_find(show_plot=False, **kw)


def finder_curve(learn):
    "After lr_find: the recorder's LRs (last group) and smoothed losses."
    r = learn.recorder
    return np.array(r.lrs, dtype=float), np.array([float(v) for v in r.losses])


def group_lrs(learn):
    "The LR of every parameter group now."
    return [float(h["lr"]) for h in learn.opt.hypers]


def set_lr(learn, lr):
    "Set the LR of every group from a number, slice or list (`Optimizer.set_hyper`); returns the per-group LRs."
    if learn.opt is None:
        learn.create_opt()
    learn.opt.set_hyper("lr", lr)
    return group_lrs(learn)


def opt_tensors(learn):
    "Every tensor (and count) of the optimizer's state (copies), in a fixed order: to compare bit for bit."
    if learn.opt is None:
        return []
    out = []
    for p, *_ in learn.opt.all_params():
        for _, v in sorted(learn.opt.state[p].items()):
            if isinstance(v, torch.Tensor):
                out.append(v.detach().cpu().clone())
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(torch.tensor(v))
    return out


def requires_grad(learn):
    "requires_grad of every parameter, in model.parameters() order."
    return [p.requires_grad for p in learn.model.parameters()]


def valid_metrics(learn):
    "[valid_loss, *metrics] on the validation set."
    return [float(v) for v in learn.validate()]


def mixed_precision(learn):
    "None, 'fp16' or 'bf16': what the learner is set to."
    cbs = [cb for cb in learn.cbs if isinstance(cb, _fp16.MixedPrecision)]
    return cbs[0].amp_mode.value if cbs else None
