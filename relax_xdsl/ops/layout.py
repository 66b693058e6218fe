"""Layout ops: pad (constant / reflect / edge / wrap, negative pads crop),
tile and resize (nearest / linear / cubic over any axes, ONNX Resize's
coordinate modes).

Each output element reads input elements at indices computed from its own
index, so all three are injective: fusion computes them inline in their
consumer. Shapes stay symbolic: pad on [n, c, h, w] by 1 on h and w is
[n, c, h + 2, w + 2]; resize by 2 is [n, c, 2*h, 2*w].
Resize computes source coordinates and tap weights in float64 (as ONNX's
reference does), sums the taps of every resized axis (a separable kernel
as one product) and rounds once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import ShapeError
from relax_xdsl.ops.registry import INJECTIVE, REQUIRED, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon, dim_to_str

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_plan(ctx: Infer, x: TensorType, pad_before: Sequence[int], pad_after: Sequence[int],
              mode: str) -> list[tuple[int, int, int, int]]:
    """Per axis (crop_before, crop_after, pad_before, pad_after): negative pads
    crop first, then the cropped extent is padded (ONNX's order)."""
    if mode not in PAD_MODES:
        ctx.fail(f"mode {mode!r} is not one of {', '.join(PAD_MODES)}")
    if len(pad_before) != x.ndim or len(pad_after) != x.ndim:
        ctx.fail(f"pad_before {list(pad_before)} and pad_after {list(pad_after)} must have one entry per axis "
                 f"(rank {x.ndim})")
    return [(max(-b, 0), max(-a, 0), max(b, 0), max(a, 0)) for b, a in zip(pad_before, pad_after)]


@register_op
class Pad(OpSpec):
    """relax.pad: `pad_before[i]` / `pad_after[i]` elements added before /
    after axis i (negative: that many removed). Modes as numpy's pad:
    constant (`pad_value`), reflect (mirror without the edge), edge
    (repeat the edge), wrap (periodic). The non-constant modes need the
    cropped extent to be at least 1 (checked on entry)."""

    name = "pad"
    inputs = ("x",)
    params = {"pad_before": Param("ints", REQUIRED), "pad_after": Param("ints", REQUIRED),
              "mode": Param("str", "constant"), "pad_value": Param("float", 0.0)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, pad_before: tuple[int, ...], pad_after: tuple[int, ...],
              mode: str, pad_value: float) -> TensorType:
        plan = _pad_plan(ctx, x, pad_before, pad_after, mode)
        if dtypes.is_int(x.dtype) and mode == "constant":
            info = np.iinfo(x.dtype)
            if not (np.isfinite(pad_value) and info.min <= pad_value <= info.max):
                ctx.fail(f"pad_value {pad_value} is not a value of {x.dtype} (range [{info.min}, {info.max}])")
        out = []
        for i, (d, (cb, ca, b, a)) in enumerate(zip(x.sym_shape, plan)):
            kept = canon(d - cb - ca)
            if kept.is_Integer and int(kept) < 0:
                ctx.fail(f"axis {i}: cropping {cb} + {ca} elements from a dim of size {dim_to_str(d)}")
            if kept.is_Integer and int(kept) == 0 and mode != "constant" and b + a > 0:
                ctx.fail(f"axis {i}: {mode} padding of an empty extent")
            out.append(canon(kept + b + a))
        return tensor(out, x.dtype)

    def reference(self, x: np.ndarray, pad_before: tuple[int, ...], pad_after: tuple[int, ...], mode: str,
                  pad_value: float) -> np.ndarray:
        plan = _pad_plan(Infer(self.name), TensorType.of(x.shape, x.dtype), pad_before, pad_after, mode)
        cropped = x[tuple(slice(cb, x.shape[i] - ca) for i, (cb, ca, _, _) in enumerate(plan))]
        width = [(b, a) for _, _, b, a in plan]
        if mode != "constant" and any(cropped.shape[i] == 0 and b + a for i, (b, a) in enumerate(width)):
            raise ShapeError(f"relax.pad: {mode} padding of an empty extent (shape {list(cropped.shape)})")
        if mode == "constant":
            return np.pad(cropped, width, mode="constant", constant_values=np.array(pad_value).astype(x.dtype))
        return np.pad(cropped, width, mode=mode)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], pad_before: Any, pad_after: Any,
                 mode: str, pad_value: float) -> None:
        (x,), (out,) = inputs, outputs
        plan = _pad_plan(Infer(self.name), TensorType.of(x.shape, x.dtype), pad_before, pad_after, mode)
        kept = [canon(d - cb - ca) for d, (cb, ca, _, _) in zip(x.shape, plan)]
        if mode != "constant":
            pb.require_nonempty([k for k, (_, _, b, a) in zip(kept, plan) if b + a],
                                f"relax.pad ({mode}): the extent to pad in tensor program @{pb.func.sym_name.data}")
        fill = bool(pad_value) if x.dtype == "bool" else pad_value if dtypes.is_float(x.dtype) else int(pad_value)

        def body(*idx: Any) -> Any:
            src: list[Any] = []
            inside: Any = None
            for o, k, (cb, _, b, a) in zip(idx, kept, plan):
                c = o - b if b else o  # the index in the cropped extent
                if b + a:
                    n = pb.index(k)
                    if mode == "constant":
                        ok = (c >= 0) & (c < n) if b and a else (c >= 0) if b else (c < n)
                        inside = ok if inside is None else inside & ok
                    elif mode == "edge":
                        c = pb.max(pb.min(c, n - 1), 0)
                    elif mode == "wrap":
                        c = c - (c // n) * n
                    else:  # reflect: period 2 (k - 1), k == 1 gives 0
                        period = pb.max((n - 1) * 2, 1)
                        m = c - (c // period) * period
                        c = pb.select(m >= n, period - m, m)
                src.append(c + cb if cb else c)
            if inside is None:
                return x[tuple(src)]
            safe = [pb.max(pb.min(s, pb.index(d) - 1), 0) for s, d in zip(src, x.shape)]
            return pb.if_then_else(inside, lambda: x[tuple(safe)], fill)

        pb.compute(out, body)


@register_op
class Tile(OpSpec):
    """relax.tile: x repeated `repeats[i]` times along axis i (numpy's tile
    with one repeat per axis; ONNX Tile)."""

    name = "tile"
    inputs = ("x",)
    params = {"repeats": Param("ints", REQUIRED)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, repeats: tuple[int, ...]) -> TensorType:
        if len(repeats) != x.ndim:
            ctx.fail(f"repeats {list(repeats)} must have one entry per axis (rank {x.ndim})")
        if any(r < 0 for r in repeats):
            ctx.fail(f"repeats {list(repeats)} must be non-negative")
        return tensor([canon(d * r) for d, r in zip(x.sym_shape, repeats)], x.dtype)

    def reference(self, x: np.ndarray, repeats: tuple[int, ...]) -> np.ndarray:
        return np.tile(x, repeats)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], repeats: Any) -> None:
        (x,), (out,) = inputs, outputs
        pb.compute(out, lambda *idx: x[tuple(o if r == 1 else o % pb.index(d)
                                             for o, d, r in zip(idx, x.shape, repeats))])


