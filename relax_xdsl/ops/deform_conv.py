"""Deformable convolution: deform_conv2d (ONNX DeformConv, torchvision's
deform_conv2d).

Each kernel tap of each output pixel reads the input at its regular
position plus a learned (dy, dx) from `offset`, bilinearly interpolated,
scaled by `mask` (modulated deformable convolution, v2), then multiplied
by the weight as in a grouped convolution. Input channels are split into
`offset_groups` that each have their own offsets and mask.

The sampling is ONNX's (GridSample with align_corners and zero padding,
the same as torchvision's bilinear_interpolate): a position outside
(-1, H) x (-1, W) reads 0, and inside it each of the four neighbours that
falls outside the image contributes 0. Positions come from data, so they
are compared as floats before any float -> int conversion: NaN and
infinite offsets read nothing (0) and no read is out of range whatever
the offsets hold. Narrow floats compute in float32, float64 in float64.

mask and bias are operands; the ONNX converter passes a [1, 1, 1, 1] mask
of ones and a [1] bias of zero when the node has none, so each of mask's
dims (and bias's) may be 1 and is then broadcast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.nn import _padding, _pair, _window_dim, _window_extent
from relax_xdsl.ops.registry import OPAQUE, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon, dim_to_str, mod


def _compute_dtype(dtype: str) -> str:
    return "float64" if dtype == "float64" else "float32"


def _broadcast_dim(ctx: Infer, got: Any, want: Any, what: str) -> Any:
    """A dim that is `want` or the integer 1 (broadcast)."""
    got = canon(got)
    if got.is_Integer and int(got) == 1:
        return got
    return ctx.same(got, want, what)


@register_op
class DeformConv2d(OpSpec):
    """relax.deform_conv2d: x [N, C, H, W], weight [OC, C / groups, kh, kw],
    offset [N, offset_groups * kh * kw * 2, OH, OW] ((dy, dx) per tap),
    bias [OC] (or [1]), mask [N, offset_groups * kh * kw, OH, OW] (any dim
    may be 1) -> [N, OC, OH, OW]: a grouped convolution whose taps read x
    bilinearly at offset positions, zero outside the image."""

    name = "deform_conv2d"
    inputs = ("x", "weight", "offset", "bias", "mask")
    params = {"strides": Param("ints", (1, 1)), "padding": Param("ints", (0, 0)),
              "dilation": Param("ints", (1, 1)), "groups": Param("int", 1), "offset_groups": Param("int", 1)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, weight: TensorType, offset: TensorType, bias: TensorType,
              mask: TensorType, strides: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
              groups: int, offset_groups: int) -> TensorType:
        for t, what, layout in ((x, "x", "N, C, H, W"), (weight, "weight", "OC, C / groups, kh, kw"),
                                (offset, "offset", "N, offset_groups * kh * kw * 2, OH, OW"),
                                (mask, "mask", "N, offset_groups * kh * kw, OH, OW")):
            if t.ndim != 4:
                ctx.fail(f"{what} must have rank 4 ({layout}), got rank {t.ndim}")
        if bias.ndim != 1:
            ctx.fail(f"bias must have rank 1 (OC), got rank {bias.ndim}")
        if not dtypes.is_float(x.dtype):
            ctx.fail(f"x must be floating-point, got {x.dtype}")
        for t, what in ((weight, "weight"), (offset, "offset"), (bias, "bias"), (mask, "mask")):
            if t.dtype != x.dtype:
                ctx.fail(f"{what} dtype {t.dtype} differs from x's {x.dtype}")
        sh, sw = _pair(ctx, strides, "strides")
        dh, dw = _pair(ctx, dilation, "dilation")
        pt, pl, pb, pr = _padding(ctx, padding)
        if groups < 1:
            ctx.fail(f"groups must be >= 1, got {groups}")
        if offset_groups < 1:
            ctx.fail(f"offset_groups must be >= 1, got {offset_groups}")
        n, c, h, w = x.sym_shape
        o, ci, kh, kw = weight.sym_shape
        ctx.same(c, ci * groups, f"x's channels (dim 1) vs weight's in-channels (dim 1) * groups {groups}")
        for dim, k, what in ((o, groups, "weight out-channels (dim 0)"), (c, offset_groups, "x's channels (dim 1)")):
            if dim.is_Integer and int(dim) % k:
                ctx.fail(f"{what} {dim} is not divisible by {k} ({'groups' if dim is o else 'offset_groups'})")
            if not dim.is_Integer:
                ctx.same(mod(dim, k), 0, f"{what} {dim_to_str(dim)} mod {k}")
        oh = _window_dim(ctx, h, pt, pb, kh, sh, dh, False, "output height")
        ow = _window_dim(ctx, w, pl, pr, kw, sw, dw, False, "output width")
        taps = canon(offset_groups * kh * kw)
        ctx.same(offset.sym_shape[0], n, "offset's dim 0 (the batch)")
        ctx.same(offset.sym_shape[1], 2 * taps, "offset's dim 1 (offset_groups * kh * kw * 2)")
        ctx.same(offset.sym_shape[2], oh, "offset's dim 2 (the output height)")
        ctx.same(offset.sym_shape[3], ow, "offset's dim 3 (the output width)")
        _broadcast_dim(ctx, bias.sym_shape[0], o, "bias's dim 0 (the out-channels)")
        for k, (want, what) in enumerate(((n, "the batch"), (taps, "offset_groups * kh * kw"),
                                          (oh, "the output height"), (ow, "the output width"))):
            _broadcast_dim(ctx, mask.sym_shape[k], want, f"mask's dim {k} ({what}, or 1)")
        return tensor((n, o, oh, ow), x.dtype)

    def reference(self, x: np.ndarray, weight: np.ndarray, offset: np.ndarray, bias: np.ndarray, mask: np.ndarray,
                  strides: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...], groups: int,
                  offset_groups: int) -> np.ndarray:
        ctx = Infer(self.name)
        (sh, sw), (dh, dw) = _pair(ctx, strides, "strides"), _pair(ctx, dilation, "dilation")
        pt, pl, pb, pr = _padding(ctx, padding)
        ct = np.dtype(_compute_dtype(x.dtype.name)).type
        n, c, h, w = x.shape
        o, ci, kh, kw = weight.shape
        oh = _window_extent(h, pt, pb, kh, sh, dh, False, self.name, "output height", empty_ok=True)
        ow = _window_extent(w, pl, pr, kw, sw, dw, False, self.name, "output width", empty_ok=True)
        og, cog = offset_groups, c // offset_groups
        off = offset.astype(ct).reshape(n, og, kh, kw, 2, oh, ow)
        msk = np.broadcast_to(mask.astype(ct), (n, og * kh * kw, oh, ow)).reshape(n, og, kh, kw, oh, ow)
        xs = x.astype(ct)
        cols = np.zeros((n, c, kh, kw, oh, ow), dtype=ct)
        base_y = (np.arange(oh) * sh - pt)[:, None].astype(ct)
        base_x = (np.arange(ow) * sw - pl)[None, :].astype(ct)
        for b in range(n):
            for g in range(og):
                img = xs[b, g * cog:(g + 1) * cog]
                for ky in range(kh):
                    for kx in range(kw):
                        y = (base_y + ct(ky * dh)) + off[b, g, ky, kx, 0]
                        xx = (base_x + ct(kx * dw)) + off[b, g, ky, kx, 1]
                        val = _np_bilinear(img, y.astype(ct), xx.astype(ct), ct)
                        cols[b, g * cog:(g + 1) * cog, ky, kx] = val * msk[b, g, ky, kx]
        wt = weight.astype(ct).reshape(groups, o // groups, ci, kh, kw)
        cols = cols.reshape(n, groups, ci, kh, kw, oh, ow)
        out = np.einsum("gocyx,ngcyxij->ngoij", wt, cols).reshape(n, o, oh, ow)
        out = out + np.broadcast_to(bias.astype(ct), (o,))[None, :, None, None]
        return out.astype(x.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], strides: tuple[int, ...],
                 padding: tuple[int, ...], dilation: tuple[int, ...], groups: int, offset_groups: int) -> None:
        from xdsl.dialects.builtin import IndexType

        (x, weight, offset, bias, mask), (out,) = inputs, outputs
        ctx = Infer(self.name)
        (sh, sw), (dh, dw) = _pair(ctx, strides, "strides"), _pair(ctx, dilation, "dilation")
        pt, pl, _, _ = _padding(ctx, padding)
        ct = _compute_dtype(x.dtype)
        ctt = dtypes.to_xdsl(ct)
        h, w = pb.index(x.shape[2]), pb.index(x.shape[3])
        c = pb.index(x.shape[1])
        _, ci, kh, kw = weight.shape
        ocpg = pb.index(weight.shape[0]) // groups
        cog = c // offset_groups
        kh_i, kw_i = pb.index(kh), pb.index(kw)

        def as_f(i: Any) -> Any:
            return pb.cast(pb.cast(i, "int64"), ctt)

        def bcast(buf: Any, idx: list[Any]) -> list[Any]:
            """Index 0 on buf's dims that are the integer 1 (broadcast)."""
            return [pb.index(0) if sympy.Integer(1) == canon(d) else i for d, i in zip(buf.shape, idx)]

        def bilinear(b: Any, ic: Any, y: Any, xx: Any) -> Any:
            inside = (y > -1.0) & (y < as_f(h)) & (xx > -1.0) & (xx < as_f(w))
            inside = inside & (h > 0) & (w > 0)

            def read() -> Any:
                y0f, x0f = pb.math("floor", y), pb.math("floor", xx)
                ly, lx = y - y0f, xx - x0f
                hy, hx = 1.0 - ly, 1.0 - lx
                y0, x0 = pb.cast(pb.cast(y0f, "int64"), IndexType()), pb.cast(pb.cast(x0f, "int64"), IndexType())
                y1, x1 = y0 + 1, x0 + 1

                def corner(yy: Any, xc: Any) -> Any:
                    ok = (yy >= 0) & (yy < h) & (xc >= 0) & (xc < w)
                    cy = pb.min(pb.max(yy, pb.index(0)), h - 1)
                    cx = pb.min(pb.max(xc, pb.index(0)), w - 1)
                    return pb.select(ok, pb.cast(x[b, ic, cy, cx], ctt), pb.const(0.0, ctt))

                return (((hy * hx) * corner(y0, x0) + (hy * lx) * corner(y0, x1))
                        + (ly * hx) * corner(y1, x0)) + (ly * lx) * corner(y1, x1)

            return pb.if_then_else(inside, read, pb.const(0.0, ctt))

        def body(b: Any, oc: Any, i: Any, j: Any) -> Any:
            g = oc // ocpg
            base_y = as_f(i * sh) - float(pt)
            base_x = as_f(j * sw) - float(pl)

            def step(acc: Any, cc: Any, ky: Any, kx: Any) -> Any:
                ic = g * pb.index(ci) + cc
                tap = ((ic // cog) * kh_i + ky) * kw_i + kx
                oy = pb.cast(offset[b, tap * 2, i, j], ctt)
                ox = pb.cast(offset[b, tap * 2 + 1, i, j], ctt)
                y = (base_y + as_f(ky * dh)) + oy
                xx = (base_x + as_f(kx * dw)) + ox
                m = pb.cast(mask[tuple(bcast(mask, [b, tap, i, j]))], ctt)
                return acc + (bilinear(b, ic, y, xx) * m) * pb.cast(weight[oc, cc, ky, kx], ctt)

            acc = pb.fold([ci, kh, kw], pb.const(0.0, ctt), step)
            acc = acc + pb.cast(bias[tuple(bcast(bias, [oc]))], ctt)
            return pb.cast(acc, out.dtype)

        pb.compute(out, body)


def _np_bilinear(img: np.ndarray, y: np.ndarray, x: np.ndarray, ct: Any) -> np.ndarray:
    """img [C, H, W] sampled at (y, x) [OH, OW] -> [C, OH, OW]; zero outside (-1, H) x (-1, W) and for
    neighbours outside the image."""
    _, h, w = img.shape
    with np.errstate(invalid="ignore"):
        inside = (y > -1) & (y < h) & (x > -1) & (x < w) & (h > 0) & (w > 0)
    y = np.where(inside, y, ct(0.0)).astype(ct)
    x = np.where(inside, x, ct(0.0)).astype(ct)
    y0f, x0f = np.floor(y), np.floor(x)
    ly, lx = (y - y0f).astype(ct), (x - x0f).astype(ct)
    hy, hx = (ct(1.0) - ly).astype(ct), (ct(1.0) - lx).astype(ct)
    y0, x0 = y0f.astype(np.int64), x0f.astype(np.int64)

    def corner(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        ok = inside & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        if h == 0 or w == 0:
            return np.zeros((img.shape[0], *yy.shape), dtype=ct)
        v = img[:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        return np.where(ok, v, ct(0.0)).astype(ct)

    val = ((hy * hx) * corner(y0, x0) + (hy * lx) * corner(y0, x0 + 1)) + (ly * hx) * corner(y0 + 1, x0)
    val = val + (ly * lx) * corner(y0 + 1, x0 + 1)
    return np.where(inside, val, ct(0.0)).astype(ct)
