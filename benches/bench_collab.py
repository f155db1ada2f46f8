"""The collaborative-filtering epoch end to end, impl vs fastai: a ratings DataFrame of MovieLens-100k's shape
through each library's own collab DataLoaders and collab_learner(n_factors=50, y_range=(0, 5.5)), one
fit_one_cycle(1, 5e-3, wd=0.1) per epoch as in the book (T:L2140), the two interleaved.

Group `collab-epoch`, param `backend` (impl / fastai). Correctness: validation MSE finite and lower at the end.
"""

import math

import pandas as pd
import pytest
import torch

from benches import _timing as T
from benches.bench_loop import ratings

S = T.sized(
    gpu=dict(ratings=100_000, rounds=2, warmup=1),
    cpu=dict(ratings=5_000, rounds=1, warmup=1),
    smoke=dict(ratings=2_000, rounds=1, warmup=0),
)
BACKENDS = ["impl", "fastai"]
KW = dict(n_factors=50, y_range=(0, 5.5))


def frame(n):
    x, y = ratings(n)
    return pd.DataFrame(
        {
            "user": x[:, 0].numpy() + 1,
            "title": [f"movie {i}" for i in x[:, 1].tolist()],
            "rating": y[:, 0].numpy().astype(int),
        }
    )


def learners(df, dev):
    from fastai.collab import CollabDataLoaders
    from fastai.collab import collab_learner as fa_learner

    from impl.collab import collab_learner
    from impl.datasets import collab_dls

    torch.manual_seed(0)
    il = collab_learner(collab_dls(df, bs=64, valid_pct=0.2, seed=42, item_name="title", device=dev), **KW)
    fdls = CollabDataLoaders.from_df(
        df, user_name="user", item_name="title", rating_name="rating", bs=64, valid_pct=0.2, seed=42, device=dev
    )
    fl = fa_learner(fdls, **KW)
    fl.remove_cb(fl.progress) if hasattr(fl, "progress") else None
    fl.logger = lambda *a, **k: None
    return {"impl": il, "fastai": fl}


def measure():
    dev = T.device()
    ls = learners(frame(S["ratings"]), dev)
    vals = {k: [] for k in BACKENDS}

    def epoch(k):
        def f():
            ls[k].fit_one_cycle(1, 5e-3, wd=0.1)
            vals[k].append(float(ls[k].recorder.values[-1][1]))

        return f

    first = {"impl": ls["impl"].validate()[0], "fastai": float(ls["fastai"].validate()[0])}
    group = T.Group({k: epoch(k) for k in BACKENDS}, S["rounds"], S["warmup"], dev)
    for k in BACKENDS:
        assert all(map(math.isfinite, vals[k])) and vals[k][-1] < first[k], (
            f"{k}: validation MSE did not fall: {first[k]:.4f} -> {vals[k]}"
        )
        group.info[k] = dict(valid_first=first[k], valid=vals[k])  # the list grows with the test's epoch
    return group


@pytest.mark.claim("CF-20", "IMPL-9")
@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.benchmark(group="collab-epoch")
def test_collab_epoch(benchmark, backend_name):
    T.record(benchmark, T.once("collab-epoch", measure), backend_name, ratings=S["ratings"], bs=64)
