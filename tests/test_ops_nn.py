"""The nn op family (softmax, norms, conv2d, pools): shape deduction over
symbolic dims, errors, and values against naive loop implementations
written here (independent of the ops' numpy references)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from util import SIZES, assert_close, rand, roundtrip
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import OPAQUE, OUT_FUSIBLE, get_spec
from relax_xdsl.shape import dim_to_str, dims_equal, evaluate_dim, floordiv, parse_dim_text, sym

Spec = tuple[str, Sequence[int | str], str]  # (name, shape, dtype)
PAIRS = list(zip(SIZES, reversed(SIZES)))
"""(a, b) bindings for two symbols; each takes every size, 1 included."""


# --- helpers ------------------------------------------------------------------


def build(params: Sequence[Spec], body: Callable[..., rx.Var]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(name, shape, dtype) for name, shape, dtype in params]
        fb.ret(body(*args))
    return fb.module


def concrete(shape: Sequence[int | str], env: dict[str, int]) -> tuple[int, ...]:
    bindings = {sym(k): v for k, v in env.items()}
    return tuple(evaluate_dim(parse_dim_text(d) if isinstance(d, str) else d, bindings) for d in shape)


def run(params: Sequence[Spec], body: Callable[..., rx.Var], env: dict[str, int],
        inputs: dict[str, np.ndarray] | None = None, seed: int = 0) -> tuple[list[np.ndarray], Any]:
    """Builds, round-trips, and evaluates the reparsed module on random inputs."""
    module = build(params, body)
    again = roundtrip(module)
    arrays = []
    for i, (name, shape, dtype) in enumerate(params):
        given = (inputs or {}).get(name)
        arrays.append(given if given is not None else rand(concrete(shape, env), dtype, seed + i))
    return arrays, rx.evaluate(again, "main", *arrays)


def out_type(params: Sequence[Spec], body: Callable[..., rx.Var]) -> rx.Var:
    with rx.FunctionBuilder("main") as fb:
        return body(*[fb.param(name, shape, dtype) for name, shape, dtype in params])


def shape_text(v: rx.Var) -> list[str]:
    return [dim_to_str(d) for d in v.type.sym_shape]


# --- naive references (loops, float64) -------------------------------------------


def naive_softmax(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    moved = np.moveaxis(x.astype(np.float64), axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = [float(v) for v in moved[idx]]
        m = max(row)
        total = sum(math.exp(v - m) for v in row)
        out[idx] = [(v - m - math.log(total)) if log else math.exp(v - m) / total for v in row]
    return np.moveaxis(out, -1, axis).astype(x.dtype)


def naive_norm(x: np.ndarray, axes: Sequence[int], eps: float, params: Sequence[np.ndarray | None],
               rms: bool = False) -> np.ndarray:
    """layer_norm (params = gamma or None, beta or None) or rms_norm (params = weight)."""
    axes = [a % x.ndim for a in axes]
    rest = [a for a in range(x.ndim) if a not in axes]
    out = np.empty(x.shape, np.float64)
    for outer in np.ndindex(*[x.shape[a] for a in rest]):
        cells = []
        for inner in np.ndindex(*[x.shape[a] for a in axes]):
            idx = [0] * x.ndim
            for a, v in zip(rest, outer):
                idx[a] = v
            for a, v in zip(axes, inner):
                idx[a] = v
            cells.append((tuple(idx), inner))
        vals = [float(x[i]) for i, _ in cells]
        if rms:
            denom = math.sqrt(sum(v * v for v in vals) / len(vals) + eps)
            for (i, inner), v in zip(cells, vals):
                out[i] = v / denom * float(params[0][inner])
            continue
        mean = sum(vals) / len(vals)
        var = sum((v - mean) ** 2 for v in vals) / len(vals)
        gamma, beta = params
        for (i, inner), v in zip(cells, vals):
            y = (v - mean) / math.sqrt(var + eps)
            if gamma is not None:
                y *= float(gamma[inner])
            if beta is not None:
                y += float(beta[inner])
            out[i] = y
    return out.astype(x.dtype)


def naive_batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                     axis: int, eps: float, center: bool, scale: bool) -> np.ndarray:
    out = np.empty(x.shape, np.float64)
    for idx in np.ndindex(x.shape):
        ch = idx[axis]
        y = (float(x[idx]) - float(mean[ch])) / math.sqrt(float(var[ch]) + eps)
        if scale:
            y *= float(gamma[ch])
        if center:
            y += float(beta[ch])
        out[idx] = y
    return out.astype(x.dtype)


def pad4(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    p = [padding] if isinstance(padding, int) else list(padding)
    if len(p) == 1:
        p = p * 4
    elif len(p) == 2:
        p = [p[0], p[1], p[0], p[1]]
    return p[0], p[1], p[2], p[3]


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    v = [v] if isinstance(v, int) else list(v)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def extent(size: int, k: int, s: int, d: int, before: int, after: int, ceil: bool) -> int:
    """Output size as PyTorch defines it (ceil_mode drops a window starting in the end padding)."""
    span = size + before + after - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil else math.floor(span / s)) + 1
    if ceil and (out - 1) * s >= size + before:
        out -= 1
    return out


def naive_conv2d(x: np.ndarray, w: np.ndarray, strides: Any, padding: Any, dilation: Any, groups: int,
                 out_dtype: str) -> np.ndarray:
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = pair(strides), pair(dilation), pad4(padding)
    oh, ow = extent(h, kh, sh, dh, pt, pb, False), extent(wd, kw, sw, dw, pl, pr, False)
    xl, wl = x.tolist(), w.tolist()
    out = np.zeros((n, o, oh, ow), np.float64 if np.dtype(out_dtype).kind == "f" else np.int64)
    og = o // groups
    for b in range(n):
        for oc in range(o):
            g = oc // og
            for y in range(oh):
                for xx in range(ow):
                    acc = 0
                    for ic in range(cg):
                        row = xl[b][g * cg + ic]
                        for i in range(kh):
                            yy = y * sh - pt + i * dh
                            if not 0 <= yy < h:
                                continue
                            for j in range(kw):
                                xc = xx * sw - pl + j * dw
                                if 0 <= xc < wd:
                                    acc += row[yy][xc] * wl[oc][ic][i][j]
                    out[b, oc, y, xx] = acc
    return out.astype(out_dtype)


def naive_pool(x: np.ndarray, kind: str, pool_size: Any, strides: Any, padding: Any, dilation: Any,
               ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = pair(pool_size), pair(strides), pair(dilation), pad4(padding)
    oh, ow = extent(h, kh, sh, dh, pt, pb, ceil_mode), extent(w, kw, sw, dw, pl, pr, ceil_mode)
    xl = x.tolist()
    out = np.zeros((n, c, oh, ow), np.float64)
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                for xx in range(ow):
                    vals, padded = [], 0
                    for i in range(kh):
                        yy = y * sh - pt + i * dh
                        for j in range(kw):
                            xc = xx * sw - pl + j * dw
                            if 0 <= yy < h and 0 <= xc < w:
                                vals.append(xl[b][ch][yy][xc])
                            if -pt <= yy < h + pb and -pl <= xc < w + pr:
                                padded += 1
                    if kind == "max":
                        out[b, ch, y, xx] = max(vals) if vals else -math.inf
                    else:
                        out[b, ch, y, xx] = sum(vals) / max(padded if count_include_pad else len(vals), 1)
    return out.astype(x.dtype)


def naive_adaptive(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), np.float64)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                h0, h1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
                for j in range(ow):
                    w0, w1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
                    out[b, ch, i, j] = float(np.sum(x[b, ch, h0:h1, w0:w1], dtype=np.float64)) / ((h1 - h0) * (w1 - w0))
    return out.astype(x.dtype)


# --- softmax ---------------------------------------------------------------------


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize(("shape", "axis"), [(["n", 5], -1), (["n", 4, "m"], 1), (["n", "m"], 0), ([6], 0)])
@pytest.mark.parametrize(("n", "m"), PAIRS)
def test_softmax_values(log: bool, shape: list, axis: int, n: int, m: int) -> None:
    fn = op.nn.log_softmax if log else op.nn.softmax
    (x,), out = run([("x", shape, "float32")], lambda x: fn(x, axis=axis), {"n": n, "m": m})
    assert_close(out, naive_softmax(x, axis, log))


def test_softmax_default_axis_and_shape() -> None:
    v = out_type([("x", ["b", "t", 10], "float32")], lambda x: op.softmax(x))
    assert shape_text(v) == ["b", "t", "10"]
    assert get_spec("softmax").pattern == OPAQUE


# --- norms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axes", "gshape"),
    [(["n", "m", 6], [-1], [6]), (["n", 4, 5], [1, 2], [4, 5]), (["n", 4, 5], [2, 1], [5, 4]), (["n", "m"], [1], ["m"])],
)
@pytest.mark.parametrize(("center", "scale"), [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize(("n", "m"), PAIRS)
def test_layer_norm_values(shape: list, axes: list, gshape: list, center: bool, scale: bool, n: int, m: int) -> None:
    params = [("x", shape, "float32"), ("gamma", gshape, "float32"), ("beta", gshape, "float32")]
    (x, g, b), out = run(params, lambda x, g, b: op.nn.layer_norm(x, g, b, axes=axes, epsilon=1e-3, center=center,
                                                                  scale=scale), {"n": n, "m": m})
    assert_close(out, naive_norm(x, axes, 1e-3, [g if scale else None, b if center else None]))


@pytest.mark.parametrize(("shape", "axes", "wshape"), [(["n", 8], None, [8]), (["n", "m", 3], [1, 2], ["m", 3])])
@pytest.mark.parametrize(("n", "m"), PAIRS)
def test_rms_norm_values(shape: list, axes: list | None, wshape: list, n: int, m: int) -> None:
    kwargs = {} if axes is None else {"axes": axes}
    (x, w), out = run([("x", shape, "float32"), ("w", wshape, "float32")],
                      lambda x, w: op.nn.rms_norm(x, w, **kwargs), {"n": n, "m": m})
    assert_close(out, naive_norm(x, axes or [-1], 1e-5, [w], rms=True))


@pytest.mark.parametrize(("shape", "axis", "c"), [(["n", 3, "h", "h"], 1, 3), (["n", 4], 1, 4), (["n", 5], -1, 5),
                                                   (["n", "h"], 1, "h")])
@pytest.mark.parametrize(("center", "scale"), [(True, True), (False, False)])
@pytest.mark.parametrize(("n", "h"), PAIRS)
def test_batch_norm_values(shape: list, axis: int, c: int | str, center: bool, scale: bool, n: int, h: int) -> None:
    vec = [c]
    params = [("x", shape, "float32")] + [(nm, vec, "float32") for nm in ("gamma", "beta", "mean", "var")]
    var = np.abs(rand(concrete(vec, {"h": h}), seed=9)) + 0.5
    (x, g, b, mu, v), out = run(
        params, lambda x, g, b, mu, v: op.nn.batch_norm(x, g, b, mu, v, axis=axis, epsilon=1e-4, center=center,
                                                        scale=scale),
        {"n": n, "h": h}, inputs={"var": var})
    assert_close(out, naive_batch_norm(x, g, b, mu, v, axis % x.ndim, 1e-4, center, scale))


def test_batch_norm_returns_one_tensor() -> None:
    vec = [("gamma", [3], "float32"), ("beta", [3], "float32"), ("mean", [3], "float32"), ("var", [3], "float32")]
    v = out_type([("x", ["n", 3, "h", "w"], "float32"), *vec], lambda x, *r: op.nn.batch_norm(x, *r))
    assert shape_text(v) == ["n", "3", "h", "w"]


def naive_lrn(x: np.ndarray, size: int, axis: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """ONNX's LRN, one element at a time in float64."""
    moved = np.moveaxis(x.astype(np.float64), axis, -1)
    out = np.empty_like(moved)
    c = moved.shape[-1]
    for idx in np.ndindex(moved.shape):
        *rest, k = idx
        lo, hi = max(0, k - (size - 1) // 2), min(c - 1, k + size - 1 - (size - 1) // 2)
        s = sum(float(moved[(*rest, j)]) ** 2 for j in range(lo, hi + 1))
        out[idx] = moved[idx] / (bias + alpha / size * s) ** beta
    return np.moveaxis(out, -1, axis).astype(x.dtype)


@pytest.mark.parametrize(("shape", "size", "axis", "beta"), [
    (["n", "c", 3, 2], 5, 1, 0.75), (["n", "c", 2, 2], 2, 1, 0.5), (["n", 2, "c"], 4, -1, 0.6),
    (["n", "c"], 1, 1, 1.0), (["n", "c", 1, 1], 7, 1, 0.75)])
@pytest.mark.parametrize(("n", "c"), [*PAIRS, (0, 3), (2, 0)])
def test_local_response_norm_values(shape: list, size: int, axis: int, beta: float, n: int, c: int) -> None:
    (x,), out = run([("x", shape, "float32")],
                    lambda x: op.nn.local_response_norm(x, size=size, axis=axis, alpha=0.4, beta=beta, bias=1.5),
                    {"n": n, "c": c})
    assert out.shape == x.shape
    assert_close(out, naive_lrn(x, size, axis % x.ndim, 0.4, beta, 1.5))


@pytest.mark.parametrize(("kwargs", "dtype", "match"), [
    ({"size": 0}, "float32", "size must be >= 1"), ({"size": 3, "axis": 4}, "float32", "axis"),
    ({"size": 3}, "int32", "floating-point")])
def test_local_response_norm_rejects(kwargs: dict, dtype: str, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_type([("x", ["n", 3, 4, 4], dtype)], lambda x: op.nn.local_response_norm(x, **kwargs))

# --- conv2d ---------------------------------------------------------------------------

CONV_CASES = [
    # data shape, weight shape, kwargs
    (["n", 3, "h", "h"], [4, 3, 3, 3], {"padding": 1}),
    (["n", 3, "h + 2", "h + 4"], [4, 3, 3, 3], {}),
    (["n", 2, "h", "h + 1"], [3, 2, 3, 2], {"strides": 2, "padding": (1, 2)}),
    (["n", 2, "h + 3", "h"], [4, 2, 3, 3], {"strides": (1, 2), "padding": (1, 2, 0, 3), "dilation": 2}),
    (["n", 4, "h + 2", "h + 2"], [6, 2, 3, 3], {"groups": 2}),
    (["n", 3, "h", "h"], [6, 1, 3, 3], {"groups": 3, "padding": 1, "strides": 2}),
    (["n", 3, "h", "h"], [5, 3, 1, 1], {"strides": 2}),
    (["n", 2, "h + 1", "h + 1"], ["o", 2, 2, 2], {}),
]


@pytest.mark.parametrize(("dshape", "wshape", "kwargs"), CONV_CASES)
@pytest.mark.parametrize(("n", "h"), PAIRS)
def test_conv2d_values(dshape: list, wshape: list, kwargs: dict, n: int, h: int) -> None:
    params = [("x", dshape, "float32"), ("w", wshape, "float32")]
    (x, w), out = run(params, lambda x, w: op.nn.conv2d(x, w, **kwargs), {"n": n, "h": h, "o": 3})
    expect = naive_conv2d(x, w, kwargs.get("strides", 1), kwargs.get("padding", 0), kwargs.get("dilation", 1),
                          kwargs.get("groups", 1), "float32")
    assert_close(out, expect)


@pytest.mark.parametrize("n", SIZES)
def test_conv2d_int8_out_dtype(n: int) -> None:
    params = [("x", ["n", 2, 5, 5], "int8"), ("w", [3, 2, 3, 3], "int8")]
    module = build(params, lambda x, w: op.nn.conv2d(x, w, padding=1, out_dtype="int32"))
    x, w = rand((n, 2, 5, 5), "int8", 1) * 20, rand((3, 2, 3, 3), "int8", 2) * 20  # products overflow int8
    out = rx.evaluate(roundtrip(module), "main", x.astype(np.int8), w.astype(np.int8))
    assert_close(out, naive_conv2d(x.astype(np.int8), w.astype(np.int8), 1, 1, 1, 1, "int32"))


def test_conv2d_symbolic_shapes() -> None:
    v = out_type([("x", ["n", 3, "h", "w"], "float32"), ("w", [8, 3, 3, 3], "float32")],
                 lambda x, w: op.nn.conv2d(x, w, strides=2, padding=1))
    assert shape_text(v) == ["n", "8", "(h - 1) floordiv 2 + 1", "(w - 1) floordiv 2 + 1"]
    v = out_type([("x", ["n", 3, "h", "w"], "float32"), ("w", ["o", 3, "kh", "kw"], "float32")],
                 lambda x, w: op.nn.conv2d(x, w, padding=(1, 2, 3, 4), dilation=(2, 3)))
    assert dims_equal(v.type.sym_shape[2], parse_dim_text("h + 6 - 2*kh"))
    assert dims_equal(v.type.sym_shape[3], parse_dim_text("w + 9 - 3*kw"))
    assert v.type.sym_shape[1] == sym("o")
    v = out_type([("x", ["n", 3, "h", "h"], "float32"), ("w", [8, 3, 3, 3], "float32")],
                 lambda x, w: op.nn.conv2d(x, w, padding=1))
    assert shape_text(v) == ["n", "8", "h", "h"]
    assert get_spec("conv2d").pattern == OUT_FUSIBLE


def test_conv2d_symbolic_channels_are_checked_at_run_time() -> None:
    module = build([("x", ["n", "c", 4, 4], "float32"), ("w", [2, 3, 1, 1], "float32")],
                   lambda x, w: op.nn.conv2d(x, w))
    again = roundtrip(module)
    w = rand((2, 3, 1, 1))
    assert rx.evaluate(again, "main", rand((1, 3, 4, 4)), w).shape == (1, 2, 4, 4)
    with pytest.raises(rx.ShapeError, match=r"relax.conv2d.*in-channels.*c = 4"):
        rx.evaluate(again, "main", rand((1, 4, 4, 4)), w)


def test_conv2d_symbolic_out_channels_must_divide_groups_at_run_time() -> None:
    module = build([("x", ["n", 4, 3, 3], "float32"), ("w", ["o", 2, 1, 1], "float32")],
                   lambda x, w: op.nn.conv2d(x, w, groups=2))
    again = roundtrip(module)
    assert rx.evaluate(again, "main", rand((1, 4, 3, 3)), rand((4, 2, 1, 1))).shape == (1, 4, 3, 3)
    with pytest.raises(rx.ShapeError, match=r"out-channels o mod groups 2"):
        rx.evaluate(again, "main", rand((1, 4, 3, 3)), rand((3, 2, 1, 1)))


def test_conv2d_too_small_symbolic_input_is_a_run_time_error() -> None:
    module = build([("x", ["n", 1, "h", "h"], "float32"), ("w", [1, 1, 3, 3], "float32")],
                   lambda x, w: op.nn.conv2d(x, w))
    assert shape_text(out_type([("x", ["n", 1, "h", "h"], "float32"), ("w", [1, 1, 3, 3], "float32")],
                               lambda x, w: op.nn.conv2d(x, w))) == ["n", "1", "h - 2", "h - 2"]
    again = roundtrip(module)
    assert rx.evaluate(again, "main", rand((1, 1, 3, 3)), rand((1, 1, 3, 3))).shape == (1, 1, 1, 1)
    assert rx.evaluate(again, "main", rand((1, 1, 2, 2)), rand((1, 1, 3, 3))).shape == (1, 1, 0, 0)  # empty
    with pytest.raises(rx.ShapeError, match=r"relax.conv2d.*output height h - 2 must be >= 0.*h=1"):
        rx.evaluate(again, "main", rand((1, 1, 1, 1)), rand((1, 1, 3, 3)))


@pytest.mark.parametrize(
    ("dshape", "wshape", "kwargs", "match"),
    [
        ([1, 3, 8, 8], [4, 2, 3, 3], {}, r"relax.conv2d: data in-channels.*weight in-channels.*3 vs 2"),
        ([1, 4, 8, 8], [4, 3, 3, 3], {"groups": 2}, r"in-channels.*groups 2: 4 vs 6"),
        ([1, 4, 8, 8], [3, 2, 3, 3], {"groups": 2}, r"out-channels 3 \(dim 0\) is not divisible by groups 2"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"data_layout": "NCWH"}, r"data_layout 'NCWH' is not supported, only 'NCHW' or 'NHWC'"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"kernel_layout": "HWIO"}, r"kernel_layout 'HWIO' is not supported"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"padding": (1, 1, 1)}, r"padding must have 1, 2 or 4 ints.*got 3"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"padding": -1}, r"padding must be >= 0"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"strides": (1, 1, 1)}, r"strides must have 1 or 2 ints"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"strides": 0}, r"strides must be >= 1"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"dilation": (1, 0)}, r"dilation must be >= 1"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"groups": 0}, r"groups must be >= 1"),
        (["n", 3, 8], [4, 3, 3, 3], {}, r"data must have rank 4 \(NCHW\), got rank 3"),
        (["n", 3, 8, 8], [4, 3, 3], {}, r"weight must have rank 4 \(OIHW\)"),
        (["n", 3, 1, 8], [4, 3, 3, 3], {}, r"output height would be -1.*padded input extent 1.*dilated window 3"),
        (["n", 3, 7, 8], [4, 3, 3, 3], {"dilation": 4}, r"output height would be -1"),
        (["n", 3, 8, 8], [4, 3, 3, 3], {"out_dtype": "complex"}, r"out_dtype: unsupported dtype"),
    ],
)
def test_conv2d_errors(dshape: list, wshape: list, kwargs: dict, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_type([("x", dshape, "float32"), ("w", wshape, "float32")], lambda x, w: op.nn.conv2d(x, w, **kwargs))


def test_conv2d_dtype_mismatch_needs_out_dtype() -> None:
    params = [("x", ["n", 3, 8, 8], "float32"), ("w", [4, 3, 3, 3], "float64")]
    with pytest.raises(rx.ShapeError, match=r"data dtype float32 and weight dtype float64 differ"):
        out_type(params, lambda x, w: op.nn.conv2d(x, w))
    assert out_type(params, lambda x, w: op.nn.conv2d(x, w, out_dtype="float64")).dtype == "float64"


# --- pooling ---------------------------------------------------------------------------

POOL_CASES = [
    # spatial dims (symbol h), kwargs
    (["h + 1", "h + 1"], {"pool_size": 2, "strides": 2}),
    (["h", "h + 2"], {"pool_size": 3, "strides": 2, "padding": 1}),
    (["h", "h"], {"pool_size": (3, 2), "strides": (2, 1), "padding": (1, 0, 2, 1)}),
    (["h + 1", "h + 2"], {"pool_size": 3, "strides": 2, "ceil_mode": True}),
    (["h + 1", "h"], {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}),
    (["h + 1", "h + 3"], {"pool_size": 3, "strides": 3, "padding": (0, 1), "ceil_mode": True}),
    (["h", "h + 1"], {"pool_size": 2, "strides": 2, "padding": 1, "ceil_mode": True}),  # drops a last window
    (["h", "h + 1"], {"pool_size": 2, "strides": 3, "padding": (3, 0), "ceil_mode": True}),  # general ceil form
    (["h + 2", "h + 2"], {"pool_size": 2, "dilation": 2, "padding": (0, 1)}),
    (["h", "h"], {}),
]


@pytest.mark.parametrize(("kind", "count_include_pad"), [("max", False), ("avg", False), ("avg", True)])
@pytest.mark.parametrize(("spatial", "kwargs"), POOL_CASES)
@pytest.mark.parametrize(("n", "h"), PAIRS)
def test_pool2d_values(kind: str, count_include_pad: bool, spatial: list, kwargs: dict, n: int, h: int) -> None:
    fn = op.nn.max_pool2d if kind == "max" else op.nn.avg_pool2d
    (x,), out = run([("x", ["n", 2, *spatial], "float32")],
                    lambda x: fn(x, count_include_pad=count_include_pad, **kwargs), {"n": n, "h": h})
    expect = naive_pool(x, kind, kwargs.get("pool_size", 1), kwargs.get("strides", 1), kwargs.get("padding", 0),
                        kwargs.get("dilation", 1), kwargs.get("ceil_mode", False), count_include_pad)
    assert_close(out, expect)


def test_max_pool2d_int_pads_with_dtype_minimum() -> None:
    module = build([("x", ["n", 1, 3, 3], "int32")], lambda x: op.nn.max_pool2d(x, pool_size=3, padding=1))
    x = -np.arange(9, dtype=np.int32).reshape(1, 1, 3, 3) - 100
    out = rx.evaluate(roundtrip(module), "main", x)
    assert_close(out, naive_pool(x.astype(np.float64), "max", 3, 1, 1, 1, False, False).astype(np.int32))


def test_max_pool2d_symbolic_shape() -> None:
    v = out_type([("x", ["n", 16, "k", "k"], "float32")], lambda x: op.nn.max_pool2d(x, pool_size=(2, 2), strides=(2, 2)))
    k = sym("k")
    assert v.type.sym_shape[:2] == (sym("n"), 16)
    assert all(dims_equal(d, floordiv(k, 2)) for d in v.type.sym_shape[2:])
    assert shape_text(v) == ["n", "16", "k floordiv 2", "k floordiv 2"]
    v = out_type([("x", ["n", 16, "k", "k"], "float32")],
                 lambda x: op.nn.avg_pool2d(x, pool_size=3, strides=2, padding=1, ceil_mode=True))
    assert shape_text(v)[2:] == ["(k - 1) ceildiv 2 + 1"] * 2
    v = out_type([("x", ["n", 16, "k", "k"], "float32")], lambda x: op.nn.max_pool2d(x, pool_size=3, padding=1))
    assert shape_text(v)[2:] == ["k", "k"]


def test_pool2d_ceil_mode_drops_a_window_starting_in_the_padding() -> None:
    """As TVM and PyTorch: 5 rows padded by 1 on each side, 2x2 stride 2: ceildiv gives 4
    windows, but the 4th would start in the bottom padding, so 3."""
    v = out_type([("x", ["n", 3, 5, 6], "float32")],
                 lambda x: op.nn.max_pool2d(x, pool_size=2, strides=2, padding=1, ceil_mode=True))
    assert shape_text(v) == ["n", "3", "3", "4"]
    v = out_type([("x", ["n", 3, "h", "h"], "float32")],
                 lambda x: op.nn.avg_pool2d(x, pool_size=2, strides=2, padding=1, ceil_mode=True))
    h = sym("h")
    for value in range(1, 9):
        assert evaluate_dim(v.type.sym_shape[2], {h: value}) == extent(value, 2, 2, 1, 1, 1, True)
    assert shape_text(v)[2] == "h floordiv 2 + 1"
    # padding larger than the window (degenerate, but allowed as in TVM): the general form
    v = out_type([("x", ["n", 3, "h", "h"], "float32")],
                 lambda x: op.nn.max_pool2d(x, pool_size=2, strides=3, padding=3, ceil_mode=True))
    assert shape_text(v)[2].startswith("min(")
    for value in range(1, 12):
        assert evaluate_dim(v.type.sym_shape[2], {h: value}) == extent(value, 2, 3, 1, 3, 3, True)
    assert get_spec("max_pool2d").pattern == OUT_FUSIBLE


def test_max_pool2d_too_small_input_is_a_run_time_error() -> None:
    module = build([("x", ["n", 16, "k", "k"], "float32")], lambda x: op.nn.max_pool2d(x, pool_size=3, strides=1))
    with pytest.raises(rx.ShapeError, match=r"relax.max_pool2d.*output height k - 2 must be >= 0.*k=1"):
        rx.evaluate(roundtrip(module), "main", rand((2, 16, 1, 1)))
    assert rx.evaluate(roundtrip(module), "main", rand((2, 16, 2, 2))).shape == (2, 16, 0, 0)  # empty


@pytest.mark.parametrize(
    ("shape", "kwargs", "match"),
    [
        (["n", 3, 8, 8], {"layout": "CHWN"}, r"relax.max_pool2d: layout 'CHWN' is not supported, only 'NCHW' or 'NHWC'"),
        (["n", 3, 8, 8], {"padding": (1, 1, 1, 1, 1)}, r"padding must have 1, 2 or 4 ints.*got 5"),
        (["n", 3, 8, 8], {"pool_size": (2, 2, 2)}, r"pool_size must have 1 or 2 ints"),
        (["n", 3, 8, 8], {"pool_size": 0}, r"pool_size must be >= 1"),
        (["n", 3, 1, 1], {"pool_size": 3}, r"output height would be -1"),
        (["n", 3, 8], {}, r"data must have rank 4"),
    ],
)
def test_pool2d_errors(shape: list, kwargs: dict, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_type([("x", shape, "float32")], lambda x: op.nn.max_pool2d(x, **kwargs))
    with pytest.raises(rx.ShapeError, match=match.replace("max_pool2d", "avg_pool2d")):
        out_type([("x", shape, "float32")], lambda x: op.nn.avg_pool2d(x, **kwargs))


def test_avg_pool2d_rejects_bool() -> None:
    with pytest.raises(rx.ShapeError, match=r"relax.avg_pool2d: data must be numeric, got bool"):
        out_type([("x", ["n", 3, 4, 4], "bool")], lambda x: op.nn.avg_pool2d(x))


# --- adaptive_avg_pool2d -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spatial", "output_size", "expect"),
    [
        (["h", "h + 1"], 1, (1, 1)),
        (["h", "h + 1"], (1, 1), (1, 1)),
        (["h", "h"], None, None),
        ([4, 6], (2, 3), (2, 3)),
        (["h", 6], (1, 3), (1, 3)),
        ([4, "h"], (4, 1), (4, 1)),
        ([5, 7], (3, 4), (3, 4)),
        (["h", "h + 2"], (2, 3), (2, 3)),
        ([2, "h"], (4, 5), (4, 5)),
    ],
)
@pytest.mark.parametrize(("n", "h"), PAIRS)
def test_adaptive_avg_pool2d_values(spatial: list, output_size: Any, expect: tuple | None, n: int, h: int) -> None:
    (x,), out = run([("x", ["n", 3, *spatial], "float32")],
                    lambda x: op.nn.adaptive_avg_pool2d(x, output_size=output_size), {"n": n, "h": h})
    oh, ow = expect if expect is not None else x.shape[2:]
    assert_close(out, naive_adaptive(x, oh, ow))


def test_adaptive_avg_pool2d_shapes_and_errors() -> None:
    v = out_type([("x", ["n", 512, "h", "w"], "float32")], lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(1, 1)))
    assert shape_text(v) == ["n", "512", "1", "1"]
    v = out_type([("x", ["n", 512, "h", "w"], "float32")], lambda x: op.nn.adaptive_avg_pool2d(x))
    assert shape_text(v) == ["n", "512", "h", "w"]
    v = out_type([("x", ["n", 3, "h", 4], "float32")], lambda x: op.nn.adaptive_avg_pool2d(x, output_size=2))
    assert shape_text(v) == ["n", "3", "2", "2"]
    v = out_type([("x", ["n", 3, 4, 6], "float32")], lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(2, 4)))
    assert shape_text(v) == ["n", "3", "2", "4"]
    with pytest.raises(rx.ShapeError, match=r"relax.adaptive_avg_pool2d: output_size must be >= 1, got \(0, 2\)"):
        out_type([("x", ["n", 3, 4, 6], "float32")], lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(0, 2)))
    with pytest.raises(rx.ShapeError, match=r"layout 'NHWC' is not supported"):
        out_type([("x", ["n", 3, 4, 6], "float32")], lambda x: op.nn.adaptive_avg_pool2d(x, 1, layout="NHWC"))


