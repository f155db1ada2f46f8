"""Training on impl: Learner, lr_find and its suggestions, mixed precision, plus the spec's per-batch log.

`learner(...)` attaches the shared `BatchLog` (spec/backends/recorder.py), reading impl's hyper-parameters
(`learn.hypers`), loss (`learn.loss`) and GradScaler (`learn.amp.scaler`). The spec runs quiet: these learners print
no epoch table (progress=False), and importing this adapter sets IMPL_QUIET=1 (unless set) for every other impl
learner the spec makes (impl.callback.shows).
"""

import os
import tempfile

import numpy as np
import torch

from impl.data import DataLoaders as _DataLoaders
from impl.learner import Learner as _Learner
from impl.lr_find import SuggestionMethod, minimum, slide, steep, valley  # noqa: F401
from spec.backends.recorder import BatchLog as _BatchLog

os.environ.setdefault("IMPL_QUIET", "1")


def _read(learn):
    "(every group's LR, every group's momentum, the raw loss, the GradScaler or None) after a training batch."
    return learn.hypers("lr"), learn.hypers("mom"), float(learn.loss), None if learn.amp is None else learn.amp.scaler


def dls_from_loaders(train, valid):
    "The backend's DataLoaders around two iterables of (x, y) batches with len (torch DataLoaders)."
    return _DataLoaders(train, valid)


def learner(dls, model, loss_func, splitter=None, path=None, **kw):
    "A Learner with the spec's per-batch log; `path` defaults to a fresh temp folder (nothing lands in the repo)."
    path = tempfile.mkdtemp(prefix="l6spec-") if path is None else path
    kw.setdefault("progress", False)
    return _Learner(dls, model, loss_func, splitter=splitter, path=path, cbs=[_BatchLog(_read)], **kw)


def train_log(learn):
    "The per-batch log since the learner was made (spec/backends/recorder.py, BatchLog.as_dict)."
    return next(cb for cb in learn.cbs if isinstance(cb, _BatchLog)).as_dict()


def lr_find(learn, **kw):
    "learn.lr_find without showing the plot."
    return learn.lr_find(show_plot=False, **kw)


def finder_curve(learn):
    "After lr_find: the recorder's LRs (last group, as fastai records them) and smoothed losses."
    r = learn.recorder
    return np.array([g[-1] for g in r.lrs]), np.array(r.losses, dtype=float)


def group_lrs(learn):
    "The LR of every parameter group now."
    return learn.hypers("lr")


def set_lr(learn, lr):
    "Set the LR of every group from a number, slice or list (as fit/fit_one_cycle do); returns the per-group LRs."
    if learn.opt is None:
        learn.create_opt()
    learn.set_hyper("lr", lr)
    return learn.hypers("lr")


def opt_tensors(learn):
    "Every tensor of the optimizer's state (copies), in a fixed order: to compare bit for bit."
    if learn.opt is None:
        return []
    sd = learn.opt.state_dict()["state"]
    vs = [v for k in sorted(sd) for _, v in sorted(sd[k].items())]
    return [v.detach().cpu().clone() for v in vs if isinstance(v, torch.Tensor)]


def requires_grad(learn):
    "requires_grad of every parameter, in model.parameters() order."
    return [p.requires_grad for p in learn.model.parameters()]


def valid_metrics(learn):
    "[valid_loss, *metrics] on the validation set."
    return learn.validate()


def mixed_precision(learn):
    "None, 'fp16' or 'bf16': what the learner is set to."
    return None if learn.amp is None else {torch.float16: "fp16", torch.bfloat16: "bf16"}[learn.amp.dtype]

