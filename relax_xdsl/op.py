"""`relax_xdsl.op.<name>(...)`: emit any registered graph op, with Relax's
argument names (`op.sum(x, axis=[1], keepdims=True)`). `op.nn.<name>` is
the same namespace, for code written against TVM's `R.nn`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from relax_xdsl.builder import FunctionBuilder, Var
from relax_xdsl.errors import RelaxError
from relax_xdsl.ops.registry import OpSpec, get_spec


def _as_var(value: Any, like: Var | None, builder: FunctionBuilder) -> Var:
    if isinstance(value, Var):
        return value
    if isinstance(value, (int, float, bool, np.ndarray, np.generic, list, tuple)):
        dtype = like.dtype if like is not None and not isinstance(value, np.ndarray) else None
        return builder.const(value, dtype)
    raise RelaxError(f"expected a tensor value, got {type(value).__name__}")


def emit(spec: OpSpec, *args: Any, **kwargs: Any) -> Var:
    """Binds the arguments to the op's signature and emits it."""
    try:
        bound = spec.signature().bind(*args, **kwargs)
    except TypeError as err:
        raise RelaxError(f"relax.{spec.name}{spec.signature()}: {err}") from None
    bound.apply_defaults()
    names = [n.lstrip("*") for n in spec.inputs]
    raw_inputs: list[Any] = list(bound.arguments[names[0]]) if spec.variadic else [bound.arguments[n] for n in names]
    params = {k: v for k, v in bound.arguments.items() if k not in names}
    first = next((v for v in raw_inputs if isinstance(v, Var)), None)
    builder = first.builder if first is not None else FunctionBuilder.current()
    # Python scalars take the dtype of a tensor operand, preferring a non-bool
    # one (`where(cond, x, 0.0)` means x's dtype, not cond's).
    like = next((v for v in raw_inputs if isinstance(v, Var) and v.dtype != "bool"), first)
    inputs = [_as_var(v, like, builder) for v in raw_inputs]
    attrs = spec.param_attrs(params)
    result_type, _ = spec.run_infer([v.type for v in inputs], spec.decode_params(attrs))
    op = spec.op_class.create(operands=[v.value for v in inputs], result_types=[result_type], attributes=attrs)
    return builder.emit(op)


@cache
def _emitter(name: str) -> Callable[..., Var]:
    spec = get_spec(name)

    def fn(*args: Any, **kwargs: Any) -> Var:
        return emit(spec, *args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = (type(spec).__doc__ or f"relax.{name}") + f"\n\nSignature: {name}{spec.signature()}"
    return fn


def _composite(name: str) -> Callable[..., Any] | None:
    """Builder functions that emit several ops (a count, tensor_to_shape and
    a fill: relax_xdsl/ops/data_dependent.py), under their ONNX-like names."""
    from relax_xdsl.ops.data_dependent import COMPOSITES

    return COMPOSITES.get(name)


def __getattr__(name: str) -> Callable[..., Any]:
    if name.startswith("__"):
        raise AttributeError(name)
    return _composite(name) or _emitter(name)


class _Namespace(ModuleType):
    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        return _composite(name) or _emitter(name)


nn = _Namespace("relax_xdsl.op.nn", "The op namespace again, as TVM's R.nn.")
sys.modules["relax_xdsl.op.nn"] = nn
