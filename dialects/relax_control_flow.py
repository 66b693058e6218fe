"""Control flow in the graph dialect: `relax.if`, `relax.while` and
`relax.call` (Relax's If, loops, and calls between functions, recursion
included).

Values keep symbolic shapes across control flow the way `match_cast` does:
a result type (of an if, a call, a loop) or a loop-carried block argument
type may name symbols that are not bound yet; they are bound from the value
that arrives at run time (whichever branch ran, whatever the callee
returned, each iteration's carried values), and every dim whose symbols are
already bound is checked. So the branches of an if may give different
shapes (`[n, 4]` and `[m, 4]` join as a fresh `[s0, 4]`), and a loop may
grow a tensor every iteration (`[k, 4]`, k re-bound per iteration).
"""

from __future__ import annotations

from collections.abc import Sequence

from relax_xdsl.dialects.relax import FunctionOp, PrimType, ShapeType, TensorType, is_value_type
from xdsl.dialects.builtin import SymbolRefAttr, TupleType
from xdsl.ir import Attribute, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    prop_def,
    region_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import HasParent, IsTerminator, SymbolTable
from xdsl.utils.exceptions import VerifyException


def compatible(value: Attribute, target: Attribute) -> str | None:
    """Why a value of type `value` can never have type `target` (kind,
    dtype, rank), or None when run-time dims may agree."""
    if isinstance(value, TensorType) and isinstance(target, TensorType):
        if value.element_type != target.element_type:
            return f"dtype {value.dtype} is not {target.dtype}"
        if value.ndim != target.ndim:
            return f"rank {value.ndim} is not {target.ndim}"
        return None
    if isinstance(value, ShapeType) and isinstance(target, ShapeType):
        n, m = len(value.dims.data), len(target.dims.data)
        return None if n == m else f"a shape of {n} dims is not one of {m}"
    if isinstance(value, PrimType) and isinstance(target, PrimType):
        return None if value.element_type == target.element_type else f"scalar {value.dtype} is not {target.dtype}"
    if isinstance(value, TupleType) and isinstance(target, TupleType):
        if len(value.types.data) != len(target.types.data):
            return f"a tuple of {len(value.types.data)} is not one of {len(target.types.data)}"
        for i, (a, b) in enumerate(zip(value.types.data, target.types.data)):
            why = compatible(a, b)
            if why:
                return f"field {i}: {why}"
        return None
    return f"{value} is not {target}"


def _check_values(op: IRDLOperation, what: str, values: Sequence[Attribute], targets: Sequence[Attribute]) -> None:
    if len(values) != len(targets):
        raise VerifyException(f"{op.name}: {what} gives {len(values)} values, {len(targets)} expected")
    for i, (v, t) in enumerate(zip(values, targets)):
        if not is_value_type(t):
            raise VerifyException(f"{op.name}: {what}: type #{i} {t} is not a relax type")
        why = compatible(v, t)
        if why:
            raise VerifyException(f"{op.name}: {what} value #{i}: {why}")


@irdl_op_definition
class IfOp(IRDLOperation):
    """`%r = relax.if %c : !relax.tensor<[], i1> -> (T) { ... } else { ... }`:
    runs one branch on a 0-d bool tensor; each branch ends with `relax.yield`
    of values whose types are compatible with the results (same kind, dtype
    and rank); the result types' unbound symbols are bound from the values
    the branch that ran gives."""

    name = "relax.if"
    cond = operand_def(TensorType)
    outs = var_result_def()
    then_region = region_def("single_block")
    else_region = region_def("single_block")
    assembly_format = "$cond attr-dict `:` type($cond) `->` `(` type($outs) `)` $then_region `else` $else_region"

    def __init__(self, cond: SSAValue, result_types: Sequence[Attribute], then_region: Region, else_region: Region):
        super().__init__(operands=[cond], result_types=[result_types], regions=[then_region, else_region])

    def verify_(self) -> None:
        t = self.cond.type
        if not isinstance(t, TensorType) or t.ndim != 0 or t.dtype != "bool":
            raise VerifyException(f"relax.if: the condition must be !relax.tensor<[], i1>, not {t}")
        for name, region in (("then", self.then_region), ("else", self.else_region)):
            block = region.block
            if block.args:
                raise VerifyException(f"relax.if: the {name} branch takes no block arguments")
            term = block.last_op
            if not isinstance(term, YieldOp):
                raise VerifyException(f"relax.if: the {name} branch must end with relax.yield")
            _check_values(self, f"the {name} branch", [v.type for v in term.values], [r.type for r in self.outs])


