"""The elementwise op family: shape deduction with symbolic broadcasting and
its errors, values against numpy / Python computations written here, and
every op at every level (legalized tensor programs, interpreter, C)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand, roundtrip
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import BROADCAST, ELEMWISE, get_spec
from relax_xdsl.shape import dim_to_str, evaluate_dim, parse_dim_text, sym

Spec = tuple[str, Sequence[int | str], str]  # (name, shape, dtype)
PAIRS = list(zip(SIZES, reversed(SIZES)))
"""(n, m) bindings: each symbol takes every size, 1 included."""


# --- helpers ------------------------------------------------------------------


def build(params: Sequence[Spec], body: Callable[..., rx.Var]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(name, shape, dtype) for name, shape, dtype in params]
        fb.ret(body(*args))
    return fb.module


def out_type(params: Sequence[Spec], body: Callable[..., rx.Var]) -> rx.Var:
    with rx.FunctionBuilder("main") as fb:
        return body(*[fb.param(name, shape, dtype) for name, shape, dtype in params])


def concrete(shape: Sequence[int | str], env: dict[str, int]) -> tuple[int, ...]:
    bindings = {sym(k): v for k, v in env.items()}
    return tuple(evaluate_dim(parse_dim_text(d) if isinstance(d, str) else d, bindings) for d in shape)


def shape_text(v: rx.Var) -> list[str]:
    return [dim_to_str(d) for d in v.type.sym_shape]


Gen = Callable[[tuple[int, ...], str, int], np.ndarray]


def cases(params: Sequence[Spec], gen: Gen | Sequence[Gen] = rand) -> list[tuple[np.ndarray, ...]]:
    """One input tuple per (n, m) binding, from `gen(shape, dtype, seed)` per parameter."""
    gens = list(gen) if isinstance(gen, Sequence) else [gen] * len(params)
    return [tuple(g(concrete(shape, {"n": n, "m": m}), dtype, 7 * n + m + i)
                  for i, ((_, shape, dtype), g) in enumerate(zip(params, gens))) for n, m in PAIRS]


def evaluate(params: Sequence[Spec], body: Callable[..., rx.Var], args: Sequence[np.ndarray]) -> Any:
    return rx.evaluate(roundtrip(build(params, body)), "main", *args)


def positive(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    return (np.abs(rand(shape, dtype, seed)) + 0.25).astype(dtype)


def ints(lo: int, hi: int) -> Gen:
    return lambda shape, dtype, seed: np.random.default_rng(seed).integers(lo, hi + 1, size=shape).astype(dtype)


def with_specials(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Random floats with NaN, +-0 and repeats mixed in (for comparisons, max/min)."""
    x = rand(shape, dtype, seed).round(0)
    flat = x.reshape(-1)
    for i, v in zip(range(0, flat.size, 3), [np.nan, -0.0, 0.0, 1.0]):
        flat[i] = v
    return x


def f64(x: np.ndarray) -> list:
    return x.astype(np.float64).tolist()


def elementwise(fn: Callable[..., float], *arrays: np.ndarray, dtype: str) -> np.ndarray:
    """Applies a Python scalar function over broadcast arrays (float64), cast to dtype."""
    bs = np.broadcast_arrays(*arrays)
    out = np.empty(bs[0].shape, np.float64)
    for idx in np.ndindex(out.shape):
        out[idx] = fn(*(float(b[idx]) for b in bs))
    return out.astype(dtype)


