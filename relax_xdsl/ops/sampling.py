"""Sampling ops: grid_sample and col2im (reads at computed positions), random
numbers from a counter-based generator, and det.

grid_sample follows ONNX GridSample (opset 16 / 20; any number of spatial
axes): each output point reads the input at a coordinate from `grid`,
nearest / linear / cubic, with zeros / border / reflection padding. It is
written as resize is: coordinates and tap weights in float64, every tap
index clamped into the input (as a float, before any float -> int
conversion) so no read is out of range whatever the grid holds (NaN and
inf included); injective, so fusion computes it inline.

col2im (ONNX Col2Im) sums the columns of an im2col matrix back into an
image. It is written as a gather per output pixel (the kernel taps that
land on it, over a reduction of the block's static extent), so no two
threads write one pixel.

random_uniform / random_normal are deterministic functions of their `seed`
and the element's row-major index: splitmix64 (Steele et al., "Fast
splittable pseudorandom number generators", 2014) of key + (i + 1) * golden
gamma, the key itself splitmix64 of the seed's float64 bits. The top 53
bits give a uniform double in [0, 1); a normal is Box-Muller on the
uniforms of counters 2i and 2i + 1, with cos(2 pi u) as a polynomial so no
target depends on its libm for it. The same integer arithmetic (wrapping
multiplies, xor, right shifts emulated with masks) runs in the numpy
reference and in the tensor program, so every target draws the same
numbers for a seed (float64 values may differ in the last bit where a C
compiler contracts a multiply-add; float32 results are rounded from them).
Values differ from onnxruntime's, whose generator is its own.

det is the determinant of each [..., M, M] matrix by LU with partial
pivoting, in float64 on a scratch copy: serial per matrix, matrices in
parallel. A zero pivot gives 0 (a singular matrix).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import StoreOp
from relax_xdsl.ops.registry import INJECTIVE, OPAQUE, REQUIRED, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon, dim_to_str

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


# -- shared helpers ------------------------------------------------------------------------------------------------


def _f64() -> Any:
    return dtypes.to_xdsl("float64")


def _i64() -> Any:
    return dtypes.to_xdsl("int64")


def _fdim(pb: Any, d: Any) -> Any:
    d = canon(d)
    return pb.const(float(int(d)), _f64()) if d.is_Integer else pb.cast(pb.index(d), _f64())


def _store(pb: Any, buf: Any, idx: Sequence[Any], value: Any) -> None:
    pb.emit(StoreOp(pb.lift(value, buf.type.element_type).value, buf.value, [pb.index(i).value for i in idx]))


def _loops(pb: Any, extents: Sequence[Any], body: Callable[..., None], parallel_first: bool = False) -> None:
    """A tir.for nest over [0, extent) each (PrimFuncBuilder.for_each); the
    outermost loop parallel if asked."""
    pb.for_each(extents, body, parallel_first)


def _float_dtype(ctx: Infer, dtype: str, what: str) -> str:
    name = ctx.dtype(dtype, what)
    if not dtypes.is_float(name):
        ctx.fail(f"{what} must be a floating-point type, got {name}")
    return name


# -- the counter-based generator -----------------------------------------------------------------------------------


def _signed(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def _np_mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 (wrapping)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def seed_key(seed: float) -> int:
    """The generator's key for a seed: splitmix64 of its float64 bits (so
    seeds 1.0 and 2.0 give unrelated streams)."""
    bits = struct.unpack("<Q", struct.pack("<d", float(seed)))[0]
    z = np.array([(bits + GOLDEN_GAMMA) & MASK64], dtype=np.uint64)
    return int(_np_mix(z)[0])


def np_uniform53(seed: float, counters: np.ndarray) -> np.ndarray:
    """Uniform float64 in [0, 1) for each counter (int64 array)."""
    key = np.uint64(seed_key(seed))
    with np.errstate(over="ignore"):
        z = key + (counters.astype(np.uint64) + np.uint64(1)) * np.uint64(GOLDEN_GAMMA)
        bits = _np_mix(z) >> np.uint64(11)
    return bits.astype(np.int64).astype(np.float64) * 2.0 ** -53


def _ir_lshr(pb: Any, z: Any, k: int) -> Any:
    """A logical right shift of an int64 by 0 < k < 64: the arithmetic one
    with the copied sign bits masked off."""
    shifted = pb.emit(arith.ShRSIOp(z.value, pb.const(k, _i64()).value))
    return shifted & pb.const((1 << (64 - k)) - 1, _i64())


def _ir_xor(pb: Any, a: Any, b: Any) -> Any:
    return pb.emit(arith.XOrIOp(a.value, b.value))


def ir_uniform53(pb: Any, seed: float, counter: Any) -> Any:
    """The tensor-program form of np_uniform53 for one int64 counter."""
    z = pb.const(_signed(seed_key(seed)), _i64()) + (counter + 1) * pb.const(_signed(GOLDEN_GAMMA), _i64())
    z = _ir_xor(pb, z, _ir_lshr(pb, z, 30)) * pb.const(_signed(_MIX1), _i64())
    z = _ir_xor(pb, z, _ir_lshr(pb, z, 27)) * pb.const(_signed(_MIX2), _i64())
    z = _ir_xor(pb, z, _ir_lshr(pb, z, 31))
    return pb.cast(_ir_lshr(pb, z, 11), _f64()) * 2.0 ** -53


_COS_TAYLOR = [(-1) ** k / math.factorial(2 * k) for k in range(11)]


def cos_2pi(u: Any, floor: Callable[[Any], Any], absf: Callable[[Any], Any], select: Callable[..., Any]) -> Any:
    """cos(2 pi u) for u in [0, 1): folded to [0, pi/2] and a Taylor
    polynomial to x^20 (error below 1e-14); written once for numpy and IR."""
    t = absf(u - floor(u + 0.5))          # |distance to the nearest integer|, in [0, 0.5]
    flip = t > 0.25
    b = select(flip, 0.5 - t, t)
    x = b * (2 * math.pi)
    x2 = x * x
    c = x2 * _COS_TAYLOR[-1] + _COS_TAYLOR[-2]
    for coef in reversed(_COS_TAYLOR[:-2]):
        c = c * x2 + coef
    return select(flip, -c, c)


def np_normal(seed: float, counters: np.ndarray) -> np.ndarray:
    u1 = np_uniform53(seed, 2 * counters)
    u2 = np_uniform53(seed, 2 * counters + 1)
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    return r * cos_2pi(u2, np.floor, np.abs, np.where)


def _ir_normal(pb: Any, seed: float, counter: Any) -> Any:
    u1 = ir_uniform53(pb, seed, counter * 2)
    u2 = ir_uniform53(pb, seed, counter * 2 + 1)
    r = pb.math("sqrt", pb.math("log", 1.0 - u1) * -2.0)
    return r * cos_2pi(u2, lambda v: pb.math("floor", v), lambda v: pb.math("absf", v), pb.select)


def _linear_index(pb: Any, shape: Sequence[Any], idx: Sequence[Any]) -> Any:
    lin: Any = pb.index(0)
    for d, i in zip(shape, idx):
        lin = lin * pb.index(d) + i
    return pb.cast(lin, _i64())


class _Random(OpSpec):
    inputs = ()
    pattern = INJECTIVE

    def infer(self, ctx: Infer, shape: tuple[sympy.Expr, ...], seed: float, dtype: str, **params: Any) -> TensorType:
        for d in shape:
            if d.is_Integer and d < 0:
                ctx.fail(f"shape dims must be non-negative, got {dim_to_str(d)}")
        return tensor(shape, _float_dtype(ctx, dtype, "dtype"))

    def sample(self, seed: float, counters: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def ir_sample(self, pb: Any, seed: float, counter: Any, **params: Any) -> Any:
        raise NotImplementedError

    def reference(self, shape: tuple[int, ...], seed: float, dtype: str, **params: Any) -> np.ndarray:
        counters = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
        return self.sample(seed, counters, **params).astype(dtypes.dtype_name(dtype))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], shape: Any, seed: float, dtype: str,
                 **params: Any) -> None:
        (out,) = outputs
        pb.compute(out, lambda *idx: pb.cast(self.ir_sample(pb, seed, _linear_index(pb, out.shape, idx), **params),
                                             out.dtype))


@register_op
class RandomUniform(_Random):
    """relax.random_uniform: uniform in [low, high) from the counter-based
    generator (see the module docstring); a graph op always has its seed."""

    name = "random_uniform"
    params = {"shape": Param("dims", REQUIRED), "seed": Param("float", REQUIRED), "dtype": Param("str", "float32"),
              "low": Param("float", 0.0), "high": Param("float", 1.0)}

    def sample(self, seed: float, counters: np.ndarray, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        return np_uniform53(seed, counters) * (high - low) + low

    def ir_sample(self, pb: Any, seed: float, counter: Any, low: float = 0.0, high: float = 1.0) -> Any:
        return ir_uniform53(pb, seed, counter) * (high - low) + low


@register_op
class RandomNormal(_Random):
    """relax.random_normal: normal(mean, scale) by Box-Muller on the
    counter-based generator's uniforms."""

    name = "random_normal"
    params = {"shape": Param("dims", REQUIRED), "seed": Param("float", REQUIRED), "dtype": Param("str", "float32"),
              "mean": Param("float", 0.0), "scale": Param("float", 1.0)}

    def sample(self, seed: float, counters: np.ndarray, mean: float = 0.0, scale: float = 1.0) -> np.ndarray:
        return np_normal(seed, counters) * scale + mean

    def ir_sample(self, pb: Any, seed: float, counter: Any, mean: float = 0.0, scale: float = 1.0) -> Any:
        return _ir_normal(pb, seed, counter) * scale + mean


