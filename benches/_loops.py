"""The three training loops the benches compare on the same model, data tensors and optimizer (Adam, foreach):
a hand-written PyTorch loop (`Plain`), impl's Learner (`impl_epoch`) and fastai's Learner (`fastai_epoch`), and
the first two with the model's forward torch.compile'd (`plain_compiled`, `impl_compiled`: mode $BENCH_COMPILE_MODE,
default torch's "default").
One call of the returned function = one epoch (train, then validation when the data has any), constant LR.
Also the data they share: batches already on the device (`Batches`, compute-only) or shuffled slices of
device tensors (`TensorBatches`), and `check_loss`, the loss of a model on given batches (no grad), used to
check that each loop trained the same function.
"""

from __future__ import annotations

import math
import os
from functools import partial

import torch
import torch.nn.functional as F

PRECISIONS = {
    "fp32_strict": None,
    "fp32": None,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp16_cl": torch.float16,
    "bf16_cl": torch.bfloat16,
}


def adam(params, lr):
    return torch.optim.Adam(params, lr=lr, foreach=True)


class Batches:
    "An epoch of `n` compute-only batches, cycling through `xys` (a list of (x, y) already on the device)."

    def __init__(self, xys, n):
        self.xys, self.n = xys, n

    def __iter__(self):
        return (self.xys[i % len(self.xys)] for i in range(self.n))

    def __len__(self):
        return self.n

    def to(self, device):
        return self  # fastai's DataLoaders calls this


class TensorBatches:
    "Mini-batches of device tensors (x, y), reshuffled each epoch by a seeded generator: every loop sees the same."

    def __init__(self, x, y, bs, shuffle=True, seed=0):
        self.x, self.y, self.bs, self.shuffle = x, y, bs, shuffle
        self.g = torch.Generator(device=x.device).manual_seed(seed)

    def __len__(self):
        return math.ceil(len(self.x) / self.bs)

    def to(self, device):
        return self

    def __iter__(self):
        n = len(self.x)
        idx = torch.randperm(n, device=self.x.device, generator=self.g) if self.shuffle else None
        for i in range(0, n, self.bs):
            j = idx[i : i + self.bs] if idx is not None else slice(i, i + self.bs)
            yield self.x[j], self.y[j]


class Data:
    "What a Learner wants: .train, .valid, .device."

    def __init__(self, train, valid, device):
        self.train, self.valid, self.device = train, valid, device


class Plain:
    """The baseline: a hand-written PyTorch loop, as lean as idiomatic code is (no per-batch host sync unless `item`).
    `precision` as PRECISIONS; fp16 with a GradScaler; channels_last converts the model and each batch (as impl);
    `compile`: a torch.compile mode for the forward pass (the optimizer step stays eager, as impl's)."""

    def __init__(self, data, model, loss_func, lr, precision="fp32", item=False, compile=None):
        self.data, self.model, self.loss_func, self.item = data, model, loss_func, item
        self.dtype, self.cl = PRECISIONS[precision], precision.endswith("_cl")
        if self.cl:
            model.to(memory_format=torch.channels_last)
        self.dev = torch.device(data.device)
        self.opt = adam(model.parameters(), lr)
        self.scaler = torch.amp.GradScaler(self.dev.type) if self.dtype == torch.float16 else None
        self.valid_loss = math.nan
        self.net = model if compile is None else torch.compile(model, mode=compile)

    def _fwd(self, x, y):
        if self.cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.dev.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            o = self.net(x)
            return self.loss_func(o.float() if self.dtype is not None else o, y)

    def __call__(self):
        m, opt = self.model, self.opt
        m.train()
        for x, y in self.data.train:
            loss = self._fwd(x, y)
            if self.item:
                loss.item()  # what impl (and most loops) do each batch: a host sync
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(opt)
                self.scaler.update()
            else:
                loss.backward()
                opt.step()
            opt.zero_grad()
        if len(self.data.valid):
            m.eval()
            with torch.no_grad():
                tot = sum(self._fwd(x, y) * len(y) for x, y in self.data.valid)
            self.valid_loss = (tot / sum(len(y) for _, y in self.data.valid)).item()


