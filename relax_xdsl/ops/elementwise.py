"""Elementwise ops: unary math, binary arithmetic and comparison with numpy
broadcasting, clip, where, astype.

Shape rule: unary ops keep the shape; binary ops broadcast (Infer.broadcast).
Reference: the numpy function named in each spec.
Legalization: one compute whose body is the op's scalar function (the
`scalar` of each spec) on broadcast loads (a literal size-1 dim reads
index 0). Integer semantics follow the references exactly: divide is floor
division with x // 0 = 0 (and x // -1 = -x, wrapping, so INT_MIN // -1
cannot trap), power is exact wrapping exponentiation by squaring with
negative exponents giving the integer part of 1 / x^|e| (0 for x = 0).
Comparisons on bool use unsigned predicates (false < true).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sympy
from xdsl.dialects import arith

from relax_xdsl import dtypes, scalar_semantics
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import RelaxError
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

if TYPE_CHECKING:
    from relax_xdsl.tir_builder import Buffer, Expr, PrimFuncBuilder

# --- tensor-program helpers (shared by the other families) ---------------------


def broadcast_index(pb: PrimFuncBuilder, shape: Sequence[sympy.Expr], out_idx: Sequence[Any]) -> list[Any]:
    """Indices into a tensor of `shape` broadcast (right-aligned) to the
    output indices `out_idx`: a literal size-1 dim reads index 0."""
    lead = len(out_idx) - len(shape)
    return [pb.index(0) if d == 1 else out_idx[lead + j] for j, d in enumerate(shape)]


def broadcast_load(pb: PrimFuncBuilder, buf: Buffer, out_idx: Sequence[Any]) -> Expr:
    return buf[tuple(broadcast_index(pb, buf.shape, out_idx))]


def check_legal_dtypes(op: str, *names: str) -> None:
    """Every dtype of relax_xdsl.dtypes has a lowering (unsigned types carry
    their signedness in the element type); anything else is named here."""
    for dt in names:
        try:
            dtypes.dtype_name(dt)
        except RelaxError as err:
            raise RelaxError(f"relax.{op}: {err}") from None


# --- unary ------------------------------------------------------------------


class UnaryOp(OpSpec):
    """y = f(x), same shape and dtype."""

    inputs = ("x",)
    pattern = ELEMWISE
    float_only: ClassVar[bool] = True
    fn: ClassVar[Callable[[np.ndarray], np.ndarray]]
    scalar: ClassVar[Callable[[PrimFuncBuilder, Expr], Expr]]

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> TensorType:
        if self.float_only and not dtypes.is_float(x.dtype):
            ctx.fail(f"needs a floating-point tensor, got {x.dtype}")
        if x.dtype == "bool":
            ctx.fail("needs a numeric tensor, got bool; insert astype")
        return x

    def reference(self, x: np.ndarray, **params: Any) -> np.ndarray:
        return np.asarray(type(self).fn(x)).astype(x.dtype, copy=False)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer], **params: Any) -> None:
        (x,), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x.dtype)
        scalar = type(self).scalar
        pb.compute(out, lambda *i: scalar(pb, x[i]))


def _erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x.astype(np.float64)).astype(x.dtype)


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0).astype(x.dtype)))).astype(x.dtype)


GELU_TANH_SCALE = math.sqrt(2.0 / math.pi)
GELU_TANH_CUBIC = 0.044715
"""gelu_tanh's constants: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    ct = np.float64 if x.dtype == np.float64 else np.float32
    v = x.astype(ct, copy=False)
    inner = ct(GELU_TANH_SCALE) * (v + ct(GELU_TANH_CUBIC) * v * v * v)
    return (ct(0.5) * v * (ct(1.0) + np.tanh(inner))).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


def _unary(name: str, fn: Callable[[np.ndarray], np.ndarray], scalar: Callable[[PrimFuncBuilder, Expr], Expr],
           float_only: bool = True) -> type[OpSpec]:
    cls = type(name.capitalize(), (UnaryOp,), {"name": name, "fn": staticmethod(fn), "float_only": float_only,
                                                "scalar": staticmethod(scalar),
                                                "__doc__": f"relax.{name}: elementwise {name}."})
    return register_op(cls)


def _math(name: str) -> Callable[[PrimFuncBuilder, Expr], Expr]:
    return lambda pb, v: pb.math(name, v)


def _sigmoid_scalar(pb: PrimFuncBuilder, v: Expr) -> Expr:
    return 1.0 / (1.0 + pb.math("exp", -v))


def _gelu_scalar(pb: PrimFuncBuilder, v: Expr) -> Expr:
    return 0.5 * v * (1.0 + pb.math("erf", v / math.sqrt(2.0)))


def _gelu_tanh_scalar(pb: PrimFuncBuilder, v: Expr) -> Expr:
    return 0.5 * v * (1.0 + pb.math("tanh", GELU_TANH_SCALE * (v + GELU_TANH_CUBIC * v * v * v)))


