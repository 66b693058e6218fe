"""`expand-power`: `power(x, c)` with c a constant 1, 2, 3 or 4 becomes
multiplies.

Exporters write squares and cubes as Pow: LayerNorm's variance as
Pow(x - mean, 2), GPT-2's tanh GELU as Pow(x, 3). The generic power is a
libm `powf` call per element, scalar and about ten times the cost of the
product. For floats the multiplies round once or twice instead of once,
and give the same inf, -inf, NaN and signed zero; for integers they are the
same wrapping product. Other exponents (0.5 among them: powf(-0, 0.5) is
+0 where sqrt gives -0) keep the power. The exponent must be one value
broadcast over x, so the result type is x's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from relax_xdsl.dialects.relax import GraphOp
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, constant_array, graph_op
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

EXPANDED = (1, 2, 3, 4)


def _constant_exponent(value: SSAValue) -> int | None:
    """The exponent when `value` is a constant holding one of EXPANDED in
    every element, else None."""
    array = constant_array(value)
    if array is None or array.size == 0:
        return None
    flat = array.reshape(-1)
    first = flat[0]
    if not np.all(flat == first):  # NaN never equals itself, so it stays a power
        return None
    for k in EXPANDED:
        if first == k:
            return k
    return None


class ExpandPower(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not (isinstance(op, GraphOp) and op.SPEC.name == "power"):
            return
        x, exponent = op.inputs
        k = _constant_exponent(exponent)
        if k is None or x.type != op.res.type:
            return
        if k == 1:
            rewriter.replace(op, [], [x])
            return
        square = graph_op("multiply", [x, x], x.type)
        new: list[GraphOp] = [square]
        if k == 3:
            new.append(graph_op("multiply", [square.res, x], x.type))
        elif k == 4:
            new.append(graph_op("multiply", [square.res, square.res], x.type))
        rewriter.replace(op, new, [new[-1].res])


def expand_power(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier([ExpandPower(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class ExpandPowerPass(ModulePass):
    """expand-power: power by a constant 1, 2, 3 or 4 as multiplies."""

    name = "expand-power"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        expand_power(op)
