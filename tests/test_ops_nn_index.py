"""max_pool_indices: the symbolic shape rule, the reference against a naive
per-window scan (first maximum, row- or column-major offsets), and every level
(legalized, interp, C) with symbolic dims bound to several sizes including 1."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import REDUCTION, get_spec
from relax_xdsl.shape import dim_to_str


def build(shape: Sequence[int | str], dtype: str = "float32", **params: object) -> tuple[ModuleOp, rx.Var]:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", shape, dtype)
        v = op.max_pool_indices(x, **params)
        fb.ret(v)
    return fb.module, v


def naive(x: np.ndarray, ks: Sequence[int], st: Sequence[int], pads: Sequence[int], dil: Sequence[int],
          storage_order: int, outs: Sequence[int]) -> np.ndarray:
    """A scalar scan per window: the first tap strictly greater than all before it."""
    k = x.ndim - 2
    n, c, sizes = x.shape[0], x.shape[1], x.shape[2:]
    out = np.zeros((n, c, *outs), dtype=np.int64)
    for b, ch in itertools.product(range(n), range(c)):
        for y in itertools.product(*(range(o) for o in outs)):
            best, where = None, None
            for tap in itertools.product(*(range(t) for t in ks)):
                p = [y[i] * st[i] - pads[i] + tap[i] * dil[i] for i in range(k)]
                if all(0 <= p[i] < sizes[i] for i in range(k)) and (best is None or x[(b, ch, *p)] > best):
                    best, where = x[(b, ch, *p)], p
            assert where is not None
            order = where if storage_order == 0 else where[::-1]
            dims = sizes if storage_order == 0 else sizes[::-1]
            out[(b, ch, *y)] = (b * c + ch) * int(np.prod(sizes)) + int(np.ravel_multi_index(order, dims))
    return out


def test_shape_rule_and_pattern() -> None:
    _, v = build(["n", 3, "h", 5], pool_size=[3, 2], strides=[2, 1], padding=[1, 0, 1, 0], ceil_mode=True)
    assert [dim_to_str(d) for d in v.type.sym_shape] == ["n", "3", "(h - 1) ceildiv 2 + 1", "4"]
    assert v.type.dtype == "int64"
    assert get_spec("max_pool_indices").pattern == REDUCTION


@pytest.mark.parametrize(("params", "message"), [
    (dict(pool_size=[2, 2], storage_order=2), "storage_order must be 0"),
    (dict(pool_size=[2, 2, 2]), "pool_size must have 1 or 2 ints"),
    (dict(pool_size=[9, 1]), "smaller than the dilated window"),
])
def test_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(rx.ShapeError, match=message):
        build([1, 2, 5, 5], **params)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_reference_matches_naive_scan(storage_order: int, dtype: str) -> None:
    x = rand((2, 3, 6, 5), dtype)  # small ints: many ties, the first one wins
    got = get_spec("max_pool_indices").reference(x, pool_size=(3, 2), strides=(2, 1), padding=(1, 0, 1, 1),
                                                 dilation=(1, 2), ceil_mode=False, storage_order=storage_order)
    assert_close(got, naive(x, (3, 2), (2, 1), (1, 0), (1, 2), storage_order, got.shape[2:]))


def test_reference_3d_column_major() -> None:
    x = rand((1, 2, 4, 3, 5))
    got = get_spec("max_pool_indices").reference(x, pool_size=(2, 2, 3), strides=(1, 2, 2), padding=(0,),
                                                 dilation=(1,), ceil_mode=False, storage_order=1)
    assert_close(got, naive(x, (2, 2, 3), (1, 2, 2), (0, 0, 0), (1, 1, 1), 1, got.shape[2:]))


@pytest.mark.parametrize("storage_order", [0, 1])
def test_levels_2d(storage_order: int) -> None:
    module, _ = build(["n", 2, "h", 5], pool_size=[3, 2], strides=[2, 1], padding=[1, 0, 1, 1], ceil_mode=True,
                      storage_order=storage_order)
    # integer-valued floats: windows with several maxima, the first in window order wins
    check_levels(module, [(np.round(rand((n, 2, h, 5), seed=n)),) for n, h in zip(SIZES, reversed(SIZES))])


def test_levels_int_ties_1d_and_3d() -> None:
    module, _ = build(["n", 2, "w"], "int32", pool_size=[3], padding=[1, 1])
    check_levels(module, [(rand((n, 2, w), "int32", seed=n),) for n, w in zip(SIZES, reversed(SIZES))])
    module, _ = build(["n", 1, "d", 3, 4], pool_size=[2, 2, 2], strides=[1, 1, 2], dilation=[1, 2, 1],
                      storage_order=1)
    check_levels(module, [(np.round(rand((n, 1, d + 1, 3, 4), seed=n)),) for n, d in zip(SIZES, reversed(SIZES))],
                 levels=("legalized", "c"))
