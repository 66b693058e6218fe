"""`unroll-short-loops`: an `scf.for` with constant bounds, at most
`max_trip` iterations and no loop inside is replaced by copies of its body.

A pooling window (2x2, 3x3) is two such loops innermost in the nest, below
the loop over output columns. gcc does not unroll them before it
vectorizes, and a nest whose innermost loop runs 2 or 3 times does not
vectorize ("two or more consecutive inner loops"), so max_pool2d ran
scalar, most of the CNN's time at batch 32. Unrolled here, the output loop
is innermost and vectorizes (strided loads for stride 2). Inner loops are
unrolled first, so a 2-d window becomes straight-line code when its copies
stay under `max_ops`. Loops tagged for OpenMP simd (`relax.loop`) are left
as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from relax_xdsl.passes.schedule_loops import LOOP_ATTR
from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.transforms.scf_for_loop_unroll import UnrollLoopPattern

MAX_TRIP = 4
"""Loops of at most this many iterations are unrolled."""

MAX_OPS = 96
"""... when their unrolled body has at most this many ops."""


def _constant(value: object) -> int | None:
    owner = getattr(value, "owner", None)
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def trip_count(loop: scf.ForOp) -> int | None:
    lb, ub, step = _constant(loop.lb), _constant(loop.ub), _constant(loop.step)
    if lb is None or ub is None or step is None or step <= 0:
        return None
    return max(0, -(-(ub - lb) // step))


@dataclass
class UnrollShortLoop(RewritePattern):
    max_trip: int = MAX_TRIP
    max_ops: int = MAX_OPS

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, scf.ForOp) or LOOP_ATTR in op.attributes:
            return
        trips = trip_count(op)
        if trips is None or trips > self.max_trip:
            return
        body = list(op.body.block.ops)
        if any(inner.regions for inner in body) or trips * len(body) > self.max_ops:
            return
        UnrollLoopPattern().match_and_rewrite(op, rewriter)


@dataclass(frozen=True)
class UnrollShortLoopsPass(ModulePass):
    """unroll-short-loops: constant loops of at most max_trip iterations without inner loops, fully unrolled."""

    name = "unroll-short-loops"

    max_trip: int = MAX_TRIP
    max_ops: int = MAX_OPS

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(UnrollShortLoop(self.max_trip, self.max_ops), walk_regions_first=True).rewrite_module(op)
