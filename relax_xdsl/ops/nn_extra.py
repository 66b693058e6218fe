"""N-d window ops: conv_nd, pool_nd and conv_transpose_nd, for any number of
spatial axes (1-d, 2-d, 3-d, ...), data (N, C, spatial...) and weights
(O, I/groups, kernel...) / (I, O/groups, kernel...).

Why separate from conv2d / max_pool2d / avg_pool2d: those keep their 2-d
fast paths (BLAS offload, register-tiled schedules, shifted-window GEMMs);
these are one op per concept for every other rank (ONNX Conv/Pool in 3-d,
LpPool, ConvTranspose), lowered to plain window loops.

Padding is ONNX-ordered: (begin_1, ..., begin_k, end_1, ..., end_k). Output
extents are deduced symbolically with the shared window rule of nn.py
(`(size + pb + pe - dilation*(k - 1) - 1) floordiv stride + 1`, ceildiv in
ceil_mode); an extent that cannot be proven >= 1 is a runtime assumption.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import ShapeError
from relax_xdsl.ops.nn import (
    _compute_dtype,
    _in_bounds,
    _tap_counts,
    _window_dim,
    _window_extent,
    _window_mean,
    _window_taps,
)
from relax_xdsl.ops.registry import OUT_FUSIBLE, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon, dim_to_str, floordiv, mod

POOL_KINDS = ("max", "avg", "sum")


# --- shared parameter checks -------------------------------------------------------------


def _spatial_rank(ctx: Infer, data: TensorType, what: str = "data") -> int:
    if data.ndim < 3:
        ctx.fail(f"{what} must have rank >= 3 (N, C, spatial...), got rank {data.ndim}")
    return data.ndim - 2


def _per_axis(ctx: Infer, values: tuple[int, ...], k: int, name: str, minimum: int | None = 1) -> tuple[int, ...]:
    """A window parameter with one int per spatial axis (1 int: the same on every axis)."""
    if len(values) == 1:
        values = values * k
    if len(values) != k:
        ctx.fail(f"{name} must have 1 or {k} ints (one per spatial axis), got {len(values)}: {tuple(values)}")
    if minimum is not None and any(v < minimum for v in values):
        ctx.fail(f"{name} must be >= {minimum}, got {tuple(values)}")
    return tuple(values)


def _pads(ctx: Infer, padding: tuple[int, ...], k: int, allow_negative: bool = False) -> tuple[tuple[int, ...],
                                                                                                tuple[int, ...]]:
    """ONNX pads (begins..., ends...); 1 int: all sides; k ints: symmetric."""
    if len(padding) == 1:
        padding = padding * (2 * k)
    elif len(padding) == k:
        padding = padding * 2
    if len(padding) != 2 * k:
        ctx.fail(f"padding must have 1, {k} or {2 * k} ints (begins then ends), got {len(padding)}: {tuple(padding)}")
    if not allow_negative and any(p < 0 for p in padding):
        ctx.fail(f"padding must be >= 0, got {tuple(padding)}")
    return tuple(padding[:k]), tuple(padding[k:])


def _result_dtype(ctx: Infer, data: TensorType, weight: TensorType) -> str:
    if data.dtype != weight.dtype:
        ctx.fail(f"data dtype {data.dtype} and weight dtype {weight.dtype} differ; insert astype")
    if data.dtype == "bool":
        ctx.fail("data must be numeric, got bool")
    return data.dtype


def _groups(ctx: Infer, groups: int, channels: Any, what: str) -> None:
    """`channels` must be a multiple of groups (proved, or checked at run time)."""
    if groups < 1:
        ctx.fail(f"groups must be >= 1, got {groups}")
    if groups == 1:
        return
    c = canon(channels)
    if c.is_Integer and int(c) % groups:
        ctx.fail(f"{what} {c} is not divisible by groups {groups}")
    if not c.is_Integer:
        ctx.same(mod(c, groups), 0, f"{what} {dim_to_str(c)} mod groups {groups}")


def _taps(kernel: Sequence[int]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in kernel)))


def _zero(dtype: str) -> float | int:
    return 0.0 if dtypes.is_float(dtype) else 0


# --- conv_nd -----------------------------------------------------------------------------


@register_op
class ConvNd(OpSpec):
    """relax.conv_nd: N-d convolution (cross-correlation) over data's spatial
    axes 2.., weight (O, C/groups, kernel...), grouped when groups > 1."""

    name = "conv_nd"
    inputs = ("data", "weight")
    params = {"strides": Param("ints", (1,)), "padding": Param("ints", (0,)), "dilation": Param("ints", (1,)),
              "groups": Param("int", 1)}
    pattern = OUT_FUSIBLE

    def infer(self, ctx: Infer, data: TensorType, weight: TensorType, strides: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], groups: int) -> TensorType:
        k = _spatial_rank(ctx, data)
        if weight.ndim != data.ndim:
            ctx.fail(f"weight must have rank {data.ndim} (O, C/groups, kernel...), got rank {weight.ndim}")
        dtype = _result_dtype(ctx, data, weight)
        st, dl = _per_axis(ctx, strides, k, "strides"), _per_axis(ctx, dilation, k, "dilation")
        pb, pe = _pads(ctx, padding, k)
        n, c = data.sym_shape[:2]
        o, ci = weight.sym_shape[:2]
        _groups(ctx, groups, o, "weight out-channels (dim 0)")
        ctx.same(c, ci * groups, f"data in-channels (dim 1) vs weight in-channels (dim 1) * groups {groups}")
        outs = [_window_dim(ctx, data.sym_shape[2 + i], pb[i], pe[i], weight.sym_shape[2 + i], st[i], dl[i], False,
                            f"output spatial dim {i}") for i in range(k)]
        return tensor((n, o, *outs), dtype)

    def reference(self, data: np.ndarray, weight: np.ndarray, strides: tuple[int, ...], padding: tuple[int, ...],
                  dilation: tuple[int, ...], groups: int) -> np.ndarray:
        ctx = Infer(self.name)
        k = data.ndim - 2
        st, dl = _per_axis(ctx, strides, k, "strides"), _per_axis(ctx, dilation, k, "dilation")
        pb, pe = _pads(ctx, padding, k)
        acc = _compute_dtype(data.dtype) if data.dtype.kind == "f" else np.dtype(data.dtype)
        kernel = weight.shape[2:]
        outs = [_window_extent(data.shape[2 + i], pb[i], pe[i], kernel[i], st[i], dl[i], False, self.name,
                               f"output spatial dim {i}", empty_ok=True) for i in range(k)]
        if 0 in outs:  # an input one short of the window: an empty result, as compiled code gives
            return np.zeros((data.shape[0], weight.shape[0], *outs), data.dtype)
        x = np.pad(data.astype(acc, copy=False), [(0, 0), (0, 0), *zip(pb, pe)])
        n, c = data.shape[:2]
        o = weight.shape[0]
        g = groups
        w = weight.astype(acc, copy=False).reshape(g, o // g, c // g, *kernel)
        out = np.zeros((n, g, o // g, *outs), dtype=acc)
        for tap in _taps(kernel):
            sl = tuple(slice(t * d, t * d + (m - 1) * s + 1, s) for t, d, m, s in zip(tap, dl, outs, st))
            window = x[(slice(None), slice(None), *sl)].reshape(n, g, c // g, *outs)
            out += np.einsum("gok,ngk...->ngo...", w[(..., *tap)], window)
        return out.reshape(n, o, *outs).astype(data.dtype, copy=False)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], strides: tuple[int, ...],
                 padding: tuple[int, ...], dilation: tuple[int, ...], groups: int) -> None:
        (x, w), (out,) = inputs, outputs
        ctx = Infer(self.name)
        k = x.ndim - 2
        st, dl = _per_axis(ctx, strides, k, "strides"), _per_axis(ctx, dilation, k, "dilation")
        pbeg, pend = _pads(ctx, padding, k)
        ct = _compute_dtype(np.dtype(out.dtype)).name
        o, ci = w.shape[:2]
        per_group = floordiv(o, groups) if groups > 1 else o
        spatial = x.shape[2:]
        inside = not any(pbeg) and not any(pend)

        def body(*idx: Any) -> Any:
            n, oc, ys, ic, ks = idx[0], idx[1], idx[2:2 + k], idx[2 + k], idx[3 + k:]
            c = (oc // pb.index(per_group)) * pb.index(ci) + ic if groups > 1 else ic
            pos = [_window_taps(pb, y, kk, s, p, d) for y, kk, s, p, d in zip(ys, ks, st, pbeg, dl)]
            wv = pb.cast(w[(oc, ic, *ks)], ct)
            if inside:
                return pb.cast(x[(n, c, *pos)], ct) * wv
            ok = _in_bounds(pb, pos, [0] * k, [pb.index(d) for d in spatial])
            return pb.if_then_else(ok, lambda: pb.cast(x[(n, c, *pos)], ct), _zero(ct)) * wv

        pb.compute(out, body, reduce=("add", [ci, *w.shape[2:]]),
                   epilogue=(lambda acc, *sp: pb.cast(acc, out.dtype)), value_type=ct)


# --- pool_nd -----------------------------------------------------------------------------


@register_op
class PoolNd(OpSpec):
    """relax.pool_nd: N-d window max, mean or sum over data's spatial axes 2..
    (`kind` max / avg / sum). Padding counts as -inf for max and 0 for the
    others; avg divides by the taps inside the input, or with
    count_include_pad also those in the explicit padding (not ceil_mode's)."""

    name = "pool_nd"
    inputs = ("data",)
    params = {"kind": Param("str", "max"), "pool_size": Param("ints", (1,)), "strides": Param("ints", (1,)),
              "padding": Param("ints", (0,)), "dilation": Param("ints", (1,)), "ceil_mode": Param("bool", False),
              "count_include_pad": Param("bool", False)}
    pattern = OUT_FUSIBLE

    def _params(self, ctx: Infer, k: int, kind: str, pool_size: tuple[int, ...], strides: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        if kind not in POOL_KINDS:
            ctx.fail(f"kind {kind!r} is not one of {', '.join(POOL_KINDS)}")
        pbeg, pend = _pads(ctx, padding, k)
        return (_per_axis(ctx, pool_size, k, "pool_size"), _per_axis(ctx, strides, k, "strides"), pbeg, pend,
                _per_axis(ctx, dilation, k, "dilation"))

    def infer(self, ctx: Infer, data: TensorType, kind: str, pool_size: tuple[int, ...], strides: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool,
              count_include_pad: bool) -> TensorType:
        k = _spatial_rank(ctx, data)
        ks, st, pbeg, pend, dl = self._params(ctx, k, kind, pool_size, strides, padding, dilation)
        if data.dtype == "bool":
            ctx.fail("data must be numeric, got bool")
        outs = [_window_dim(ctx, data.sym_shape[2 + i], pbeg[i], pend[i], ks[i], st[i], dl[i], ceil_mode,
                            f"output spatial dim {i}") for i in range(k)]
        return tensor((*data.sym_shape[:2], *outs), data.dtype)

    def reference(self, data: np.ndarray, kind: str, pool_size: tuple[int, ...], strides: tuple[int, ...],
                  padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool,
                  count_include_pad: bool) -> np.ndarray:
        k = data.ndim - 2
        ks, st, pbeg, pend, dl = self._params(Infer(self.name), k, kind, pool_size, strides, padding, dilation)
        sizes = data.shape[2:]
        outs = [_window_extent(sizes[i], pbeg[i], pend[i], ks[i], st[i], dl[i], ceil_mode, self.name,
                               f"output spatial dim {i}", empty_ok=True) for i in range(k)]
        if 0 in outs:  # an input one short of the window: an empty result, as compiled code gives
            return np.zeros((*data.shape[:2], *outs), data.dtype)
        if kind == "max":
            acc = data.dtype
            low: Any = -np.inf if data.dtype.kind == "f" else np.iinfo(data.dtype).min
        else:
            acc = _compute_dtype(data.dtype) if data.dtype.kind == "f" else np.dtype(np.int64)
            low = 0
        extra = [max(0, (outs[i] - 1) * st[i] + dl[i] * (ks[i] - 1) + 1 - (sizes[i] + pbeg[i] + pend[i]))
                 for i in range(k)]
        x = np.pad(data.astype(acc, copy=False), [(0, 0), (0, 0), *((pbeg[i], pend[i] + extra[i]) for i in range(k))],
                   constant_values=low)
        parts = []
        for tap in _taps(ks):
            sl = tuple(slice(t * d, t * d + (m - 1) * s + 1, s) for t, d, m, s in zip(tap, dl, outs, st))
            parts.append(x[(slice(None), slice(None), *sl)])
        stacked = np.stack(parts)
        if kind == "max":
            return np.ascontiguousarray(stacked.max(axis=0))
        sums = stacked.sum(axis=0)
        if kind == "sum":
            return sums.astype(data.dtype, copy=False)
        counts = np.ones((), dtype=np.int64)
        for i in range(k):
            c = _tap_counts(sizes[i], outs[i], ks[i], st[i], dl[i], pbeg[i], pend[i], count_include_pad)
            counts = np.multiply.outer(counts, c)
        from relax_xdsl.ops.nn import _divide

        return _divide(sums, counts, data.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], kind: str, pool_size: tuple[int, ...],
                 strides: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool,
                 count_include_pad: bool) -> None:
        (x,), (out,) = inputs, outputs
        k = x.ndim - 2
        ks, st, pbeg, pend, dl = self._params(Infer(self.name), k, kind, pool_size, strides, padding, dilation)
        spatial = x.shape[2:]
        if kind == "max":
            acc = x.dtype
            low: Any = -math.inf if dtypes.is_float(acc) else int(np.iinfo(np.dtype(acc)).min)
        else:
            acc = _compute_dtype(np.dtype(x.dtype)).name if dtypes.is_float(x.dtype) else "int64"
            low = _zero(acc)
        inside = not ceil_mode and not any(pbeg) and not any(pend)

        def positions(ys: Sequence[Any], kk: Sequence[Any]) -> list[Any]:
            return [_window_taps(pb, y, t, s, p, d) for y, t, s, p, d in zip(ys, kk, st, pbeg, dl)]

        def body(*idx: Any) -> Any:
            n, c, ys, kk = idx[0], idx[1], idx[2:2 + k], idx[2 + k:]
            pos = positions(ys, kk)
            if inside:
                return pb.cast(x[(n, c, *pos)], acc)
            ok = _in_bounds(pb, pos, [0] * k, [pb.index(d) for d in spatial])
            return pb.if_then_else(ok, lambda: pb.cast(x[(n, c, *pos)], acc), low)

        combiner = "max" if kind == "max" else "add"
        if kind != "avg":
            pb.compute(out, body, reduce=(combiner, list(ks)), epilogue=lambda a, *sp: pb.cast(a, out.dtype),
                       value_type=acc)
            return
        if inside:
            pb.compute(out, body, reduce=("add", list(ks)),
                       epilogue=lambda s, *_: _window_mean(pb, s, math.prod(ks), acc, out.dtype), value_type=acc)
            return
        counts = pb.alloc(out.shape[2:], "int64")

        def count(*idx: Any) -> Any:
            pos = positions(idx[:k], idx[k:])
            if count_include_pad:
                ok = _in_bounds(pb, pos, [-p for p in pbeg], [pb.index(d + p) for d, p in zip(spatial, pend)])
            else:
                ok = _in_bounds(pb, pos, [0] * k, [pb.index(d) for d in spatial])
            return pb.select(ok, pb.const(1, dtypes.to_xdsl("int64")), 0)

        pb.compute(counts, count, reduce=("add", list(ks)))

        def finish(s: Any, n: Any, c: Any, *ys: Any) -> Any:
            return _window_mean(pb, s, pb.max(counts[tuple(ys)], 1), acc, out.dtype)

        pb.compute(out, body, reduce=("add", list(ks)), epilogue=finish, value_type=acc)


# --- conv_transpose_nd -------------------------------------------------------------------


def _transpose_extent(size: Any, stride: int, kernel: Any, dilation: int, pad_begin: int, pad_end: int,
                      output_padding: int) -> Any:
    return canon(stride * (canon(size) - 1) + output_padding + dilation * (canon(kernel) - 1) + 1 - pad_begin - pad_end)


@register_op
class ConvTransposeNd(OpSpec):
    """relax.conv_transpose_nd: N-d transposed convolution (the gradient of
    conv_nd), weight (C, O/groups, kernel...). Output extent per axis:
    stride*(size - 1) + output_padding + dilation*(kernel - 1) + 1 - pad_begin - pad_end.
    Computed as a gather: output y takes input i and tap t where
    i*stride + t*dilation = y + pad_begin, so no output element is written twice."""

    name = "conv_transpose_nd"
    inputs = ("data", "weight")
    params = {"strides": Param("ints", (1,)), "padding": Param("ints", (0,)), "output_padding": Param("ints", (0,)),
              "dilation": Param("ints", (1,)), "groups": Param("int", 1)}
    pattern = OUT_FUSIBLE

    def _params(self, ctx: Infer, k: int, strides: tuple[int, ...], padding: tuple[int, ...],
                output_padding: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        st, dl = _per_axis(ctx, strides, k, "strides"), _per_axis(ctx, dilation, k, "dilation")
        pbeg, pend = _pads(ctx, padding, k, allow_negative=True)
        op = _per_axis(ctx, output_padding, k, "output_padding", minimum=0)
        for i in range(k):
            if op[i] >= max(st[i], dl[i]):
                ctx.fail(f"output_padding {op[i]} on spatial axis {i} must be smaller than the stride {st[i]} "
                         f"or the dilation {dl[i]}")
        return st, dl, pbeg, pend, op

    def infer(self, ctx: Infer, data: TensorType, weight: TensorType, strides: tuple[int, ...],
              padding: tuple[int, ...], output_padding: tuple[int, ...], dilation: tuple[int, ...],
              groups: int) -> TensorType:
        k = _spatial_rank(ctx, data)
        if weight.ndim != data.ndim:
            ctx.fail(f"weight must have rank {data.ndim} (C, O/groups, kernel...), got rank {weight.ndim}")
        dtype = _result_dtype(ctx, data, weight)
        st, dl, pbeg, pend, op = self._params(ctx, k, strides, padding, output_padding, dilation)
        n, c = data.sym_shape[:2]
        ci, og = weight.sym_shape[:2]
        _groups(ctx, groups, c, "data in-channels (dim 1)")
        ctx.same(c, ci, "data in-channels (dim 1) vs weight dim 0")
        outs = []
        for i in range(k):
            e = _transpose_extent(data.sym_shape[2 + i], st[i], weight.sym_shape[2 + i], dl[i], pbeg[i], pend[i], op[i])
            if e.is_Integer and e < 1:
                ctx.fail(f"output spatial dim {i} would be {e} (padding larger than the output)")
            if not e.is_Integer and e.is_positive is not True:
                ctx.same(sympy.Max(e, 1), e, f"output spatial dim {i} {dim_to_str(e)} must be >= 1")
            outs.append(e)
        return tensor((n, canon(og * groups), *outs), dtype)

    def reference(self, data: np.ndarray, weight: np.ndarray, strides: tuple[int, ...], padding: tuple[int, ...],
                  output_padding: tuple[int, ...], dilation: tuple[int, ...], groups: int) -> np.ndarray:
        k = data.ndim - 2
        st, dl, pbeg, pend, op = self._params(Infer(self.name), k, strides, padding, output_padding, dilation)
        acc = _compute_dtype(data.dtype) if data.dtype.kind == "f" else np.dtype(data.dtype)
        n, c = data.shape[:2]
        sizes, kernel = data.shape[2:], weight.shape[2:]
        og, g = weight.shape[1], groups
        outs = [int(_transpose_extent(sizes[i], st[i], kernel[i], dl[i], pbeg[i], pend[i], op[i])) for i in range(k)]
        if any(o < 1 for o in outs):
            raise ShapeError(f"relax.{self.name}: output spatial dims {outs} must be >= 1")
        x = data.astype(acc, copy=False).reshape(n, g, c // g, *sizes)
        w = weight.astype(acc, copy=False).reshape(g, c // g, og, *kernel)
        out = np.zeros((n, g, og, *outs), dtype=acc)
        for tap in _taps(kernel):
            src, dst = [], []
            for i in range(k):  # inputs j with 0 <= j*s + t*d - pb < out
                off = tap[i] * dl[i] - pbeg[i]
                lo = max(0, -(off // st[i]) if off < 0 else 0)
                while lo * st[i] + off < 0:
                    lo += 1
                hi = min(sizes[i], (outs[i] - 1 - off) // st[i] + 1) if outs[i] - 1 - off >= 0 else 0
                if hi <= lo:
                    break
                src.append(slice(lo, hi))
                dst.append(slice(lo * st[i] + off, (hi - 1) * st[i] + off + 1, st[i]))
            else:
                contrib = np.einsum("gco,ngc...->ngo...", w[(..., *tap)], x[(..., *src)])
                out[(slice(None), slice(None), slice(None), *dst)] += contrib
        return out.reshape(n, g * og, *outs).astype(data.dtype, copy=False)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], strides: tuple[int, ...],
                 padding: tuple[int, ...], output_padding: tuple[int, ...], dilation: tuple[int, ...],
                 groups: int) -> None:
        (x, w), (out,) = inputs, outputs
        k = x.ndim - 2
        st, dl, pbeg, _, _ = self._params(Infer(self.name), k, strides, padding, output_padding, dilation)
        ct = _compute_dtype(np.dtype(out.dtype)).name
        c, og = w.shape[:2]
        per_group = floordiv(c, groups) if groups > 1 else c
        spatial = x.shape[2:]

        def body(*idx: Any) -> Any:
            n, oc, ys, ic, ks = idx[0], idx[1], idx[2:2 + k], idx[2 + k], idx[3 + k:]
            if groups > 1:
                g = oc // pb.index(og)
                ch, ocl = g * pb.index(per_group) + ic, oc - g * pb.index(og)
            else:
                ch, ocl = ic, oc
            ok, pos = None, []
            for y, t, s, p, d, size in zip(ys, ks, st, pbeg, dl, spatial):
                shifted = y + p if p > 0 else (y - (-p) if p < 0 else y)
                tpos = shifted - (t * d if d != 1 else t)  # = input index * stride
                cond = (tpos >= 0) & (tpos < pb.index(size) * s - (s - 1))
                if s != 1:
                    cond = cond & (tpos % s).eq(0)
                    tpos = tpos // s
                ok = cond if ok is None else ok & cond
                pos.append(tpos)

            def load() -> Any:
                return pb.cast(x[(n, ch, *pos)], ct) * pb.cast(w[(ch, ocl, *ks)], ct)

            return pb.if_then_else(ok, load, _zero(ct))

        pb.compute(out, body, reduce=("add", [per_group, *w.shape[2:]]),
                   epilogue=(lambda acc, *sp: pb.cast(acc, out.dtype)), value_type=ct)
