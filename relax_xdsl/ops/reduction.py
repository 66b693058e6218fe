"""Reduction ops, named and parametrized as TVM Relax's: sum, mean, max,
min, prod, variance over `axis` (None = every axis, an int or a list), and
argmax / argmin (axis None = over the flattened tensor, or one int) -> int64.

Shape rule: the reduced axes are dropped, or kept as 1 with `keepdims`;
an axis out of range or named twice is an error naming the op.

Dtypes: sum / prod take int and float tensors (accumulating in the input
dtype, wrapping like numpy with `dtype=`, except float16, which accumulates
in float32 as every float16 statistic here: 2048 + 1 is 2048 in float16, so
a float16 sum of 4096 ones would be 2048); mean / variance need floats; max / min / argmax / argmin take every
dtype, bool included. variance is the biased (population) variance, as
TVM's and numpy's default.

Legalizations use the structured compute form: one reduction compute for
sum / prod / max / min / mean (the division by the element count is the
epilogue); variance computes the mean into a local buffer first.
argmax / argmin are two computes as well, so they stay in the structured
form: the extreme value into a local buffer, then a `min` reduction over
the (flattened) index of the positions holding it. That picks the first
occurrence, and the first NaN when there is one, as numpy does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sympy
from xdsl.dialects import arith
from xdsl.dialects.builtin import AnyFloat

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import ShapeError
from relax_xdsl.ops.elementwise import check_legal_dtypes
from relax_xdsl.ops.registry import REDUCTION, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon

if TYPE_CHECKING:
    from relax_xdsl.tir_builder import Buffer, Expr, PrimFuncBuilder


# --- shape rules ----------------------------------------------------------------


def reduce_axes(ctx: Infer, x: TensorType, axis: Sequence[int] | None) -> tuple[int, ...]:
    """The normalized, sorted axes to reduce (None = all)."""
    if axis is None:
        return tuple(range(x.ndim))
    if x.ndim == 0 and axis:
        ctx.fail(f"axis {tuple(axis)} is out of range for a rank-0 tensor")
    return tuple(sorted(ctx.axes(axis, x.ndim)))


def reduced_shape(shape: Sequence[sympy.Expr], axes: Sequence[int], keepdims: bool) -> list[sympy.Expr]:
    if keepdims:
        return [sympy.Integer(1) if i in axes else d for i, d in enumerate(shape)]
    return [d for i, d in enumerate(shape) if i not in axes]


def _compute_dtype(dtype: str) -> str:
    """float16 / bfloat16 statistics accumulate in float32 (as TVM's legalizations do)."""
    return dtypes.compute_dtype(dtype)


# --- tensor-program helpers ---------------------------------------------------


def input_index(ndim: int, axes: Sequence[int], keepdims: bool, spatial: Sequence[Any],
                red: Sequence[Any]) -> tuple[Any, ...]:
    """The index into the reduced tensor: reduced axes take the reduction
    variables (in order), the others the output's spatial indices."""
    idx: list[Any] = []
    sp, rv = list(spatial), list(red)
    kept = iter(sp if not keepdims else [])
    for a in range(ndim):
        if a in axes:
            idx.append(rv[axes.index(a)])
        elif keepdims:
            idx.append(sp[a])
        else:
            idx.append(next(kept))
    return tuple(idx)


def reduce_compute(pb: PrimFuncBuilder, x: Buffer, out: Buffer, axes: Sequence[int], keepdims: bool,
                   combiner: str, value: Callable[[Expr, tuple[Expr, ...]], Expr],
                   finish: Callable[[Expr, tuple[Expr, ...]], Any] | None = None,
                   value_type: str | None = None) -> None:
    """out[spatial] = finish(combine over the reduced axes of value(x[idx], spatial), spatial).

    Without reduced axes (axis=[] or a scalar) the reduction is the single
    element itself, so it is written as a plain compute."""
    axes = list(axes)
    if not axes:
        def plain(*sp: Expr) -> Any:
            v = value(x[input_index(x.ndim, axes, keepdims, sp, ())], sp)
            return finish(v, sp) if finish else v

        pb.compute(out, plain)
        return

    def body(*args: Expr) -> Expr:
        sp, rv = args[: out.ndim], args[out.ndim:]
        return value(x[input_index(x.ndim, axes, keepdims, sp, rv)], sp)

    epilogue = (lambda acc, *sp: finish(acc, sp)) if finish else None
    pb.compute(out, body, reduce=(combiner, [x.shape[a] for a in axes]), epilogue=epilogue, value_type=value_type)


def element_count(pb: PrimFuncBuilder, shape: Sequence[sympy.Expr], axes: Sequence[int], dtype: str) -> Expr:
    """The number of reduced elements (a symbolic product) as a `dtype` value."""
    n = canon(sympy.Mul(*[shape[a] for a in axes])) if axes else sympy.Integer(1)
    return pb.cast(pb.index(n), dtype)


# --- ops -------------------------------------------------------------------------


class _Reduce(OpSpec):
    """A reduction over `axis` (None = all axes)."""

    inputs = ("x",)
    params = {"axis": Param("ints", None), "keepdims": Param("bool", False)}
    pattern = REDUCTION
    kinds: ClassVar[tuple[str, ...]] = ("int", "float")  # accepted dtype kinds: int, float, bool

    def infer(self, ctx: Infer, x: TensorType, axis: tuple[int, ...] | None, keepdims: bool) -> TensorType:
        kind = "bool" if x.dtype == "bool" else "float" if dtypes.is_float(x.dtype) else "int"
        if kind not in self.kinds:
            ctx.fail(f"x has dtype {x.dtype}, but {self.name} takes {' or '.join(self.kinds)} tensors; insert astype")
        axes = reduce_axes(ctx, x, axis)
        return tensor(reduced_shape(x.sym_shape, axes, keepdims), x.dtype)

    @staticmethod
    def _np_axes(x: np.ndarray, axis: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return None if axis is None else tuple(a % x.ndim for a in axis) if x.ndim else ()

    def _axes(self, x: Buffer, axis: tuple[int, ...] | None) -> list[int]:
        return list(range(x.ndim)) if axis is None else sorted(a % x.ndim for a in axis) if x.ndim else []


class _Accumulate(_Reduce):
    combiner: ClassVar[str]
    np_fn: ClassVar[Callable[..., np.ndarray]]

    def reference(self, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
        ct = np.dtype(_compute_dtype(x.dtype.name))
        with np.errstate(over="ignore"):
            out = type(self).np_fn(x.astype(ct, copy=False), axis=self._np_axes(x, axis), keepdims=keepdims, dtype=ct)
            return np.asarray(out).astype(x.dtype)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer],
                 axis: tuple[int, ...] | None, keepdims: bool) -> None:
        (x,), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x.dtype)
        ct = _compute_dtype(x.dtype)
        if ct == x.dtype:
            reduce_compute(pb, x, out, self._axes(x, axis), keepdims, self.combiner, lambda v, _: v)
            return
        reduce_compute(pb, x, out, self._axes(x, axis), keepdims, self.combiner, lambda v, _: pb.cast(v, ct),
                       finish=lambda acc, _: pb.cast(acc, out.dtype), value_type=ct)


