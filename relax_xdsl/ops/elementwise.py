"""Elementwise ops: unary math, binary arithmetic and comparison with numpy
broadcasting, clip, where, astype.

Shape rule: unary ops keep the shape; binary ops broadcast (Infer.broadcast).
Reference: the numpy function named in each spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.registry import (
    BROADCAST,
    ELEMWISE,
    REQUIRED,
    Infer,
    OpSpec,
    Param,
    register_op,
    tensor,
)

# --- unary ------------------------------------------------------------------


class UnaryOp(OpSpec):
    """y = f(x), same shape and dtype."""

    inputs = ("x",)
    pattern = ELEMWISE
    float_only: ClassVar[bool] = True
    fn: ClassVar[Callable[[np.ndarray], np.ndarray]]

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> TensorType:
        if self.float_only and not dtypes.is_float(x.dtype):
            ctx.fail(f"needs a floating-point tensor, got {x.dtype}")
        return x

    def reference(self, x: np.ndarray, **params: Any) -> np.ndarray:
        return np.asarray(type(self).fn(x)).astype(x.dtype, copy=False)


def _erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x.astype(np.float64)).astype(x.dtype)


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0).astype(x.dtype)))).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


def _unary(name: str, fn: Callable[[np.ndarray], np.ndarray], float_only: bool = True) -> type[OpSpec]:
    cls = type(name.capitalize(), (UnaryOp,), {"name": name, "fn": staticmethod(fn), "float_only": float_only,
                                                "__doc__": f"relax.{name}: elementwise {name}."})
    return register_op(cls)


Exp = _unary("exp", np.exp)
Log = _unary("log", np.log)
Sqrt = _unary("sqrt", np.sqrt)
Rsqrt = _unary("rsqrt", lambda x: 1.0 / np.sqrt(x))
Tanh = _unary("tanh", np.tanh)
Sigmoid = _unary("sigmoid", _sigmoid)
Erf = _unary("erf", _erf)
Relu = _unary("relu", lambda x: np.maximum(x, np.zeros((), x.dtype)), float_only=False)
Gelu = _unary("gelu", _gelu)
Silu = _unary("silu", lambda x: x * _sigmoid(x))
Negative = _unary("negative", np.negative, float_only=False)
Abs = _unary("abs", np.abs, float_only=False)
Floor = _unary("floor", np.floor)
Ceil = _unary("ceil", np.ceil)


@register_op
class Clip(UnaryOp):
    """relax.clip: min(max(x, min), max)."""

    name = "clip"
    float_only = False
    params = {"min": Param("float", REQUIRED), "max": Param("float", REQUIRED)}

    def infer(self, ctx: Infer, x: TensorType, min: float, max: float) -> TensorType:  # noqa: A002
        if min > max:
            ctx.fail(f"min {min} is greater than max {max}")
        return x

    def reference(self, x: np.ndarray, min: float, max: float) -> np.ndarray:  # noqa: A002
        return np.clip(x, min, max).astype(x.dtype)


# --- binary -----------------------------------------------------------------


class BinaryOp(OpSpec):
    """z = f(x1, x2) with numpy broadcasting; both operands have one dtype."""

    inputs = ("x1", "x2")
    pattern = BROADCAST
    compare: ClassVar[bool] = False
    fn: ClassVar[Callable[[np.ndarray, np.ndarray], np.ndarray]]

    def infer(self, ctx: Infer, x1: TensorType, x2: TensorType) -> TensorType:
        if x1.dtype != x2.dtype:
            ctx.fail(f"operand dtypes differ ({x1.dtype} vs {x2.dtype}); insert astype")
        shape = ctx.broadcast(x1.sym_shape, x2.sym_shape)
        return tensor(shape, "bool" if self.compare else x1.dtype)

    def reference(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        out = np.asarray(type(self).fn(x1, x2))
        return out if self.compare else out.astype(x1.dtype, copy=False)


def _binary(name: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], compare: bool = False) -> type[OpSpec]:
    cls = type(name.capitalize(), (BinaryOp,), {"name": name, "fn": staticmethod(fn), "compare": compare,
                                                 "__doc__": f"relax.{name}: elementwise {name}, broadcasting."})
    return register_op(cls)


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        with np.errstate(divide="ignore"):
            return np.where(b == 0, 0, np.floor_divide(a, np.where(b == 0, 1, b)))
    return np.divide(a, b)


Add = _binary("add", np.add)
Subtract = _binary("subtract", np.subtract)
Multiply = _binary("multiply", np.multiply)
Divide = _binary("divide", _divide)
Power = _binary("power", np.power)
Maximum = _binary("maximum", np.maximum)
Minimum = _binary("minimum", np.minimum)
Equal = _binary("equal", np.equal, compare=True)
NotEqual = _binary("not_equal", np.not_equal, compare=True)
Less = _binary("less", np.less, compare=True)
LessEqual = _binary("less_equal", np.less_equal, compare=True)
Greater = _binary("greater", np.greater, compare=True)
GreaterEqual = _binary("greater_equal", np.greater_equal, compare=True)


@register_op
class Where(OpSpec):
    """relax.where: condition ? x1 : x2, all three broadcast together."""

    name = "where"
    inputs = ("condition", "x1", "x2")
    pattern = BROADCAST

    def infer(self, ctx: Infer, condition: TensorType, x1: TensorType, x2: TensorType) -> TensorType:
        if condition.dtype != "bool":
            ctx.fail(f"condition must be bool, got {condition.dtype}")
        if x1.dtype != x2.dtype:
            ctx.fail(f"x1 and x2 dtypes differ ({x1.dtype} vs {x2.dtype})")
        return tensor(ctx.broadcast(condition.sym_shape, x1.sym_shape, x2.sym_shape), x1.dtype)

    def reference(self, condition: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        return np.where(condition, x1, x2)


@register_op
class Astype(OpSpec):
    """relax.astype: converts the element type (C semantics for float -> int)."""

    name = "astype"
    inputs = ("x",)
    params = {"dtype": Param("str", REQUIRED)}
    pattern = ELEMWISE

    def infer(self, ctx: Infer, x: TensorType, dtype: str) -> TensorType:
        try:
            name = dtypes.dtype_name(dtype)
        except Exception as err:  # noqa: BLE001
            ctx.fail(str(err))
        return tensor(x.sym_shape, name)

    def reference(self, x: np.ndarray, dtype: str) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return x.astype(dtypes.dtype_name(dtype))
