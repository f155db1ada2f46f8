"""Timing for the benches: synchronised wall clock, warm-up excluded, variants A/B interleaved in one process.

A bench measures all variants of one comparison together (`interleave`: every round runs each variant once,
the order rotated each round, after untimed warm-up rounds), then hands each variant's per-epoch times to
pytest-benchmark (`record`) so that storage, `--benchmark-compare` and the report see ordinary benchmarks.
`PROFILE` picks the sizes: "gpu" (the full matrix, on CUDA), "cpu" (tiny, a few minutes on two cores),
"smoke" (`--benchmark-disable`: one untimed round, correctness only), "sim" (the gpu matrix at smoke sizes,
to prove tools/gpu_bench.sh on a CPU). Set by benches/conftest.py; env BENCH_SIZE overrides.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "cpu"
PROFILES = ("gpu", "cpu", "smoke", "sim")


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(dev=None):
    "Wait for the device's queued work (a no-op on the CPU)."
    dev = torch.device(dev) if dev is not None else device()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev=None) -> float:
    "Wall seconds of fn(): the device is synchronised before starting the clock and before reading it."
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def interleave(runs: dict, rounds: int, warmup: int = 1, dev=None) -> dict[str, list[float]]:
    """Time each callable of `runs` (name -> fn doing one epoch) `rounds` times, A/B interleaved: round r runs
    them in the order rotated by r, so no variant always goes first. `warmup` untimed rounds come before."""
    names = list(runs)
    out = {k: [] for k in names}
    for r in range(warmup + rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            t = timed(runs[k], dev)
            if r >= warmup:
                out[k].append(t)
    return out


@contextmanager
def tf32(on: bool):
    """TF32 for float32 matmuls and convolutions on, or off (strict fp32). The legacy flags on purpose: torch >= 2.9's
    fp32_precision API raises when the two are mixed, and the claims plugin and fastai read the legacy ones."""
    m, c = torch.backends.cuda.matmul, torch.backends.cudnn
    old = m.allow_tf32, c.allow_tf32
    m.allow_tf32 = c.allow_tf32 = on
    try:
        yield
    finally:
        m.allow_tf32, c.allow_tf32 = old


def tf32_flags() -> dict:
    return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}


@contextmanager
def cudnn_benchmark(on=True):
    "cudnn autotuning for fixed shapes (the speed configurations); restored afterwards."
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def stats(ts) -> dict:
    s = sorted(ts)
    n = len(s)
    return {"median": (s[(n - 1) // 2] + s[n // 2]) / 2, "min": s[0], "max": s[-1], "n": n} if n else {}


def record(benchmark, times, **extra):
    """Report pre-measured per-epoch `times` (seconds) to pytest-benchmark as its rounds, with `extra` and the
    times in extra_info (also appended as one JSON line to $BENCH_JSONL, which survives a killed run).
    Under --benchmark-disable nothing is timed; the bench has already run and asserted correctness."""
    extra = {**extra, "epoch_s": [round(t, 6) for t in times], "profile": PROFILE}
    benchmark.extra_info.update(extra)
    if p := os.environ.get("BENCH_JSONL"):
        row = {"name": benchmark.fullname, "group": benchmark.group, "params": benchmark.params, **extra}
        with open(p, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
    if benchmark.disabled or not times:
        return benchmark.pedantic(lambda: None)
    it, clock = iter(times), [0.0]

    def one_epoch():
        clock[0] += next(it)  # the clock pytest-benchmark reads advances by one measured epoch

    real = benchmark._timer
    benchmark._timer = lambda: clock[0]
    try:
        benchmark.pedantic(one_epoch, rounds=len(times), iterations=1, warmup_rounds=0)
    finally:
        benchmark._timer = real


_cache: dict = {}


def once(key, fn):
    "fn() computed once per key in this process (a group's interleaved measurement, shared by its tests); errors too."
    if key not in _cache:
        try:
            _cache[key] = (True, fn())
        except Exception as e:  # noqa: BLE001 - re-raised in every test of the group
            _cache[key] = (False, e)
    ok, v = _cache[key]
    if not ok:
        raise v
    return v
