"""`auto-schedule`: the default schedule of contractions, chosen from the
tensor program itself (before lower-tir).

lower-tir writes a reduction as spatial loops around reduction loops, so
matmul's `out[i, j] = sum_k A[i, k] * B[k, j]` walks B down a column per
output element. When putting the innermost output axis innermost instead
reads fewer loads with a stride (B[k, j] in matmul; x[k, j] in a sum over
k), this pass rewrites the compute with `Schedule`:

- a float sum into 2 or more axes whose last is at least 16 wide (matmul,
  dense, batched matmul; a stride-1 conv, whose input is contiguous in the
  output column and weight invariant in it, 4 output rows at a time:
  measured several times faster on the CNN in `default`)
  as register tiles (`Schedule.register_tile`):
  TILE_ROWS x 64 outputs (or the multiple of 16 below a narrower static
  width) summed over k in a local buffer gcc keeps in vector registers,
  leading axes as loops around, column panels one after another and each
  panel's row blocks on all cores; leftover rows and columns in the plain
  order below (measured several times faster on a large matmul, the mlp and
  the transformer block than that order alone);
- any other such contraction as explicit loops ordered

      parallel s0:  ...  for k...:  vectorize s_last:  out[.., s_last] += ...

  so the innermost loop streams rows of B and of the output, vectorized, and
  the outermost output axis runs on all cores (when the output has two or
  more axes; a reduction into one axis keeps its k loop outermost, serial).

A sum that fuse-tir wrote as a spatial compute with an inner `scf.for`
(matmul + bias + relu fused) is first read back as a `reduce add` compute
with that epilogue (`reduction_form`), so it is tiled too (otherwise a
fused matmul without offload keeps the slow column walk).

Each output element still accumulates over k in the same order (the
interpreter gives identical values; in C, gcc may contract a multiply-add
into an FMA differently).

Other computes (row reductions like softmax's sums, whose input is
contiguous along the reduction axis; elementwise programs) are left to
lower-tir's default (outer axis parallel, gcc vectorizes the innermost).
"""

from __future__ import annotations

from dataclasses import dataclass

from relax_xdsl.dialects.tir import ComputeOp, PrimFuncOp, YieldOp
from relax_xdsl.passes.lower_tir import contraction_over_contiguous_axis
from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import AnyFloat, FloatAttr, IndexType, IntegerAttr, ModuleOp
from xdsl.ir import Block, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from relax_xdsl.schedule import Schedule

TILE_ROWS = 4
"""Rows of a register tile: with 64 columns, 16 vectors of accumulators."""