def wrap(v: int, dtype: str) -> int:
    """A Python int reduced to the two's-complement range of an int dtype."""
    bits = np.dtype(dtype).itemsize * 8
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def int_map(fn: Callable[[int, int], int], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ba, bb = np.broadcast_arrays(a, b)
    out = np.empty(ba.shape, a.dtype)
    for idx in np.ndindex(out.shape):
        out[idx] = wrap(fn(int(ba[idx]), int(bb[idx])), a.dtype.name)
    return out


# --- shape rules -----------------------------------------------------------------


def test_broadcast_shapes_are_symbolic() -> None:
    v = out_type([("a", ["n", 1, 4], "float32"), ("b", ["m", 1], "float32")], lambda a, b: op.add(a, b))
    assert shape_text(v) == ["n", "m", "4"]
    v = out_type([("a", ["n", "2*n + 1"], "float32"), ("b", [], "float32")], lambda a, b: a * b)
    assert shape_text(v) == ["n", "2*n + 1"]
    v = out_type([("a", ["n", 3], "int32"), ("b", [1, 3], "int32")], lambda a, b: op.less(a, b))
    assert shape_text(v) == ["n", "3"] and v.dtype == "bool"
    v = out_type([("c", ["n", 1], "bool"), ("a", [1, "m"], "float32"), ("b", [], "float32")], op.where)
    assert shape_text(v) == ["n", "m"] and v.dtype == "float32"
    assert get_spec("add").pattern == BROADCAST and get_spec("exp").pattern == ELEMWISE


@pytest.mark.parametrize(
    ("params", "body", "match"),
    [
        ([("a", ["n", 4], "float32"), ("b", [5], "float32")], op.add, r"relax.add: broadcast dim -1: 4 vs 5"),
        ([("a", ["n", 4], "float32"), ("b", ["n + 1", 4], "float32")], op.multiply, r"broadcast dim -2: n vs n \+ 1"),
        ([("a", ["n"], "float32"), ("b", ["n"], "int32")], op.subtract, r"operand dtypes differ"),
        ([("a", ["n"], "bool"), ("b", ["n"], "bool")], op.add, r"relax.add: arithmetic needs numeric tensors, got bool"),
        ([("a", ["n"], "bool"), ("b", ["n"], "bool")], op.power, r"relax.power: arithmetic"),
        ([("a", ["n"], "int32")], op.exp, r"relax.exp: needs a floating-point tensor, got int32"),
        ([("a", ["n"], "bool")], op.negative, r"relax.negative: needs a numeric tensor, got bool"),
        ([("a", ["n"], "float32")], lambda a: op.clip(a, 2.0, 1.0), r"relax.clip: min 2.0 is greater than max 1.0"),
        ([("c", ["n"], "int32"), ("a", ["n"], "float32"), ("b", ["n"], "float32")], op.where,
         r"relax.where: condition must be bool"),
        ([("a", ["n"], "float32")], lambda a: op.astype(a, "complex64"), r"relax.astype: unsupported dtype"),
    ],
)
def test_shape_and_dtype_errors(params: list, body: Callable, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_type(params, body)


def test_unprovable_broadcast_is_checked_at_run_time() -> None:
    params = [("a", ["n"], "float32"), ("b", ["m"], "float32")]
    module = roundtrip(build(params, op.add))
    assert rx.evaluate(module, "main", rand((3,)), rand((3,))).shape == (3,)
    with pytest.raises(rx.ShapeError, match=r"relax.add.*broadcast dim -1.*n = 3, m = 2"):
        rx.evaluate(module, "main", rand((3,)), rand((2,)))


@pytest.mark.parametrize("level", ["legalized", "interp", "c"])
def test_unprovable_broadcast_mismatch_is_a_shape_error_at_every_level(level: str) -> None:
    """The assumption n == m must survive lowering: a kernel looping to n
    over b's m elements would read out of bounds."""
    from relax_xdsl.passes.legalize import legalize_module

    module = build([("a", ["n"], "float32"), ("b", ["m"], "float32")], op.add)
    a, b = rand((5,)), rand((2,))
    with pytest.raises(rx.ShapeError, match=r"\bn\b.*\bm\b|\bm\b.*\bn\b"):
        if level == "legalized":
            rx.evaluate(roundtrip(legalize_module(module.clone())), "main", a, b)
        else:
            rx.compile(module, target=level).main(a, b)


# --- values: unary ------------------------------------------------------------------


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


UNARY: dict[str, tuple[Callable[[float], float], Gen]] = {
    "exp": (math.exp, rand),
    "log": (math.log, positive),
    "sqrt": (math.sqrt, positive),
    "rsqrt": (lambda v: 1.0 / math.sqrt(v), positive),
    "tanh": (math.tanh, rand),
    "sigmoid": (_sig, rand),
    "erf": (math.erf, rand),
    "relu": (lambda v: max(v, 0.0), rand),
    "gelu": (lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))), rand),
    "gelu_tanh": (lambda v: 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3))), rand),
    "silu": (lambda v: v * _sig(v), rand),
    "negative": (lambda v: -v, rand),
    "abs": (abs, rand),
    "floor": (math.floor, lambda s, d, seed: rand(s, d, seed) * 3),
    "ceil": (math.ceil, lambda s, d, seed: rand(s, d, seed) * 3),
}
UNARY_PARAMS: list[Spec] = [("x", ["n", "m"], "float32")]


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values(name: str) -> None:
    fn, gen = UNARY[name]
    for args in cases(UNARY_PARAMS, gen):
        got = evaluate(UNARY_PARAMS, getattr(op, name), args)
        assert_close(got, elementwise(fn, args[0], dtype="float32"))


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_levels(name: str) -> None:
    check_levels(build(UNARY_PARAMS, getattr(op, name)), cases(UNARY_PARAMS, UNARY[name][1]))


INT_UNARY = {"relu": lambda v: max(v, 0), "negative": lambda v: -v, "abs": abs}
INT_PARAMS: list[Spec] = [("x", ["n", 3], "int32")]


