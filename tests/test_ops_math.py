"""The math op family (relax_xdsl/ops/math.py): trigonometric and
hyperbolic functions, sign, round (half to even), isnan / isinf, bitwise,
shift and logical ops, mod / fmod. Each op at every level (evaluator,
legalized tensor programs, interpreter, C default and C fast) on symbolic
shapes bound to several sizes (1 included), against numpy, with the edge
values where C and numpy differ unless handled (halves, NaN, inf, zero
divisors, INT_MIN % -1, shift amounts beyond the width)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import RelaxError

FLOAT_UNARY = ["sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "sign", "round", "isnan", "isinf"]
UNIT_UNARY = ["asin", "acos", "atanh"]  # domain [-1, 1]


def build(params: Sequence[tuple[str, list[int | str], str]], body: Callable[..., list[rx.Var]]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(name, shape, dtype) for name, shape, dtype in params]
        fb.ret(*body(*args))
    return fb.module


def check_all(module: ModuleOp, cases: list[tuple[np.ndarray, ...]]) -> None:
    """Every level of check_levels, and the C target in the `fast` pipeline."""
    check_levels(module, cases)
    exe = rx.compile(module, target="c", pipeline="fast")
    for args in cases:
        assert_close(exe["main"](*args), rx.evaluate(module, "main", *args))


def floats(n: int, dtype: str) -> np.ndarray:
    """n rows of 8: halves (round to even), zeros, NaN, +-inf, and random values."""
    special = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.0, np.nan, np.inf], dtype)
    other = np.array([-np.inf, -0.0, 3.7, -1.2, 0.2, 7.5, -3.5, 1e-3], dtype)
    return np.stack([special if i % 2 == 0 else other for i in range(n)])


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow),
                                   pytest.param("float16", marks=pytest.mark.slow)])
def test_float_unary_every_level(dtype: str) -> None:
    mod = build([("x", ["n", 8], dtype), ("u", ["n", 8], dtype), ("c", ["n", 8], dtype)],
                lambda x, u, c: [getattr(op, f)(x) for f in FLOAT_UNARY] + [getattr(op, f)(u) for f in UNIT_UNARY]
                + [op.acosh(c)])
    rng = np.random.default_rng(1)
    cases = [(floats(n, dtype), rng.uniform(-0.99, 0.99, (n, 8)).astype(dtype),
              rng.uniform(1.0, 9.0, (n, 8)).astype(dtype)) for n in SIZES]
    check_all(mod, cases)


def test_round_is_half_to_even_and_predicates_on_specials() -> None:
    x = np.array([[0.5, 1.5, 2.5, -0.5, -2.5, np.nan, np.inf, -np.inf]], "float32")
    exe = rx.compile(build([("x", ["n", 8], "float32")], lambda x: [op.round(x), op.isnan(x), op.isinf(x),
                                                                      op.sign(x)]), target="c")
    r, nan, inf, sign = exe["main"](x)
    np.testing.assert_array_equal(r[0, :5], [0.0, 2.0, 2.0, -0.0, -2.0])
    np.testing.assert_array_equal(nan[0], [False] * 5 + [True, False, False])
    np.testing.assert_array_equal(inf[0], [False] * 6 + [True, True])
    np.testing.assert_array_equal(sign[0, 5:], [np.nan, 1.0, -1.0])


def ints(n: int, dtype: str) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype))
    row = np.array([7, -7, 5, -5, 0, info.min, info.max, 1], dtype)
    return np.stack([np.roll(row, i) for i in range(n)])


@pytest.mark.parametrize("dtype", ["int32", pytest.param("int8", marks=pytest.mark.slow),
                                   pytest.param("int64", marks=pytest.mark.slow)])
def test_integer_ops_every_level(dtype: str) -> None:
    """Divisors include 0 and -1 (x % 0 is 0, INT_MIN % -1 is 0, neither traps);
    shift amounts include negatives and amounts beyond the width."""
    names = ["bitwise_and", "bitwise_or", "bitwise_xor", "mod", "fmod", "left_shift", "right_shift"]
    mod = build([("x", ["n", 8], dtype), ("y", [8], dtype), ("s", ["n", 8], dtype)],
                lambda x, y, s: [getattr(op, f)(x, y) for f in names[:5]] + [op.left_shift(x, s),
                                                                             op.right_shift(x, s),
                                                                             op.bitwise_not(x), op.sign(x)])
    y = np.array([3, -3, 0, -1, 2, -1, 5, -7], dtype)
    width = np.dtype(dtype).itemsize * 8
    shifts = np.array([0, 1, width - 1, width, width + 3, -1, 2, 3], dtype)
    check_all(mod, [(ints(n, dtype), y, np.stack([np.roll(shifts, i) for i in range(n)])) for n in SIZES])


def test_mod_sign_conventions() -> None:
    x = np.array([[5, -5, 5, -5]], "int32")
    y = np.array([3, 3, -3, -3], "int32")
    exe = rx.compile(build([("x", ["n", 4], "int32"), ("y", [4], "int32")],
                           lambda x, y: [op.mod(x, y), op.fmod(x, y)]), target="c")
    m, f = exe["main"](x, y)
    np.testing.assert_array_equal(m[0], [2, 1, -1, -2])  # the divisor's sign
    np.testing.assert_array_equal(f[0], [2, -2, 2, -2])  # the dividend's sign


def test_large_int64_remainder_is_exact_in_the_interpreter() -> None:
    """The interpreter's integer remainder works on integers (a double would round 2**62 + 1)."""
    mod = build([("x", ["n"], "int64"), ("y", ["n"], "int64")], lambda x, y: [op.fmod(x, y), op.mod(x, y)])
    x = np.array([2**62 + 1, -(2**62 + 1), 2**63 - 1], "int64")
    y = np.array([3, 3, 10], "int64")
    check_levels(mod, [(x, y)], levels=("legalized", "interp"))
    np.testing.assert_array_equal(rx.evaluate(mod, "main", x, y)[0], [2, -2, 7])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_mod_every_level(dtype: str) -> None:
    x = np.array([[7.5, -7.5, 7.5, -7.5, 3.0, np.inf, 1.0, -0.0]], dtype)
    y = np.array([2.0, 2.0, -2.0, -2.0, 0.0, 2.0, np.inf, 3.0], dtype)
    mod = build([("x", ["n", 8], dtype), ("y", [8], dtype)], lambda x, y: [op.mod(x, y), op.fmod(x, y)])
    check_all(mod, [(np.repeat(x, n, axis=0), y) for n in SIZES])


def test_logical_ops_every_level() -> None:
    mod = build([("a", ["n", 4], "bool"), ("b", [4], "bool")],
                lambda a, b: [op.logical_and(a, b), op.logical_or(a, b), op.logical_xor(a, b)])
    b = np.array([True, False, True, False])
    check_all(mod, [(np.stack([np.roll([True, True, False, False], i) for i in range(n)]), b) for n in SIZES])


@pytest.mark.parametrize(("name", "dtype"), [
    ("sin", "int32"), ("round", "int64"), ("isnan", "int32"), ("bitwise_not", "float32"), ("bitwise_and", "float32"),
    ("left_shift", "bool"), ("logical_and", "int32"), ("mod", "bool"),
])
def test_dtype_errors_name_the_op(name: str, dtype: str) -> None:
    binary = name in ("bitwise_and", "left_shift", "logical_and", "mod")
    with pytest.raises(RelaxError, match=rf"relax\.{name}"):
        with rx.FunctionBuilder("main") as fb:
            x = fb.param("x", ["n"], dtype)
            getattr(op, name)(x, x) if binary else getattr(op, name)(x)
