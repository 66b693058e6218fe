"""`fuse-row-loops`: consecutive row loops of a tensor program become one.

softmax, layer_norm and rms_norm are legalized as several computes over the
same rows (the row max, the row sum, then the output row), and lower-tir
makes each an outer loop over the rows: three passes over memory. When
every loop of such a run goes over the same range and touches each buffer
that one of them writes only at its own row (first index = its induction
variable), iteration r of the later loops needs only iteration r of the
earlier ones, so the loops are fused into one: per row, the max, the sum
and the output, while the row is in cache -- one pass over memory per row.

The fused loop is parallel when its loops' iterations are independent
(every store at the loop's own row; a serial loop that qualifies becomes
parallel too). Ops between the loops that only define values (allocs,
constants, index arithmetic, dims) move above the first loop. Anything
else -- a call, a store outside a loop, different bounds, a buffer read at
another row -- ends the run.

Only loops over the rows themselves fuse (ROW_DEPTH): under a batch loop
the passes stay separate, so that collapse-parallel splits each over
batch x rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from relax_xdsl.dialects.tir import CheckIndexOp
from xdsl.context import Context
from xdsl.dialects import arith, cf, func, memref, scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

ROW_DEPTH = 2
"""Only loops over every row are fused (the row loop and the loops over a
row's elements): when the outer loop is the batch of [batch, heads, rows,
cols] or [batch, rows, cols], one fused loop over the batch would leave
every row of an image to one thread (at batch 1, one core idle), where
unfused, collapse-parallel splits each pass over batch x heads / rows.
Measured on attention's softmax: about half the time at batch 1 unfused,
within 10% either way at batch 8."""

_MOVABLE = (memref.AllocOp, memref.DimOp, arith.ConstantOp, arith.AddiOp, arith.SubiOp, arith.MuliOp,
            arith.FloorDivSIOp, arith.CeilDivSIOp, arith.DivSIOp, arith.RemSIOp, arith.MaxSIOp, arith.MinSIOp,
            arith.IndexCastOp, arith.SIToFPOp, arith.CmpiOp, arith.DivUIOp, arith.RemUIOp, arith.MaxUIOp,
            arith.MinUIOp, arith.UIToFPOp, arith.BitcastOp)


def _row_loop(op: Operation) -> tuple[SSAValue, SSAValue, SSAValue, SSAValue] | None:
    """(lb, ub, step, iv) of a one-dimensional scf.parallel or of an scf.for
    without loop-carried values."""
    if isinstance(op, scf.ParallelOp) and len(op.lowerBound) == 1 and not op.results:
        return op.lowerBound[0], op.upperBound[0], op.step[0], op.body.block.args[0]
    if isinstance(op, scf.ForOp) and not op.iter_args and not op.attributes:
        return op.lb, op.ub, op.step, op.body.block.args[0]
    return None


def _same(a: SSAValue, b: SSAValue) -> bool:
    if a is b:
        return True
    oa, ob = a.owner, b.owner
    return (isinstance(oa, arith.ConstantOp) and isinstance(ob, arith.ConstantOp)
            and isinstance(oa.value, IntegerAttr) and isinstance(ob.value, IntegerAttr)
            and oa.value.value.data == ob.value.value.data)


@dataclass
class _Access:
    stores: dict[SSAValue, bool]  # memref -> every store at the loop's own row
    loads: dict[SSAValue, bool]  # memref -> every load at the loop's own row


def _accesses(loop: Operation, iv: SSAValue) -> _Access | None:
    """What the loop reads and writes, and whether only at row `iv`; None when
    it does anything else with memory (a call, a view, a copy)."""
    acc = _Access({}, {})
    for op in loop.walk():
        if op is loop:
            continue
        if isinstance(op, (memref.LoadOp, memref.StoreOp)):
            table = acc.stores if isinstance(op, memref.StoreOp) else acc.loads
            own = bool(op.indices) and op.indices[0] is iv
            table[op.memref] = table.get(op.memref, True) and own
        elif isinstance(op, (func.CallOp, memref.CopyOp, memref.AllocOp, memref.DeallocOp, memref.ViewOp,
                             memref.ReinterpretCastOp, memref.CastOp, cf.AssertOp, CheckIndexOp)):
            return None  # (a check may end the kernel: it stays out of parallel loops)
    return acc


def _independent(a: _Access) -> bool:
    """Iterations touch disjoint rows of what they write."""
    return all(a.stores.values()) and all(a.loads.get(m, True) for m in a.stores)


def _fusable(a: _Access, b: _Access) -> bool:
    """Iteration r of b depends only on iteration r of a (and not the reverse)."""
    for first, second in ((a, b), (b, a)):
        for m in first.stores:
            if m in second.stores or m in second.loads:
                if not (first.stores[m] and second.stores.get(m, True) and second.loads.get(m, True)
                        and first.loads.get(m, True)):
                    return False
    return True


def _depth(op: Operation) -> int:
    """How many loops deep the nest of `op` goes (op itself counted)."""
    inner = [_depth(o) for region in op.regions for block in region.blocks for o in block.ops
             if isinstance(o, (scf.ForOp, scf.ParallelOp))]
    return 1 + max(inner, default=0)


def _row_accesses(op: Operation) -> tuple[tuple[SSAValue, SSAValue, SSAValue, SSAValue], _Access] | None:
    """The bounds and accesses of a loop over every row (ROW_DEPTH) whose
    iterations are independent: what may join a run; else None."""
    info = _row_loop(op)
    if info is None or _depth(op) > ROW_DEPTH:
        return None
    acc = _accesses(op, info[3])
    return (info, acc) if acc is not None and _independent(acc) else None


def _fuse_runs(block: Block) -> int:
    fused = 0
    ops = list(block.ops)
    i = 0
    while i < len(ops):
        head = ops[i]
        found = _row_accesses(head)
        if found is None:
            i += 1
            continue
        info, acc = found
        group: list[tuple[Operation, SSAValue, _Access]] = [(head, info[3], acc)]
        movable: list[Operation] = []
        j = i + 1
        while j < len(ops):
            op = ops[j]
            if isinstance(op, _MOVABLE):
                movable.append(op)
                j += 1
                continue
            nxt = _row_accesses(op)
            if nxt is None:
                break
            (lb, ub, step, iv), nacc = nxt
            if not all(_same(x, y) for x, y in zip((lb, ub, step), info[:3])) or \
                    not all(_fusable(g[2], nacc) for g in group):
                break
            group.append((op, iv, nacc))
            j += 1
        if len(group) > 1:
            merged = _merge(group, movable)
            fused += len(group) - 1
            ops = list(block.ops)
            i = ops.index(merged)
        i += 1
    return fused


def _merge(group: list[tuple[Operation, SSAValue, _Access]], movable: list[Operation]) -> scf.ParallelOp:
    """One parallel loop in place of the group (returned); `movable` ops go above it."""
    head, iv, _ = group[0]
    last = group[-1][0]
    for op in movable:  # defined before the loops that use them (they only define values)
        if _before(op, last):
            op.detach()
            Rewriter.insert_op(op, InsertPoint.before(head))
    lb, ub, step, _ = _row_loop(head)  # type: ignore[misc]
    body = Block(arg_types=[iv.type])
    for loop, loop_iv, _ in group:
        inner = loop.regions[0].block
        loop_iv.replace_all_uses_with(body.args[0])
        for op in list(inner.ops)[:-1]:  # all but the terminator
            op.detach()
            body.add_op(op)
    body.add_op(scf.ReduceOp())
    fused = scf.ParallelOp([lb], [ub], [step], Region(body))
    Rewriter.insert_op(fused, InsertPoint.before(head))
    for loop, _, _ in group:
        Rewriter.erase_op(loop)
    return fused


def _before(a: Operation, b: Operation) -> bool:
    block = a.parent
    return block is not None and block is b.parent and block.get_operation_index(a) < block.get_operation_index(b)


def fuse_row_loops(module: ModuleOp) -> int:
    """Fuses the row loops of every function; returns how many loops were merged away."""
    total = 0
    for op in module.body.ops:
        if isinstance(op, func.FuncOp) and op.body.blocks:
            total += _fuse_runs(op.body.block)
    return total


@dataclass(frozen=True)
class FuseRowLoopsPass(ModulePass):
    """Runs after lower-tir (it works on scf loops over memrefs)."""

    name = "fuse-row-loops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_row_loops(op)
