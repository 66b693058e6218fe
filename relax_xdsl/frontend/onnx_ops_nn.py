"""ONNX converters for normalization, convolution and pooling beyond the
basic 2-d forms of onnx_ops.py: InstanceNormalization, GroupNormalization,
MeanVarianceNormalization, LpNormalization, RMSNormalization,
LayerNormalization's Mean / InvStdDev outputs, BatchNormalization in
training mode, Conv / MaxPool / AveragePool in any spatial rank, LpPool,
GlobalLpPool and ConvTranspose; LRN, which is one graph op
(local_response_norm).

The other normalizations are compositions of existing graph ops (layer_norm,
mean, variance), so fusion and the row-loop schedules apply; 1-d and
2-d windows keep the conv2d / pool2d graph ops and their fast paths, other
ranks use the N-d ops of relax_xdsl/ops/nn_extra.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from relax_xdsl.frontend import onnx_ops
from relax_xdsl.frontend.onnx_import import Known, Node, Unavailable, Value, register_converter
from relax_xdsl.shape import canon, dim_to_str


def _const(v: float, dtype: str) -> Known:
    return Known(np.array(v, dtype=dtype), dtype)


def _wants(n: Node, i: int) -> bool:
    """Output i is used (named) by the node."""
    return i < len(n.outputs) and bool(n.outputs[i])


def _per_channel(n: Node, v: Value, rank: int, what: str) -> Value:
    """A (C,) parameter reshaped to (1, C, 1, ...) to broadcast against (N, C, spatial...)."""
    if v.ndim != 1:
        n.fail(f"{what} must have rank 1 (one value per channel), got rank {v.ndim}")
    return n.op("reshape", v, shape=[1, v.shape[0], *([1] * (rank - 2))])


def _stash_type(n: Node) -> None:
    if int(n.attr("stash_type", 1)) != 1:
        n.fail(f"stash_type={n.attr('stash_type')} is not supported (only 1: float32 statistics)")


def _normalize(n: Node, x: Value, axes: list[int], epsilon: float) -> Value:
    """(x - mean) / sqrt(var + epsilon) over axes, as layer_norm without its affine part."""
    ones = n.op("ones", shape=[x.shape[a] for a in axes], dtype=x.dtype)
    return n.op("layer_norm", x, ones, ones, axes=axes, epsilon=epsilon, center=False, scale=False)


# -- normalizations ----------------------------------------------------------------------------------------------


@register_converter("InstanceNormalization", attrs=("epsilon",))
def _instance_norm(n: Node) -> Value:
    x, scale, bias = n.input(0, "input"), n.input(1, "scale"), n.input(2, "B")
    if x.ndim < 3:
        n.fail(f"input must have rank >= 3 (N, C, spatial...), got rank {x.ndim}")
    y = _normalize(n, x, list(range(2, x.ndim)), float(n.attr("epsilon", 1e-5)))
    y = n.op("multiply", y, _per_channel(n, scale, x.ndim, "scale"))
    return n.op("add", y, _per_channel(n, bias, x.ndim, "B"))


@register_converter("GroupNormalization", attrs=("epsilon", "num_groups", "stash_type"))
def _group_norm(n: Node) -> Value:
    """Opset 18: scale and bias per group; opset 21: per channel."""
    x, scale, bias = n.input(0, "X"), n.input(1, "scale"), n.input(2, "bias")
    _stash_type(n)
    groups = int(n.attr("num_groups"))
    if x.ndim < 2:
        n.fail(f"X must have rank >= 2 (N, C, ...), got rank {x.ndim}")
    c = canon(x.shape[1])
    if groups < 1 or (c.is_Integer and int(c) % groups):
        n.fail(f"num_groups {groups} must be >= 1 and divide the channels {dim_to_str(c)}")
    if not c.is_Integer:
        n.fail(f"the channel dim must be static, got {dim_to_str(c)}")
    per = int(c) // groups
    rest = [x.shape[a] for a in range(2, x.ndim)]
    grouped = n.op("reshape", x, shape=[x.shape[0], groups, per, *rest])
    y = _normalize(n, grouped, list(range(2, grouped.ndim)), float(n.attr("epsilon", 1e-5)))
    if n.opset < 21:
        y = n.op("multiply", y, _per_channel(n, scale, y.ndim, "scale"))
        y = n.op("add", y, _per_channel(n, bias, y.ndim, "bias"))
        return n.op("reshape", y, shape=list(x.shape))
    y = n.op("reshape", y, shape=list(x.shape))
    y = n.op("multiply", y, _per_channel(n, scale, x.ndim, "scale"))
    return n.op("add", y, _per_channel(n, bias, x.ndim, "bias"))


@register_converter("MeanVarianceNormalization", attrs=("axes",))
def _mvn(n: Node) -> Value:
    """ONNX's function body: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9)."""
    x = n.input(0, "X")
    axes = sorted({n.axis(a, x.ndim) for a in n.attr("axes", [0, 2, 3])})
    mean = n.op("mean", x, axis=axes, keepdims=True)
    sq_mean = n.op("mean", n.op("multiply", x, x), axis=axes, keepdims=True)
    std = n.op("sqrt", n.op("subtract", sq_mean, n.op("multiply", mean, mean)))
    return n.op("divide", n.op("subtract", x, mean), n.op("add", std, _const(1e-9, x.dtype)))


