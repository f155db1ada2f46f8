"""Schedules for the LR finder and 1cycle, and per-group learning rates (discriminative LRs).

Every schedule takes a position `pos` in [0, 1] (a float; a numpy array or a torch tensor too, except in
combine_scheds) and returns the value there; Sched*(start, end) fix the ends and leave a function of pos.
`lrs_for` turns the lesson's `lr`, `slice(lo, hi)` or `slice(hi)` into one learning rate per parameter group.
"""

import math
import numbers
from functools import partial

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


def _check_pos(pos):
    "`pos` must lie in [0, 1] (every element, for numpy arrays and torch tensors)."
    if isinstance(pos, (torch.Tensor, np.ndarray)):
        bad = ~((pos >= 0) & (pos <= 1))
        if bad.any():
            raise ValueError(f"pos must lie in [0, 1], got {pos[bad].flatten()[0].item()!r}")
        return pos
    pos = _real(pos, "pos")
    if not 0 <= pos <= 1:
        raise ValueError(f"pos must lie in [0, 1], got {pos!r}")
    return pos


def _cos(p):
    if isinstance(p, torch.Tensor):
        return torch.cos(p)
    if isinstance(p, np.ndarray):
        return np.cos(p)
    return math.cos(p)


def _cosine(s, e, p):
    return s + (1 + _cos(math.pi * (1 - p))) * (e - s) / 2


def sched_lin(start, end, pos):
    "Linear from `start` (pos=0) to `end` (pos=1)."
    start, end = _real(start, "start"), _real(end, "end")
    return start + _check_pos(pos) * (end - start)


def sched_cos(start, end, pos):
    "Half a cosine from `start` (pos=0) to `end` (pos=1): start + (1+cos(pi*(1-pos)))*(end-start)/2."
    start, end = _real(start, "start"), _real(end, "end")
    return _cosine(start, end, _check_pos(pos))


def sched_no(start, end, pos):
    "Constant: `start` at every pos (`end` is ignored, as in fastai)."
    _real(end, "end"), _check_pos(pos)
    return _real(start, "start")


def sched_exp(start, end, pos):
    "Exponential from `start` to `end`: start*(end/start)**pos, constant ratio per step (the LR finder's, T:L109)."
    start, end = _real(start, "start"), _real(end, "end")
    if start <= 0:
        raise ValueError(f"start must be > 0 for an exponential schedule, got {start!r}")
    if end <= 0:
        raise ValueError(f"end must be > 0 for an exponential schedule, got {end!r}")
    return start * (end / start) ** _check_pos(pos)


def _sched(f, start, end):
    f(start, end, 0.0)  # check the arguments now, not at the first batch
    return partial(f, start, end)


def SchedLin(start, end):
    "pos -> sched_lin(start, end, pos)."
    return _sched(sched_lin, start, end)


def SchedCos(start, end):
    "pos -> sched_cos(start, end, pos)."
    return _sched(sched_cos, start, end)


def SchedNo(start, end):
    "pos -> start."
    return _sched(sched_no, start, end)


def SchedExp(start, end):
    "pos -> sched_exp(start, end, pos)."
    return _sched(sched_exp, start, end)


def _poly(start, end, power, pos):
    return start + (end - start) * _check_pos(pos) ** power


def SchedPoly(start, end, power):
    "pos -> start + (end-start) * pos**power (power > 0; 1 is linear)."
    start, end, power = _real(start, "start"), _real(end, "end"), _real(power, "power")
    if power <= 0:
        raise ValueError(f"power must be > 0, got {power!r}")
    return partial(_poly, start, end, power)


def combine_scheds(pcts, scheds):
    """One schedule from phases: phase i takes a fraction pcts[i] of [0, 1] and runs scheds[i] from its pos 0 to 1.
    pcts are >= 0 and add up to 1; at a boundary the later phase (of positive length) applies; pos 1 ends the last.
    The result takes one pos at a time (a number, or a one-element tensor or array, as fastai's)."""
    pcts, scheds = list(pcts), list(scheds)
    if not pcts or len(pcts) != len(scheds):
        raise ValueError(f"combine_scheds needs one pct per schedule, got {len(pcts)} pcts and {len(scheds)} schedules")
    pcts = [_real(p, f"pcts[{i}]") for i, p in enumerate(pcts)]
    if min(pcts) < 0 or not math.isclose(sum(pcts), 1, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"pcts must be >= 0 and add up to 1, got {pcts}")
    if not all(callable(f) for f in scheds):
        raise TypeError(f"scheds must be functions of pos, got {scheds!r}")
    ends = np.cumsum([0.0] + pcts)
    ends[-1] = 1.0
    live = [i for i, p in enumerate(pcts) if p > 0]  # phases of positive length

    def f(pos):
        pos = _check_pos(pos)
        if isinstance(pos, (torch.Tensor, np.ndarray)):
            if pos.size != 1 if isinstance(pos, np.ndarray) else pos.numel() != 1:
                raise TypeError(f"combine_scheds' schedule takes one pos at a time, got shape {tuple(pos.shape)}")
            pos = float(pos.item())
        i = max([k for k in live if ends[k] <= pos], default=live[0])
        return scheds[i](min((pos - ends[i]) / (ends[i + 1] - ends[i]), 1.0))

    return f


def combined_cos(pct, start, middle, end):
    "pos -> value: cosine `start`->`middle` over [0, pct], then `middle`->`end` over [pct, 1] (1cycle, T:L430)."
    pct = _real(pct, "pct")
    if not 0 < pct < 1:
        raise ValueError(f"pct must lie strictly between 0 and 1, got {pct!r}")
    start, middle, end = _real(start, "start"), _real(middle, "middle"), _real(end, "end")

    def f(pos):
        p = _check_pos(pos)
        if isinstance(p, float):
            return _cosine(start, middle, p / pct) if p < pct else _cosine(middle, end, (p - pct) / (1 - pct))
        up, down = _cosine(start, middle, p / pct), _cosine(middle, end, (p - pct) / (1 - pct))
        return torch.where(p < pct, up, down) if isinstance(p, torch.Tensor) else np.where(p < pct, up, down)

    return f


def even_mults(start, stop, n):
    "`n` values from `start` to `stop`, geometrically spaced (equal steps on a log scale, T:L406); n == 1 -> stop."
    start, stop = _real(start, "start"), _real(stop, "stop")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    if start <= 0 or stop <= 0:
        raise ValueError(f"start and stop must be > 0, got start={start!r}, stop={stop!r}")
    if n == 1:
        return stop  # the value, not a list (fastcore)
    step = (stop / start) ** (1 / (n - 1))
    return [start * step**i for i in range(n)]


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
        return [hi] if n == 1 else even_mults(_real(lr.start, "lr.start"), hi, n)
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
