"""ONNX converters for sampling, random numbers and Det: GridSample,
AffineGrid, Col2Im, RandomUniform / RandomNormal (and their *Like forms),
Bernoulli, Multinomial, Dropout (training mode draws its mask) and Det,
onto relax.grid_sample / col2im /
random_uniform / random_normal / det (relax_xdsl/ops/sampling.py) and
compositions of existing ops.

Random ops draw from relax's counter-based generator: a `seed` attribute
gives the same values on every target and every run, but not onnxruntime's
values. A node without a seed gets one drawn from Python's `secrets` at
import time (a fresh one per node and per import), so two imports of the
same model give different numbers, as two onnxruntime sessions do.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Known, Node, Value, identifier, onnx_dtype, register_converter
from relax_xdsl.shape import Dim, canon, dim_to_str, dims_differ

_GRID_MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest", "bicubic": "cubic", "cubic": "cubic"}
_PADDING_MODES = ("zeros", "border", "reflection")


def _bool_attr(n: Node, name: str) -> bool:
    v = n.attr(name, 0)
    if v not in (0, 1):
        n.fail(f"attribute {name}={v!r} must be 0 or 1")
    return bool(v)


@register_converter("GridSample", attrs=("mode", "padding_mode", "align_corners"))
def _grid_sample(n: Node) -> Value:
    x, grid = n.input(0, "X"), n.input(1, "grid")
    mode = n.attr("mode", "bilinear" if n.opset < 20 else "linear")
    allowed = ("bilinear", "nearest", "bicubic") if n.opset < 20 else ("linear", "nearest", "cubic")
    if mode not in allowed:
        n.fail(f"attribute mode={mode!r} is not supported ({', '.join(allowed)})")
    padding = n.attr("padding_mode", "zeros")
    if padding not in _PADDING_MODES:
        n.fail(f"attribute padding_mode={padding!r} is not supported ({', '.join(_PADDING_MODES)})")
    return n.op("grid_sample", x, grid, mode=_GRID_MODES[mode], padding_mode=padding,
                align_corners=_bool_attr(n, "align_corners"))


def _base_grid(spatial: list[int], align_corners: bool, dtype: str) -> np.ndarray:
    """[prod(spatial), r + 1]: each point's normalized coordinates, the last
    spatial axis first (x, y[, z]), then 1 (homogeneous), as AffineGrid's."""
    axes = []
    for size in spatial:
        i = np.arange(size, dtype=np.float64)
        if align_corners:
            # one point: 1, as onnxruntime (Eigen's LinSpaced); the ONNX reference gives -1, torch 0
            axes.append(-1.0 + 2.0 * i / (size - 1) if size > 1 else np.ones(size))
        else:
            axes.append(-1.0 + (2.0 * i + 1.0) / size)
    mesh = np.meshgrid(*axes, indexing="ij")
    cols = [m.reshape(-1) for m in reversed(mesh)] + [np.ones(int(np.prod(spatial)))]
    return np.stack(cols, axis=1).astype(dtype)


@register_converter("AffineGrid", attrs=("align_corners",))
def _affine_grid(n: Node) -> Value:
    theta = n.input(0, "theta")
    if rt.is_runtime(n, 1):
        return _affine_grid_at_run_time(n, theta)
    size = n.ints(1, "size")
    if len(size) not in (4, 5):
        n.fail(f"size must have 4 (N, C, H, W) or 5 (N, C, D, H, W) entries, got {len(size)}")
    r = len(size) - 2
    spatial = size[2:]
    for d in spatial:
        if not isinstance(d, int):
            n.fail(f"size's spatial dims must be static, got [{', '.join(dim_to_str(canon(s)) for s in size)}]")
        if d < 0:
            n.fail(f"size {size} has a negative dim")
    if theta.ndim != 3 or not all(canon(d) == v for d, v in zip(theta.shape[1:], (r, r + 1))):
        n.fail(f"theta must be [N, {r}, {r + 1}] for a size of {len(size)} entries, got "
               f"[{', '.join(dim_to_str(canon(d)) for d in theta.shape)}]")
    if dims_differ(canon(size[0]), canon(theta.shape[0])):
        n.fail(f"size[0] = {dim_to_str(canon(size[0]))} differs from theta's batch dim {dim_to_str(canon(theta.shape[0]))}")
    if not dtypes.is_float(theta.dtype):
        n.fail(f"theta must be floating-point, got {theta.dtype}")
    base = Known(_base_grid(spatial, _bool_attr(n, "align_corners"), theta.dtype), theta.dtype)
    points = n.op("matmul", base, n.op("permute_dims", theta, axes=[0, 2, 1]))   # [N, prod(spatial), r]
    return n.op("reshape", points, shape=[theta.shape[0], *spatial, r])


