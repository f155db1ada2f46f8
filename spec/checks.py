"""Assertion helpers with one message format, `WHAT: got G, want W` (and where and by how much they differ).

The claim a test checks (id, quote, statement, transcript lines) is not repeated in the message: the claims plugin
adds it from the ledger to the failing test's report. Numbers, sequences, numpy arrays and tensors are compared as
arrays of the same shape (a scalar `want` stands for every element) by `close`; `equal` compares numpy arrays and
tensors that way, anything else with Python's `==`.

    equal(learn.opt.hypers[0]["lr"], 1e-3, "the default lr")
    close(loss, 0.6931, "BCE of logit 0 against 1", atol=1e-4)
"""
from __future__ import annotations

import sys

import numpy as np

__all__ = ["equal", "close", "show"]
SHOW = 12  # elements shown of a longer array


def equal(got, want, what: str) -> None:
    """got == want exactly. Arrays and tensors: the same shape (a scalar `want` stands for every element) and values,
    NaN equal to NaN, dtype not compared; anything else: Python's ==, with the first differing item of a sequence."""
    __tracebackhide__ = True  # pytest shows the test's line, not ours
    if _arraylike(got) or _arraylike(want):
        g, w = _pair(got, want, what)
        bad = ~((g == w) | (_isnan(g) & _isnan(w)))
        if bad.any():
            raise AssertionError(f"{what}: got {show(got)}, want {show(want)}{_where(g, w, bad)}")
    elif not got == want:
        raise AssertionError(f"{what}: got {show(got)}, want {show(want)}{_seqdiff(got, want)}")


def close(got, want, what: str, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    "|got - want| <= atol + rtol * |want| element by element (numpy's isclose rule; NaN is never close)."
    __tracebackhide__ = True  # pytest shows the test's line, not ours
    if rtol < 0 or atol < 0:
        raise ValueError(f"close: rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    g, w = _pair(got, want, what)
    g, w = g.astype(np.float64), w.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(g - w)
        bad = ~(d <= atol + rtol * np.abs(w)) & ~((g == w) & np.isinf(g))  # equal infinities are close
    if bad.any():
        k = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(d, nan=np.inf), -1.0)), bad.shape)
        worst = f"; |got - want| = {float(d[k]):.3g}" + (f" at {_index(k)}" if bad.ndim else "")
        raise AssertionError(f"{what}: got {show(got)}, want {show(want)} (rtol={rtol:g}, atol={atol:g}"
                             f"{worst}{_count(bad)})")


def show(x) -> str:
    "A short readable form: the values of a small array or tensor, shape, dtype and the first values of a big one."
    if _arraylike(x):
        a = _np(x)
        kind = f"{'tensor' if _tensor(x) else 'array'} {str(getattr(x, 'dtype', a.dtype)).removeprefix('torch.')}"
        if a.size <= SHOW:
            return f"{a.tolist()}" if a.ndim else f"{a.item()!r}"
        head = ", ".join(f"{v!r}" for v in a.reshape(-1)[:SHOW].tolist())
        return f"{kind} of shape {tuple(a.shape)} [{head}, ...]"
    r = repr(x)
    return r if len(r) <= 300 else r[:297] + "..."


# ---------------------------------------------------------------- helpers
def _arraylike(x) -> bool:
    "A numpy array or a torch tensor (numbers and sequences compare with Python's ==)."
    return isinstance(x, np.ndarray) or _tensor(x)


def _tensor(x) -> bool:
    torch = sys.modules.get("torch")  # a tensor means torch is imported: checks itself never imports it
    return torch is not None and isinstance(x, torch.Tensor)


def _seqdiff(got, want) -> str:
    if not (isinstance(got, (list, tuple)) and isinstance(want, (list, tuple))):
        return ""
    if len(got) != len(want):
        return f" (length {len(got)} != {len(want)})"
    i = next((i for i, (a, b) in enumerate(zip(got, want)) if not a == b), None)
    return "" if i is None else f" (first difference at [{i}]: {show(got[i])} != {show(want[i])})"


def _np(x) -> np.ndarray:
    if _tensor(x):
        torch = sys.modules["torch"]
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16 or str(x.dtype).startswith("torch.float8"):
            x = x.float()  # numpy has neither
        return x.numpy()
    return np.asarray(x)


def _pair(got, want, what) -> tuple[np.ndarray, np.ndarray]:
    __tracebackhide__ = True
    g, w = _np(got), _np(want)
    if w.ndim and g.shape != w.shape:
        raise AssertionError(f"{what}: got shape {tuple(g.shape)}, want shape {tuple(w.shape)}: "
                             f"got {show(got)}, want {show(want)}")
    return g, np.broadcast_to(w, g.shape)


def _isnan(a: np.ndarray) -> np.ndarray:
    return np.isnan(a) if a.dtype.kind in "fc" else np.zeros(a.shape, bool)


def _index(k: tuple) -> str:
    return f"[{', '.join(map(str, k))}]"


def _count(bad: np.ndarray) -> str:
    return f"; {int(bad.sum())} of {bad.size} elements differ" if bad.ndim else ""


def _where(g, w, bad) -> str:
    if not bad.ndim:
        return ""
    k = tuple(int(i) for i in np.argwhere(bad)[0])
    return f" (first difference at {_index(k)}: {g[k].item()!r} != {w[k].item()!r}{_count(bad)})"
