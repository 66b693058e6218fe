"""relax.matmul: numpy matmul semantics over symbolic shapes (1-D operands,
broadcast batch dims, out_dtype), its errors and run-time checks, values
against a loop computation written here, and every level."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand, roundtrip
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import OUT_FUSIBLE, get_spec
from relax_xdsl.shape import dim_to_str, evaluate_dim, parse_dim_text, sym

Shape = Sequence[int | str]
ENVS = [{"n": n, "m": m, "k": k} for n, m, k in zip(SIZES, reversed(SIZES), (3, 1, 7))]
"""Bindings of n, m, k: each takes every size in SIZES (1 included)."""


def build(s1: Shape, s2: Shape, dtype: str = "float32", **kwargs: object) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.matmul(fb.param("x1", s1, dtype), fb.param("x2", s2, dtype), **kwargs))
    return fb.module


def out_shape(s1: Shape, s2: Shape, d1: str = "float32", d2: str = "float32", **kwargs: object) -> rx.Var:
    with rx.FunctionBuilder("main") as fb:
        return op.matmul(fb.param("x1", s1, d1), fb.param("x2", s2, d2), **kwargs)


def text(v: rx.Var) -> list[str]:
    return [dim_to_str(d) for d in v.type.sym_shape]


def concrete(shape: Shape, env: dict[str, int]) -> tuple[int, ...]:
    bindings = {sym(k): v for k, v in env.items()}
    return tuple(evaluate_dim(parse_dim_text(d) if isinstance(d, str) else d, bindings) for d in shape)


def inputs(shape: Shape, dtype: str, env: dict[str, int], seed: int) -> np.ndarray:
    x = rand(concrete(shape, env), dtype, seed)
    return (np.round(x * 8) / 8).astype(dtype) if dtype.startswith("float") else x  # exact sums in any order


def naive_matmul(a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    """numpy's matmul rules written out: promote 1-D operands, broadcast the
    batch dims, dot each row and column (exact: fsum, or Python ints wrapped)."""
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    ba, bb = a2.shape[:-2], b2.shape[:-2]
    nb = max(len(ba), len(bb))
    ba, bb = (1,) * (nb - len(ba)) + ba, (1,) * (nb - len(bb)) + bb
    batch = tuple(max(x, y) for x, y in zip(ba, bb))
    a2, b2 = a2.reshape(ba + a2.shape[-2:]), b2.reshape(bb + b2.shape[-2:])
    n, k, m = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    assert b2.shape[-2] == k
    out = np.empty(batch + (n, m), dtype)
    bits = np.dtype(dtype).itemsize * 8
    for idx in np.ndindex(batch):
        ia = tuple(0 if s == 1 else i for s, i in zip(ba, idx))
        ib = tuple(0 if s == 1 else i for s, i in zip(bb, idx))
        for i in range(n):
            for j in range(m):
                terms = [a2[ia + (i, t)].item() * b2[ib + (t, j)].item() for t in range(k)]
                if np.dtype(dtype).kind == "f":
                    out[idx + (i, j)] = math.fsum(terms)
                else:
                    v = sum(terms) & ((1 << bits) - 1)
                    out[idx + (i, j)] = v - (1 << bits) if v >= 1 << (bits - 1) else v
    shape = batch + ((n,) if a.ndim > 1 else ()) + ((m,) if b.ndim > 1 else ())
    return out.reshape(shape)


# --- shape rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("s1", "s2", "expect"),
    [
        (["n", "k"], ["k", "m"], ["n", "m"]),
        (["k"], ["k", "m"], ["m"]),
        (["n", "k"], ["k"], ["n"]),
        (["k"], ["k"], []),
        (["b", 1, "n", "k"], ["h", "k", "m"], ["b", "h", "n", "m"]),
        ([1, "n", 4], [4, "m"], ["1", "n", "m"]),
        (["k"], ["b", "k", "m"], ["b", "m"]),
        (["b", "n", "2*k"], ["2*k"], ["b", "n"]),
        ([2, "n", "k"], ["k"], ["2", "n"]),
        (["k"], [3], []),  # k == 3 is not provable: assumed, checked at run time
    ],
)
def test_shapes(s1: Shape, s2: Shape, expect: list[str]) -> None:
    assert text(out_shape(s1, s2)) == expect


def test_operator_dtype_and_pattern() -> None:
    with rx.FunctionBuilder("main") as fb:
        x, w = fb.param("x", ["n", 784], "float32"), fb.param("w", [784, 10], "float32")
        y = x @ w
        assert text(y) == ["n", "10"] and y.dtype == "float32"
    assert out_shape(["n", 4], [4, 2], "int8", "int8", out_dtype="int32").dtype == "int32"
    assert get_spec("matmul").pattern == OUT_FUSIBLE


@pytest.mark.parametrize(
    ("s1", "s2", "kwargs", "match"),
    [
        (["n", 4], [5, 6], {}, r"relax.matmul: x1 dim 1 vs x2 dim 0 \(the reduction dim k\): 4 vs 5 are different"
                                r" \(operands: \[n, 4\] float32, \[5, 6\] float32\)"),
        (["n", "k"], ["k + 1", "m"], {}, r"x1 dim 1 vs x2 dim 0 \(the reduction dim k\): k vs k \+ 1"),
        ([2, "n", "k"], [3, "k", "m"], {}, r"relax.matmul: broadcast dim -1: 2 vs 3"),
        ([], [3], {}, r"relax.matmul: x1 is a scalar; matmul needs rank >= 1"),
        ([3], [], {}, r"relax.matmul: x2 is a scalar"),
        ([3, 3], [3, 3], {"out_dtype": "complex"}, r"relax.matmul: out_dtype: unsupported dtype"),
    ],
)
def test_errors(s1: Shape, s2: Shape, kwargs: dict, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_shape(s1, s2, **kwargs)


def test_dtype_errors() -> None:
    with pytest.raises(rx.ShapeError, match=r"relax.matmul: x1 has dtype float32 but x2 has float64"):
        out_shape(["n", 3], [3, 2], "float32", "float64")
    with pytest.raises(rx.ShapeError, match=r"relax.matmul: x1 has dtype bool"):
        out_shape(["n", 3], [3, 2], "bool", "bool")


def test_unprovable_k_is_checked_at_run_time() -> None:
    module = roundtrip(build(["n", "k"], ["j", "m"]))
    assert text(out_shape(["n", "k"], ["j", "m"])) == ["n", "m"]
    assert rx.evaluate(module, "main", rand((2, 3)), rand((3, 4))).shape == (2, 4)
    with pytest.raises(rx.ShapeError, match=r"relax.matmul.*x1 dim 1 vs x2 dim 0 \(the reduction dim k\).*j = 4"):
        rx.evaluate(module, "main", rand((2, 3)), rand((4, 4)))


@pytest.mark.parametrize("level", ["legalized", "interp", "c"])
def test_unprovable_k_mismatch_is_a_shape_error_at_every_level(level: str) -> None:
    """The assumption k == j must survive lowering: a kernel looping to k
    over x2's j rows would read out of bounds."""
    from relax_xdsl.passes.legalize import legalize_module

    module = build(["n", "k"], ["j", "m"])
    a, b = rand((2, 3)), rand((4, 5))
    with pytest.raises(rx.ShapeError, match=r"\bk\b.*\bj\b|\bj\b.*\bk\b"):
        if level == "legalized":
            rx.evaluate(roundtrip(legalize_module(module.clone())), "main", a, b)
        else:
            rx.compile(module, target=level).main(a, b)