Exp = _unary("exp", np.exp, _math("exp"))
Log = _unary("log", np.log, _math("log"))
Sqrt = _unary("sqrt", np.sqrt, _math("sqrt"))
Rsqrt = _unary("rsqrt", lambda x: 1.0 / np.sqrt(x), _math("rsqrt"))
Tanh = _unary("tanh", np.tanh, _math("tanh"))
Sigmoid = _unary("sigmoid", _sigmoid, _sigmoid_scalar)
Erf = _unary("erf", _erf, _math("erf"))
Relu = _unary("relu", lambda x: np.maximum(x, np.zeros((), x.dtype)), lambda pb, v: pb.max(v, 0),
              float_only=False)
Gelu = _unary("gelu", _gelu, _gelu_scalar)
GeluTanh = _unary("gelu_tanh", _gelu_tanh, _gelu_tanh_scalar)
GeluTanh.__doc__ = ("relax.gelu_tanh (R.nn.gelu_tanh): GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + "
                    "0.044715 x^3))), what GPT-2 computes (recognize-ops finds it written out in exported graphs).")
Silu = _unary("silu", lambda x: x * _sigmoid(x), lambda pb, v: v * _sigmoid_scalar(pb, v))
Negative = _unary("negative", np.negative, lambda pb, v: -v, float_only=False)
Abs = _unary("abs", np.abs, lambda pb, v: pb.math("absf" if v.is_float else "absi", v), float_only=False)
Floor = _unary("floor", np.floor, _math("floor"))
Ceil = _unary("ceil", np.ceil, _math("ceil"))


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

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer], min: float,  # noqa: A002
                 max: float) -> None:  # noqa: A002
        """Floats clamp in their own type (the bounds rounded to it); other
        dtypes clamp in float64 and convert back, as numpy's clip does."""
        (x,), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x.dtype)
        ct = x.dtype if dtypes.is_float(x.dtype) else "float64"
        pb.compute(out, lambda *i: pb.cast(pb.min(pb.max(pb.cast(x[i], ct), min), max), x.dtype))


# --- binary -----------------------------------------------------------------


class BinaryOp(OpSpec):
    """z = f(x1, x2) with numpy broadcasting; both operands have one dtype."""

    inputs = ("x1", "x2")
    pattern = BROADCAST
    compare: ClassVar[bool] = False
    bool_ok: ClassVar[bool] = True
    fn: ClassVar[Callable[[np.ndarray, np.ndarray], np.ndarray]]
    scalar: ClassVar[Callable[[PrimFuncBuilder, Expr, Expr], Expr]]

    def infer(self, ctx: Infer, x1: TensorType, x2: TensorType) -> TensorType:
        if x1.dtype != x2.dtype:
            ctx.fail(f"operand dtypes differ ({x1.dtype} vs {x2.dtype}); insert astype")
        if x1.dtype == "bool" and not self.bool_ok:
            ctx.fail("arithmetic needs numeric tensors, got bool; insert astype")
        shape = ctx.broadcast(x1.sym_shape, x2.sym_shape)
        return tensor(shape, "bool" if self.compare else x1.dtype)

    def reference(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        out = np.asarray(type(self).fn(x1, x2))
        return out if self.compare else out.astype(x1.dtype, copy=False)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer]) -> None:
        (x1, x2), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x1.dtype)
        scalar = type(self).scalar
        pb.compute(out, lambda *i: scalar(pb, broadcast_load(pb, x1, i), broadcast_load(pb, x2, i)))


def _binary(name: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
            scalar: Callable[[PrimFuncBuilder, Expr, Expr], Expr], compare: bool = False,
            bool_ok: bool = False) -> type[OpSpec]:
    cls = type(name.capitalize(), (BinaryOp,), {"name": name, "fn": staticmethod(fn), "compare": compare,
                                                 "bool_ok": bool_ok or compare, "scalar": staticmethod(scalar),
                                                 "__doc__": f"relax.{name}: elementwise {name}, broadcasting."})
    return register_op(cls)


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        with np.errstate(divide="ignore", over="ignore"):
            return np.where(b == 0, 0, np.floor_divide(a, np.where(b == 0, 1, b)))
    return np.divide(a, b)