@register_converter("LpNormalization", attrs=("axis", "p"))
def _lp_norm(n: Node) -> Value:
    x = n.input(0, "input")
    axis = n.axis(n.attr("axis", -1), x.ndim)
    p = int(n.attr("p", 2))
    if p == 1:
        norm = n.op("sum", n.op("abs", x), axis=[axis], keepdims=True)
    elif p == 2:
        norm = n.op("sqrt", n.op("sum", n.op("multiply", x, x), axis=[axis], keepdims=True))
    else:
        n.fail(f"p={p} is not supported (1 or 2)")
    # an all-zero slice gives 0, not 0/0 (as onnx's reference)
    zero, one = _const(0, x.dtype), _const(1, x.dtype)
    return n.op("divide", x, n.op("where", n.op("equal", norm, zero), one, norm))


@register_converter("RMSNormalization", attrs=("axis", "epsilon", "stash_type"))
def _rms_norm(n: Node) -> Value:
    x, scale = n.input(0, "X"), n.input(1, "scale")
    _stash_type(n)
    axis = n.axis(n.attr("axis", -1), x.ndim)
    axes = list(range(axis, x.ndim))
    weight = onnx_ops._broadcast_param(n, scale, [x.shape[a] for a in axes], "scale")  # noqa: SLF001
    return n.op("rms_norm", x, weight, axes=axes, epsilon=float(n.attr("epsilon", 1e-5)))


@register_converter("LayerNormalization", attrs=("axis", "epsilon", "stash_type"))
def _layer_norm(n: Node) -> Sequence[Value | Unavailable]:
    """Y as layer_norm; Mean and InvStdDev (shape X's dims before axis, then
    1s; float32 for float16 X) only when the node names them."""
    _stash_type(n)
    outs: list[Value | Unavailable] = list(onnx_ops._layer_norm(n))[:1]  # noqa: SLF001
    if not (_wants(n, 1) or _wants(n, 2)):
        return outs
    x = n.input(0, "X")
    axes = list(range(n.axis(n.attr("axis", -1), x.ndim), x.ndim))
    xs = n.op("astype", x, dtype="float32") if x.dtype == "float16" else x
    outs.append(n.op("mean", xs, axis=axes, keepdims=True))
    var = n.op("variance", xs, axis=axes, keepdims=True)
    outs.append(n.op("rsqrt", n.op("add", var, _const(float(n.attr("epsilon", 1e-5)), xs.dtype))))
    return outs


