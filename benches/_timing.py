"""Timing for the benches: synchronised wall clock, warm-up excluded, the arms of a comparison interleaved.

A ratio (fp16 / fp32, impl / plain) is measured side by side: a `Group` runs every arm of one comparison in one
process, `warmup` untimed rounds and then `rounds` rounds that each run every arm once, the order rotated each
round, so that load drift and clock changes hit all arms alike. Each arm's test then runs one more epoch of its arm
through pytest-benchmark's public API (`record`: `benchmark.pedantic`, one round, timed by pytest-benchmark's own
timer), so its table, storage and --benchmark-compare hold a real epoch, and writes the arm's per-epoch times (the
interleaved rounds, then that epoch) to `extra_info.epoch_s`: the report's medians and ratios come from there.
(Not a replay of our times through pytest-benchmark's timer: that needs its private `_timer`.) A size's `rounds`
are the interleaved ones; with the test's epoch an arm has rounds + 1 times, as many as before that epoch existed.
`PROFILE` picks the sizes: "gpu" (the full matrix, on CUDA), "cpu" (tiny, a few minutes on two cores),
"smoke" (`--benchmark-disable`: correctness only, nothing timed by pytest-benchmark), "sim" (the gpu matrix at
smoke sizes, to prove tools/gpu_bench.sh on a CPU). Set by benches/conftest.py; env BENCH_SIZE overrides.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "cpu"
PROFILES = ("gpu", "cpu", "smoke", "sim")


def sized(gpu: dict, cpu: dict, smoke: dict, sim: dict | None = None) -> dict:
    "A bench's sizes for the current PROFILE, given one dict per profile (sim: the smoke sizes unless given)."
    return {"gpu": gpu, "cpu": cpu, "smoke": smoke, "sim": smoke if sim is None else sim}[PROFILE]


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


class Group:
    """The arms of one comparison (name -> a callable running one epoch), timed interleaved: `warmup` untimed
    rounds, then `rounds` rounds each running every arm once, round r in the order rotated by r (no arm always goes
    first). `ctx()` wraps every epoch (cudnn autotuning, say). `info`: arm -> what the measurement adds to the
    arm's extra_info (a callable value is given the arm's extra_info when recorded). The arms stay alive (models
    and all) for the one more epoch their tests time (`record`); `once` lets go of them when the next group starts."""

    def __init__(self, runs: dict, rounds: int, warmup: int = 1, dev=None, ctx=nullcontext):
        self.runs, self.dev, self.ctx = runs, dev, ctx
        self.times, self.warm = {k: [] for k in runs}, {k: [] for k in runs}  # warm: the warm-up epochs' seconds
        self.info = {k: {} for k in runs}
        names = list(runs)
        for r in range(warmup + rounds):
            for k in names[r % len(names) :] + names[: r % len(names)]:
                t = self.epoch(k)
                (self.times if r >= warmup else self.warm)[k].append(t)

    def epoch(self, k) -> float:
        "One epoch of arm `k`; its wall seconds (device synchronised)."
        with self.ctx():
            return timed(self.runs[k], self.dev)

    def median(self, k) -> float:
        return statistics.median(self.times[k])


def record(benchmark, group: Group, arm, images=None, **extra):
    """Arm `arm`'s benchmark: one more epoch of it through `benchmark.pedantic` (one round, after the queued device
    work is drained; under --benchmark-disable it runs untimed), its time appended to the arm's interleaved ones,
    then extra_info: `epoch_s` (all the arm's per-epoch times), `median_s`, `warmup_s` (the untimed warm-up epochs:
    autotuning, compilation), device, profile, `images_per_epoch` and `img_s` when `images` is given, then the
    group's info on the arm and `extra` (a callable value is given the extra_info so far: figures from the median).
    Also one JSON line appended to $BENCH_JSONL (survives a kill)."""
    one = []
    try:
        benchmark.pedantic(lambda: one.append(group.epoch(arm)), setup=lambda: sync(group.dev), rounds=1, iterations=1)
    except BaseException:  # SIGINT mid-epoch (a stage's timeout): pytest-benchmark marks only an Exception so, and
        benchmark.has_error = True  # its JSON writer then raised on the empty round: now left out, the JSON written
        raise
    ts = group.times[arm] = group.times[arm] + one
    med = statistics.median(ts)
    info = {"epoch_s": [round(t, 6) for t in ts], "median_s": med, "warmup_s": [round(t, 6) for t in group.warm[arm]],
            "device": str(device()), "profile": PROFILE}
    if images:
        info |= {"images_per_epoch": images, "img_s": images / med}
    for k, v in {**group.info[arm], **extra}.items():
        info[k] = v(info) if callable(v) else v
    benchmark.extra_info.update(info)
    if p := os.environ.get("BENCH_JSONL"):
        row = {"name": benchmark.fullname, "group": benchmark.group, "params": benchmark.params, **info}
        with open(p, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
    return info


def time_left() -> float:
    "Seconds until $BENCH_DEADLINE (a Unix time tools/gpu_check.sh sets for its bench stage), else infinity."
    d = os.environ.get("BENCH_DEADLINE")
    return float(d) - time.time() if d else float("inf")


_held: dict = {}


def once(key, fn):
    """fn() computed once per key in this process (a group, shared by its tests; an error too, re-raised in each).
    Only the latest key is held: the one before (its models, on the device) is let go of first."""
    if key not in _held:
        _held.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        try:
            _held[key] = (True, fn())
        except Exception as e:  # noqa: BLE001 - re-raised in every test of the group
            _held[key] = (False, e)
    ok, v = _held[key]
    if not ok:
        raise v
    return v


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
