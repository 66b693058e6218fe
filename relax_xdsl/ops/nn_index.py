"""Window ops whose result is an index: max_pool_indices, the argmax of
every max-pooling window as ONNX MaxPool's Indices output defines it.

Why its own op rather than pool_nd + argmax: the index is a flat offset
into the whole (N, C, spatial...) input, so it needs the window geometry
(stride, padding, dilation) that a plain argmax over an axis does not see.
The window rule, padding order and ceil_mode extents are pool_nd's, so the
indices always line up with MaxPool's values.

Ties go to the first maximum in window order (row-major over the taps), as
onnxruntime's strict `>` scan; padding taps never win. With storage_order 1
the spatial part of the offset is column-major (last spatial axis slowest),
as onnxruntime's `h + w * height` (and its N-d generalisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.nn import _in_bounds, _window_dim, _window_extent, _window_taps
from relax_xdsl.ops.nn_extra import _pads, _per_axis, _spatial_rank, _taps
from relax_xdsl.ops.registry import REDUCTION, Infer, OpSpec, Param, register_op, tensor


def _storage_order(ctx: Infer, storage_order: int) -> None:
    if storage_order not in (0, 1):
        ctx.fail(f"storage_order must be 0 (row-major) or 1 (column-major), got {storage_order}")


def _spatial_strides(sizes: Sequence[Any], storage_order: int) -> list[Any]:
    """Multiplier of each spatial position in the flat offset (row- or column-major)."""
    k = len(sizes)
    order = range(k - 1, -1, -1) if storage_order == 0 else range(k)
    mult: list[Any] = [1] * k
    step: Any = 1
    for i in order:
        mult[i] = step
        step = step * sizes[i]
    return mult


@register_op
class MaxPoolIndices(OpSpec):
    """relax.max_pool_indices: int64 flat index (over N*C*spatial of data) of
    the first maximum of each max-pooling window; shape as pool_nd's."""

    name = "max_pool_indices"
    inputs = ("data",)
    params = {"pool_size": Param("ints", (1,)), "strides": Param("ints", (1,)), "padding": Param("ints", (0,)),
              "dilation": Param("ints", (1,)), "ceil_mode": Param("bool", False), "storage_order": Param("int", 0)}
    pattern = REDUCTION

    def _params(self, ctx: Infer, k: int, pool_size: tuple[int, ...], strides: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...],
                storage_order: int) -> tuple[tuple[int, ...], ...]:
        _storage_order(ctx, storage_order)
        pbeg, pend = _pads(ctx, padding, k)
        return (_per_axis(ctx, pool_size, k, "pool_size"), _per_axis(ctx, strides, k, "strides"), pbeg, pend,
                _per_axis(ctx, dilation, k, "dilation"))

    def infer(self, ctx: Infer, data: TensorType, pool_size: tuple[int, ...], strides: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool, storage_order: int) -> TensorType:
        k = _spatial_rank(ctx, data)
        ks, st, pbeg, pend, dl = self._params(ctx, k, pool_size, strides, padding, dilation, storage_order)
        if data.dtype == "bool":
            ctx.fail("data must be numeric, got bool")
        outs = [_window_dim(ctx, data.sym_shape[2 + i], pbeg[i], pend[i], ks[i], st[i], dl[i], ceil_mode,
                            f"output spatial dim {i}") for i in range(k)]
        return tensor((*data.sym_shape[:2], *outs), "int64")

    def reference(self, data: np.ndarray, pool_size: tuple[int, ...], strides: tuple[int, ...],
                  padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool,
                  storage_order: int) -> np.ndarray:
        k = data.ndim - 2
        ks, st, pbeg, pend, dl = self._params(Infer(self.name), k, pool_size, strides, padding, dilation,
                                              storage_order)
        n, c, sizes = data.shape[0], data.shape[1], data.shape[2:]
        outs = [_window_extent(sizes[i], pbeg[i], pend[i], ks[i], st[i], dl[i], ceil_mode, self.name,
                               f"output spatial dim {i}", empty_ok=True) for i in range(k)]
        if 0 in outs:  # an input one short of the window: an empty result, as compiled code gives
            return np.zeros((n, c, *outs), np.int64)
        mult = _spatial_strides(sizes, storage_order)
        spatial = math.prod(sizes)
        low: Any = -np.inf if data.dtype.kind == "f" else np.iinfo(data.dtype).min
        grids = np.meshgrid(*(np.arange(o) for o in outs), indexing="ij")
        taps = []  # (in-bounds mask, value, spatial offset) per tap, in window order
        for tap in _taps(ks):
            pos = [g * st[i] - pbeg[i] + tap[i] * dl[i] for i, g in enumerate(grids)]
            ok = np.ones(tuple(outs), dtype=bool)
            for i, p in enumerate(pos):
                ok &= (p >= 0) & (p < sizes[i])
            clipped = [np.clip(p, 0, sizes[i] - 1) for i, p in enumerate(pos)]
            v = np.where(ok, data[(slice(None), slice(None), *clipped)], low)
            taps.append((ok, v, sum(p * m for p, m in zip(clipped, mult))))
        best = np.maximum.reduce([v for _, v, _ in taps])  # NaN propagates, as the max combiner
        big = np.iinfo(np.int64).max
        index = np.full((n, c, *outs), big, dtype=np.int64)
        for ok, v, flat in taps:
            hit = ok & ((v == best) | (np.isnan(v) if data.dtype.kind == "f" else False))
            index = np.where((index == big) & hit, flat, index)
        base = (np.arange(n)[:, None] * c + np.arange(c)[None, :]) * spatial
        # a window wholly in the padding has no index: int64 max, as the legalized min-reduction
        return np.ascontiguousarray(np.where(index == big, big, index + base.reshape(n, c, *([1] * k))))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], pool_size: tuple[int, ...],
                 strides: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool,
                 storage_order: int) -> None:
        (x,), (out,) = inputs, outputs
        k = x.ndim - 2
        ks, st, pbeg, pend, dl = self._params(Infer(self.name), k, pool_size, strides, padding, dilation,
                                              storage_order)
        spatial = x.shape[2:]
        acc = x.dtype
        low: Any = -math.inf if dtypes.is_float(acc) else int(np.iinfo(np.dtype(acc)).min)
        inside = not ceil_mode and not any(pbeg) and not any(pend)

        def positions(ys: Sequence[Any], kk: Sequence[Any]) -> list[Any]:
            return [_window_taps(pb, y, t, s, p, d) for y, t, s, p, d in zip(ys, kk, st, pbeg, dl)]

        best = pb.alloc(out.shape, acc)

        def value(*idx: Any) -> Any:
            n, c, ys, kk = idx[0], idx[1], idx[2:2 + k], idx[2 + k:]
            pos = positions(ys, kk)
            if inside:
                return x[(n, c, *pos)]
            ok = _in_bounds(pb, pos, [0] * k, [pb.index(d) for d in spatial])
            return pb.if_then_else(ok, lambda: x[(n, c, *pos)], low)

        pb.compute(best, value, reduce=("max", list(ks)))
        big = np.iinfo(np.int64).max
        mult = _spatial_strides([pb.index(d) for d in spatial], storage_order)

        def tap_number(kk: Sequence[Any]) -> Any:
            t = kk[0]
            for kv, size in zip(kk[1:], ks[1:]):
                t = t * pb.index(size) + kv
            return pb.cast(t, "int64")

        def first(*idx: Any) -> Any:
            # the smallest tap number (row-major over the window) holding the maximum:
            # with storage_order 1 the smallest flat offset would not be the first in window order
            n, c, ys, kk = idx[0], idx[1], idx[2:2 + k], idx[2 + k:]
            pos = positions(ys, kk)

            def hit() -> Any:
                v, b = x[(n, c, *pos)], best[(n, c, *ys)]
                if dtypes.is_float(acc):
                    same = pb.emit(arith.CmpfOp(v.value, b.value, "oeq"))
                    same = same | pb.emit(arith.CmpfOp(v.value, v.value, "uno"))
                else:
                    same = v.eq(b)
                return pb.select(same, tap_number(kk), big)

            if inside:
                return hit()
            ok = _in_bounds(pb, pos, [0] * k, [pb.index(d) for d in spatial])
            return pb.if_then_else(ok, hit, big)

        def offset(t: Any, n: Any, c: Any, *ys: Any) -> Any:
            """Tap number -> flat offset into data (int64 max stays: no tap in the input)."""
            rest = pb.cast(pb.select(t.eq(big), pb.const(0, dtypes.to_xdsl("int64")), t), IndexType())
            kk: list[Any] = [None] * k
            for i in range(k - 1, -1, -1):
                kk[i] = rest % pb.index(ks[i]) if i else rest
                rest = rest // pb.index(ks[i])
            flat = n * pb.index(x.shape[1]) + c
            for d in spatial:
                flat = flat * pb.index(d)
            for p, m in zip(positions(ys, kk), mult):
                flat = flat + (p if isinstance(m, int) else p * m)
            return pb.select(t.eq(big), t, pb.cast(flat, "int64"))

        pb.compute(out, first, reduce=("min", list(ks)), epilogue=offset)
