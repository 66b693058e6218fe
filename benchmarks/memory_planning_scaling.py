"""Compile time of lower-graph's memory planning as the number of buffers grows.

    python benchmarks/memory_planning_scaling.py [steps ...]

The chain x[n0]; for each step k: y = concat(prev, x_k[n_k]); prev = exp(y),
every x_k with a symbol of its own, so every intermediate's size is a distinct
symbolic sum and the planner compares sums of many symbols. Prints the time
of `rx.lower(module, "baseline")` up to lower-graph and of the lower-graph
pass alone at each length (wall clock, and the process's CPU time, which
other load on the machine does not inflate).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import relax_xdsl as rx
from relax_xdsl import op


def concat_exp_chain(steps: int, unary: Callable[[rx.Var], rx.Var] = op.exp) -> rx.FunctionBuilder:
    """The chain above, `steps` concat + exp (or `unary`) steps, float32 vectors."""
    with rx.FunctionBuilder("main") as fb:
        prev = fb.param("x0", ["n0"], "float32")
        for k in range(1, steps + 1):
            part = fb.param(f"x{k}", [f"n{k}"], "float32")
            prev = unary(op.concat([prev, part], axis=0))
        fb.ret(prev)
    return fb


def lower_graph_seconds(steps: int) -> tuple[float, float, float]:
    """(the whole lowering, lower-graph alone, its CPU time) in seconds."""
    from relax_xdsl.passes.pipelines import PIPELINES

    module = concat_exp_chain(steps).module
    before, _, _ = PIPELINES["baseline"].partition("lower-graph")
    t0 = time.perf_counter()
    partial = rx.lower(module.clone(), before.rstrip(","))
    t1, c1 = time.perf_counter(), time.process_time()
    rx.lower(partial, "lower-graph")
    t2, c2 = time.perf_counter(), time.process_time()
    return t2 - t0, t2 - t1, c2 - c1


def main(argv: list[str]) -> int:
    for steps in [int(a) for a in argv] or [10, 20, 40, 80]:
        total, planning, cpu = lower_graph_seconds(steps)
        print(f"{steps:4d} steps  lowering {total:7.2f} s  lower-graph {planning:7.2f} s (cpu {cpu:6.2f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