@register_op
class Sum(_Accumulate):
    """relax.sum: the sum over `axis` (in the input dtype)."""

    name = "sum"
    combiner = "add"
    np_fn = staticmethod(np.sum)


@register_op
class Prod(_Accumulate):
    """relax.prod: the product over `axis` (in the input dtype)."""

    name = "prod"
    combiner = "mul"
    np_fn = staticmethod(np.prod)


def check_nonempty_axes(op: str, shape: Sequence[int], axes: Sequence[int]) -> None:
    """The evaluator's check: max / min / argmax / argmin of no elements has
    no value (numpy and ONNX refuse it too); the compiled programs check the
    same dims on entry (PrimFuncBuilder.require_nonempty)."""
    for a in axes:
        if shape[a] == 0:
            raise ShapeError(f"relax.{op}: reducing over an empty axis: dim {a} of shape {tuple(shape)} is 0 "
                             "(the result has no value)")


class _Extreme(_Reduce):
    kinds = ("int", "float", "bool")
    combiner: ClassVar[str]
    np_fn: ClassVar[Callable[..., np.ndarray]]

    def infer(self, ctx: Infer, x: TensorType, axis: tuple[int, ...] | None, keepdims: bool) -> TensorType:
        out = super().infer(ctx, x, axis, keepdims)
        for a in reduce_axes(ctx, x, axis):
            if x.sym_shape[a] == 0:
                ctx.fail(f"reducing over an empty axis: dim {a} is 0 (the result has no value)")
        return out

    def reference(self, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
        axes = self._np_axes(x, axis)
        check_nonempty_axes(self.name, x.shape, range(x.ndim) if axes is None else axes)
        return np.asarray(type(self).np_fn(x, axis=axes, keepdims=keepdims), dtype=x.dtype)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer],
                 axis: tuple[int, ...] | None, keepdims: bool) -> None:
        (x,), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x.dtype)
        axes = self._axes(x, axis)
        pb.require_nonempty([x.shape[a] for a in axes], f"relax.{self.name}")
        extreme_compute(pb, x, out, axes, keepdims, self.combiner)


