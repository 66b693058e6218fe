"""`canonicalize-ops`: xDSL's canonicalization patterns and folding, with
the rewriter's per-op dead-code removal, but without xDSL `canonicalize`'s
whole-region liveness pass (`region_dce`) after each sweep.

Why: on the loop programs lower-graph makes (deep nests of scf.for with
loads and stores), that liveness pass asks every op whether it would be
dead, and an op's answer walks the effects of everything nested in it
again, so its cost grows with nest depth times size. On DenseNet-121 it was
37% of `canonicalize` (2.1 s against 1.3 s), with the same output: the dead
code of these programs is ops whose results nobody reads, which the
rewriter erases as it meets them (erasing one revisits its operands'
producers, so dead chains go too). `canonicalize` stays available for IR
with unreachable blocks or dead cycles through block arguments, which only
the liveness pass removes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker
from xdsl.transforms.canonicalize import CanonicalizationRewritePattern


@dataclass(frozen=True)
class CanonicalizeOpsPass(ModulePass):
    """canonicalize-ops: xDSL's canonicalization patterns, folding and per-op dead-code removal."""

    name = "canonicalize-ops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pattern = GreedyRewritePatternApplier([CanonicalizationRewritePattern()], ctx=ctx, folding_enabled=True)
        PatternRewriteWalker(pattern).rewrite_module(op)
