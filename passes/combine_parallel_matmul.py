"""`combine-parallel-matmul`: matmuls of one left operand by several
constant matrices (attention's q, k and v projections, a gated MLP's gate
and up projections) become one matmul by the matrices side by side; each
former result is a `strided_slice` of its columns, which fusion folds into
the reshape / transpose that follows. One GEMM reads the left operand once,
packs one weight matrix and runs one parallel region where there were
several: at a few rows (a decode step, a short sequence) each call's fixed
cost is a large part of its time. TVM's CombineParallelMatmul does the same.

When every matmul of the group is followed by the add of a constant bias
row (the dense form `offload{lib=blas}` turns into one GEMM with the bias as
its C operand), the biases are joined too and the adds are replaced.

Conditions: the same left operand (one SSA value) in one block, right
operands 2-D constants with its dtype and the same row count, no
`out_dtype`; at least two such matmuls. The joined constant is built at
compile time (the originals are erased once unused)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, constant_array, graph_op, single_user
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.rewriter import InsertPoint

from relax_xdsl.ops.registry import types_match


def _weight(op: Operation, x: SSAValue) -> np.ndarray | None:
    """The constant matrix of `matmul(x, W)`, when it can join a group."""
    if not isinstance(op, GraphOp) or op.SPEC.name != "matmul" or op.inputs[0] is not x:
        return None
    if op.attributes.get("out_dtype") is not None:
        return None
    w = constant_array(op.inputs[1])
    t = x.type
    if w is None or w.ndim != 2 or not isinstance(t, TensorType) or t.ndim < 2 or w.dtype.name != t.dtype:
        return None
    return w


def _bias(op: GraphOp) -> tuple[GraphOp, np.ndarray] | None:
    """(the add, its bias row) when op's only user adds a constant row of its width and keeps its type."""
    add = single_user(op.res)
    if not isinstance(add, GraphOp) or add.SPEC.name != "add" or not types_match(add.res.type, op.res.type):
        return None
    others = [v for v in add.inputs if v is not op.res]
    if len(others) != 1 or (c := constant_array(others[0])) is None:
        return None
    width = op.res.type.sym_shape[-1]  # type: ignore[union-attr]
    if c.dtype.name != op.res.type.dtype or not width.is_Integer:  # type: ignore[union-attr]
        return None
    if any(d != 1 for d in c.shape[:-1]) or c.ndim > op.res.type.ndim or c.shape[-1:] != (int(width),):  # type: ignore
        return None
    return add, c.reshape(-1)


class CombineParallelMatmul(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.SPEC.name != "matmul":
            return
        x = op.inputs[0]
        w0 = _weight(op, x)
        if w0 is None:
            return
        block = op.parent_block()
        group: list[tuple[GraphOp, np.ndarray]] = []
        for use in x.uses:
            user = use.operation
            if use.index == 0 and user.parent_block() is block and (w := _weight(user, x)) is not None \
                    and w.shape[0] == w0.shape[0]:
                group.append((user, w))  # type: ignore[arg-type]
        if len(group) < 2:
            return
        order = {o: i for i, o in enumerate(block.ops)}  # type: ignore[union-attr]
        group.sort(key=lambda g: order[g[0]])
        if group[0][0] is not op:
            return  # rewritten once, from the first of the group
        biases = [_bias(m) for m, _ in group]
        with_bias = all(b is not None for b in biases)
        joined = ConstantOp.from_array(np.concatenate([w for _, w in group], axis=1))
        new: list[Operation] = [joined]
        product = graph_op("matmul", [x, joined.result])
        new.append(product)
        y = product.res
        if with_bias:
            row = ConstantOp.from_array(np.concatenate([b[1] for b in biases]))  # type: ignore[index]
            add = graph_op("add", [y, row.result])
            new += [row, add]
            y = add.res
        slices: list[tuple[SSAValue, GraphOp]] = []
        offset = 0
        for (m, w), b in zip(group, biases):
            old = b[0].res if with_bias else m.res  # type: ignore[index]
            width = w.shape[1]
            piece = graph_op("strided_slice", [y], old.type, axes=[-1], begin=[offset], end=[offset + width])
            offset += width
            new.append(piece)
            slices.append((old, piece))
        rewriter.insert(new, InsertPoint.before(op))
        for old, piece in slices:
            rewriter.replace_all_uses_with(old, piece.res)
        for (m, _), b in zip(group, biases):
            if with_bias:
                rewriter.erase(b[0])  # type: ignore[index]
            rewriter.erase(m)


def combine_parallel_matmul(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier([CombineParallelMatmul(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class CombineParallelMatmulPass(ModulePass):
    """combine-parallel-matmul: matmuls of one operand by several constant
    matrices as one matmul by the matrices side by side, sliced after."""

    name = "combine-parallel-matmul"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        combine_parallel_matmul(op)
