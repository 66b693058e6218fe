"""Region-of-interest pooling: roi_align (ONNX RoiAlign) and max_roi_pool
(ONNX MaxRoiPool).

Both read the feature map at places that come from data (the boxes), so
both are written to read nothing out of range whatever the boxes hold:
the batch index of each box is checked against [0, N) in a serial pass
before the parallel compute (a BoundsError naming the op, as take's),
every coordinate is bounded as a float before any float -> int
conversion, and NaN boxes read nothing.

roi_align follows onnxruntime (and the ONNX reference): bins of
output_height x output_width per box, each the average (or max) of a grid
of bilinear samples; coordinates in the boxes' float type, as
onnxruntime computes them, so the adaptive grid (sampling_ratio 0:
ceil(bin size) samples per bin and axis) is the same number. Samples
outside [-1, extent] count (in the average's divisor) but read nothing.
That is what bounds the work for any box: with the adaptive grid,
samples are at most one pixel apart, so at most 2 * extent + 5 of them
per axis land in the map; the program loops over that window of the
grid only (found from the coordinates, one sample of slack on each side),
and the rest contributes 0 as in onnxruntime. A NaN or infinite box
gives 0. A fixed sampling_ratio is bounded by MAX_SAMPLING_RATIO.

max_roi_pool follows onnxruntime's MaxRoiPool: box corners rounded to
whole pixels (half away from zero), each bin the max over its window,
clamped to the map; an empty window gives 0. The batch index is the
box's first column truncated to an integer (NaN counts as -1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import CheckIndexOp
from relax_xdsl.errors import index_out_of_range
from relax_xdsl.ops.registry import OPAQUE, Infer, OpSpec, Param, register_op, tensor

MAX_SAMPLING_RATIO = 1024
"""The largest fixed sampling_ratio (samples per bin and axis): more is a
ShapeError at build time rather than a program that runs for hours."""

_GRID_LIMIT = 2.0 ** 40
"""The adaptive grid as a float is clamped here before it becomes an int
(an infinite box); only its window is iterated (see the module docstring)."""


def _coord_dtype(dtype: str) -> str:
    """The type box coordinates are computed in: the boxes' own, float32 for narrower floats."""
    return "float64" if dtype == "float64" else "float32"


def _check_float(ctx: Infer, t: TensorType, what: str) -> None:
    if not dtypes.is_float(t.dtype):
        ctx.fail(f"{what} must be floating-point, got {t.dtype}")


def _check_boxes(ctx: Infer, x: TensorType, rois: TensorType, cols: int) -> None:
    if x.ndim != 4:
        ctx.fail(f"x must have rank 4 (N, C, H, W), got rank {x.ndim}")
    if rois.ndim != 2:
        ctx.fail(f"rois must have rank 2 (num_rois, {cols}), got rank {rois.ndim}")
    ctx.same(rois.sym_shape[1], cols, f"rois' dim 1 (the box columns, {cols})")
    _check_float(ctx, x, "x")
    _check_float(ctx, rois, "rois")


def _positive(ctx: Infer, name: str, v: int) -> None:
    if v < 1:
        ctx.fail(f"{name} must be positive, got {v}")


# -- roi_align -----------------------------------------------------------------------------------------------------

ROI_ALIGN_MODES = ("avg", "max")