# -- grid_sample ---------------------------------------------------------------------------------------------------

GRID_MODES = ("nearest", "linear", "cubic")
PADDING_MODES = ("zeros", "border", "reflection")
CUBIC_A = -0.75


def _grid_check(ctx: Infer, x: TensorType, grid: TensorType, mode: str, padding_mode: str) -> int:
    if mode not in GRID_MODES:
        ctx.fail(f"mode {mode!r} is not one of {', '.join(GRID_MODES)}")
    if padding_mode not in PADDING_MODES:
        ctx.fail(f"padding_mode {padding_mode!r} is not one of {', '.join(PADDING_MODES)}")
    r = x.ndim - 2
    if r < 1:
        ctx.fail(f"x must have rank >= 3 (N, C, spatial...), got rank {x.ndim}")
    if grid.ndim != r + 2:
        ctx.fail(f"grid must have rank {r + 2} (N, spatial out..., {r}) for x of rank {x.ndim}, got {grid.ndim}")
    if not dims_known_equal(grid.sym_shape[-1], r):
        ctx.fail(f"grid's last dim must be {r} (one coordinate per spatial axis), got "
                 f"{dim_to_str(grid.sym_shape[-1])}")
    if not dtypes.is_float(grid.dtype):
        ctx.fail(f"grid must be floating-point, got {grid.dtype}")
    if mode != "nearest" and not dtypes.is_float(x.dtype):
        ctx.fail(f"{mode} sampling needs a floating-point x, got {x.dtype}")
    if x.dtype == "bool":
        ctx.fail("x must be numeric, got bool")
    return r


