"""Linear algebra: matmul, as TVM Relax's `R.matmul(x1, x2, out_dtype=None)`.

Semantics are numpy's matmul: a 1-D x1 is [1, k] and a 1-D x2 is [k, 1]
(the added dim is dropped from the result), dims before the last two are
batch dims and broadcast (Infer.broadcast), and the contracted dims must
be equal: provably different is a ShapeError naming both operands' dims,
unprovable is an assumption checked at run time.

With `out_dtype` the operands are converted to it before multiplying and
the sum accumulates in it (as TVM's legalization does). A float16 result
accumulates in float32 and is rounded once at the end (in float16, 2048 + 1
is 2048: a row of 4096 ones would sum to 2048).

The legalization is one reduction compute over k; the default schedule
(and library offload) make it fast, not this definition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.elementwise import broadcast_index, check_legal_dtypes
from relax_xdsl.ops.registry import OUT_FUSIBLE, Infer, OpSpec, Param, register_op, tensor

if TYPE_CHECKING:
    from relax_xdsl.tir_builder import Buffer, Expr, PrimFuncBuilder


@register_op
class Matmul(OpSpec):
    """relax.matmul: numpy matmul (1-D promotion, broadcast batch dims), optional out_dtype."""

    name = "matmul"
    inputs = ("x1", "x2")
    params = {"out_dtype": Param("str", None)}
    pattern = OUT_FUSIBLE

    def infer(self, ctx: Infer, x1: TensorType, x2: TensorType, out_dtype: str | None) -> TensorType:
        for what, t in (("x1", x1), ("x2", x2)):
            if t.ndim == 0:
                ctx.fail(f"{what} is a scalar; matmul needs rank >= 1 (use multiply)")
            if t.dtype == "bool":
                ctx.fail(f"{what} has dtype bool; matmul takes int or float tensors (insert astype)")
        if x1.dtype != x2.dtype:
            ctx.fail(f"x1 has dtype {x1.dtype} but x2 has {x2.dtype}; insert astype")
        dtype = x1.dtype
        if out_dtype is not None:
            dtype = ctx.dtype(out_dtype, "out_dtype")
            if dtype == "bool":
                ctx.fail("out_dtype bool is not supported")
        a, b = x1.sym_shape, x2.sym_shape
        k2 = 0 if len(b) == 1 else len(b) - 2
        ctx.same(a[-1], b[k2], f"x1 dim {len(a) - 1} vs x2 dim {k2} (the reduction dim k)")
        shape = list(ctx.broadcast(a[:-2], b[:-2]))
        if len(a) >= 2:
            shape.append(a[-2])
        if len(b) >= 2:
            shape.append(b[-1])
        return tensor(shape, dtype)

    def reference(self, x1: np.ndarray, x2: np.ndarray, out_dtype: str | None) -> np.ndarray:
        dt = dtypes.np_dtype(out_dtype) if out_dtype is not None else x1.dtype
        ct = dtypes.np_dtype(dtypes.compute_dtype(dt.name))
        return np.asarray(np.matmul(x1.astype(dt, copy=False).astype(ct), x2.astype(dt, copy=False).astype(ct))).astype(dt)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer],
                 out_dtype: str | None) -> None:
        (x1, x2), (out,) = inputs, outputs
        check_legal_dtypes(self.name, x1.dtype, out.dtype)
        r1, r2 = x1.ndim, x2.ndim
        nbatch = out.ndim - (r1 >= 2) - (r2 >= 2)

        def body(*args: Expr) -> Expr:
            sp, k = args[:-1], args[-1]
            batch = sp[:nbatch]
            idx1 = broadcast_index(pb, x1.shape[:-2], batch) + ([sp[nbatch]] if r1 >= 2 else []) + [k]
            idx2 = broadcast_index(pb, x2.shape[:-2], batch) + [k] + ([sp[-1]] if r2 >= 2 else [])
            a, b = pb.cast(x1[tuple(idx1)], out.dtype), pb.cast(x2[tuple(idx2)], out.dtype)
            return pb.cast(a, acc) * pb.cast(b, acc)

        acc = dtypes.compute_dtype(out.dtype)
        if acc == out.dtype:
            pb.compute(out, body, reduce=("add", [x1.shape[-1]]))
        else:
            pb.compute(out, body, reduce=("add", [x1.shape[-1]]), epilogue=lambda s, *_: pb.cast(s, out.dtype),
                       value_type=acc)
