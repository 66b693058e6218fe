"""`simplify-layout`: Transpose / Reshape chains as exporters emit them.

- permute_dims of permute_dims is one permute_dims (out dim i of the outer
  is the inner's dim p2[i], which is x's dim p1[p2[i]]); the identity
  permutation is removed;
- a chain of reshape-like ops (reshape, flatten, squeeze, expand_dims: none
  moves an element in row-major order) is one reshape to the last one's
  deduced shape; a reshape-like op to exactly its operand's type is removed.

A permute_dims of a constant (a transposed weight before a matmul) is
fold-constants' work. Ops left without users are erased; the element-count
equality a chain relied on is still recorded by the single reshape's shape
rule (proved, or checked at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

from relax_xdsl.dialects.relax import GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, graph_op
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

RESHAPE_LIKE = frozenset({"reshape", "flatten", "squeeze", "expand_dims"})


def _is(op: Operation | None, names: frozenset[str] | str) -> bool:
    return isinstance(op, GraphOp) and (op.SPEC.name == names if isinstance(names, str) else op.SPEC.name in names)


def _perm(op: GraphOp) -> tuple[int, ...]:
    axes = op.SPEC.decode_params(dict(op.attributes))["axes"]
    ndim = op.res.type.ndim  # type: ignore[union-attr]
    return tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)


def _replace_or_remove(op: GraphOp, rewriter: PatternRewriter, new: GraphOp | SSAValue) -> None:
    """Replaces op by a new op or by an existing value (of op's exact
    type); the producer op read is erased when nothing else uses it."""
    inner = op.inputs[0].owner
    if isinstance(new, SSAValue):
        rewriter.replace(op, [], [new])
    else:
        rewriter.replace(op, [new], [new.res])
    if isinstance(inner, GraphOp) and not inner.res.uses:
        rewriter.erase(inner)


class SimplifyPermuteDims(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is(op, "permute_dims"):
            return
        assert isinstance(op, GraphOp)
        perm, src = _perm(op), op.inputs[0]
        if perm == tuple(range(len(perm))) and src.type == op.res.type:
            rewriter.replace(op, [], [src])
            return
        inner = src.owner
        if not _is(inner, "permute_dims"):
            return
        assert isinstance(inner, GraphOp)
        p1 = _perm(inner)
        composed = tuple(p1[a] for a in perm)
        x = inner.inputs[0]
        if composed == tuple(range(len(composed))) and x.type == op.res.type:
            _replace_or_remove(op, rewriter, x)
            return
        new = graph_op("permute_dims", [x], op.res.type, axes=list(composed))
        _replace_or_remove(op, rewriter, new)


class SimplifyReshape(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is(op, RESHAPE_LIKE):
            return
        assert isinstance(op, GraphOp)
        src, out = op.inputs[0], op.res.type
        if src.type == out:
            rewriter.replace(op, [], [src])
            return
        inner = src.owner
        if not _is(inner, RESHAPE_LIKE) or not isinstance(out, TensorType):
            return
        assert isinstance(inner, GraphOp)
        x = inner.inputs[0]
        if x.type == out:
            _replace_or_remove(op, rewriter, x)
            return
        new = graph_op("reshape", [x], out, shape=list(out.sym_shape))
        _replace_or_remove(op, rewriter, new)


def simplify_layout(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier(
        [SimplifyPermuteDims(), SimplifyReshape(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class SimplifyLayoutPass(ModulePass):
    """simplify-layout: permute_dims and reshape chains collapsed, identities removed."""

    name = "simplify-layout"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        simplify_layout(op)
