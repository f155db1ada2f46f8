"""The card's own ceilings, so the report can give achieved fractions of what this GPU does rather than only of its
datasheet: a large matrix product per dtype (bf16, fp16, tf32, strict fp32), TFLOP/s = 2 n^3 / time.

Group `peak`, param `dtype`. Random inputs (zeros run faster, METHOD.md); checked against float64 on a few rows.
"""

import pytest
import torch

from benches import _timing as T

SIZES = {
    "gpu": dict(n=8192, reps=10, rounds=3),
    "cpu": dict(n=512, reps=3, rounds=3),
    "smoke": dict(n=256, reps=1, rounds=1),
    "sim": dict(n=256, reps=1, rounds=1),
}
S = SIZES[T.PROFILE]
DTYPES = {
    "bf16": (torch.bfloat16, False, 2e-2),
    "fp16": (torch.float16, False, 2e-2),
    "tf32": (torch.float32, True, 5e-3),
    "fp32": (torch.float32, False, 1e-4),
}


def measure():
    dev, n = T.device(), S["n"]
    g = torch.Generator().manual_seed(0)
    a32, b32 = torch.randn(n, n, generator=g).to(dev), torch.randn(n, n, generator=g).to(dev)
    out = {}
    runs = {}
    for k, (dt, tf, tol) in DTYPES.items():
        a, b = a32.to(dt), b32.to(dt)
        with T.tf32(tf):
            c = a @ b
        ref = a[:4].double() @ b.double()
        err = ((c[:4].double() - ref).norm() / ref.norm()).item()
        assert err < tol, f"{k} matmul: relative error {err:.2e} > {tol:.0e} against float64"
        out[k] = dict(rel_err=err)

        def f(a=a, b=b, tf=tf):
            with T.tf32(tf):
                for _ in range(S["reps"]):
                    a @ b

        runs[k] = f
    times = T.interleave(runs, S["rounds"], 1, dev)
    for k in DTYPES:
        out[k]["times"] = times[k]
    return out


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.benchmark(group="peak")
def test_matmul_peak(benchmark, dtype):
    r = T.once("peak", measure)[dtype]
    med = T.stats(r["times"])["median"]
    T.record(
        benchmark,
        r["times"],
        n=S["n"],
        reps=S["reps"],
        tflops=2 * S["n"] ** 3 * S["reps"] / med / 1e12,
        rel_err=r["rel_err"],
        device=str(T.device()),
    )