def dims_known_equal(d: Any, v: int) -> bool:
    d = canon(d)
    return bool(d.is_Integer and int(d) == v)


def _np_reflect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    rng = hi - lo
    safe = np.where(rng > 0, rng, 1.0)
    below, above = x < lo, x > hi
    dx = np.where(below, lo - x, x - hi)
    n = np.floor(dx / safe)
    r = dx - n * safe
    odd = (n - 2.0 * np.floor(n * 0.5)) != 0.0
    low_side = np.where(below, ~odd, odd)         # reflected value measured from lo
    out = np.where(low_side, lo + r, hi - r)
    out = np.where(below | above, out, x)
    return np.where(rng > 0, out, lo)


def _ir_reflect(pb: Any, x: Any, lo: Any, hi: Any) -> Any:
    rng = hi - lo
    pos = rng > 0.0
    safe = pb.select(pos, rng, 1.0)
    below, above = x < lo, x > hi
    dx = pb.select(below, lo - x, x - hi)
    n = pb.math("floor", dx / safe)
    r = dx - n * safe
    odd = (n - pb.math("floor", n * 0.5) * 2.0).ne(0.0)
    low_side = pb.select(below, odd.eq(pb.lift(False, odd.type)), odd)
    out = pb.select(low_side, lo + r, hi - r)
    out = pb.select(below | above, out, x)
    return pb.select(pos, out, lo)


