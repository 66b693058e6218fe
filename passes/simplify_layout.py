"""`simplify-layout`: Transpose / Reshape chains as exporters emit them.

- permute_dims of permute_dims is one permute_dims (out dim i of the outer
  is the inner's dim p2[i], which is x's dim p1[p2[i]]); the identity
  permutation is removed, and one that moves only axes of extent 1 is a
  reshape;
- a chain of reshape-like ops (reshape, flatten, squeeze, expand_dims: none
  moves an element in row-major order) is one reshape to the last one's
  deduced shape; a reshape-like op to exactly its operand's type is removed;
- reshape(permute_dims(reshape(x))) that regroups only leading dims and
  swaps the last two axes (the dynamo exporter's K^T, through a rank-3
  batch) is permute_dims(x) swapping x's last two axes, after one reshape
  of x's leading dims where the result's differ: each matrix of the batch
  is transposed either way;
- a constant scalar factor on a transposed right operand of a matmul moves
  to the left operand: matmul(x, permute_dims(y) * c) becomes
  matmul(x * c, permute_dims(y)). torch's attention scales both q and K^T by
  the fourth root of the head size; on K^T that is a pass over the whole
  key cache, and it hides the transpose that offload reads as a BLAS flag.
  The product is the same up to rounding (c is finite and nonzero).

- a take of one constant index along an axis moves through the layout ops
  before it, towards the tensor they rearrange: through permute_dims (the
  take of the axis it came from, then the other axes permuted), through a
  reshape-like op where the axis is one of its operand's (the take there,
  then the reshape), and where the axis splits one of its operand's (A*M
  into A, M: a strided_slice of that axis, then the reshape). torch's
  nn.MultiheadAttention splits its packed q, k and v projection as
  reshape, permute_dims, squeeze, then a take per projection: the
  intermediate with three users was copied whole before each take copied
  its third again; afterwards each projection is one copy from the GEMM's
  result.

A permute_dims of a constant (a transposed weight before a matmul) is
fold-constants' work. Ops left without users are erased; the element-count
equality a chain relied on is still recorded by the single reshape's shape
rule (proved, or checked at run time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy
from relax_xdsl.dialects.relax import GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, constant_array, graph_op, single_user
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

from relax_xdsl.shape import canon, dims_equal, is_one

RESHAPE_LIKE = frozenset({"reshape", "flatten", "squeeze", "expand_dims"})


def _is(op: Operation | None, names: frozenset[str] | str) -> bool:
    return isinstance(op, GraphOp) and (op.SPEC.name == names if isinstance(names, str) else op.SPEC.name in names)


def permutation(op: GraphOp) -> tuple[int, ...]:
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
        perm, src = permutation(op), op.inputs[0]
        if perm == tuple(range(len(perm))) and src.type == op.res.type:
            rewriter.replace(op, [], [src])
            return
        shape = src.type.sym_shape  # type: ignore[union-attr]
        moved = [a for a in perm if not is_one(shape[a])]
        if moved == sorted(moved):  # only axes of extent 1 move: no element moves
            rewriter.replace(op, [graph_op("reshape", [src], op.res.type, shape=list(op.res.type.sym_shape))])  # type: ignore[union-attr]
            return
        inner = src.owner
        if not _is(inner, "permute_dims"):
            return
        assert isinstance(inner, GraphOp)
        p1 = permutation(inner)
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


def swaps_last_two(perm: tuple[int, ...]) -> bool:
    n = len(perm)
    return n >= 2 and perm == (*range(n - 2), n - 1, n - 2)


class BatchedTransposeThroughReshapes(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is(op, RESHAPE_LIKE):
            return
        assert isinstance(op, GraphOp)
        permute = op.inputs[0].owner
        if not _is(permute, "permute_dims") or single_user(op.inputs[0]) is not op:
            return
        assert isinstance(permute, GraphOp)
        inner = permute.inputs[0].owner
        if not _is(inner, RESHAPE_LIKE) or not swaps_last_two(permutation(permute)):
            return
        assert isinstance(inner, GraphOp)
        x, mid, out = inner.inputs[0].type, inner.res.type, op.res.type
        if not all(isinstance(t, TensorType) and t.ndim >= 2 for t in (x, mid, out)):
            return
        xs, ms, os_ = x.sym_shape, mid.sym_shape, out.sym_shape  # type: ignore[union-attr]
        if not (dims_equal(xs[-1], ms[-1]) and dims_equal(xs[-2], ms[-2])
                and dims_equal(os_[-2], xs[-1]) and dims_equal(os_[-1], xs[-2])):
            return
        src = inner.inputs[0]
        new: list[GraphOp] = []
        lead = list(os_[:-2])
        if not (len(xs) == len(os_) and all(dims_equal(a, b) for a, b in zip(xs[:-2], lead))):
            regroup = graph_op("reshape", [src], shape=[*lead, xs[-2], xs[-1]])
            new.append(regroup)
            src = regroup.res
        n = len(os_)
        new.append(graph_op("permute_dims", [src], out, axes=[*range(n - 2), n - 1, n - 2]))
        rewriter.replace(op, new, [new[-1].res])
        rewriter.erase(permute)
        if not inner.res.uses:
            rewriter.erase(inner)


def _scalar_factor(value: SSAValue) -> bool:
    """Whether `value` is a constant of one finite, nonzero element."""
    array = constant_array(value)
    return array is not None and array.size == 1 and bool(np.isfinite(array).all()) and bool((array != 0).all())


class MoveScaleOffTransposedOperand(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is(op, "matmul"):
            return
        assert isinstance(op, GraphOp)
        x, y = op.inputs
        scale = y.owner
        if not _is(scale, "multiply") or single_user(y) is not op:
            return
        assert isinstance(scale, GraphOp)
        a, b = scale.inputs
        factor, transposed = (a, b) if _scalar_factor(a) else (b, a)
        if not _scalar_factor(factor) or not _is(transposed.owner, "permute_dims") or transposed.type != y.type:
            return
        scaled = graph_op("multiply", [x, factor])
        if scaled.res.type != x.type:
            return  # (the factor's rank would broadcast x)
        product = graph_op("matmul", [scaled.res, transposed], op.res.type)
        rewriter.replace(op, [scaled, product], [product.res])
        rewriter.erase(scale)


def _static(d: object) -> int | None:
    return int(d) if isinstance(d, int) or getattr(d, "is_Integer", False) else None  # type: ignore[call-overload]


def _product(dims: Sequence[object]) -> sympy.Expr:
    return sympy.Mul(*[canon(d) for d in dims])  # type: ignore[arg-type]


class TakeConstantIndexThroughLayout(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is(op, "take"):
            return
        assert isinstance(op, GraphOp)
        src, indices = op.inputs
        index, layout = constant_array(indices), src.owner
        axis = op.SPEC.decode_params(dict(op.attributes))["axis"]
        if (index is None or index.shape != () or axis is None
                or not (_is(layout, "permute_dims") or _is(layout, RESHAPE_LIKE))):
            return
        assert isinstance(layout, GraphOp)
        shape = src.type.sym_shape  # type: ignore[union-attr]
        a = axis % len(shape)
        extent = _static(shape[a])
        c = int(index)
        if extent is None or not -extent <= c < extent:
            return  # (the take's own check reports it when it runs)
        c %= extent
        y = layout.inputs[0]
        if _is(layout, "permute_dims"):
            perm = permutation(layout)
            taken = graph_op("take", [y, indices], axis=perm[a])
            rest = [q - (q > perm[a]) for q in perm if q != perm[a]]
            new = [taken, graph_op("permute_dims", [taken.res], op.res.type, axes=rest)]
        else:
            first = _take_before_reshape(y, indices, c, extent, shape[:a], shape[a + 1:])
            if first is None:
                return
            new = [first, graph_op("reshape", [first.res], op.res.type, shape=list(op.res.type.sym_shape))]  # type: ignore[union-attr]
        rewriter.replace(op, new, [new[-1].res])
        if not layout.res.uses:
            rewriter.erase(layout)


def _take_before_reshape(y: SSAValue, indices: SSAValue, c: int, extent: int, before: Sequence[object],
                         after: Sequence[object]) -> GraphOp | None:
    """What a take of index c (of `extent`) along the axis between dims
    `before` and `after` of a reshape of y is on y itself: a take of y's axis
    j when that axis is it (the dims before it hold as many elements as
    `before`), or a strided_slice of y's axis j when that axis is it and
    the first dims of `after` flattened (extent * width); None otherwise."""
    ys = y.type.sym_shape  # type: ignore[union-attr]
    lead, inner = _product(before), _product(after)
    for j in range(len(ys)):
        tail = _product(ys[j + 1:])
        if not (dims_equal(_product(ys[:j]), lead) and dims_equal(ys[j] * tail, extent * inner)):
            continue
        if dims_equal(ys[j], extent) and dims_equal(tail, inner):
            return graph_op("take", [y, indices], axis=j)
        width = _static(sympy.simplify(inner / tail))
        if width is not None and width >= 1 and dims_equal(ys[j], extent * width):
            return graph_op("strided_slice", [y], axes=[j], begin=[c * width], end=[(c + 1) * width])
    return None


def simplify_layout(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier(
        [SimplifyPermuteDims(), SimplifyReshape(), BatchedTransposeThroughReshapes(), MoveScaleOffTransposedOperand(),
         TakeConstantIndexThroughLayout(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class SimplifyLayoutPass(ModulePass):
    """simplify-layout: permute_dims and reshape chains collapsed, identities
    removed, a scalar factor moved off a transposed matmul operand."""

    name = "simplify-layout"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        simplify_layout(op)
