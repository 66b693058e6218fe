"""ONNX converters for the ops whose output size depends on data: NonZero,
Compress, Unique, TopK with a K computed at run time, NonMaxSuppression,
onto the composite builders of relax_xdsl/ops/data_dependent.py (a count
op, tensor_to_shape binding a fresh symbol, a fill op).

TopK with a K known at import time keeps the static converter of
onnx_ops_indexing.py. NonMaxSuppression's max_output_boxes_per_class,
iou_threshold and score_threshold are read at run time (constants or not).
"""

from __future__ import annotations

from relax_xdsl.frontend.onnx_import import Known, Node, Value, register_converter
from relax_xdsl.frontend.onnx_ops_indexing import _topk as _static_topk
from relax_xdsl.ops import data_dependent as dd


@register_converter("NonZero")
def _nonzero(n: Node) -> Value:
    x = n.tensor(0, "X")
    if x.ndim == 0:
        n.fail("X must have rank >= 1")
    return dd.nonzero(x)


@register_converter("Compress", attrs=("axis",))
def _compress(n: Node) -> Value:
    x, cond = n.tensor(0, "input"), n.tensor(1, "condition")
    if cond.dtype != "bool" or cond.ndim != 1:
        n.fail(f"condition must be a 1-D bool tensor, got {cond.type}")
    axis = n.attrs.get("axis")
    return dd.compress(x, cond, None if axis is None else n.axis(int(axis), x.ndim))


@register_converter("Unique", attrs=("axis", "sorted"))
def _unique(n: Node) -> list[Value]:
    x = n.tensor(0, "X")
    axis = n.attrs.get("axis")
    if axis is not None:
        axis = n.axis(int(axis), x.ndim)
    return list(dd.unique(x, sorted=bool(n.attr("sorted", 1)), axis=axis))


@register_converter("TopK", attrs=("k", "axis", "largest", "sorted"))
def _topk(n: Node) -> list[Value]:
    """A K known at import time: relax.topk; otherwise relax.topk_fill with K read at run time."""
    if n.opset < 10 or isinstance(n.input(1, "K"), Known):
        return _static_topk(n)
    x = n.tensor(0, "X")
    k = n.tensor(1, "K")
    if k.dtype != "int64" or k.ndim != 1 or str(k.shape[0]) != "1":
        n.fail(f"K must be an int64 tensor of shape [1], got {k.type}")
    vals, inds = dd.topk_dynamic(x, k, axis=n.axis(n.attr("axis", -1), x.ndim), largest=bool(n.attr("largest", 1)),
                                 sorted=bool(n.attr("sorted", 1)))
    return [vals, inds]


@register_converter("NonMaxSuppression", attrs=("center_point_box",))
def _non_max_suppression(n: Node) -> Value:
    boxes, scores = n.tensor(0, "boxes"), n.tensor(1, "scores")
    limits = [n.tensor(i, what) if n.optional(i) is not None else d
              for i, what, d in ((2, "max_output_boxes_per_class", 0), (3, "iou_threshold", 0.0),
                                 (4, "score_threshold", None))]
    return dd.non_max_suppression(boxes, scores, *limits, center_point_box=int(n.attr("center_point_box", 0)))