def _cubic_weights(t: Any) -> list[Any]:
    """Keys' cubic kernel (a = -0.75) at the four taps floor - 1 .. floor + 2, t = x - floor."""
    a = CUBIC_A

    def near(s: Any) -> Any:
        return ((s * (a + 2) - (a + 3)) * s) * s + 1.0

    def far(s: Any) -> Any:
        return ((s * a - 5 * a) * s + 8 * a) * s - 4 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def _np_grid_taps(v: np.ndarray, length: int, mode: str, padding_mode: str,
                  align_corners: bool) -> tuple[list[np.ndarray], list[np.ndarray | None], list[np.ndarray]]:
    """(indices, weights, valid) per tap for normalized coordinates v (float64)."""
    ln = float(length)
    x = (v + 1.0) / 2.0 * (ln - 1.0) if align_corners else ((v + 1.0) * ln - 1.0) / 2.0
    if mode == "nearest":
        x = np.rint(x)
    lo, hi = (0.0, ln - 1.0) if align_corners else (-0.5, ln - 0.5)
    lo_a, hi_a = np.full_like(x, lo), np.full_like(x, hi)
    if mode == "cubic":
        pass  # cubic pads each tap only (as PyTorch and onnxruntime), not the coordinate
    elif padding_mode == "border":
        x = np.where((x < lo) | (x > hi), np.clip(x, 0.0, ln - 1.0), x)
    elif padding_mode == "reflection":
        x = _np_reflect(x, lo_a, hi_a)
    if mode == "nearest":
        taps, weights = [x], [None]
    else:
        f = np.floor(x)
        t = x - f
        if mode == "linear":
            taps, weights = [f, f + 1.0], [1.0 - t, t]
        else:
            taps, weights = [f - 1.0, f, f + 1.0, f + 2.0], _cubic_weights(t)
    idx, valid = [], []
    for p in taps:
        if padding_mode == "reflection":
            p = np.trunc(_np_reflect(p, lo_a, hi_a))
        ok = (p >= 0.0) & (p <= ln - 1.0)
        q = np.nan_to_num(np.clip(p, 0.0, ln - 1.0), nan=0.0)
        idx.append(q.astype(np.int64))
        valid.append(ok if padding_mode == "zeros" else np.ones_like(ok))
    return idx, weights, valid


def _ir_grid_taps(pb: Any, v: Any, length: Any, mode: str, padding_mode: str,
                  align_corners: bool) -> list[tuple[Any, Any, Any]]:
    """[(index, weight or None, valid or None)] per tap, for one coordinate (float64 Expr)."""
    ln = _fdim(pb, length)
    x = (v + 1.0) * 0.5 * (ln - 1.0) if align_corners else ((v + 1.0) * ln - 1.0) * 0.5
    if mode == "nearest":
        x = _ir_rint(pb, x)
    lo, hi = (pb.const(0.0, _f64()), ln - 1.0) if align_corners else (pb.const(-0.5, _f64()), ln - 0.5)
    if mode == "cubic":
        pass  # cubic pads each tap only (as PyTorch and onnxruntime), not the coordinate
    elif padding_mode == "border":
        x = pb.select((x < lo) | (x > hi), pb.max(pb.min(x, ln - 1.0), 0.0), x)
    elif padding_mode == "reflection":
        x = _ir_reflect(pb, x, lo, hi)
    if mode == "nearest":
        taps: list[tuple[Any, Any]] = [(x, None)]
    else:
        f = pb.math("floor", x)
        t = x - f
        if mode == "linear":
            taps = [(f, 1.0 - t), (f + 1.0, t)]
        else:
            taps = list(zip([f - 1.0, f, f + 1.0, f + 2.0], _cubic_weights(t)))
    out = []
    for p, w in taps:
        if padding_mode == "reflection":
            p = _ir_trunc(pb, _ir_reflect(pb, p, lo, hi))
        ok = (p >= 0.0) & (p <= ln - 1.0) if padding_mode == "zeros" else None
        q = pb.max(pb.min(p, ln - 1.0), 0.0)  # bounded before the conversion; NaN converts to 0
        out.append((pb.cast(pb.cast(q, "int64"), IndexType()), w, ok))
    return out


def _ir_rint(pb: Any, x: Any) -> Any:
    """Round half to even (np.rint), from floor."""
    f = pb.math("floor", x)
    d = x - f
    even = (f - pb.math("floor", f * 0.5) * 2.0).eq(0.0)
    up = (d > 0.5) | (d.eq(0.5) & even.eq(pb.lift(False, even.type)))
    return pb.select(up, f + 1.0, f)


