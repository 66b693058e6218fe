"""relax.attention: softmax(query @ key^T * scale + bias) @ value as one op.

Exporters write attention out as five to seven ops (MatMul, Div or Mul,
Add of a mask, Softmax, torch's Where(IsNaN) and MatMul), and each
materialises a [batch, heads, s, t] score matrix. Recognised as one op
(passes/recognize_attention.py) it can run as one library call that works
on a block of query rows at a time (rx_blas_attention), so the scores
never leave the cache.

Shapes (TVM's R.nn.attention takes [B, S, N, H]; this op takes the heads
among the batch dims, the layout exporters produce):
- query [*B, s, d], key [*B, t, d], value [*B, t, dv] -> [*B, s, dv];
  the batch dims B are equal (no broadcasting), rank 2 or more;
- bias: any tensor that broadcasts to the scores [*B, s, t] without
  enlarging them (a mask [b, 1, s, t], a padding mask [b, 1, 1, t], or a
  scalar 0 for none).

Parameters:
- `scale` (default None: 1 / sqrt(d), computed in the compute dtype as
  1 / sqrt(float(d)), as TVM's default);
- `zero_nan`: probabilities that are NaN become 0. That is what torch's
  scaled_dot_product_attention exports for rows the mask removes entirely
  (all -inf: exp(-inf - -inf) is NaN).

The scores are summed in the compute dtype (float32 for float16), scaled
after the sum, then the bias is added; softmax is relax.softmax's (max
subtracted, each exp divided by the row's sum).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.elementwise import broadcast_index, check_legal_dtypes
from relax_xdsl.ops.registry import OPAQUE, Infer, OpSpec, Param, register_op, tensor

if TYPE_CHECKING:
    from relax_xdsl.tir_builder import Buffer, PrimFuncBuilder


def default_scale(d: int, dtype: str) -> float:
    """1 / sqrt(d) as the op computes it in `dtype`'s compute dtype (what
    `scale=None` means for a head size d)."""
    ct = dtypes.np_dtype(dtypes.compute_dtype(dtype))
    return float(ct.type(1) / np.sqrt(ct.type(d)))


@register_op
class Attention(OpSpec):
    """relax.attention (R.nn.attention, heads among the batch dims):
    softmax(query @ swapaxes(key) * scale + bias) @ value."""

    name = "attention"
    inputs = ("query", "key", "value", "bias")
    params = {"scale": Param("float", None), "zero_nan": Param("bool", False)}
    pattern = OPAQUE  # matmuls around a row-wise softmax: nothing fuses into it

    def infer(self, ctx: Infer, query: TensorType, key: TensorType, value: TensorType, bias: TensorType,
              scale: float | None, zero_nan: bool) -> TensorType:
        named = (("query", query), ("key", key), ("value", value), ("bias", bias))
        for what, t in named:
            if not dtypes.is_float(t.dtype):
                ctx.fail(f"{what} must have a floating-point dtype, got {t.dtype}")
            if t.dtype != query.dtype:
                ctx.fail(f"{what} has dtype {t.dtype} but query has {query.dtype}; insert astype")
        rank = query.ndim
        if rank < 2:
            ctx.fail(f"query must have rank >= 2 ([*batch, s, d]), got rank {rank}")
        for what, t in named[1:3]:
            if t.ndim != rank:
                ctx.fail(f"{what} has rank {t.ndim} but query has rank {rank}; the batch dims must match")
        q, k, v = query.sym_shape, key.sym_shape, value.sym_shape
        for i in range(rank - 2):
            ctx.same(q[i], k[i], f"query dim {i} vs key dim {i} (a batch dim)")
            ctx.same(q[i], v[i], f"query dim {i} vs value dim {i} (a batch dim)")
        ctx.same(q[-1], k[-1], f"query dim {rank - 1} vs key dim {rank - 1} (the head size d)")
        ctx.same(k[-2], v[-2], f"key dim {rank - 2} vs value dim {rank - 2} (the key length t)")
        scores = [*q[:-1], k[-2]]
        if bias.ndim > rank:
            ctx.fail(f"bias has rank {bias.ndim}, more than the scores' rank {rank}")
        lead = rank - bias.ndim
        for i, b in enumerate(bias.sym_shape):  # each dim 1 (it stretches) or the scores' own
            if b != 1:
                ctx.same(b, scores[lead + i], f"bias dim {i} vs scores dim {lead + i} (the bias must broadcast "
                                              f"to the scores [*batch, s, t] without enlarging them)")
        return tensor([*q[:-1], v[-1]], query.dtype)

    def reference(self, query: np.ndarray, key: np.ndarray, value: np.ndarray, bias: np.ndarray,
                  scale: float | None, zero_nan: bool) -> np.ndarray:
        from relax_xdsl.ops.registry import get_spec

        ct = dtypes.np_dtype(dtypes.compute_dtype(query.dtype.name))
        s = np.matmul(query.astype(ct), np.swapaxes(key.astype(ct), -1, -2))
        factor = ct.type(default_scale(query.shape[-1], query.dtype.name) if scale is None else scale)
        s = s * factor + bias.astype(ct)
        with np.errstate(invalid="ignore"):  # a row of all -inf gives NaN, as the written-out form does
            p = get_spec("softmax").reference(s.astype(ct, copy=False), axis=-1)
        if zero_nan:
            p = np.where(np.isnan(p), ct.type(0), p)
        return np.asarray(np.matmul(p, value.astype(ct))).astype(query.dtype)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer],
                 scale: float | None, zero_nan: bool) -> None:
        """Scores, row max, row sum of exp and the weighted sum of values as
        four computes over local buffers (the score matrix materialised:
        the library call, not this definition, is what avoids that)."""
        from relax_xdsl.ops.reduction import element_count

        (q, k, v, bias), (out,) = inputs, outputs
        check_legal_dtypes(self.name, q.dtype, out.dtype)
        ct = dtypes.compute_dtype(q.dtype)
        rank = q.ndim
        batch = list(q.shape[:-2])
        scores = pb.alloc([*batch, q.shape[-2], k.shape[-2]], ct)
        if scale is None:
            factor: Any = pb.const(1.0, dtypes.to_xdsl(ct)) / pb.math(
                "sqrt", element_count(pb, q.shape, [rank - 1], ct))
        else:
            factor = pb.const(scale, dtypes.to_xdsl(ct))

        def dot(*args: Any) -> Any:
            *b, i, j, r = args
            return pb.cast(q[(*b, i, r)], ct) * pb.cast(k[(*b, j, r)], ct)

        def scaled(acc: Any, *idx: Any) -> Any:
            return acc * factor + pb.cast(bias[tuple(broadcast_index(pb, bias.shape, idx))], ct)

        pb.compute(scores, dot, reduce=("add", [q.shape[-1]]), epilogue=scaled)
        rows = [*batch, q.shape[-2]]
        top = pb.alloc(rows, ct)
        pb.compute(top, lambda *a: scores[tuple(a)], reduce=("max", [k.shape[-2]]))
        total = pb.alloc(rows, ct)
        pb.compute(total, lambda *a: pb.math("exp", scores[tuple(a)] - top[tuple(a[:-1])]),
                   reduce=("add", [k.shape[-2]]))

        def weighted(*args: Any) -> Any:
            *b, i, _, j = args
            p = pb.math("exp", scores[(*b, i, j)] - top[(*b, i)]) / total[(*b, i)]
            if zero_nan:
                p = pb.select(p.ne(p), pb.const(0.0, dtypes.to_xdsl(ct)), p)
            return p * pb.cast(v[(*b, j, args[-2])], ct)

        if ct == out.dtype:
            pb.compute(out, weighted, reduce=("add", [k.shape[-2]]))
        else:
            pb.compute(out, weighted, reduce=("add", [k.shape[-2]]), epilogue=lambda s, *_: pb.cast(s, out.dtype),
                       value_type=ct)