def extreme_compute(pb: PrimFuncBuilder, x: Buffer, out: Buffer, axes: Sequence[int], keepdims: bool,
                    combiner: str) -> None:
    """max / min over axes. bool is widened to int8 (signed i1 would order true < false)."""
    if x.dtype == "bool":
        reduce_compute(pb, x, out, axes, keepdims, combiner, lambda v, _: pb.cast(v, "int8"),
                       finish=lambda acc, _: pb.cast(acc, "bool"), value_type="int8")
    else:
        reduce_compute(pb, x, out, axes, keepdims, combiner, lambda v, _: v)


@register_op
class Max(_Extreme):
    """relax.max: the maximum over `axis` (NaN propagates)."""

    name = "max"
    combiner = "max"
    np_fn = staticmethod(np.max)


@register_op
class Min(_Extreme):
    """relax.min: the minimum over `axis` (NaN propagates)."""

    name = "min"
    combiner = "min"
    np_fn = staticmethod(np.min)


@register_op
class Mean(_Reduce):
    """relax.mean: the arithmetic mean over `axis`."""

    name = "mean"
    kinds = ("float",)

    def reference(self, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
        xc = x.astype(_compute_dtype(x.dtype.name), copy=False)
        return np.asarray(np.mean(xc, axis=self._np_axes(x, axis), keepdims=keepdims)).astype(x.dtype)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer],
                 axis: tuple[int, ...] | None, keepdims: bool) -> None:
        (x,), (out,) = inputs, outputs
        mean_compute(pb, x, out, self._axes(x, axis), keepdims)


def mean_compute(pb: PrimFuncBuilder, x: Buffer, out: Buffer, axes: Sequence[int], keepdims: bool) -> None:
    """out = sum / count, accumulated in the compute dtype."""
    ct = _compute_dtype(x.dtype)
    reduce_compute(pb, x, out, axes, keepdims, "add", lambda v, _: pb.cast(v, ct),
                   finish=lambda acc, _: pb.cast(acc / element_count(pb, x.shape, axes, ct), out.dtype),
                   value_type=ct)


