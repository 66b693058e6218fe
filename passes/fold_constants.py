"""`fold-constants`: a graph op whose operands are all relax.constant is
replaced by the constant its numpy reference computes (the evaluator's
semantics, so every target agrees with it).

Only ops with at least one operand and a static result type (a tensor, or
a tuple of tensors, every dim an integer) fold: a data-dependent op whose
result type is static is as pure as any other, and ops without operands
(creation, seeded random) gain nothing from becoming stored data.

A tiny model can ask for a huge constant (ConstantOfShape / Expand / Tile to
tens of GB). The result size is computed from the static type *before* the
reference runs, and a result bigger than `max(FOLD_CAP_BYTES, total bytes
of its inputs)` stays an op, computed at run time. An op whose reference
fails (an index out of range, a bad value) also stays, so the error is
raised when the program runs, as without the pass. `get_item` of a tuple
value becomes the field, and constants left unused are erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GetItemOp, GraphOp, TensorType, TupleOp
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, constant_array
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TupleType
from xdsl.ir import Attribute, Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

from relax_xdsl import dtypes
from relax_xdsl.errors import RelaxError

FOLD_CAP_BYTES = 16 * 2**20
"""A folded result may be this big, or as big as its inputs together."""


def _static_tensor_types(t: Attribute) -> list[TensorType] | None:
    types = list(t.types.data) if isinstance(t, TupleType) else [t]
    if not all(isinstance(x, TensorType) and all(d.is_Integer for d in x.sym_shape) for x in types):
        return None
    return types  # type: ignore[return-value]


def result_bytes(types: list[TensorType]) -> int:
    return sum(prod(int(d) for d in t.sym_shape) * dtypes.np_dtype(t.dtype).itemsize for t in types)


def _fits(array: object, t: TensorType) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.name == t.dtype \
        and array.shape == tuple(int(d) for d in t.sym_shape)


class FoldConstantOp(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or not op.inputs:
            return
        types = _static_tensor_types(op.res.type)
        if types is None:
            return
        arrays = [constant_array(v) for v in op.inputs]
        if any(a is None for a in arrays):
            return
        if result_bytes(types) > max(FOLD_CAP_BYTES, sum(a.nbytes for a in arrays)):  # type: ignore[union-attr]
            return  # left to run time: never computed here
        spec = op.SPEC
        params = spec.decode_params(dict(op.attributes))
        for name, p in spec.params.items():
            if p.kind == "dims" and params.get(name) is not None:
                if not all(isinstance(d, int) or getattr(d, "is_Integer", False) for d in params[name]):
                    return
                params[name] = tuple(int(d) for d in params[name])
        try:
            with np.errstate(all="ignore"):
                result = spec.reference(*arrays, **params)
        except (RelaxError, ArithmeticError, ValueError, IndexError):
            return  # raised again when the op runs
        results = list(result) if isinstance(op.res.type, TupleType) else [result]
        if len(results) != len(types) or not all(_fits(a, t) for a, t in zip(results, types)):
            return
        consts = [ConstantOp.from_array(a) for a in results]
        if isinstance(op.res.type, TupleType):
            tup = TupleOp(*(c.result for c in consts))
            rewriter.replace(op, [*consts, tup], [tup.result])
        else:
            rewriter.replace(op, consts, [consts[0].result])


class FoldGetItemOfTuple(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, GetItemOp) and isinstance(op.tuple_value.owner, TupleOp):
            field = op.tuple_value.owner.fields[op.index.data]
            if field.type == op.result.type:
                rewriter.replace(op, [], [field])


def fold_constants(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier(
        [FoldConstantOp(), FoldGetItemOfTuple(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class FoldConstantsPass(ModulePass):
    """fold-constants: graph ops on constants become constants (size-capped)."""

    name = "fold-constants"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fold_constants(op)