@register_converter("BatchNormalization", attrs=("epsilon", "momentum", "training_mode", "spatial"))
def _batch_norm(n: Node) -> Sequence[Value | Unavailable]:
    """training_mode=1 (opset 14+): normalizes with the batch's statistics
    (biased variance) and returns the updated running mean and variance
    (input * momentum + batch * (1 - momentum))."""
    if not n.attr("training_mode", 0):
        return onnx_ops._batch_norm(n)  # noqa: SLF001
    if not n.attr("spatial", 1):
        n.fail("spatial=0 is not supported")
    x, scale, bias, mean, var = (n.input(i, w) for i, w in enumerate(("X", "scale", "B", "input_mean", "input_var")))
    if x.ndim < 2:
        n.fail(f"X must have rank >= 2 (N, C, ...), got rank {x.ndim}")
    axes = [0, *range(2, x.ndim)]
    batch_mean = n.op("mean", x, axis=axes)
    batch_var = n.op("variance", x, axis=axes)
    y = n.op("batch_norm", x, scale, bias, batch_mean, batch_var, axis=1, epsilon=float(n.attr("epsilon", 1e-5)))
    m = float(n.attr("momentum", 0.9))

    def running(old: Value, new: Value) -> Value:
        return n.op("add", n.op("multiply", old, _const(m, old.dtype)), n.op("multiply", new, _const(1 - m, new.dtype)))

    return [y, running(mean, batch_mean), running(var, batch_var)]


@register_converter("LRN", attrs=("alpha", "beta", "bias", "size"))
def _lrn(n: Node) -> Value:
    """relax.local_response_norm over the channel axis 1 (its semantics are ONNX's)."""
    x = n.input(0, "X")
    size = int(n.attr("size"))
    if size < 1:
        n.fail(f"size must be >= 1, got {size}")
    if x.ndim < 2:
        n.fail(f"X must have rank >= 2 (N, C, ...), got rank {x.ndim}")
    return n.op("local_response_norm", x, size=size, axis=1, alpha=float(n.attr("alpha", 1e-4)),
                beta=float(n.attr("beta", 0.75)), bias=float(n.attr("bias", 1.0)))


# -- convolution and pooling in any rank ---------------------------------------------------------------------------


def _kernel(n: Node, w: Value | None = None) -> list[int]:
    kernel = list(n.attr("kernel_shape", [])) or ([canon(d) for d in w.shape[2:]] if w is not None else [])
    if not kernel:
        n.fail("attribute 'kernel_shape' is required")
    out = []
    for k in kernel:
        if not canon(k).is_Integer:
            n.fail("symbolic kernel sizes are not supported")
        out.append(int(k))
    return out


@register_converter("Conv", attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
def _conv(n: Node) -> Value:
    x, w, b = n.input(0, "X"), n.input(1, "W"), n.optional(2)
    if x.ndim in (3, 4):
        return onnx_ops._conv(n)  # noqa: SLF001  (conv2d and its fast paths)
    if x.ndim < 3:
        n.fail(f"X must have rank >= 3 (N, C, spatial...), got rank {x.ndim}")
    if w.ndim != x.ndim:
        n.fail(f"W has rank {w.ndim} but X has rank {x.ndim}")
    kernel = _kernel(n, w)
    strides, dilations, pads = onnx_ops._window_attrs(n, x, kernel)  # noqa: SLF001
    y = n.op("conv_nd", x, w, strides=strides, padding=pads, dilation=dilations, groups=int(n.attr("group", 1)))
    if b is not None:
        y = n.op("add", y, _per_channel(n, b, x.ndim, "B"))
    return y


def _pool_nd(n: Node, kind: str, x: Value) -> Value:
    kernel = _kernel(n)
    strides, dilations, pads = onnx_ops._window_attrs(n, x, kernel)  # noqa: SLF001
    params: dict[str, Any] = dict(kind=kind, pool_size=kernel, strides=strides, padding=pads, dilation=dilations,
                                  ceil_mode=bool(n.attr("ceil_mode", 0)))
    if kind == "avg":
        params["count_include_pad"] = bool(n.attr("count_include_pad", 0))
    return n.op("pool_nd", x, **params)


def _rank_check(n: Node, x: Value) -> None:
    if x.ndim < 3:
        n.fail(f"X must have rank >= 3 (N, C, spatial...), got rank {x.ndim}")


@register_converter("MaxPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order",
                                      "strides"))
def _max_pool(n: Node) -> Sequence[Value | Unavailable]:
    x = n.input(0, "X")
    _rank_check(n, x)
    if _wants(n, 1):
        n.fail("the Indices output is not supported")
    if x.ndim in (3, 4):
        return onnx_ops._max_pool(n)  # noqa: SLF001
    return [_pool_nd(n, "max", x), Unavailable("MaxPool's Indices output is not supported")]


