"""Tiny models and tensor data for the training claims (learner, lr_find, fp16): fast on 2 CPU cores.

`mlp()` and `cnn()` have three parameter groups (`split`), like fastai's ResNet split: two body groups, each
with a BatchNorm, and a head. Data: a seeded synthetic 3-class problem that a linear model can learn.
"""

import os
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spec import checks

N, N_VALID, BS = 96, 32, 8  # make()'s data: 96 items, the first 32 for validation; batches of 8 (16 to validate)
N_TRAIN_BATCHES = (N - N_VALID) // BS  # 8 training batches an epoch
N_VALID_BATCHES = N_VALID // (2 * BS)  # 2 validation batches an epoch


class Counted:
    "An iterable of batches that counts passes (`iters`) and batches (`batches`) taken from it."

    def __init__(self, dl):
        self.dl, self.iters, self.batches = dl, 0, 0

    def __len__(self):
        return len(self.dl)

    def __iter__(self):
        self.iters += 1
        for b in self.dl:
            self.batches += 1
            yield b


def mlp(n_in=8, n_out=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, n_out))


def cnn(n_out=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_out))


def split(m):
    "Three parameter groups: m[0:3], m[3:6], m[6:] (body, body, head)."
    return [list(m[0:3].parameters()), list(m[3:6].parameters()), list(m[6:].parameters())]


def data(n=N, shape=(8,), n_out=3, seed=0):
    "x ~ N(0, 1); y = argmax of a fixed random linear map of x (learnable)."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    w = torch.randn(x[0].numel(), n_out, generator=g)
    return x, (x.flatten(1) @ w).argmax(1)


def loaders(x, y, n_valid=N_VALID, bs=BS, seed=0):
    "(train, valid) torch DataLoaders, both Counted; train shuffled by a seeded generator."
    g = torch.Generator().manual_seed(seed)
    tr = DataLoader(TensorDataset(x[n_valid:], y[n_valid:]), batch_size=bs, shuffle=True, generator=g)
    va = DataLoader(TensorDataset(x[:n_valid], y[:n_valid]), batch_size=2 * bs)
    return Counted(tr), Counted(va)


def make(backend, model=None, n=N, bs=BS, seed=0, loss_func=None, **kw):
    "A learner on `backend` over tiny data (N_TRAIN_BATCHES by default), 3 groups. Returns (learn, train, valid)."
    model = mlp(seed=seed) if model is None else model
    shape = (3, 8, 8) if isinstance(model[0], nn.Conv2d) else (8,)
    tr, va = loaders(*data(n, shape, seed=seed), bs=bs, seed=seed)
    loss_func = nn.CrossEntropyLoss() if loss_func is None else loss_func
    kw.setdefault("splitter", split)
    return backend.learner(backend.dls_from_loaders(tr, va), model, loss_func, **kw), tr, va


def seeded_run(backend):
    """fit_one_cycle + validate + lr_find of make(backend, seed=3): per-batch losses, metrics, suggestion (floats,
    exact; IMPL-1). `backend` needs only the names of spec/backends/impl_api/training.py, so that a fresh process can
    pass that module and skip the imports of the whole adapter (torchvision)."""
    learn, *_ = make(backend, seed=3)
    learn.fit_one_cycle(1, 1e-2)
    r = backend.lr_find(learn)
    return [backend.train_log(learn)["losses"].tolist(), backend.valid_metrics(learn), list(r)]


def params(m):
    "A copy of every parameter, in order, on the CPU (fastai moves the model to the GPU when there is one)."
    return [p.detach().cpu().clone() for p in m.parameters()]


def is_norm(m):
    "Whether each parameter of an mlp(), in model.parameters() order, belongs to a BatchNorm."
    return [isinstance(mod, nn.BatchNorm1d) for mod in m for _ in mod.parameters(recurse=False)]


def group_of(m):
    "Group index (split) of every parameter of an mlp(), in model.parameters() order."
    return [0 if i < 3 else 1 if i < 6 else 2 for i, mod in enumerate(m) for _ in mod.parameters(recurse=False)]


def ema(raw, beta=0.98):
    "Debiased exponential moving average: avg_t = beta avg_(t-1) + (1 - beta) x_t, reported as avg_t / (1 - beta**t)."
    out, avg = [], 0.0
    for i, v in enumerate(raw, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return np.array(out)


def close_rel(got, want, rtol=1e-5, atol=0.0, what=""):
    """spec.checks.close with no absolute tolerance unless asked, for LR and momentum schedules: fastai computes
    schedule positions in float32 (1e-5 relative is exact up to that rounding), and LRs of 1e-9 still count."""
    __tracebackhide__ = True
    checks.close(got, want, what, rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster and avoids contention on a shared 2-core machine (env
    SPEC_TORCH_THREADS, set by tools/calibrate.py, overrides it: the statistical tests are checked at 1 and 2)."""
    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SPEC_TORCH_THREADS", "1")))
    yield
    torch.set_num_threads(n)


OFFSET = int(os.environ.get("SPEC_SEED_OFFSET", "0"))  # tools/calibrate.py reruns the statistical tests under 0..19


def seeds(n):
    """The n seeds of a statistical experiment: (0, ..., n-1) shifted by n x SPEC_SEED_OFFSET, so that each offset
    draws a disjoint set of seeds (model init, data shuffling, synthetic data) and offset 0 is the default run."""
    return tuple(range(OFFSET * n, OFFSET * n + n))


def record(record_property, effect, threshold):
    """Report a statistical test's observed effect and its pass threshold (JUnit XML properties, read by
    tools/calibrate.py). Effects are oriented so that the test passes when effect > threshold."""
    record_property("effect", float(effect))
    record_property("threshold", float(threshold))


def seed_all(s):
    "Seed Python, numpy and torch (fastai's RandomSplitter reseeds torch: seed after building DataLoaders)."
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def seeded(s, make, *a, **kw):
    """make(*a, **kw) (DataLoaders) with every RNG seeded before and after: fastai's DataLoader draws its shuffling
    seed from Python's `random` when it is made, so without the first a run depended on what ran before it in the
    process; fastai's RandomSplitter(seed) reseeds torch, hence the second."""
    seed_all(s)
    dls = make(*a, **kw)
    seed_all(s)
    return dls


def plain(t):
    "A plain torch.Tensor (fastai returns TensorBase/TensorCategory subclasses)."
    return torch.as_tensor(t).as_subclass(torch.Tensor)


class EpochStarts:
    "A callback keeping `fn(learn)` at the start of each epoch (before_train; no after_batch): `states[epoch]`."

    def __init__(self, fn):
        self.fn, self.states = fn, {}

    def before_train(self, learn):
        self.states[learn.epoch] = self.fn(learn)


def points(data, max_bs=16):
    """Drawn (preds, targets) of image regression: (bs, 2) predicted points and (bs, 1, 2) target points (one point
    per image, as the book's BIWI DataBlock gives), coordinates in [-1, 1], float32."""
    from hypothesis import strategies as st

    bs = data.draw(st.integers(1, max_bs), label="bs")
    v = st.lists(st.floats(-1, 1, width=32), min_size=2 * bs, max_size=2 * bs)
    p = torch.tensor(data.draw(v, label="preds")).view(bs, 2)
    return p, torch.tensor(data.draw(v, label="targets")).view(bs, 1, 2)