@pytest.mark.parametrize("name", list(INT_UNARY))
def test_int_unary_values_and_levels(name: str) -> None:
    module = build(INT_PARAMS, getattr(op, name))
    cs = cases(INT_PARAMS, ints(-9, 9))
    cs.append((np.array([[np.iinfo(np.int32).min, -1, 5]], np.int32),))  # -INT_MIN and |INT_MIN| wrap
    for (x,) in cs:
        expect = np.array([[wrap(INT_UNARY[name](int(v)), "int32") for v in row] for row in x.tolist()], np.int32)
        assert_close(rx.evaluate(module, "main", x), expect)
    check_levels(module, cs)


# --- values: clip ----------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "lo", "hi"), [("float32", -0.5, 0.75), ("int32", -2.0, 3.0), ("int32", -1.5, 2.7),
                                                 ("float64", 0.0, 0.0)])
def test_clip(dtype: str, lo: float, hi: float) -> None:
    params: list[Spec] = [("x", ["n", "m"], dtype)]
    module = build(params, lambda x: op.clip(x, lo, hi))
    cs = cases(params, ints(-5, 5) if dtype == "int32" else rand)
    for (x,) in cs:
        # numpy semantics: clamp in float, then convert back (truncating for ints)
        expect = elementwise(lambda v: math.trunc(min(max(v, lo), hi)) if dtype == "int32" else min(max(v, lo), hi),
                             x, dtype=dtype)
        assert_close(rx.evaluate(module, "main", x), expect)
    check_levels(module, cs)


# --- values: binary ---------------------------------------------------------------------

BCAST: list[Spec] = [("a", ["n", 1, "m"], "float32"), ("b", [3, 1], "float32")]
"""Both operands broadcast: [n, 1, m] and [3, 1] -> [n, 3, m]."""

FLOAT_BINARY: dict[str, Callable[[float, float], float]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: math.pow(abs(a), b),
    "maximum": max,
    "minimum": min,
}


def _float_binary_inputs(name: str) -> list[tuple[np.ndarray, ...]]:
    gens: list[Gen] = [positive if name == "power" else rand, positive if name == "divide" else rand]
    return cases(BCAST, gens)


@pytest.mark.parametrize("name", list(FLOAT_BINARY))
def test_float_binary_values(name: str) -> None:
    for a, b in _float_binary_inputs(name):
        got = evaluate(BCAST, getattr(op, name), (a, b))
        assert_close(got, elementwise(FLOAT_BINARY[name], a, b, dtype="float32"))


@pytest.mark.parametrize("name", list(FLOAT_BINARY))
def test_float_binary_levels(name: str) -> None:
    check_levels(build(BCAST, getattr(op, name)), _float_binary_inputs(name))


def test_float_maximum_minimum_propagate_nan() -> None:
    params: list[Spec] = [("a", [4], "float32"), ("b", [4], "float32")]
    a = np.array([np.nan, 1.0, 2.0, np.nan], np.float32)
    b = np.array([1.0, np.nan, 3.0, np.nan], np.float32)
    for name, pick in (("maximum", max), ("minimum", min)):
        module = build(params, getattr(op, name))
        expect = np.array([np.nan, np.nan, pick(2.0, 3.0), np.nan], np.float32)
        assert_close(rx.evaluate(module, "main", a, b), expect)
        check_levels(module, [(a, b)])


def _floor_div(a: int, b: int) -> int:
    return 0 if b == 0 else a // b


def _int_power(a: int, e: int) -> int:
    if e >= 0:
        return a**e
    return 1 if a == 1 else (-1 if e % 2 else 1) if a == -1 else 0


INT_BINARY: dict[str, Callable[[int, int], int]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": _floor_div,
    "power": _int_power,
    "maximum": max,
    "minimum": min,
}
INT_BIN_PARAMS: list[Spec] = [("a", ["n", "m"], "int32"), ("b", ["m"], "int32")]


def _int_binary_inputs() -> list[tuple[np.ndarray, ...]]:
    cs = cases(INT_BIN_PARAMS, [ints(-9, 9), ints(-3, 4)])
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    # zero divisors, INT_MIN // -1 (wraps, must not trap), overflowing products and powers
    cs.append((np.array([[lo, hi, 7, -7, 3, 0], [lo, -1, -9, 9, -2, 5]], np.int32),
               np.array([-1, 0, 2, -2, 31, -1], np.int32)))
    return cs


@pytest.mark.parametrize("name", list(INT_BINARY))
def test_int_binary_values_and_levels(name: str) -> None:
    module = build(INT_BIN_PARAMS, getattr(op, name))
    cs = _int_binary_inputs()
    for a, b in cs:
        assert_close(rx.evaluate(module, "main", a, b), int_map(INT_BINARY[name], a, b))
    check_levels(module, cs)


