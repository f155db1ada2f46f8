"""The card's own ceilings, so the report can give achieved fractions of what this GPU does rather than only of its
datasheet: a large matrix product per dtype (bf16, fp16, tf32, strict fp32), TFLOP/s = 2 n^3 / time.

Group `peak`, param `dtype`. Random inputs (zeros run faster, METHOD.md); checked against float64 on a few rows.
"""

from functools import partial

import pytest
import torch

from benches import _timing as T

S = T.sized(gpu=dict(n=8192, reps=10, rounds=2), cpu=dict(n=512, reps=3, rounds=2), smoke=dict(n=256, reps=1, rounds=1))
DTYPES = {
    "bf16": (torch.bfloat16, False, 2e-2),
    "fp16": (torch.float16, False, 2e-2),
    "tf32": (torch.float32, True, 5e-3),
    "fp32": (torch.float32, False, 1e-4),
}


def matmuls(a, b, tf):
    with T.tf32(tf):
        for _ in range(S["reps"]):
            a @ b


def measure():
    "Each dtype's product checked against float64, then the four timed interleaved (T.Group)."
    dev, n = T.device(), S["n"]
    g = torch.Generator().manual_seed(0)
    a32, b32 = torch.randn(n, n, generator=g).to(dev), torch.randn(n, n, generator=g).to(dev)
    runs, err = {}, {}
    for k, (dt, tf, tol) in DTYPES.items():
        a, b = a32.to(dt), b32.to(dt)
        with T.tf32(tf):
            c = a @ b
        ref = a[:4].double() @ b.double()
        err[k] = ((c[:4].double() - ref).norm() / ref.norm()).item()
        assert err[k] < tol, f"{k} matmul: relative error {err[k]:.2e} > {tol:.0e} against float64"
        runs[k] = partial(matmuls, a, b, tf)
    group = T.Group(runs, S["rounds"], 1, dev)
    for k in DTYPES:
        group.info[k]["rel_err"] = err[k]
    return group


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.benchmark(group="peak")
def test_matmul_peak(benchmark, dtype):
    tflops = lambda i: 2 * S["n"] ** 3 * S["reps"] / i["median_s"] / 1e12
    T.record(benchmark, T.once("peak", measure), dtype, n=S["n"], reps=S["reps"], tflops=tflops)
