"""The graph-level reference evaluator: runs a relax function on numpy
through each op's reference. Every lower level is tested against it.

It binds symbols from the inputs' shapes, checks every declared shape and
every assumption a shape rule recorded, and raises ShapeError (naming the
input or op, the dim, the expected expression and the bound values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy
from xdsl.dialects.builtin import ModuleOp, TupleType
from xdsl.ir import Attribute, Block, Operation, SSAValue

from relax_xdsl import dtypes
from relax_xdsl.dialects.lib import LibCallOp, LibFuncOp
from relax_xdsl.dialects.relax import (
    CallTIRInplaceOp,
    CallTIROp,
    ConstantOp,
    DataflowOp,
    FunctionOp,
    GetItemOp,
    GraphOp,
    MakeShapeOp,
    MatchCastOp,
    OutputOp,
    PrimToTensorOp,
    PrimType,
    PrimValueOp,
    ReturnOp,
    ShapeOfOp,
    ShapeToTensorOp,
    ShapeType,
    TensorToPrimOp,
    TensorToShapeOp,
    TensorType,
    TupleOp,
)
from relax_xdsl.dialects.tir import PrimFuncOp
from relax_xdsl.errors import RelaxError, ResourceLimitError, ShapeError
from relax_xdsl.limits import (
    RECURSION_ENV,
    RECURSION_TOO_DEEP,
    check_alloc,
    loop_limit_message,
    max_loop_iterations,
    max_recursion_depth,
)
from relax_xdsl.scalar_semantics import normalize_bool
from relax_xdsl.shape import bind_shape, bind_values, dim_to_str, evaluate_dim, format_bindings, shape_to_str

Bindings = dict[sympy.Symbol, int]


def find_function(module: ModuleOp, name: str) -> FunctionOp:
    funcs = {op.sym_name.data: op for op in module.ops if isinstance(op, FunctionOp)}
    if name not in funcs:
        raise RelaxError(f"no relax.function @{name} in the module (functions: {', '.join(sorted(funcs)) or 'none'})")
    return funcs[name]


def arg_name(value: SSAValue, index: int) -> str:
    return value.name_hint or f"#{index}"


def bind_inputs(func: FunctionOp, arrays: Sequence[Any]) -> tuple[list[np.ndarray], Bindings]:
    """Checks inputs against the signature (count, dtype, rank, dims) and
    binds the symbols. Used by the evaluator and the compiled executables."""
    name = func.sym_name.data
    params = func.args
    if len(arrays) != len(params):
        raise TypeError(f"@{name} takes {len(params)} inputs "
                        f"({', '.join(arg_name(p, i) for i, p in enumerate(params))}), got {len(arrays)}")
    bindings: Bindings = {}
    out: list[np.ndarray] = []
    for i, (p, a) in enumerate(zip(params, arrays)):
        t = p.type
        what = f"@{name} input '{arg_name(p, i)}'"
        if isinstance(t, (ShapeType, PrimType)):
            out.append(_value_input(t, a, bindings, what))
            continue
        if not isinstance(t, TensorType):
            raise RelaxError(f"{what}: only tensor, shape and scalar parameters are supported, got {t}")
        if not isinstance(a, np.ndarray):
            if isinstance(a, (list, tuple, int, float, np.generic)):
                a = np.asarray(a)
            else:
                raise TypeError(f"{what}: expected a numpy array, got {type(a).__name__}")
        if a.dtype.name != t.dtype:
            raise TypeError(f"{what}: expected dtype {t.dtype}, got {a.dtype.name}")
        bind_shape(t.sym_shape, a.shape, bindings, what)
        out.append(normalize_bool(a))
    return out, bindings


def _value_input(t: ShapeType | PrimType, a: Any, bindings: Bindings, what: str) -> np.ndarray:
    """A shape argument (a sequence of ints or an int64 vector) or a scalar
    argument (a Python or numpy scalar, or a 0-d array), checked and bound;
    as the array the compiled code takes (int64 [k], or 0-d of the dtype)."""
    if isinstance(t, ShapeType):
        k = len(t.dims.data)
        try:
            array = np.asarray(a)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{what}: expected a shape of {k} ints, got {type(a).__name__}") from err
        if array.shape != (k,) or array.dtype.kind not in "iu" and not (k == 0 and array.dtype.kind == "f"):
            raise TypeError(f"{what}: expected a shape of {k} ints, got {a!r}")
        bind_values(t.dims.data, [int(v) for v in array.tolist()], bindings, what)
        return np.ascontiguousarray(array, dtype=np.int64)
    want = dtypes.np_dtype(t.dtype)
    value = np.asarray(a) if isinstance(a, (int, float, bool, np.generic, np.ndarray)) else None
    if value is None or value.shape != ():
        raise TypeError(f"{what}: expected a {t.dtype} scalar, got {type(a).__name__} {a!r}"[:200])
    kind = value.dtype.kind
    if (kind == "b") != (want.kind == "b") or (kind in "fc" and want.kind in "iu"):
        raise TypeError(f"{what}: expected a {t.dtype} scalar, got {value.dtype.name} {a!r}")
    if want.kind in "iu" and not np.iinfo(want).min <= int(value) <= np.iinfo(want).max:
        raise TypeError(f"{what}: {int(value)} does not fit {t.dtype}")
    value = value.astype(want)
    if t.sym_value is not None:
        bind_values([t.sym_value], [int(value)], bindings, what)
    return np.array(value, dtype=want)


def evaluate(module: ModuleOp, func_name: str = "main", *arrays: Any) -> Any:
    """Runs `@func_name` on numpy arrays; one result, or a tuple."""
    from relax_xdsl.aliasing import check_written_arrays, written_parameters

    func = find_function(module, func_name)
    check_written_arrays(func, arrays, written_parameters(func))
    results = _call_function(func, list(arrays), module)
    results = [public_value(r, t) for r, t in zip(results, func.function_type.outputs.data)]
    return results[0] if len(results) == 1 else tuple(results)


def public_value(value: Any, t: Attribute) -> Any:
    """A result as callers get it: a scalar value as a numpy scalar (the
    evaluator and the compiled code both hold it as a 0-d array)."""
    if isinstance(t, PrimType):
        return np.asarray(value)[()]
    if isinstance(t, TupleType):
        return tuple(public_value(v, e) for v, e in zip(value, t.types.data))
    return value


_DEPTH: list[int] = [0]
"""How deep `relax.call`s nest in the evaluation under way."""


def _call_function(func: FunctionOp, args: list[Any], module: ModuleOp) -> list[Any]:
    """Runs one relax.function: its parameters bind its own symbols."""
    inputs, bindings = bind_inputs(func, args)
    env: dict[SSAValue, Any] = dict(zip(func.args, inputs))
    return _run_block(func.body.block, env, bindings, module)


def bind_value(value: Any, t: Attribute, bindings: Bindings, what: str) -> None:
    """Binds the unbound symbols of `t` from a value and checks the rest
    (match_cast's rule, used where control flow joins values)."""
    if isinstance(t, TensorType):
        if value.dtype.name != t.dtype:
            raise ShapeError(f"{what}: dtype {value.dtype.name} is not {t.dtype}")
        bind_shape(t.sym_shape, value.shape, bindings, what)
    elif isinstance(t, ShapeType):
        bind_shape(t.dims.data, value, bindings, what)
    elif isinstance(t, PrimType):
        if t.sym_value is not None:
            bind_values([t.sym_value], [int(value)], bindings, what)
    elif isinstance(t, TupleType):
        for i, (v, e) in enumerate(zip(value, t.types.data)):
            bind_value(v, e, bindings, f"{what} field {i}")


def _run_region(block: Block, values: list[Any], env: dict[SSAValue, Any], bindings: Bindings,
                module: ModuleOp, what: str) -> list[Any]:
    """Runs a control-flow region: its block arguments (if any) take
    `values`, binding their types' symbols in a scope of their own."""
    inner = dict(bindings)
    for k, (arg, v) in enumerate(zip(block.args, values)):
        bind_value(v, arg.type, inner, f"{what} block argument {k}")
        env[arg] = v
    return _run_block(block, env, inner, module)


def _run_control_flow(op: Operation, args: list[Any], env: dict[SSAValue, Any], bindings: Bindings,
                      module: ModuleOp) -> list[Any]:
    from relax_xdsl.dialects.relax_control_flow import CallOp, IfOp, WhileOp

    if isinstance(op, IfOp):
        taken = op.then_region if bool(args[0]) else op.else_region
        results = _run_region(taken.block, [], env, bindings, module, _where(op))
    elif isinstance(op, WhileOp):
        values = list(args)
        limit, iterations = max_loop_iterations(), 0
        while True:
            before = _run_region(op.before.block, values, env, bindings, module, f"{_where(op)} (before)")
            cond, *values = before
            if not bool(cond):
                break
            if iterations >= limit:
                raise ResourceLimitError(loop_limit_message(_where(op), limit))
            iterations += 1
            values = _run_region(op.after.block, values, env, bindings, module, f"{_where(op)} (do)")
        results = values
    else:
        assert isinstance(op, CallOp)
        if _DEPTH[0] >= max_recursion_depth():
            raise ResourceLimitError(f"{_where(op)}: {RECURSION_TOO_DEEP} {max_recursion_depth()} nested calls "
                                     f"({RECURSION_ENV})")
        _DEPTH[0] += 1
        from relax_xdsl.aliasing import written_parameters

        callee = op.callee_function()
        written = written_parameters(callee)  # values are immutable: a callee writing a parameter gets a copy
        args = [np.array(a) if k in written else a for k, a in enumerate(args)]
        try:
            results = _call_function(callee, args, module)
        except RecursionError:
            raise ResourceLimitError(f"{_where(op)}: {RECURSION_TOO_DEEP} the evaluator's Python stack allows "
                                     f"({_DEPTH[0]} nested calls)") from None
        finally:
            _DEPTH[0] -= 1
    for k, (r, v) in enumerate(zip(op.results, results)):
        bind_value(v, r.type, bindings, f"{_where(op)} result {k}")
    return results


def _run_block(block: Block, env: dict[SSAValue, Any], bindings: Bindings, module: ModuleOp) -> list[Any]:
    from relax_xdsl.dialects.relax_control_flow import ConditionOp, YieldOp

    for op in block.ops:
        if isinstance(op, (ReturnOp, OutputOp, YieldOp)):
            return [env[v] for v in op.values]
        if isinstance(op, ConditionOp):
            return [env[op.cond], *(env[v] for v in op.values)]
        values = _run_op(op, env, bindings, module)
        for r, v in zip(op.results, values):
            env[r] = v
    raise RelaxError("block without terminator")


def _where(op: Operation) -> str:
    names = ", ".join(f"%{r.name_hint}" for r in op.results if r.name_hint)
    return f"{op.name}{' (' + names + ')' if names else ''}"


def _check_result_size(op: Operation, bindings: Bindings) -> None:
    """The allocation limit, before the numpy reference allocates the result."""
    for r in op.results:
        types = r.type.types.data if isinstance(r.type, TupleType) else [r.type]
        for t in types:
            if isinstance(t, TensorType):
                dims = [evaluate_dim(d, bindings) for d in t.sym_shape]
                check_alloc(dims, dtypes.np_dtype(t.dtype).itemsize, f"{_where(op)} result")


def check_value(value: Any, t: Attribute, bindings: Bindings, what: str) -> None:
    """A produced value must have the shape its deduced type promises."""
    if isinstance(t, TensorType):
        want = tuple(evaluate_dim(d, bindings) for d in t.sym_shape)
        if tuple(value.shape) != want:
            raise ShapeError(
                f"{what}: produced shape {tuple(value.shape)} but its type says {shape_to_str(t.sym_shape)} = "
                f"{want} ({format_bindings(bindings)})"
            )
        if value.dtype.name != t.dtype:
            raise ShapeError(f"{what}: produced dtype {value.dtype.name} but its type says {t.dtype}")
    elif isinstance(t, TupleType):
        for i, (v, ft) in enumerate(zip(value, t.types.data)):
            check_value(v, ft, bindings, f"{what} field {i}")


def _run_op(op: Operation, env: dict[SSAValue, Any], bindings: Bindings, module: ModuleOp) -> list[Any]:
    args = [env[v] for v in op.operands]
    if isinstance(op, GraphOp):
        spec = op.SPEC
        params = spec.decode_params(dict(op.attributes))
        _, ctx = spec.run_infer([v.type for v in op.operands], params)
        for a, b, what in ctx.assumptions:
            va, vb = evaluate_dim(a, bindings), evaluate_dim(b, bindings)
            if va != vb:
                raise ShapeError(
                    f"{_where(op)}: {what}: the op assumed {dim_to_str(a)} == {dim_to_str(b)} but "
                    f"{dim_to_str(a)} = {va}, {dim_to_str(b)} = {vb} ({format_bindings(bindings)})"
                )
        for name, p in spec.params.items():
            if p.kind == "dims" and params.get(name) is not None:  # symbolic dims -> bound values
                params[name] = tuple(evaluate_dim(d, bindings) for d in params[name])
        _check_result_size(op, bindings)
        result = spec.reference(*args, **params)
        check_value(result, op.res.type, bindings, _where(op))
        return [result]
    if isinstance(op, ConstantOp):
        return [op.to_array()]
    if isinstance(op, DataflowOp):
        return _run_block(op.body.block, env, bindings, module)
    if isinstance(op, MatchCastOp):
        t = op.result.type
        if isinstance(t, TensorType):
            bind_shape(t.sym_shape, args[0].shape, bindings, _where(op))
        elif isinstance(t, ShapeType):
            bind_shape(t.dims.data, args[0], bindings, _where(op))
        elif isinstance(t, PrimType) and t.sym_value is not None:
            bind_values([t.sym_value], [int(args[0])], bindings, _where(op))
        return [args[0]]
    if isinstance(op, TupleOp):
        return [tuple(args)]
    if isinstance(op, GetItemOp):
        return [args[0][op.index.data]]
    if isinstance(op, ShapeOfOp):
        return [tuple(int(d) for d in args[0].shape)]
    if isinstance(op, MakeShapeOp):
        return [tuple(evaluate_dim(d, bindings) for d in op.result.type.dims.data)]
    if isinstance(op, ShapeToTensorOp):
        return [np.array(args[0], dtype=np.int64).reshape(len(args[0]))]
    if isinstance(op, TensorToShapeOp):
        values = [int(v) for v in args[0].tolist()]
        bind_values(op.result.type.dims.data, values, bindings, _where(op))
        return [tuple(values)]
    if isinstance(op, PrimValueOp):
        t = op.result.type
        return [np.array(evaluate_dim(t.sym_value, bindings), dtype=dtypes.np_dtype(t.dtype))]
    if isinstance(op, PrimToTensorOp):
        return [np.array(args[0])]
    if isinstance(op, TensorToPrimOp):
        t = op.result.type
        if t.sym_value is not None:
            bind_values([t.sym_value], [int(args[0])], bindings, _where(op))
        return [np.array(args[0])]
    if isinstance(op, (CallTIROp, LibCallOp)):
        return _run_call(op, args, bindings, module)
    if isinstance(op, CallTIRInplaceOp):
        return _run_inplace(op, args, bindings, module)
    if op.regions or op.name == "relax.call":
        return _run_control_flow(op, args, env, bindings, module)
    raise RelaxError(f"the evaluator cannot run {op.name}")


def _run_inplace(op: CallTIRInplaceOp, args: list[np.ndarray], bindings: Bindings, module: ModuleOp) -> list[Any]:
    """Runs the program with each aliased input as its output's buffer: the
    updated input is the result (a parameter's array is written, as on the
    compiled targets)."""
    for k, i in op.aliased():
        if not args[i].flags.writeable:
            raise RelaxError(f"{_where(op)}: input {i}, written in place by output {k}, is a read-only array")
    fresh = _run_call(op, args, bindings, module)
    rest = iter(fresh)
    return [args[i] if i != -1 else next(rest) for i in op.indices]


def _run_call(op: CallTIROp | LibCallOp | CallTIRInplaceOp, args: list[np.ndarray], bindings: Bindings,
              module: ModuleOp) -> list[Any]:
    """A destination-passing call: fresh outputs allocated here (for an
    in-place call, only those its callee takes), then the callee run."""
    from xdsl.traits import SymbolTable

    callee = SymbolTable.lookup_symbol(op, op.callee)
    results = op.fresh_outputs() if isinstance(op, CallTIRInplaceOp) else list(op.results)
    outs = []
    for r in results:
        t = r.type
        assert isinstance(t, TensorType)
        dims = tuple(evaluate_dim(d, bindings) for d in t.sym_shape)
        for axis, (d, v) in enumerate(zip(t.sym_shape, dims)):
            if v < 0:
                raise ShapeError(f"{_where(op)}: result dim {axis} is {dim_to_str(d)} = {v}, negative "
                                 f"({format_bindings(bindings)}): the input is too small for the op")
        check_alloc(dims, dtypes.np_dtype(t.dtype).itemsize, f"{_where(op)} result")
        outs.append(np.zeros(dims, dtype=dtypes.dtype_name(t.dtype)))
    if isinstance(op, LibCallOp):
        from relax_xdsl import libraries

        assert isinstance(callee, LibFuncOp)
        ref = callee.reference.data if callee.reference else callee.sym_name.data
        fn = libraries.lookup(ref)
        fn.reference(*args, *outs)
    else:
        from relax_xdsl.tir_interpreter import run_prim_func

        syms = [evaluate_dim(d, bindings) for d in op.sym_args.data] if op.sym_args else []
        if not isinstance(callee, PrimFuncOp):
            raise RelaxError(f"{_where(op)}: the evaluator runs tensor programs (tir.prim_func), and "
                             f"@{callee.sym_name.data} is a {callee.name} (lowered by lower-tir); evaluate the "
                             "module before lower-tir, or run it with compile(..., target='interp')")
        inner: Bindings = dict(zip(callee.sym_params.data, syms)) if callee.sym_params else {}
        for k, (formal, actual, r) in enumerate(zip(callee.buffer_types(), [*args, *outs],
                                                    [*op.operands, *results])):
            role = f"input {k}" if k < len(args) else f"output {k - len(args)}"
            bind_shape(formal.sym_shape, actual.shape, inner,
                       f"{_where(op)}: {role} {shape_to_str(r.type.sym_shape)} of @{callee.sym_name.data}")
        run_prim_func(callee, [*args, *outs], syms)  # type: ignore[arg-type]
    return outs