# -- resize ---------------------------------------------------------------------------------------------------------

RESIZE_MODES = ("nearest", "linear", "cubic")
COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")
MAX_RESIZE_TAPS = 4096


def _taps(mode: str, antialias: bool, scale: float | None) -> int:
    """Input elements read per output element along one resized axis."""
    if mode == "nearest":
        return 1
    support = 1 if mode == "linear" else 2
    if antialias and scale is not None and scale < 1:
        return 2 - 2 * (math.floor(-support / scale) + 1)
    return 2 * support


class _ResizeAxis:
    """The static facts of one axis: extents, its scale (None: out / in at
    run time), its roi and tap count."""

    def __init__(self, d_in: sympy.Expr, d_out: sympy.Expr, scale: float | None, roi: tuple[float, float],
                 taps: int | None):
        self.d_in, self.d_out, self.scale, self.roi, self.taps = d_in, d_out, scale, roi, taps


def _resize_axes(ctx: Infer, x: TensorType, sizes: Sequence[sympy.Expr], scales: Sequence[float] | None,
                 roi: Sequence[float] | None, mode: str, coordinate_transformation_mode: str, nearest_mode: str,
                 antialias: bool) -> dict[int, _ResizeAxis]:
    """The resized axes (the others are copied)."""
    if mode not in RESIZE_MODES:
        ctx.fail(f"mode {mode!r} is not one of {', '.join(RESIZE_MODES)}")
    if coordinate_transformation_mode not in COORD_MODES:
        ctx.fail(f"coordinate_transformation_mode {coordinate_transformation_mode!r} is not one of "
                 f"{', '.join(COORD_MODES)}")
    if nearest_mode not in NEAREST_MODES:
        ctx.fail(f"nearest_mode {nearest_mode!r} is not one of {', '.join(NEAREST_MODES)}")
    if antialias and mode == "nearest":
        ctx.fail("antialias applies to linear and cubic modes, not nearest")
    if mode != "nearest" and not dtypes.is_float(x.dtype):
        ctx.fail(f"{mode} resize needs a floating-point tensor, got {x.dtype}")
    r = x.ndim
    if len(sizes) != r:
        ctx.fail(f"sizes {[dim_to_str(d) for d in sizes]} must have one entry per axis (rank {r})")
    if scales is not None and (len(scales) != r or any(not s > 0 for s in scales)):
        ctx.fail(f"scales {list(scales)} must have one positive entry per axis (rank {r})")
    if roi is not None and len(roi) != 2 * r:
        ctx.fail(f"roi {list(roi)} must have two entries per axis (rank {r})")
    out: dict[int, _ResizeAxis] = {}
    for a, (d, s) in enumerate(zip(x.sym_shape, sizes)):
        s = canon(s)
        if s.is_Integer and int(s) < 0:
            ctx.fail(f"size {int(s)} of axis {a} is negative")
        scale = scales[a] if scales is not None else \
            (int(s) / int(d) if s.is_Integer and d.is_Integer and int(d) else None)
        box = (roi[a], roi[r + a]) if roi is not None else (0.0, 1.0)
        crop = coordinate_transformation_mode == "tf_crop_and_resize"
        if s == d and (scale is None or scale == 1.0) and (not crop or box == (0.0, 1.0)):
            continue
        if antialias and mode != "nearest" and scale is None:
            ctx.fail(f"antialias needs a static scale on axis {a} (sizes over symbolic dims: "
                     f"{dim_to_str(d)} -> {dim_to_str(s)})")
        out[a] = _ResizeAxis(canon(d), s, scale, box, _taps(mode, antialias, scale))
    count = math.prod(ax.taps for ax in out.values())
    if count > MAX_RESIZE_TAPS:
        ctx.fail(f"{count} input elements per output element (taps per axis "
                 f"{[ax.taps for ax in out.values()]}) exceed the limit {MAX_RESIZE_TAPS}")
    return out