def _check_theta(n: Node, theta: Value, r: int) -> None:
    if theta.ndim != 3 or not all(canon(d) == v for d, v in zip(theta.shape[1:], (r, r + 1))):
        n.fail(f"theta must be [N, {r}, {r + 1}] for a size of {r + 2} entries, got "
               f"[{', '.join(dim_to_str(canon(d)) for d in theta.shape)}]")
    if not dtypes.is_float(theta.dtype):
        n.fail(f"theta must be floating-point, got {theta.dtype}")


def _affine_grid_at_run_time(n: Node, theta: Value) -> Value:
    """AffineGrid with the size as data: its spatial entries become fresh
    symbols (size[0] is checked against theta's batch dim when it runs) and
    the base grid is computed from aranges of those lengths, in float64 as
    `_base_grid` does, then multiplied by theta as in the static case."""
    size = rt.int_vector(n, 1, "size")
    count = int(canon(size.shape[0]))
    if count not in (4, 5):
        n.fail(f"size must have 4 (N, C, H, W) or 5 (N, C, D, H, W) entries, got {count}")
    r = count - 2
    _check_theta(n, theta, r)
    label = n.name or f"{n.op_type}_{n.index}"
    fresh = n.importer.fb.fresh_symbols(count - 1, prefix=identifier(f"{label}_size", "s"))
    spatial = rt.sizes(n, size, "size", [canon(theta.shape[0]), *fresh])[2:]
    align = _bool_attr(n, "align_corners")
    f64 = "float64"
    coords: list[Value] = []
    for a, s in enumerate(spatial):
        i = n.op("arange", start=0.0, step=1.0, dtype=f64, length=[s])
        s_f = n.op("astype", rt.dims_data(n, [s]), dtype=f64)
        if align:  # one point: 1, as onnxruntime (see _base_grid)
            v = n.op("divide", n.op("multiply", i, rt.const(2.0, f64)),
                     n.op("maximum", n.op("subtract", s_f, rt.const(1.0, f64)), rt.const(1.0, f64)))
            v = n.op("subtract", v, rt.const(1.0, f64))
            v = n.op("where", n.op("greater", s_f, rt.const(1.0, f64)), v, rt.const(1.0, f64))
        else:
            v = n.op("subtract", n.op("divide", n.op("add", n.op("multiply", i, rt.const(2.0, f64)),
                                                     rt.const(1.0, f64)), s_f), rt.const(1.0, f64))
        shape: list[Any] = [1] * (r + 1)
        shape[a] = s
        coords.append(n.op("broadcast_to", n.op("reshape", v, shape=shape), shape=[*spatial, 1]))
    ones = n.op("full", shape=[*spatial, 1], fill_value=1.0, dtype=f64)
    base = n.op("concat", *reversed(coords), ones, axis=r)                       # [*spatial, r + 1]
    points = canon(sympy.Mul(*spatial))
    base = n.op("astype", n.op("reshape", base, shape=[points, r + 1]), dtype=theta.dtype)
    grid = n.op("matmul", base, n.op("permute_dims", theta, axes=[0, 2, 1]))   # [N, prod(spatial), r]
    return n.op("reshape", grid, shape=[theta.shape[0], *spatial, r])