# --- values and levels ------------------------------------------------------------------

CASES = [
    (["n", "k"], ["k", "m"]),
    (["k"], ["k", "m"]),
    (["n", "k"], ["k"]),
    (["k"], ["k"]),
    ([2, 1, "n", "k"], ["m", "k", 3]),
    ([1, "n", 4], [4, "m"]),
    (["n", 1], [1, "m"]),
]


@pytest.mark.parametrize(("s1", "s2"), CASES)
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_values_and_levels(s1: Shape, s2: Shape, dtype: str) -> None:
    module = build(s1, s2, dtype)
    again = roundtrip(module)
    cases = [(inputs(s1, dtype, env, i), inputs(s2, dtype, env, i + 10)) for i, env in enumerate(ENVS)]
    for a, b in cases:
        assert_close(rx.evaluate(again, "main", a, b), naive_matmul(a, b, dtype))
    check_levels(module, cases)


@pytest.mark.parametrize(("dtype", "out_dtype"), [("int8", "int32"), ("float32", "float64"), ("int32", "int32")])
def test_out_dtype(dtype: str, out_dtype: str) -> None:
    s1, s2 = ["n", 5], [5, "m"]
    module = build(s1, s2, dtype, out_dtype=out_dtype)
    cases = []
    for i, env in enumerate(ENVS):
        a, b = inputs(s1, dtype, env, i), inputs(s2, dtype, env, i + 5)
        if dtype == "int8":  # products overflow int8, not int32
            a, b = (a * 20).astype(np.int8), (b * 20).astype(np.int8)
        cases.append((a, b))
    for a, b in cases:
        assert_close(rx.evaluate(module, "main", a, b), naive_matmul(a.astype(out_dtype), b.astype(out_dtype), out_dtype))
    check_levels(module, cases)