def _cubic(x: Any, a: float, absf: Any, select: Any) -> Any:
    """The cubic convolution kernel at |x| (Keys, coefficient a)."""
    x = absf(x)
    x2 = x * x
    x3 = x2 * x
    near = x3 * (a + 2) - x2 * (a + 3) + 1.0
    far = x3 * a - x2 * (5 * a) + x * (8 * a) - 4 * a
    return select(x <= 1.0, near, select(x < 2.0, far, 0.0))


@register_op
class Resize(OpSpec):
    """relax.resize: x resampled to `sizes` along every axis whose extent,
    scale or roi changes, as ONNX Resize (opset 11-19): `mode` nearest /
    linear / cubic; the output index maps to a source coordinate by
    `coordinate_transformation_mode` using `scales` (None: out / in per axis);
    nearest picks by `nearest_mode` ("simple": floor when upsampling, ceil
    when downsampling, opset 10); linear and cubic weigh the neighbours
    (edge-clamped; `exclude_outside` drops and renormalizes outside ones;
    `antialias` widens the kernel by 1 / scale when downsampling);
    tf_crop_and_resize samples `roi` and gives `extrapolation_value` outside."""

    name = "resize"
    inputs = ("x",)
    params = {"sizes": Param("dims", REQUIRED), "scales": Param("floats", None), "roi": Param("floats", None),
              "mode": Param("str", "nearest"), "coordinate_transformation_mode": Param("str", "half_pixel"),
              "nearest_mode": Param("str", "round_prefer_floor"), "cubic_coeff_a": Param("float", -0.75),
              "exclude_outside": Param("bool", False), "extrapolation_value": Param("float", 0.0),
              "antialias": Param("bool", False)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, sizes: Any, scales: Any, roi: Any, mode: str,
              coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float, exclude_outside: bool,
              extrapolation_value: float, antialias: bool) -> TensorType:
        _resize_axes(ctx, x, sizes, scales, roi, mode, coordinate_transformation_mode, nearest_mode, antialias)
        return tensor(sizes, x.dtype)

    # -- the numpy reference: one axis at a time, in float64 ---------------------------------------------------
    def reference(self, x: np.ndarray, sizes: Any, scales: Any, roi: Any, mode: str,
                  coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
                  exclude_outside: bool, extrapolation_value: float, antialias: bool) -> np.ndarray:
        t = TensorType.of(x.shape, x.dtype)
        sizes = [int(s) for s in sizes]
        axes = _resize_axes(Infer(self.name), t, sizes, scales, roi, mode, coordinate_transformation_mode,
                            nearest_mode, antialias)
        for ax in axes.values():
            if ax.scale is None:
                ax.scale = int(ax.d_out) / int(ax.d_in)
        return _np_resize(x, axes, sizes, mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
                          exclude_outside, extrapolation_value, antialias)

    # -- the tensor program ------------------------------------------------------------------------------------
    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], sizes: Any, scales: Any, roi: Any,
                 mode: str, coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
                 exclude_outside: bool, extrapolation_value: float, antialias: bool) -> None:
        (x,), (out,) = inputs, outputs
        axes = _resize_axes(Infer(self.name), TensorType.of(x.shape, x.dtype), out.shape, scales, roi, mode,
                            coordinate_transformation_mode, nearest_mode, antialias)

        def fconst(v: float) -> Any:
            return pb.const(float(v), _f64_type())

        def axis_values(a: int, ax: _ResizeAxis) -> tuple[Any, Any, Any]:
            scale = fconst(ax.scale) if ax.scale is not None else _fdim(pb, ax.d_out) / _fdim(pb, ax.d_in)
            return scale, fconst(ax.roi[0]), fconst(ax.roi[1])

        _ir_resize(pb, x, out, axes, axis_values, mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
                   exclude_outside, extrapolation_value, antialias)


