"""Manipulation and creation ops: symbolic shape deduction (including the
precision the issue asks for and the error cases), and values at every
level (reference evaluator, legalized programs, interp, C) against numpy,
with the symbols bound to several sizes including 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from util import SIZES, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.shape import dim_to_str, sym

Spec = tuple[str, Sequence[Any], str]


def out_shape(params: Sequence[Spec], body: Callable[..., rx.Var]) -> list[str]:
    with rx.FunctionBuilder("main") as fb:
        v = body(*[fb.param(n, s, d) for n, s, d in params])
        types = v.type.types.data if hasattr(v.type, "types") else [v.type]
        return [", ".join(dim_to_str(d) for d in t.sym_shape) for t in types]


def module(params: Sequence[Spec], body: Callable[..., rx.Var]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(body(*[fb.param(n, s, d) for n, s, d in params]))
    return fb.module


X = [("x", ["b", "t", 256], "float32")]


@pytest.mark.parametrize(("params", "body", "expected"), [
    (X, lambda x: op.reshape(x, [-1, 64]), ["4*b*t, 64"]),
    (X, lambda x: op.reshape(x, ["b", "t", 4, 64]), ["b, t, 4, 64"]),
    (X, lambda x: op.reshape(x, ["b", -1]), ["b, 256*t"]),
    ([("x", ["n", 6], "float32")], lambda x: op.reshape(x, [-1, 4]), ["(3*n) floordiv 2, 4"]),
    ([("a", ["n", 4], "float32"), ("b", ["m", 4], "float32")], lambda a, b: op.concat([a, b], axis=0), ["m + n, 4"]),
    ([("a", ["n", 4], "float32"), ("b", ["n", 2], "float32")], lambda a, b: op.concat([a, b, a], axis=1), ["n, 10"]),
    (X, lambda x: op.permute_dims(x, [2, 0, 1]), ["256, b, t"]),
    (X, lambda x: op.permute_dims(x), ["256, t, b"]),
    (X, lambda x: op.flatten(x), ["256*b*t"]),
    ([("x", ["n", 6], "float32")], lambda x: op.split(x, 3, axis=1), ["n, 2"] * 3),
    ([("x", ["n", 6], "float32")], lambda x: op.split(x, [1, 4], axis=1), ["n, 1", "n, 3", "n, 2"]),
    ([("x", [sym("n") * 2, 3], "float32")], lambda x: op.split(x, 2), ["n, 3", "n, 3"]),
    ([("x", ["n", 8], "float32")], lambda x: op.strided_slice(x, [1], [1], [7], [2]), ["n, 3"]),
    ([("x", ["n", 8], "float32")], lambda x: op.strided_slice(x, [0], [1], [2**31]),
     ["max(0, n - min(1, n)), 8"]),  # n may be 0: x[1:] is then empty, not n - 1 = -1 long
    ([("x", ["n", 8], "float32")], lambda x: op.strided_slice(x, [0, 1], [-2, -1], [100, 0], [1, -1]),
     ["max(0, -max(0, n - 2) + min(100, n)), 7"]),
    ([("x", ["n", 5], "float32"), ("i", ["k"], "int64")], lambda x, i: op.take(x, i, axis=0), ["k, 5"]),
    ([("x", ["n", 5], "float32"), ("i", [2, 3], "int32")], lambda x, i: op.take(x, i, axis=1), ["n, 2, 3"]),
    ([("x", [1, 5], "float32")], lambda x: op.broadcast_to(x, ["n", 5]), ["n, 5"]),
    ([("x", ["n", 5], "float32")], lambda x: op.expand_dims(x, [0, -1]), ["1, n, 5, 1"]),
    ([("x", ["n", 1, 5, 1], "float32")], lambda x: op.squeeze(x), ["n, 5"]),
    ([("x", ["n", 1, 5, 1], "float32")], lambda x: op.squeeze(x, [1]), ["n, 5, 1"]),
])
def test_shape_deduction(params: Sequence[Spec], body: Callable[..., rx.Var], expected: list[str]) -> None:
    assert out_shape(params, body) == expected


def test_creation_shapes() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3], "float32")
        assert [dim_to_str(d) for d in op.zeros(["n", 3]).shape] == ["n", "3"]
        assert op.ones([2, "n"], "int32").dtype == "int32"
        assert op.full(["n"], 2.5, "float32").shape[0] == sym("n")
        assert op.arange(0, 10, 3).shape == (4,)
        fb.ret(x)


@pytest.mark.parametrize(("params", "body", "match"), [
    ([("x", [5], "float32")], lambda x: op.reshape(x, [-1, 2]), "not divisible by 2"),
    ([("x", [6], "float32")], lambda x: op.reshape(x, [4, 2]), "element count"),
    (X, lambda x: op.reshape(x, [-1, -1]), "at most one -1"),
    ([("a", ["n", 4], "float32"), ("b", ["n", 5], "float32")], lambda a, b: op.concat([a, b]), "dim 1"),
    ([("a", ["n", 4], "float32"), ("b", ["n"], "float32")], lambda a, b: op.concat([a, b]), "rank"),
    (X, lambda x: op.permute_dims(x, [0, 0, 1]), "repeats"),
    (X, lambda x: op.permute_dims(x, [0, 1]), "each of the 3 axes"),
    ([("x", ["n", 6], "float32")], lambda x: op.split(x, 4, axis=1), "4 equal sections"),
    ([("x", ["n", 5], "float32")], lambda x: op.broadcast_to(x, ["n", 4]), "dim 1"),
    ([("x", ["n", 5], "float32")], lambda x: op.squeeze(x, [1]), "squeezed dim 1"),
    ([("x", ["n", 5], "float32"), ("i", [2], "float32")], lambda x, i: op.take(x, i), "integers"),
    ([("x", ["n", 5], "float32")], lambda x: op.strided_slice(x, [1], [0], [5], [0]), "non-zero"),
])
def test_shape_errors(params: Sequence[Spec], body: Callable[..., rx.Var], match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        out_shape(params, body)


def cases(specs: Sequence[Spec], sizes: Sequence[dict[str, int]]) -> list[tuple[np.ndarray, ...]]:
    out = []
    for k, env in enumerate(sizes):
        arrays = []
        for i, (_, shape, dtype) in enumerate(specs):
            concrete = tuple(env[d] if isinstance(d, str) else int(d.subs({sym(s): v for s, v in env.items()}))
                             if not isinstance(d, int) else d for d in shape)
            arrays.append(rand(concrete, dtype, seed=10 * k + i))
        out.append(tuple(arrays))
    return out


ENVS = [{"n": n, "m": m, "k": k} for n, m, k in zip(SIZES, reversed(SIZES), (2, 1, 3))]

VALUE_CASES: list[tuple[str, Sequence[Spec], Callable[..., rx.Var], Callable[..., Any]]] = [
    ("reshape", [("x", ["n", 6], "float32")], lambda x: op.reshape(x, [-1, 3, 2]), lambda x: x.reshape(-1, 3, 2)),
    ("reshape-sym", [("x", ["n", "m", 4], "int32")], lambda x: op.reshape(x, ["m", -1]),
     lambda x: x.reshape(x.shape[1], -1)),
    ("reshape-merge-split", [("x", ["n", 4, "m", 2], "float32")], lambda x: op.reshape(x, ["n", 2, 2, -1]),
     lambda x: x.reshape(x.shape[0], 2, 2, -1)),
    ("reshape-unit-dims", [("x", ["n", 1, "m"], "float32")], lambda x: op.reshape(x, [1, "n", "m", 1]),
     lambda x: x.reshape(1, x.shape[0], x.shape[2], 1)),
    ("reshape-symbolic-merge", [("x", ["n", "m", 3], "int32")], lambda x: op.reshape(x, [-1, 3]),
     lambda x: x.reshape(-1, 3)),
    ("reshape-unsplit-sym", [("x", ["n", "m"], "float32")], lambda x: op.reshape(x, ["m", "n"]),
     lambda x: x.reshape(x.shape[1], x.shape[0])),
    ("flatten", [("x", ["n", 2, 3], "float32")], op.flatten, lambda x: x.ravel()),
    ("permute", [("x", ["n", "m", 3], "float32")], lambda x: op.permute_dims(x, [1, 2, 0]),
     lambda x: x.transpose(1, 2, 0)),
    ("concat", [("a", ["n", 3], "float32"), ("b", ["m", 3], "float32")], lambda a, b: op.concat([a, b, a]),
     lambda a, b: np.concatenate([a, b, a])),
    ("concat-1", [("a", ["n", 2], "int64"), ("b", ["n", 1], "int64")], lambda a, b: op.concat([b, a], axis=-1),
     lambda a, b: np.concatenate([b, a], axis=1)),
    ("split", [("x", ["n", 6], "float32")], lambda x: op.split(x, [2, 5], axis=1),
     lambda x: (x[:, :2], x[:, 2:5], x[:, 5:])),
    ("split-sections", [("x", ["n", 4], "float32")], lambda x: op.split(x, 2, axis=1), lambda x: (x[:, :2], x[:, 2:])),
    ("slice", [("x", ["n", 8], "float32")], lambda x: op.strided_slice(x, [1], [1], [7], [2]), lambda x: x[:, 1:7:2]),
    ("slice-sym", [("x", ["n", 8], "float32")], lambda x: op.strided_slice(x, [0, 1], [-2, -1], [100, 0], [1, -1]),
     lambda x: x[-2:100, -1:0:-1]),
    ("tril", [("x", ["n", "m"], "float32")], lambda x: op.tril(x), lambda x: np.tril(x)),
    ("tril-k", [("x", [2, "n", "m"], "int32")], lambda x: op.tril(x, k=-1), lambda x: np.tril(x, -1)),
    ("triu-k", [("x", ["n", "m"], "float32")], lambda x: op.triu(x, k=2), lambda x: np.triu(x, 2)),
    ("triu-bool", [("x", ["n", 3], "bool")], lambda x: op.triu(x), lambda x: np.triu(x)),
    ("slice-symbolic-bounds", [("x", [9, "m"], "float32"), ("y", ["n", "m"], "float32")],
     lambda x, y: op.add(op.strided_slice(x, [0], [1], ["n + 1"], assume_inbound=True), y),
     lambda x, y: x[1:y.shape[0] + 1] + y),
    ("take", [("x", ["n", 5], "float32"), ("i", ["k"], "int64")], lambda x, i: op.take(x, i, axis=1),
     lambda x, i: np.take(x, i, axis=1)),
    ("take-flat", [("x", ["n", 2], "float32"), ("i", [3], "int32")], lambda x, i: op.take(x, i),
     lambda x, i: np.take(x.ravel(), i)),
    ("broadcast", [("x", ["n", 1, 3], "float32")], lambda x: op.broadcast_to(x, [2, "n", 4, 3]),
     lambda x: np.broadcast_to(x, (2, x.shape[0], 4, 3))),
    ("expand", [("x", ["n", 3], "float32")], lambda x: op.expand_dims(x, [0, 3]), lambda x: x[None, :, :, None]),
    ("squeeze", [("x", ["n", 1, 3], "float32")], lambda x: op.squeeze(x, [1]), lambda x: x[:, 0, :]),
    ("zeros", [("x", ["n", 3], "float32")], lambda x: op.add(x, op.zeros(["n", 3], "float32")), lambda x: x + 0),
    ("ones", [("x", ["n"], "int32")], lambda x: op.multiply(x, op.ones(["n"], "int32")), lambda x: x * 1),
    ("full", [("x", ["n", 2], "float32")], lambda x: op.add(x, op.full([1, 2], 2.5)), lambda x: x + np.float32(2.5)),
    ("arange", [("x", [4], "float32")], lambda x: op.add(x, op.arange(1.0, 3.0, 0.5, "float32")),
     lambda x: x + np.arange(1.0, 3.0, 0.5, dtype=np.float32)),
    ("arange-symbolic-length", [("x", ["n", "m"], "int64")],
     lambda x: op.add(x, op.arange(2.0, step=3.0, length=["m"])), lambda x: x + (2 + 3 * np.arange(x.shape[1]))),
]


@pytest.mark.parametrize(("name", "specs", "body", "numpy_fn"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_at_every_level(name: str, specs: Sequence[Spec], body: Callable[..., rx.Var],
                               numpy_fn: Callable[..., Any]) -> None:
    mod = module(specs, body)
    all_cases = cases(specs, ENVS)
    if name.startswith("take"):  # in range for every x here (out of range: tests/test_safety_indexing.py)
        all_cases = [(c[0], np.array([-1, 0, 1, -2, 1, 0][: c[1].size], c[1].dtype).reshape(c[1].shape))
                     if c[1].size <= 6 else c for c in all_cases]
    for args in all_cases:
        want = numpy_fn(*args)
        got = rx.evaluate(mod, "main", *args)
        if isinstance(want, tuple):
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
        else:
            assert np.array_equal(got, want), name
    check_levels(mod, all_cases)


def test_reshape_unprovable_count_is_checked_at_run_time() -> None:
    mod = module([("x", ["n", "m"], "float32")], lambda x: op.reshape(x, ["m", "n"]))
    assert_args = (rand((2, 3)),)
    np.testing.assert_array_equal(rx.evaluate(mod, "main", *assert_args), assert_args[0].reshape(3, 2))
    mod2 = module([("x", ["n"], "float32")], lambda x: op.reshape(x, [2, -1]))
    with pytest.raises(rx.ShapeError):
        rx.evaluate(mod2, "main", rand((3,)))
    with pytest.raises(rx.ShapeError):
        rx.compile(mod2, target="c").main(rand((3,)))


@pytest.mark.parametrize(("src", "dst", "groups"), [
    (["b", "t", 4, 64], ["b", "t", 256], [(0, 1, 0, 1), (1, 2, 1, 2), (2, 4, 2, 3)]),
    (["b", 4, "t", 64], ["b", "t", 256], [(0, 1, 0, 1), (1, 4, 1, 3)]),
    (["n", 1, "m"], ["n", "m"], [(0, 1, 0, 1), (1, 2, 1, 1), (2, 3, 1, 2)]),
    (["n", "m"], ["n", 1, "m"], [(0, 1, 0, 1), (1, 2, 1, 3)]),
    (["n", "m"], ["m", "n"], [(0, 2, 0, 2)]),
    ([6], [2, 3], [(0, 1, 0, 2)]),
])
def test_reshape_indexes_each_run_of_dims_on_its_own(src: list[Any], dst: list[Any], groups: list[Any]) -> None:
    """A reshape is legalized run by run: splitting or merging dims next to
    dims that stay costs no division by a symbol."""
    from relax_xdsl.ops.manipulate import _reshape_groups
    from relax_xdsl.shape import canon

    assert _reshape_groups([canon(d) for d in src], [canon(d) for d in dst]) == groups