def _np_axis_samples(start: Any, bin_size: Any, grid: int, lo: int, ext: int, p: int, extent: int,
                     ct: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid, low, high, weight of low, weight of high) of samples lo .. lo + ext - 1 of bin p on one axis."""
    i = np.arange(lo, lo + ext)
    with np.errstate(invalid="ignore", over="ignore"):
        y = (start + ct(p) * bin_size) + ((i.astype(ct) + ct(0.5)) * bin_size) / ct(grid)
        valid = (y >= ct(-1.0)) & (y <= ct(extent)) & (extent > 0)
        y = np.where(valid, np.maximum(y, ct(0.0)), ct(0.0)).astype(ct)
    low = np.floor(y).astype(np.int64)
    top = low >= extent - 1
    low = np.where(top, max(extent - 1, 0), low)
    high = np.where(top, low, low + 1)
    y = np.where(top, low.astype(ct), y).astype(ct)
    ly = (y - low.astype(ct)).astype(ct)
    return valid, low, high, (ct(1.0) - ly).astype(ct), ly


def _np_grid(ct: Any, roi_len: Any, pooled: int, sampling_ratio: int) -> int:
    if sampling_ratio > 0:
        return sampling_ratio
    with np.errstate(invalid="ignore", over="ignore"):
        g = np.ceil(ct(roi_len) / ct(pooled))
    return int(min(g, _GRID_LIMIT)) if g > 0 else 0


def _np_window(ct: Any, start: Any, bin_size: Any, grid: int, p: int, extent: int,
               adaptive: bool) -> tuple[int, int]:
    if not adaptive:
        return 0, grid
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.ceil(float(ct(-1.0) - (start + ct(p) * bin_size)) * grid / float(bin_size) - 0.5) - 1.0
    lo = int(min(t, grid)) if t > 0 else 0
    return lo, max(min(grid - lo, 2 * extent + 5), 0)


@register_op
class RoiAlign(OpSpec):
    """relax.roi_align: x [N, C, H, W], rois [R, 4] (x1, y1, x2, y2),
    batch_indices [R] -> [R, C, output_height, output_width] (ONNX
    RoiAlign): per bin the average (mode avg) or max of its bilinear
    samples; `half_pixel` shifts coordinates by -0.5 (ONNX's half_pixel
    transformation, else output_half_pixel, which also makes boxes at
    least 1 x 1)."""

    name = "roi_align"
    inputs = ("x", "rois", "batch_indices")
    params = {"output_height": Param("int", 1), "output_width": Param("int", 1), "sampling_ratio": Param("int", 0),
              "spatial_scale": Param("float", 1.0), "mode": Param("str", "avg"), "half_pixel": Param("bool", True)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, rois: TensorType, batch_indices: TensorType, output_height: int,
              output_width: int, sampling_ratio: int, spatial_scale: float, mode: str,
              half_pixel: bool) -> TensorType:
        _check_boxes(ctx, x, rois, 4)
        if batch_indices.ndim != 1 or not dtypes.is_int(batch_indices.dtype):
            ctx.fail(f"batch_indices must be a rank-1 integer tensor, got rank {batch_indices.ndim} "
                     f"{batch_indices.dtype}")
        r = ctx.same(rois.sym_shape[0], batch_indices.sym_shape[0], "num_rois: rois' dim 0 vs batch_indices'")
        _positive(ctx, "output_height", output_height)
        _positive(ctx, "output_width", output_width)
        if not 0 <= sampling_ratio <= MAX_SAMPLING_RATIO:
            ctx.fail(f"sampling_ratio must be in [0, {MAX_SAMPLING_RATIO}] (0: adaptive), got {sampling_ratio}")
        if mode not in ROI_ALIGN_MODES:
            ctx.fail(f"mode {mode!r} is not one of {', '.join(ROI_ALIGN_MODES)}")
        return tensor([r, x.sym_shape[1], output_height, output_width], x.dtype)

    def reference(self, x: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, output_height: int,
                  output_width: int, sampling_ratio: int, spatial_scale: float, mode: str,
                  half_pixel: bool) -> np.ndarray:
        n, c, h, w = x.shape
        ct = np.dtype(_coord_dtype(rois.dtype.name)).type
        bi = np.minimum(batch_indices, np.iinfo(np.int64).max).astype(np.int64) \
            if batch_indices.dtype == np.uint64 else batch_indices.astype(np.int64)
        bad = (bi < 0) | (bi >= n)
        if bad.any():
            raise index_out_of_range(_batch_what(self.name), int(bi[bad][0]), n)
        out = np.zeros((rois.shape[0], c, output_height, output_width), dtype=np.float64)
        off, scale = ct(0.5 if half_pixel else 0.0), ct(spatial_scale)
        adaptive = sampling_ratio == 0
        for r in range(rois.shape[0]):
            with np.errstate(invalid="ignore", over="ignore"):
                x1, y1, x2, y2 = (ct(v) * scale - off for v in rois[r].astype(ct))
                rw, rh = ct(x2 - x1), ct(y2 - y1)
                if not half_pixel:
                    rw, rh = (ct(1.0) if v < 1.0 else v for v in (rw, rh))
                bh, bw = ct(rh / ct(output_height)), ct(rw / ct(output_width))
            gh, gw = _np_grid(ct, rh, output_height, sampling_ratio), _np_grid(ct, rw, output_width, sampling_ratio)
            img = x[bi[r]].astype(ct)
            for ph in range(output_height):
                lo_h, ext_h = _np_window(ct, y1, bh, gh, ph, h, adaptive)
                vy, yl, yh, hy, ly = _np_axis_samples(y1, bh, gh, lo_h, ext_h, ph, h, ct)
                for pw in range(output_width):
                    lo_w, ext_w = _np_window(ct, x1, bw, gw, pw, w, adaptive)
                    vx, xl, xh, hx, lx = _np_axis_samples(x1, bw, gw, lo_w, ext_w, pw, w, ct)
                    out[r, :, ph, pw] = _np_bin(img, mode, gh * gw, ext_h * ext_w,
                                                (vy, yl, yh, hy, ly), (vx, xl, xh, hx, lx), ct)
        return out.astype(x.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], output_height: int, output_width: int,
                 sampling_ratio: int, spatial_scale: float, mode: str, half_pixel: bool) -> None:
        from xdsl.dialects.builtin import IndexType

        (x, rois, bidx), (out,) = inputs, outputs
        ct = _coord_dtype(rois.dtype)
        ctt = dtypes.to_xdsl(ct)
        h, w = x.shape[2], x.shape[3]
        what = f"{_batch_what(self.name)} in tensor program @{pb.func.sym_name.data}"
        n_ext = pb.index(x.shape[0])
        pb.for_each(bidx.shape, lambda i: pb.emit(CheckIndexOp(pb.cast(bidx[i], IndexType()).value, n_ext.value,
                                                               what, nonnegative=True)))
        adaptive = sampling_ratio == 0
        pooled = {"h": output_height, "w": output_width}

        def fconst(v: float) -> Any:
            return pb.const(v, ctt)

        def grid_of(length: Any, axis: str) -> tuple[Any, Any]:
            """(grid as an index, grid as float64)."""
            if not adaptive:
                return pb.index(sampling_ratio), pb.const(float(sampling_ratio), dtypes.to_xdsl("float64"))
            g = pb.math("ceil", length / fconst(float(pooled[axis])))
            g = pb.cast(pb.select(g > 0.0, pb.min(g, fconst(_GRID_LIMIT)), fconst(0.0)), "float64")
            return pb.cast(pb.cast(g, "int64"), IndexType()), g

        def window(start: Any, bin_size: Any, g: Any, g64: Any, p: Any, extent: Any) -> tuple[Any, Any]:
            if not adaptive:
                return pb.index(0), g
            base = pb.cast(fconst(-1.0) - (start + pb.cast(pb.cast(p, "int64"), ctt) * bin_size), "float64")
            t = pb.math("ceil", base * g64 / pb.cast(bin_size, "float64") - 0.5) - 1.0
            lo = pb.cast(pb.cast(pb.select(t > 0.0, pb.min(t, g64), pb.const(0.0, g64.type)), "int64"), IndexType())
            return lo, pb.max(pb.min(g - lo, pb.index(extent) * 2 + 5), pb.index(0))

        def axis_sample(start: Any, bin_size: Any, g: Any, i: Any, p: Any, extent: Any) -> tuple[Any, ...]:
            ext_f = pb.cast(pb.cast(pb.index(extent), "int64"), ctt)
            y = (start + pb.cast(pb.cast(p, "int64"), ctt) * bin_size) + \
                ((pb.cast(pb.cast(i, "int64"), ctt) + 0.5) * bin_size) / pb.cast(pb.cast(g, "int64"), ctt)
            valid = (y >= -1.0) & (y <= ext_f) & (pb.index(extent) > 0)
            y = pb.select(valid, pb.select(y < 0.0, fconst(0.0), y), fconst(0.0))
            low = pb.cast(pb.cast(y, "int64"), IndexType())
            last = pb.max(pb.index(extent) - 1, pb.index(0))
            top = low >= last
            low = pb.select(top, last, low)
            high = pb.select(top, low, low + 1)
            y = pb.select(top, pb.cast(pb.cast(low, "int64"), ctt), y)
            frac = y - pb.cast(pb.cast(low, "int64"), ctt)
            return valid, low, high, 1.0 - frac, frac

        def body(r: Any, c: Any, ph: Any, pw: Any) -> Any:
            b = pb.cast(bidx[r], IndexType())
            off, scale = fconst(0.5 if half_pixel else 0.0), fconst(spatial_scale)
            x1, y1, x2, y2 = (pb.cast(rois[r, k], ctt) * scale - off for k in range(4))
            rw, rh = x2 - x1, y2 - y1
            if not half_pixel:
                rw, rh = (pb.select(v < 1.0, fconst(1.0), v) for v in (rw, rh))
            bh, bw = rh / fconst(float(output_height)), rw / fconst(float(output_width))
            gh, gh64 = grid_of(rh, "h")
            gw, gw64 = grid_of(rw, "w")
            lo_h, ext_h = window(y1, bh, gh, gh64, ph, h)
            lo_w, ext_w = window(x1, bw, gw, gw64, pw, w)
            count = gh64 * gw64

            def sample(iy: Any, ix: Any) -> Any:
                vy, yl, yh, hy, ly = axis_sample(y1, bh, gh, lo_h + iy, ph, h)
                vx, xl, xh, hx, lx = axis_sample(x1, bw, gw, lo_w + ix, pw, w)
                ok = vy & vx

                def read() -> Any:
                    terms = [pb.cast(x[b, c, yy, xx], ctt) * (wy * wx)
                             for yy, wy in ((yl, hy), (yh, ly)) for xx, wx in ((xl, hx), (xh, lx))]
                    if mode == "avg":
                        return terms[0] + terms[1] + terms[2] + terms[3]
                    return _max_first(pb, _max_first(pb, _max_first(pb, terms[0], terms[1]), terms[2]), terms[3])

                return pb.if_then_else(ok, read, fconst(0.0))

            if mode == "avg":
                acc = pb.fold([ext_h, ext_w], fconst(0.0), lambda a, iy, ix: a + sample(iy, ix))
                res = pb.cast(pb.cast(acc, "float64") / pb.max(count, 1.0), out.dtype)
                return res
            acc = pb.fold([ext_h, ext_w], fconst(-np.inf), lambda a, iy, ix: _max_first(pb, a, sample(iy, ix)))
            covered = pb.cast(pb.cast(ext_h * ext_w, "int64"), "float64")
            acc = pb.select(covered < count, _max_first(pb, acc, fconst(0.0)), acc)
            return pb.cast(pb.select(count > 0.0, acc, fconst(0.0)), out.dtype)

        pb.compute(out, body)


def _max_first(pb: Any, a: Any, b: Any) -> Any:
    """std::max(a, b) as onnxruntime uses it: a unless a < b (NaN in b is dropped, in a kept)."""
    return pb.select(a < b, b, a)


def _np_max_first(a: Any, b: Any) -> Any:
    return np.where(a < b, b, a)


def _np_bin(img: np.ndarray, mode: str, count: int, covered: int, ys: tuple[np.ndarray, ...],
            xs: tuple[np.ndarray, ...], ct: Any) -> np.ndarray:
    """One output bin for every channel of img [C, H, W] from the per-axis samples."""
    vy, yl, yh, hy, ly = ys
    vx, xl, xh, hx, lx = xs
    c = img.shape[0]
    if mode == "avg":
        acc = np.zeros(c, dtype=ct)
    else:
        acc = np.full(c, -np.inf, dtype=ct)
    with np.errstate(invalid="ignore", over="ignore"):
        for a in range(len(vy)):
            for b in range(len(vx)):
                if not (vy[a] and vx[b]):
                    val = np.zeros(c, dtype=ct)
                else:
                    terms = [img[:, yy, xx] * ct(wy * wx) for yy, wy in ((yl[a], hy[a]), (yh[a], ly[a]))
                             for xx, wx in ((xl[b], hx[b]), (xh[b], lx[b]))]
                    if mode == "avg":
                        val = ((terms[0] + terms[1]) + terms[2]) + terms[3]
                    else:
                        val = _np_max_first(_np_max_first(_np_max_first(terms[0], terms[1]), terms[2]), terms[3])
                acc = (acc + val).astype(ct) if mode == "avg" else _np_max_first(acc, val)
    if mode == "avg":
        return acc.astype(np.float64) / max(float(count), 1.0)
    if covered < count:
        acc = _np_max_first(acc, np.zeros(c, dtype=ct))
    return acc if count > 0 else np.zeros(c)


def _batch_what(op: str) -> str:
    return f"relax.{op} batch index"


# -- max_roi_pool --------------------------------------------------------------------------------------------------

_COORD_LIMIT = 2.0 ** 40
"""Box corners (after scaling) are clamped here as floats before they become ints."""


def _np_round_corner(v: Any, ct: Any) -> int:
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.copysign(np.floor(np.abs(v) + ct(0.5)), v)
    if not np.isfinite(r) and not np.isinf(r):
        return 0
    return int(np.clip(r, -_COORD_LIMIT, _COORD_LIMIT))


def _np_batch_of(v: Any) -> int:
    if np.isnan(v):
        return -1
    return int(np.trunc(np.clip(v, -2.0 ** 62, 2.0 ** 62)))


@register_op
class MaxRoiPool(OpSpec):
    """relax.max_roi_pool: x [N, C, H, W], rois [R, 5] (batch index,
    x1, y1, x2, y2) -> [R, C, pooled_h, pooled_w] (ONNX MaxRoiPool): each
    bin the max over its window of the box (corners rounded to pixels)."""

    name = "max_roi_pool"
    inputs = ("x", "rois")
    params = {"pooled_shape": Param("ints", (1, 1)), "spatial_scale": Param("float", 1.0)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, rois: TensorType, pooled_shape: Any,
              spatial_scale: float) -> TensorType:
        _check_boxes(ctx, x, rois, 5)
        if len(pooled_shape) != 2:
            ctx.fail(f"pooled_shape must have 2 entries (height, width), got {list(pooled_shape)}")
        _positive(ctx, "pooled_shape[0]", pooled_shape[0])
        _positive(ctx, "pooled_shape[1]", pooled_shape[1])
        return tensor([rois.sym_shape[0], x.sym_shape[1], *pooled_shape], x.dtype)

    def reference(self, x: np.ndarray, rois: np.ndarray, pooled_shape: Any, spatial_scale: float) -> np.ndarray:
        n, c, h, w = x.shape
        ct = np.dtype(_coord_dtype(rois.dtype.name)).type
        ph_n, pw_n = pooled_shape
        batches = [_np_batch_of(ct(v)) for v in rois[:, 0]]
        for b in batches:
            if not 0 <= b < n:
                raise index_out_of_range(_batch_what(self.name), b, n)
        out = np.zeros((rois.shape[0], c, ph_n, pw_n), dtype=x.dtype)
        scale = ct(spatial_scale)
        for r in range(rois.shape[0]):
            with np.errstate(invalid="ignore", over="ignore"):
                sw, sh, ew, eh = (_np_round_corner(ct(ct(v) * scale), ct) for v in rois[r, 1:].astype(ct))
            rh, rw = max(eh - sh + 1, 1), max(ew - sw + 1, 1)
            bh, bw = np.float32(rh) / np.float32(ph_n), np.float32(rw) / np.float32(pw_n)
            for ph in range(ph_n):
                hs = min(max(int(np.floor(np.float32(ph) * bh)) + sh, 0), h)
                he = min(max(int(np.ceil(np.float32(ph + 1) * bh)) + sh, 0), h)
                for pw in range(pw_n):
                    ws = min(max(int(np.floor(np.float32(pw) * bw)) + sw, 0), w)
                    we = min(max(int(np.ceil(np.float32(pw + 1) * bw)) + sw, 0), w)
                    if he > hs and we > ws:
                        out[r, :, ph, pw] = x[batches[r], :, hs:he, ws:we].max(axis=(1, 2))
        return out

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], pooled_shape: Any,
                 spatial_scale: float) -> None:
        from xdsl.dialects.builtin import IndexType

        (x, rois), (out,) = inputs, outputs
        ct = dtypes.to_xdsl(_coord_dtype(rois.dtype))
        f32 = dtypes.to_xdsl("float32")
        h, w = x.shape[2], x.shape[3]
        ph_n, pw_n = pooled_shape
        what = f"{_batch_what(self.name)} (rois[:, 0]) in tensor program @{pb.func.sym_name.data}"
        n_ext = pb.index(x.shape[0])

        def batch_of(r: Any) -> Any:
            v = pb.cast(rois[r, 0], ct)
            lim = pb.const(2.0 ** 62, ct)
            v = pb.select(v.eq(v), pb.max(pb.min(v, lim), -lim), pb.const(-1.0, ct))
            return pb.cast(pb.cast(v, "int64"), IndexType())          # the conversion truncates

        pb.for_each([rois.shape[0]], lambda r: pb.emit(CheckIndexOp(batch_of(r).value, n_ext.value, what,
                                                                    nonnegative=True)))

        def corner(v: Any) -> Any:
            lim = pb.const(_COORD_LIMIT, ct)
            a = pb.math("floor", pb.math("absf", v) + 0.5)
            r = pb.select(v < 0.0, -a, a)
            r = pb.select(r.eq(r), pb.max(pb.min(r, lim), -lim), pb.const(0.0, ct))
            return pb.cast(pb.cast(r, "int64"), IndexType())

        def body(r: Any, c: Any, ph: Any, pw: Any) -> Any:
            b = batch_of(r)
            scale = pb.const(spatial_scale, ct)
            sw, sh, ew, eh = (corner(pb.cast(rois[r, k], ct) * scale) for k in range(1, 5))
            rh = pb.max(eh - sh + 1, pb.index(1))
            rw = pb.max(ew - sw + 1, pb.index(1))

            def edges(p: Any, length: Any, pooled: int, start: Any, extent: Any) -> tuple[Any, Any]:
                bin_size = pb.cast(pb.cast(length, "int64"), f32) / pb.const(float(pooled), f32)
                pf = pb.cast(pb.cast(p, "int64"), f32)
                lo = pb.cast(pb.cast(pb.math("floor", pf * bin_size), "int64"), IndexType()) + start
                hi = pb.cast(pb.cast(pb.math("ceil", (pf + 1.0) * bin_size), "int64"), IndexType()) + start
                e = pb.index(extent)
                return pb.min(pb.max(lo, pb.index(0)), e), pb.min(pb.max(hi, pb.index(0)), e)

            hs, he = edges(ph, rh, ph_n, sh, h)
            ws, we = edges(pw, rw, pw_n, sw, w)
            empty = (he <= hs) | (we <= ws)
            ext_h, ext_w = pb.max(he - hs, pb.index(0)), pb.max(we - ws, pb.index(0))
            init = pb.const(-np.inf, x.type.element_type) if dtypes.is_float(x.dtype) else None
            acc = pb.fold([ext_h, ext_w], init, lambda a, i, j: pb.max(a, x[b, c, hs + i, ws + j]))
            return pb.select(empty, pb.lift(0.0, acc.type), acc)

        pb.compute(out, body)

