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
    MatchCastOp,
    OutputOp,
    ReturnOp,
    ShapeOfOp,
    ShapeType,
    TensorType,
    TupleOp,
)
from relax_xdsl.dialects.tir import PrimFuncOp
from relax_xdsl.errors import RelaxError, ShapeError
from relax_xdsl.limits import check_alloc
from relax_xdsl.scalar_semantics import normalize_bool
from relax_xdsl.shape import bind_shape, dim_to_str, evaluate_dim, format_bindings, shape_to_str

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
        if not isinstance(t, TensorType):
            raise RelaxError(f"{what}: only tensor parameters are supported, got {t}")
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


def evaluate(module: ModuleOp, func_name: str = "main", *arrays: Any) -> Any:
    """Runs `@func_name` on numpy arrays; one result, or a tuple."""
    from relax_xdsl.aliasing import check_written_arrays, written_parameters

    func = find_function(module, func_name)
    check_written_arrays(func, arrays, written_parameters(func))
    inputs, bindings = bind_inputs(func, arrays)
    env: dict[SSAValue, Any] = dict(zip(func.args, inputs))
    results = _run_block(func.body.block, env, bindings, module)
    return results[0] if len(results) == 1 else tuple(results)


def _run_block(block: Block, env: dict[SSAValue, Any], bindings: Bindings, module: ModuleOp) -> list[Any]:
    for op in block.ops:
        if isinstance(op, (ReturnOp, OutputOp)):
            return [env[v] for v in op.values]
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
        return [args[0]]
    if isinstance(op, TupleOp):
        return [tuple(args)]
    if isinstance(op, GetItemOp):
        return [args[0][op.index.data]]
    if isinstance(op, ShapeOfOp):
        return [tuple(int(d) for d in args[0].shape)]
    if isinstance(op, (CallTIROp, LibCallOp)):
        return _run_call(op, args, bindings, module)
    if isinstance(op, CallTIRInplaceOp):
        return _run_inplace(op, args, bindings, module)
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
