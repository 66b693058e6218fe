"""Unique by sorting: relax.unique_count / unique_fill sort the item
indices with a stable merge sort and scan that order once (O(n log n)
comparisons), where they compared every pair (O(n^2): minutes for 10**5
elements). Checked against numpy on large inputs with many duplicates, on
the ties the sort must keep (-0.0 and 0.0, NaNs, slices equal in a prefix)
at every level, and on the programs' loop structure."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from relax_xdsl.dialects.tir import ForOp, PrimFuncOp, SymExprOp
from relax_xdsl.passes.legalize import legalize_module
from util import check_levels
from xdsl.dialects import scf

import relax_xdsl as rx
from relax_xdsl import op


def _np_unique(x: np.ndarray, sorted_: bool, axis: int | None) -> tuple[np.ndarray, ...]:
    """numpy's unique as ONNX Unique (sorted=False: order of first occurrence)."""
    y, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    inv = inv.reshape(-1)
    if not sorted_:
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y, idx, cnt, inv = np.take(y, order, axis=0 if axis is None else axis), idx[order], cnt[order], rank[inv]
    return y, idx.astype(np.int64), inv.astype(np.int64), cnt.astype(np.int64)


def _unique_module(shape: list[object], dtype: str, sorted_: bool, axis: int | None = None):
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", shape, dtype)
        fb.ret(*op.unique(x, sorted=sorted_, axis=axis))
    return fb.module


@pytest.mark.parametrize("sorted_", [True, False])
def test_a_hundred_thousand_ints_with_many_duplicates_match_numpy(sorted_: bool) -> None:
    x = np.random.default_rng(7).integers(-500, 500, 100_000).astype(np.int64)
    got = rx.compile(_unique_module(["n"], "int64", sorted_), target="c").main(x)
    for g, w in zip(got, _np_unique(x, sorted_, None)):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("sorted_", [True, False])
def test_ties_of_signed_zeros_and_nans_at_every_level(sorted_: bool) -> None:
    """-0.0 equals 0.0 (the first one seen is kept), NaN equals NaN and
    sorts last; sizes 1, 3 and 12 of one symbolic n."""
    xs = [np.array([np.nan], "float32"), np.array([0.0, -0.0, np.nan], "float32"),
          np.array([3, np.nan, -0.0, 1, 0.0, 3, np.nan, -1, 1, -0.0, 2, 0.0], "float32")]
    check_levels(_unique_module(["n"], "float32", sorted_), [(x,) for x in xs])


@pytest.mark.parametrize("sorted_", [True, False])
def test_bools_sort_false_first_at_every_level(sorted_: bool) -> None:
    """As numpy: False before True (the interpreter's signed i1 compare put True, -1, first)."""
    xs = [np.array([True]), np.array([True, False, True]), np.array([True, True, False, True, False, False, True])]
    check_levels(_unique_module(["n"], "bool", sorted_), [(x,) for x in xs])
    for x in xs:
        for g, w in zip(rx.evaluate(_unique_module(["n"], "bool", sorted_), "main", x), _np_unique(x, sorted_, None)):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("sorted_", [True, False])
def test_slices_along_an_axis_compare_lexicographically(sorted_: bool) -> None:
    """Slices along axis 1 of [2, n, 2] equal in their first elements and
    different later, some equal throughout (NaN and signed zeros included)."""
    base = np.array([[[1, 2], [1, 2], [1, 2], [0, 5], [1, 2]],
                     [[3, 4], [3, 1], [3, 4], [9, 9], [3, 4]]], "float32")
    base[0, 4, 1], base[1, 2, 0] = -0.0, np.nan
    x = np.concatenate([base, base[:, :1]], axis=1)
    x[0, 5, 0] = 0.0
    module = _unique_module([2, "n", 2], "float32", sorted_, axis=1)
    check_levels(module, [(x[:, :1],), (x[:, :3],), (x,)])
    ints = np.random.default_rng(3).integers(0, 2, (2, 40, 2)).astype(np.int64)  # 16 possible slices, many repeats
    got = rx.compile(_unique_module([2, "n", 2], "int64", sorted_, axis=1), target="c").main(ints)
    for g, w in zip(got, _np_unique(ints, sorted_, 1)):
        np.testing.assert_array_equal(g, w)


def _loops_over_n_inside_loops_over_n(func: PrimFuncOp, n: sympy.Symbol) -> int:
    """How many loops with n iterations lie inside another such loop."""

    def over_n(loop: object) -> bool:
        ub = loop.ub  # type: ignore[attr-defined]
        return isinstance(ub.owner, SymExprOp) and sympy.simplify(ub.owner.expr.data[0] - n) == 0

    nested = 0
    for o in func.walk():
        if isinstance(o, (ForOp, scf.ForOp)) and over_n(o):
            parent = o.parent_op()
            while parent is not None and parent is not func:
                if isinstance(parent, (ForOp, scf.ForOp)) and over_n(parent):
                    nested += 1
                    break
                parent = parent.parent_op()
    return nested


@pytest.mark.parametrize("sorted_", [True, False])
def test_no_program_compares_every_pair(sorted_: bool) -> None:
    """The count and the fill programs have no loop over the n items inside
    another (the pairwise search had three such nests)."""
    legal = legalize_module(_unique_module(["n"], "float32", sorted_))
    funcs = [o for o in legal.walk() if isinstance(o, PrimFuncOp) and "unique" in o.sym_name.data]
    assert len(funcs) == 2
    for f in funcs:
        assert _loops_over_n_inside_loops_over_n(f, sympy.Symbol("n", integer=True, nonnegative=True)) == 0, \
            f.sym_name.data
