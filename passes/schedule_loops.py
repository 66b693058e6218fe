"""`schedule-loops`: how each loop of the loop level runs on the CPU, decided
here and written on the loop, so `relax-xdsl-opt -p <pipeline>` shows what
the C target will do and the C emitter only prints it.

- `scf.parallel` gets `relax.min_work = N`: the nest runs on OpenMP threads
  only when its estimated work (the parallel extents times its body's
  loop trips, see c_emitter's `_work`) reaches N; below, forking costs more
  than it saves. A small nest (at most `serial_copy_max_ops` ops) also gets
  `relax.serial_copy`: it is emitted twice, a plain copy taken below N, since
  even an OpenMP region kept on one thread by its `if` clause has a cost
  (libgomp builds a team and wakes its barrier with a futex), which shows
  on small models at batch 1. Larger nests (fused row loops, register
  tiles) are not copied: copies made gcc's compile of the transformer block
  much longer for a negligible gain in its run time.
  A `scf.parallel` without `relax.min_work` is always an OpenMP loop.
- An innermost `scf.for` reducing one float accumulator (sum, max, min) over
  loads contiguous in its induction variable, 16 or more (or unknown)
  iterations long, gets `relax.loop = "reduce"`: an `omp simd reduction`,
  which lets the compiler reorder the additions (as BLAS and onnxruntime
  do; gcc will not otherwise; max and min are exact in any order). A short
  window (a pool's 2 taps) is not tagged: in the default pipeline
  unroll-short-loops has already made it straight-line code, and gcc
  vectorizes across outputs; neither is a load strided in the induction
  variable (a matmul's B[k, j]). Loops already tagged (`vectorize`, `unroll`) keep
  their tag.
- Any other innermost `scf.for` as long, carrying nothing, that stores only
  at [fixed..., i] and reads what it stores only there, gets `relax.loop =
  "vectorize"`: `omp simd`. No iteration depends on another, and gcc
  vectorizes a body that branches (rx_expf's range checks in softmax's
  output row) only when told: untagged, that row ran scalar.
"""

from __future__ import annotations

from dataclasses import dataclass

from relax_xdsl.dialects.tir import CheckIndexOp
from xdsl.context import Context
from xdsl.dialects import arith, cf, func, memref, scf
from xdsl.dialects.builtin import Float32Type, Float64Type, IntegerAttr, ModuleOp, StringAttr, UnitAttr, i64
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from relax_xdsl.dim_lowering import CHECKED_ATTR

MIN_WORK_ATTR = "relax.min_work"
SERIAL_COPY_ATTR = "relax.serial_copy"
LOOP_ATTR = "relax.loop"

PARALLEL_MIN_WORK = 32768
"""Estimated loop iterations below which a parallel nest runs on one thread."""

SERIAL_COPY_MAX_OPS = 25
"""A parallel nest of at most this many ops also gets a plain copy."""

SHORT_REDUCTION = 16
"""Reductions of a constant trip count below this are left to gcc."""


@dataclass(frozen=True)
class ScheduleLoopsPass(ModulePass):
    name = "schedule-loops"

    min_work: int = PARALLEL_MIN_WORK
    serial_copy_max_ops: int = SERIAL_COPY_MAX_OPS

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in op.walk():
            if isinstance(inner, scf.ParallelOp):
                inner.attributes[MIN_WORK_ATTR] = IntegerAttr(self.min_work, i64)
                if sum(1 for _ in inner.body.block.walk()) <= self.serial_copy_max_ops:
                    inner.attributes[SERIAL_COPY_ATTR] = UnitAttr()
            elif isinstance(inner, scf.ForOp) and LOOP_ATTR not in inner.attributes and \
                    reduction_update(inner) is not None and _vectorizable_reduction(inner):
                inner.attributes[LOOP_ATTR] = StringAttr("reduce")
            elif isinstance(inner, scf.ForOp) and LOOP_ATTR not in inner.attributes and _independent_row(inner):
                inner.attributes[LOOP_ATTR] = StringAttr("vectorize")


