"""ONNX op converters: one function per ONNX op type (opsets 7-20 where
the semantics are the same), each mapping the node onto relax ops.

A converter gets a `Node` (inputs resolved to graph values or import-time
`Known` values, attributes as python values) and returns the node's
output value(s). `node.op(name, ...)` emits a relax op, or folds it when
every input is known. Shape subgraphs (Shape, Gather, Slice, Concat,
Unsqueeze, Cast, arithmetic) therefore stay import-time values with
symbolic dims, and Reshape/Expand/ConstantOfShape fed by them get precise
symbolic shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from relax_xdsl import op as rop
from relax_xdsl.builder import Var
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import (
    FOLD_LIMIT,
    ONNX_DTYPES,
    Known,
    Node,
    Unavailable,
    Value,
    identifier,
    known_dims,
    onnx_dtype,
    register_converter,
    simplify_known,
)
from relax_xdsl.shape import canon, ceildiv, dim_to_str, dims_equal, is_one

INT64_MAX = 2**63 - 1

# -- elementwise -----------------------------------------------------------------------------------------------

_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
          "Erf": "erf", "Neg": "negative", "Abs": "abs", "Floor": "floor", "Ceil": "ceil"}
_BINARY = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide", "Pow": "power",
           "Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_equal",
           "GreaterOrEqual": "greater_equal"}


@register_converter(_UNARY)
def _unary(n: Node) -> Value:
    return n.op(_UNARY[n.op_type], n.input(0, "X"))


def _dtype_of(v: Value) -> str:
    return v.dtype


def _as_dtype(n: Node, v: Value, dtype: str) -> Value:
    """A known scalar operand in the other operand's dtype (ONNX's Pow takes
    an exponent of another type; exporters emit float constants for ints)."""
    if _dtype_of(v) == dtype:
        return v
    if isinstance(v, Known) and not v.symbolic:
        return Known(v.array.astype(dtype), dtype, None)
    return n.op("astype", v, dtype=dtype)


@register_converter(_BINARY)
def _binary(n: Node) -> Value:
    a, b = n.input(0, "A"), n.input(1, "B")
    if n.op_type == "Pow":
        b = _as_dtype(n, b, _dtype_of(a))
    elif _dtype_of(a) != _dtype_of(b):
        n.fail(f"operands have different element types {_dtype_of(a)} and {_dtype_of(b)}")
    if n.op_type == "Div" and _dtype_of(a).startswith("int") and not _non_negative(a, b):
        return _truncating_div(n, a, b)
    return n.op(_BINARY[n.op_type], a, b)


def _non_negative(*values: Value) -> bool:
    """Every value known at import time and free of negative elements."""
    return all(isinstance(v, Known) and not v.symbolic and not (v.array < 0).any() for v in values)


def _truncating_div(n: Node, a: Value, b: Value) -> Value:
    """ONNX's integer Div truncates toward zero; relax's divide floors. They
    differ when the signs differ, so the quotient is taken of a - fmod(a, b)
    (fmod truncates too: the difference is an exact multiple of b, which
    floor division divides exactly). x / 0 stays 0 as in relax's divide, and
    INT_MIN / -1 wraps as in numpy."""
    return n.op("divide", n.op("subtract", a, n.op("fmod", a, b)), b)


@register_converter(("Max", "Min", "Sum", "Mean"))
def _variadic(n: Node) -> Value:
    args = [v for v in n.inputs if v is not None]
    if not args:
        n.fail("needs at least one input")
    name = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[n.op_type]
    out = args[0]
    for v in args[1:]:
        out = n.op(name, out, v)
    if n.op_type == "Mean" and len(args) > 1:
        out = n.op("divide", out, Known(np.array(len(args), dtype=_dtype_of(out)), _dtype_of(out)))
    return out


@register_converter("Not")
def _not(n: Node) -> Value:
    x = n.input(0, "X")
    return n.op("equal", x, Known(np.array(False), "bool"))


@register_converter("Reciprocal")
def _reciprocal(n: Node) -> Value:
    x = n.input(0, "X")
    return n.op("divide", Known(np.array(1, dtype=_dtype_of(x)), _dtype_of(x)), x)


@register_converter("LeakyRelu", attrs=("alpha",))
def _leaky_relu(n: Node) -> Value:
    x = n.input(0, "X")
    alpha = Known(np.array(n.attr("alpha", 0.01), dtype=_dtype_of(x)), _dtype_of(x))
    zero = Known(np.array(0, dtype=_dtype_of(x)), _dtype_of(x))
    return n.op("where", n.op("greater", x, zero), x, n.op("multiply", x, alpha))


@register_converter("Gelu", attrs=("approximate",))
def _gelu(n: Node) -> Value:
    x = n.input(0, "X")
    approx = n.attr("approximate", "none")
    if approx == "none":
        return n.op("gelu", x)
    if approx != "tanh":
        n.fail(f"approximate={approx!r} is not supported (none or tanh)")
    return n.op("gelu_tanh", x)


@register_converter("Clip", attrs=("min", "max"))
def _clip(n: Node) -> Value:
    x = n.input(0, "input")
    if n.opset < 11:
        lo, hi = n.attr("min", None), n.attr("max", None)
    elif rt.is_runtime(n, 1) or rt.is_runtime(n, 2):  # bounds computed at run time: tensor operands
        out: Value = x
        if n.optional(1) is not None:
            out = n.op("maximum", out, rt.scalar_tensor(n, 1, "min"))
        if n.optional(2) is not None:
            out = n.op("minimum", out, rt.scalar_tensor(n, 2, "max"))
        return out
    else:
        lo, hi = n.scalar(1, "min"), n.scalar(2, "max")
    dt = np.dtype(_dtype_of(x))
    info: Any = np.finfo(dt) if dt.kind == "f" else np.iinfo(dt)
    return n.op("clip", x, min=float(info.min if lo is None else lo), max=float(info.max if hi is None else hi))


@register_converter("Where")
def _where(n: Node) -> Value:
    return n.op("where", n.input(0, "condition"), n.input(1, "X"), n.input(2, "Y"))


@register_converter("Identity")
def _identity(n: Node) -> Value:
    return n.input(0, "input")


@register_converter("Cast", attrs=("to", "saturate"))
def _cast(n: Node) -> Value:
    x = n.input(0, "input")
    to = onnx_dtype(n.attr("to"), f"{n.where} attribute to")
    if _dtype_of(x) == to:
        return x
    return n.op("astype", x, dtype=to)


# -- linear algebra --------------------------------------------------------------------------------------------


@register_converter("MatMul")
def _matmul(n: Node) -> Value:
    return n.op("matmul", n.input(0, "A"), n.input(1, "B"))


@register_converter("Gemm", attrs=("alpha", "beta", "transA", "transB"))
def _gemm(n: Node) -> Value:
    a, b, c = n.input(0, "A"), n.input(1, "B"), n.optional(2)
    for v, what in ((a, "A"), (b, "B")):
        if v.ndim != 2:
            n.fail(f"{what} must have rank 2, got rank {v.ndim}")
    if n.attr("transA", 0):
        a = n.op("permute_dims", a, axes=[1, 0])
    if n.attr("transB", 0):
        b = n.op("permute_dims", b, axes=[1, 0])
    y = n.op("matmul", a, b)
    dt = _dtype_of(y)
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    if alpha != 1.0:
        y = n.op("multiply", y, Known(np.array(alpha, dtype=dt), dt))
    if c is not None and beta != 0.0:
        if beta != 1.0:
            c = n.op("multiply", c, Known(np.array(beta, dtype=dt), dt))
        y = n.op("add", y, c)
    return y


# -- normalization and activations over axes ----------------------------------------------------------------------


def _flat2d(n: Node, x: Value, axis: int) -> list[Any]:
    """[prod(dims[:axis]), prod(dims[axis:])] (ONNX's 2-d coercion)."""
    dims = [canon(d) for d in x.shape]
    return [canon(sympy.Mul(*dims[:axis])), canon(sympy.Mul(*dims[axis:]))]


@register_converter(("Softmax", "LogSoftmax"), attrs=("axis",))
def _softmax(n: Node) -> Value:
    x = n.input(0, "input")
    name = "softmax" if n.op_type == "Softmax" else "log_softmax"
    rank = x.ndim
    axis = n.axis(n.attr("axis", -1 if n.opset >= 13 else 1), rank)
    if n.opset >= 13 or axis == rank - 1:
        return n.op(name, x, axis=axis)
    # before opset 13: softmax over the flattened dims from `axis` on
    flat = n.op("reshape", x, shape=_flat2d(n, x, axis))
    return n.op("reshape", n.op(name, flat, axis=1), shape=list(x.shape))


@register_converter("LayerNormalization", attrs=("axis", "epsilon", "stash_type"))
def _layer_norm(n: Node) -> Sequence[Value | Unavailable]:
    x, scale, bias = n.input(0, "X"), n.input(1, "Scale"), n.optional(2)
    rank = x.ndim
    axis = n.axis(n.attr("axis", -1), rank)
    axes = list(range(axis, rank))
    norm_shape = [x.shape[a] for a in axes]
    scale = _broadcast_param(n, scale, norm_shape, "Scale")
    beta = _broadcast_param(n, bias, norm_shape, "B") if bias is not None else scale
    y = n.op("layer_norm", x, scale, beta, axes=axes, epsilon=float(n.attr("epsilon", 1e-5)), center=bias is not None)
    return [y, Unavailable("LayerNormalization's Mean output is not supported"),
            Unavailable("LayerNormalization's InvStdDev output is not supported")]


def _broadcast_param(n: Node, v: Value, shape: list[Any], what: str) -> Value:
    if len(v.shape) == len(shape) and all(dims_equal(a, b) for a, b in zip(v.shape, shape)):
        return v
    return n.op("broadcast_to", v, shape=shape)


@register_converter("BatchNormalization", attrs=("epsilon", "momentum", "training_mode", "spatial"))
def _batch_norm(n: Node) -> Sequence[Value | Unavailable]:
    if n.attr("training_mode", 0):
        n.fail("training_mode=1 is not supported (inference only)")
    if not n.attr("spatial", 1):
        n.fail("spatial=0 is not supported")
    x = n.input(0, "X")
    args = [n.input(i, w) for i, w in enumerate(("X", "scale", "B", "input_mean", "input_var"))]
    y = n.op("batch_norm", *args, axis=1 if x.ndim > 1 else 0, epsilon=float(n.attr("epsilon", 1e-5)))
    unused = Unavailable("BatchNormalization's running statistics outputs (training mode) are not supported")
    return [y, unused, unused]


# -- convolution and pooling ------------------------------------------------------------------------------------


def _spatial_padding(n: Node, x: Value, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX pads [x1_begin, x2_begin, x1_end, x2_end], or computed for auto_pad."""
    k = len(kernel)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(n.attr("pads", [0] * 2 * k))
        if len(pads) != 2 * k:
            n.fail(f"pads must have {2 * k} values, got {len(pads)}")
        return pads
    if auto == "VALID":
        return [0] * 2 * k
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        n.fail(f"auto_pad={auto!r} is not supported")
    begin, end = [], []
    for i in range(k):
        d = canon(x.shape[2 + i])
        eff = (kernel[i] - 1) * dilations[i] + 1
        if strides[i] == 1:
            total = eff - 1
        elif d.is_Integer:
            total = max((-(-int(d) // strides[i]) - 1) * strides[i] + eff - int(d), 0)
        else:
            n.fail(f"auto_pad={auto} with stride {strides[i]} over the symbolic dim {dim_to_str(d)} is not supported")
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _window_attrs(n: Node, x: Value, kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
    k = len(kernel)
    strides = list(n.attr("strides", [1] * k))
    dilations = list(n.attr("dilations", [1] * k))
    if len(strides) != k or len(dilations) != k:
        n.fail(f"strides and dilations must have {k} values")
    return strides, dilations, _spatial_padding(n, x, kernel, strides, dilations)


def _to_2d(n: Node, x: Value, what: str) -> tuple[Value, bool]:
    """1-d (N, C, W) data as (N, C, 1, W); 2-d as is; other ranks fail."""
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return n.op("expand_dims", x, axis=[2]), True
    n.fail(f"only 1-d and 2-d {what} are supported (input rank {x.ndim}; 3-d and above are missing)")


def _pad4(pads: list[int], was_1d: bool) -> list[int]:
    """ONNX [h_begin, w_begin, h_end, w_end] (or 1-d [begin, end]) as relax's (top, left, bottom, right)."""
    if was_1d:
        return [0, pads[0], 0, pads[1]]
    return [pads[0], pads[1], pads[2], pads[3]]


def _pair(vals: list[int], was_1d: bool, one: int) -> list[int]:
    return [one, vals[0]] if was_1d else vals


@register_converter("Conv", attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
def _conv(n: Node) -> Value:
    x, w, b = n.input(0, "X"), n.input(1, "W"), n.optional(2)
    if w.ndim != x.ndim:
        n.fail(f"W has rank {w.ndim} but X has rank {x.ndim}")
    kernel = list(n.attr("kernel_shape", [])) or [canon(d) for d in w.shape[2:]]
    kernel = [int(k) if isinstance(k, (int, sympy.Integer)) else n.fail("symbolic kernel sizes are not supported")
              for k in kernel]
    strides, dilations, pads = _window_attrs(n, x, kernel)
    x2, was_1d = _to_2d(n, x, "convolutions")
    w2 = n.op("expand_dims", w, axis=[2]) if was_1d else w
    y = n.op("conv2d", x2, w2, strides=_pair(strides, was_1d, 1), padding=_pad4(pads, was_1d),
             dilation=_pair(dilations, was_1d, 1), groups=int(n.attr("group", 1)))
    if b is not None:
        if b.ndim != 1:
            n.fail(f"B must have rank 1, got rank {b.ndim}")
        y = n.op("add", y, n.op("reshape", b, shape=[1, b.shape[0], 1, 1]))
    return n.op("squeeze", y, axis=[2]) if was_1d else y


def _pool(n: Node, name: str) -> Value:
    x = n.input(0, "X")
    kernel = [int(k) for k in n.attr("kernel_shape")]
    strides, dilations, pads = _window_attrs(n, x, kernel)
    if n.attr("storage_order", 0):
        n.fail("storage_order=1 is not supported")
    x2, was_1d = _to_2d(n, x, "pools")
    params: dict[str, Any] = dict(pool_size=_pair(kernel, was_1d, 1), strides=_pair(strides, was_1d, 1),
                                  padding=_pad4(pads, was_1d), dilation=_pair(dilations, was_1d, 1),
                                  ceil_mode=bool(n.attr("ceil_mode", 0)))
    if name == "avg_pool2d":
        params["count_include_pad"] = bool(n.attr("count_include_pad", 0))
    y = n.op(name, x2, **params)
    return n.op("squeeze", y, axis=[2]) if was_1d else y


@register_converter("MaxPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order",
                                      "strides"))
def _max_pool(n: Node) -> Sequence[Value | Unavailable]:
    return [_pool(n, "max_pool2d"), Unavailable("MaxPool's Indices output is not supported")]


@register_converter("AveragePool", attrs=("auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                                          "pads", "strides"))
def _avg_pool(n: Node) -> Value:
    return _pool(n, "avg_pool2d")


@register_converter(("GlobalAveragePool", "GlobalMaxPool"))
def _global_pool(n: Node) -> Value:
    x = n.input(0, "X")
    if x.ndim < 3:
        n.fail(f"X must have rank >= 3 (N, C, spatial...), got rank {x.ndim}")
    return n.op("mean" if n.op_type == "GlobalAveragePool" else "max", x, axis=list(range(2, x.ndim)), keepdims=True)


# -- reductions: onnx_ops_math.py ---------------------------------------------------------------------------------


# -- shapes and data movement ----------------------------------------------------------------------------------------


@register_converter("Constant", attrs=("value", "value_float", "value_floats", "value_int", "value_ints"))
def _constant(n: Node) -> Value:
    for key, dtype in (("value", None), ("value_float", "float32"), ("value_floats", "float32"),
                       ("value_int", "int64"), ("value_ints", "int64")):
        if key in n.attrs:
            array = np.asarray(n.attrs[key], dtype=dtype)
            if array.dtype.name not in ONNX_DTYPES.values():
                n.fail(f"element type {array.dtype.name} is not supported")
            return Known(np.array(array, order="C"), array.dtype.name)
    n.fail("needs one of the attributes value, value_float(s), value_int(s)")


@register_converter("Shape", attrs=("start", "end"))
def _shape(n: Node) -> Value:
    x = n.input(0, "data")
    dims = list(x.shape)
    rank = len(dims)
    start, end = n.attr("start", 0), n.attr("end", rank)
    return known_dims(dims[slice(start, end)])


@register_converter("Size")
def _size(n: Node) -> Value:
    x = n.input(0, "data")
    k = known_dims([canon(sympy.Mul(*[canon(d) for d in x.shape]))])
    return Known(k.array.reshape(()), "int64")


@register_converter("Reshape", attrs=("allowzero",))
def _reshape(n: Node) -> Value:
    x = n.input(0, "data")
    if rt.is_runtime(n, 1):
        return n.op("reshape", x, shape=rt.reshape_target(n, x, rt.int_vector(n, 1, "shape"),
                                                          bool(n.attr("allowzero", 0))))
    target = n.ints(1, "shape")
    if isinstance(x, Known) and all(isinstance(v, int) for v in target) and \
            not (n.importer.keep_params and x.initializer):
        if n.attr("allowzero", 0) == 0:
            target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
        return Known(x.array.reshape(target), x.dtype, None)
    dims: list[Any] = []
    for i, v in enumerate(target):
        if isinstance(v, int) and v == 0 and not n.attr("allowzero", 0):
            if i >= x.ndim:
                n.fail(f"shape entry {i} is 0 (copy the input dim) but the input has rank {x.ndim}")
            dims.append(x.shape[i])
        elif isinstance(v, int) and v < -1:
            n.fail(f"shape entry {i} is {v}")
        else:
            dims.append(v)
    return n.op("reshape", x, shape=dims)


@register_converter("Flatten", attrs=("axis",))
def _flatten(n: Node) -> Value:
    x = n.input(0, "input")
    axis = n.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        n.fail(f"axis {n.attr('axis', 1)} is out of range for rank {x.ndim}")
    return n.op("reshape", x, shape=_flat2d(n, x, axis))


@register_converter("Transpose", attrs=("perm",))
def _transpose(n: Node) -> Value:
    x = n.input(0, "data")
    perm = list(n.attr("perm", list(reversed(range(x.ndim)))))
    return n.op("permute_dims", x, axes=perm)


@register_converter("Unsqueeze", attrs=("axes",))
def _unsqueeze(n: Node) -> Value:
    x = n.input(0, "data")
    if n.opset >= 13 and rt.is_runtime(n, 1):
        return _unsqueeze_runtime_axes(n, n.importer.tensor(x, n))
    axes = n.static_ints(1, "axes") if n.opset >= 13 else list(n.attr("axes"))
    out_rank = x.ndim + len(axes)
    norm = sorted(n.axis(a, out_rank) for a in axes)
    if len(set(norm)) != len(norm):
        n.fail(f"axes {axes} repeat an axis")
    if isinstance(x, Known):
        arr = x.array
        for a in norm:
            arr = np.expand_dims(arr, a)
        return Known(arr, x.dtype, None)
    return n.op("expand_dims", x, axis=norm)


def _runtime_axes(n: Node, rank: int) -> tuple[Var, int]:
    """Input 1 (axes) computed at run time: normalised against `rank`, and
    how many there are (the tensor's static length fixes the output rank)."""
    axes = n.tensor(1, "axes")
    if axes.ndim != 1 or not canon(axes.shape[0]).is_Integer or axes.dtype != "int64":
        n.fail(f"input 1 (axes) must be a 1-d int64 tensor of static length, got {axes.type}")
    return rt.normalized_axes(axes, rank), int(canon(axes.shape[0]))


def _reshape_to_data(n: Node, x: Var, dims: Var, rank: int) -> Var:
    """x reshaped to the int64 [rank] data `dims` (fresh symbols named after
    the node): reshape's element count check rejects data that does not fit."""
    fb = n.importer.fb
    prefix = identifier(n.name or f"{n.op_type}_{n.index}", "node")
    return rop.reshape(x, list(fb.tensor_to_shape(dims, fb.fresh_symbols(rank, prefix=f"{prefix}_dim")).sym_value))


def _unsqueeze_runtime_axes(n: Node, x: Var) -> Var:
    """Axes as data: the output rank is static (rank + len(axes)), where the
    new 1s go is data. Unsqueezing only reshapes, so: output dim j is 1 when
    the data names j, else the next input dim (take at j - the new axes
    before j); a repeated or out-of-range axis leaves the element count or
    the take's bounds wrong, a ShapeError or BoundsError when it runs."""
    fb = n.importer.fb
    out_rank = x.ndim + int(canon(n.tensor(1, "axes").shape[0]))
    norm, _ = _runtime_axes(n, out_rank)
    positions = rop.arange(0, length=[out_rank])
    is_new = rt.named_positions(norm, out_rank)
    before = rop.subtract(rop.cumsum(rop.astype(is_new, "int64"), axis=0), rop.astype(is_new, "int64"))
    source = rop.minimum(rop.maximum(rop.subtract(positions, before), np.array(0, np.int64)),
                         np.array(max(x.ndim - 1, 0), np.int64))
    in_dims = fb.shape_to_tensor(fb.make_shape(list(x.shape))) if x.ndim else fb.const(np.ones(1, np.int64))
    dims = rop.where(is_new, np.array(1, np.int64), rop.take(in_dims, source, axis=0))
    return _reshape_to_data(n, x, dims, out_rank)


def _squeeze_runtime_axes(n: Node, x: Var) -> Var:
    """Axes as data: the output rank is static (rank - len(axes)); the dims
    the data does not name are kept (a compress of the shape), then a
    reshape to them, whose element count check rejects squeezing a dim that
    is not 1; a repeated or out-of-range axis leaves the wrong number of
    dims, a ShapeError when it runs."""
    fb = n.importer.fb
    norm, k = _runtime_axes(n, x.ndim)
    named = rt.named_positions(norm, x.ndim)
    kept = rop.compress(fb.shape_to_tensor(fb.make_shape(list(x.shape))), rop.equal(named, np.array(False)), axis=0)
    return _reshape_to_data(n, x, fb.match_cast(kept, [x.ndim - k]), x.ndim - k)


@register_converter("Squeeze", attrs=("axes",))
def _squeeze(n: Node) -> Value:
    x = n.input(0, "data")
    if n.opset >= 13 and rt.is_runtime(n, 1):
        return _squeeze_runtime_axes(n, n.importer.tensor(x, n))
    axes = (n.static_ints(1, "axes") if n.optional(1) is not None else None) if n.opset >= 13 else n.attr("axes", None)
    if axes is None:
        norm = [i for i, d in enumerate(x.shape) if is_one(canon(d))]
    else:
        norm = sorted({n.axis(a, x.ndim) for a in axes})
    if isinstance(x, Known):
        return Known(np.squeeze(x.array, axis=tuple(norm)) if norm else x.array, x.dtype, None)
    return n.op("squeeze", x, axis=norm)


@register_converter("Concat", attrs=("axis",))
def _concat(n: Node) -> Value:
    args = [v for v in n.inputs if v is not None]
    if not args:
        n.fail("needs at least one input")
    axis = n.axis(n.attr("axis"), args[0].ndim)
    if all(isinstance(a, Known) for a in args) and not (n.importer.keep_params and any(a.initializer for a in args)):
        known = [a for a in args if isinstance(a, Known)]
        if any(k.symbolic for k in known):
            return simplify_known(Known(np.concatenate([k.array.astype(object) for k in known], axis=axis), known[0].dtype))
        return Known(np.concatenate([k.array for k in known], axis=axis), known[0].dtype)
    return n.op("concat", *args, axis=axis)


@register_converter("Split", attrs=("axis", "split", "num_outputs"))
def _split(n: Node) -> Sequence[Value]:
    x = n.input(0, "input")
    axis = n.axis(n.attr("axis", 0), x.ndim)
    count = len(n.outputs)
    sizes: list[int] | None = None
    if n.opset >= 13 and rt.is_runtime(n, 1):
        parts = rt.split(n, x, rt.int_vector(n, 1, "split"), axis)
        if len(parts) != count:
            n.fail(f"split has {len(parts)} sizes but the node has {count} outputs")
        return parts
    if n.opset >= 13 and n.optional(1) is not None:
        sizes = n.static_ints(1, "split")
    elif n.opset < 13 and "split" in n.attrs:
        sizes = list(n.attrs["split"])
    dim = canon(x.shape[axis])
    if sizes is None:
        num = int(n.attr("num_outputs", count))
        if dim.is_Integer and int(dim) % num:
            chunk = -(-int(dim) // num)  # opset 18: the last chunk is smaller
            sizes = [chunk] * (num - 1) + [int(dim) - chunk * (num - 1)]
        else:
            parts = n.op("split", x, indices_or_sections=num, axis=axis)
            return [parts[i] for i in range(num)] if isinstance(parts, Var) else list(parts)
    if len(sizes) != count:
        n.fail(f"split has {len(sizes)} sizes but the node has {count} outputs")
    points = list(np.cumsum(sizes[:-1]).tolist()) if len(sizes) > 1 else []
    if dim.is_Integer and sum(sizes) != int(dim):
        n.fail(f"split sizes {sizes} do not add up to the dim {dim_to_str(dim)}")
    parts = n.op("split", x, indices_or_sections=points, axis=axis)
    return [parts[i] for i in range(len(sizes))] if isinstance(parts, Var) else list(parts)


@register_converter("Gather", attrs=("axis",))
def _gather(n: Node) -> Value:
    data, idx = n.input(0, "data"), n.input(1, "indices")
    axis = n.axis(n.attr("axis", 0), data.ndim)
    if isinstance(data, Known) and isinstance(idx, Known) and not idx.symbolic and \
            not (n.importer.keep_params and data.initializer):
        dim = data.shape[axis]
        if ((idx.array < -dim) | (idx.array >= dim)).any():
            n.fail(f"indices {idx.array.tolist()} are out of range for a dim of size {dim}")
        return simplify_known(Known(np.asarray(np.take(data.array, idx.array, axis=axis), dtype=data.array.dtype),
                                    data.dtype))
    if isinstance(idx, Known) and not idx.symbolic:
        d = canon(data.shape[axis])
        if d.is_Integer and ((idx.array < -int(d)) | (idx.array >= int(d))).any():
            n.fail(f"indices {idx.array.tolist()} are out of range for dim {axis} of size {int(d)}")
    if idx.dtype not in ("int32", "int64"):
        n.fail(f"indices must be int32 or int64, got {idx.dtype}")
    return n.op("take", data, idx, axis=axis)


@register_converter("Slice", attrs=("starts", "ends", "axes"))
def _slice(n: Node) -> Value:
    x = n.input(0, "data")
    if n.opset < 10:
        starts, ends = list(n.attr("starts")), list(n.attr("ends"))
        axes = list(n.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    elif rt.is_runtime(n, 3) or rt.is_runtime(n, 4):
        return rt.slice_data_axes(n, x)
    elif rt.is_runtime(n, 1) or rt.is_runtime(n, 2):
        return _runtime_slice(n, x)
    else:
        starts, ends = n.ints(1, "starts"), n.ints(2, "ends")
        axes = n.static_ints(3, "axes") if n.optional(3) is not None else list(range(len(starts)))
        steps = n.static_ints(4, "steps") if n.optional(4) is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        n.fail("starts, ends, axes and steps must have the same length")
    axes = [n.axis(a, x.ndim) for a in axes]
    begin, end = [_slice_bound(n, x, a, s, "start") for a, s in zip(axes, starts)], \
        [_slice_bound(n, x, a, e, "end") for a, e in zip(axes, ends)]
    if any(s == 0 for s in steps):
        n.fail("steps must not be 0")
    symbolic = any(not isinstance(v, int) for v in begin + end)
    if isinstance(x, Known) and not symbolic and not (n.importer.keep_params and x.initializer):
        index: list[slice] = [slice(None)] * x.ndim
        for a, b, e, s in zip(axes, begin, end, steps):
            index[a] = slice(b, e, s)
        return simplify_known(Known(x.array[tuple(index)], x.dtype))
    # symbolic bounds (`pos[:t]`): assumed within the dim, checked at run time
    return n.op("strided_slice", x, axes=axes, begin=begin, end=end, strides=steps, assume_inbound=symbolic)


def _runtime_slice(n: Node, x: Value) -> Value:
    """Slice with starts/ends computed at run time (axes and steps must be
    known: they fix which dims change): one gather per sliced axis."""
    starts, ends = rt.int_vector(n, 1, "starts"), rt.int_vector(n, 2, "ends")
    k = int(starts.shape[0])
    axes = n.static_ints(3, "axes") if n.optional(3) is not None else list(range(k))
    steps = n.static_ints(4, "steps") if n.optional(4) is not None else [1] * k
    if not int(ends.shape[0]) == k == len(axes) == len(steps):
        n.fail("starts, ends, axes and steps must have the same length")
    axes = [n.axis(a, x.ndim) for a in axes]
    if len(set(axes)) != len(axes):
        n.fail(f"axes {axes} repeat an axis")
    if any(s == 0 for s in steps):
        n.fail("steps must not be 0")
    y = x
    for i, (a, s) in enumerate(zip(axes, steps)):
        b, e = (n.op("take", v, rt.const(i), axis=0) for v in (starts, ends))
        y = rt.slice_axis(n, y, a, rt.as_var(b), rt.as_var(e), s)
    return y


def _slice_bound(n: Node, x: Value, axis: int, v: Any, what: str) -> Any:
    """A slice bound: an int (clamped to int64), or a symbolic dim; one equal
    to the whole dim (or its negative) becomes the "to the end" sentinel."""
    if isinstance(v, int):
        return max(min(v, INT64_MAX), -INT64_MAX)
    d = canon(x.shape[axis])
    if dims_equal(v, d):
        return INT64_MAX
    if dims_equal(-v, d):
        return -INT64_MAX
    return canon(v)


@register_converter("Trilu", attrs=("upper",))
def _trilu(n: Node) -> Value:
    x = n.input(0, "input")
    if x.ndim < 2:
        n.fail(f"input must have rank >= 2, got {x.ndim}")
    upper = bool(n.attr("upper", 1))
    if n.optional(1) is not None and (rt.is_runtime(n, 1) or n.known(1, "k").symbolic):
        return _trilu_data_diagonal(n, x, upper)
    k = n.scalar(1, "k")
    return n.op("triu" if upper else "tril", x, k=int(k or 0))


def _trilu_data_diagonal(n: Node, x: Value, upper: bool) -> Value:
    """A diagonal computed from sizes or data (torch's `mask.triu(past + 1)`):
    keep x[..., i, j] where j - i >= k (upper) or j - i <= k (lower), as a
    `where` over the offsets, since triu / tril take k as an attribute."""
    if rt.is_runtime(n, 1):
        k = rt.as_int64(n, rt.scalar_tensor(n, 1, "k"))
    else:
        values = n.ints(1, "k")
        if len(values) != 1:
            n.fail(f"input 1 (k) must be a scalar, got {len(values)} values")
        k = rt.dims_data(n, values)
    rows = n.op("arange", start=0.0, step=1.0, dtype="int64", length=[x.shape[-2]])
    cols = n.op("arange", start=0.0, step=1.0, dtype="int64", length=[x.shape[-1]])
    offset = n.op("subtract", n.op("expand_dims", cols, axis=[0]), n.op("expand_dims", rows, axis=[1]))
    keep = n.op("greater_equal" if upper else "less_equal", offset, k)
    return n.op("where", keep, x, rt.const(0, x.dtype))


@register_converter("Expand")
def _expand(n: Node) -> Value:
    x = n.input(0, "input")
    if rt.is_runtime(n, 1):
        return rt.expand(n, x, rt.int_vector(n, 1, "shape"))
    shape = n.ints(1, "shape")
    xs = [canon(d) for d in x.shape]
    rank = max(len(xs), len(shape))
    xs = [sympy.Integer(1)] * (rank - len(xs)) + xs
    ss = [sympy.Integer(1)] * (rank - len(shape)) + [canon(v) for v in shape]
    out = []
    for i, (a, b) in enumerate(zip(xs, ss)):
        if is_one(b):
            out.append(a)
        elif is_one(a) or dims_equal(a, b):
            out.append(b)
        elif a.is_Integer and b.is_Integer:
            n.fail(f"cannot broadcast dim {i}: input {a} vs shape {b}")
        else:
            out.append(a)  # broadcast_to checks a == b at run time
    if isinstance(x, Known) and not x.symbolic and all(d.is_Integer for d in out) and \
            math.prod(int(d) for d in out) <= FOLD_LIMIT and not (n.importer.keep_params and x.initializer):
        return Known(np.array(np.broadcast_to(x.array, [int(d) for d in out]), order="C"), x.dtype)
    return n.op("broadcast_to", x, shape=out)


@register_converter("ConstantOfShape", attrs=("value",))
def _constant_of_shape(n: Node) -> Value:
    value = n.attr("value", np.zeros(1, np.float32))
    value = np.asarray(value).reshape(-1)
    if value.size != 1:
        n.fail("value must hold one element")
    dtype = value.dtype.name
    if rt.is_runtime(n, 0):
        dims = rt.sizes(n, rt.int_vector(n, 0, "input"), "shape")
        return n.op("full", shape=dims, fill_value=float(value[0]), dtype=dtype)
    shape = n.ints(0, "input")
    if all(isinstance(v, int) for v in shape):
        if any(v < 0 for v in shape):
            n.fail(f"shape {shape} has a negative dim")
        if math.prod(shape) <= FOLD_LIMIT:
            return Known(np.full(shape, value[0], dtype=dtype), dtype)
    return n.op("full", shape=[canon(v) for v in shape], fill_value=float(value[0]), dtype=dtype)


def _range_from_symbolic_start(n: Node, start: Any, limit: Any, delta: Any, dtype: str) -> Value:
    """`torch.arange(past, past + t)`: a start computed from sizes. The length
    stays an expression of the symbols (`t`, not a fresh run-time symbol), so
    the positions line up with the tensors sized by it; the values are
    `start + i * delta` with start as data."""
    if not isinstance(delta, int) or dtype not in ("int32", "int64"):
        n.fail(f"a symbolic start ({dim_to_str(canon(start))}) needs integer bounds and an integer delta")
    lo, hi = (canon(start), canon(limit)) if delta > 0 else (canon(limit), canon(start))
    length = canon(sympy.Max(ceildiv(hi - lo, abs(delta)), 0))
    i = n.op("arange", start=0.0, step=float(delta), dtype="int64", length=[length])
    values = n.op("add", i, rt.dims_data(n, [start]))
    return values if dtype == "int64" else n.op("astype", values, dtype=dtype)


@register_converter("Range")
def _range(n: Node) -> Value:
    """Static bounds: folded (or arange); a symbolic limit (`torch.arange(t)`)
    with static start and delta: arange with a symbolic length; bounds
    computed at run time: the length and the values computed from data."""
    if any(rt.is_runtime(n, i) for i in range(3)):
        dtype = n.input(0, "start").dtype
        bounds = [rt.scalar_tensor(n, i, w) for i, w in enumerate(("start", "limit", "delta"))]
        if any(b.dtype != dtype for b in bounds):
            n.fail(f"start, limit and delta must have one element type, got {[b.dtype for b in bounds]}")
        return rt.range_values(n, *bounds, dtype)
    values = []
    for i, w in enumerate(("start", "limit", "delta")):
        k = n.known(i, w)
        if k.array.size != 1:
            n.fail(f"input {i} ({w}) must be a scalar")
        values.append(k.values()[0])
    start, limit, delta = values
    dtype = n.input(0, "start").dtype
    if not isinstance(delta, (int, float)):
        n.fail("delta must be static")
    if delta == 0:
        n.fail("delta must not be 0")
    if not isinstance(start, (int, float)):
        return _range_from_symbolic_start(n, start, limit, delta, dtype)
    if not isinstance(limit, (int, float)):
        if not isinstance(start, int) or not isinstance(delta, int) or delta < 0:
            n.fail(f"a symbolic limit ({dim_to_str(canon(limit))}) needs integer start and a positive integer delta")
        length = canon(sympy.Max(ceildiv(canon(limit) - start, delta), 0))
        return n.op("arange", start=float(start), step=float(delta), dtype=dtype, length=[length])
    count = max(math.ceil((limit - start) / delta), 0)
    if count <= FOLD_LIMIT:
        return Known(np.arange(start, limit, delta, dtype=dtype), dtype)
    return n.op("arange", start=float(start), end=float(limit), step=float(delta), dtype=dtype)
