"""The loop limit (RELAX_XDSL_MAX_LOOP_ITERATIONS): a `relax.while` whose
condition stays true too long, as an ONNX Loop with a hostile trip count
(2**62, condition always true) is, stops with a ResourceLimitError naming
the loop and the limit on every level, instead of running forever."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from relax_xdsl.dialects.relax import TensorType
from util import onnx_model

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import ResourceLimitError

I64 = TensorType.of([], "int64")
RUNS = [("interp", "baseline"), ("interp", "default"), ("c", "baseline"), ("c", "default")]


def counting_loop_module():
    """`i` counts to `steps`, `acc` adds x each time: `steps` iterations."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"])
        steps = fb.param("steps", [], "int64")
        acc, i = fb.while_([x, fb.const(np.array(0, np.int64))],
                           lambda acc, i: op.less(i, steps),
                           lambda acc, i: [op.add(acc, x), op.add(i, 1)],
                           carried=[TensorType.of(["n"], "float32"), I64])
        fb.ret(acc, i)
    return fb.module


def _runners(module):
    yield "evaluator", lambda *a: rx.evaluate(module, "main", *a)
    for target, pipeline in RUNS:
        yield f"{target}/{pipeline}", rx.compile(module, target=target, pipeline=pipeline).main


@pytest.mark.parametrize("n", [1, 3])
def test_a_loop_over_the_limit_fails_on_every_level(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_LOOP_ITERATIONS", "5")
    x = np.arange(n, dtype="float32")
    for level, run in _runners(counting_loop_module()):
        acc, i = run(x, np.array(5))  # exactly the limit: runs
        assert int(i) == 5, level
        np.testing.assert_allclose(acc, 6 * x, err_msg=level)
        with pytest.raises(ResourceLimitError, match=r"relax\.while.*more iterations than 5 "
                                                     r"\(RELAX_XDSL_MAX_LOOP_ITERATIONS\)"):
            run(x, np.array(6))
        assert int(run(x, np.array(2))[1]) == 2, level  # the executable survives


def test_the_default_limit_lets_long_loops_run() -> None:
    for level, run in _runners(counting_loop_module()):
        if level.startswith(("evaluator", "interp")):
            continue  # Python levels: 10**5 iterations would be slow, not wrong
        acc, i = run(np.ones(2, "float32"), np.array(10**5))
        assert int(i) == 10**5, level


def test_a_bad_limit_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_LOOP_ITERATIONS", "many")
    with pytest.raises(ResourceLimitError, match="RELAX_XDSL_MAX_LOOP_ITERATIONS='many' is not an integer"):
        rx.evaluate(counting_loop_module(), "main", np.ones(2, "float32"), np.array(1))


def endless_onnx_loop():
    """ONNX Loop with trip count 2**62 and a condition that stays true."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Add", ["acc", "x"], ["acc2"])], "body",
        [helper.make_tensor_value_info("i", T.INT64, []), helper.make_tensor_value_info("c", T.BOOL, []),
         helper.make_tensor_value_info("acc", T.FLOAT, None)],
        [helper.make_tensor_value_info("c2", T.BOOL, []), helper.make_tensor_value_info("acc2", T.FLOAT, None)])
    return onnx_model([helper.make_node("Loop", ["M", "cond", "x"], ["total"], name="endless", body=body)],
                      [("x", T.FLOAT, ["n"]), ("M", T.INT64, []), ("cond", T.BOOL, [])], ["total"])


def test_an_onnx_loop_of_hostile_trip_count_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_LOOP_ITERATIONS", "50")
    module = rx.from_onnx(endless_onnx_loop())
    x = np.ones(3, "float32")
    for level, run in _runners(module):
        np.testing.assert_allclose(run(x, np.array(50), np.array(True)), 51 * x, err_msg=level)
        with pytest.raises(ResourceLimitError, match=r"relax\.while \(%total.*more iterations than 50"):
            run(x, np.array(2**62), np.array(True))
