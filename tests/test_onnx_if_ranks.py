"""ONNX If whose branches give an output at different ranks: taken at
import time when the condition is known then (a constant, or computed
from shapes); otherwise an import error naming the node, the output and
both ranks (a graph value has one rank)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import RelaxError

ort = pytest.importorskip("onnxruntime")


def _branches():
    """then: x summed to a scalar; else: x flattened (rank 1)."""
    then_g = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["t"], keepdims=0)], "then", [],
                               [helper.make_tensor_value_info("t", T.FLOAT, None)])
    shape = helper.make_tensor("minus_one", T.INT64, [1], [-1])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["m1"], value=shape),
                                helper.make_node("Reshape", ["x", "m1"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", T.FLOAT, None)])
    return {"then_branch": then_g, "else_branch": else_g}


def runtime_cond_model():
    return onnx_model([helper.make_node("If", ["c"], ["y"], name="pick_rank", **_branches())],
                      [("x", T.FLOAT, ["n", 2]), ("c", T.BOOL, [])], ["y"])


def shape_cond_model(rank: int):
    """cond = (rank of x == 2), known from x's shape at import time."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Size", ["s"], ["r"]),
             helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", T.INT64, [], [2])),
             helper.make_node("Equal", ["r", "two"], ["c"]),
             helper.make_node("If", ["c"], ["y"], **_branches())]
    return onnx_model(nodes, [("x", T.FLOAT, ["n", 2] if rank == 2 else ["n", 2, 1])], ["y"])


def test_a_run_time_condition_names_the_node_the_output_and_both_ranks() -> None:
    with pytest.raises(RelaxError, match=r"pick_rank.*If.*output 0 \('y'\): then_branch gives rank 0 .*else_branch "
                                         r"rank 1 .*known at import time, and here it is computed at run time"):
        rx.from_onnx(runtime_cond_model())


@pytest.mark.parametrize("value", [True, False])
def test_a_constant_condition_takes_its_branch(value: bool) -> None:
    m = runtime_cond_model()
    m.graph.initializer.append(helper.make_tensor("c", T.BOOL, [], [value]))
    del m.graph.input[1]
    module = rx.from_onnx(m)
    assert "relax.if" not in rx.print_module(module)
    sess = ort.InferenceSession(m.SerializeToString())
    exe = rx.compile(module, target="c")
    for n in (1, 3):
        x = np.arange(2 * n, dtype="float32").reshape(n, 2)
        want = sess.run(None, {"x": x})[0]
        got = exe.main(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("rank", [2, 3])
def test_a_condition_computed_from_shapes_takes_its_branch(rank: int) -> None:
    m = shape_cond_model(rank)
    module = rx.from_onnx(m)
    sess = ort.InferenceSession(m.SerializeToString())
    x = np.arange(6, dtype="float32").reshape((3, 2) if rank == 2 else (3, 2, 1))
    want = sess.run(None, {"x": x})[0]
    for target in ("interp", "c"):
        got = rx.compile(module, target=target).main(x)
        assert got.shape == want.shape == (() if rank == 2 else (6,))
        np.testing.assert_allclose(got, want, rtol=1e-6)
