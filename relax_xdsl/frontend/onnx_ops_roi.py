"""ONNX converters for region-of-interest pooling, deformable convolution
and the cache update: RoiAlign and MaxRoiPool onto relax.roi_align /
max_roi_pool (relax_xdsl/ops/roi.py), DeformConv onto relax.deform_conv2d
(relax_xdsl/ops/deform_conv.py), TensorScatter as a composition of
existing ops.

RoiAlign's coordinate_transformation_mode came with opset 16 (default
half_pixel); opset 10 models behave as output_half_pixel, which is what
they were exported for.

TensorScatter (opset 24) writes `update` into `past_cache` at each batch
row's write index along `axis`: as a gather, each cache position p reads
update[p - write_index] (mod max_sequence_length in circular mode) where
that is in [0, sequence_length), the past value elsewhere; fusion makes
it one pass. In linear mode an update row that would land at or past
max_sequence_length is dropped (ONNX leaves it undefined).
"""

from __future__ import annotations

import numpy as np

from relax_xdsl.frontend.onnx_import import Known, Node, Value, register_converter, simplify_known
from relax_xdsl.ops.roi import MAX_SAMPLING_RATIO, ROI_ALIGN_MODES
from relax_xdsl.shape import canon, dim_to_str

_TRANSFORMS = {"half_pixel": True, "output_half_pixel": False}


def _positive_attr(n: Node, name: str, default: int) -> int:
    v = int(n.attr(name, default))
    if v < 1:
        n.fail(f"attribute {name}={v} must be positive")
    return v


@register_converter("RoiAlign", attrs=("coordinate_transformation_mode", "mode", "output_height", "output_width",
                                       "sampling_ratio", "spatial_scale"))
def _roi_align(n: Node) -> Value:
    x, rois, batch = n.input(0, "X"), n.input(1, "rois"), n.input(2, "batch_indices")
    mode = n.attr("mode", "avg")
    if mode not in ROI_ALIGN_MODES:
        n.fail(f"attribute mode={mode!r} is not supported ({', '.join(ROI_ALIGN_MODES)})")
    transform = n.attr("coordinate_transformation_mode", "half_pixel" if n.opset >= 16 else "output_half_pixel")
    if transform not in _TRANSFORMS:
        n.fail(f"attribute coordinate_transformation_mode={transform!r} is not supported "
               f"({', '.join(_TRANSFORMS)})")
    ratio = int(n.attr("sampling_ratio", 0))
    if not 0 <= ratio <= MAX_SAMPLING_RATIO:
        n.fail(f"attribute sampling_ratio={ratio} must be in [0, {MAX_SAMPLING_RATIO}] (0: adaptive); more samples "
               "per bin are refused rather than run for hours")
    return n.op("roi_align", x, rois, batch, output_height=_positive_attr(n, "output_height", 1),
                output_width=_positive_attr(n, "output_width", 1), sampling_ratio=ratio,
                spatial_scale=float(n.attr("spatial_scale", 1.0)), mode=mode, half_pixel=_TRANSFORMS[transform])


@register_converter("MaxRoiPool", attrs=("pooled_shape", "spatial_scale"))
def _max_roi_pool(n: Node) -> Value:
    x, rois = n.input(0, "X"), n.input(1, "rois")
    shape = [int(v) for v in n.attr("pooled_shape")]
    if len(shape) != 2 or any(v < 1 for v in shape):
        n.fail(f"attribute pooled_shape={shape} must be two positive ints (height, width)")
    return n.op("max_roi_pool", x, rois, pooled_shape=shape, spatial_scale=float(n.attr("spatial_scale", 1.0)))


