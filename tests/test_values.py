"""Shape and scalar values (issue 16, item 1): `!relax.shape` and
`!relax.prim` parameters, `make_shape`, `shape_to_tensor`, `tensor_to_shape`,
`prim_value`, `prim_to_tensor`, `tensor_to_prim` and `match_cast` on them, on
every level (evaluator, interp and C with both pipelines), with sizes that
change from call to call of one executable, and their hostile inputs."""

from __future__ import annotations

import numpy as np
import pytest
from util import assert_close, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import IRParseError, RelaxError, ResourceLimitError, ShapeError
from relax_xdsl.ir import parse_module
from relax_xdsl.shape import sym

RUNS = [("interp", "baseline"), ("interp", "default"), ("c", "baseline"), ("c", "default")]


def _all_levels(module, cases, func: str = "main") -> None:
    """The evaluator's results, then the same from each target and pipeline
    (one executable each, called on every case), the module round-tripped."""
    module = roundtrip(module)
    expected = [rx.evaluate(module, func, *args) for args in cases]
    for target, pipeline in RUNS:
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for args, exp in zip(cases, expected):
            assert_close(exe[func](*args), exp)
    return expected


def _raises_everywhere(module, args, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        rx.evaluate(module, "main", *args)
    for target, pipeline in RUNS:
        exe = rx.compile(module, target=target, pipeline=pipeline)
        with pytest.raises(error, match=match):
            exe.main(*args)


def causal_mask_module():
    """What torch exports for a decoder's mask: positions 0..past compared
    with the query positions, sizes becoming data through a shape value."""
    with rx.FunctionBuilder("main") as fb:
        cache = fb.param("cache", ["b", "p", 4])
        q = fb.param("q", ["b", 1, 4])
        p = sym("p")
        cols = op.arange(0, length=[p + 1])                        # [p + 1] int64
        pos = fb.shape_to_tensor(fb.make_shape([p]))               # [1] int64: the new token's position
        mask = op.less_equal(cols, pos)                            # [p + 1] bool
        scores = op.sum(op.multiply(q, op.mean(cache, axis=[1], keepdims=True)), axis=[2])
        out = op.add(op.reshape(op.astype(mask, "float32"), [1, p + 1]), scores)
        fb.ret(out)
    return fb.module


def test_sizes_become_data_in_a_causal_mask() -> None:
    cases = [(np.random.rand(2, n, 4).astype("float32"), np.random.rand(2, 1, 4).astype("float32")) for n in (1, 3, 7)]
    expected = _all_levels(causal_mask_module(), cases)
    for (cache, _), got in zip(cases, expected):
        n = cache.shape[1]
        assert got.shape == (2, n + 1)


def reshape_by_data_module():
    """Data becomes sizes: an int64 [2] tensor gives fresh symbols, which a
    reshape and a creation op then use."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"])
        dims = fb.param("dims", [2], "int64")
        s = fb.tensor_to_shape(dims)
        a, b = s.sym_value
        y = op.reshape(x, [a, b])
        z = op.add(y, op.full([a, b], 1.0))
        fb.ret(z, fb.shape_to_tensor(s))
    return fb.module


def test_data_becomes_sizes_through_tensor_to_shape() -> None:
    module = reshape_by_data_module()
    assert "relax.tensor_to_shape %dims : !relax.tensor<[2], i64> -> !relax.shape<[s0, s1]>" in str(module)
    cases = [(np.arange(n, dtype="float32"), np.array(ab, dtype="int64"))
             for n, ab in ((6, (2, 3)), (6, (3, 2)), (12, (4, 3)), (1, (1, 1)))]
    expected = _all_levels(module, cases)
    assert expected[2][0].shape == (4, 3)


def test_tensor_to_shape_checks_the_values_everywhere() -> None:
    module = reshape_by_data_module()
    x = np.arange(6, dtype="float32")
    _raises_everywhere(module, (x, np.array([2, 2], "int64")), ShapeError, "elements|s0\\*s1")
    _raises_everywhere(module, (x, np.array([-2, -3], "int64")), ShapeError, "s0")
    _raises_everywhere(module, (x, np.array([2**62, 1], "int64")), ShapeError, "2\\*\\*62")


def test_hostile_sizes_from_data_are_resource_errors_not_crashes() -> None:
    """Values in range whose product overflows: checked size arithmetic."""
    with rx.FunctionBuilder("main") as fb:
        dims = fb.param("dims", [2], "int64")
        a, b = fb.tensor_to_shape(dims).sym_value
        fb.ret(op.sum(op.full([a, b], 1.0)))
    for target, pipeline in RUNS:
        exe = rx.compile(fb.module, target=target, pipeline=pipeline)
        with pytest.raises(ResourceLimitError):
            exe.main(np.array([2**61, 2**61], "int64"))
        assert float(exe.main(np.array([3, 5], "int64"))) == 15.0


def rotary_row_module():
    """A scalar parameter binds the position t, used only in slice bounds:
    the row of a rotary table at the current position."""
    with rx.FunctionBuilder("main") as fb:
        table = fb.param("table", ["m", 8])
        t = fb.prim_param("t", "int64", "t")
        row = op.strided_slice(table, axes=[0], begin=[sym("t")], end=[sym("t") + 1])
        fb.ret(row, fb.prim_value(sym("t") + 1), fb.prim_to_tensor(t))
    return fb.module


def test_a_scalar_parameter_binds_a_position() -> None:
    table = np.random.rand(10, 8).astype("float32")
    cases = [(table, t) for t in (0, 3, 9)]
    expected = _all_levels(rotary_row_module(), cases)
    for (_, t), (row, nxt, as_tensor) in zip(cases, expected):
        np.testing.assert_array_equal(row, table[t:t + 1])
        assert nxt == t + 1 and isinstance(nxt, np.int64)
        assert as_tensor.shape == () and int(as_tensor) == t


def test_scalar_and_shape_arguments_are_checked_before_running() -> None:
    module = rotary_row_module()
    table = np.zeros((10, 8), "float32")
    exe = rx.compile(module, target="c", pipeline="fast")
    for bad, error in ((2.5, TypeError), ("3", TypeError), (np.array([1, 2]), TypeError), (2**63, TypeError),
                       (True, TypeError)):
        with pytest.raises(error):
            exe.main(table, bad)
    row, _, _ = exe.main(table, 10)  # past the table's end: an empty slice, as numpy's
    assert row.shape == (0, 8)


def shape_param_module():
    with rx.FunctionBuilder("main") as fb:
        s = fb.shape_param("s", ["a", "b"])
        x = fb.param("x", ["a * b"])
        a, b = s.sym_value
        fb.ret(op.reshape(x, [a, b]), fb.make_shape([b, a + 1]))
    return fb.module


def test_a_shape_parameter_binds_its_symbols() -> None:
    cases = [((2, 3), np.arange(6, dtype="float32")), (np.array([4, 1]), np.arange(4, dtype="float32"))]
    expected = _all_levels(shape_param_module(), cases)
    assert expected[0][1] == (3, 3)
    _raises_everywhere(shape_param_module(), ((2, 4), np.arange(6, dtype="float32")), ShapeError, "a\\*b|input x")


@pytest.mark.parametrize("target", ["interp", "c"])
def test_the_host_checks_values_it_is_given_directly(target: str) -> None:
    """The compiled host code checks shape and scalar values itself (the
    Python-side check is skipped when calling the backend directly)."""
    exe = rx.compile(shape_param_module(), target=target, pipeline="fast")
    x = np.arange(6, dtype="float32")
    for bad, match in (([2, 4], "a\\*b"), ([2**62, 1], "2\\*\\*62"), ([-3, -2], "symbol a")):
        with pytest.raises(ShapeError, match=match):
            exe.backend.call("main", [np.array(bad, "int64"), x])


def test_match_cast_refines_shape_and_scalar_values() -> None:
    with rx.FunctionBuilder("main") as fb:
        dims = fb.param("dims", [1], "int64")
        n = fb.param("n", [], "int64")
        (k,) = fb.match_cast(fb.tensor_to_shape(dims), ["k"]).sym_value
        fb.match_cast(fb.tensor_to_prim(n), sym("k") + 1)
        fb.ret(op.full([k], 2.0))
    module = fb.module
    _all_levels(module, [(np.array([3]), np.array(4)), (np.array([1]), np.array(2))])
    _raises_everywhere(module, (np.array([3]), np.array(3)), ShapeError, "k \\+ 1|k \\+ 1")


BAD_TEXT = [
    ("relax.tensor_to_shape %x : !relax.tensor<[2], f32> -> !relax.shape<[a, b]>", "tensor<\\[2\\], i64>"),
    ("relax.tensor_to_shape %i : !relax.tensor<[2], i64> -> !relax.shape<[a]>", "tensor<\\[1\\], i64>"),
    ("relax.prim_value : !relax.prim<i64>", "must carry the value"),
    ("relax.make_shape : !relax.prim<f32, n>", "only an integer scalar"),
    ("relax.shape_to_tensor %s : !relax.shape<[a, b]> -> !relax.tensor<[3], i64>", "tensor<\\[2\\], i64>"),
]


@pytest.mark.parametrize(("line", "match"), BAD_TEXT)
def test_malformed_value_ops_are_parse_errors_with_a_position(line: str, match: str) -> None:
    text = ("builtin.module {\n  relax.function @main(%x: !relax.tensor<[2], f32>, %i: !relax.tensor<[2], i64>, "
            "%s: !relax.shape<[a, b]>) -> !relax.tensor<[2], f32> {\n    %r = " + line +
            "\n    relax.return %x : !relax.tensor<[2], f32>\n  }\n}\n")
    with pytest.raises(IRParseError, match=match) as info:
        parse_module(text)
    assert ":3:" in str(info.value) or "line 3" in str(info.value)


def test_unbound_symbols_in_make_shape_are_a_clear_error() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"])
        fb.ret(fb.shape_to_tensor(fb.make_shape([sym("m")])), x)
    with pytest.raises((RelaxError, ShapeError), match="m"):
        rx.compile(fb.module, target="c")
    with pytest.raises(ShapeError, match="unbound symbol"):
        rx.evaluate(fb.module, "main", np.zeros(2, "float32"))


def test_binding_ops_whose_values_are_unused_are_never_dead() -> None:
    """tensor_to_shape / tensor_to_prim / match_cast bind symbols later types name: dead-code elimination
    (xDSL's dce, and the rewrite walker of the graph passes) must keep them even when their value is unused."""
    with rx.FunctionBuilder("main") as fb:
        dims = fb.param("dims", [2], "int64")
        a, b = fb.tensor_to_shape(dims).sym_value  # the shape value itself is never used
        fb.ret(op.full([a, b], 1.0))
    for spec in ("dce,baseline", "fold-constants,fold-batch-norm,simplify-layout,baseline", "default"):
        exe = rx.compile(fb.module, pipeline=spec)
        assert exe.main(np.array([2, 3])).shape == (2, 3), spec
