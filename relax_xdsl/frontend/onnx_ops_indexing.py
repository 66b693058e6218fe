"""ONNX converters for the indexing family: GatherElements, GatherND,
ScatterElements (and its deprecated alias Scatter), ScatterND, OneHot,
CumSum, CumProd, ReverseSequence and TopK, onto the graph ops of
relax_xdsl/ops/indexing.py.

Sizes and axes that ONNX passes as inputs (TopK's K, CumSum's axis) must
be known at import time: they fix the output shape or the loop structure;
OneHot's depth computed at run time binds a fresh symbol
(onnx_runtime_values). Reductions ONNX added in later opsets (add/mul at 16,
max/min at 18) are refused on older opsets, as the spec does not define
them there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from relax_xdsl import op as rop
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Known, Node, Value, register_converter
from relax_xdsl.shape import canon

_INDEX_TYPES = ("int32", "int64")


def _indices(n: Node, i: int, what: str = "indices") -> Value:
    v = n.input(i, what)
    if v.dtype not in _INDEX_TYPES:
        n.fail(f"{what} must be int32 or int64, got {v.dtype}")
    return v


@register_converter("GatherElements", attrs=("axis",))
def _gather_elements(n: Node) -> Value:
    data, idx = n.input(0, "data"), _indices(n, 1)
    axis = n.axis(n.attr("axis", 0), data.ndim)
    return n.op("gather_elements", data, idx, axis=axis)


@register_converter("GatherND", attrs=("batch_dims",))
def _gather_nd(n: Node) -> Value:
    _indices(n, 1)
    return n.op("gather_nd", n.input(0, "data"), n.input(1, "indices"), batch_dims=int(n.attr("batch_dims", 0)))


def _reduction(n: Node) -> str:
    reduction = n.attr("reduction", "none")
    since = {"none": 1, "add": 16, "mul": 16, "max": 18, "min": 18}
    if reduction not in since:
        n.fail(f"attribute reduction={reduction!r} is not one of {', '.join(since)}")
    if n.opset < since[reduction]:
        n.fail(f"attribute reduction={reduction!r} needs opset {since[reduction]}, the model has opset {n.opset}")
    return reduction


@register_converter(("ScatterElements", "Scatter"), attrs=("axis", "reduction"))
def _scatter_elements(n: Node) -> Value:
    data = n.input(0, "data")
    _indices(n, 1)
    reduction = _reduction(n)
    axis = n.axis(n.attr("axis", 0), data.ndim)
    return n.op("scatter_elements", data, n.input(1, "indices"), n.input(2, "updates"), axis=axis,
                reduction=reduction)


@register_converter("ScatterND", attrs=("reduction",))
def _scatter_nd(n: Node) -> Value:
    _indices(n, 1)
    return n.op("scatter_nd", n.input(0, "data"), n.input(1, "indices"), n.input(2, "updates"),
                reduction=_reduction(n))


@register_converter("OneHot", attrs=("axis",))
def _one_hot(n: Node) -> Value:
    indices = n.input(0, "indices")
    if rt.is_runtime(n, 1):
        values = n.input(2, "values")
        if values.ndim != 1 or values.shape[0] != 2:
            n.fail(f"values must be [off_value, on_value], got shape {list(values.shape)}")
        return rt.one_hot(n, indices, rt.scalar_tensor(n, 1, "depth"), values, n.axis(n.attr("axis", -1),
                                                                                      indices.ndim + 1))
    depth = n.scalar(1, "depth")
    if depth is None:
        n.fail("input 1 (depth) is required")
    if depth != depth or depth < 1:  # NaN or non-positive
        n.fail(f"depth must be >= 1, got {depth}")
    if indices.dtype not in _INDEX_TYPES:  # ONNX casts any numeric indices to int64
        indices = n.op("astype", indices, dtype="int64")
    axis = n.axis(n.attr("axis", -1), indices.ndim + 1)
    values = n.input(2, "values")
    if values.ndim != 1 or values.shape[0] != 2:
        n.fail(f"values must be [off_value, on_value], got shape {list(values.shape)}")
    return n.op("one_hot", indices, values, depth=int(depth), axis=axis)


@register_converter(("CumSum", "CumProd"), attrs=("exclusive", "reverse"))
def _cumulative(n: Node) -> Value:
    x = n.input(0, "x")
    if rt.is_runtime(n, 1):
        return _cumulative_runtime_axis(n, n.importer.tensor(x, n))
    axis = n.scalar(1, "axis")
    if axis is None:
        n.fail("input 1 (axis) is required")
    if isinstance(axis, float):
        n.fail(f"axis must be an integer, got {axis}")
    name = "cumsum" if n.op_type == "CumSum" else "cumprod"
    return n.op(name, x, axis=n.axis(int(axis), x.ndim),
                exclusive=bool(n.attr("exclusive", 0)), reverse=bool(n.attr("reverse", 0)))


def _cumulative_runtime_axis(n: Node, x: Any) -> Any:
    """The axis as data (as ONNX's own tests give it): the result has x's
    shape whatever the axis, so each axis's cumulation sits in a relax.if on
    whether the data names it; the data must name exactly one axis (checked
    when it runs: an out-of-range axis is a ShapeError, not x unchanged)."""
    fb = n.importer.fb
    a = n.tensor(1, "axis")
    if a.dtype not in ("int32", "int64") or any(not (canon(d).is_Integer and int(canon(d)) == 1) for d in a.shape):
        n.fail(f"input 1 (axis) must be one int32/int64 value, got {a.type}")
    a = rop.reshape(rop.astype(a, "int64"), [])
    r = x.ndim
    norm = rt.normalized_axes(a, r)
    name = "cumsum" if n.op_type == "CumSum" else "cumprod"
    params = {"exclusive": bool(n.attr("exclusive", 0)), "reverse": bool(n.attr("reverse", 0))}
    hits = []
    y = x
    for i in range(r):
        hit = rop.equal(norm, np.array(i, np.int64))
        hits.append(rop.astype(hit, "int64"))
        y = fb.if_(hit, lambda i=i: getattr(rop, name)(x, axis=i, **params), lambda y=y: y)
    named = hits[0] if r == 1 else rop.sum(rop.concat([rop.reshape(h, [1]) for h in hits], axis=0))
    fb.tensor_to_prim(named, 1)  # exactly one axis named
    return y


@register_converter("ReverseSequence", attrs=("batch_axis", "time_axis"))
def _reverse_sequence(n: Node) -> Value:
    x = n.input(0, "input")
    _indices(n, 1, "sequence_lens")
    b = n.axis(n.attr("batch_axis", 1), x.ndim, "batch_axis")
    t = n.axis(n.attr("time_axis", 0), x.ndim, "time_axis")
    return n.op("reverse_sequence", x, n.input(1, "sequence_lens"), batch_axis=b, time_axis=t)


@register_converter("TopK", attrs=("k", "axis", "largest", "sorted"))
def _topk(n: Node) -> list[Value]:
    x = n.input(0, "X")
    if n.opset < 10:
        k = n.attr("k")
    else:
        k_in = n.input(1, "K")
        if not isinstance(k_in, Known):
            n.fail("input 1 (K) must be known at import time (a constant): it fixes the output shape")
        k = n.static_ints(1, "K")
        if len(k) != 1:
            n.fail(f"K must hold one value, got {k}")
        k = k[0]
    largest = bool(n.attr("largest", 1))
    axis = n.axis(n.attr("axis", -1), x.ndim)
    out = n.op("topk", n.tensor(0, "X"), k=int(k), axis=axis, largest=largest, sorted=bool(n.attr("sorted", 1)))
    if isinstance(out, tuple | list):
        return list(out)
    return [out[0], out[1]]