def _ir_trunc(pb: Any, x: Any) -> Any:
    return pb.select(x < 0.0, pb.math("ceil", x), pb.math("floor", x))


@register_op
class GridSample(OpSpec):
    """relax.grid_sample: out[n, c, o...] = x[n, c] sampled at grid[n, o...]
    (normalized coordinates in [-1, 1], the last spatial axis first, as
    ONNX GridSample); `mode` nearest / linear / cubic, `padding_mode` zeros /
    border / reflection, `align_corners` maps -1 and 1 to the corner
    pixels' centres instead of their outer edges."""

    name = "grid_sample"
    inputs = ("x", "grid")
    params = {"mode": Param("str", "linear"), "padding_mode": Param("str", "zeros"),
              "align_corners": Param("bool", False)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, grid: TensorType, mode: str, padding_mode: str,
              align_corners: bool) -> TensorType:
        _grid_check(ctx, x, grid, mode, padding_mode)
        n = ctx.same(x.sym_shape[0], grid.sym_shape[0], "batch dim of x vs grid")
        return tensor([n, x.sym_shape[1], *grid.sym_shape[1:-1]], x.dtype)

    def reference(self, x: np.ndarray, grid: np.ndarray, mode: str, padding_mode: str,
                  align_corners: bool) -> np.ndarray:
        r = x.ndim - 2
        g = grid.astype(np.float64)
        with np.errstate(invalid="ignore"):  # a NaN / inf grid gives NaN weights, as in the tensor program
            per_axis = [_np_grid_taps(g[..., r - 1 - a], x.shape[2 + a], mode, padding_mode, align_corners)
                        for a in range(r)]
        n_idx = np.arange(x.shape[0]).reshape((-1,) + (1,) * r)
        acc = np.zeros((x.shape[1], *grid.shape[:-1]), dtype=np.float64)
        nearest_val = None
        for combo in np.ndindex(*[len(p[0]) for p in per_axis]):
            idx = [per_axis[a][0][k] for a, k in enumerate(combo)]
            ok = np.ones(grid.shape[:-1], dtype=bool)
            w: Any = 1.0
            for a, k in enumerate(combo):
                ok &= per_axis[a][2][k]
                wk = per_axis[a][1][k]
                w = w if wk is None else w * wk
            vals = np.moveaxis(x[(n_idx, slice(None), *idx)], -1, 0)  # [C, N, o...]
            if mode == "nearest":
                nearest_val = np.where(ok, vals, np.zeros((), dtype=x.dtype))
            else:
                with np.errstate(invalid="ignore"):
                    acc += np.where(ok, vals.astype(np.float64) * w, 0.0)
        res = nearest_val if mode == "nearest" else acc
        return np.ascontiguousarray(np.moveaxis(res, 0, 1).astype(x.dtype))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], mode: str, padding_mode: str,
                 align_corners: bool) -> None:
        (x, grid), (out,) = inputs, outputs
        r = x.ndim - 2

        def body(n: Any, c: Any, *o: Any) -> Any:
            per_axis = [_ir_grid_taps(pb, pb.cast(grid[(n, *o, r - 1 - a)], _f64()), x.shape[2 + a], mode,
                                      padding_mode, align_corners) for a in range(r)]
            acc: Any = None
            for combo in np.ndindex(*[len(t) for t in per_axis]):
                idx, w, ok = [], None, None
                for a, k in enumerate(combo):
                    i, wk, okk = per_axis[a][k]
                    idx.append(i)
                    if wk is not None:
                        w = wk if w is None else w * wk
                    if okk is not None:
                        ok = okk if ok is None else ok & okk
                v = x[(n, c, *idx)]
                if mode == "nearest":
                    return v if ok is None else pb.select(ok, v, pb.lift(0, v.type))
                term = pb.cast(v, _f64()) * w
                if ok is not None:
                    term = pb.select(ok, term, 0.0)
                acc = term if acc is None else acc + term
            return pb.cast(acc, out.dtype)

        pb.compute(out, body)


# -- col2im --------------------------------------------------------------------------------------------------------