@register_converter("Col2Im", attrs=("dilations", "pads", "strides"))
def _col2im(n: Node) -> Value:
    x = n.input(0, "input")
    if rt.is_runtime(n, 1) or rt.is_runtime(n, 2) or not all(isinstance(v, int) for v in n.ints(1, "image_shape")):
        return _col2im_by_gather(n, x)
    image_shape = n.static_ints(1, "image_shape")
    block_shape = n.static_ints(2, "block_shape")
    params: dict[str, Any] = {k: list(n.attrs[k]) for k in ("dilations", "pads", "strides") if k in n.attrs}
    return n.op("col2im", x, image_shape=image_shape, block_shape=block_shape, **params)


def _col2im_sizes(n: Node, i: int, what: str, positive: bool) -> list[Dim]:
    """Input i (image_shape or block_shape) as dims: known values as they are
    (block_shape checked at import), data as fresh symbols bound at run time
    (a block dim of 0 is turned into -1, which their size check rejects)."""
    if rt.is_runtime(n, i):
        v = rt.int_vector(n, i, what)
        if positive:
            v = rt.as_var(n.op("where", n.op("less", v, rt.const(1)), rt.const(-1), v))
        return rt.sizes(n, v, what)
    vals = n.ints(i, what)
    for d in vals:
        if isinstance(d, int) and (d < 1 if positive else d < 0):
            n.fail(f"{what} {vals} must be {'positive' if positive else 'non-negative'}")
    return [canon(d) for d in vals]