def tile_columns(c: ComputeOp) -> int | None:
    """The register tile's columns for a float sum into 2 or more axes: 64,
    or the multiple of 16 up to a narrower static last axis; None when that
    axis is narrower than 16 or the compute is not such a sum."""
    if c.out_type.ndim < 2 or c.combiner is None or c.combiner.data != "add":
        return None
    acc_t = c.body_value_type()
    if acc_t != c.out_type.element_type or not isinstance(acc_t, AnyFloat):
        return None
    n = c.out_type.sym_shape[-1]
    if not n.is_Integer or int(n) >= 64:
        return 64
    return 16 * (int(n) // 16) or None


def schedule_contraction(sch: Schedule, c: ComputeOp) -> None:
    """A float sum into 2 or more axes, the last at least 16 wide: register tiles of
    TILE_ROWS x tile_columns (Schedule.register_tile). Otherwise reorders `c`
    (a compute of `sch`'s program) to s0.., k.., s_last; s0 parallel when
    there are two or more output axes; s_last vectorized."""
    cols = tile_columns(c)
    if cols is not None:
        sch.register_tile(c, TILE_ROWS, cols)
        return
    rank = c.out_type.ndim
    loops = sch.loops(sch.computes().index(c))
    spatial, reduction = loops[:rank], loops[rank:]
    last = spatial[-1]
    for k in reduction:
        sch.reorder(last, k)
    sch.vectorize(last)
    if rank >= 2:
        sch.parallel(spatial[0])


def reduction_form(c: ComputeOp) -> ComputeOp | None:
    """What fuse-tir writes for a sum with elementwise consumers (matmul + bias
    + relu): a spatial compute whose value is an `scf.for` from 0.0 adding
    one term per step over a constant extent, then an epilogue. Returns the
    same as a `reduce add` compute with that epilogue (not inserted), or None
    for any other shape. Each element sums the same terms in the same order."""
    if c.combiner is not None:
        return None
    ops = list(c.body.block.ops)
    loops = [op for op in ops if isinstance(op, scf.ForOp)]
    if len(loops) != 1 or len(loops[0].iter_args) != 1:
        return None
    loop = loops[0]
    at = ops.index(loop)
    before, after = ops[:at], ops[at + 1:]
    if not all(isinstance(op, arith.ConstantOp) for op in before):
        return None
    consts = {op.result: op.value for op in before}
    lb, step, ub, init = (consts.get(v) for v in (loop.lb, loop.step, loop.ub, loop.iter_args[0]))
    if not (isinstance(lb, IntegerAttr) and lb.value.data == 0 and isinstance(step, IntegerAttr)
            and step.value.data == 1 and isinstance(ub, IntegerAttr) and ub.value.data > 0
            and isinstance(init, FloatAttr) and init.value.data == 0.0):
        return None
    body_ops = list(loop.body.block.ops)
    acc = loop.body.block.args[1]
    y = body_ops[-1]
    add = y.operands[0].owner if isinstance(y, scf.YieldOp) and len(y.operands) == 1 else None
    if not (isinstance(add, arith.AddfOp) and add.lhs == acc and add.rhs != acc and acc.has_one_use()
            and add.result.has_one_use()):
        return None
    rank = c.out_type.ndim
    spatial = list(c.body.block.args)
    term_block = Block(arg_types=[IndexType()] * (rank + 1))
    mapping: dict[SSAValue, SSAValue] = {**dict(zip(spatial, term_block.args)), loop.body.block.args[0]: term_block.args[-1]}
    for op in before + [op for op in body_ops if op is not add and op is not y]:
        term_block.add_op(op.clone(value_mapper=mapping))
    term_block.add_op(YieldOp(mapping.get(add.rhs, add.rhs)))
    epi_block = Block(arg_types=[loop.results[0].type] + [IndexType()] * rank)
    mapping = {**dict(zip(spatial, epi_block.args[1:])), loop.results[0]: epi_block.args[0]}
    for op in before + after[:-1]:
        epi_block.add_op(op.clone(value_mapper=mapping))
    final = after[-1]
    assert isinstance(final, YieldOp)
    epi_block.add_op(YieldOp(mapping.get(final.values[0], final.values[0])))
    return ComputeOp(c.out, Region(term_block), ("add", [ub.value.data]), Region(epi_block))


def auto_schedule(module: ModuleOp) -> int:
    """Schedules every contraction of every tensor program; returns how many."""
    count = 0
    for prim in [op for op in module.walk() if isinstance(op, PrimFuncOp)]:
        for c in [op for op in prim.body.block.ops if isinstance(op, ComputeOp)]:
            reduced = reduction_form(c)
            if reduced is not None and contraction_over_contiguous_axis(reduced):
                Rewriter.replace_op(c, reduced, [])
        computes = [op for op in prim.body.block.ops if isinstance(op, ComputeOp)]
        targets = [c for c in computes if contraction_over_contiguous_axis(c)]
        if not targets:
            continue
        sch = Schedule(prim)
        for c in targets:
            schedule_contraction(sch, c)
            count += 1
    return count


@dataclass(frozen=True)
class AutoSchedulePass(ModulePass):
    """auto-schedule: see the module docstring."""

    name = "auto-schedule"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        auto_schedule(op)
