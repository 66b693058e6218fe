"""Creation ops (TVM Relax names): zeros, ones, full, arange.

No tensor operands: `shape` is symbolic dims over symbols bound elsewhere
in the function (`zeros(["n", 4])`); `full` takes its fill value as a
number parameter; `arange` follows numpy (static bounds).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.registry import INJECTIVE, REQUIRED, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import dim_to_str


class _Fill(OpSpec):
    inputs = ()
    pattern = INJECTIVE
    value: float = 0.0

    def _dtype(self, ctx: Infer, dtype: str) -> str:
        return ctx.dtype(dtype, "dtype")

    def _check(self, ctx: Infer, shape: tuple[sympy.Expr, ...]) -> None:
        for d in shape:
            if d.is_Integer and d < 0 or d == -1:
                ctx.fail(f"shape dims must be non-negative, got {dim_to_str(d)}")

    def infer(self, ctx: Infer, shape: tuple[sympy.Expr, ...], dtype: str, **params: Any) -> TensorType:
        self._check(ctx, shape)
        return tensor(shape, self._dtype(ctx, dtype))

    def fill(self, **params: Any) -> float:
        return self.value

    def reference(self, shape: tuple[int, ...], dtype: str, **params: Any) -> np.ndarray:
        return np.full(shape, self.fill(**params), dtype=dtypes.dtype_name(dtype))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], shape: Any, dtype: str, **params: Any) -> None:
        (out,) = outputs
        v = np.array(self.fill(**params)).astype(out.dtype).item()
        pb.compute(out, lambda *idx: pb.const(v, out.type.element_type))


@register_op
class Zeros(_Fill):
    """relax.zeros: a tensor of zeros."""

    name = "zeros"
    params = {"shape": Param("dims", REQUIRED), "dtype": Param("str", "float32")}


@register_op
class Ones(_Fill):
    """relax.ones: a tensor of ones."""

    name = "ones"
    params = {"shape": Param("dims", REQUIRED), "dtype": Param("str", "float32")}
    value = 1.0


@register_op
class Full(_Fill):
    """relax.full: a tensor filled with `fill_value` (converted to dtype)."""

    name = "full"
    params = {"shape": Param("dims", REQUIRED), "fill_value": Param("float", REQUIRED),
              "dtype": Param("str", "float32")}

    def fill(self, fill_value: float = 0.0, **params: Any) -> float:
        return fill_value


@register_op
class Arange(OpSpec):
    """relax.arange: start, start + step, ... below end (numpy semantics).
    With `length` (one dim, possibly symbolic: `[t]`) instead of `end`, the
    first `length` values: what `torch.arange(t)` exports to."""

    name = "arange"
    inputs = ()
    params = {"start": Param("float", REQUIRED), "end": Param("float", None), "step": Param("float", 1.0),
              "dtype": Param("str", "int64"), "length": Param("dims", None)}
    pattern = INJECTIVE

    @staticmethod
    def _range(start: float, end: float | None, step: float) -> tuple[float, float, int]:
        if end is None:
            start, end = 0.0, start
        return start, step, max(0, math.ceil((end - start) / step))

    def infer(self, ctx: Infer, start: float, end: float | None, step: float, dtype: str,
              length: tuple[Any, ...] | None) -> TensorType:
        if step == 0:
            ctx.fail("step must be non-zero")
        if length is not None:
            if end is not None or len(length) != 1:
                ctx.fail("length (one dim) replaces end; give one or the other")
            n: Any = length[0]
        else:
            _, _, n = self._range(start, end, step)
        return tensor((n,), ctx.dtype(dtype, "dtype"))

    def reference(self, start: float, end: float | None, step: float, dtype: str,
                  length: tuple[Any, ...] | None) -> np.ndarray:
        if length is not None:
            s, st, n = start, step, int(length[0])
        else:
            s, st, n = self._range(start, end, step)
        return (s + st * np.arange(n, dtype=np.float64)).astype(dtypes.dtype_name(dtype))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], start: float, end: float | None, step: float,
                 dtype: str, length: tuple[Any, ...] | None) -> None:
        (out,) = outputs
        s, st = (start, step) if length is not None else self._range(start, end, step)[:2]
        f64 = dtypes.to_xdsl("float64")
        pb.compute(out, lambda i: pb.cast(pb.cast(i, f64) * st + s, out.dtype))
