"""Graph-level control flow (issue 16, item 5): `relax.if`, `relax.while`
and `relax.call` (recursion included): printing and parsing, verification
with positions, the builder's type joins, and reference semantics."""

from __future__ import annotations

import numpy as np
import pytest
from relax_xdsl.dialects.relax import TensorType
from util import roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import IRParseError, RelaxError, ResourceLimitError, ShapeError

I64 = TensorType.of([], "int64")


def factorial_module():
    with rx.FunctionBuilder("fact", outputs=[I64]) as fb:
        n = fb.param("n", [], "int64")
        fb.ret(fb.if_(op.less_equal(n, 1), lambda: fb.const(np.array(1, np.int64)),
                      lambda: op.multiply(n, fb.call("fact", op.subtract(n, 1)))))
    return fb.module


def test_recursion_through_if_and_call() -> None:
    module = roundtrip(factorial_module())
    for n, want in ((0, 1), (1, 1), (5, 120), (10, 3628800)):
        assert int(rx.evaluate(module, "fact", np.array(n))) == want


def test_recursion_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_RECURSION_DEPTH", "30")
    with pytest.raises(ResourceLimitError, match="deeper than 30"):
        rx.evaluate(factorial_module(), "fact", np.array(1000))
    monkeypatch.delenv("RELAX_XDSL_MAX_RECURSION_DEPTH")
    with pytest.raises(ResourceLimitError, match="recursion deeper than"):  # Python's stack, before 1000 calls
        rx.evaluate(factorial_module(), "fact", np.array(10**6))


def branches_module():
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4])
        y = fb.param("y", ["m", 4])
        c = fb.param("c", [], "bool")
        r = fb.if_(c, lambda: op.exp(x), lambda: y)
        same = fb.if_(c, lambda: op.negative(x), lambda: x)
        fb.ret(r, same)
    return fb.module


def test_branches_of_different_shapes_join_with_a_fresh_symbol() -> None:
    module = branches_module()
    text = rx.print_module(module)
    assert "relax.if %c : !relax.tensor<[], i1> -> (!relax.tensor<[s0, 4], f32>)" in text
    assert "-> (!relax.tensor<[n, 4], f32>)" in text  # both branches [n, 4]: n kept
    module = roundtrip(module)
    x, y = np.random.rand(2, 4).astype("float32"), np.random.rand(5, 4).astype("float32")
    r, same = rx.evaluate(module, "main", x, y, np.array(True))
    np.testing.assert_allclose(r, np.exp(x), rtol=1e-6)
    np.testing.assert_array_equal(same, -x)
    r, same = rx.evaluate(module, "main", x, y, np.array(False))
    np.testing.assert_array_equal(r, y)
    np.testing.assert_array_equal(same, x)


