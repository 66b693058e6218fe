"""Neural-network ops, named and parametrized as TVM Relax's `R.nn.*`:
softmax, log_softmax, layer_norm, rms_norm, batch_norm (inference),
conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d.

Layouts: only NCHW data and OIHW kernels; another layout is a clear error
(transpose with permute_dims first), so every lowering handles one layout.

Window ops (conv, pools) deduce output dims symbolically, as TVM does:
`(H + pad_top + pad_bottom - dilation*(k - 1) - 1) floordiv stride + 1`
(`ceildiv` in ceil_mode). An output dim that cannot be proven >= 1 becomes
a runtime assumption, so a too-small input is a ShapeError, never a crash.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import sympy
from numpy.lib.stride_tricks import sliding_window_view

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import ShapeError
from relax_xdsl.ops.registry import (
    BROADCAST,
    OPAQUE,
    OUT_FUSIBLE,
    REQUIRED,
    Infer,
    OpSpec,
    Param,
    register_op,
    tensor,
)
from relax_xdsl.shape import canon, ceildiv, dim_to_str, floordiv, mod

# --- shared checks ------------------------------------------------------------


def _need_float(ctx: Infer, t: TensorType, what: str) -> None:
    if not dtypes.is_float(t.dtype):
        ctx.fail(f"{what} must have a floating-point dtype, got {t.dtype}")


def _same_dtype(ctx: Infer, named: Sequence[tuple[str, TensorType]]) -> None:
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.dtype != first.dtype:
            ctx.fail(f"{name} has dtype {t.dtype} but {first_name} has {first.dtype}; insert astype")


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """Accumulate float16 / bfloat16 in float32 (as TVM's legalizations do for norms)."""
    return dtypes.np_dtype(dtypes.compute_dtype(np.dtype(dtype).name))


def _pair(ctx: Infer, values: tuple[int, ...], name: str, minimum: int = 1) -> tuple[int, int]:
    """A 2-d window parameter given as 1 or 2 ints."""
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2:
        ctx.fail(f"{name} must have 1 or 2 ints (height, width), got {len(values)}: {tuple(values)}")
    if any(v < minimum for v in values):
        ctx.fail(f"{name} must be >= {minimum}, got {tuple(values)}")
    return values[0], values[1]


def _padding(ctx: Infer, padding: tuple[int, ...]) -> tuple[int, int, int, int]:
    """TVM's 2-d padding: 1 int (all sides), 2 (top/bottom, left/right) or
    4 (top, left, bottom, right)."""
    if len(padding) == 1:
        padding = padding * 4
    elif len(padding) == 2:
        padding = (padding[0], padding[1], padding[0], padding[1])
    elif len(padding) != 4:
        ctx.fail(f"padding must have 1, 2 or 4 ints (top, left, bottom, right), got {len(padding)}: {tuple(padding)}")
    if any(p < 0 for p in padding):
        ctx.fail(f"padding must be >= 0, got {tuple(padding)}")
    return padding[0], padding[1], padding[2], padding[3]


def _layout(ctx: Infer, name: str, value: str, *supported: str) -> None:
    if value not in supported:
        ctx.fail(f"{name} {value!r} is not supported, only {' or '.join(map(repr, supported))}; "
                 "transpose with permute_dims first")


def _nchw(dims: Sequence[Any], layout: str) -> tuple[Any, ...]:
    """(n, c, h, w) of a 4-d shape (or index tuple) in `layout` (NCHW or NHWC)."""
    n, a, b, c = dims
    return (n, c, a, b) if layout == "NHWC" else (n, a, b, c)


def _from_nchw(dims: Sequence[Any], layout: str) -> tuple[Any, ...]:
    """An (n, c, h, w) shape (or index tuple) laid out as `layout`."""
    n, c, h, w = dims
    return (n, h, w, c) if layout == "NHWC" else (n, c, h, w)


def _through_nchw(data: np.ndarray, nchw_reference: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The reference of an op on NHWC data: its NCHW reference of the transposed data, transposed back."""
    return np.ascontiguousarray(nchw_reference(data.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1))


def _rank(ctx: Infer, t: TensorType, rank: int, what: str, layout: str) -> None:
    if t.ndim != rank:
        ctx.fail(f"{what} must have rank {rank} ({layout}), got rank {t.ndim}")


def _window_dim(ctx: Infer, size: Any, pad_before: int, pad_after: int, kernel: Any, stride: int,
                dilation: int, ceil_mode: bool, what: str) -> sympy.Expr:
    """Output extent of a sliding window along one axis; it must be >= 1.

    ceil_mode follows TVM (and PyTorch): ceildiv, but a last window that
    would start inside the bottom/right padding is dropped. That can only
    happen when pad_after + stride exceeds the dilated window, so the plain
    ceildiv form is kept otherwise."""
    size = canon(size)
    window = dilation * (canon(kernel) - 1) + 1
    span = size + pad_before + pad_after - window
    out = canon((ceildiv(span, stride) if ceil_mode else floordiv(span, stride)) + 1)
    if ceil_mode and not (window - pad_after - stride).is_nonnegative:
        # TVM's if_then_else is min(raw, max(raw - 1, starts)), with `starts` the
        # windows starting before the end padding; with pad_after <= window
        # that is exactly `starts`.
        starts = canon(floordiv(size + pad_before - 1, stride) + 1)
        out = starts if (window - pad_after).is_nonnegative else canon(sympy.Min(out, sympy.Max(out - 1, starts)))
    if out.is_Integer:
        if out < 0:
            ctx.fail(f"{what} would be {out}: the padded input extent {dim_to_str(size + pad_before + pad_after)} "
                     f"is smaller than the dilated window {dim_to_str(window)}")
        return out
    if out.is_nonnegative is not True:  # an empty input gives an empty output; a negative extent is an error
        ctx.same(sympy.Max(out, 0), out, f"{what} {dim_to_str(out)} must be >= 0 (input smaller than the window)")
    return out


def _window_extent(size: int, pad_before: int, pad_after: int, kernel: int, stride: int, dilation: int,
                   ceil_mode: bool, op: str, what: str, empty_ok: bool = False) -> int:
    """The same rule on concrete sizes (for the references); an extent of 0
    (an input one short of the window) is an empty output where the
    reference takes it (`empty_ok`), else an error."""
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_before:
        out -= 1  # the last window would start in the bottom/right padding
    if out < (0 if empty_ok else 1):
        raise ShapeError(f"relax.{op}: {what} would be {out}: padded input extent {size + pad_before + pad_after} "
                         f"is smaller than the dilated window {dilation * (kernel - 1) + 1}")
    return out


# --- softmax --------------------------------------------------------------------


class _SoftmaxBase(OpSpec):
    inputs = ("data",)
    params = {"axis": Param("int", -1)}
    pattern = OPAQUE  # several passes over the axis, as TVM (Relay marks it opaque)

    def infer(self, ctx: Infer, data: TensorType, axis: int) -> TensorType:
        _need_float(ctx, data, "data")
        if data.ndim == 0:
            ctx.fail("data must have rank >= 1, got a scalar")
        ctx.axis(axis, data.ndim)
        return data


@register_op
class Softmax(_SoftmaxBase):
    """relax.softmax (R.nn.softmax): exp(x - max) / sum(exp(x - max)) along `axis`."""

    name = "softmax"

    def reference(self, data: np.ndarray, axis: int) -> np.ndarray:
        if data.size == 0:  # no row to take a max of (an empty axis, or no rows)
            return data.copy()
        x = data.astype(_compute_dtype(data.dtype), copy=False)
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return (e / np.sum(e, axis=axis, keepdims=True)).astype(data.dtype, copy=False)


@register_op
class LogSoftmax(_SoftmaxBase):
    """relax.log_softmax (R.nn.log_softmax): x - max - log(sum(exp(x - max))) along `axis`."""

    name = "log_softmax"

    def reference(self, data: np.ndarray, axis: int) -> np.ndarray:
        if data.size == 0:  # no row to take a max of (an empty axis, or no rows)
            return data.copy()
        x = data.astype(_compute_dtype(data.dtype), copy=False)
        shifted = x - np.max(x, axis=axis, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        return out.astype(data.dtype, copy=False)


# --- normalizations -----------------------------------------------------------------


def _check_affine(ctx: Infer, data: TensorType, axes: tuple[int, ...], named: Sequence[tuple[str, TensorType]]) -> None:
    """gamma/beta/weight: one dim per normalized axis, equal to data's dim there."""
    for name, t in named:
        if t.ndim != len(axes):
            ctx.fail(f"{name} must have rank {len(axes)} (one dim per axis in {axes}), got rank {t.ndim}")
        for i, a in enumerate(axes):
            ctx.same(t.sym_shape[i], data.sym_shape[a], f"{name} dim {i} vs data dim {a}")


def _affine_view(param: np.ndarray, axes: tuple[int, ...], ndim: int) -> np.ndarray:
    """A gamma-like array whose dim i belongs to data axis axes[i], shaped to broadcast against data."""
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    shape = [1] * ndim
    moved = np.transpose(param, order)
    for i in order:
        shape[axes[i]] = param.shape[i]
    return moved.reshape(shape)


@register_op
class LayerNorm(OpSpec):
    """relax.layer_norm (R.nn.layer_norm): (x - mean) / sqrt(var + epsilon) * gamma + beta,
    mean and (biased) variance over `axes`; gamma/beta have data's dims at `axes`."""

    name = "layer_norm"
    inputs = ("data", "gamma", "beta")
    params = {"axes": Param("ints", REQUIRED), "epsilon": Param("float", 1e-5),
              "center": Param("bool", True), "scale": Param("bool", True)}
    pattern = OPAQUE  # a reduction feeding an elementwise epilogue over the same data

    def infer(self, ctx: Infer, data: TensorType, gamma: TensorType, beta: TensorType, axes: tuple[int, ...],
              epsilon: float, center: bool, scale: bool) -> TensorType:
        _need_float(ctx, data, "data")
        _same_dtype(ctx, [("data", data), ("gamma", gamma), ("beta", beta)])
        if not axes:
            ctx.fail("axes must name at least one axis")
        norm = ctx.axes(axes, data.ndim, "axes")
        _check_affine(ctx, data, norm, [("gamma", gamma), ("beta", beta)])
        return data

    def reference(self, data: np.ndarray, gamma: np.ndarray, beta: np.ndarray, axes: tuple[int, ...],
                  epsilon: float, center: bool, scale: bool) -> np.ndarray:
        norm = tuple(a % data.ndim for a in axes)
        ct = _compute_dtype(data.dtype)
        x = data.astype(ct, copy=False)
        mean = np.mean(x, axis=norm, keepdims=True)
        centered = x - mean
        var = np.mean(centered * centered, axis=norm, keepdims=True)
        out = centered / np.sqrt(var + ct.type(epsilon))
        if scale:
            out = out * _affine_view(gamma.astype(ct, copy=False), norm, data.ndim)
        if center:
            out = out + _affine_view(beta.astype(ct, copy=False), norm, data.ndim)
        return out.astype(data.dtype, copy=False)


@register_op
class RmsNorm(OpSpec):
    """relax.rms_norm (R.nn.rms_norm): x / sqrt(mean(x^2 over axes) + epsilon) * weight."""

    name = "rms_norm"
    inputs = ("data", "weight")
    params = {"axes": Param("ints", -1), "epsilon": Param("float", 1e-5)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, data: TensorType, weight: TensorType, axes: tuple[int, ...],
              epsilon: float) -> TensorType:
        _need_float(ctx, data, "data")
        _same_dtype(ctx, [("data", data), ("weight", weight)])
        if not axes:
            ctx.fail("axes must name at least one axis")
        norm = ctx.axes(axes, data.ndim, "axes")
        _check_affine(ctx, data, norm, [("weight", weight)])
        return data

    def reference(self, data: np.ndarray, weight: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
        norm = tuple(a % data.ndim for a in axes)
        ct = _compute_dtype(data.dtype)
        x = data.astype(ct, copy=False)
        ms = np.mean(x * x, axis=norm, keepdims=True)
        out = x / np.sqrt(ms + ct.type(epsilon)) * _affine_view(weight.astype(ct, copy=False), norm, data.ndim)
        return out.astype(data.dtype, copy=False)


@register_op
class BatchNorm(OpSpec):
    """relax.batch_norm (R.nn.batch_norm), inference only:
    (x - moving_mean) / sqrt(moving_var + epsilon) * gamma + beta per channel `axis`.

    Unlike TVM, which returns a 3-tuple (data, new mean, new var) and has
    `momentum`/`training`, this returns only the normalized data."""

    name = "batch_norm"
    inputs = ("data", "gamma", "beta", "moving_mean", "moving_var")
    params = {"axis": Param("int", 1), "epsilon": Param("float", 1e-5),
              "center": Param("bool", True), "scale": Param("bool", True)}
    pattern = BROADCAST  # each output element reads one element of each operand

    def infer(self, ctx: Infer, data: TensorType, gamma: TensorType, beta: TensorType, moving_mean: TensorType,
              moving_var: TensorType, axis: int, epsilon: float, center: bool, scale: bool) -> TensorType:
        _need_float(ctx, data, "data")
        named = [("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean), ("moving_var", moving_var)]
        _same_dtype(ctx, [("data", data), *named])
        if data.ndim == 0:
            ctx.fail("data must have rank >= 1, got a scalar")
        a = ctx.axis(axis, data.ndim)
        for name, t in named:
            if t.ndim != 1:
                ctx.fail(f"{name} must have rank 1 (one value per channel), got rank {t.ndim}")
            ctx.same(t.sym_shape[0], data.sym_shape[a], f"{name} dim 0 vs data channel dim {a}")
        return data

    def reference(self, data: np.ndarray, gamma: np.ndarray, beta: np.ndarray, moving_mean: np.ndarray,
                  moving_var: np.ndarray, axis: int, epsilon: float, center: bool, scale: bool) -> np.ndarray:
        a = axis % data.ndim
        ct = _compute_dtype(data.dtype)
        shape = [1] * data.ndim
        shape[a] = data.shape[a]

        def per_channel(v: np.ndarray) -> np.ndarray:
            return v.astype(ct, copy=False).reshape(shape)

        out = (data.astype(ct, copy=False) - per_channel(moving_mean)) / np.sqrt(per_channel(moving_var) + ct.type(epsilon))
        if scale:
            out = out * per_channel(gamma)
        if center:
            out = out + per_channel(beta)
        return out.astype(data.dtype, copy=False)


@register_op
class LocalResponseNorm(OpSpec):
    """relax.local_response_norm (ONNX LRN, Relay's nn.lrn, torch's
    local_response_norm): x / (bias + alpha / size * sum of x^2 over the
    channels [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta, channels
    along `axis` (1 for NCHW; convert-layout gives 3 on NHWC data, where
    the window is contiguous). Taps beyond the channels count as 0, and
    alpha is divided by size, as ONNX and Relay do.

    One op rather than ONNX's composition (square, an average pool over
    (N, 1, C, rest), power, divide) because the composition's reshapes pin
    the data to NCHW, and its generic power is a libm call per element."""

    name = "local_response_norm"
    inputs = ("data",)
    params = {"size": Param("int", REQUIRED), "axis": Param("int", 1), "alpha": Param("float", 1e-4),
              "beta": Param("float", 0.75), "bias": Param("float", 1.0)}
    pattern = OPAQUE  # each output reads a window of channels

    def infer(self, ctx: Infer, data: TensorType, size: int, axis: int, alpha: float, beta: float,
              bias: float) -> TensorType:
        _need_float(ctx, data, "data")
        if data.ndim == 0:
            ctx.fail("data must have rank >= 1 (a channel axis), got a scalar")
        ctx.axis(axis, data.ndim)
        if size < 1:
            ctx.fail(f"size must be >= 1, got {size}")
        return data

    def reference(self, data: np.ndarray, size: int, axis: int, alpha: float, beta: float,
                  bias: float) -> np.ndarray:
        if data.size == 0:
            return data.copy()
        a = axis % data.ndim
        ct = _compute_dtype(data.dtype)
        x = data.astype(ct, copy=False)
        before, after = _lrn_reach(size, data.shape[a])
        pad = [(0, 0)] * data.ndim
        pad[a] = (before, after)
        squares = np.pad(x * x, pad)
        sums = sliding_window_view(squares, before + after + 1, axis=a).sum(axis=-1, dtype=ct)
        den = (ct.type(bias) + ct.type(alpha / size) * sums) ** ct.type(beta)
        return (x / den).astype(data.dtype, copy=False)


def _lrn_reach(size: int, channels: Any, clamp: bool = True) -> tuple[Any, Any]:
    """How far local_response_norm's window reaches below and above a
    channel, clamped to channels - 1 (unless not `clamp`): taps further out
    are always beyond the channels (zeros), so a hostile size (2**40) costs
    no more than the channel count, in memory and in loop trips. ints for
    an int channel count, sympy expressions for a symbolic one."""
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    if not clamp:
        return before, after
    if isinstance(channels, (int, np.integer)) or getattr(channels, "is_Integer", False):
        last = max(int(channels) - 1, 0)
        return min(before, last), min(after, last)
    last = sympy.Max(channels - 1, 0)
    return canon(sympy.Min(before, last)), canon(sympy.Min(after, last))


# --- conv2d ---------------------------------------------------------------------------


@register_op
class Conv2d(OpSpec):
    """relax.conv2d (R.nn.conv2d): 2-d convolution (cross-correlation), NCHW
    data (or NHWC, channels last: what convert-layout gives oneDNN's
    convolutions, whose channels-last kernels need no reorder), OIHW weight,
    grouped when groups > 1; computed in out_dtype (default: data's). The
    result has the data's layout."""

    name = "conv2d"
    inputs = ("data", "weight")
    params = {"strides": Param("ints", (1, 1)), "padding": Param("ints", (0, 0)),
              "dilation": Param("ints", (1, 1)), "groups": Param("int", 1),
              "data_layout": Param("str", "NCHW"), "kernel_layout": Param("str", "OIHW"),
              "out_dtype": Param("str", None)}
    pattern = OUT_FUSIBLE

    def infer(self, ctx: Infer, data: TensorType, weight: TensorType, strides: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], groups: int, data_layout: str,
              kernel_layout: str, out_dtype: str | None) -> TensorType:
        _layout(ctx, "data_layout", data_layout, "NCHW", "NHWC")
        _layout(ctx, "kernel_layout", kernel_layout, "OIHW")
        _rank(ctx, data, 4, "data", data_layout)
        _rank(ctx, weight, 4, "weight", "OIHW")
        sh, sw = _pair(ctx, strides, "strides")
        dh, dw = _pair(ctx, dilation, "dilation")
        pt, pl, pb, pr = _padding(ctx, padding)
        if groups < 1:
            ctx.fail(f"groups must be >= 1, got {groups}")
        if out_dtype is None:
            if data.dtype != weight.dtype:
                ctx.fail(f"data dtype {data.dtype} and weight dtype {weight.dtype} differ; set out_dtype or insert astype")
            res_dtype = data.dtype
        else:
            res_dtype = ctx.dtype(out_dtype, "out_dtype")
        if res_dtype == "bool":
            ctx.fail("out_dtype bool is not supported")
        n, c, h, w = _nchw(data.sym_shape, data_layout)
        o, i, kh, kw = weight.sym_shape
        ctx.same(c, i * groups, f"data in-channels (dim 1) vs weight in-channels (dim 1) * groups {groups}")
        if groups > 1:
            if o.is_Integer and int(o) % groups:
                ctx.fail(f"weight out-channels {o} (dim 0) is not divisible by groups {groups}")
            if not o.is_Integer:
                ctx.same(mod(o, groups), 0, f"weight out-channels {dim_to_str(o)} mod groups {groups}")
        oh = _window_dim(ctx, h, pt, pb, kh, sh, dh, False, "output height")
        ow = _window_dim(ctx, w, pl, pr, kw, sw, dw, False, "output width")
        return tensor(_from_nchw((n, o, oh, ow), data_layout), res_dtype)

    def reference(self, data: np.ndarray, weight: np.ndarray, strides: tuple[int, ...], padding: tuple[int, ...],
                  dilation: tuple[int, ...], groups: int, data_layout: str, kernel_layout: str,
                  out_dtype: str | None) -> np.ndarray:
        if data_layout == "NHWC":
            return _through_nchw(data, lambda d: self.reference(d, weight, strides, padding, dilation, groups, "NCHW",
                                                                kernel_layout, out_dtype))
        ctx = Infer(self.name)
        (sh, sw), (dh, dw) = _pair(ctx, strides, "strides"), _pair(ctx, dilation, "dilation")
        pt, pl, pb, pr = _padding(ctx, padding)
        res = np.dtype(dtypes.dtype_name(out_dtype) if out_dtype is not None else data.dtype.name)
        acc = _compute_dtype(res)
        n, c, h, w = data.shape
        o, ci, kh, kw = weight.shape
        oh = _window_extent(h, pt, pb, kh, sh, dh, False, self.name, "output height", empty_ok=True)
        ow = _window_extent(w, pl, pr, kw, sw, dw, False, self.name, "output width", empty_ok=True)
        if oh == 0 or ow == 0:
            return np.zeros((n, o, oh, ow), res)
        x = np.pad(data.astype(acc, copy=False), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        win = sliding_window_view(x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
        win = win[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, ::dh, ::dw]  # (n, c, oh, ow, kh, kw)
        # One batched matmul per kernel tap: no im2col copy, BLAS for the
        # channel contraction, groups as the matmul batch axis.
        g = groups
        k = weight.astype(acc, copy=False).reshape(g, o // g, ci, kh, kw)
        out = np.zeros((n, g, o // g, oh * ow), dtype=acc)
        for i in range(kh):
            for j in range(kw):
                tap = win[..., i, j].reshape(n, g, c // g, oh * ow)
                out += np.matmul(k[None, :, :, :, i, j], tap)
        out = out.reshape(n, o, oh, ow)
        return out.astype(res, copy=False)


# --- pooling -------------------------------------------------------------------------------


class _Pool2dBase(OpSpec):
    """Shared parameters and shape rule of max_pool2d / avg_pool2d (TVM's:
    ceil_mode uses ceildiv and, as PyTorch, drops a last window that would
    start in the bottom/right padding). `layout` NCHW or NHWC (channels
    last, what convert-layout gives a pool between oneDNN's convolutions)."""

    inputs = ("data",)
    params = {"pool_size": Param("ints", (1, 1)), "strides": Param("ints", (1, 1)),
              "padding": Param("ints", (0, 0)), "dilation": Param("ints", (1, 1)),
              "ceil_mode": Param("bool", False), "count_include_pad": Param("bool", False),
              "layout": Param("str", "NCHW")}
    pattern = OUT_FUSIBLE
    allow_bool: ClassVar[bool] = True

    def infer(self, ctx: Infer, data: TensorType, pool_size: tuple[int, ...], strides: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool, count_include_pad: bool,
              layout: str) -> TensorType:
        _layout(ctx, "layout", layout, "NCHW", "NHWC")
        _rank(ctx, data, 4, "data", layout)
        if data.dtype == "bool" and not self.allow_bool:
            ctx.fail("data must be numeric, got bool")
        kh, kw = _pair(ctx, pool_size, "pool_size")
        sh, sw = _pair(ctx, strides, "strides")
        dh, dw = _pair(ctx, dilation, "dilation")
        pt, pl, pb, pr = _padding(ctx, padding)
        n, c, h, w = _nchw(data.sym_shape, layout)
        oh = _window_dim(ctx, h, pt, pb, kh, sh, dh, ceil_mode, "output height")
        ow = _window_dim(ctx, w, pl, pr, kw, sw, dw, ceil_mode, "output width")
        return tensor(_from_nchw((n, c, oh, ow), layout), data.dtype)

    def nhwc_reference(self, data: np.ndarray, *params: Any) -> np.ndarray:
        return _through_nchw(data, lambda d: self.reference(d, *params, "NCHW"))

    def _windows(self, data: np.ndarray, pad_value: Any, pool_size: tuple[int, ...], strides: tuple[int, ...],
                 padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool) -> np.ndarray:
        """(n, c, oh, ow, kh, kw) windows over data padded with pad_value
        (and extra bottom/right padding for ceil_mode's last window)."""
        ctx = Infer(self.name)
        (kh, kw), (sh, sw), (dh, dw) = (_pair(ctx, v, nm) for v, nm in
                                        ((pool_size, "pool_size"), (strides, "strides"), (dilation, "dilation")))
        pt, pl, pb, pr = _padding(ctx, padding)
        _, _, h, w = data.shape
        oh = _window_extent(h, pt, pb, kh, sh, dh, ceil_mode, self.name, "output height", empty_ok=True)
        ow = _window_extent(w, pl, pr, kw, sw, dw, ceil_mode, self.name, "output width", empty_ok=True)
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if oh == 0 or ow == 0:
            return np.zeros((*data.shape[:2], oh, ow, kh, kw), data.dtype)
        xb = max(0, (oh - 1) * sh + eh - (h + pt + pb))
        xr = max(0, (ow - 1) * sw + ew - (w + pl + pr))
        x = np.pad(data, ((0, 0), (0, 0), (pt, pb + xb), (pl, pr + xr)), constant_values=pad_value)
        win = sliding_window_view(x, (eh, ew), axis=(2, 3))
        return win[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, ::dh, ::dw]


@register_op
class MaxPool2d(_Pool2dBase):
    """relax.max_pool2d (R.nn.max_pool2d): window maximum; padding counts as
    -inf (the dtype's minimum for integers). count_include_pad is ignored."""

    name = "max_pool2d"

    def reference(self, data: np.ndarray, pool_size: tuple[int, ...], strides: tuple[int, ...],
                  padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool, count_include_pad: bool,
                  layout: str) -> np.ndarray:
        if layout == "NHWC":
            return self.nhwc_reference(data, pool_size, strides, padding, dilation, ceil_mode, count_include_pad)
        if data.dtype.kind == "f":
            low: Any = -np.inf
        elif data.dtype.kind == "b":
            low = False
        else:
            low = np.iinfo(data.dtype).min
        win = self._windows(data, low, pool_size, strides, padding, dilation, ceil_mode)
        return np.ascontiguousarray(win.max(axis=(4, 5)))


def _tap_counts(size: int, out: int, kernel: int, stride: int, dilation: int, pad_before: int,
                pad_after: int, include_pad: bool) -> np.ndarray:
    """Per output position: how many window taps fall in the input (or in
    the padded input, for count_include_pad)."""
    pos = np.arange(out)[:, None] * stride - pad_before + np.arange(kernel)[None, :] * dilation
    lo, hi = (-pad_before, size + pad_after - 1) if include_pad else (0, size - 1)
    return ((pos >= lo) & (pos <= hi)).sum(axis=1)


def _divide(sums: np.ndarray, counts: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """sums / counts in dtype (integers divide truncating, as TVM's div)."""
    counts = np.maximum(counts, 1)
    if dtype.kind == "f":
        return (sums / counts.astype(sums.dtype)).astype(dtype, copy=False)
    q = np.abs(sums) // counts
    return (np.sign(sums) * q).astype(dtype)


@register_op
class AvgPool2d(_Pool2dBase):
    """relax.avg_pool2d (R.nn.avg_pool2d): window mean. The divisor counts the
    taps inside the input, or with count_include_pad also those in the
    explicit padding (never ceil_mode's extra padding), as TVM and PyTorch."""

    name = "avg_pool2d"
    allow_bool = False

    def reference(self, data: np.ndarray, pool_size: tuple[int, ...], strides: tuple[int, ...],
                  padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool, count_include_pad: bool,
                  layout: str) -> np.ndarray:
        if layout == "NHWC":
            return self.nhwc_reference(data, pool_size, strides, padding, dilation, ceil_mode, count_include_pad)
        acc = _compute_dtype(data.dtype) if data.dtype.kind == "f" else np.dtype(np.int64)
        win = self._windows(data.astype(acc, copy=False), 0, pool_size, strides, padding, dilation, ceil_mode)
        sums = win.sum(axis=(4, 5))
        ctx = Infer(self.name)
        (kh, kw), (sh, sw), (dh, dw) = (_pair(ctx, v, nm) for v, nm in
                                        ((pool_size, "pool_size"), (strides, "strides"), (dilation, "dilation")))
        pt, pl, pb, pr = _padding(ctx, padding)
        _, _, h, w = data.shape
        oh, ow = sums.shape[2:]
        ch = _tap_counts(h, oh, kh, sh, dh, pt, pb, count_include_pad)
        cw = _tap_counts(w, ow, kw, sw, dw, pl, pr, count_include_pad)
        return _divide(sums, np.outer(ch, cw), data.dtype)


@register_op
class AdaptiveAvgPool2d(OpSpec):
    """relax.adaptive_avg_pool2d (R.nn.adaptive_avg_pool2d): mean over adaptive
    windows giving output_size (None: the input's size).

    Any output size over any (symbolic) input size: output position i
    averages TVM's window [floor(i*H/o), ceil((i+1)*H/o)) (windows of
    different lengths, overlapping when o does not divide H, repeating
    rows when o > H)."""

    name = "adaptive_avg_pool2d"
    inputs = ("data",)
    params = {"output_size": Param("ints", None), "layout": Param("str", "NCHW")}
    pattern = OUT_FUSIBLE

    def infer(self, ctx: Infer, data: TensorType, output_size: tuple[int, ...] | None, layout: str) -> TensorType:
        _layout(ctx, "layout", layout, "NCHW")
        _rank(ctx, data, 4, "data", "NCHW")
        if data.dtype == "bool":
            ctx.fail("data must be numeric, got bool")
        n, c, h, w = data.sym_shape
        if output_size is None:
            return data
        oh, ow = _pair(ctx, output_size, "output_size")
        return tensor((n, c, oh, ow), data.dtype)

    def reference(self, data: np.ndarray, output_size: tuple[int, ...] | None, layout: str) -> np.ndarray:
        if output_size is None:
            return data.copy()
        oh, ow = _pair(Infer(self.name), output_size, "output_size")
        acc = _compute_dtype(data.dtype) if data.dtype.kind == "f" else np.dtype(np.int64)
        _, _, h, w = data.shape
        mh, ch = _adaptive_windows(h, oh, acc)
        mw, cw = _adaptive_windows(w, ow, acc)
        sums = np.einsum("nchw,ih,jw->ncij", data.astype(acc, copy=False), mh, mw, optimize=True)
        return _divide(sums, np.outer(ch, cw), data.dtype)


def _adaptive_windows(size: int, out: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """A 0/1 (out, size) matrix selecting each adaptive window, and the window sizes."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    pos = np.arange(size)
    sel = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return sel.astype(dtype), end - start


# --- legalizations (tensor programs in the structured compute form) ----------------
# Each writes the op with PrimFuncBuilder; reductions go to local buffers
# (tir.alloc), padded window loads are guarded by scf.if so no program reads
# out of bounds.


def _rows(pb: Any, x: Any, axes: Sequence[int], combiner: str, value: Any, ct: str) -> Any:
    """A local buffer over x's non-reduced axes: combine over `axes` of value(x[idx], idx)."""
    from relax_xdsl.ops.reduction import input_index

    rest = [d for i, d in enumerate(x.shape) if i not in axes]
    buf = pb.alloc(rest, ct)

    def body(*args: Any) -> Any:
        sp, rv = args[: len(rest)], args[len(rest):]
        idx = input_index(x.ndim, list(axes), False, sp, rv)
        return value(x[idx], idx)

    pb.compute(buf, body, reduce=(combiner, [x.shape[a] for a in axes]))
    return buf


def _row_index(ndim: int, axes: Sequence[int], idx: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(i for a, i in enumerate(idx) if a not in axes)


def _softmax_legalize(self: _SoftmaxBase, pb: Any, inputs: list[Any], outputs: list[Any], axis: int) -> None:
    (x,), (out,) = inputs, outputs
    a = axis % x.ndim
    ct = _compute_dtype(np.dtype(x.dtype)).name
    log = self.name == "log_softmax"

    def load(idx: Sequence[Any]) -> Any:
        return pb.cast(x[tuple(idx)], ct)

    mx = _rows(pb, x, [a], "max", lambda v, idx: pb.cast(v, ct), ct)
    sm = _rows(pb, x, [a], "add", lambda v, idx: pb.math("exp", pb.cast(v, ct) - mx[_row_index(x.ndim, [a], idx)]), ct)

    def body(*idx: Any) -> Any:
        r = _row_index(x.ndim, [a], idx)
        shifted = load(idx) - mx[r]
        y = shifted - pb.math("log", sm[r]) if log else pb.math("exp", shifted) / sm[r]
        return pb.cast(y, out.dtype)

    pb.compute(out, body)


def _affine_index(axes: Sequence[int], idx: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(idx[a] for a in axes)


def _norm_legalize(pb: Any, x: Any, out: Any, axes: Sequence[int], epsilon: float, rms: bool,
                   scale: Any = None, shift: Any = None) -> None:
    from relax_xdsl.ops.reduction import element_count

    ct = _compute_dtype(np.dtype(x.dtype)).name
    norm = sorted(a % x.ndim for a in axes)
    n = element_count(pb, x.shape, norm, ct)

    def row(idx: Sequence[Any]) -> tuple[Any, ...]:
        return _row_index(x.ndim, norm, idx)

    if rms:
        ms = _rows(pb, x, norm, "add", lambda v, idx: pb.cast(v, ct) * pb.cast(v, ct), ct)
        mean = None
    else:
        sums = _rows(pb, x, norm, "add", lambda v, idx: pb.cast(v, ct), ct)
        mean = sums

        def centered_sq(v: Any, idx: Sequence[Any]) -> Any:
            c = pb.cast(v, ct) - sums[row(idx)] / n
            return c * c

        ms = _rows(pb, x, norm, "add", centered_sq, ct)

    def body(*idx: Any) -> Any:
        r = row(idx)
        v = pb.cast(x[idx], ct)
        if mean is not None:
            v = v - mean[r] / n
        y = v / pb.math("sqrt", ms[r] / n + epsilon)
        if scale is not None:
            y = y * pb.cast(scale[_affine_index([a % x.ndim for a in axes], idx)], ct)
        if shift is not None:
            y = y + pb.cast(shift[_affine_index([a % x.ndim for a in axes], idx)], ct)
        return pb.cast(y, out.dtype)

    pb.compute(out, body)


def _layer_norm_legalize(self: LayerNorm, pb: Any, inputs: list[Any], outputs: list[Any], axes: tuple[int, ...],
                         epsilon: float, center: bool, scale: bool) -> None:
    (x, gamma, beta), (out,) = inputs, outputs
    _norm_legalize(pb, x, out, axes, epsilon, False, gamma if scale else None, beta if center else None)


def _rms_norm_legalize(self: RmsNorm, pb: Any, inputs: list[Any], outputs: list[Any], axes: tuple[int, ...],
                       epsilon: float) -> None:
    (x, weight), (out,) = inputs, outputs
    _norm_legalize(pb, x, out, axes, epsilon, True, weight, None)


def _batch_norm_legalize(self: BatchNorm, pb: Any, inputs: list[Any], outputs: list[Any], axis: int, epsilon: float,
                         center: bool, scale: bool) -> None:
    (x, gamma, beta, mean, var), (out,) = inputs, outputs
    a = axis % x.ndim
    ct = _compute_dtype(np.dtype(x.dtype)).name

    def body(*idx: Any) -> Any:
        c = idx[a]
        y = (pb.cast(x[idx], ct) - pb.cast(mean[c], ct)) / pb.math("sqrt", pb.cast(var[c], ct) + epsilon)
        if scale:
            y = y * pb.cast(gamma[c], ct)
        if center:
            y = y + pb.cast(beta[c], ct)
        return pb.cast(y, out.dtype)

    pb.compute(out, body)


def _window_taps(pb: Any, y: Any, k: Any, s: int, p: int, d: int) -> Any:
    """Input position of tap k of output position y: y*s - p + k*d (no ops for unit factors)."""
    pos = y * s if s != 1 else y
    if p:
        pos = pos - p
    return pos + (k * d if d != 1 else k)


def _in_bounds(pb: Any, pos: Sequence[Any], lo: Sequence[Any], hi: Sequence[Any]) -> Any:
    """lo <= pos < hi for every pair (index values)."""
    cond = None
    for p, low, high in zip(pos, lo, hi):
        c = (p >= low) & (p < high)
        cond = c if cond is None else cond & c
    return cond


def _conv2d_legalize(self: Conv2d, pb: Any, inputs: list[Any], outputs: list[Any], strides: tuple[int, ...],
                     padding: tuple[int, ...], dilation: tuple[int, ...], groups: int, data_layout: str,
                     kernel_layout: str, out_dtype: str | None) -> None:
    (x, w), (out,) = inputs, outputs
    ctx = Infer(self.name)
    (sh, sw), (dh, dw) = _pair(ctx, strides, "strides"), _pair(ctx, dilation, "dilation")
    pt, pl, pb_, pr = _padding(ctx, padding)
    unpadded = _windows_inside(padding, ceil_mode=False)
    ct = _compute_dtype(np.dtype(out.dtype)).name
    _, c_in, h, wd = _nchw(x.shape, data_layout)
    o, ci, kh, kw = w.shape
    per_group = floordiv(o, groups)  # exact: the shape rule checks o mod groups == 0

    def body(*idx: Any) -> Any:
        (n, oc, y, xx), (ic, ky, kx) = _nchw(idx[:4], data_layout), idx[4:]
        g = oc // pb.index(per_group) if groups > 1 else None
        c = g * pb.index(ci) + ic if g is not None else ic
        iy, ix = _window_taps(pb, y, ky, sh, pt, dh), _window_taps(pb, xx, kx, sw, pl, dw)
        wv = pb.cast(w[oc, ic, ky, kx], ct)
        at = _from_nchw((n, c, iy, ix), data_layout)
        if unpadded:  # every window lies inside the input (output dims are floor-mode)
            return pb.cast(x[at], ct) * wv
        ok = _in_bounds(pb, [iy, ix], [0, 0], [pb.index(h), pb.index(wd)])
        v = pb.if_then_else(ok, lambda: pb.cast(x[at], ct), 0.0 if dtypes.is_float(ct) else 0)
        return v * wv

    pb.compute(out, body, reduce=("add", [ci, kh, kw]),
               epilogue=(lambda acc, *sp: pb.cast(acc, out.dtype)), value_type=ct)


def _pool_windows(op: str, pool_size: tuple[int, ...], strides: tuple[int, ...],
                  dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, dilation) pairs of a pool op."""
    ctx = Infer(op)
    return tuple(_pair(ctx, v, nm) for v, nm in ((pool_size, "pool_size"), (strides, "strides"),
                                                  (dilation, "dilation")))




def _windows_inside(padding: tuple[int, ...], ceil_mode: bool) -> bool:
    """Every window lies in the input (no padding, floor mode), so the
    legalized program needs no bounds test per tap."""
    return not ceil_mode and not any(padding)


def _window_mean(pb: Any, s: Any, count: Any, acc: str, out_dtype: str) -> Any:
    """A window sum `s` (of type `acc`) over `count` taps (an int or an
    integer value), in `out_dtype`: float division, or integer division
    truncating toward zero as TVM's div."""
    cnt = pb.const(count, dtypes.to_xdsl(acc)) if isinstance(count, int) else pb.cast(count, acc)
    if dtypes.is_float(acc):
        return pb.cast(s / cnt, out_dtype)
    return pb.cast(pb.select(s < 0, -((-s) // cnt), s // cnt), out_dtype)


def _max_pool_legalize(self: MaxPool2d, pb: Any, inputs: list[Any], outputs: list[Any], pool_size: tuple[int, ...],
                       strides: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                       ceil_mode: bool, count_include_pad: bool, layout: str) -> None:
    (x,), (out,) = inputs, outputs
    (kh, kw), (sh, sw), (dh, dw) = _pool_windows(self.name, pool_size, strides, dilation)
    pt, pl, _, _ = _padding(Infer(self.name), padding)
    _, _, h, w = _nchw(x.shape, layout)
    acc = "int8" if x.dtype == "bool" else x.dtype
    # a window wholly in the padding gives the pad value: -inf, the integer minimum, False for bool
    low = -math.inf if dtypes.is_float(acc) else 0 if x.dtype == "bool" or dtypes.is_unsigned(acc) else \
        -(2 ** (np.dtype(acc).itemsize * 8 - 1))

    inside = _windows_inside(padding, ceil_mode)

    def body(*idx: Any) -> Any:
        (n, c, y, xx), (ky, kx) = _nchw(idx[:4], layout), idx[4:]
        iy, ix = _window_taps(pb, y, ky, sh, pt, dh), _window_taps(pb, xx, kx, sw, pl, dw)
        at = _from_nchw((n, c, iy, ix), layout)
        if inside:
            return pb.cast(x[at], acc)
        ok = _in_bounds(pb, [iy, ix], [0, 0], [pb.index(h), pb.index(w)])
        return pb.if_then_else(ok, lambda: pb.cast(x[at], acc), low)

    pb.compute(out, body, reduce=("max", [kh, kw]), epilogue=lambda a, *sp: pb.cast(a, out.dtype), value_type=acc)


def _avg_pool_legalize(self: AvgPool2d, pb: Any, inputs: list[Any], outputs: list[Any], pool_size: tuple[int, ...],
                       strides: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                       ceil_mode: bool, count_include_pad: bool, layout: str) -> None:
    (x,), (out,) = inputs, outputs
    (kh, kw), (sh, sw), (dh, dw) = _pool_windows(self.name, pool_size, strides, dilation)
    pt, pl, pb_, pr = _padding(Infer(self.name), padding)
    _, _, h, w = _nchw(x.shape, layout)
    is_float = dtypes.is_float(x.dtype)
    acc = _compute_dtype(np.dtype(x.dtype)).name if is_float else "int64"
    if _windows_inside(padding, ceil_mode):  # every window has kh*kw taps, all in the input
        def tap(*idx: Any) -> Any:
            (n, c, y, xx), (ky, kx) = _nchw(idx[:4], layout), idx[4:]
            iy, ix = _window_taps(pb, y, ky, sh, 0, dh), _window_taps(pb, xx, kx, sw, 0, dw)
            return pb.cast(x[_from_nchw((n, c, iy, ix), layout)], acc)

        pb.compute(out, tap, reduce=("add", [kh, kw]), epilogue=lambda s, *_: _window_mean(pb, s, kh * kw, acc, out.dtype),
                   value_type=acc)
        return
    counts = pb.alloc(_nchw(out.shape, layout)[2:], "int64")

    def count(y: Any, xx: Any, ky: Any, kx: Any) -> Any:
        iy, ix = _window_taps(pb, y, ky, sh, pt, dh), _window_taps(pb, xx, kx, sw, pl, dw)
        if count_include_pad:
            ok = _in_bounds(pb, [iy, ix], [-pt, -pl], [pb.index(h + pb_), pb.index(w + pr)])
        else:
            ok = _in_bounds(pb, [iy, ix], [0, 0], [pb.index(h), pb.index(w)])
        return pb.select(ok, pb.const(1, dtypes.to_xdsl("int64")), 0)

    pb.compute(counts, count, reduce=("add", [kh, kw]))

    def body(*idx: Any) -> Any:
        (n, c, y, xx), (ky, kx) = _nchw(idx[:4], layout), idx[4:]
        iy, ix = _window_taps(pb, y, ky, sh, pt, dh), _window_taps(pb, xx, kx, sw, pl, dw)
        ok = _in_bounds(pb, [iy, ix], [0, 0], [pb.index(h), pb.index(w)])
        at = _from_nchw((n, c, iy, ix), layout)
        return pb.if_then_else(ok, lambda: pb.cast(x[at], acc), 0.0 if is_float else 0)

    def finish(s: Any, *sp: Any) -> Any:
        _, _, y, xx = _nchw(sp, layout)
        return _window_mean(pb, s, pb.max(counts[y, xx], 1), acc, out.dtype)

    pb.compute(out, body, reduce=("add", [kh, kw]), epilogue=finish, value_type=acc)


def _adaptive_axis(pb: Any, size: sympy.Expr, o: int) -> tuple[sympy.Expr, Any, Any]:
    """One axis of adaptive pooling: (reduce extent, start(y), length(y) or
    None when every window has the extent). Output position y covers TVM's
    window [floor(y*size/o), ceil((y+1)*size/o)); when the windows differ in
    length the extent is the longest and the taps beyond a window's length
    are skipped."""
    if o == 1:
        return size, lambda y: pb.index(0), None
    if size.is_Integer and int(size) % o == 0:
        step = int(size) // o
        return sympy.Integer(step), lambda y: y * step if step != 1 else y, None
    if size.is_Integer:
        n = int(size)
        extent: sympy.Expr = sympy.Integer(max(-(-(i + 1) * n // o) - i * n // o for i in range(o)))
    else:
        extent = canon(ceildiv(size, o) + 1)  # ceil((y+1)s/o) - floor(ys/o) < s/o + 2

    def start(y: Any) -> Any:
        return (y * pb.index(size)) // o

    def length(y: Any) -> Any:
        return ((y + 1) * pb.index(size) + (o - 1)) // o - start(y)

    return extent, start, length


def _adaptive_avg_pool_legalize(self: AdaptiveAvgPool2d, pb: Any, inputs: list[Any], outputs: list[Any],
                                output_size: tuple[int, ...] | None, layout: str) -> None:
    (x,), (out,) = inputs, outputs
    if output_size is None:
        pb.compute(out, lambda *idx: x[idx])
        return
    _, _, h, w = x.shape
    oh, ow = _pair(Infer(self.name), output_size, "output_size")
    (eh, start_h, len_h), (ew, start_w, len_w) = _adaptive_axis(pb, h, oh), _adaptive_axis(pb, w, ow)
    is_float = dtypes.is_float(x.dtype)
    acc = _compute_dtype(np.dtype(x.dtype)).name if is_float else "int64"
    zero = 0.0 if is_float else 0

    def body(n: Any, c: Any, y: Any, xx: Any, ky: Any, kx: Any) -> Any:
        def load() -> Any:
            return pb.cast(x[n, c, start_h(y) + ky, start_w(xx) + kx], acc)

        guards = [k < ln(p) for k, ln, p in ((ky, len_h, y), (kx, len_w, xx)) if ln is not None]
        if not guards:
            return load()
        return pb.if_then_else(guards[0] & guards[1] if len(guards) == 2 else guards[0], load, zero)

    def finish(s: Any, n: Any, c: Any, y: Any, xx: Any) -> Any:
        ch = len_h(y) if len_h is not None else pb.index(eh)
        cw = len_w(xx) if len_w is not None else pb.index(ew)
        return _window_mean(pb, s, ch * cw, acc, out.dtype)

    pb.compute(out, body, reduce=("add", [eh, ew]), epilogue=finish, value_type=acc)


_LRN_UNCLAMPED = 16  # sizes up to this loop over the whole window (no min with the channels)


def _local_response_norm_legalize(self: LocalResponseNorm, pb: Any, inputs: list[Any], outputs: list[Any], size: int,
                                  axis: int, alpha: float, beta: float, bias: float) -> None:
    (x,), (out,) = inputs, outputs
    a = axis % x.ndim
    ct = _compute_dtype(np.dtype(x.dtype)).name
    channels = pb.index(x.shape[a])
    # past _LRN_UNCLAMPED, a window possibly wider than the channels: only the taps that can land in them
    before, after = _lrn_reach(size, x.shape[a], clamp=size > _LRN_UNCLAMPED)
    offset = before if isinstance(before, int) else pb.index(before)

    def square(*idx: Any) -> Any:
        sp, k = idx[:-1], idx[-1]
        c = _window_taps(pb, sp[a], k, 1, offset, 1)
        at = (*sp[:a], c, *sp[a + 1:])
        v = pb.if_then_else(_in_bounds(pb, [c], [0], [channels]), lambda: pb.cast(x[at], ct), 0.0)
        return v * v

    def finish(s: Any, *sp: Any) -> Any:
        base = s * (alpha / size) + bias
        # the usual exponents without libm's scalar powf: b^0.75 = sqrt(b) * sqrt(sqrt(b)) (within 2 ulp)
        if beta == 0.75:
            root = pb.math("sqrt", base)
            den = root * pb.math("sqrt", root)
        elif beta == 0.5:
            den = pb.math("sqrt", base)
        elif beta == 1.0:
            den = base
        else:
            den = pb.math("powf", base, pb.const(beta, dtypes.to_xdsl(ct)))
        return pb.cast(pb.cast(x[sp], ct) / den, out.dtype)

    pb.compute(out, square, reduce=("add", [canon(before + after + 1)]), epilogue=finish, value_type=ct)


_SoftmaxBase.legalize = _softmax_legalize  # type: ignore[method-assign,assignment]
LayerNorm.legalize = _layer_norm_legalize  # type: ignore[method-assign,assignment]
RmsNorm.legalize = _rms_norm_legalize  # type: ignore[method-assign,assignment]
BatchNorm.legalize = _batch_norm_legalize  # type: ignore[method-assign,assignment]
LocalResponseNorm.legalize = _local_response_norm_legalize  # type: ignore[method-assign,assignment]
Conv2d.legalize = _conv2d_legalize  # type: ignore[method-assign,assignment]
MaxPool2d.legalize = _max_pool_legalize  # type: ignore[method-assign,assignment]
AvgPool2d.legalize = _avg_pool_legalize  # type: ignore[method-assign,assignment]
AdaptiveAvgPool2d.legalize = _adaptive_avg_pool_legalize  # type: ignore[method-assign,assignment]
