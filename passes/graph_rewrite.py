"""Small helpers the graph-level rewrites share (fold-constants,
fold-batch-norm, simplify-layout): reading a value as a constant array,
building a graph op whose result type its shape rule deduces, erasing
constants nothing uses any more, and splat constants (one value stored for
every element) read and made without expanding them.

A replacement value must keep the exact type of the value it replaces
(relax.return and relax.output compare types exactly), so `graph_op` can be
given the old result type, which the op's verifier then checks against the
deduced one by provable equality.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GraphOp, TensorType, TupleOp, stored_elements
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from relax_xdsl import dtypes
from relax_xdsl.ops.registry import get_spec


def constant_array(value: SSAValue) -> np.ndarray | None:
    """The array of a value defined by relax.constant, else None."""
    owner = value.owner
    return owner.to_array() if isinstance(owner, ConstantOp) else None


def graph_op(name: str, operands: Sequence[SSAValue], result_type: Attribute | None = None, **params: Any) -> GraphOp:
    """A new `relax.<name>` op (not inserted); its result type is the
    deduced one unless `result_type` is given."""
    spec = get_spec(name)
    attrs = spec.param_attrs(params)
    if result_type is None:
        result_type, _ = spec.run_infer([v.type for v in operands], spec.decode_params(attrs))
    return spec.op_class.create(operands=list(operands), result_types=[result_type], attributes=attrs)


def single_user(value: SSAValue) -> Operation | None:
    """The one operation using `value` once, or None."""
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


class EraseUnusedConstant(RewritePattern):
    """A relax.constant (or a tuple of values) that nothing uses: weights
    replaced by folded ones must not stay in the module."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, (ConstantOp, TupleOp)) and not any(r.uses for r in op.results):
            rewriter.erase(op)


def splat_value(value: SSAValue) -> np.ndarray | None:
    """The one element (a 0-d array) of a splat constant of two or more
    elements, without expanding it; else None."""
    owner = value.owner
    if not isinstance(owner, ConstantOp) or prod(owner.value.get_shape() or ()) < 2:
        return None
    stored = stored_elements(owner.value)
    return stored.reshape(()) if stored.size == 1 else None


def splat_constant(scalar: np.ndarray, t: TensorType) -> ConstantOp:
    """A constant of type t holding `scalar` in every element, stored once."""
    return ConstantOp.from_array(scalar.astype(dtypes.np_dtype(t.dtype)), splat_shape=[int(d) for d in t.sym_shape])