def _col2im_geometry(ctx: Infer, x: TensorType, image_shape: Sequence[int], block_shape: Sequence[int],
                     dilations: Sequence[int] | None, pads: Sequence[int] | None,
                     strides: Sequence[int] | None) -> tuple[list[int], list[int], list[int], list[int]]:
    r = len(image_shape)
    if r < 1 or len(block_shape) != r:
        ctx.fail(f"image_shape {list(image_shape)} and block_shape {list(block_shape)} need one entry per "
                 "spatial axis each")
    dil = list(dilations) if dilations is not None else [1] * r
    st = list(strides) if strides is not None else [1] * r
    pd = list(pads) if pads is not None else [0] * (2 * r)
    if len(dil) != r or len(st) != r or len(pd) != 2 * r:
        ctx.fail(f"dilations {dil}, strides {st} need {r} entries and pads {pd} needs {2 * r}")
    if any(v < 1 for v in [*block_shape, *dil, *st]) or any(v < 0 for v in [*pd, *image_shape]):
        ctx.fail(f"block_shape {list(block_shape)}, dilations {dil} and strides {st} must be positive; "
                 f"pads {pd} and image_shape {list(image_shape)} non-negative")
    if x.ndim != 3:
        ctx.fail(f"input must have rank 3 (N, C * prod(block_shape), L), got rank {x.ndim}")
    blocks = []
    for a in range(r):
        span = image_shape[a] + pd[a] + pd[r + a] - dil[a] * (block_shape[a] - 1) - 1
        nb = span // st[a] + 1
        if span < 0 or nb < 1:
            ctx.fail(f"axis {a}: a block of {block_shape[a]} (dilation {dil[a]}) does not fit the padded image "
                     f"of {image_shape[a] + pd[a] + pd[r + a]}")
        blocks.append(nb)
    return dil, pd, st, blocks