@irdl_op_definition
class WhileOp(IRDLOperation):
    """`%r = relax.while (%a0, %b0) : (A0, B0) -> (R0, R1) { ^bb0(%a: A, %b: B): ...
    relax.condition %c : ..., %a, %b : A, B } do { ^bb0(%a: A, %b: B): ... relax.yield ... }`:
    a loop with the semantics of scf.while. The carried block arguments'
    types may name symbols of their own: they are bound afresh from the
    carried values on every entry into a region (a tensor may grow each
    iteration); dims over symbols bound outside the loop are checked. The
    results are the values the condition left with."""

    name = "relax.while"
    inits = var_operand_def()
    outs = var_result_def()
    before = region_def("single_block")
    after = region_def("single_block")
    assembly_format = "`(` $inits `)` attr-dict `:` functional-type($inits, $outs) $before `do` $after"

    def __init__(self, inits: Sequence[SSAValue], result_types: Sequence[Attribute], before: Region, after: Region):
        super().__init__(operands=[inits], result_types=[result_types], regions=[before, after])

    def verify_(self) -> None:
        carried = [a.type for a in self.before.block.args]
        if [a.type for a in self.after.block.args] != carried:
            raise VerifyException("relax.while: the before and do regions must take the same block arguments")
        _check_values(self, "the initial values", [v.type for v in self.inits], carried)
        cond = self.before.block.last_op
        if not isinstance(cond, ConditionOp):
            raise VerifyException("relax.while: the before region must end with relax.condition")
        t = cond.cond.type
        if not isinstance(t, TensorType) or t.ndim != 0 or t.dtype != "bool":
            raise VerifyException(f"relax.while: the condition must be !relax.tensor<[], i1>, not {t}")
        _check_values(self, "relax.condition", [v.type for v in cond.values], carried)
        _check_values(self, "relax.condition (the results)", [v.type for v in cond.values], [r.type for r in self.outs])
        body = self.after.block.last_op
        if not isinstance(body, YieldOp):
            raise VerifyException("relax.while: the do region must end with relax.yield")
        _check_values(self, "the do region", [v.type for v in body.values], carried)


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Ends a branch of `relax.if` or the body of `relax.while`."""

    name = "relax.yield"
    values = var_operand_def()
    assembly_format = "($values^ `:` type($values))? attr-dict"
    traits = traits_def(IsTerminator(), HasParent(IfOp, WhileOp))

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[values])


@irdl_op_definition
class ConditionOp(IRDLOperation):
    """Ends the `before` region of `relax.while`: go on with the values into
    the body while the 0-d bool `cond` is true, else leave with them."""

    name = "relax.condition"
    cond = operand_def(TensorType)
    values = var_operand_def()
    assembly_format = "$cond attr-dict `:` type($cond) (`,` $values^ `:` type($values))?"
    traits = traits_def(IsTerminator(), HasParent(WhileOp))

    def __init__(self, cond: SSAValue, *values: SSAValue):
        super().__init__(operands=[cond, values])


@irdl_op_definition
class CallOp(IRDLOperation):
    """`%r = relax.call @f(%x) : (!relax.tensor<[n], f32>) -> !relax.tensor<[s0], f32>`:
    calls another relax.function of the module (recursion included). The
    arguments must fit the callee's parameters, which bind the callee's own
    symbols; the result types' unbound symbols are bound from what it returns."""

    name = "relax.call"
    callee = prop_def(SymbolRefAttr)
    args = var_operand_def()
    outs = var_result_def()
    assembly_format = "$callee `(` $args `)` attr-dict `:` functional-type($args, $outs)"

    def __init__(self, callee: str | SymbolRefAttr, args: Sequence[SSAValue], result_types: Sequence[Attribute]):
        ref = SymbolRefAttr(callee) if isinstance(callee, str) else callee
        super().__init__(operands=[args], result_types=[result_types], properties={"callee": ref})

    def callee_function(self) -> FunctionOp:
        target = SymbolTable.lookup_symbol(self, self.callee)
        name = self.callee.string_value()
        if target is None:
            raise VerifyException(f"relax.call: callee @{name} does not exist")
        if not isinstance(target, FunctionOp):
            raise VerifyException(f"relax.call: @{name} is a {target.name}, not a relax.function")
        return target

    def verify_(self) -> None:
        fn = self.callee_function()
        ftype = fn.function_type
        _check_values(self, f"the arguments of @{self.callee.string_value()}", [v.type for v in self.args],
                      list(ftype.inputs.data))
        _check_values(self, f"the results of @{self.callee.string_value()}", list(ftype.outputs.data),
                      [r.type for r in self.outs])


CONTROL_FLOW_OPS = [IfOp, YieldOp, WhileOp, ConditionOp, CallOp]


__all__ = ["CONTROL_FLOW_OPS", "CallOp", "ConditionOp", "IfOp", "WhileOp", "YieldOp", "compatible"]
