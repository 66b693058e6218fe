"""The reduction op family (sum, mean, max, min, prod, variance, argmax,
argmin): shape deduction over symbolic dims and its errors, values against
loop computations written here, and every op at every level."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand, roundtrip
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import REDUCTION, get_spec
from relax_xdsl.shape import dim_to_str

PAIRS = list(zip(SIZES, reversed(SIZES)))
REDUCE_OPS = ("sum", "mean", "max", "min", "prod", "variance")
ARG_OPS = ("argmax", "argmin")


# --- helpers ------------------------------------------------------------------


def build(shape: Sequence[int | str], dtype: str, body: Callable[[rx.Var], rx.Var]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(body(fb.param("x", shape, dtype)))
    return fb.module


def out_type(shape: Sequence[int | str], dtype: str, body: Callable[[rx.Var], rx.Var]) -> rx.Var:
    with rx.FunctionBuilder("main") as fb:
        return body(fb.param("x", shape, dtype))


def shape_text(v: rx.Var) -> list[str]:
    return [dim_to_str(d) for d in v.type.sym_shape]


def naive_reduce(x: np.ndarray, axis: int | Sequence[int] | None, keepdims: bool,
                 fold: Callable[[list[Any]], Any], dtype: str) -> np.ndarray:
    """Groups the elements of x by their index outside the reduced axes and folds each group."""
    axes = set(range(x.ndim)) if axis is None else {a % x.ndim for a in ([axis] if isinstance(axis, int) else axis)}
    kept = [a for a in range(x.ndim) if a not in axes]
    out_shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim)) if keepdims else \
        tuple(x.shape[a] for a in kept)
    groups: dict[tuple[int, ...], list[Any]] = {}
    for idx in itertools.product(*(range(s) for s in x.shape)):
        key = tuple(0 if a in axes else idx[a] for a in range(x.ndim)) if keepdims else tuple(idx[a] for a in kept)
        groups.setdefault(key, []).append(x[idx].item())
    out = np.empty(out_shape, dtype)
    for key, vals in groups.items():
        out[key] = fold(vals)
    return out


def wrap(v: int, dtype: str) -> int:
    bits = np.dtype(dtype).itemsize * 8
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def fold_for(name: str, dtype: str) -> Callable[[list[Any]], Any]:
    """The reduction as a Python fold over one group (exact, in float64 or Python ints)."""
    is_int = dtype.startswith("int")

    def mean(v: list[float]) -> float:
        return math.fsum(v) / len(v)

    if name == "sum":
        return (lambda v: wrap(sum(v), dtype)) if is_int else math.fsum
    if name == "prod":
        return (lambda v: wrap(math.prod(v), dtype)) if is_int else math.prod
    if name == "mean":
        return mean
    if name == "variance":
        return lambda v: math.fsum((e - mean(v)) ** 2 for e in v) / len(v)
    if name in ("max", "min"):
        pick = max if name == "max" else min
        return lambda v: math.nan if any(e != e for e in v) else pick(v)
    if name in ("argmax", "argmin"):
        sign = 1 if name == "argmax" else -1

        def arg(v: list[Any]) -> int:
            nans = [i for i, e in enumerate(v) if e != e]
            if nans:
                return nans[0]
            best = max(sign * e for e in v)
            return next(i for i, e in enumerate(v) if sign * e == best)

        return arg
    raise AssertionError(name)


def gen(dtype: str, name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random inputs; floats are multiples of 1/8 so that sums are exact in
    any order (a sequential float32 loop and numpy's pairwise sum agree)."""
    x = rand(shape, dtype, seed)
    if dtype.startswith("float"):
        x = np.round(x * (1 if name in ("max", "min", "argmax", "argmin") else 8)) / 8  # integers: ties
        if name == "prod":
            x = 1.0 + x / 8  # products of up to 147 terms stay near 1
    return x.astype(dtype)


# --- shape rules ---------------------------------------------------------------------


