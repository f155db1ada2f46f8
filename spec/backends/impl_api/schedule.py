"""Schedules on impl: sched_lin/cos/no/exp, Sched*, SchedPoly, combine_scheds, combined_cos, even_mults, lrs_for and
the LR finder's LRs."""

from impl.schedule import (  # noqa: F401
    SchedCos,
    SchedExp,
    SchedLin,
    SchedNo,
    SchedPoly,
    combine_scheds,
    combined_cos,
    even_mults,
    lrs_for,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
)


def lr_finder_schedule(start_lr=1e-7, end_lr=10, num_it=100):
    "The LR of each of the finder's `num_it` batches: batch i at pos = i/num_it of the exponential schedule."
    return [sched_exp(start_lr, end_lr, i / num_it) for i in range(num_it)]
