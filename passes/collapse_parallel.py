"""`collapse-parallel`: a one-dimensional `scf.parallel` whose body is one
`scf.for` (bounds and step defined outside the parallel loop, nothing
carried, itself around loops) becomes a two-dimensional `scf.parallel`, which the C target
prints as `omp parallel for collapse(2)`.

lower-tir runs a compute's outermost output axis in parallel. For NCHW
images and [batch, seq, hidden] activations that axis is the batch, so at
batch 1 a pooling, an elementwise epilogue, a softmax or a LayerNorm row
loop ran on one thread while the other core idled. Collapsed, the threads
split batch x channels (or batch x rows). Ops before the `scf.for` that do
not use the parallel index (constants canonicalize put there) move before
the parallel loop first; anything else that reads the index keeps the nest
as it is, and so does an `scf.for` that is the innermost loop: collapsed,
it would no longer be vectorized (GPT-2's GELU over [rows, hidden] got
slower). Runs after fuse-row-loops, which fuses one-dimensional row loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, Region
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.rewriter import InsertPoint
from xdsl.traits import is_side_effect_free


class CollapseParallel(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, scf.ParallelOp) or len(op.lowerBound) != 1 or op.results or op.initVals:
            return
        body = op.body.block
        ops = list(body.ops)
        if len(ops) < 2 or not isinstance(ops[-1], scf.ReduceOp) or ops[-1].operands:
            return
        inner, before = ops[-2], ops[:-2]
        if not isinstance(inner, scf.ForOp) or inner.iter_args or inner.results:
            return
        if not any(isinstance(nested, scf.ForOp) for nested in inner.body.block.ops):
            return  # the innermost loop: gcc vectorizes it, which a collapsed loop would not be
        if any(inner_op.regions or not is_side_effect_free(inner_op) or
               any(body.is_ancestor(v.owner) for v in inner_op.operands) for inner_op in before):
            return
        if any(body.is_ancestor(v.owner) and v.owner not in before for v in (inner.lb, inner.ub, inner.step)):
            return
        for moved in before:  # invariant: before the parallel loop
            moved.detach()
            rewriter.insert(moved, InsertPoint.before(op))
        new_body = Block(arg_types=[body.args[0].type, inner.body.block.args[0].type])
        rewriter.inline_block(inner.body.block, InsertPoint.at_end(new_body), [new_body.args[1]])
        assert isinstance(new_body.last_op, scf.YieldOp)
        rewriter.erase(new_body.last_op)
        rewriter.replace_all_uses_with(body.args[0], new_body.args[0])
        new_body.add_op(scf.ReduceOp())
        collapsed = scf.ParallelOp([op.lowerBound[0], inner.lb], [op.upperBound[0], inner.ub],
                                   [op.step[0], inner.step], Region(new_body))
        collapsed.attributes.update(op.attributes)
        rewriter.replace(op, [collapsed], [])


@dataclass(frozen=True)
class CollapseParallelPass(ModulePass):
    """collapse-parallel: a parallel loop around one serial loop becomes a 2-d parallel loop (collapse(2))."""

    name = "collapse-parallel"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(CollapseParallel(), apply_recursively=False).rewrite_module(op)