def compile_mode():
    "The torch.compile mode of the compiled loops: $BENCH_COMPILE_MODE, default torch's 'default'."
    return os.environ.get("BENCH_COMPILE_MODE", "default")


def impl_learner(data, model, loss_func, lr, precision="fp32", compile=None):
    from impl.learner import Learner

    learn = Learner(data, model, loss_func, lr=lr, compile=compile or False)  # opt_func: Adam, foreach, as `adam`
    dt = PRECISIONS[precision]
    if dt == torch.float16:
        learn.to_fp16(channels_last=precision.endswith("_cl"))
    elif dt == torch.bfloat16:
        learn.to_bf16(channels_last=precision.endswith("_cl"))
    return learn


def impl_epoch(data, model, loss_func, lr, precision="fp32", compile=None):
    learn = impl_learner(data, model, loss_func, lr, precision, compile)
    f = lambda: learn.fit(1)
    f.learn = learn
    return f


def fastai_epoch(data, model, loss_func, lr, precision="fp32"):
    "fastai's Learner on the same tensors: torch's Adam (foreach) through OptimWrapper; no progress bar, no logging."
    from fastai.callback.progress import ProgressCallback
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper

    dls = DataLoaders(data.train, data.valid, device=data.device)
    learn = Learner(dls, model, loss_func=loss_func, lr=lr, opt_func=partial(OptimWrapper, opt=adam))
    learn.remove_cb(ProgressCallback)
    learn.logger = lambda *a, **k: None
    if PRECISIONS[precision] == torch.float16:
        learn.to_fp16()
    elif PRECISIONS[precision] == torch.bfloat16:
        learn.to_bf16()
    if precision.endswith("_cl"):
        learn.to_channelslast()
    f = lambda: learn.fit(1, lr)
    f.learn = learn
    return f


def impl_lean_epoch(data, model, loss_func, lr, precision="fp32"):
    """A diagnostic, not impl: impl's Learner with its train_batch bare (no fault guard's per-batch finiteness flag,
    no scale record): with impl's own (no host sync per batch either), what the guard costs per batch."""
    f = impl_epoch(data, model, loss_func, lr, precision)
    learn = f.learn

    def train_batch(b):
        _, _, loss = learn._forward(b)
        s = learn.amp.scaler if learn.amp is not None else None
        if s is not None:
            s.scale(loss).backward()
            s.step(learn.opt)
            s.update()
        else:
            loss.backward()
            learn.opt.step()
        learn.opt.zero_grad()
        return loss.detach()  # the Recorder averages it on the device

    learn.train_batch = train_batch
    return f


def plain_item(data, model, loss_func, lr, precision="fp32"):
    "The plain loop plus one loss.item() per batch: the host sync impl makes (and most hand-written loops)."
    return Plain(data, model, loss_func, lr, precision, item=True)


def plain_compiled(data, model, loss_func, lr, precision="fp32"):
    return Plain(data, model, loss_func, lr, precision, compile=compile_mode())


def impl_compiled(data, model, loss_func, lr, precision="fp32"):
    return impl_epoch(data, model, loss_func, lr, precision, compile=compile_mode())


LOOPS = {
    "plain": Plain,
    "impl": impl_epoch,
    "fastai": fastai_epoch,
    "impl_lean": impl_lean_epoch,
    "plain_item": plain_item,
    "plain_compiled": plain_compiled,
    "impl_compiled": impl_compiled,
}


@torch.no_grad()
def check_loss(model, batches, loss_func, train_mode=False) -> float:
    "Mean loss of `model` (in float32) over `batches`; train_mode keeps BatchNorm on batch statistics."
    was = model.training
    model.train(train_mode)
    tot, n = 0.0, 0
    for x, y in batches:
        x = x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 and _is_cl(model) else x
        tot, n = tot + loss_func(model(x).float(), y).item() * len(y), n + len(y)
    model.train(was)
    return tot / n


def _is_cl(model):
    w = next((p for p in model.parameters() if p.ndim == 4), None)
    return w is not None and w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


def mse(o, y):
    return F.mse_loss(o.reshape(-1), y.reshape(-1))
