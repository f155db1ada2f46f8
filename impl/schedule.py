"""Schedules for the LR finder and 1cycle, and per-group learning rates (discriminative LRs).

Every schedule takes a position `p` in [0, 1] (a float, a numpy array or a torch tensor) and
returns the value there. `lrs_for` turns the lesson's `lr`, `slice(lo, hi)` or `slice(hi)` into
one learning rate per parameter group.
"""

import math
import numbers

import numpy as np
import torch


def _real(v, name):
    "`v` as a float, or a ValueError/TypeError naming `name`."
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


def _check_p(p):
    "`p` must lie in [0, 1] (every element, for numpy arrays and torch tensors)."
    if isinstance(p, (torch.Tensor, np.ndarray)):
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            raise ValueError(f"p must lie in [0, 1], got {p[bad].flatten()[0].item()!r}")
        return p
    p = _real(p, "p")
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    return p


def _cos(p):
    if isinstance(p, torch.Tensor):
        return torch.cos(p)
    if isinstance(p, np.ndarray):
        return np.cos(p)
    return math.cos(p)


def _lin(s, e, p):
    return s + p * (e - s)


def _cosine(s, e, p):
    return s + (1 + _cos(math.pi * (1 - p))) * (e - s) / 2


def sched_lin(s, e, p):
    "Linear from `s` (p=0) to `e` (p=1)."
    s, e = _real(s, "s"), _real(e, "e")
    return _lin(s, e, _check_p(p))


def sched_cos(s, e, p):
    "Half a cosine from `s` (p=0) to `e` (p=1): s + (1+cos(pi*(1-p)))*(e-s)/2."
    s, e = _real(s, "s"), _real(e, "e")
    return _cosine(s, e, _check_p(p))


def sched_exp(s, e, p):
    "Exponential from `s` to `e`: s*(e/s)**p, constant ratio per step (the LR finder's schedule, T:L109)."
    s, e = _real(s, "s"), _real(e, "e")
    if s <= 0:
        raise ValueError(f"s must be > 0 for an exponential schedule, got {s!r}")
    if e <= 0:
        raise ValueError(f"e must be > 0 for an exponential schedule, got {e!r}")
    return s * (e / s) ** _check_p(p)


def combined_cos(pct, start, middle, end):
    "p -> value: cosine `start`->`middle` over [0, pct], then `middle`->`end` over [pct, 1] (1cycle, T:L430)."
    pct = _real(pct, "pct")
    if not 0 < pct < 1:
        raise ValueError(f"pct must lie strictly between 0 and 1, got {pct!r}")
    start, middle, end = _real(start, "start"), _real(middle, "middle"), _real(end, "end")

    def f(p):
        p = _check_p(p)
        if isinstance(p, float):
            return _cosine(start, middle, p / pct) if p < pct else _cosine(middle, end, (p - pct) / (1 - pct))
        up, down = _cosine(start, middle, p / pct), _cosine(middle, end, (p - pct) / (1 - pct))
        return torch.where(p < pct, up, down) if isinstance(p, torch.Tensor) else np.where(p < pct, up, down)

    return f


def even_mults(a, b, n):
    "`n` values from `a` to `b`, geometrically spaced (equal steps on a log scale, T:L406); n == 1 -> [b]."
    a, b = _real(a, "a"), _real(b, "b")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be > 0, got a={a!r}, b={b!r}")
    if n == 1:
        return [b]
    step = (b / a) ** (1 / (n - 1))
    return [a * step**i for i in range(n)]


def lrs_for(lr, n):
    """One LR per parameter group (T:L406): a number for all, slice(a, b) -> even_mults(a, b, n),
    slice(b) -> [b/10]*(n-1) + [b], or a list/tuple of exactly n values."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"n (the number of parameter groups) must be >= 1, got {n!r}")
    if isinstance(lr, slice):
        if lr.step is not None:
            raise ValueError(f"lr slice must not have a step, got {lr!r}")
        if lr.stop is None:
            raise ValueError(f"lr slice needs a stop (the last group's LR), got {lr!r}")
        hi = _real(lr.stop, "lr.stop")
        if lr.start is None:
            return [hi / 10] * (n - 1) + [hi]
        return even_mults(_real(lr.start, "lr.start"), hi, n)
    if isinstance(lr, (list, tuple)):
        if len(lr) != n:
            raise ValueError(f"lr has {len(lr)} values but there are {n} parameter groups")
        return [_nonneg(v, f"lr[{i}]") for i, v in enumerate(lr)]
    return [_nonneg(lr, "lr")] * n


def _nonneg(v, name):
    v = _real(v, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v!r}")
    return v
