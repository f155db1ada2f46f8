"""Schedules on fastai: fastai.callback.schedule's annealers, combinators, combined_cos and LRFinder, fastcore's
even_mults, and the per-group LRs a fastai `Optimizer` sets from a float, a slice or a list (`Optimizer.set_hyper`)."""

import torch
from fastai.callback.schedule import LRFinder as _LRFinder
from fastai.callback.schedule import (  # noqa: F401
    SchedCos,
    SchedExp,
    SchedLin,
    SchedNo,
    SchedPoly,
    combine_scheds,
    combined_cos,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
)
from fastai.optimizer import Optimizer as _Optimizer
from fastai.optimizer import sgd_step as _sgd_step
from fastai.torch_core import even_mults  # noqa: F401


def lrs_for(lr, n):
    "The LR of each of `n` parameter groups after `Optimizer(..., lr=lr)`, read back from `opt.hypers`."
    opt = _Optimizer([[torch.nn.Parameter(torch.zeros(1))] for _ in range(n)], [_sgd_step], lr=lr)
    return [h["lr"] for h in opt.hypers]


def lr_finder_schedule(start_lr=1e-7, end_lr=10, num_it=100):
    "The LR of each batch of `LRFinder`: batch i (train_iter) at pos = i/num_it of its `scheds['lr']`."
    f = _LRFinder(start_lr, end_lr, num_it)
    return [f.scheds["lr"](i / f.num_it) for i in range(f.num_it)]