@pytest.mark.parametrize("dtype", ["int8", "int64"])
def test_int_power_wraps_exactly(dtype: str) -> None:
    params: list[Spec] = [("a", ["n"], dtype), ("b", ["n"], dtype)]
    module = build(params, op.power)
    a = np.array([3, -3, 2, 5, 7, -1, 1, 0, 0, 2], dtype)
    b = np.array([100, 63, 62, 40, 13, -3, -8, 0, -1, -1], dtype)
    expect = int_map(_int_power, a, b)
    assert_close(rx.evaluate(module, "main", a, b), expect)
    check_levels(module, [(a, b), (a[:1], b[:1])])


# --- values: comparisons -------------------------------------------------------------------

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "equal": lambda a, b: a == b,
    "not_equal": lambda a, b: a != b,
    "less": lambda a, b: a < b,
    "less_equal": lambda a, b: a <= b,
    "greater": lambda a, b: a > b,
    "greater_equal": lambda a, b: a >= b,
}


def _compare_inputs(dtype: str) -> tuple[list[Spec], list[tuple[np.ndarray, ...]]]:
    params: list[Spec] = [("a", ["n", 1], dtype), ("b", ["m"], dtype)]
    gen: Gen = {"float32": with_specials, "int32": ints(-2, 2), "bool": rand}[dtype]
    cs = cases(params, gen)
    if dtype == "bool":
        cs.append((np.array([[False], [True]]), np.array([False, True])))
    return params, cs


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("name", list(COMPARE))
def test_comparisons(name: str, dtype: str) -> None:
    params, cs = _compare_inputs(dtype)
    module = build(params, getattr(op, name))
    for a, b in cs:
        ba, bb = np.broadcast_arrays(a, b)
        expect = np.array([COMPARE[name](x, y) for x, y in zip(ba.reshape(-1).tolist(), bb.reshape(-1).tolist())],
                          bool).reshape(ba.shape)
        assert_close(rx.evaluate(module, "main", a, b), expect)
    check_levels(module, cs)


@pytest.mark.parametrize(("name", "pick"), [("maximum", any), ("minimum", all)])
def test_bool_maximum_minimum(name: str, pick: Callable) -> None:
    params: list[Spec] = [("a", [2, 1], "bool"), ("b", [2], "bool")]
    module = build(params, getattr(op, name))
    a, b = np.array([[False], [True]]), np.array([False, True])
    expect = np.array([[pick([x, y]) for y in (False, True)] for x in (False, True)])
    assert_close(rx.evaluate(module, "main", a, b), expect)
    check_levels(module, [(a, b)])


# --- where, astype ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_where(dtype: str) -> None:
    params: list[Spec] = [("c", ["n", 1], "bool"), ("a", [1, "m"], dtype), ("b", [], dtype)]
    module = build(params, op.where)
    cs = cases(params)
    for c, a, b in cs:
        expect = np.empty((c.shape[0], a.shape[1]), dtype)
        for i in range(c.shape[0]):
            for j in range(a.shape[1]):
                expect[i, j] = a[0, j] if c[i, 0] else b[()]
        assert_close(rx.evaluate(module, "main", c, a, b), expect)
    check_levels(module, cs)


ASTYPE = [
    # (from, to, values)
    ("float32", "int32", [-2.7, -0.5, 0.0, 0.9, 3.5, 100.25]),
    ("float32", "bool", [0.0, -0.0, 0.5, -3.0, float("nan"), float("inf")]),
    ("float32", "float64", [1.1, -2.5, 1e30, 0.0, 3.0, -7.25]),
    ("float64", "float32", [1.1, -2.5, 1e-50, 0.0, 3.0, 1e300]),
    ("int32", "float32", [-5, 0, 7, 16777217, -3, 2]),
    ("int64", "int8", [-129, 128, 255, 7, -7, 300]),
    ("int32", "int64", [-(2**31), 2**31 - 1, 0, 1, -1, 5]),
    ("int32", "bool", [0, 1, -1, 2, 0, 9]),
    ("bool", "float32", [True, False, True, True, False, False]),
    ("bool", "int32", [True, False, True, True, False, False]),
]


def _convert(v: Any, to: str) -> Any:
    if to == "bool":
        return bool(v != 0 or v != v)
    if to.startswith("int"):
        return wrap(math.trunc(v) if isinstance(v, float) else int(v), to)
    return float(v)


@pytest.mark.parametrize(("src", "dst", "values"), ASTYPE)
def test_astype(src: str, dst: str, values: list) -> None:
    params: list[Spec] = [("x", ["n"], src)]
    module = build(params, lambda x: op.astype(x, dst))
    x = np.array(values, src)
    with np.errstate(over="ignore"):
        expect = np.array([_convert(v, dst) for v in x.tolist()], dst)
    assert_close(rx.evaluate(module, "main", x), expect)
    check_levels(module, [(x,), (x[:1],), (x[2:5],)])