@pytest.mark.parametrize("name", REDUCE_OPS)
def test_reduce_shapes(name: str) -> None:
    fn = getattr(op, name)
    x = ["n", "2*m", 4]
    assert shape_text(out_type(x, "float32", lambda v: fn(v, axis=1))) == ["n", "4"]
    assert shape_text(out_type(x, "float32", lambda v: fn(v, axis=[-1, 0], keepdims=True))) == ["1", "2*m", "1"]
    assert shape_text(out_type(x, "float32", lambda v: fn(v))) == []
    assert shape_text(out_type(x, "float32", lambda v: fn(v, keepdims=True))) == ["1", "1", "1"]
    assert shape_text(out_type(x, "float32", lambda v: fn(v, axis=[]))) == ["n", "2*m", "4"]
    assert shape_text(out_type([], "float32", lambda v: fn(v))) == []
    assert out_type(x, "float32", lambda v: fn(v, axis=0)).dtype == "float32"
    assert get_spec(name).pattern == REDUCTION


@pytest.mark.parametrize("name", ARG_OPS)
def test_arg_shapes(name: str) -> None:
    fn = getattr(op, name)
    x = ["n", "m + 1", 4]
    v = out_type(x, "float32", lambda v: fn(v, axis=1))
    assert shape_text(v) == ["n", "4"] and v.dtype == "int64"
    assert shape_text(out_type(x, "float32", lambda v: fn(v, axis=-1, keepdims=True))) == ["n", "m + 1", "1"]
    assert shape_text(out_type(x, "int32", lambda v: fn(v))) == []
    assert shape_text(out_type(x, "bool", lambda v: fn(v, keepdims=True))) == ["1", "1", "1"]
    assert get_spec(name).pattern == REDUCTION


@pytest.mark.parametrize(
    ("shape", "dtype", "body", "match"),
    [
        (["n", 4], "float32", lambda v: op.sum(v, axis=2), r"relax.sum: axis 2 is out of range for rank 2"),
        (["n", 4], "float32", lambda v: op.max(v, axis=[-3]), r"relax.max: axis -3 is out of range for rank 2"),
        (["n", 4, 5], "float32", lambda v: op.mean(v, axis=[1, -2]), r"relax.mean: axis \(1, -2\) repeats an axis"),
        ([], "float32", lambda v: op.prod(v, axis=0), r"relax.prod: axis \(0,\) is out of range for a rank-0"),
        (["n"], "int32", lambda v: op.mean(v), r"relax.mean: x has dtype int32, but mean takes float tensors"),
        (["n"], "int32", lambda v: op.variance(v), r"relax.variance: x has dtype int32"),
        (["n"], "bool", lambda v: op.sum(v), r"relax.sum: x has dtype bool, but sum takes int or float tensors"),
        (["n", 4], "float32", lambda v: op.argmax(v, axis=2), r"relax.argmax: axis 2 is out of range for rank 2"),
        ([], "float32", lambda v: op.argmin(v, axis=0), r"relax.argmin: axis 0 is out of range for a rank-0"),
        (["n", 4], "float32", lambda v: op.argmax(v, axis=[0]), r"relax.argmax: parameter axis: expected an int"),
    ],
)
def test_errors(shape: list, dtype: str, body: Callable, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_type(shape, dtype, body)


# --- values ------------------------------------------------------------------------------

AXES: list[Any] = [None, 1, [0, 2], [-1], []]
DTYPES = {"sum": ("float32", "int32"), "prod": ("float32", "int64"), "max": ("float32", "int32", "bool"),
          "min": ("float32", "int8", "bool"), "mean": ("float32", "float64"), "variance": ("float32", "float64"),
          "argmax": ("float32", "int32", "bool"), "argmin": ("float32", "int64", "bool")}
SHAPE = ["n", 3, "m"]


def _inputs(name: str, dtype: str) -> list[tuple[np.ndarray]]:
    return [(gen(dtype, name, (n, 3, m), 11 * n + m),) for n, m in PAIRS]


def _arg_axes() -> list[Any]:
    return [None, 0, 1, -1]


def _value_cases() -> list[tuple[str, str, Any, bool]]:
    return [(name, dtype, axis, keepdims) for name in REDUCE_OPS + ARG_OPS for dtype in DTYPES[name]
            for axis in (_arg_axes() if name in ARG_OPS else AXES) for keepdims in (False, True)]


@pytest.mark.parametrize(("name", "dtype", "axis", "keepdims"), _value_cases())
def test_values(name: str, dtype: str, axis: Any, keepdims: bool) -> None:
    module = roundtrip(build(SHAPE, dtype, lambda v: getattr(op, name)(v, axis=axis, keepdims=keepdims)))
    out_dtype = "int64" if name in ARG_OPS else dtype
    for (x,) in _inputs(name, dtype):
        expect = naive_reduce(x, axis, keepdims, fold_for(name, dtype), out_dtype)
        assert_close(rx.evaluate(module, "main", x), expect)


def test_max_min_argmax_propagate_nan_and_pick_first() -> None:
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, -1.0]], np.float32)
    module = build([2, 4], "float32", lambda v: rx.FunctionBuilder.current().tuple(
        op.max(v, axis=1), op.min(v, axis=1), op.argmax(v, axis=1), op.argmin(v, axis=1), op.argmax(v)))
    got = rx.evaluate(module, "main", x)
    expect = (np.array([np.nan, 5.0], np.float32), np.array([np.nan, -1.0], np.float32),
              np.array([1, 1], np.int64), np.array([1, 3], np.int64), np.array(1, np.int64))
    assert_close(got, expect)
    check_levels(module, [(x,)])


