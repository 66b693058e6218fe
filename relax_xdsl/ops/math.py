"""Math ops beyond elementwise.py's: trigonometric and hyperbolic functions,
sign, round (half to even), the float predicates isnan / isinf, bitwise and
shift ops on integers, logical ops on bool, and the two remainders.

Shape rule: unary ops keep the shape, binary ops broadcast (the factories
of elementwise.py). Reference: the numpy function of each spec, whose
semantics every target reproduces:
- round is numpy's round: halves to even (C's nearbyint under the default
  rounding mode);
- left_shift / right_shift follow numpy for every amount (0, or the sign
  for a right shift, beyond the width or below 0);
- mod is numpy's mod (the sign of the divisor), fmod C's fmod (the sign of
  the dividend); for integers both give 0 for a zero divisor, as numpy
  does, and never trap (INT_MIN % -1 is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from xdsl.dialects import arith

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import RemFOp
from relax_xdsl.ops.elementwise import BinaryOp, UnaryOp, _binary, _math, _unary
from relax_xdsl.ops.registry import Infer, register_op, tensor

if TYPE_CHECKING:
    from relax_xdsl.tir_builder import Expr, PrimFuncBuilder


def _quiet(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """numpy's result without its warnings (NaN / inf out of the domain, x % 0)."""

    def run(*args: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return fn(*args)

    return run


# --- trigonometric and hyperbolic --------------------------------------------

Sin = _unary("sin", _quiet(np.sin), _math("sin"))
Cos = _unary("cos", _quiet(np.cos), _math("cos"))
Tan = _unary("tan", _quiet(np.tan), _math("tan"))
Asin = _unary("asin", _quiet(np.arcsin), _math("asin"))
Acos = _unary("acos", _quiet(np.arccos), _math("acos"))
Atan = _unary("atan", _quiet(np.arctan), _math("atan"))
Sinh = _unary("sinh", _quiet(np.sinh), _math("sinh"))
Cosh = _unary("cosh", _quiet(np.cosh), _math("cosh"))
Asinh = _unary("asinh", _quiet(np.arcsinh), _math("asinh"))
Acosh = _unary("acosh", _quiet(np.arccosh), _math("acosh"))
Atanh = _unary("atanh", _quiet(np.arctanh), _math("atanh"))


# --- sign and rounding ----------------------------------------------------------


def _sign_scalar(pb: PrimFuncBuilder, v: Expr) -> Expr:
    """1 / -1 by the sign; zero and NaN give themselves (numpy's sign)."""
    one, minus_one = pb.lift(1, v.type), pb.lift(-1, v.type)
    rest = v if v.is_float else pb.lift(0, v.type)
    return pb.select(v > 0, one, pb.select(v < 0, minus_one, rest))


Sign = _unary("sign", _quiet(np.sign), _sign_scalar, float_only=False)
Round = _unary("round", np.round, _math("roundeven"))


class _FloatPredicate(UnaryOp):
    """A bool per element of a float tensor."""

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> TensorType:
        super().infer(ctx, x)
        return tensor(x.sym_shape, "bool")

    def reference(self, x: np.ndarray, **params: Any) -> np.ndarray:
        return np.asarray(type(self).fn(x), dtype=bool)


def _predicate(name: str, fn: Callable[[np.ndarray], np.ndarray],
               scalar: Callable[[PrimFuncBuilder, Expr], Expr]) -> type[UnaryOp]:
    cls = type(name.capitalize(), (_FloatPredicate,), {"name": name, "fn": staticmethod(fn),
                                                        "scalar": staticmethod(scalar),
                                                        "__doc__": f"relax.{name}: elementwise {name} -> bool."})
    return register_op(cls)


def _isinf_scalar(pb: PrimFuncBuilder, v: Expr) -> Expr:
    return pb.emit(arith.CmpfOp(pb.math("absf", v).value, pb.lift(float("inf"), v.type).value, "oeq"))


Isnan = _predicate("isnan", np.isnan, lambda pb, v: pb.emit(arith.CmpfOp(v.value, v.value, "uno")))
Isinf = _predicate("isinf", np.isinf, _isinf_scalar)


# --- bitwise and shifts on integers -----------------------------------------------


class _IntUnary(UnaryOp):
    float_only = False

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> TensorType:
        if not dtypes.is_int(x.dtype):
            ctx.fail(f"needs an integer tensor, got {x.dtype}")
        return x


@register_op
class BitwiseNot(_IntUnary):
    """relax.bitwise_not: ~x on integers."""

    name = "bitwise_not"
    fn = staticmethod(np.invert)
    scalar = staticmethod(lambda pb, v: pb.emit(arith.XOrIOp(v.value, pb.lift(-1, v.type).value)))


class _TypedBinary(BinaryOp):
    """A binary op on one kind of dtype: `kind` is "int" or "bool"."""

    kind: ClassVar[str]

    def infer(self, ctx: Infer, x1: TensorType, x2: TensorType) -> TensorType:
        ok = dtypes.is_int(x1.dtype) if self.kind == "int" else x1.dtype == "bool"
        if not ok:
            ctx.fail(f"needs {'integer' if self.kind == 'int' else 'bool'} tensors, got {x1.dtype}")
        return super().infer(ctx, x1, x2)


def _typed_binary(name: str, kind: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  scalar: Callable[[PrimFuncBuilder, Expr, Expr], Expr]) -> type[BinaryOp]:
    cls = type("".join(p.capitalize() for p in name.split("_")), (_TypedBinary,),
               {"name": name, "kind": kind, "bool_ok": kind == "bool", "fn": staticmethod(fn),
                "scalar": staticmethod(scalar), "__doc__": f"relax.{name}: elementwise {name}, broadcasting."})
    return register_op(cls)


def _arith(op: type) -> Callable[[PrimFuncBuilder, Expr, Expr], Expr]:
    return lambda pb, a, b: pb.emit(op(a.value, b.value))


BitwiseAnd = _typed_binary("bitwise_and", "int", np.bitwise_and, _arith(arith.AndIOp))
BitwiseOr = _typed_binary("bitwise_or", "int", np.bitwise_or, _arith(arith.OrIOp))
BitwiseXor = _typed_binary("bitwise_xor", "int", np.bitwise_xor, _arith(arith.XOrIOp))
LeftShift = _typed_binary("left_shift", "int", np.left_shift, _arith(arith.ShLIOp))
RightShift = _typed_binary("right_shift", "int", np.right_shift, _arith(arith.ShRSIOp))
LogicalAnd = _typed_binary("logical_and", "bool", np.logical_and, _arith(arith.AndIOp))
LogicalOr = _typed_binary("logical_or", "bool", np.logical_or, _arith(arith.OrIOp))
LogicalXor = _typed_binary("logical_xor", "bool", np.logical_xor, _arith(arith.XOrIOp))


# --- remainders --------------------------------------------------------------------


def _truncated_rem(pb: PrimFuncBuilder, a: Expr, b: Expr) -> Expr:
    """C's remainder: fmod for floats; for integers 0 when b is 0 (numpy's
    fmod), computed on a divisor that is never 0."""
    if a.is_float:
        return pb.emit(RemFOp(a.value, b.value))
    zero = b.eq(0)
    return pb.select(zero, 0, pb.emit(arith.RemSIOp(a.value, pb.select(zero, 1, b).value)))


def _floor_rem(pb: PrimFuncBuilder, a: Expr, b: Expr) -> Expr:
    """numpy's mod: the truncated remainder moved by b when its sign differs from b's."""
    r = _truncated_rem(pb, a, b)
    differ = pb.emit(arith.XOrIOp((r < 0).value, (b < 0).value))
    return pb.select(r.ne(0) & differ, r + b, r)


Fmod = _binary("fmod", _quiet(np.fmod), _truncated_rem)
Mod = _binary("mod", _quiet(np.mod), _floor_rem)