def test_adaptive_reference_handles_uneven_windows() -> None:
    """The reference implements TVM's general windows (uneven, overlapping)."""
    x = rand((2, 3, 5, 7))
    out = get_spec("adaptive_avg_pool2d").reference(x, output_size=(3, 4), layout="NCHW")
    assert_close(out, naive_adaptive(x, 3, 4))


# --- norm / softmax errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build_fn", "match"),
    [
        (lambda: out_type([("x", ["n", 4], "int32")], lambda x: op.nn.softmax(x)),
         r"relax.softmax: data must have a floating-point dtype, got int32"),
        (lambda: out_type([("x", ["n", 4], "float32")], lambda x: op.nn.log_softmax(x, axis=2)),
         r"relax.log_softmax: axis 2 is out of range for rank 2"),
        (lambda: out_type([("x", ["n", 4], "float32"), ("g", [5], "float32"), ("b", [4], "float32")],
                          lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1])),
         r"relax.layer_norm: gamma dim 0 vs data dim 1: 5 vs 4 are different"),
        (lambda: out_type([("x", ["n", 4], "float32"), ("g", [4], "float32"), ("b", [4, 1], "float32")],
                          lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[1])),
         r"relax.layer_norm: beta must have rank 1"),
        (lambda: out_type([("x", ["n", 4], "float32"), ("g", [4], "float16"), ("b", [4], "float32")],
                          lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[1])),
         r"gamma has dtype float16 but data has float32"),
        (lambda: out_type([("x", ["n", 4], "float32"), ("g", [4], "float32"), ("b", [4], "float32")],
                          lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[1, -1])),
         r"repeats an axis"),
        (lambda: out_type([("x", ["n", "m"], "float32"), ("w", ["m + 1"], "float32")],
                          lambda x, w: op.nn.rms_norm(x, w)),
         r"relax.rms_norm: weight dim 0 vs data dim 1: m \+ 1 vs m are different"),
        (lambda: out_type([("x", ["n", 3, 4, 4], "float32")] + [(k, [4], "float32") for k in "gbmv"],
                          lambda x, *r: op.nn.batch_norm(x, *r)),
         r"relax.batch_norm: gamma dim 0 vs data channel dim 1: 4 vs 3 are different"),
        (lambda: out_type([("x", ["n", 3, 4, 4], "float32")] + [(k, [3, 1], "float32") for k in "gbmv"],
                          lambda x, *r: op.nn.batch_norm(x, *r)),
         r"relax.batch_norm: gamma must have rank 1"),
    ],
)
def test_norm_and_softmax_errors(build_fn: Callable[[], Any], match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        build_fn()


def test_layer_norm_requires_axes() -> None:
    with pytest.raises(rx.RelaxError, match=r"relax.layer_norm.*axes.*required"):
        out_type([("x", ["n", 4], "float32"), ("g", [4], "float32"), ("b", [4], "float32")],
                 lambda x, g, b: op.nn.layer_norm(x, g, b))


def test_symbolic_norm_dims_become_run_time_checks() -> None:
    module = build([("x", ["n", "m"], "float32"), ("w", ["k"], "float32")], lambda x, w: op.nn.rms_norm(x, w))
    again = roundtrip(module)
    assert rx.evaluate(again, "main", rand((2, 3)), rand((3,))).shape == (2, 3)
    with pytest.raises(rx.ShapeError, match=r"relax.rms_norm.*weight dim 0 vs data dim 1"):
        rx.evaluate(again, "main", rand((2, 3)), rand((4,)))


def test_textual_ir_with_a_wrong_result_shape_is_rejected() -> None:
    module = build([("x", ["n", 16, "k", "k"], "float32")], lambda x: op.nn.max_pool2d(x, pool_size=2, strides=2))
    text = rx.print_module(module)
    bad = text.replace("!relax.tensor<[n, 16, k floordiv 2, k floordiv 2], f32>",
                       "!relax.tensor<[n, 16, k, k floordiv 2], f32>")
    assert bad != text
    with pytest.raises(rx.IRParseError, match=r"relax.max_pool2d: result type .* differs from the deduced"):
        rx.parse_module(bad)


def test_local_response_norm_empty_on_every_target() -> None:
    """No channels, or no batch: an empty result on C and the interpreter, as the reference."""
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.nn.local_response_norm(fb.param("x", ["n", "c", 2, 2], "float32"), size=3))
    for target in ("c", "interp"):
        exe = rx.compile(fb.module, target=target)
        for shape in ((2, 0, 2, 2), (0, 3, 2, 2), (1, 1, 2, 2)):
            x = rand(shape)
            assert_close(exe.main(x), rx.evaluate(fb.module, "main", x))


@pytest.mark.parametrize("channels", ["c", 3])
@pytest.mark.parametrize("size", [17, 2**40, 2**62])
def test_local_response_norm_window_wider_than_the_channels(channels: str | int, size: int) -> None:
    """A hostile size costs what the channels cost (the taps beyond them are
    zeros): the evaluator does not pad the channel axis by size (a 16 TiB
    MemoryError at 2**40), and the loops do not run size taps per element."""
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.nn.local_response_norm(fb.param("x", ["n", channels, 2, 3], "float32"), size=size, alpha=0.5,
                                         beta=0.75, bias=2.0))
    exes = [rx.compile(fb.module, target=t) for t in ("c", "interp")]
    for shape in ((2, 3, 2, 3), (1, 1, 2, 3)) if channels == "c" else ((2, 3, 2, 3),):
        x = rand(shape)
        # naive_lrn's window, clipped to the channels, is size-independent beyond them
        want = naive_lrn(x, min(size, 2 * shape[1] + 1), 1, 0.5 * min(size, 2 * shape[1] + 1) / size, 0.75, 2.0)
        assert_close(rx.evaluate(fb.module, "main", x), want)
        for exe in exes:
            assert_close(exe.main(x), want)
