"""Peak memory of a compiled model's intermediates, read off its host code.

    python benchmarks/memory.py                    # transformer block at (8, 128) and (1, 16)

Walks the loop-level `@main` in order, evaluating buffer sizes (index
arithmetic over the input dims) and tracking memref.alloc / memref.dealloc:
the peak of live intermediate bytes (outputs included, inputs and weights
not). "Before" is what freeing everything at the end would need (the sum of
all buffers); "after" is the planned peak (each buffer freed after its last
use, reshapes as views).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import MemRefType, ModuleOp

import relax_xdsl as rx
from relax_xdsl import dtypes
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="transformer", choices=list(MODELS))
    ap.add_argument("--pipeline", default="fast")
    args = ap.parse_args(argv)
    model = MODELS[args.model]()
    loops = rx.lower(model.module, args.pipeline)
    sizes = {"transformer": [(1, 16), (8, 128)], "mlp": [(1,), (512,)], "cnn": [(1,), (32,)]}[args.model]
    print("| model | sizes | before: all buffers live (MiB) | after: planned peak (MiB) |")
    print("|---|---|---|---|")
    for size in sizes:
        shapes = [a.shape for a in model.make_inputs(*size)]
        total, peak = peak_bytes(loops, shapes)
        print(f"| {args.model} | {size} | {total / 2**20:.2f} | {peak / 2**20:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
