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

Splats (one value repeated) fold at any size, within a budget per module
(SPLAT_BUDGET_BYTES), because the IR stores them as that one value: a static `full` / `zeros` /
`ones` becomes a splat constant, and a layout op (permute_dims, reshape,
broadcast_to, ...) or an elementwise op of splats becomes one. The program
then reads a buffer made once, when the executable loads, rather than
filling and transposing it on every call. This is what onnxruntime's
constant folding does at session creation for exported ConstantOfShape
weights (onnx's light zoo models are built that way: AlexNet's
9216x4096 fully connected weight is a ConstantOfShape behind a Gemm's
transB).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GetItemOp, GraphOp, TensorType, TupleOp
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, constant_array, splat_constant, splat_value
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TupleType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

from relax_xdsl import dtypes
from relax_xdsl.errors import RelaxError
from relax_xdsl.limits import max_alloc_bytes
from relax_xdsl.ops.registry import BROADCAST, ELEMWISE

FOLD_CAP_BYTES = 16 * 2**20
"""A folded result may be this big, or as big as its inputs together."""


FILLS = ("full", "zeros", "ones")
SPLAT_LAYOUT = ("permute_dims", "reshape", "broadcast_to", "expand_dims", "squeeze", "flatten", "tile")
"""Ops whose result, from a splat, is the same splat in another shape."""


SPLAT_BUDGET_BYTES = 4 * 2**30
"""How many bytes the splats folded in one module may expand to together
(when the executable loads), at most the allocation limit. Past it, fills
stay ops and run on every call, as without folding: a tiny hostile model
asking for many huge fills costs nothing until it runs."""


class FoldSplat(RewritePattern):
    """A static fill, or a layout / elementwise op of splats, becomes a splat
    constant (see the module docstring), within SPLAT_BUDGET_BYTES."""

    def __init__(self) -> None:
        self.budget = min(SPLAT_BUDGET_BYTES, max_alloc_bytes())

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp):
            return
        spec = op.SPEC
        name = spec.name
        if not (name in FILLS or name in SPLAT_LAYOUT or spec.pattern in (ELEMWISE, BROADCAST)):
            return
        types = _static_tensor_types(op.res.type)
        if types is None or isinstance(op.res.type, TupleType):
            return
        (t,) = types
        count = prod(int(d) for d in t.sym_shape)
        if count < 2 or result_bytes(types) > self.budget:
            return
        params = spec.decode_params(dict(op.attributes))
        if name in FILLS:
            if op.inputs:
                return
            scalar: np.ndarray | None = spec.reference(**{**params, "shape": ()})
        else:
            scalars = [_scalar_constant(v) for v in op.inputs]
            if not op.inputs or any(s is None for s in scalars) or all(splat_value(v) is None for v in op.inputs):
                return
            if name in SPLAT_LAYOUT:
                scalar = scalars[0]
            else:
                try:
                    with np.errstate(all="ignore"):
                        scalar = spec.reference(*scalars, **params)
                except (RelaxError, ArithmeticError, ValueError, IndexError, TypeError):
                    return
        if not isinstance(scalar, np.ndarray) or scalar.size != 1 or dtypes.dtype_name(scalar.dtype) != t.dtype:
            return
        self.budget -= result_bytes(types)  # a replaced splat still counts: the budget errs low
        rewriter.replace(op, [splat_constant(scalar.reshape(()), t)], None)


def _scalar_constant(value: SSAValue) -> np.ndarray | None:
    """The one value of a splat or rank-0 constant, as a 0-d array; else None."""
    t = value.type
    if isinstance(value.owner, ConstantOp) and isinstance(t, TensorType) and t.ndim == 0:
        return constant_array(value).reshape(())
    return splat_value(value)


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
        if any(splat_value(v) is not None and result_bytes([v.type]) > FOLD_CAP_BYTES for v in op.inputs):  # type: ignore[list-item]
            return  # a big splat is expanded once, when the executable loads, not here
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
        [FoldSplat(), FoldConstantOp(), FoldGetItemOfTuple(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class FoldConstantsPass(ModulePass):
    """fold-constants: graph ops on constants become constants (size-capped)."""

    name = "fold-constants"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fold_constants(op)
