"""Training on impl: Learner, lr_find and its suggestions, mixed precision, plus a per-batch log for the spec.

`learner(...)` attaches a `_Log` callback that keeps, for every training batch of every fit (and LR-finder
sweep) since the learner was made: each group's LR and momentum, the raw loss, the parameters after the step
and, with fp16, the loss scale. The fastai adapter (fastai_api/training.py) keeps the same log.
"""

import tempfile

import numpy as np
import torch

from impl.data import DataLoaders as _DataLoaders
from impl.learner import Learner as _Learner
from impl.lr_find import SuggestionMethod, minimum, slide, steep, valley  # noqa: F401


class _Log:
    def __init__(self):
        self.lrs, self.moms, self.losses, self.params, self.scales, self.scaler = [], [], [], [], [], []
        self.epochs, self.scaler_cfg = 0, None

    def after_batch(self, learn):
        self.lrs.append(learn.hypers("lr"))
        self.moms.append(learn.hypers("mom"))
        self.losses.append(learn.recorder.batch_losses[-1])
        self.params.append(torch.cat([p.detach().flatten() for p in learn.model.parameters()]).cpu().clone())
        sc = None if learn.amp is None else learn.amp.scaler
        self.scaler.append(sc is not None and sc.is_enabled())
        if self.scaler[-1]:
            self.scales.append(sc.get_scale())
            self.scaler_cfg = (sc.get_growth_factor(), sc.get_backoff_factor(), sc.get_growth_interval())

    def after_epoch(self, learn):
        self.epochs += 1


def dls_from_loaders(train, valid):
    "The backend's DataLoaders around two iterables of (x, y) batches with len (torch DataLoaders)."
    return _DataLoaders(train, valid)


def learner(dls, model, loss_func, splitter=None, path=None, **kw):
    "A Learner with the spec's per-batch log; `path` defaults to a fresh temp folder (nothing lands in the repo)."
    path = tempfile.mkdtemp(prefix="l6spec-") if path is None else path
    return _Learner(dls, model, loss_func, splitter=splitter, path=path, cbs=[_Log()], **kw)


def train_log(learn):
    """The per-batch log since the learner was made: `lrs`, `moms` (arrays: batches x groups), raw `losses`, flat
    `params` after each step, `scaler` (a GradScaler was enabled), `scales` (after each scaled step), `scaler_cfg`
    (growth factor, backoff factor, growth interval), `epochs`."""
    log = next(cb for cb in learn.cbs if isinstance(cb, _Log))
    return dict(lrs=np.array(log.lrs), moms=np.array(log.moms), losses=np.array(log.losses), params=log.params,
                scaler=list(log.scaler), scales=list(log.scales), scaler_cfg=log.scaler_cfg, epochs=log.epochs)


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