@register_op
class Variance(_Reduce):
    """relax.variance: the biased variance mean((x - mean(x))^2) over `axis`."""

    name = "variance"
    kinds = ("float",)

    def reference(self, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
        xc = x.astype(_compute_dtype(x.dtype.name), copy=False)
        return np.asarray(np.var(xc, axis=self._np_axes(x, axis), keepdims=keepdims)).astype(x.dtype)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer],
                 axis: tuple[int, ...] | None, keepdims: bool) -> None:
        (x,), (out,) = inputs, outputs
        axes = self._axes(x, axis)
        ct = _compute_dtype(x.dtype)
        mean = pb.alloc(out.shape, ct)
        mean_compute(pb, x, mean, axes, keepdims)

        def squared(v: Expr, sp: tuple[Expr, ...]) -> Expr:
            d = pb.cast(v, ct) - mean[sp]
            return d * d

        reduce_compute(pb, x, out, axes, keepdims, "add", squared,
                       finish=lambda acc, _: pb.cast(acc / element_count(pb, x.shape, axes, ct), out.dtype),
                       value_type=ct)


class _ArgExtreme(OpSpec):
    """The int64 index of the first extreme element along `axis` (None = flattened)."""

    inputs = ("x",)
    params = {"axis": Param("int", None), "keepdims": Param("bool", False)}
    pattern = REDUCTION
    combiner: ClassVar[str]
    np_fn: ClassVar[Callable[..., np.ndarray]]

    def infer(self, ctx: Infer, x: TensorType, axis: int | None, keepdims: bool) -> TensorType:
        if axis is not None and x.ndim == 0:
            ctx.fail(f"axis {axis} is out of range for a rank-0 tensor")
        axes = tuple(range(x.ndim)) if axis is None else (ctx.axis(axis, x.ndim),)
        for a in axes:
            if x.sym_shape[a] == 0:
                ctx.fail(f"reducing over an empty axis: dim {a} is 0 (the result has no value)")
        return tensor(reduced_shape(x.sym_shape, axes, keepdims), "int64")

    def reference(self, x: np.ndarray, axis: int | None, keepdims: bool) -> np.ndarray:
        check_nonempty_axes(self.name, x.shape, range(x.ndim) if axis is None else [axis % x.ndim] if x.ndim else [])
        return np.asarray(type(self).np_fn(x, axis=axis, keepdims=keepdims), dtype=np.int64)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer], axis: int | None,
                 keepdims: bool) -> None:
        (x,), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x.dtype)
        axes = list(range(x.ndim)) if axis is None else [axis % x.ndim]
        if not axes:  # a scalar: index 0
            pb.compute(out, lambda *sp: pb.const(0, out.type.element_type))
            return
        pb.require_nonempty([x.shape[a] for a in axes], f"relax.{self.name}")
        best = pb.alloc(out.shape, "int8" if x.dtype == "bool" else x.dtype)
        reduce_compute(pb, x, best, axes, keepdims, self.combiner,
                       lambda v, _: pb.cast(v, "int8") if x.dtype == "bool" else v)
        big = np.iinfo(np.int64).max

        def first_index(*args: Expr) -> Expr:
            sp, rv = args[: out.ndim], args[out.ndim:]
            v = x[input_index(x.ndim, axes, keepdims, sp, rv)]
            if x.dtype == "bool":
                v = pb.cast(v, "int8")
            b = best[sp]
            if isinstance(v.type, AnyFloat):
                # equal to the extreme, or NaN (max/min propagate NaN, so then the extreme is NaN)
                hit = pb.emit(arith.CmpfOp(v.value, b.value, "oeq")) | pb.emit(arith.CmpfOp(v.value, v.value, "uno"))
            else:
                hit = v.eq(b)
            flat = rv[0]
            for a, r in zip(axes[1:], rv[1:]):  # row-major index over the reduced axes
                flat = flat * pb.index(x.shape[a]) + r
            return pb.select(hit, pb.cast(flat, "int64"), big)

        pb.compute(out, first_index, reduce=("min", [x.shape[a] for a in axes]))


@register_op
class Argmax(_ArgExtreme):
    """relax.argmax: index of the first maximum along `axis` (None = of the flattened tensor)."""

    name = "argmax"
    combiner = "max"
    np_fn = staticmethod(np.argmax)


@register_op
class Argmin(_ArgExtreme):
    """relax.argmin: index of the first minimum along `axis` (None = of the flattened tensor)."""

    name = "argmin"
    combiner = "min"
    np_fn = staticmethod(np.argmin)