def _data_axes(ctx: Infer, x: TensorType, scales: TensorType, roi: TensorType, sizes: Sequence[Any],
               axes: Sequence[int] | None, mode: str, coordinate_transformation_mode: str, nearest_mode: str,
               antialias: bool) -> dict[int, _ResizeAxis]:
    """resize_with_scales' resized axes: every axis in `axes` (the others
    keep their extent), with its scale and roi read from data; antialias
    makes the tap count a run-time value (taps None)."""
    r = x.ndim
    _resize_axes(ctx, x, list(x.sym_shape), None, None, mode, coordinate_transformation_mode, nearest_mode, False)
    if antialias and mode == "nearest":
        ctx.fail("antialias applies to linear and cubic modes, not nearest")
    for t, what, k in ((scales, "scales", r), (roi, "roi", 2 * r)):
        if t.ndim != 1 or not dtypes.is_float(t.dtype):
            ctx.fail(f"{what} must be a 1-d floating-point tensor, got {t}")
        ctx.same(t.sym_shape[0], k, f"the length of {what} ({k} for rank {r})")
    if len(sizes) != r:
        ctx.fail(f"sizes {[dim_to_str(canon(d)) for d in sizes]} must have one entry per axis (rank {r})")
    picked = list(range(r)) if axes is None else [int(a) for a in axes]
    if any(not 0 <= a < r for a in picked) or len(set(picked)) != len(picked):
        ctx.fail(f"axes {picked} must be distinct axes of a rank-{r} tensor")
    out: dict[int, _ResizeAxis] = {}
    for a in range(r):
        s = canon(sizes[a])
        if s.is_Integer and int(s) < 0:
            ctx.fail(f"size {int(s)} of axis {a} is negative")
        if a not in picked:
            ctx.same(s, x.sym_shape[a], f"size of axis {a} (not resized)")
            continue
        out[a] = _ResizeAxis(canon(x.sym_shape[a]), s, None, (0.0, 1.0), None if antialias else _taps(mode, False, None))
    count = math.prod(ax.taps or 1 for ax in out.values())
    if count > MAX_RESIZE_TAPS:
        ctx.fail(f"{count} input elements per output element exceed the limit {MAX_RESIZE_TAPS}")
    return out


