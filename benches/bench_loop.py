"""Loop overhead: impl's Learner vs a hand-written PyTorch loop vs fastai's Learner on the same model, data tensors,
optimizer (torch Adam, foreach) and constant LR, interleaved in one process (IMPL-9: impl costs at most 5% more per
epoch; IMPL-10: impl's resnet50 fp16 channels_last reaches 2800 img/s on an H100).

Group `loop-overhead`, params `task`, `bs`, `loop`:
- task `collab`: DotProductBias(50 factors) on synthetic ratings of MovieLens-100k's shape (943 users, 1682
  items; 100k ratings on a GPU), bs 64, train then validation each epoch: per-batch overhead dominates.
- task `resnet18` (GPU matrix): compute-only batches on the device, fp32 (TF32 on), bs 64, training only.
- task `resnet50_fp16_cl` (GPU matrix): compute-only, fp16 autocast + channels_last, bs 64/128/256; loop
  `plain_item` is the plain loop plus one `loss.item()` per batch (the host sync impl makes), and `impl_lean`
  impl's Learner with a bare train_batch (no fault guard: benches._loops): diagnostics that tell those costs apart.
Group `loop-compiled` (GPU matrix; params `task`, `bs`, `loop`): the same tasks (resnet50 fp16 channels_last at
bs 64, collab) with the forward pass torch.compile'd in both loops, `impl_compiled` vs `plain_compiled`
(benches._loops; mode $BENCH_COMPILE_MODE). One warm-up epoch compiles: extra_info `compile_s` (the first epoch
less the median epoch) apart from the per-epoch times (the arm compiling second reuses the first's cached kernels,
inductor's FX graph cache: its compile_s is mostly tracing); each test skips itself, saying so, when fewer than its
size's `need_s` seconds are left before $BENCH_DEADLINE (tools/gpu_check.sh's bench stage); BENCH_COMPILE=0 skips them.
Correctness: every loop starts from the same weights and must lower the loss; the loops must end at the same
validation loss (collab: within 5%).
"""

import math
import os

import numpy as np
import pytest
import torch

from benches import _loops as L
from benches import _timing as T
from benches.bench_vision import compute_only

SMOKE = dict(collab=dict(ratings=2_000, rounds=1, warmup=0), bs=64)
S = T.sized(
    gpu=dict(
        collab=dict(ratings=100_000, rounds=4, warmup=1),
        bs=64,
        resnet18=dict(bs=[64], px=224, images=1024, rounds=4, warmup=1),
        resnet50_fp16_cl=dict(bs=[64, 128, 256], px=224, images=2048, rounds=4, warmup=1),
        compiled=dict(resnet50_fp16_cl=dict(bs=[64], px=224, images=2048, rounds=4, warmup=1, need_s=100),
                      collab=dict(ratings=100_000, rounds=2, warmup=1, need_s=60)),
    ),
    cpu=dict(collab=dict(ratings=5_000, rounds=4, warmup=1), bs=64),
    smoke=SMOKE,
    sim=dict(
        SMOKE,
        resnet18=dict(bs=[4], px=32, images=8, rounds=1, warmup=0),
        resnet50_fp16_cl=dict(bs=[2, 4], px=32, images=8, rounds=1, warmup=0),
        compiled=dict(resnet50_fp16_cl=dict(bs=[2], px=32, images=4, rounds=1, warmup=1, need_s=100),
                      collab=dict(ratings=2_000, rounds=1, warmup=1, need_s=60)),
    ),
)
LOOPS = ["plain", "impl", "fastai", "impl_lean"]
N_USERS, N_ITEMS, K_TRUE, N_FACTORS, LR_COLLAB = 943, 1682, 4, 50, 5e-3


def ratings(n, seed=0):
    "Ratings 1..5 from known user/item biases and rank-4 factors plus noise (MovieLens-like: mean about 3.5)."
    r = np.random.default_rng(seed)
    u, i = r.integers(N_USERS, size=n), r.integers(N_ITEMS, size=n)
    ub, ib = r.normal(0, 0.4, N_USERS), r.normal(0, 0.5, N_ITEMS)
    uf, itf = r.normal(0, 0.55, (N_USERS, K_TRUE)), r.normal(0, 0.55, (N_ITEMS, K_TRUE))
    y = np.clip(np.rint(3.5 + ub[u] + ib[i] + (uf[u] * itf[i]).sum(1) + r.normal(0, 0.3, n)), 1, 5)
    return torch.from_numpy(np.stack([u, i], 1)), torch.from_numpy(y.astype(np.float32))[:, None]


