"""Which graph values share storage, for `relax.call_tir_inplace`.

An in-place call writes into the buffer of an input, so every value that
may be that same buffer sees the write: the input itself, what it was
`match_cast` from or to, a tuple holding it and its fields, a dataflow
block's result and the value it yields, and a reshape-like op's result and
its input (the host views the data instead of copying it, and numpy's
reshape may return a view in the evaluator). The verifier uses these classes
to reject a use of the aliased input after the call; the runtime uses them
to know which parameters a function writes into (the caller's arrays).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation, SSAValue
from xdsl.traits import SymbolTable
from xdsl.utils.exceptions import VerifyException

from relax_xdsl.dialects.relax import (
    CallTIRInplaceOp,
    CallTIROp,
    DataflowOp,
    FunctionOp,
    GetItemOp,
    GraphOp,
    MatchCastOp,
    OutputOp,
    TupleOp,
)


def _function_of(op: Operation) -> FunctionOp | None:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, FunctionOp):
        parent = parent.parent_op()
    return parent


def _is_view_call(op: Operation) -> bool:
    """A graph op (or the program legalized from it) whose result may be a
    view of its input: lower-graph's VIEW_OPS."""
    from relax_xdsl.passes.lower_graph import VIEW_OPS

    if isinstance(op, GraphOp):
        return op.SPEC is not None and op.SPEC.name in VIEW_OPS and len(op.inputs) == 1
    if isinstance(op, CallTIROp) and len(op.inputs) == len(op.outs) == 1:
        callee = SymbolTable.lookup_symbol(op, op.callee)
        kind = callee.attributes.get("relax.op") if callee is not None else None
        return isinstance(kind, StringAttr) and kind.data in VIEW_OPS
    return False


def _storage_edges(fn: FunctionOp, through_inplace: bool) -> Iterator[tuple[SSAValue, SSAValue]]:
    """Pairs of values that may be the same buffer. With `through_inplace`,
    an in-place output and its input are paired too (to follow a buffer
    through a chain of in-place calls)."""
    for op in fn.body.walk():
        if isinstance(op, MatchCastOp):
            yield op.value, op.result
        elif isinstance(op, TupleOp):
            for f in op.fields:
                yield f, op.result
        elif isinstance(op, GetItemOp):
            yield op.tuple_value, op.result
        elif isinstance(op, DataflowOp):
            out = op.body.block.last_op
            if isinstance(out, OutputOp):
                yield from zip(out.values, op.outs)
        elif _is_view_call(op):
            yield op.operands[0], op.results[0]
        elif through_inplace and isinstance(op, CallTIRInplaceOp):
            for k, i in op.aliased():
                yield op.inputs[i], op.outs[k]


def storage_classes(fn: FunctionOp, through_inplace: bool = False) -> dict[SSAValue, frozenset[SSAValue]]:
    """Each value of `fn` that shares storage with another -> its class."""
    parent: dict[SSAValue, SSAValue] = {}

    def find(v: SSAValue) -> SSAValue:
        while parent.get(v, v) is not v:
            v = parent[v]
        return v

    for a, b in _storage_edges(fn, through_inplace):
        ra, rb = find(a), find(b)
        if ra is not rb:
            parent[ra] = rb
    groups: dict[SSAValue, set[SSAValue]] = {}
    for v in parent:
        groups.setdefault(find(v), set()).add(v)
    for root, members in groups.items():
        members.add(root)
    return {v: frozenset(members) for members in groups.values() for v in members}


def written_parameters(fn: FunctionOp) -> list[int]:
    """Positions of the parameters an in-place call of `fn` writes into."""
    classes = storage_classes(fn, through_inplace=True)
    args = list(fn.args)
    written: set[int] = set()
    for op in fn.body.walk():
        if isinstance(op, CallTIRInplaceOp):
            for _, i in op.aliased():
                v = op.inputs[i]
                for member in classes.get(v, frozenset({v})):
                    if member in args:
                        written.add(args.index(member))
    return sorted(written)


def _name(v: SSAValue) -> str:
    return f"%{v.name_hint}" if v.name_hint else "the aliased input"


def verify_inplace_call(op: CallTIRInplaceOp) -> None:
    """The aliased inputs are consumed by the call: no value sharing their
    storage is read by another operand of the call or used after it; in a
    dataflow block the call may not write into a function parameter."""
    fn = _function_of(op)
    if fn is None:
        return
    where = f"relax.call_tir_inplace @{op.callee.string_value()}"
    classes = storage_classes(fn)
    order = {o: k for k, o in enumerate(fn.body.walk())}
    here = order.get(op, -1)
    for k, i in op.aliased():
        v = op.inputs[i]
        shared = classes.get(v, frozenset({v}))
        for j, other in enumerate(op.inputs):
            if j != i and other in shared:
                raise VerifyException(f"{where}: input {i} ({_name(v)}) is written in place by output {k} and also "
                                      f"read as input {j}")
        for member in shared:
            for use in member.uses:
                if use.operation is not op and order.get(use.operation, -1) > here:
                    shares = "" if member is v else f" (through {_name(member)}, which shares its storage)"
                    raise VerifyException(
                        f"{where}: input {i} ({_name(v)}) is written in place by output {k}, so it must not be used "
                        f"after the call, but {use.operation.name} uses it{shares}")
    block = op.parent_op()
    if isinstance(block, DataflowOp):
        dataflows = [o for o in fn.body.walk() if isinstance(o, DataflowOp)]
        label = f"relax.dataflow block #{dataflows.index(block)} of @{fn.sym_name.data}"
        args = set(fn.args)
        inplace_classes = storage_classes(fn, through_inplace=True)
        for k, i in op.aliased():
            v = op.inputs[i]
            params = [p for p in inplace_classes.get(v, frozenset({v})) if p in args]
            if params:
                raise VerifyException(
                    f"{where} in the {label}: output {k} writes in place into parameter {_name(params[0])}, a side "
                    "effect the caller sees; a dataflow block holds only pure calls: move the call after the block")


def check_written_arrays(fn: FunctionOp, arrays: Sequence[Any], written: Sequence[int]) -> None:
    """A parameter written in place is updated in the caller's array (as in
    TVM), so it must be that array exactly: a numpy array of the parameter's
    dtype, C-contiguous, aligned, native byte order and writeable. Anything
    else would be converted into a temporary copy and the update silently
    lost (or, read-only, written where it must not be): a TypeError instead."""
    from relax_xdsl.dialects.relax import TensorType
    from relax_xdsl.dtypes import np_dtype

    for i in written:
        if i >= len(arrays):
            return  # the count is checked (and worded) with the other inputs
        a, p = arrays[i], fn.args[i]
        t = p.type
        assert isinstance(t, TensorType)
        want = np_dtype(t.dtype)
        ok = (type(a) is np.ndarray and a.dtype == want and a.flags.c_contiguous and a.flags.aligned
              and a.flags.writeable and a.dtype.isnative)
        if not ok:
            name = p.name_hint or f"#{i}"
            got = (f"a {'read-only ' if not a.flags.writeable else ''}{a.dtype} array"
                   f"{'' if a.flags.c_contiguous else ' (not C-contiguous)'}"
                   if isinstance(a, np.ndarray) else type(a).__name__)
            raise TypeError(f"@{fn.sym_name.data} input '{name}' is written in place (relax.call_tir_inplace): pass "
                            f"a writeable, C-contiguous numpy array of dtype {want} (got {got})")
