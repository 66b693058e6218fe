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

The per-op check skips ops that have regions but no results (the loops of
these programs, which store to memory). xDSL's rewriter asks each op it
visits whether it is trivially dead (and asks again when an op has several
canonicalization patterns: CanonicalizationRewritePattern applies them
through a GreedyRewritePatternApplier of its own), and for a loop without
results that question walks the effects of its whole body, once per loop
of a nest: on DenseNet-121 that was about half of this pass. Keeping such
a loop is never wrong (the C compiler drops a loop without effects), and a
lowered tensor program's loops store; ops with results and ops without
regions are checked as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.traits import HasCanonicalizationPatternsTrait
from xdsl.transforms.dead_code_elimination import is_trivially_dead


class EraseTriviallyDead(RewritePattern):
    """xDSL's per-op dead-code removal, except for ops with regions and no results."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if (op.results or not op.regions) and is_trivially_dead(op):
            rewriter.erase(op)


class Canonicalize(RewritePattern):
    """The op's canonicalization patterns, the first that rewrites it wins
    (xDSL's CanonicalizationRewritePattern, without the dead-code check of
    the applier it makes for an op with several patterns)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        for trait in op.get_traits_of_type(HasCanonicalizationPatternsTrait):
            for pattern in trait.get_patterns(type(op)):
                pattern.match_and_rewrite(op, rewriter)
                if rewriter.has_done_action:
                    return


@dataclass(frozen=True)
class CanonicalizeOpsPass(ModulePass):
    """canonicalize-ops: xDSL's canonicalization patterns, folding and per-op dead-code removal."""

    name = "canonicalize-ops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pattern = GreedyRewritePatternApplier([EraseTriviallyDead(), Canonicalize()], ctx=ctx,
                                              folding_enabled=True, dce_enabled=False)
        PatternRewriteWalker(pattern).rewrite_module(op)
