"""The indexing graph ops (relax_xdsl/ops/indexing.py) at every level, on
symbolic shapes bound to several sizes including 1, and their index checks:
an index out of range is the same BoundsError from the evaluator, the
interpreter and C."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from util import SIZES, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import BoundsError


def _module(fn: Callable[..., Any], params: list[tuple[str, list[Any], str]]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(n, s, d) for n, s, d in params]
        fb.ret(fn(*args))
    return fb.module


def _idx(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """Valid indices into a dim of size n, negative ones included."""
    return np.random.default_rng(seed).integers(-n, n, size=shape).astype(np.int64)


LEVELS_FAST = ("legalized", "c")


def test_gather_elements_levels() -> None:
    m = _module(lambda x, i: op.gather_elements(x, i, axis=1), [("x", ["n", 5], "float32"), ("i", ["n", 3], "int64")])
    cases = [(rand((n, 5)), _idx((n, 3), 5, n)) for n in SIZES]
    check_levels(m, cases)


def test_gather_nd_levels() -> None:
    m = _module(lambda x, i: op.gather_nd(x, i, batch_dims=1),
                [("x", ["b", 4, 3], "float32"), ("i", ["b", "m", 1], "int32")])
    cases = [(rand((b, 4, 3)), _idx((b, 2, 1), 4, b).astype(np.int32)) for b in SIZES]
    check_levels(m, cases)
    m2 = _module(lambda x, i: op.gather_nd(x, i), [("x", [3, 4, "k"], "float32"), ("i", ["m", 2], "int64")])
    cases2 = [(rand((3, 4, k)), np.stack([_idx((k,), 3, k), _idx((k,), 4, k + 1)], axis=1)) for k in SIZES]
    check_levels(m2, cases2, LEVELS_FAST)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_levels(reduction: str) -> None:
    m = _module(lambda x, i, u: op.scatter_elements(x, i, u, axis=0, reduction=reduction),
                [("x", [4, "n"], "float32"), ("i", [6, "n"], "int64"), ("u", [6, "n"], "float32")])
    cases = [(rand((4, n)), _idx((6, n), 4, n), rand((6, n), seed=n)) for n in SIZES]  # duplicates: 6 rows into 4
    check_levels(m, cases, LEVELS_FAST if reduction != "none" else ("legalized", "interp", "c"))


def test_scatter_duplicates_last_wins() -> None:
    m = _module(lambda x, i, u: op.scatter_elements(x, i, u), [("x", [3], "float32"), ("i", [4], "int64"),
                                                               ("u", [4], "float32")])
    args = (np.zeros(3, np.float32), np.array([1, 1, -2, 0]), np.array([1, 2, 3, 4], np.float32))
    want = np.array([4, 3, 0], np.float32)
    np.testing.assert_array_equal(rx.evaluate(m, "main", *args), want)
    np.testing.assert_array_equal(rx.compile(m, target="c")["main"](*args), want)


@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_scatter_nd_levels(reduction: str) -> None:
    m = _module(lambda x, i, u: op.scatter_nd(x, i, u, reduction=reduction),
                [("x", [5, "n"], "int32"), ("i", ["m", 1], "int64"), ("u", ["m", "n"], "int32")])
    cases = [(rand((5, n), "int32"), _idx((n + 2, 1), 5, n), rand((n + 2, n), "int32", seed=n)) for n in SIZES]
    check_levels(m, cases, LEVELS_FAST)


def test_one_hot_levels() -> None:
    m = _module(lambda i, v: op.one_hot(i, v, depth=4, axis=0), [("i", ["n", 2], "int64"), ("v", [2], "float32")])
    cases = [(np.random.default_rng(n).integers(-6, 6, size=(n, 2)), np.array([0.5, 2.0], np.float32))
             for n in SIZES]  # out-of-range indices: a row of off values, as ONNX defines
    check_levels(m, cases)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize(("axis", "exclusive", "reverse"), [(0, False, False), (1, True, False), (-1, False, True),
                                                            (1, True, True)])
def test_cumulative_levels(name: str, axis: int, exclusive: bool, reverse: bool) -> None:
    m = _module(lambda x: getattr(op, name)(x, axis=axis, exclusive=exclusive, reverse=reverse),
                [("x", ["n", "t", 3], "float32")])
    cases = [(rand((n, n + 1, 3)),) for n in SIZES]
    check_levels(m, cases, LEVELS_FAST)


def test_cumsum_levels() -> None:
    m = _module(lambda x: op.cumsum(x, axis=1, exclusive=True, reverse=True), [("x", ["n", "t", 3], "float32")])
    check_levels(m, [(rand((n, n + 1, 3)),) for n in SIZES], LEVELS_FAST)


def test_cumsum_int_interp() -> None:
    m = _module(lambda x: op.cumsum(x, axis=0, exclusive=True), [("x", ["n"], "int32")])
    check_levels(m, [(rand((n,), "int32"),) for n in SIZES])


def test_reverse_sequence_levels() -> None:
    m = _module(lambda x, s: op.reverse_sequence(x, s, batch_axis=0, time_axis=1),
                [("x", ["b", 4, 2], "float32"), ("s", ["b"], "int64")])
    cases = [(rand((b, 4, 2)), np.random.default_rng(b).integers(0, 5, size=b)) for b in SIZES]
    check_levels(m, cases)


@pytest.mark.parametrize("largest", [True, False])
def test_topk_levels(largest: bool) -> None:
    m = _module(lambda x: op.topk(x, k=2, axis=1, largest=largest), [("x", ["n", 5], "float32")])
    cases = [(np.round(rand((n, 5)), 0),) for n in SIZES]  # rounded: ties, the smaller index first
    check_levels(m, cases, LEVELS_FAST)
    x = np.array([[1, 3, 3, 0, 3]], np.float32)
    vals, inds = rx.compile(m, target="c")["main"](x)
    np.testing.assert_array_equal(inds, [[1, 2]] if largest else [[3, 0]])


def test_topk_symbolic_axis() -> None:
    m = _module(lambda x: op.topk(x, k=3, axis=0), [("x", ["n", 2], "int32")])
    exe = rx.compile(m, target="c")
    x = rand((5, 2), "int32")
    ref = rx.evaluate(m, "main", x)
    got = exe["main"](x)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
    with pytest.raises(Exception, match="topk"):
        exe["main"](rand((2, 2), "int32"))


# -- index checks: one error on every target -----------------------------------------------------------------------

BAD = [
    ("gather_elements", lambda x, i: op.gather_elements(x, i, axis=0), (np.zeros((3, 2), np.float32),
                                                                         np.array([[0, 1], [3, 0]]))),
    ("gather_nd", lambda x, i: op.gather_nd(x, i), (np.zeros((3, 2), np.float32), np.array([[0, 1], [1, -3]]))),
    ("scatter_elements", lambda x, i: op.scatter_elements(x, i, x, axis=1),
     (np.zeros((3, 2), np.float32), np.array([[0, 1], [1, -3], [0, 0]]))),
    ("scatter_nd", lambda x, i: op.scatter_nd(x, i, x), (np.zeros((2, 2), np.float32), np.array([[0], [5]]))),
]


@pytest.mark.parametrize(("name", "fn", "args"), BAD, ids=[b[0] for b in BAD])
def test_index_out_of_range_is_bounds_error(name: str, fn: Callable[..., Any], args: tuple[np.ndarray, ...]) -> None:
    m = _module(fn, [("x", list(args[0].shape), "float32"), ("i", list(args[1].shape), "int64")])
    with pytest.raises(BoundsError, match=f"relax.{name}.*index"):
        rx.evaluate(m, "main", *args)
    for target in ("interp", "c"):
        with pytest.raises(BoundsError, match=f"relax.{name}.*index"):
            rx.compile(m, target=target)["main"](*args)


def test_reverse_sequence_length_checked() -> None:
    m = _module(lambda x, s: op.reverse_sequence(x, s, batch_axis=0, time_axis=1),
                [("x", [2, 3], "float32"), ("s", [2], "int64")])
    for lens in ([1, 4], [-1, 2]):
        args = (np.zeros((2, 3), np.float32), np.array(lens))
        with pytest.raises(BoundsError, match="reverse_sequence"):
            rx.evaluate(m, "main", *args)
        with pytest.raises(BoundsError, match="reverse_sequence"):
            rx.compile(m, target="c")["main"](*args)