@register_converter("AveragePool", attrs=("auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                                          "pads", "strides"))
def _avg_pool(n: Node) -> Value:
    x = n.input(0, "X")
    _rank_check(n, x)
    if x.ndim in (3, 4):
        return onnx_ops._avg_pool(n)  # noqa: SLF001
    return _pool_nd(n, "avg", x)


def _lp_power(n: Node, x: Value, p: float) -> Value:
    a = n.op("abs", x)
    return n.op("multiply", a, a) if p == 2 else n.op("power", a, _const(p, x.dtype))


def _lp_root(n: Node, s: Value, p: float) -> Value:
    return n.op("sqrt", s) if p == 2 else n.op("power", s, _const(1.0 / p, s.dtype))


def _lp_p(n: Node) -> float:
    p = float(n.attr("p", 2))
    if not p > 0 or not math.isfinite(p):
        n.fail(f"p must be a positive number, got {p}")
    return p


@register_converter("LpPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "p", "pads", "strides"))
def _lp_pool(n: Node) -> Value:
    """(sum over the window of |x|^p)^(1/p); padding adds nothing."""
    x = n.input(0, "X")
    _rank_check(n, x)
    p = _lp_p(n)
    return _lp_root(n, _pool_nd(n, "sum", _lp_power(n, x, p)), p)


@register_converter("GlobalLpPool", attrs=("p",))
def _global_lp_pool(n: Node) -> Value:
    x = n.input(0, "X")
    _rank_check(n, x)
    p = _lp_p(n)
    return _lp_root(n, n.op("sum", _lp_power(n, x, p), axis=list(range(2, x.ndim)), keepdims=True), p)


@register_converter("ConvTranspose", attrs=("auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                                            "output_shape", "pads", "strides"))
def _conv_transpose(n: Node) -> Value:
    x, w, b = n.input(0, "X"), n.input(1, "W"), n.optional(2)
    _rank_check(n, x)
    if w.ndim != x.ndim:
        n.fail(f"W has rank {w.ndim} but X has rank {x.ndim}")
    k = x.ndim - 2
    kernel = _kernel(n, w)
    if len(kernel) != k:
        n.fail(f"kernel_shape must have {k} values, got {len(kernel)}")
    strides = list(n.attr("strides", [1] * k))
    dilations = list(n.attr("dilations", [1] * k))
    out_pad = list(n.attr("output_padding", [0] * k))
    for name, vals in (("strides", strides), ("dilations", dilations), ("output_padding", out_pad)):
        if len(vals) != k:
            n.fail(f"{name} must have {k} values, got {len(vals)}")
    auto = n.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        n.fail(f"auto_pad={auto!r} is not supported")
    out_shape = list(n.attr("output_shape", []))
    if auto in ("SAME_UPPER", "SAME_LOWER") and not out_shape:
        out_shape = [canon(x.shape[2 + i]) * strides[i] for i in range(k)]
    if out_shape:
        out_shape = out_shape[-k:]
        begin, end = [], []
        for i in range(k):
            size = canon(x.shape[2 + i])
            total = canon(strides[i] * (size - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1 - out_shape[i])
            if not total.is_Integer:
                n.fail(f"the padding of spatial axis {i} depends on the symbolic dim {dim_to_str(size)} "
                       f"(total {dim_to_str(total)}); give static spatial dims")
            t = int(total)
            small, big = t // 2, t - t // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        pads = begin + end
    elif auto == "VALID":
        pads = [0] * 2 * k
    else:
        pads = list(n.attr("pads", [0] * 2 * k))
        if len(pads) != 2 * k:
            n.fail(f"pads must have {2 * k} values, got {len(pads)}")
    y = n.op("conv_transpose_nd", x, w, strides=strides, padding=pads, output_padding=out_pad, dilation=dilations,
             groups=int(n.attr("group", 1)))
    if b is not None:
        y = n.op("add", y, _per_channel(n, b, x.ndim, "B"))
    return y