# --- levels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dtype"), [(name, dtype) for name in REDUCE_OPS + ARG_OPS for dtype in DTYPES[name]])
def test_levels(name: str, dtype: str) -> None:
    """Every axis form of one op and dtype in one function (one compile per target)."""
    fn = getattr(op, name)
    axes = _arg_axes() if name in ARG_OPS else AXES

    def body(v: rx.Var) -> rx.Var:
        outs = [fn(v, axis=a, keepdims=k) for a in axes for k in (False, True)]
        return rx.FunctionBuilder.current().tuple(*outs)

    check_levels(build(SHAPE, dtype, body), _inputs(name, dtype))


def test_scalar_input_levels() -> None:
    def body(v: rx.Var) -> rx.Var:
        return rx.FunctionBuilder.current().tuple(op.sum(v), op.variance(v), op.argmax(v), op.max(v, keepdims=True))

    module = build([], "float32", body)
    x = np.array(2.5, np.float32)
    expect = (x, np.array(0.0, np.float32), np.array(0, np.int64), x)
    assert_close(rx.evaluate(module, "main", x), expect)
    check_levels(module, [(x,)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vectorized_row_max_min_propagate_nan(dtype: str) -> None:
    """Long rows take the vectorized (omp simd reduction) max / min in C: a
    NaN anywhere in a row, first or last lane included, still wins."""
    rows = np.random.default_rng(0).standard_normal((7, 70)).astype(dtype)
    for r, col in ((0, 0), (1, 35), (2, 69), (3, 16)):
        rows[r, col] = np.nan
    rows[4] = -np.inf
    rows[5] = np.nan
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", "m"], dtype)
        fb.ret(fb.tuple(op.max(x, axis=1), op.min(x, axis=1)))
    exe = rx.compile(fb.module, target="c")
    suffix = "f" if dtype == "float32" else ""
    assert f"simd reduction(rxr_maxf{suffix}:" in exe.c_source and f"simd reduction(rxr_minf{suffix}:" in exe.c_source
    for n in (1, 7):
        got = exe.main(rows[:n])
        np.testing.assert_array_equal(got[0], rows[:n].max(axis=1))
        np.testing.assert_array_equal(got[1], rows[:n].min(axis=1))
