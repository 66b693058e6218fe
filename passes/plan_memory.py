"""`plan-memory`: one pool for a host function's intermediates (after
`lower-graph` and `free-buffers`).

`lower-graph` marks each intermediate it may pool -- one that is not
returned, lives in the function's top-level block, and whose byte size is
an expression over symbols bound on entry -- with `relax.bytes` (that size),
and marks the ops whose results hold those symbols with `relax.binds`.
This pass walks the top-level block in order: each marked `memref.alloc`
takes a buffer of the plan (passes/memory_planning.py), each of their
`memref.dealloc`s releases it; the plan then gives every buffer a symbolic
offset. The pool is one `memref.alloc` marked `relax.pool` (the C target
keeps it across calls), placed with the offsets and its size before the
first pooled buffer; each buffer becomes a `memref.view` into it, and the
pool is freed before the function returns. The plan's figures are recorded
on the function (`relax.memory_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from relax_xdsl.dialects.relax import DimsAttr
from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StringAttr,
    UnitAttr,
    i8,
)
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass

from relax_xdsl.dim_lowering import DimEmitter
from relax_xdsl.shape import sym

from .memory_planning import MemoryPlan

BYTES_ATTR = "relax.bytes"
"""On a `memref.alloc` lower-graph lets this pass pool: its byte size."""

BINDS_ATTR = "relax.binds"
"""On an op whose result holds the value of symbols (their names)."""


def mark_binding(value: SSAValue, name: str) -> None:
    """Records on `value`'s defining op that it holds symbol `name`."""
    owner = value.owner
    if isinstance(owner, Block):
        return  # a block argument: not a symbol's value in host code lower-graph writes
    names = owner.attributes.get(BINDS_ATTR)
    old = list(names.data) if isinstance(names, ArrayAttr) else []
    owner.attributes[BINDS_ATTR] = ArrayAttr([*old, StringAttr(name)])


def plan_function(fn: func.FuncOp, label: str) -> None:
    block = fn.body.block
    plan = MemoryPlan()
    pooled: list[memref.AllocOp] = []
    buffer_of: dict[SSAValue, int] = {}
    symbols: dict[sympy.Symbol, SSAValue] = {}
    for op in list(block.ops):
        names = op.attributes.get(BINDS_ATTR)
        if isinstance(names, ArrayAttr):
            for name in names.data:
                symbols[sym(name.data)] = op.results[0]  # type: ignore[attr-defined]
        if isinstance(op, memref.AllocOp) and isinstance(op.attributes.get(BYTES_ATTR), DimsAttr):
            nbytes = op.attributes[BYTES_ATTR].data[0]  # type: ignore[attr-defined]
            buffer_of[op.memref] = plan.take(nbytes)
            pooled.append(op)
        elif isinstance(op, memref.DeallocOp) and op.memref in buffer_of:
            plan.release(buffer_of[op.memref])
            op.detach()
            op.erase()
    if not pooled:
        return
    first = pooled[0]
    emitter = DimEmitter(lambda new: block.insert_op_before(new, first), checked=label)
    for s, value in symbols.items():
        emitter.bind(s, value)
    offsets = [emitter.emit(o) for o in plan.place()]
    size = emitter.emit(plan.pool)
    pool = memref.AllocOp([size], [], MemRefType(i8, [DYNAMIC_INDEX]), IntegerAttr(64, 64))
    pool.memref.name_hint = "pool"
    pool.attributes["relax.pool"] = UnitAttr()
    block.insert_op_before(pool, first)
    for alloc, offset in zip(pooled, offsets):
        view = memref.ViewOp(pool.memref, offset, list(alloc.dynamic_sizes), alloc.memref.type)
        block.insert_op_before(view, alloc)
        alloc.memref.replace_all_uses_with(view.result)
        alloc.detach()
        alloc.erase()
    ret = block.last_op
    assert isinstance(ret, func.ReturnOp)
    block.insert_op_before(memref.DeallocOp.get(pool.memref), ret)
    fn.attributes["relax.memory_plan"] = DictionaryAttr({
        "buffers": IntegerAttr(len(plan.buffers), 64),
        "unshared_bytes": DimsAttr.of([plan.unshared]),
        "peak_live_bytes": DimsAttr.of([plan.peak]),
        "pool_bytes": DimsAttr.of([plan.pool]),
    })


@dataclass(frozen=True)
class PlanMemoryPass(ModulePass):
    name = "plan-memory"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in op.ops:
            if isinstance(fn, func.FuncOp) and not fn.is_declaration and "relax.buffers" not in fn.attributes:
                label = "@" + fn.sym_name.data.encode("ascii", "backslashreplace").decode("ascii")
                plan_function(fn, label)
        for fn in op.walk():  # the marks have served
            for key in (BYTES_ATTR, BINDS_ATTR):
                fn.attributes.pop(key, None)
