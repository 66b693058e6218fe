"""ONNX layout converters: Pad, Tile, DepthToSpace, SpaceToDepth,
CenterCropPad, Resize and Upsample, onto relax.pad / tile / resize and
reshape + permute_dims compositions (exact, and fused into one gather).

Sizes and scales known at import time (constants or shape computations)
give static or symbolic dims; the data dims may stay symbolic where the op
allows. Pads, Tile's repeats and Resize's scales / sizes computed at run
time bind fresh symbols (onnx_runtime_values); Resize then reads its
scales and roi as data (relax.resize_with_scales).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Node, Value, register_converter
from relax_xdsl.shape import canon, dim_to_str, dims_equal, floordiv

# -- Pad ---------------------------------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "edge", "wrap")


@register_converter("Pad", attrs=("mode", "pads", "paddings", "value"))
def _pad(n: Node) -> Value:
    x = n.input(0, "data")
    mode = n.attr("mode", "constant")
    if mode not in _PAD_MODES or (mode == "wrap" and n.opset < 19):
        n.fail(f"attribute mode={mode!r} is not supported (constant, reflect, edge{', wrap' if n.opset >= 19 else ''})")
    if n.opset < 11:
        pads = list(n.attr("pads" if n.opset >= 2 else "paddings"))
        value = float(n.attr("value", 0.0))
        axes = list(range(x.ndim))
    elif rt.is_runtime(n, 1) or rt.is_runtime(n, 2) or (n.opset >= 18 and rt.is_runtime(n, 3)):
        return _runtime_pad(n, x, mode)
    else:
        pads = n.static_ints(1, "pads")
        value = n.scalar(2, "constant_value") if n.optional(2) is not None else 0
        value = 0 if value is None else value
        axes = [n.axis(a, x.ndim) for a in n.static_ints(3, "axes")] if n.opset >= 18 and \
            n.optional(3) is not None else list(range(x.ndim))
    if len(set(axes)) != len(axes):
        n.fail(f"axes {axes} repeat an axis")
    if len(pads) != 2 * len(axes):
        n.fail(f"pads has {len(pads)} values; it needs two per padded axis ({2 * len(axes)})")
    before, after = [0] * x.ndim, [0] * x.ndim
    for i, a in enumerate(axes):
        before[a], after[a] = int(pads[i]), int(pads[len(axes) + i])
    if not any(before) and not any(after):
        return x
    return n.op("pad", x, pad_before=before, pad_after=after, mode=mode, pad_value=float(value))


def _runtime_pad(n: Node, x: Value, mode: str) -> Value:
    """Pad with pads, the constant value or the axes computed at run time."""
    value: Value = rt.const(0, x.dtype)
    if n.optional(2) is not None:
        value = rt.scalar_tensor(n, 2, "constant_value")
        if value.dtype != x.dtype:
            n.fail(f"constant_value must be {x.dtype} like the data, got {value.dtype}")
    if n.opset >= 18 and rt.is_runtime(n, 3):
        return rt.pad_data_axes(n, x, rt.int_vector(n, 1, "pads"), mode, value)
    axes = [n.axis(a, x.ndim) for a in n.static_ints(3, "axes")] if n.opset >= 18 and \
        n.optional(3) is not None else list(range(x.ndim))
    if len(set(axes)) != len(axes):
        n.fail(f"axes {axes} repeat an axis")
    pads = rt.int_vector(n, 1, "pads")
    if int(pads.shape[0]) != 2 * len(axes):
        n.fail(f"pads has {pads.shape[0]} values; it needs two per padded axis ({2 * len(axes)})")
    return rt.gather_pad(n, x, pads, axes, mode, value)


# -- Tile --------------------------------------------------------------------------------------------------------


@register_converter("Tile")
def _tile(n: Node) -> Value:
    x = n.input(0, "input")
    if n.opset < 6:
        n.fail("Tile before opset 6 (tiles and axis inputs) is not supported")
    if rt.is_runtime(n, 1):
        repeats_data = rt.int_vector(n, 1, "repeats")
        if int(repeats_data.shape[0]) != x.ndim:
            n.fail(f"repeats has {repeats_data.shape[0]} values for an input of rank {x.ndim}")
        return rt.tile(n, x, repeats_data)
    repeats = n.static_ints(1, "repeats")
    if len(repeats) != x.ndim:
        n.fail(f"repeats has {len(repeats)} values for an input of rank {x.ndim}")
    if any(r < 0 for r in repeats):
        n.fail(f"repeats {repeats} must be non-negative")
    if all(r == 1 for r in repeats):
        return x
    return n.op("tile", x, repeats=repeats)


# -- DepthToSpace / SpaceToDepth ----------------------------------------------------------------------------------


def _nchw(n: Node, x: Value) -> list[sympy.Expr]:
    if x.ndim != 4:
        n.fail(f"input must have rank 4 (N, C, H, W), got rank {x.ndim}")
    return [canon(d) for d in x.shape]


def _block_attrs(n: Node) -> tuple[Value, int, str]:
    """DepthToSpace's and SpaceToDepth's input, blocksize and mode, checked."""
    x = n.input(0, "input")
    b = int(n.attr("blocksize"))
    mode = n.attr("mode", "DCR")
    if b < 1:
        n.fail(f"blocksize {b} must be >= 1")
    if mode not in ("DCR", "CRD"):
        n.fail(f"attribute mode={mode!r} is not supported (DCR or CRD)")
    return x, b, mode


@register_converter("DepthToSpace", attrs=("blocksize", "mode"))
def _depth_to_space(n: Node) -> Value:
    x, b, mode = _block_attrs(n)
    nn, c, h, w = _nchw(n, x)
    if c.is_Integer and int(c) % (b * b):
        n.fail(f"channels {int(c)} are not divisible by blocksize^2 = {b * b}")
    c2 = floordiv(c, b * b)
    if mode == "DCR":
        y = n.op("reshape", x, shape=[nn, b, b, c2, h, w])
        y = n.op("permute_dims", y, axes=[0, 3, 4, 1, 5, 2])
    else:
        y = n.op("reshape", x, shape=[nn, c2, b, b, h, w])
        y = n.op("permute_dims", y, axes=[0, 1, 4, 2, 5, 3])
    return n.op("reshape", y, shape=[nn, c2, canon(h * b), canon(w * b)])


@register_converter("SpaceToDepth", attrs=("blocksize", "mode"))
def _space_to_depth(n: Node) -> Value:
    x, b, mode = _block_attrs(n)
    nn, c, h, w = _nchw(n, x)
    for d, what in ((h, "height"), (w, "width")):
        if d.is_Integer and int(d) % b:
            n.fail(f"{what} {int(d)} is not divisible by blocksize {b}")
    h2, w2 = floordiv(h, b), floordiv(w, b)
    y = n.op("reshape", x, shape=[nn, c, h2, b, w2, b])
    y = n.op("permute_dims", y, axes=[0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4])
    return n.op("reshape", y, shape=[nn, canon(c * b * b), h2, w2])


# -- CenterCropPad -------------------------------------------------------------------------------------------------


@register_converter("CenterCropPad", attrs=("axes",))
def _center_crop_pad(n: Node) -> Value:
    x = n.input(0, "input_data")
    axes = [n.axis(a, x.ndim) for a in n.attr("axes", list(range(x.ndim)))]
    if len(set(axes)) != len(axes):
        n.fail(f"axes {axes} repeat an axis")
    if rt.is_runtime(n, 1):
        return _center_crop_pad_at_run_time(n, x, axes)
    shape = n.ints(1, "shape")
    if len(shape) != len(axes):
        n.fail(f"shape has {len(shape)} values for {len(axes)} axes")
    before, after = [0] * x.ndim, [0] * x.ndim
    for a, target in zip(axes, shape):
        d, t = canon(x.shape[a]), canon(target)
        if dims_equal(d, t):
            continue
        if not (d.is_Integer and t.is_Integer):
            n.fail(f"axis {a}: cropping or padding {dim_to_str(d)} to {dim_to_str(t)} needs static sizes")
        diff = int(t) - int(d)
        if diff < 0 and int(t) < 0:
            n.fail(f"axis {a}: target size {int(t)} is negative")
        first = -((-diff) // 2) if diff < 0 else diff // 2
        before[a], after[a] = first, diff - first
    if not any(before) and not any(after):
        return x
    return n.op("pad", x, pad_before=before, pad_after=after)


def _center_crop_pad_at_run_time(n: Node, x: Value, axes: list[int]) -> Value:
    """CenterCropPad with the target shape as data: per axis, pads of
    floor(diff / 2) before and the rest after (diff = target - dim; negative
    pads crop, the larger half after as ONNX centres), then one gather per
    axis (rt.gather_pad). The output dims are fresh symbols equal to the
    targets; a negative or oversized target fails their size check."""
    shape = rt.int_vector(n, 1, "shape")
    if int(canon(shape.shape[0])) != len(axes):
        n.fail(f"shape has {shape.shape[0]} values for {len(axes)} axes")
    diff = n.op("subtract", shape, rt.dims_data(n, [x.shape[a] for a in axes]))
    before = n.op("where", n.op("less", diff, rt.const(0)),
                  n.op("negative", n.op("divide", n.op("negative", diff), rt.const(2))),
                  n.op("divide", diff, rt.const(2)))
    after = n.op("subtract", diff, before)
    pads = rt.as_var(n.op("concat", before, after, axis=0))
    return rt.gather_pad(n, x, pads, axes, "constant", rt.const(0, x.dtype))


# -- Resize / Upsample ---------------------------------------------------------------------------------------------

_RESIZE_ATTRS = ("antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
                 "extrapolation_value", "keep_aspect_ratio_policy", "mode", "nearest_mode")


def _floats(n: Node, i: int, what: str) -> list[float] | None:
    v = n.optional(i)
    if v is None:
        return None
    k = n.known(i, what)
    if k.symbolic:
        n.fail(f"input {i} ({what}) must hold numbers, not symbolic dims")
    vals = [float(v) for v in np.asarray(k.array, dtype=np.float64).reshape(-1)]
    return vals or None


def _scaled_dim(d: sympy.Expr, s: float) -> sympy.Expr:
    """floor(d * s), as ONNX (float64 product) for static d; exact rational otherwise."""
    if d.is_Integer:
        return sympy.Integer(int(np.floor(np.float64(int(d)) * np.float64(s))))
    r = sympy.Rational(s)
    return canon(d * r) if r.q == 1 else floordiv(canon(d * r.p), int(r.q))


def _resize(n: Node, x: Value, scales: list[float] | None, sizes: list[Any] | None, roi: list[float] | None,
            axes: list[int], params: dict[str, Any], policy: str = "stretch") -> Value:
    r = x.ndim
    dims = [canon(d) for d in x.shape]
    full_scales: list[float] | None = None
    if sizes is not None:
        if len(sizes) != len(axes):
            n.fail(f"sizes has {len(sizes)} values for {len(axes)} axes")
        out = list(dims)
        for a, s in zip(axes, sizes):
            out[a] = canon(s)
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller"):
                n.fail(f"attribute keep_aspect_ratio_policy={policy!r} is not supported "
                       "(stretch, not_larger, not_smaller)")
            if not all(dims[a].is_Integer and out[a].is_Integer for a in axes):
                n.fail(f"keep_aspect_ratio_policy={policy} needs static sizes and input dims")
            ratios = [int(out[a]) / int(dims[a]) for a in axes]
            scale = min(ratios) if policy == "not_larger" else max(ratios)
            full_scales = [scale if a in axes else 1.0 for a in range(r)]
            for a in axes:
                out[a] = sympy.Integer(int(scale * int(dims[a]) + 0.5))
    elif scales is not None:
        if len(scales) != len(axes):
            n.fail(f"scales has {len(scales)} values for {len(axes)} axes")
        full_scales = [1.0] * r
        for a, s in zip(axes, scales):
            if not s > 0:
                n.fail(f"scale {s} of axis {a} must be positive")
            full_scales[a] = s
        out = [_scaled_dim(d, s) for d, s in zip(dims, full_scales)]
    else:
        n.fail("one of scales and sizes is required")
    full_roi = None
    if roi is not None and params.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        if len(roi) != 2 * len(axes):
            n.fail(f"roi has {len(roi)} values; it needs two per axis ({2 * len(axes)})")
        full_roi = [0.0] * r + [1.0] * r
        for i, a in enumerate(axes):
            full_roi[a], full_roi[r + a] = roi[i], roi[len(axes) + i]
    if all(dims_equal(a, b) for a, b in zip(out, dims)) and (full_scales is None or all(s == 1 for s in full_scales)) \
            and full_roi is None:
        return x
    return n.op("resize", x, sizes=out, scales=full_scales, roi=full_roi, **params)


@register_converter("Resize", attrs=_RESIZE_ATTRS)
def _resize_node(n: Node) -> Value:
    x = n.input(0, "X")
    mode = n.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic") or (n.opset < 11 and mode == "cubic"):
        n.fail(f"attribute mode={mode!r} is not supported")
    if n.opset < 11:  # opset 10: X, scales; asymmetric coordinates
        params = {"mode": mode, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "simple"}
        if rt.is_runtime(n, 1):
            return _runtime_resize(n, x, 1, None, None, list(range(x.ndim)), params, "stretch")
        return _resize(n, x, _floats(n, 1, "scales"), None, None, list(range(x.ndim)), params)
    ctm = n.attr("coordinate_transformation_mode", "half_pixel")
    params = {"mode": mode, "coordinate_transformation_mode": ctm,
              "nearest_mode": n.attr("nearest_mode", "round_prefer_floor"),
              "cubic_coeff_a": float(n.attr("cubic_coeff_a", -0.75)),
              "exclude_outside": bool(n.attr("exclude_outside", 0)),
              "extrapolation_value": float(n.attr("extrapolation_value", 0.0)),
              "antialias": bool(n.attr("antialias", 0))}
    for key, allowed in (("coordinate_transformation_mode", ("half_pixel", "half_pixel_symmetric",
                                                             "pytorch_half_pixel", "align_corners", "asymmetric",
                                                             "tf_crop_and_resize")),
                         ("nearest_mode", ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"))):
        if params[key] not in allowed:
            n.fail(f"attribute {key}={params[key]!r} is not supported ({', '.join(allowed)})")
    if ctm == "half_pixel_symmetric" and n.opset < 19:
        n.fail("coordinate_transformation_mode='half_pixel_symmetric' needs opset 19")
    if params["antialias"] and mode == "nearest":
        n.fail("attribute antialias=1 applies to linear and cubic modes only")
    axes = [n.axis(a, x.ndim) for a in n.attr("axes", list(range(x.ndim)))]
    if len(set(axes)) != len(axes):
        n.fail(f"axes {axes} repeat an axis")
    policy = n.attr("keep_aspect_ratio_policy", "stretch")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        n.fail(f"attribute keep_aspect_ratio_policy={policy!r} is not supported (stretch, not_larger, not_smaller)")
    crop = ctm == "tf_crop_and_resize"
    if (crop and rt.is_runtime(n, 1)) or _runtime_present(n, 2) or _runtime_present(n, 3):
        return _runtime_resize(n, x, 2 if _present(n, 2) else None, 3 if _present(n, 3) else None,
                               1 if crop and _present(n, 1) else None, axes, params, policy)
    roi = _floats(n, 1, "roi") if crop else None
    scales = _floats(n, 2, "scales")
    sizes = (n.ints(3, "sizes") or None) if n.optional(3) is not None else None
    if scales is not None and sizes is not None:
        n.fail("scales and sizes must not both be given")
    return _resize(n, x, scales if sizes is None else None, sizes, roi, axes, params, policy)


def _present(n: Node, i: int) -> bool:
    """Input i is given and not empty (opset 11-12 pass an empty scales with sizes)."""
    v = n.optional(i)
    if v is None:
        return False
    if isinstance(v, rt.Var):
        return not (v.ndim == 1 and canon(v.shape[0]) == 0)
    return np.asarray(v.array).size > 0


def _runtime_present(n: Node, i: int) -> bool:
    return rt.is_runtime(n, i) and _present(n, i)


def _float_vector(n: Node, i: int, what: str, length: int) -> Value:
    """Input i as float64 [length] data."""
    v = n.tensor(i, what)
    if not dtypes.is_float(v.dtype):
        n.fail(f"input {i} ({what}) must hold floating-point numbers, got {v.dtype}")
    if v.ndim != 1 or not dims_equal(canon(v.shape[0]), sympy.Integer(length)):
        n.fail(f"input {i} ({what}) must have {length} values (shape [{length}]), got shape "
               f"[{', '.join(dim_to_str(canon(d)) for d in v.shape)}]")
    return n.op("astype", v, dtype="float64") if v.dtype != "float64" else v


def _spread(n: Node, values: Value, picks: list[int], fill: list[float] | list[int], dtype: str) -> Value:
    """[len(picks)] data: entry j is values[picks[j]], or fill[picks[j]] where picks[j] < 0 (from the end)."""
    k = int(canon(values.shape[0]))
    ext = n.op("concat", values, rt.const(fill, dtype), axis=0)
    return n.op("take", ext, rt.const([p if p >= 0 else k + len(fill) + p for p in picks]), axis=0)


def _checked_sizes(n: Node, out: Value, what: str) -> list[Any]:
    """float64 output sizes as fresh symbols: NaN, negative and oversized
    values become ones the size check rejects (named after the node), never
    an undefined float -> int conversion."""
    out = n.op("where", n.op("equal", out, out), out, rt.const(-1.0, "float64"))
    out = n.op("minimum", n.op("maximum", out, rt.const(-1.0, "float64")), rt.const(float(2**62), "float64"))
    return rt.sizes(n, rt.as_int64(n, out), what)


def _runtime_resize(n: Node, x: Value, scales_i: int | None, sizes_i: int | None, roi_i: int | None,
                    axes: list[int], params: dict[str, Any], policy: str, upsample: bool = False) -> Value:
    """Resize with scales, sizes or roi computed at run time, as relax.resize_with_scales:
    the output extents of the resized axes are fresh symbols (from floor(in *
    scale), or the sizes, as ONNX defines them), the per-axis scales and the roi
    are float64 data the kernel reads. `upsample` (Upsample's scales must be
    >= 1): a scale below 1 becomes NaN, whose extent fails the size check."""
    r, k = x.ndim, len(axes)
    dims = [canon(d) for d in x.shape]
    in_f = n.op("astype", rt.dims_data(n, [dims[a] for a in axes]), dtype="float64")  # [k]
    f64 = "float64"
    if scales_i is not None and sizes_i is not None:
        n.fail("scales and sizes must not both be given")
    if sizes_i is not None:
        sizes = rt.int_vector(n, sizes_i, "sizes")
        if int(canon(sizes.shape[0])) != k:
            n.fail(f"sizes has {sizes.shape[0]} values for {k} axes")
        ratios = n.op("divide", n.op("astype", sizes, dtype=f64), in_f)
        if policy == "stretch":
            out_axes = rt.sizes(n, sizes, "sizes")
            scale = ratios
        else:
            one = n.op("min" if policy == "not_larger" else "max", ratios, axis=[0], keepdims=True)
            scale = n.op("broadcast_to", one, shape=[k])
            out_axes = _checked_sizes(n, n.op("floor", n.op("add", n.op("multiply", scale, in_f),
                                                            rt.const(0.5, f64))), "sizes")
    elif scales_i is not None:
        scale = _float_vector(n, scales_i, "scales", k)
        if upsample:
            scale = n.op("where", n.op("greater_equal", scale, rt.const(1.0, f64)), scale, rt.const(np.nan, f64))
        out_axes = _checked_sizes(n, n.op("floor", n.op("multiply", in_f, scale)), "sizes")
    else:
        n.fail("one of scales and sizes is required")
    where = {a: i for i, a in enumerate(axes)}
    full_scales = _spread(n, scale, [where.get(a, -1) for a in range(r)], [1.0], f64)
    if roi_i is not None:
        roi = _float_vector(n, roi_i, "roi", 2 * k)
        full_roi = _spread(n, roi, [where.get(a, -2) for a in range(r)] +
                           [k + where[a] if a in where else -1 for a in range(r)], [0.0, 1.0], f64)
    else:
        full_roi = rt.const([0.0] * r + [1.0] * r, f64)
    out = list(dims)
    for a, d in zip(axes, out_axes):
        out[a] = canon(d)
    return n.op("resize_with_scales", x, full_scales, full_roi, sizes=out, axes=sorted(axes), **params)


@register_converter("Upsample", attrs=("mode", "scales"))
def _upsample(n: Node) -> Value:
    x = n.input(0, "X")
    mode = n.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        n.fail(f"attribute mode={mode!r} is not supported (nearest, linear)")
    params = {"mode": "linear" if mode == "bilinear" else mode, "coordinate_transformation_mode": "asymmetric",
              "nearest_mode": "floor"}
    if n.opset >= 9 and rt.is_runtime(n, 1):
        # scales as data: each output extent floor(dim * scale) is a fresh symbol; a scale below 1 (as
        # onnxruntime, which refuses it), NaN or one giving an oversized extent fails its size check
        return _runtime_resize(n, x, 1, None, None, list(range(x.ndim)), params, "stretch", upsample=True)
    scales = [float(s) for s in n.attr("scales")] if n.opset < 9 else _floats(n, 1, "scales")
    if scales is None:
        n.fail("scales is required")
    if any(s < 1 for s in scales):
        n.fail(f"scales {scales} must be >= 1")
    return _resize(n, x, scales, None, None, list(range(x.ndim)), params)
