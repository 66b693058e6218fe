"""Element types beyond the original seven: int16, uint8..uint64 (unsigned
semantics for comparison, division, max / min, shifts and casts), float64
where it was missing, and bfloat16 (ml_dtypes arrays; 16-bit storage,
computed in float32 with each result rounded). Each op is checked at every
level (evaluator, the legalized module, the interpreter, C with the default
and the fast pipeline) on symbolic shapes bound to several sizes including 1,
with edge values (0, the maximum, unsigned values above the signed maximum)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from util import SIZES, roundtrip
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op

ml_dtypes = pytest.importorskip("ml_dtypes")

INTS = ("int16", "uint8", "uint16", "uint32", "uint64")
NEW = (*INTS, "bfloat16")
ALL = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "bfloat16",
       "float32", "float64")


def np_dtype(dtype: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)


def edge_values(dtype: str, n: int, seed: int = 0) -> np.ndarray:
    """n values of dtype starting with its edges: 0, 1, the maximum, values
    above the signed maximum (unsigned), the minimum (signed), then random."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(n) > 0.5
    dt = np_dtype(dtype)
    if dtype in ("bfloat16", "float16", "float32", "float64"):
        edges = [0.0, 1.0, -2.5, 3.0e4 if dtype == "float16" else 1.0e30, 0.5]
        vals = np.concatenate([np.array(edges), rng.standard_normal(max(n, 5)) * 10])
        return vals[:n].astype(dt)
    info = np.iinfo(dt)
    edges = [0, 1, int(info.max), int(info.max) // 2 + 3 if info.min == 0 else int(info.min), 7]
    rand = rng.integers(int(info.min), int(info.max), size=max(n, 5), dtype=dt, endpoint=True)
    return np.concatenate([np.array(edges, dt), rand])[:n]


def exact(actual: np.ndarray, expected: np.ndarray) -> None:
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if expected.dtype.kind in "fV":  # bit-exact, NaN equal to NaN
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        np.testing.assert_array_equal(np.where(np.isnan(a), 0, a), np.where(np.isnan(e), 0, e))
    else:
        np.testing.assert_array_equal(actual, expected)


def check_all_levels(module: ModuleOp, cases: list[tuple[np.ndarray, ...]], close: bool = False) -> None:
    """Every level against the reference evaluator: the legalized module
    (printed and reparsed), interp, C default and C fast."""
    from relax_xdsl.passes.legalize import legalize_module

    def same(actual: object, expected: np.ndarray) -> None:
        if close:
            a = np.asarray(actual)
            assert a.dtype == expected.dtype
            np.testing.assert_allclose(a.astype(np.float64), expected.astype(np.float64), rtol=1e-2, atol=1e-2)
        else:
            exact(actual, expected)  # type: ignore[arg-type]

    expected = [rx.evaluate(module, "main", *args) for args in cases]
    legal = roundtrip(legalize_module(module.clone()))
    for args, exp in zip(cases, expected):
        same(rx.evaluate(legal, "main", *args), exp)
    for target, pipeline in (("interp", "baseline"), ("c", "baseline"), ("c", "default")):
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for args, exp in zip(cases, expected):
            same(exe["main"](*args), exp)


def unary_module(dtype: str, body: Callable[..., object], shape: list[object] | None = None) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", shape or ["n"], dtype)
        fb.ret(body(x))
    return fb.module


def binary_module(dtype: str, body: Callable[..., object]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], dtype)
        y = fb.param("y", ["n"], dtype)
        fb.ret(body(x, y))
    return fb.module


