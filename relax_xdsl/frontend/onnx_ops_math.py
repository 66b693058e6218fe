"""ONNX converters for math: trigonometric and hyperbolic functions, sign,
rounding and float predicates, bitwise / shift / logical ops, Mod, the
activations that are compositions of elementwise ops (Elu, Selu, Celu,
HardSigmoid, HardSwish, Softplus, Softsign, Mish, Shrink, ThresholdedRelu,
Swish, PRelu), and every Reduce* op and ArgMax / ArgMin.

Activations map onto existing elementwise graph ops: fusion makes each one
kernel, so they need no graph op of their own. Softplus (and Mish through
it) is computed as max(x, 0) + log(1 + exp(-|x|)), exact where the naive
log(1 + exp(x)) overflows.

Reductions follow ONNX for every opset: axes as an attribute or (opset 18,
ReduceSum 13) an input; an empty axes list reduces every axis, or none with
noop_with_empty_axes (the elementwise part still applies: ReduceSumSquare
squares). A reduction over an empty set (a static 0 dim; symbolic dims are
positive) gives ONNX's identity without computing: 0 for sums and norms, 1
for ReduceProd, -inf (the type's minimum) for ReduceMax and ReduceLogSum(Exp),
+inf (maximum) for ReduceMin, NaN for ReduceMean. ReduceLogSumExp subtracts
the maximum first (an infinite maximum counts as 0, as onnxruntime does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl import op as rop
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Known, Node, Value, register_converter
from relax_xdsl.shape import canon

INT64_MAX = 2**63 - 1


def _const(v: Value, value: float | bool) -> Known:
    """A scalar constant in v's dtype."""
    return Known(np.array(value, dtype=v.dtype), v.dtype)


def _need_float(n: Node, v: Value, what: str = "X") -> None:
    if not dtypes.is_float(v.dtype):
        n.fail(f"{what} must be a float tensor, got {v.dtype}")


# -- elementwise functions --------------------------------------------------------------------------------------

_UNARY = {"Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh",
          "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh", "Sign": "sign", "Round": "round",
          "IsNaN": "isnan", "BitwiseNot": "bitwise_not"}


@register_converter(_UNARY)
def _unary(n: Node) -> Value:
    return n.op(_UNARY[n.op_type], n.input(0, "X"))


@register_converter("IsInf", attrs=("detect_negative", "detect_positive"))
def _isinf(n: Node) -> Value:
    x = n.input(0, "X")
    neg, pos = bool(n.attr("detect_negative", 1)), bool(n.attr("detect_positive", 1))
    inf = n.op("isinf", x)
    if neg and pos:
        return inf
    if not neg and not pos:
        return n.op("logical_and", inf, Known(np.array(False), "bool"))
    side = n.op("greater" if pos else "less", x, _const(x, 0))
    return n.op("logical_and", inf, side)