def _col2im_by_gather(n: Node, x: Value) -> Value:
    """Col2Im with image_shape or block_shape computed at run time (or
    symbolic), composed of existing ops: the block counts per axis are fresh
    symbols (checked to multiply to L, and C * prod(block_shape) to x's dim
    1); each output pixel gathers, for every kernel tap, the column entry
    whose block covers it (an index clamped into range, masked when no block
    lands there), and sums over the taps, as relax.col2im does with static
    sizes."""
    if x.ndim != 3:
        n.fail(f"input must have rank 3 (N, C * prod(block_shape), L), got rank {x.ndim}")
    if x.dtype == "bool":
        n.fail("input must be numeric, got bool")
    img = _col2im_sizes(n, 1, "image_shape", positive=False)
    r = len(img)
    ker = _col2im_sizes(n, 2, "block_shape", positive=True)
    if r < 1 or len(ker) != r:
        n.fail(f"image_shape and block_shape need one entry per spatial axis each, got {r} and {len(ker)}")
    dil = [int(v) for v in n.attr("dilations", [1] * r)]
    st = [int(v) for v in n.attr("strides", [1] * r)]
    pd = [int(v) for v in n.attr("pads", [0] * (2 * r))]
    if len(dil) != r or len(st) != r or len(pd) != 2 * r:
        n.fail(f"dilations {dil}, strides {st} need {r} entries and pads {pd} needs {2 * r}")
    if any(v < 1 for v in [*dil, *st]) or any(v < 0 for v in pd):
        n.fail(f"dilations {dil} and strides {st} must be positive, pads {pd} non-negative")
    img_d, ker_d = rt.dims_data(n, img), rt.dims_data(n, ker)
    span = n.op("subtract", n.op("add", img_d, rt.const([pd[a] + pd[r + a] - 1 for a in range(r)])),
                n.op("multiply", n.op("subtract", ker_d, rt.const(1)), rt.const(dil)))
    count = n.op("add", n.op("divide", span, rt.const(st)), rt.const(1))
    count = n.op("where", n.op("less", span, rt.const(0)), rt.const(-1), count)  # no block fits: rejected
    blocks = rt.sizes(n, rt.as_var(count), "blocks")
    k, nb = canon(sympy.Mul(*ker)), canon(sympy.Mul(*blocks))
    channels = canon(x.shape[1] / k)
    if not channels.is_integer:
        (channels,) = rt.sizes(n, rt.as_var(n.op("divide", rt.dims_data(n, [x.shape[1]]), rt.dims_data(n, [k]))),
                               "channels")
        rt.sizes(n, rt.dims_data(n, [x.shape[1]]), "channels_x_block", [canon(channels * k)])
    rt.sizes(n, rt.dims_data(n, [x.shape[2]]), "block_count", [nb])
    flat = n.op("reshape", x, shape=[x.shape[0], channels, canon(k * nb)])
    index: Value | None = None
    mask: Value | None = None
    for a in range(r):
        taps = n.op("reshape", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[ker[a]]), shape=[ker[a], 1])
        pos = n.op("reshape", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[img[a]]), shape=[1, img[a]])
        p = n.op("subtract", n.op("add", pos, rt.const(pd[a])), n.op("multiply", taps, rt.const(dil[a])))
        q = n.op("divide", p, rt.const(st[a]))
        last = rt.dims_data(n, [canon(blocks[a] - 1)])
        hit = n.op("logical_and", n.op("logical_and", n.op("greater_equal", p, rt.const(0)),
                                        n.op("equal", n.op("mod", p, rt.const(st[a])), rt.const(0))),
                   n.op("less_equal", q, last))
        q = n.op("minimum", n.op("maximum", q, rt.const(0)), last)
        tap_stride = rt.dims_data(n, [canon(sympy.Mul(*ker[a + 1:]) * nb)])
        block_stride = rt.dims_data(n, [canon(sympy.Mul(*blocks[a + 1:]))])
        term = n.op("add", n.op("multiply", taps, tap_stride), n.op("multiply", q, block_stride))
        shape = [1] * (2 * r)
        shape[a], shape[r + a] = ker[a], img[a]
        term, hit = n.op("reshape", term, shape=shape), n.op("reshape", hit, shape=shape)
        index = term if index is None else n.op("add", index, term)
        mask = hit if mask is None else n.op("logical_and", mask, hit)
    assert index is not None and mask is not None
    index = n.op("broadcast_to", index, shape=[*ker, *img])
    index = n.op("reshape", index, shape=[k, *img])
    mask = n.op("reshape", n.op("broadcast_to", mask, shape=[*ker, *img]), shape=[1, 1, k, *img])
    taken = n.op("take", flat, index, axis=2)
    acc = "float32" if x.dtype in ("float16", "bfloat16") else x.dtype
    if acc != x.dtype:
        taken = n.op("astype", taken, dtype=acc)
    y = n.op("sum", n.op("where", mask, taken, rt.const(0, acc)), axis=[2])
    return y if acc == x.dtype else n.op("astype", y, dtype=x.dtype)


@register_converter("Det")
def _det(n: Node) -> Value:
    return n.op("det", n.input(0, "X"))


# -- random numbers ------------------------------------------------------------------------------------------------


def _seed(n: Node) -> float:
    """The node's seed, or a fresh one from `secrets` (see the module docstring)."""
    if "seed" in n.attrs:
        return float(n.attrs["seed"])
    return float(secrets.randbits(52))


def _out_dtype(n: Node, default: str) -> str:
    return onnx_dtype(int(n.attrs["dtype"]), f"node {n.name!r} ({n.op_type}) attribute dtype") \
        if "dtype" in n.attrs else default


def _random(n: Node, shape: list[Any], dtype: str) -> Value:
    if not dtypes.is_float(dtype):
        n.fail(f"attribute dtype: the output must be floating-point, got {dtype}")
    if n.op_type.startswith("RandomUniform"):
        return n.op("random_uniform", shape=shape, seed=_seed(n), dtype=dtype,
                    low=float(n.attr("low", 0.0)), high=float(n.attr("high", 1.0)))
    return n.op("random_normal", shape=shape, seed=_seed(n), dtype=dtype,
                mean=float(n.attr("mean", 0.0)), scale=float(n.attr("scale", 1.0)))