@pytest.mark.parametrize("dtype", NEW)
def test_binary_arithmetic_and_compare(dtype: str) -> None:
    """add, subtract, multiply, divide, maximum, minimum, compare + where on
    edge values: unsigned values above the signed maximum order above it."""
    module = binary_module(dtype, lambda x, y: op.concat(
        [op.add(x, y), op.subtract(x, y), op.multiply(x, y), op.divide(x, y), op.maximum(x, y), op.minimum(x, y),
         op.where(op.greater(x, y), x, y), op.astype(op.less(x, y), dtype), op.astype(op.equal(x, y), dtype),
         op.astype(op.greater_equal(x, y), dtype)], axis=0))
    cases = [(edge_values(dtype, n, 1), edge_values(dtype, n, 2)[::-1].copy()) for n in (*SIZES, 9)]
    check_all_levels(module, cases)


@pytest.mark.parametrize("dtype", NEW)
def test_reductions(dtype: str) -> None:
    """sum (wrapping in the dtype; bfloat16 accumulates in float32) and max /
    min over a symbolic axis: the unsigned identities are 0 and the maximum."""
    module = unary_module(dtype, lambda x: op.concat([op.sum(x, axis=[1]), op.max(x, axis=[1]), op.min(x, axis=[1])],
                                                     axis=0), ["m", "n"])
    cases = [(edge_values(dtype, 3 * n, n).reshape(3, n),) for n in (*SIZES, 20)]
    check_all_levels(module, cases, close=dtype == "bfloat16")


@pytest.mark.slow
@pytest.mark.parametrize("src", ALL)
def test_astype_to_and_from_every_dtype(src: str) -> None:
    """astype from src to every dtype (floats saturate into integers, NaN
    gives 0, below 0 gives 0 for unsigned types; integers wrap)."""
    targets = [t for t in ALL if t != src]
    module = unary_module(src, lambda x: op.concat([op.astype(op.astype(x, t), "float64") for t in targets], axis=0))
    values = edge_values(src, 9, 3)
    if src in ("bfloat16", "float16", "float32", "float64"):
        values = np.concatenate([values, np.array([np.nan, -np.inf, np.inf, -0.75, 300.5, 70000.0, 5e9],
                                                  np.float64).astype(np_dtype(src))])
    check_all_levels(module, [(values[:n],) for n in (1, 3, len(values))])


@pytest.mark.parametrize("dtype", [d for d in NEW if d != "bfloat16"] + ["bfloat16"])
def test_matmul(dtype: str) -> None:
    """matmul wraps in integer dtypes; bfloat16 accumulates in float32."""
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n", 5], dtype)
        b = fb.param("b", [5, "m"], dtype)
        fb.ret(op.matmul(a, b))
    cases = [(edge_values(dtype, 5 * n, n).reshape(n, 5), edge_values(dtype, 5 * m, m + 9).reshape(5, m))
             for n, m in ((1, 1), (3, 7), (7, 3))]
    check_all_levels(fb.module, cases, close=dtype == "bfloat16")


@pytest.mark.parametrize("dtype", NEW)
def test_take_concat_reshape(dtype: str) -> None:
    """Data movement keeps every bit (bfloat16 NaN payloads aside)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2], dtype)
        i = fb.param("i", ["k"], "int64")
        t = op.take(x, i, axis=0)
        fb.ret(op.reshape(op.concat([t, x], axis=0), [-1]))
    cases = [(edge_values(dtype, 2 * n, n).reshape(n, 2), np.array([0, n - 1, -1][:k], np.int64)) for n, k in
             ((1, 1), (3, 3), (7, 2))]
    check_all_levels(fb.module, cases)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_unsigned_index_above_signed_max_is_out_of_range(dtype: str) -> None:
    """take with unsigned indices: the maximum is read as unsigned (far out of
    range: a BoundsError), never as -1 (the last row)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        i = fb.param("i", [1], dtype)
        fb.ret(op.take(x, i, axis=0))
    x = np.arange(3, dtype=np.float32)
    idx = np.array([np.iinfo(dtype).max], dtype)
    for target in ("interp", "c"):
        with pytest.raises(rx.BoundsError):
            rx.compile(fb.module, target=target)["main"](x, idx)
    with pytest.raises(rx.BoundsError):
        rx.evaluate(fb.module, "main", x, idx)
