"""Schedules of a 512x512x512 float32 matmul, side by side.

    python benchmarks/schedule_matmul.py

unscheduled: the legalized program as lower-tir writes it (i, j, k;
reduction innermost). auto: the baseline pipeline (auto-schedule picks i
parallel, k, j vectorized; the default pipeline would call BLAS instead). hand: `Schedule` used by hand to the same
effect. All against numpy (BLAS) in one run; medians.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from relax_xdsl.passes.legalize import legalize_module

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.schedule import Schedule


def module(schedule: bool) -> object:
    with rx.FunctionBuilder("main") as fb:
        a, b = fb.param("a", ["n", "k"], "float32"), fb.param("b", ["k", "m"], "float32")
        fb.ret(op.matmul(a, b))
    m = legalize_module(fb.module)
    if schedule:
        sch = Schedule(m, "matmul")
        i, j, k = sch.loops()
        sch.reorder(j, k)
        sch.vectorize(j)
        sch.parallel(i)
    return m


def median(fn: object, repeat: int = 15) -> float:
    fn()  # type: ignore[operator]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    n = 512
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    flops = 2 * n**3
    t_np = median(lambda: a @ b)
    print(f"numpy       {t_np * 1e3:8.2f} ms  {flops / t_np / 1e9:7.1f} GFLOP/s")
    unscheduled = "legalize,lower-tir,lower-graph,canonicalize,cse"
    for name, sched, pipeline in (("unscheduled", False, unscheduled), ("auto", False, "baseline"),
                                  ("hand", True, "baseline")):
        exe = rx.compile(module(sched), target="c", pipeline=pipeline)
        np.testing.assert_allclose(exe.main(a, b), a @ b, rtol=1e-3, atol=1e-3)
        t = median(lambda: exe.main(a, b))  # noqa: B023
        print(f"{name:11s} {t * 1e3:8.2f} ms  {flops / t / 1e9:7.1f} GFLOP/s  ({t / t_np:.1f}x numpy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