@register_converter(("RandomUniform", "RandomNormal"), attrs=("dtype", "high", "low", "mean", "scale", "seed",
                                                              "shape"))
def _random_shape(n: Node) -> Value:
    shape = [int(d) for d in n.attr("shape")]
    if any(d < 0 for d in shape):
        n.fail(f"attribute shape {shape} has a negative dim")
    return _random(n, shape, _out_dtype(n, "float32"))


@register_converter(("RandomUniformLike", "RandomNormalLike"), attrs=("dtype", "high", "low", "mean", "scale",
                                                                      "seed"))
def _random_like(n: Node) -> Value:
    x = n.input(0, "input")
    return _random(n, list(x.shape), _out_dtype(n, x.dtype))


@register_converter("Bernoulli", attrs=("dtype", "seed"))
def _bernoulli(n: Node) -> Value:
    """1 where a uniform draw in [0, 1) (float64) is below the probability."""
    p = n.input(0, "input")
    if not dtypes.is_float(p.dtype):
        n.fail(f"input must hold floating-point probabilities, got {p.dtype}")
    dtype = _out_dtype(n, p.dtype)
    u = n.op("random_uniform", shape=list(p.shape), seed=_seed(n), dtype="float64")
    hit = n.op("less", u, n.op("astype", p, dtype="float64") if p.dtype != "float64" else p)
    return n.op("astype", hit, dtype=dtype)


@register_converter("Multinomial", attrs=("dtype", "sample_size", "seed"))
def _multinomial(n: Node) -> Value:
    """Inverse-CDF sampling of softmax(input) per row: the class is the
    number of cumulative probabilities at or below a uniform draw (clamped
    to the last class against rounding)."""
    x = n.input(0, "input")
    if x.ndim != 2 or not dtypes.is_float(x.dtype):
        n.fail(f"input must be a float [batch_size, class_size] tensor, got rank {x.ndim} {x.dtype}")
    dtype = _out_dtype(n, "int32")
    if dtype not in ("int32", "int64"):
        n.fail(f"attribute dtype must be int32 or int64, got {dtype}")
    samples = int(n.attr("sample_size", 1))
    if samples < 1:
        n.fail(f"attribute sample_size={samples} must be positive")
    batch, classes = x.shape
    if canon(classes) == 0:
        n.fail("class_size is 0: there is nothing to sample")
    xd = n.op("astype", x, dtype="float64") if x.dtype != "float64" else x
    cdf = n.op("cumsum", n.op("softmax", xd, axis=1), axis=1)
    u = n.op("random_uniform", shape=[batch, samples], seed=_seed(n), dtype="float64")
    below = n.op("less_equal", n.op("expand_dims", cdf, axis=[1]), n.op("expand_dims", u, axis=[2]))
    count = n.op("sum", n.op("astype", below, dtype="int64"), axis=[2])
    limit = _class_limit(n, classes)
    return n.op("astype", n.op("minimum", count, limit), dtype=dtype)


def _class_limit(n: Node, classes: Any) -> Value:
    c = canon(classes)
    if c.is_Integer:
        return Known(np.array(int(c) - 1, dtype=np.int64), "int64")
    n.fail(f"class_size must be static, got {dim_to_str(c)}")


# -- Dropout --------------------------------------------------------------------------------------------------------