_BINARY = {"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor",
           "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}


def _same_dtype(n: Node, a: Value, b: Value) -> None:
    if a.dtype != b.dtype:
        n.fail(f"operands have different element types {a.dtype} and {b.dtype}")


@register_converter(_BINARY)
def _binary(n: Node) -> Value:
    a, b = n.input(0, "A"), n.input(1, "B")
    _same_dtype(n, a, b)
    return n.op(_BINARY[n.op_type], a, b)


@register_converter("BitShift", attrs=("direction",))
def _bit_shift(n: Node) -> Value:
    x, y = n.input(0, "X"), n.input(1, "Y")
    _same_dtype(n, x, y)
    direction = n.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        n.fail(f"direction={direction!r} is not supported (LEFT or RIGHT)")
    return n.op("left_shift" if direction == "LEFT" else "right_shift", x, y)


@register_converter("Mod", attrs=("fmod",))
def _mod(n: Node) -> Value:
    """fmod=0: the remainder takes the divisor's sign (numpy's mod); fmod=1:
    the dividend's (C's fmod). Integer x mod 0 is 0 (undefined in ONNX)."""
    a, b = n.input(0, "A"), n.input(1, "B")
    _same_dtype(n, a, b)
    fmod = n.attr("fmod", 0)
    if fmod not in (0, 1):
        n.fail(f"fmod={fmod} is not supported (0 or 1)")
    return n.op("fmod" if fmod else "mod", a, b)


# -- activations ---------------------------------------------------------------------------------------------------


def _softplus(n: Node, x: Value) -> Value:
    """max(x, 0) + log(1 + exp(-|x|))."""
    tail = n.op("log", n.op("add", _const(x, 1), n.op("exp", n.op("negative", n.op("abs", x)))))
    return n.op("add", n.op("maximum", x, _const(x, 0)), tail)


@register_converter("Softplus")
def _softplus_node(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    return _softplus(n, x)


@register_converter("Mish")
def _mish(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    return n.op("multiply", x, n.op("tanh", _softplus(n, x)))


@register_converter("Softsign")
def _softsign(n: Node) -> Value:
    x = n.input(0, "input")
    _need_float(n, x)
    return n.op("divide", x, n.op("add", _const(x, 1), n.op("abs", x)))


@register_converter("Elu", attrs=("alpha",))
def _elu(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    alpha = _const(x, float(n.attr("alpha", 1.0)))
    neg = n.op("multiply", alpha, n.op("subtract", n.op("exp", x), _const(x, 1)))
    return n.op("where", n.op("less", x, _const(x, 0)), neg, x)


@register_converter("Celu", attrs=("alpha",))
def _celu(n: Node) -> Value:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    x = n.input(0, "X")
    _need_float(n, x)
    a = float(n.attr("alpha", 1.0))
    if a == 0:
        n.fail("alpha must not be 0")
    alpha = _const(x, a)
    neg = n.op("multiply", alpha, n.op("subtract", n.op("exp", n.op("divide", x, alpha)), _const(x, 1)))
    return n.op("add", n.op("maximum", x, _const(x, 0)), n.op("minimum", neg, _const(x, 0)))


@register_converter("Selu", attrs=("alpha", "gamma"))
def _selu(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    alpha = _const(x, float(n.attr("alpha", 1.67326319217681884765625)))
    gamma = _const(x, float(n.attr("gamma", 1.05070102214813232421875)))
    neg = n.op("subtract", n.op("multiply", alpha, n.op("exp", x)), alpha)
    return n.op("multiply", gamma, n.op("where", n.op("less_equal", x, _const(x, 0)), neg, x))


def _hard_sigmoid(n: Node, x: Value, alpha: float, beta: float) -> Value:
    return n.op("clip", n.op("add", n.op("multiply", x, _const(x, alpha)), _const(x, beta)), min=0.0, max=1.0)


@register_converter("HardSigmoid", attrs=("alpha", "beta"))
def _hard_sigmoid_node(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    return _hard_sigmoid(n, x, float(n.attr("alpha", 0.2)), float(n.attr("beta", 0.5)))


@register_converter("HardSwish")
def _hard_swish(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    return n.op("multiply", x, _hard_sigmoid(n, x, 1 / 6, 0.5))


@register_converter("Swish", attrs=("alpha",))
def _swish(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    alpha = float(n.attr("alpha", 1.0))
    if alpha == 1.0:
        return n.op("silu", x)
    return n.op("multiply", x, n.op("sigmoid", n.op("multiply", x, _const(x, alpha))))


@register_converter("Shrink", attrs=("bias", "lambd"))
def _shrink(n: Node) -> Value:
    """x + bias below -lambd, x - bias above lambd, else 0."""
    x = n.input(0, "input")
    lambd, bias = float(n.attr("lambd", 0.5)), float(n.attr("bias", 0.0))
    if x.dtype == "bool":
        n.fail("input must be numeric, got bool")
    below = n.op("less", x, _const(x, -lambd))
    above = n.op("greater", x, _const(x, lambd))
    inner = n.op("where", above, n.op("subtract", x, _const(x, bias)), _const(x, 0))
    return n.op("where", below, n.op("add", x, _const(x, bias)), inner)


@register_converter("ThresholdedRelu", attrs=("alpha",))
def _thresholded_relu(n: Node) -> Value:
    x = n.input(0, "X")
    _need_float(n, x)
    return n.op("where", n.op("greater", x, _const(x, float(n.attr("alpha", 1.0)))), x, _const(x, 0))


@register_converter("PRelu")
def _prelu(n: Node) -> Value:
    """slope * x where x < 0; the slope broadcasts to x (unidirectionally)."""
    x, slope = n.input(0, "X"), n.input(1, "slope")
    _same_dtype(n, x, slope)
    if slope.ndim > x.ndim:
        n.fail(f"slope has rank {slope.ndim}, more than X's {x.ndim}")
    return n.op("where", n.op("less", x, _const(x, 0)), n.op("multiply", x, slope), x)


# -- reductions ------------------------------------------------------------------------------------------------

_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")


def _reduce_axes(n: Node, x: Value) -> list[int] | None:
    """The sorted axes to reduce: None = all, [] = none (noop_with_empty_axes)."""
    from_input = n.opset >= 18 or (n.op_type == "ReduceSum" and n.opset >= 13)
    if from_input:
        axes = n.static_ints(1, "axes") if n.optional(1) is not None else []
    else:
        axes = list(n.attr("axes", []))
    if not axes:
        return [] if n.attr("noop_with_empty_axes", 0) else None
    norm = [n.axis(a, x.ndim, "axes entry") for a in axes]
    if len(set(norm)) != len(norm):
        n.fail(f"axes {axes} repeat an axis")
    return sorted(norm)


def _identity(op_type: str, dtype: str) -> Any:
    """ONNX's value of a reduction over no elements."""
    kind = "bool" if dtype == "bool" else "float" if dtypes.is_float(dtype) else "int"
    low = {"float": -np.inf, "int": np.iinfo(np.dtype(dtype)).min if kind == "int" else 0, "bool": False}[kind]
    high = {"float": np.inf, "int": np.iinfo(np.dtype(dtype)).max if kind == "int" else 0, "bool": True}[kind]
    return {"ReduceMax": low, "ReduceMin": high, "ReduceLogSum": low, "ReduceLogSumExp": low, "ReduceProd": 1,
            "ReduceMean": np.nan if kind == "float" else 0}.get(op_type, 0)


def _filled(n: Node, shape: list[Any], value: Any, dtype: str) -> Value:
    scalar = Known(np.array(value, dtype=dtype), dtype)
    if all(canon(d).is_Integer for d in shape):
        return Known(np.full([int(canon(d)) for d in shape], value, dtype=dtype), dtype)
    return n.op("broadcast_to", scalar, shape=[canon(d) for d in shape])


_STEPS = {  # op: (elementwise before, the per-axis reduction, elementwise after, computes in float)
    "ReduceSum": (None, "sum", None, False), "ReduceMax": (None, "max", None, False),
    "ReduceMin": (None, "min", None, False), "ReduceProd": (None, "prod", None, False),
    "ReduceL1": ("abs", "sum", None, False), "ReduceSumSquare": ("square", "sum", None, False),
    "ReduceMean": (None, "mean", None, True), "ReduceL2": ("square", "sum", "sqrt", True),
    "ReduceLogSum": (None, "sum", "log", True), "ReduceLogSumExp": (None, "lse", None, True),
}
_STEP_IDENTITY = {"sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin", "prod": "ReduceProd",
                  "mean": "ReduceMean", "lse": "ReduceLogSumExp"}
"""Whose identity an empty axis gives, per step."""


def _reduce_runtime_axes(n: Node, x: Value) -> Value:
    """Axes computed at run time (ONNX's own tests pass them as inputs).
    Which dims are reduced is data: each axis is reduced (keeping it, as 1)
    inside a relax.if on whether the data names it, one axis after another
    -- a sum, max, min or product over several axes is the same taken one
    at a time, and so are a mean and a log-sum-exp. Without keepdims the
    result is reshaped to the dims left, which must number rank - len(axes)
    (checked when it runs: a repeated or out-of-range axis fails it)."""
    before, reduction, after, in_float = _STEPS[n.op_type]
    fb = n.importer.fb
    xv = n.importer.tensor(x, n)
    axes = n.tensor(1, "axes")
    if axes.ndim != 1 or not canon(axes.shape[0]).is_Integer or axes.dtype != "int64":
        n.fail(f"input 1 (axes) must be a 1-d int64 tensor of static length, got {axes.type}")
    k, r = int(canon(axes.shape[0])), xv.ndim
    keepdims = bool(n.attr("keepdims", 1))
    if k == 0:
        return xv if n.attr("noop_with_empty_axes", 0) else _reduce_static(n, xv, None)
    y = xv if not in_float or dtypes.is_float(xv.dtype) else rop.astype(xv, "float64")
    if before == "abs":
        y = rop.abs(y)
    elif before == "square":
        y = rop.multiply(y, y)
    norm = rt.normalized_axes(axes, r)
    flags = []
    for i in range(r):
        flag = rop.greater(rop.sum(rop.astype(rop.equal(norm, np.array(i, np.int64)), "int64")), np.array(0, np.int64))
        flags.append(flag)
        y = fb.if_(flag, lambda y=y, i=i: _reduce_one_axis(n, y, i, reduction), lambda y=y: y)
    if after == "sqrt":
        y = rop.sqrt(y)
    elif after == "log":
        y = rop.log(y)
    if not keepdims:
        kept = rop.equal(rop.concat([rop.reshape(f, [1]) for f in flags], axis=0), np.array(False))
        dims = rop.compress(fb.shape_to_tensor(fb.make_shape(list(y.shape))), kept, axis=0)
        names = fb.fresh_symbols(r - k, prefix=f"{rt_name(n)}_dim")
        left = fb.match_cast(dims, [r - k])
        y = rop.reshape(y, list(fb.tensor_to_shape(left, names).sym_value))
    return y if y.dtype == xv.dtype else rop.astype(y, xv.dtype)


def _reduce_one_axis(n: Node, y: Value, axis: int, reduction: str) -> Value:
    """One axis reduced, kept as 1; an axis of static extent 0 gives ONNX's
    identity of the reduction (a max over nothing is -inf)."""
    if canon(y.shape[axis]) == 0:
        shape = [1 if i == axis else d for i, d in enumerate(y.shape)]
        return n.importer.tensor(_filled(n, shape, _identity(_STEP_IDENTITY[reduction], y.dtype), y.dtype), n)
    if reduction == "lse":
        return n.importer.tensor(_log_sum_exp(n, y, [axis], True), n)
    return getattr(rop, reduction)(y, axis=[axis], keepdims=True)


def rt_name(n: Node) -> str:
    """A symbol-name prefix naming the node (run-time errors then name it)."""
    from relax_xdsl.frontend.onnx_import import identifier

    return identifier(n.name or f"{n.op_type}_{n.index}", "node")


@register_converter(_REDUCE, attrs=("axes", "keepdims", "noop_with_empty_axes"))
def _reduce(n: Node) -> Value:
    x = n.input(0, "data")
    from_input = n.opset >= 18 or (n.op_type == "ReduceSum" and n.opset >= 13)
    if from_input and rt.is_runtime(n, 1):
        return _reduce_runtime_axes(n, x)
    return _reduce_static(n, x, _reduce_axes(n, x))


def _reduce_static(n: Node, x: Value, axes: list[int] | None) -> Value:
    keepdims = bool(n.attr("keepdims", 1))
    reduced = list(range(x.ndim)) if axes is None else axes
    if any(canon(x.shape[a]) == 0 for a in reduced):
        shape = [1 if i in reduced else d for i, d in enumerate(x.shape) if keepdims or i not in reduced]
        return _filled(n, shape, _identity(n.op_type, x.dtype), x.dtype)
    op = n.op_type
    if op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"):
        name = {"ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "prod"}[op]
        return n.op(name, x, axis=axes, keepdims=keepdims)
    if op == "ReduceL1":
        return n.op("sum", n.op("abs", x), axis=axes, keepdims=keepdims)
    if op == "ReduceSumSquare":
        return n.op("sum", n.op("multiply", x, x), axis=axes, keepdims=keepdims)
    # the rest compute in a float type: integers through float64, truncated back as ONNX's reference
    xf = x if dtypes.is_float(x.dtype) else n.op("astype", x, dtype="float64")
    if op == "ReduceMean":
        y = n.op("mean", xf, axis=axes, keepdims=keepdims)
    elif op == "ReduceL2":
        y = n.op("sqrt", n.op("sum", n.op("multiply", xf, xf), axis=axes, keepdims=keepdims))
    elif op == "ReduceLogSum":
        y = n.op("log", n.op("sum", xf, axis=axes, keepdims=keepdims))
    else:
        y = _log_sum_exp(n, xf, axes, keepdims)
    return y if y.dtype == x.dtype else n.op("astype", y, dtype=x.dtype)


def _log_sum_exp(n: Node, x: Value, axes: list[int] | None, keepdims: bool) -> Value:
    """m + log(sum(exp(x - m))), m the maximum (0 where it is infinite)."""
    m = n.op("max", x, axis=axes, keepdims=True)
    m = n.op("where", n.op("isinf", m), _const(x, 0), m)
    s = n.op("sum", n.op("exp", n.op("subtract", x, m)), axis=axes, keepdims=True)
    y = n.op("add", n.op("log", s), m)
    if keepdims:
        return y
    drop = list(range(x.ndim)) if axes is None else axes
    return n.op("squeeze", y, axis=drop) if drop else y


@register_converter(("ArgMax", "ArgMin"), attrs=("axis", "keepdims", "select_last_index"))
def _arg_reduce(n: Node) -> Value:
    """select_last_index=1: the first extreme of the tensor reversed along
    the axis (a take of d - 1, ..., 0), counted back from the end: d - 1 - i."""
    x = n.input(0, "data")
    name = "argmax" if n.op_type == "ArgMax" else "argmin"
    axis = n.axis(n.attr("axis", 0), x.ndim)
    keepdims = bool(n.attr("keepdims", 1))
    if not n.attr("select_last_index", 0):
        return n.op(name, x, axis=axis, keepdims=keepdims)
    d = canon(x.shape[axis])
    if d.is_Integer:
        last: Value = Known(np.array(int(d) - 1, dtype=np.int64), "int64")
        reversed_index: Value = Known(np.arange(int(d) - 1, -1, -1, dtype=np.int64), "int64")
    else:  # d - 1 as a tensor: the largest of 0 .. d - 1
        count = n.op("arange", start=0.0, step=1.0, dtype="int64", length=[d])
        last = n.op("max", count)
        reversed_index = n.op("subtract", last, count)
    i = n.op(name, n.op("take", x, reversed_index, axis=axis), axis=axis, keepdims=keepdims)
    return n.op("subtract", last, i)