def _power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy's power, except that integer negative exponents (which numpy
    rejects) give the integer part of 1 / a^|b|: 1 for a = 1, +-1 for
    a = -1, else 0 (also for a = 0)."""
    if not np.issubdtype(a.dtype, np.integer):
        return np.power(a, b)
    a, b = np.broadcast_arrays(a, b)
    neg = b < 0
    out = np.power(a, np.where(neg, 0, b).astype(b.dtype))
    frac = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0)).astype(a.dtype)
    return np.where(neg, frac, out)


def _divide_scalar(pb: PrimFuncBuilder, a: Expr, b: Expr) -> Expr:
    if a.is_float:
        return a / b
    if a.is_unsigned:  # truncating = floor
        zero = b.eq(0)
        return pb.select(zero, 0, a // pb.select(zero, 1, b))
    zero, minus_one = b.eq(0), b.eq(-1)
    q = a // pb.select(zero | minus_one, 1, b)
    return pb.select(zero, 0, pb.select(minus_one, 0 - a, q))


def _power_scalar(pb: PrimFuncBuilder, a: Expr, e: Expr) -> Expr:
    if a.is_float:
        return pb.math("powf", a, e)
    # exact wrapping exponentiation by squaring over the bits of e (unrolled)
    width = a.type.width.data  # type: ignore[attr-defined]
    result, base = pb.lift(1, a.type), a
    for bit in range(width - 1):
        shifted = pb.emit(arith.ShRSIOp(e.value, pb.lift(bit, e.type).value)) if bit else e
        result = pb.select((shifted & 1).ne(0), result * base, result)
        if bit < width - 2:
            base = base * base
    odd = (e & 1).ne(0)
    frac = pb.select(a.eq(1), 1, pb.select(a.eq(-1), pb.select(odd, -1, pb.lift(1, a.type)), pb.lift(0, a.type)))
    return pb.select(e < 0, frac, result)


def _extreme_scalar(fop: type, iop: type, bop: type) -> Callable[[PrimFuncBuilder, Expr, Expr], Expr]:
    def scalar(pb: PrimFuncBuilder, a: Expr, b: Expr) -> Expr:
        if a.is_float:
            return pb.emit(fop(a.value, b.value))
        if a.type.width.data == 1:  # type: ignore[attr-defined]  # bool: max = or, min = and
            return pb.emit(bop(a.value, b.value))
        return pb.max(a, b) if iop is arith.MaxSIOp else pb.min(a, b)  # by signedness

    return scalar


def _compare(fpred: str, ipred: str, bpred: str) -> Callable[[PrimFuncBuilder, Expr, Expr], Expr]:
    """float: ordered predicates (une for !=), as numpy treats NaN; int:
    signed, unsigned for uint8..uint64; bool: unsigned (false < true)."""

    def scalar(pb: PrimFuncBuilder, a: Expr, b: Expr) -> Expr:
        if a.is_float:
            return pb.emit(arith.CmpfOp(a.value, b.value, fpred))
        pred = bpred if a.type.width.data == 1 or a.is_unsigned else ipred  # type: ignore[attr-defined]
        return pb.emit(arith.CmpiOp(a.value, b.value, pred))

    return scalar


Add = _binary("add", np.add, lambda pb, a, b: a + b)
Subtract = _binary("subtract", np.subtract, lambda pb, a, b: a - b)
Multiply = _binary("multiply", np.multiply, lambda pb, a, b: a * b)
Divide = _binary("divide", _divide, _divide_scalar)
Power = _binary("power", _power, _power_scalar)
Maximum = _binary("maximum", np.maximum, _extreme_scalar(arith.MaximumfOp, arith.MaxSIOp, arith.OrIOp), bool_ok=True)
Minimum = _binary("minimum", np.minimum, _extreme_scalar(arith.MinimumfOp, arith.MinSIOp, arith.AndIOp), bool_ok=True)
Equal = _binary("equal", np.equal, _compare("oeq", "eq", "eq"), compare=True)
NotEqual = _binary("not_equal", np.not_equal, _compare("une", "ne", "ne"), compare=True)
Less = _binary("less", np.less, _compare("olt", "slt", "ult"), compare=True)
LessEqual = _binary("less_equal", np.less_equal, _compare("ole", "sle", "ule"), compare=True)
Greater = _binary("greater", np.greater, _compare("ogt", "sgt", "ugt"), compare=True)
GreaterEqual = _binary("greater_equal", np.greater_equal, _compare("oge", "sge", "uge"), compare=True)


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

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer]) -> None:
        (c, x1, x2), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x1.dtype)
        pb.compute(out, lambda *i: pb.select(broadcast_load(pb, c, i), broadcast_load(pb, x1, i),
                                             broadcast_load(pb, x2, i)))


@register_op
class Astype(OpSpec):
    """relax.astype: converts the element type. float -> int is defined for
    every value, identically on every target: NaN gives 0, values beyond the
    integer type (+-inf included) saturate to its minimum / maximum, the rest
    truncate toward zero (relax_xdsl/scalar_semantics.py). float -> bool is
    x != 0 (NaN is True); int -> narrower int wraps."""

    name = "astype"
    inputs = ("x",)
    params = {"dtype": Param("str", REQUIRED)}
    pattern = ELEMWISE

    def infer(self, ctx: Infer, x: TensorType, dtype: str) -> TensorType:
        return tensor(x.sym_shape, ctx.dtype(dtype))

    def reference(self, x: np.ndarray, dtype: str) -> np.ndarray:
        target = dtypes.np_dtype(dtype)
        if dtypes.is_float(x.dtype.name) and target.kind in "iu":
            return scalar_semantics.float_to_int_array(x, target)
        with np.errstate(invalid="ignore", over="ignore"):
            return x.astype(target)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer], dtype: str) -> None:
        (x,), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x.dtype, out.dtype)
        pb.compute(out, lambda *i: pb.cast(x[i], out.dtype))