@register_converter("Dropout", attrs=("seed", "ratio", "is_test", "consumed_inputs"))
def _dropout(n: Node) -> list[Value]:
    """Inference: the data, and a mask of ones. Training (opset 12+'s
    training_mode input, or is_test=0 before opset 7): each element is kept
    where a uniform draw in [0, 1) is at least the ratio, and scaled by
    1 / (1 - ratio), as ONNX's reference; the mask is the kept elements.
    A flag or ratio given as data picks between the two when it runs; a
    ratio outside [0, 1) fails (at import when known, else when it runs,
    naming the node). Opsets 7 to 11 have no training mode."""
    x = n.input(0, "data")
    if not dtypes.is_float(x.dtype):
        n.fail(f"input 0 (data) must be floating-point, got {x.dtype}")
    mask_dtype = "bool" if n.opset >= 10 else x.dtype  # opsets 7-9 (and is_test): the mask has the data's type
    ones = n.op("ones", shape=list(x.shape), dtype=mask_dtype)
    want_mask = len(n.outputs) >= 2 and bool(n.outputs[1])
    if n.opset < 7:
        ratio: Value = rt.const(float(n.attr("ratio", 0.5)), x.dtype)
        training: Value | None = rt.const(not n.attr("is_test", 0), "bool")
    elif n.opset < 12:
        ratio, training = rt.const(0.0, x.dtype), None
    else:
        ratio = n.optional(1) if n.optional(1) is not None else rt.const(0.5, x.dtype)
        training = n.optional(2)
    if training is None or _known_false(training) or _known_zero(ratio):
        return [x, ones] if want_mask else [x]
    ratio = _checked_ratio(n, ratio, x.dtype)
    keep = n.op("greater_equal", n.op("random_uniform", shape=list(x.shape), seed=_seed(n), dtype="float64"),
                n.op("astype", ratio, dtype="float64"))
    scale = n.op("divide", rt.const(1.0, x.dtype), n.op("subtract", rt.const(1.0, x.dtype), ratio))
    dropped = n.op("multiply", n.op("multiply", x, n.op("astype", keep, dtype=x.dtype)), scale)
    mask = n.op("astype", keep, dtype=mask_dtype) if mask_dtype != "bool" else keep
    if not (isinstance(training, Known) and training.array.size == 1 and bool(training.array.reshape(-1)[0])):
        flag = rt.scalar_tensor(n, 2, "training_mode") if not isinstance(training, Known) else training
        if flag.dtype != "bool":
            n.fail(f"input 2 (training_mode) must be bool, got {flag.dtype}")
        dropped = n.op("where", flag, dropped, x)
        mask = n.op("where", flag, mask, ones)
    return [dropped, mask] if want_mask else [dropped]


def _known_false(v: Value) -> bool:
    return isinstance(v, Known) and not v.symbolic and v.array.size == 1 and not bool(v.array.reshape(-1)[0])


def _known_zero(v: Value) -> bool:
    return isinstance(v, Known) and not v.symbolic and v.array.size == 1 and float(v.array.reshape(-1)[0]) == 0.0


def _checked_ratio(n: Node, ratio: Value, dtype: str) -> Value:
    """The ratio as a 0-d value of the data's type, in [0, 1): checked at
    import when known, else through a one-element gather that fails when it
    runs (the check is on the ratio's own path, so it cannot be dropped)."""
    if isinstance(ratio, Known) and not ratio.symbolic:
        if ratio.array.size != 1:
            n.fail(f"input 1 (ratio) must be a scalar, got shape {list(ratio.array.shape)}")
        r = float(ratio.array.reshape(-1)[0])
        if not 0.0 <= r < 1.0:
            n.fail(f"ratio {r} must be in [0, 1)")
        return rt.const(r, dtype)
    r = rt.scalar_tensor(n, 1, "ratio")
    if not dtypes.is_float(r.dtype):
        n.fail(f"input 1 (ratio) must be floating-point, got {r.dtype}")
    r = n.op("astype", r, dtype=dtype) if r.dtype != dtype else r
    ok = n.op("logical_and", n.op("greater_equal", r, rt.const(0.0, dtype)), n.op("less", r, rt.const(1.0, dtype)))
    index = n.op("where", ok, rt.const(0), rt.const(1))
    return n.op("reshape", n.op("take", n.op("reshape", r, shape=[1]), index, axis=0,
                                what=f"{n.where}: ratio must be in [0, 1); the checked index is 1 when it is not"),
                shape=[])