@register_op
class Col2Im(OpSpec):
    """relax.col2im: x [N, C * prod(block_shape), L] (columns of blocks, as
    im2col makes them) summed back into an image [N, C, *image_shape]
    (ONNX Col2Im); L must be the number of blocks the geometry gives."""

    name = "col2im"
    inputs = ("x",)
    params = {"image_shape": Param("ints", REQUIRED), "block_shape": Param("ints", REQUIRED),
              "dilations": Param("ints", None), "pads": Param("ints", None), "strides": Param("ints", None)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, image_shape: Any, block_shape: Any, dilations: Any, pads: Any,
              strides: Any) -> TensorType:
        _, _, _, blocks = _col2im_geometry(ctx, x, image_shape, block_shape, dilations, pads, strides)
        if x.dtype == "bool":
            ctx.fail("x must be numeric, got bool")
        k = math.prod(block_shape)
        ch = canon(x.sym_shape[1] / k)
        if ch.is_integer is not True:
            ctx.fail(f"dim 1 ({dim_to_str(x.sym_shape[1])}) must be a multiple of prod(block_shape) = {k}")
        ctx.same(x.sym_shape[2], math.prod(blocks), f"dim 2 (the number of blocks {' x '.join(map(str, blocks))})")
        return tensor([x.sym_shape[0], ch, *image_shape], x.dtype)

    def reference(self, x: np.ndarray, image_shape: Any, block_shape: Any, dilations: Any, pads: Any,
                  strides: Any) -> np.ndarray:
        dil, pd, st, blocks = _col2im_geometry(Infer(self.name), TensorType.of(x.shape, x.dtype.name), image_shape,
                                               block_shape, dilations, pads, strides)
        r, k = len(image_shape), math.prod(block_shape)
        n, ck, _ = x.shape
        cols = x.reshape(n, ck // k, *block_shape, *blocks)
        acc_t = np.float32 if x.dtype == np.float16 else x.dtype
        out = np.zeros((n, ck // k, *[image_shape[a] + pd[a] + pd[r + a] for a in range(r)]), dtype=acc_t)
        for kk in np.ndindex(*block_shape):
            sl = tuple(slice(kk[a] * dil[a], kk[a] * dil[a] + st[a] * (blocks[a] - 1) + 1, st[a]) for a in range(r))
            out[(slice(None), slice(None), *sl)] += cols[(slice(None), slice(None), *kk)]
        crop = tuple(slice(pd[a], pd[a] + image_shape[a]) for a in range(r))
        return np.ascontiguousarray(out[(slice(None), slice(None), *crop)].astype(x.dtype))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], image_shape: Any, block_shape: Any,
                 dilations: Any, pads: Any, strides: Any) -> None:
        (x,), (out,) = inputs, outputs
        dil, pd, st, blocks = _col2im_geometry(Infer(self.name), TensorType.of(x.shape, x.dtype), image_shape,
                                               block_shape, dilations, pads, strides)
        r, k = len(image_shape), math.prod(block_shape)
        acc = "float32" if out.dtype == "float16" else out.dtype

        def body(n: Any, c: Any, *rest: Any) -> Any:
            pos, kk = rest[:r], rest[r:]
            ok: Any = None
            blk: Any = pb.index(0)
            ker: Any = pb.index(0)
            for a in range(r):
                p = pos[a] + pd[a] - kk[a] * dil[a]           # the padded position minus the tap's offset
                q = pb.max(pb.min(p // st[a], blocks[a] - 1), 0)
                hit = (p >= 0) & (p % st[a]).eq(0) & (p // st[a] < blocks[a])
                ok = hit if ok is None else ok & hit
                blk = blk * blocks[a] + q
                ker = ker * block_shape[a] + kk[a]
            v = pb.cast(x[n, c * k + ker, blk], acc)
            return pb.select(ok, v, pb.lift(0, v.type))

        reduce = ("add", list(block_shape))
        if acc == out.dtype:
            pb.compute(out, body, reduce=reduce)
        else:
            pb.compute(out, body, reduce=reduce, epilogue=lambda s, *_: pb.cast(s, out.dtype), value_type=acc)


# -- det -----------------------------------------------------------------------------------------------------------


@register_op
class Det(OpSpec):
    """relax.det: the determinant of each square matrix in x [..., M, M]
    (LU with partial pivoting in float64); the result has x's batch dims."""

    name = "det"
    inputs = ("x",)
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType) -> TensorType:
        if x.ndim < 2:
            ctx.fail(f"x must have rank >= 2 ([..., M, M]), got rank {x.ndim}")
        if not dtypes.is_float(x.dtype):
            ctx.fail(f"x must be floating-point, got {x.dtype}")
        ctx.same(x.sym_shape[-2], x.sym_shape[-1], "the matrices must be square: dim -2 vs dim -1")
        return tensor(x.sym_shape[:-2], x.dtype)

    def reference(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1] == 0:
            return np.ones(x.shape[:-2], dtype=x.dtype)
        return np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any]) -> None:
        (x,), (out,) = inputs, outputs
        m = x.shape[-1]
        batch = list(x.shape[:-2])
        a = pb.alloc(x.shape, "float64")                  # the scratch copy LU works in
        d = pb.alloc(batch, "float64")                    # the running product of pivots
        f64 = _f64()

        def per_matrix(*b: Any) -> None:
            _loops(pb, [m, m], lambda i, j: _store(pb, a, (*b, i, j), pb.cast(x[(*b, i, j)], f64)))
            _store(pb, d, b, pb.const(1.0, f64))

            def column(k: Any) -> None:
                def step(best: Any, t: Any) -> Any:
                    i = k + t
                    better = pb.math("absf", a[(*b, i, k)]) > pb.math("absf", a[(*b, best, k)])
                    return pb.select(better, i, best)

                p = pb.fold([pb.index(m) - k], k, step)

                def swap(j: Any) -> None:
                    top, other = a[(*b, k, j)], a[(*b, p, j)]
                    _store(pb, a, (*b, k, j), other)
                    _store(pb, a, (*b, p, j), top)

                _loops(pb, [pb.index(m)], swap)
                pivot = a[(*b, k, k)]
                sign = pb.select(p.eq(k), pb.const(1.0, f64), pb.const(-1.0, f64))
                _store(pb, d, b, d[b] * sign * pivot)
                zero = pivot.eq(0.0)

                def eliminate(t: Any) -> None:
                    i = k + 1 + t
                    factor = pb.select(zero, pb.const(0.0, f64), a[(*b, i, k)] / pivot)
                    _loops(pb, [pb.index(m) - k - 1],
                           lambda s: _store(pb, a, (*b, i, k + 1 + s),
                                            a[(*b, i, k + 1 + s)] - factor * a[(*b, k, k + 1 + s)]))

                _loops(pb, [pb.index(m) - k - 1], eliminate)

            _loops(pb, [m], column)
            _store(pb, out, b, pb.cast(d[b], out.dtype))

        _loops(pb, batch, per_matrix, parallel_first=bool(batch))
