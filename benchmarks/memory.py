"""Memory planning, measured: peak intermediate memory and run time of a
compiled model with `lower-graph{plan-memory=false}` (each intermediate
malloc'ed, freed right after its last use) and with planning (one pool of
shared slots per call, kept across calls by the C target), side by side.

    python benchmarks/memory.py                    # transformer block at (1, 16) and (8, 128)
    python benchmarks/memory.py --model mlp --repeat 200

Peak bytes are read off the host code: its `@main` is walked in order,
evaluating the index arithmetic of buffer sizes over the input dims and
tracking memref.alloc / memref.dealloc (the pool is one alloc; results are
included, inputs and weights are not). "All live" is what keeping every
buffer to the end would take. The pool's own figures come from the
`relax.memory_plan` attribute lower-graph records (symbolic, evaluated at
the binding).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from relax_xdsl.passes.pipelines import PIPELINES
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import DictionaryAttr, MemRefType, ModuleOp

import relax_xdsl as rx
from relax_xdsl import dtypes
from relax_xdsl.evaluator import bind_inputs
from relax_xdsl.models import MODELS

_INT = {arith.AddiOp: lambda a, b: a + b, arith.SubiOp: lambda a, b: a - b, arith.MuliOp: lambda a, b: a * b,
        arith.FloorDivSIOp: lambda a, b: a // b, arith.CeilDivSIOp: lambda a, b: -(-a // b),
        arith.RemSIOp: lambda a, b: a % b, arith.MaxSIOp: max, arith.MinSIOp: min}


def peak_bytes(loops: ModuleOp, input_shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    main = next(op for op in loops.body.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "main")
    values: dict[object, object] = dict(zip(main.body.block.args, input_shapes))
    live = total = peak = 0
    sizes: dict[object, int] = {}
    for op in main.body.block.ops:
        if isinstance(op, arith.ConstantOp):
            values[op.result] = op.value.value.data  # type: ignore[attr-defined]
        elif type(op) in _INT:
            values[op.results[0]] = _INT[type(op)](values[op.operands[0]], values[op.operands[1]])
        elif isinstance(op, memref.DimOp):
            shape = values.get(op.source)
            if isinstance(shape, tuple):
                values[op.result] = shape[values[op.index]]  # type: ignore[index]
        elif isinstance(op, memref.AllocOp):
            t = op.memref.type
            assert isinstance(t, MemRefType)
            dyn = iter(op.dynamic_sizes)
            shape = tuple(values[next(dyn)] if d < 0 else d for d in t.get_shape())
            values[op.memref] = shape
            nbytes = int(np.prod(shape)) * np.dtype(dtypes.dtype_name(t.get_element_type())).itemsize
            sizes[op.memref] = nbytes
            live += nbytes
            total += nbytes
            peak = max(peak, live)
        elif isinstance(op, memref.DeallocOp):
            live -= sizes.pop(op.memref)
    return total, peak


def _median_ms(fn: object, args: list[np.ndarray], repeat: int) -> float:
    for _ in range(3):
        fn(*args)  # type: ignore[operator]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="transformer", choices=list(MODELS))
    ap.add_argument("--pipeline", default="default")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    model = MODELS[args.model]()
    spec = PIPELINES.get(args.pipeline, args.pipeline)
    variants = {"unplanned": spec.replace("lower-graph", "lower-graph{plan-memory=false}"), "planned": spec}
    exes = {k: rx.compile(model.module, pipeline=v) for k, v in variants.items()}
    sizes = {"transformer": [(1, 16), (8, 128)], "mlp": [(1,), (512,)], "cnn": [(1,), (32,)]}[args.model]
    print(f"{args.model}, pipeline {args.pipeline}; MiB of intermediates and results, run-time medians of {args.repeat}")
    print("| sizes | all live | unplanned peak | planned peak | pool (buffers) | unplanned ms | planned ms "
          "| ratio |")
    print("|---|---|---|---|---|---|---|---|")
    mib = 2.0**20
    for size in sizes:
        inputs = model.make_inputs(*size)
        shapes = [a.shape for a in inputs]
        total, peak_unplanned = peak_bytes(exes["unplanned"].loops, shapes)
        _, peak_planned = peak_bytes(exes["planned"].loops, shapes)
        main_fn = next(op for op in exes["planned"].loops.body.ops if isinstance(op, func.FuncOp)
                       and op.sym_name.data == "main")
        plan = main_fn.attributes.get("relax.memory_plan")
        bindings = {s.name: v for s, v in bind_inputs(exes["planned"].main.func, inputs)[1].items()}
        pool = "-"
        if isinstance(plan, DictionaryAttr):
            e = plan.data["pool_bytes"].data[0]  # type: ignore[attr-defined]
            nbytes = int(e.subs({s: bindings[s.name] for s in e.free_symbols}))
            pool = f"{nbytes / mib:.2f} ({plan.data['buffers'].value.data})"  # type: ignore[attr-defined]
        want = exes["unplanned"].main(*inputs)
        np.testing.assert_allclose(exes["planned"].main(*inputs), want, rtol=1e-4, atol=1e-4)
        t_un = _median_ms(exes["unplanned"].main, inputs, args.repeat)
        t_pl = _median_ms(exes["planned"].main, inputs, args.repeat)
        print(f"| {size} | {total / mib:.2f} | {peak_unplanned / mib:.2f} | {peak_planned / mib:.2f} | {pool} "
              f"| {t_un:.3f} | {t_pl:.3f} | {t_pl / t_un:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
