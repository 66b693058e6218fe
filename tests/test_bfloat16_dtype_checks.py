"""bfloat16 is a float everywhere a dtype is tested (dtypes.is_float), not
only where its name starts with "float": a size cast to bfloat16 rounds
like any bfloat16 value instead of staying an exact symbolic dim."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402


@pytest.mark.parametrize("level", ["evaluator", "c"])
def test_size_cast_to_bfloat16_rounds(level: str) -> None:
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Cast", ["s"], ["b"], to=TensorProto.BFLOAT16),
             helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    module = rx.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    x = np.zeros(257, np.float32)
    got = rx.evaluate(module, "main", x) if level == "evaluator" else rx.compile(module, target="c")["main"](x)
    # 257 is not a bfloat16 number: it rounds to the even neighbour, 256
    np.testing.assert_array_equal(np.asarray(got), np.array([256.0], np.float32))


@pytest.mark.parametrize("level", ["evaluator", "c"])
def test_range_of_bfloat16_counts_like_a_float(level: str) -> None:
    """Range's length for bfloat16 start/limit/delta is ceil((limit - start) / delta),
    as for float32 (it took the integer path before: 5 elements for 0..5 by 1.5)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    graph = helper.make_graph([helper.make_node("Range", ["a", "b", "d"], ["y"])], "g",
                              [helper.make_tensor_value_info(n, TensorProto.BFLOAT16, []) for n in "abd"],
                              [helper.make_empty_tensor_value_info("y")])
    module = rx.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    bf16 = ml_dtypes.bfloat16
    args = [np.array(0, bf16), np.array(5, bf16), np.array(1.5, bf16)]
    got = rx.evaluate(module, "main", *args) if level == "evaluator" else rx.compile(module, target="c")["main"](*args)
    np.testing.assert_array_equal(np.asarray(got).astype(np.float32), [0.0, 1.5, 3.0, 4.5])