@register_converter("TensorScatter", attrs=("axis", "mode"))
def _tensor_scatter(n: Node) -> Value:
    past, update = n.input(0, "past_cache"), n.input(1, "update")
    write = n.optional(2)
    mode = n.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        n.fail(f"attribute mode={mode!r} is not supported (linear, circular)")
    rank = past.ndim
    if rank < 2 or update.ndim != rank:
        n.fail(f"past_cache and update must have the same rank >= 2, got {rank} and {update.ndim}")
    axis = n.axis(int(n.attr("axis", -2)), rank)
    if axis == 0:
        n.fail("attribute axis must not be 0 (the batch axis)")
    if past.dtype != update.dtype:
        n.fail(f"past_cache ({past.dtype}) and update ({update.dtype}) must have one type")
    m, s = past.shape[axis], update.shape[axis]
    if canon(s) == 0:
        return past
    ones = [1] * rank
    pos = n.op("reshape", n.op("arange", start=0.0, length=[m], dtype="int64"),
               shape=[*ones[:axis], m, *ones[axis + 1:]])
    if write is not None:
        if write.ndim != 1 or write.dtype != "int64":
            n.fail(f"write_indices must be a rank-1 int64 tensor, got rank {write.ndim} {write.dtype}")
        w = n.op("reshape", write, shape=[write.shape[0], *ones[1:]])
        rel = n.op("subtract", pos, w)
    else:
        rel = pos
    if mode == "circular":
        rel = n.op("mod", rel, _dim_value(m))
    zero = Known(np.array(0, dtype=np.int64), "int64")
    valid = n.op("less", rel, _dim_value(s))
    if mode == "linear":
        valid = n.op("logical_and", valid, n.op("greater_equal", rel, zero))
    idx = n.op("broadcast_to", n.op("where", valid, rel, zero), shape=list(past.shape))
    gathered = n.op("gather_elements", update, idx, axis=axis)
    return n.op("where", n.op("broadcast_to", valid, shape=list(past.shape)), gathered, past)


def _dim_value(d: object) -> Known:
    """A dim (int or symbolic) as an int64 scalar known at import time (made
    data from the bound sizes when symbolic)."""
    arr = np.empty((), dtype=object)
    arr[()] = canon(d)
    return simplify_known(Known(arr, "int64"))


@register_converter("DeformConv", attrs=("dilations", "group", "kernel_shape", "offset_group", "pads", "strides"))
def _deform_conv(n: Node) -> Value:
    """DeformConv (opset 19, 22) onto relax.deform_conv2d (relax_xdsl/ops/deform_conv.py): 2-d only, as
    onnxruntime's. A missing B or mask is a broadcast [1] zero / [1, 1, 1, 1] one."""
    x, w, offset = n.input(0, "X"), n.input(1, "W"), n.input(2, "offset")
    b, mask = n.optional(3), n.optional(4)
    if x.ndim != 4:
        n.fail(f"only 2-d deformable convolutions are supported: X must have rank 4 (N, C, H, W), got rank {x.ndim}")
    if w.ndim != 4:
        n.fail(f"W must have rank 4 (OC, C / group, kH, kW), got rank {w.ndim}")
    kernel = [canon(d) for d in w.shape[2:]]
    given = [int(k) for k in n.attr("kernel_shape", [])]
    if given:
        if len(given) != 2 or any(not canon(k).is_Integer or int(canon(k)) != g for k, g in zip(kernel, given)):
            n.fail(f"attribute kernel_shape={given} does not match W's spatial dims {[dim_to_str(k) for k in kernel]}")
    strides = [int(v) for v in n.attr("strides", [1, 1])]
    dilations = [int(v) for v in n.attr("dilations", [1, 1])]
    pads = [int(v) for v in n.attr("pads", [0, 0, 0, 0])]
    for name, vals, count, low in (("strides", strides, 2, 1), ("dilations", dilations, 2, 1), ("pads", pads, 4, 0)):
        if len(vals) != count or any(v < low for v in vals):
            n.fail(f"attribute {name}={vals} must be {count} ints >= {low}")
    dtype = x.dtype
    if b is None:
        b = _filled(n, [1], 0.0, dtype)
    elif b.ndim != 1:
        n.fail(f"B must have rank 1 (OC), got rank {b.ndim}")
    if mask is None:
        mask = _filled(n, [1, 1, 1, 1], 1.0, dtype)
    return n.op("deform_conv2d", x, w, offset, b, mask, strides=strides, padding=pads, dilation=dilations,
                groups=_positive_attr(n, "group", 1), offset_groups=_positive_attr(n, "offset_group", 1))


def _filled(n: Node, shape: list[int], value: float, dtype: str) -> Value:
    k = Known(np.full(shape, value, dtype=np.float32), "float32")
    return k if dtype == "float32" else n.op("astype", k, dtype=dtype)