@register_op
class ResizeWithScales(OpSpec):
    """relax.resize_with_scales: relax.resize with the per-axis scales
    (float [rank]) and roi (float [2 * rank], starts then ends) as data, for
    ONNX Resize whose scales, sizes or roi are computed at run time (the
    importer turns sizes into fresh symbols and scales into data). `sizes`
    is the output shape; the axes in `axes` (default all) are resampled,
    even at scale 1; the others must keep their extent. With `antialias`
    the number of taps depends on the scale, so each axis sums its taps in
    a run-time loop."""

    name = "resize_with_scales"
    inputs = ("x", "scales", "roi")
    params = {"sizes": Param("dims", REQUIRED), "axes": Param("ints", None),
              "mode": Param("str", "nearest"), "coordinate_transformation_mode": Param("str", "half_pixel"),
              "nearest_mode": Param("str", "round_prefer_floor"), "cubic_coeff_a": Param("float", -0.75),
              "exclude_outside": Param("bool", False), "extrapolation_value": Param("float", 0.0),
              "antialias": Param("bool", False)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, scales: TensorType, roi: TensorType, sizes: Any, axes: Any,
              mode: str, coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
              exclude_outside: bool, extrapolation_value: float, antialias: bool) -> TensorType:
        _data_axes(ctx, x, scales, roi, sizes, axes, mode, coordinate_transformation_mode, nearest_mode, antialias)
        return tensor(sizes, x.dtype)

    def reference(self, x: np.ndarray, scales: np.ndarray, roi: np.ndarray, sizes: Any, axes: Any, mode: str,
                  coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
                  exclude_outside: bool, extrapolation_value: float, antialias: bool) -> np.ndarray:
        sizes = [int(s) for s in sizes]
        picked = _data_axes(Infer(self.name), TensorType.of(x.shape, x.dtype.name),
                            TensorType.of(scales.shape, scales.dtype.name), TensorType.of(roi.shape, roi.dtype.name),
                            sizes, axes, mode, coordinate_transformation_mode, nearest_mode, antialias)
        r = x.ndim
        sc, bx = scales.astype(np.float64), roi.astype(np.float64)
        for a, ax in picked.items():
            ax.scale, ax.roi = float(sc[a]), (float(bx[a]), float(bx[r + a]))
        return _np_resize(x, picked, sizes, mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
                          exclude_outside, extrapolation_value, antialias)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], sizes: Any, axes: Any, mode: str,
                 coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
                 exclude_outside: bool, extrapolation_value: float, antialias: bool) -> None:
        (x, scales, roi), (out,) = inputs, outputs
        picked = _data_axes(Infer(self.name), TensorType.of(x.shape, x.dtype), TensorType.of(scales.shape, scales.dtype),
                            TensorType.of(roi.shape, roi.dtype), out.shape, axes, mode,
                            coordinate_transformation_mode, nearest_mode, antialias)
        r = x.ndim

        def axis_values(a: int, ax: _ResizeAxis) -> tuple[Any, Any, Any]:
            return tuple(pb.cast(buf[pb.index(i)], "float64") for buf, i in ((scales, a), (roi, a), (roi, r + a)))

        _ir_resize(pb, x, out, picked, axis_values, mode, coordinate_transformation_mode, nearest_mode,
                   cubic_coeff_a, exclude_outside, extrapolation_value, antialias)