def growing_loop_module():
    """A tensor that grows by one row per iteration: its carried type's
    symbol is bound afresh every iteration."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1, 4])
        steps = fb.param("steps", [], "int64")
        acc, i = fb.while_([x, fb.const(np.array(0, np.int64))],
                           lambda acc, i: op.less(i, steps),
                           lambda acc, i: [op.concat([acc, op.add(x, op.astype(i, "float32"))], axis=0),
                                           op.add(i, 1)],
                           carried=[TensorType.of(["k", 4], "float32"), I64])
        fb.ret(acc, i)
    return fb.module


@pytest.mark.parametrize("steps", [0, 1, 5])
def test_a_loop_grows_a_tensor(steps: int) -> None:
    module = roundtrip(growing_loop_module())
    x = np.arange(4, dtype="float32").reshape(1, 4)
    acc, i = rx.evaluate(module, "main", x, np.array(steps))
    want = np.concatenate([x] + [x + k for k in range(steps)], axis=0)
    np.testing.assert_array_equal(acc, want)
    assert int(i) == steps


def test_a_declared_result_type_is_checked_at_run_time() -> None:
    with rx.FunctionBuilder("main", outputs=[TensorType.of([3], "float32")]) as fb:
        x = fb.param("x", ["n"])
        fb.ret(op.exp(x))
    assert "relax.match_cast" in rx.print_module(fb.module)
    rx.evaluate(fb.module, "main", np.zeros(3, "float32"))
    with pytest.raises(ShapeError):
        rx.evaluate(fb.module, "main", np.zeros(4, "float32"))


def test_builder_errors() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"])
        with pytest.raises(RelaxError, match="0-d bool"):
            fb.if_(x, lambda: x, lambda: x)
        c = fb.param("c", [], "bool")
        with pytest.raises(RelaxError, match="dtype float32 is not int64|cannot join"):
            fb.if_(c, lambda: x, lambda: op.astype(x, "int64"))
        with pytest.raises(RelaxError, match="no relax.function @nope"):
            fb.call("nope", x)


HEAD = ("builtin.module {\n  relax.function @main(%x: !relax.tensor<[n], f32>, %c: !relax.tensor<[], i1>) "
        "-> !relax.tensor<[n], f32> {\n")
TAIL = "    relax.return %x : !relax.tensor<[n], f32>\n  }\n}\n"
BAD = [
    ("    %r = relax.if %x : !relax.tensor<[n], f32> -> (!relax.tensor<[n], f32>) {\n"
     "      relax.yield %x : !relax.tensor<[n], f32>\n    } else {\n      relax.yield %x : !relax.tensor<[n], f32>\n    }\n",
     "condition must be"),
    ("    %r = relax.if %c : !relax.tensor<[], i1> -> (!relax.tensor<[n, 2], f32>) {\n"
     "      relax.yield %x : !relax.tensor<[n], f32>\n    } else {\n      relax.yield %x : !relax.tensor<[n], f32>\n    }\n",
     "rank 1 is not 2"),
    ("    %r = relax.call @nowhere(%x) : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>\n",
     "@nowhere does not exist"),
    ("    %r = relax.call @main(%x) : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>\n",
     "gives 1 values, 2 expected"),
    ("    relax.yield %x : !relax.tensor<[n], f32>\n", "relax.yield"),
]


@pytest.mark.parametrize(("body", "match"), BAD)
def test_malformed_control_flow_is_a_parse_error_with_a_position(body: str, match: str) -> None:
    with pytest.raises(IRParseError, match=match) as info:
        rx.parse_module(HEAD + body + TAIL)
    assert ":3:" in str(info.value) or "line 3" in str(info.value)


# -- compiled: lower-graph turns them into scf.if / scf.while / func.call --------------------------------------------

RUNS = [("interp", "baseline"), ("interp", "default"), ("c", "baseline"), ("c", "default")]


def _compiled_equals_evaluator(module, func: str, cases) -> None:
    for target, pipeline in RUNS:
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for args in cases:
            got, want = exe[func](*args), rx.evaluate(module, func, *args)
            got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
            for a, b in zip(got, want):
                assert a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=1e-6)


def test_compiled_recursion() -> None:
    _compiled_equals_evaluator(factorial_module(), "fact", [(np.array(n),) for n in (0, 1, 6)])


def test_compiled_branches_of_different_shapes() -> None:
    x, y = np.random.rand(2, 4).astype("float32"), np.random.rand(5, 4).astype("float32")
    _compiled_equals_evaluator(branches_module(), "main", [(x, y, np.array(c)) for c in (True, False)])


def test_compiled_growing_loop() -> None:
    x = np.arange(4, dtype="float32").reshape(1, 4)
    _compiled_equals_evaluator(growing_loop_module(), "main", [(x, np.array(k)) for k in (0, 1, 7)])


@pytest.mark.parametrize("target", ["interp", "c"])
def test_compiled_recursion_is_bounded(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_RECURSION_DEPTH", "20")
    exe = rx.compile(factorial_module(), target=target)
    assert int(exe.fact(np.array(10))) == 3628800
    with pytest.raises(ResourceLimitError, match="recursion deeper than"):
        exe.fact(np.array(50))
    assert int(exe.fact(np.array(3))) == 6  # the process and the executable survive


def test_a_declared_type_that_a_branch_breaks_is_a_shape_error_everywhere() -> None:
    """A branch yielding a shape other than the result type promises."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [4])
        c = fb.param("c", [], "bool")
        r = fb.if_(c, lambda: x, lambda: op.concat([x, x], axis=0))
        fb.ret(fb.match_cast(r, [4]))
    args = (np.zeros(4, "float32"), np.array(False))
    with pytest.raises(ShapeError):
        rx.evaluate(fb.module, "main", *args)
    for target, pipeline in RUNS:
        exe = rx.compile(fb.module, target=target, pipeline=pipeline)
        with pytest.raises(ShapeError):
            exe.main(*args)
        assert exe.main(np.zeros(4, "float32"), np.array(True)).shape == (4,)


def test_a_loop_over_a_parameter_does_not_write_it() -> None:
    """The loop owns copies of its initial values: the caller's array and a
    constant are not changed by the iterations."""
    x = np.arange(4, dtype="float32").reshape(1, 4)
    before = x.copy()
    for target, pipeline in RUNS:
        exe = rx.compile(growing_loop_module(), target=target, pipeline=pipeline)
        exe.main(x, np.array(3))
        exe.main(x, np.array(3))
        np.testing.assert_array_equal(x, before)