def reduction_update(op: scf.ForOp) -> arith.AddfOp | arith.MaximumfOp | arith.MinimumfOp | None:
    """The op combining a loop's one float accumulator with each iteration's
    value (a sum, max or min), or None when the loop is not such a reduction."""
    body = op.body.block
    if len(op.iter_args) != 1 or not isinstance(op.iter_args[0].type, (Float32Type, Float64Type)):
        return None
    term = body.last_op
    if not isinstance(term, scf.YieldOp):
        return None
    update = term.operands[0].owner
    if not isinstance(update, (arith.AddfOp, arith.MaximumfOp, arith.MinimumfOp)):
        return None
    return update if body.args[1] in update.operands else None


def _short(op: scf.ForOp) -> bool:
    """A constant trip bound below SHORT_REDUCTION: left to gcc."""
    ub = op.ub.owner
    return isinstance(ub, arith.ConstantOp) and ub.value.value.data < SHORT_REDUCTION  # type: ignore[attr-defined]


def _vectorizable_reduction(op: scf.ForOp) -> bool:
    """Innermost, long enough, and reading at least one buffer contiguously in the induction variable."""
    if _short(op):
        return False
    iv = op.body.block.args[0]
    unit_stride = False
    for inner in op.body.block.walk():
        if isinstance(inner, (scf.ForOp, scf.ParallelOp, scf.IfOp, func.CallOp, memref.StoreOp)):
            return False
        if isinstance(inner, memref.LoadOp):
            if any(i is iv for i in inner.indices[:-1]):
                return False
            unit_stride |= bool(inner.indices) and inner.indices[-1] is iv
    return unit_stride


def _independent_row(op: scf.ForOp) -> bool:
    """An innermost loop, 16 or more (or unknown) iterations long, carrying
    nothing, that stores only at [fixed..., iv] and reads what it stores
    only at its own store's index: no iteration depends on another, so it
    may run as `omp simd`. gcc does not vectorize such a loop on its own
    when the body branches (rx_expf's range checks: softmax's output row),
    and `omp simd` lets it if-convert them."""
    if op.iter_args or _short(op):
        return False
    body = op.body.block
    iv = body.args[0]
    stores: dict[SSAValue, tuple[SSAValue, ...]] = {}
    loads: list[memref.LoadOp] = []
    for inner in body.walk():
        if isinstance(inner, (scf.ForOp, scf.ParallelOp, scf.WhileOp, func.CallOp, memref.CopyOp,
                              memref.AllocOp, memref.AllocaOp, cf.AssertOp, CheckIndexOp)) or \
                CHECKED_ATTR in inner.attributes:
            return False  # (a check's failure leaves the loop: no branch out of an omp simd loop)
        if isinstance(inner, memref.StoreOp):
            idx = tuple(inner.indices)
            if not idx or idx[-1] is not iv or any(_inside(i, body) for i in idx[:-1]):
                return False
            if stores.setdefault(inner.memref, idx) != idx:
                return False  # two stores to one buffer at different places
        elif isinstance(inner, memref.LoadOp):
            loads.append(inner)
    if not stores:
        return False
    # distinct memrefs must be distinct memory: arguments (restrict in C) and allocations, not views of one
    # another, whose overlap omp simd would not check for
    if not all(isinstance(m.owner, Block) or isinstance(m.owner, (memref.AllocOp, memref.AllocaOp))
               for m in (*stores, *(ld.memref for ld in loads))):
        return False
    return all(tuple(ld.indices) == stores[ld.memref] for ld in loads if ld.memref in stores)


def _inside(value: SSAValue, body: Block) -> bool:
    """Whether `value` is the loop's induction variable or defined in its body."""
    owner = value.owner
    return owner is body or (isinstance(owner, Operation) and body.is_ancestor(owner))