def collab(loops=LOOPS, C=None):
    """Interleaved collab epochs of `loops` (T.Group; sizes `C`, default S["collab"]), checked: each lowers the loss,
    all end where the first does."""
    from impl.collab import DotProductBias

    C, dev = C or S["collab"], T.device()
    x, y = (t.to(dev) for t in ratings(C["ratings"]))
    n_valid = len(x) // 5
    valid = L.TensorBatches(x[:n_valid], y[:n_valid], 2 * S["bs"], shuffle=False)
    torch.manual_seed(0)
    init = DotProductBias(N_USERS, N_ITEMS, N_FACTORS).state_dict()
    runs, models, base = {}, {}, loops[0]
    for k in loops:
        models[k] = DotProductBias(N_USERS, N_ITEMS, N_FACTORS).to(dev)
        models[k].load_state_dict(init)
        data = L.Data(L.TensorBatches(x[n_valid:], y[n_valid:], S["bs"], seed=1), valid, dev)
        runs[k] = L.LOOPS[k](data, models[k], L.mse, LR_COLLAB, "fp32")
    first = L.check_loss(models[base], valid, L.mse)
    group = T.Group(runs, C["rounds"], C["warmup"], dev)
    last = {k: L.check_loss(models[k], valid, L.mse) for k in loops}
    for k in loops:
        assert math.isfinite(last[k]) and last[k] < first, (
            f"IMPL-9: collab {k}: valid MSE did not fall ({first:.4f} -> {last[k]:.4f})"
        )
        assert abs(last[k] - last[base]) <= 0.05 * last[base], (
            f"IMPL-9: collab {k} ends at valid MSE {last[k]:.4f}, {base} at {last[base]:.4f}: not the same training"
        )
    n_train = len(x) - n_valid
    for k in loops:
        group.info[k] = dict(
            n_train=n_train, batches=math.ceil(n_train / S["bs"]), valid_first=first, valid_last=last[k]
        )
    return group


def vs_plain(group, base="plain"):
    "extra_info `ratio_to_plain`: the arm's median per-epoch time over the plain loop's (`base`)."
    return lambda i: i["median_s"] / group.median(base)


@pytest.mark.claim("IMPL-9")
@pytest.mark.parametrize("task,bs,loop", [("collab", S["bs"], lp) for lp in LOOPS])
@pytest.mark.benchmark(group="loop-overhead")
def test_loop_collab(benchmark, task, bs, loop):
    group = T.once("collab-loops", collab)
    T.record(benchmark, group, loop, precision="fp32", ratio_to_plain=vs_plain(group))


VISION = [
    ("resnet18", "fp32", ["plain", "impl", "fastai"]),
    ("resnet50_fp16_cl", "fp16_cl", ["plain", "impl", "plain_item", "impl_lean"]),
]
VISION_PARAMS = [(t, p, lp, bs) for t, p, loops in VISION if t in S for bs in S[t]["bs"] for lp in loops] or [
    pytest.param(None, None, None, None, marks=pytest.mark.skip(reason="GPU matrix only (BENCH_SIZE=gpu or sim)"))
]


@pytest.mark.claim("IMPL-9", "IMPL-10")
@pytest.mark.parametrize("task,precision,loop,bs", VISION_PARAMS)
@pytest.mark.benchmark(group="loop-overhead")
def test_loop_vision(benchmark, task, precision, loop, bs):
    C, loops = S[task], next(lps for t, _, lps in VISION if t == task)
    n = max(1, C["images"] // bs)
    variants = {lp: (precision, L.LOOPS[lp]) for lp in loops}
    group = T.once(("loops", task, bs), lambda: compute_only(task.split("_")[0], variants, bs, n, C))
    T.record(benchmark, group, loop, bs * n, precision=precision, px=C["px"], ratio_to_plain=vs_plain(group))


# ---------------------------------------------------------------- compiled: torch.compile in both loops
COMPILED = ["plain_compiled", "impl_compiled"]
CS = S.get("compiled", {})
COMPILED_PARAMS = [(t, bs, lp) for t in CS for bs in CS[t].get("bs", [S["bs"]]) for lp in COMPILED] or [
    pytest.param(None, None, None, marks=pytest.mark.skip(reason="GPU matrix only (BENCH_SIZE=gpu or sim): "
                                                               "torch.compile takes minutes on a CPU"))
]


def compiled_group(task, bs):
    "The compiled pair's group: the model compiles in the warm-up epoch (the first epoch's time, compile included)."
    C = CS[task]
    if task == "collab":
        return collab(COMPILED, C)
    variants = {lp: ("fp16_cl", L.LOOPS[lp]) for lp in COMPILED}
    return compute_only(task.split("_")[0], variants, bs, max(1, C["images"] // bs), C)


@pytest.mark.claim("IMPL-9", "IMPL-41")
@pytest.mark.parametrize("task,bs,loop", COMPILED_PARAMS)
@pytest.mark.benchmark(group="loop-compiled")
def test_loop_compiled(benchmark, task, bs, loop):
    C, left = CS[task], T.time_left()
    if os.environ.get("BENCH_COMPILE", "1") == "0":
        pytest.skip("BENCH_COMPILE=0")
    if ("compiled", task, bs) not in T._held and left < C["need_s"]:
        pytest.skip(f"{left:.0f} s left before BENCH_DEADLINE, {task} compiled needs about {C['need_s']} s")
    group = T.once(("compiled", task, bs), lambda: compiled_group(task, bs))
    images = None if task == "collab" else bs * max(1, C["images"] // bs)
    T.record(benchmark, group, loop, images, precision="fp32" if task == "collab" else "fp16_cl",
             compile_mode=L.compile_mode(), ratio_to_plain=vs_plain(group, "plain_compiled"),
             compile_s=lambda i: i["warmup_s"][0] - i["median_s"] if i["warmup_s"] else None)
