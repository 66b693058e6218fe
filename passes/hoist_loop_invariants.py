"""`hoist-loop-invariants`: side-effect-free ops whose operands are all
defined outside an `scf.for` / `scf.parallel` move before it.

xDSL's `licm` does this for `scf.for` only and never moves an integer
division or remainder, since MLIR leaves division by zero undefined. On
both of this project's targets `arith.remsi`, `floordivsi` and `ceildivsi`
are total (x / 0 gives 0, as the C prelude's rx_rem / rx_floordiv and the
interpreter define them), so they may run where the loop did not. They are
what a fused reshape leaves in the innermost loop: the row of the source
(`floordiv(i, s)`, `rem(i, s)`), invariant in that loop. Left there, gcc
sees control flow in the loop (the prelude's zero-divisor branches) and
does not vectorize it: GPT-2's fused GELU ran scalar. `arith.divsi` stays
where it is: the interpreter raises on a zero divisor.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, Region
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.rewriter import InsertPoint
from xdsl.traits import IsTerminator, is_side_effect_free, is_speculatable

TOTAL_DIVISIONS = (arith.RemSIOp, arith.FloorDivSIOp, arith.CeilDivSIOp)


def _hoistable(op: Operation, body: Region) -> bool:
    if op.has_trait(IsTerminator) or op.regions or not is_side_effect_free(op):
        return False
    if not (is_speculatable(op) or isinstance(op, TOTAL_DIVISIONS)):
        return False
    return not any(body.is_ancestor(operand.owner) for operand in op.operands)  # type: ignore[arg-type]


class HoistLoopInvariants(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, (scf.ForOp, scf.ParallelOp)):
            return
        body = op.body
        moved = True
        while moved:  # an op whose operands were just hoisted may follow them
            moved = False
            for inner in list(body.ops):
                if _hoistable(inner, body):
                    inner.detach()
                    rewriter.insert(inner, InsertPoint.before(op))
                    moved = True


@dataclass(frozen=True)
class HoistLoopInvariantsPass(ModulePass):
    """hoist-loop-invariants: loop-invariant pure ops (total integer divisions included) out of scf loops."""

    name = "hoist-loop-invariants"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(HoistLoopInvariants(), walk_regions_first=True).rewrite_module(op)