def _np_resize(x: np.ndarray, axes: dict[int, _ResizeAxis], sizes: list[int], mode: str, ctm: str,
               nearest_mode: str, cubic_coeff_a: float, exclude_outside: bool, extrapolation_value: float,
               antialias: bool) -> np.ndarray:
    """The resize of x along `axes` (each with its scale and roi as numbers,
    and its tap count), one axis at a time in float64."""
    res = x.astype(np.float64)
    extrapolated = np.zeros(sizes, dtype=bool)
    for a, ax in axes.items():
        d_in, d_out = int(ax.d_in), int(ax.d_out)
        scale = float(ax.scale)  # type: ignore[arg-type]
        if d_out == 0:
            res = np.take(res, np.zeros(0, dtype=np.int64), axis=a)
            continue
        if d_in == 0:
            raise ShapeError(f"relax.resize: axis {a} of extent 0 cannot be resized to {d_out} (nothing to read)")
        with np.errstate(all="ignore"):
            xs = _np_coord(ctm, np.arange(d_out, dtype=np.float64), scale, d_in, d_out, ax.roi)
            f = np.ceil(xs) - 1
            ratio = xs - f
            taps = ax.taps if ax.taps is not None else _np_dynamic_taps(mode, scale, d_in)
            reach = d_in + taps if ax.taps is not None else 2 * d_in + 8
            base = np.nan_to_num(np.clip(f, -reach - 1 if ax.taps is None else -taps - 1, reach),
                                 nan=0.0).astype(np.int64)
        if mode == "nearest":
            up = _np_nearest_up(nearest_mode, ratio, scale)
            idx = np.clip(base + up, 0, d_in - 1)[:, None]
            w = np.ones((d_out, 1))
        else:
            js = np.arange(1 - taps // 2, taps // 2 + 1)
            idx_raw = base[:, None] + js[None, :]
            w = _np_weights(mode, antialias, scale, cubic_coeff_a, js[None, :] - ratio[:, None])
            if exclude_outside:
                w = np.where((idx_raw < 0) | (idx_raw >= d_in), 0.0, w)
            if exclude_outside or antialias:
                total = w.sum(axis=1, keepdims=True)
                w = w / np.where(total == 0, 1.0, total)
            idx = np.clip(idx_raw, 0, d_in - 1)
        gathered = np.take(res, idx, axis=a)  # [..., d_out, taps, ...]
        shape = (1,) * a + w.shape + (1,) * (res.ndim - a - 1)
        with np.errstate(invalid="ignore"):
            res = (gathered * w.reshape(shape)).sum(axis=a + 1)
        if ctm == "tf_crop_and_resize":
            bad = (xs < 0) | (xs > d_in - 1)
            extrapolated |= bad.reshape((1,) * a + (d_out,) + (1,) * (len(sizes) - a - 1))
    if ctm == "tf_crop_and_resize":
        res = np.where(extrapolated, extrapolation_value, res)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        res = np.clip(np.nan_to_num(np.round(res)), info.min, info.max)
    return np.ascontiguousarray(res.astype(x.dtype))


def _fdim(pb: Any, d: sympy.Expr) -> Any:
    return pb.const(float(int(d)), _f64_type()) if d.is_Integer else pb.cast(pb.index(d), "float64")


def _ir_resize(pb: Any, x: Any, out: Any, axes: dict[int, _ResizeAxis], axis_values: Any, mode: str, ctm: str,
               nearest_mode: str, cubic_coeff_a: float, exclude_outside: bool, extrapolation_value: float,
               antialias: bool) -> None:
    """The resize kernel: `axis_values(a, ax)` gives axis a's scale, roi start
    and roi end as float64 values (constants, or loaded from a buffer); an
    axis whose `taps` is None (antialias at a run-time scale) sums a run-time
    number of taps in a loop."""
    f64 = "float64"

    def fconst(v: float) -> Any:
        return pb.const(float(v), _f64_type())

    for ax in axes.values():  # an empty extent resized to a nonempty one has nothing to read
        if not (ax.d_in.is_Integer and int(ax.d_in) > 0):
            pb.require_nonempty([canon(ax.d_in + 1 - sympy.Min(ax.d_out, 1))],
                                f"relax.resize: the input extent {dim_to_str(ax.d_in)} (resized to "
                                f"{dim_to_str(ax.d_out)}) in tensor program @{pb.func.sym_name.data}")

    def body(*idx: Any) -> Any:
        per_axis: list[tuple[int, Any]] = []
        outside: Any = None
        for a, ax in axes.items():
            scale, lo, hi = axis_values(a, ax)
            d_in, d_out = _fdim(pb, ax.d_in), _fdim(pb, ax.d_out)
            y = pb.cast(idx[a], f64)
            xs = _ir_coord(pb, ctm, y, scale, d_in, d_out, lo, hi, fconst)
            f = pb.math("ceil", xs) - 1.0
            ratio = xs - f
            if ax.taps is not None:  # bounded before the integer conversion
                f = pb.max(pb.min(f, d_in + float(ax.taps)), fconst(-ax.taps - 1))
            else:
                reach = d_in * 2.0 + 8.0
                f = pb.max(pb.min(f, reach), -reach - 1.0)
            base = pb.cast(pb.cast(f, "int64"), _index_type())
            last = pb.index(ax.d_in) - 1
            if ctm == "tf_crop_and_resize":
                bad = (xs < 0.0) | (xs > d_in - 1.0)
                outside = bad if outside is None else outside | bad
            if mode == "nearest":
                up = _ir_nearest_up(pb, nearest_mode, ratio, scale, fconst)
                i = pb.max(pb.min(base + pb.select(up, pb.index(1), pb.index(0)), last), 0)
                per_axis.append((a, [(i, None)]))
                continue
            if ax.taps is None:
                per_axis.append((a, _DynamicTaps(pb, mode, scale, d_in, base, ratio, last, cubic_coeff_a,
                                                 exclude_outside, fconst)))
                continue
            js = range(1 - ax.taps // 2, ax.taps // 2 + 1)
            raw = [base + j for j in js]
            static = ax.scale if ax.scale is not None else None
            ws = [_ir_weight(pb, mode, antialias, static, cubic_coeff_a, fconst(j) - ratio) for j in js]
            if exclude_outside:
                ws = [pb.select((r < 0) | (r > last), fconst(0.0), w) for r, w in zip(raw, ws)]
            if exclude_outside or antialias:
                total = ws[0]
                for w in ws[1:]:
                    total = total + w
                total = pb.select(total.eq(0.0), fconst(1.0), total)
                ws = [w / total for w in ws]
            per_axis.append((a, [(pb.max(pb.min(r, last), 0), w) for r, w in zip(raw, ws)]))
        acc = _ir_sum_taps(pb, x, idx, per_axis, f64, fconst)
        if mode == "nearest":  # a plain load, in x's type
            if outside is None:
                return acc
            fill = bool(extrapolation_value) if x.dtype == "bool" else extrapolation_value \
                if dtypes.is_float(x.dtype) else int(extrapolation_value)
            return pb.select(outside, pb.lift(fill, acc.type), acc)
        if outside is not None:
            acc = pb.select(outside, fconst(extrapolation_value), acc)
        return pb.cast(acc, out.dtype)

    pb.compute(out, body)


def _f64_type() -> Any:
    from relax_xdsl import dtypes

    return dtypes.to_xdsl("float64")


def _index_type() -> Any:
    from xdsl.dialects.builtin import IndexType

    return IndexType()


def _np_coord(ctm: str, y: np.ndarray, scale: float, d_in: int, d_out: int, roi: tuple[float, float]) -> np.ndarray:
    width = scale * d_in
    if ctm == "align_corners":
        return np.zeros_like(y) if width == 1 else y * (d_in - 1) / (width - 1)
    if ctm == "asymmetric":
        return y / scale
    if ctm == "tf_crop_and_resize":
        lo, hi = roi
        xs = np.full_like(y, (hi - lo) * (d_in - 1) / 2) if width == 1 else y * (hi - lo) * (d_in - 1) / (width - 1)
        return xs + lo * (d_in - 1)
    if ctm == "pytorch_half_pixel":
        return np.full_like(y, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5
    offset = d_in / 2 * (1 - d_out / width)  # half_pixel_symmetric
    return offset + (y + 0.5) / scale - 0.5


def _ir_coord(pb: Any, ctm: str, y: Any, scale: Any, d_in: Any, d_out: Any, lo: Any, hi: Any, fconst: Any) -> Any:
    width = scale * d_in
    if ctm == "align_corners":
        return pb.select(width.eq(1.0), fconst(0.0), y * (d_in - 1.0) / (width - 1.0))
    if ctm == "asymmetric":
        return y / scale
    if ctm == "tf_crop_and_resize":
        span = (d_in - 1.0) * (hi - lo)
        xs = pb.select(width.eq(1.0), span * 0.5, y * span / (width - 1.0))
        return xs + (d_in - 1.0) * lo
    if ctm == "pytorch_half_pixel":
        return pb.select(width.eq(1.0), fconst(-0.5), (y + 0.5) / scale - 0.5)
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5
    offset = d_in * 0.5 * (1.0 - d_out / width)
    return offset + (y + 0.5) / scale - 0.5


def _np_nearest_up(mode: str, ratio: np.ndarray, scale: float) -> np.ndarray:
    """1 where nearest picks the upper neighbour (ratio in (0, 1]; 1 = exact)."""
    if mode == "simple":
        mode = "floor" if scale >= 1 else "ceil"
    if mode == "round_prefer_floor":
        return (ratio > 0.5).astype(np.int64)
    if mode == "round_prefer_ceil":
        return (ratio >= 0.5).astype(np.int64)
    if mode == "floor":
        return (ratio == 1).astype(np.int64)
    return np.ones_like(ratio, dtype=np.int64)


def _ir_nearest_up(pb: Any, mode: str, ratio: Any, scale: Any, fconst: Any) -> Any:
    floor, ceil = ratio.eq(1.0), ratio >= 0.0
    if mode == "simple":
        return pb.select(scale >= 1.0, floor, ceil)
    return {"round_prefer_floor": lambda: ratio > 0.5, "round_prefer_ceil": lambda: ratio >= 0.5,
            "floor": lambda: floor, "ceil": lambda: ceil}[mode]()


def _np_weights(mode: str, antialias: bool, scale: float, a: float, dist: np.ndarray) -> np.ndarray:
    s = min(scale, 1.0) if antialias else 1.0
    if mode == "linear":
        return np.clip(1 - np.abs(dist * s), 0, 1)
    return _cubic(dist * s, a, np.abs, np.where)


def _ir_weight(pb: Any, mode: str, antialias: bool, scale: Any, a: float, dist: Any) -> Any:
    """The tap weight at `dist`; `scale` is a number or a float64 value (the
    antialias kernel is widened by 1 / min(scale, 1))."""
    if antialias and scale is not None and not isinstance(scale, (int, float)):
        arg = dist * pb.min(scale, 1.0)
    else:
        s = min(scale, 1.0) if antialias and scale is not None else 1.0
        arg = dist * s if s != 1.0 else dist
    if mode == "linear":
        return pb.max(1.0 - pb.math("absf", arg), 0.0)
    return _cubic(arg, a, lambda v: pb.math("absf", v), pb.select)


def _ir_sum_taps(pb: Any, x: Any, idx: Sequence[Any], per_axis: list[tuple[int, Any]], f64: str,
                 fconst: Any) -> Any:
    """sum over every combination of taps of (product of weights) * x[...];
    nearest (one unweighted tap per axis) is a plain load. An axis's taps are
    a list of (index, weight), or a _DynamicTaps summed in a loop."""

    def walk(k: int, src: list[Any], weight: Any, acc: Any) -> Any:
        if k == len(per_axis):
            v = x[tuple(src)]
            if weight is None:
                return v
            term = pb.cast(v, f64) * weight
            return term if acc is None else acc + term
        a, taps = per_axis[k]
        if isinstance(taps, _DynamicTaps):
            def step(carried: Any, j: Any) -> Any:
                i, w = taps.tap(j)
                nxt = list(src)
                nxt[a] = i
                return walk(k + 1, nxt, w if weight is None else weight * w, carried)

            return pb.fold([taps.count], acc if acc is not None else fconst(0.0), step)
        for i, w in taps:
            nxt = list(src)
            nxt[a] = i
            acc = walk(k + 1, nxt, w if weight is None else (weight if w is None else weight * w), acc)
        return acc

    acc = walk(0, list(idx), None, None)
    if acc is None:
        raise AssertionError("resize without taps")
    return acc


_SUPPORT = {"linear": 1, "cubic": 2}


def _np_dynamic_taps(mode: str, scale: float, d_in: int) -> int:
    """The antialias tap count at a run-time scale: 2 - 2 * (floor(-support /
    min(scale, 1)) + 1) (ONNX), bounded by what any output point of a
    nonempty resize can reach (a scale below 1 / d_in gives no output)."""
    support = _SUPPORT[mode]
    cap = 2 * support * d_in + 4
    with np.errstate(all="ignore"):
        count = 2.0 - 2.0 * (np.floor(-support / np.float64(min(scale, 1.0))) + 1.0)
    return int(min(count, cap)) if count >= 2 * support else 2 * support


class _DynamicTaps:
    """Antialias taps at a run-time scale: `count` taps from `start`, the
    j-th at index base + start + j, weighed and normalised by the total."""

    def __init__(self, pb: Any, mode: str, scale: Any, d_in: Any, base: Any, ratio: Any, last: Any, a: float,
                 exclude_outside: bool, fconst: Any):
        support = _SUPPORT[mode]
        s = pb.min(scale, 1.0)
        count = 2.0 - 2.0 * (pb.math("floor", -float(support) / s) + 1.0)
        cap = d_in * float(2 * support) + 4.0
        count = pb.select(count > cap, cap, count)
        count = pb.select(count >= float(2 * support), count, fconst(2 * support))  # NaN: the minimum
        self.pb, self.mode, self.s, self.base, self.ratio, self.last, self.a = pb, mode, s, base, ratio, last, a
        self.exclude_outside, self.fconst = exclude_outside, fconst
        self.start = 1.0 - count * 0.5
        self.start_index = pb.cast(pb.cast(self.start, "int64"), _index_type())
        self.count = pb.cast(pb.cast(count, "int64"), _index_type())
        total = pb.fold([self.count], fconst(0.0), lambda acc, j: acc + self._raw(j)[1])
        self.total = pb.select(total.eq(0.0), fconst(1.0), total)

    def _raw(self, j: Any) -> tuple[Any, Any]:
        pb = self.pb
        raw = self.base + self.start_index + j
        dist = (self.start + pb.cast(j, "float64") - self.ratio) * self.s
        w = pb.max(1.0 - pb.math("absf", dist), 0.0) if self.mode == "linear" else \
            _cubic(dist, self.a, lambda v: pb.math("absf", v), pb.select)
        if self.exclude_outside:
            w = pb.select((raw < 0) | (raw > self.last), self.fconst(0.0), w)
        return raw, w

    def tap(self, j: Any) -> tuple[Any, Any]:
        raw, w = self._raw(j)
        return self.pb.max(self.pb.min(raw, self.last), 0), w / self.total
