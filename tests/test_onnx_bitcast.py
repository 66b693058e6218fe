"""ONNX BitCast (opset 26) on targets c and interp, with a symbolic dim:
the bits reinterpreted (numpy's view; onnxruntime 1.32 has no BitCast),
and a `to` of another width refused at import naming the node."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import relax_xdsl as rx
from relax_xdsl.errors import RelaxError


def _model(src: int, dst: int) -> object:
    node = helper.make_node("BitCast", ["x"], ["y"], name="bc", to=dst)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", src, ["n", 3])],
                              [helper.make_tensor_value_info("y", dst, ["n", 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])


@pytest.mark.parametrize(("src", "dst", "np_src", "np_dst"), [
    (TensorProto.FLOAT, TensorProto.INT32, "float32", "int32"),
    (TensorProto.INT64, TensorProto.DOUBLE, "int64", "float64"),
    (TensorProto.UINT16, TensorProto.FLOAT16, "uint16", "float16"),
    (TensorProto.FLOAT16, TensorProto.INT16, "float16", "int16"),
    (TensorProto.BOOL, TensorProto.INT8, "bool", "int8"),
])
@pytest.mark.parametrize("target", ["c", "interp"])
def test_bitcast_matches_numpy_view(src: int, dst: int, np_src: str, np_dst: str, target: str) -> None:
    exe = rx.compile(rx.from_onnx(_model(src, dst)), target=target)
    rng = np.random.default_rng(0)
    for n in (1, 4):
        if np_src == "bool":
            x = rng.integers(0, 2, (n, 3)).astype(bool)
        else:
            x = rng.standard_normal((n, 3)).astype(np_src) if np_src.startswith("float") else \
                rng.integers(-1000, 1000, (n, 3)).astype(np_src)
        got = exe["main"](x)
        assert got.dtype == np.dtype(np_dst)
        np.testing.assert_array_equal(got, x.view(np_dst))


def test_bitcast_folds_constants() -> None:
    """A constant input is folded at import with the same bits."""
    c = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, -0.0]))
    node = helper.make_node("BitCast", ["c"], ["y"], to=TensorProto.UINT32)
    graph = helper.make_graph([c, node], "g", [], [helper.make_tensor_value_info("y", TensorProto.UINT32, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    np.testing.assert_array_equal(rx.compile(rx.from_onnx(model), target="c")["main"](),
                                  np.array([0x3F800000, 0x80000000], dtype="uint32"))


@pytest.mark.parametrize(("src", "dst"), [(TensorProto.FLOAT, TensorProto.INT64), (TensorProto.INT8, TensorProto.INT16),
                                          (TensorProto.DOUBLE, TensorProto.FLOAT)])
def test_bitcast_other_width_refused_at_import(src: int, dst: int) -> None:
    with pytest.raises(RelaxError, match=r"node 'bc' \(BitCast\): attribute to=.* does not have the width"):
        rx.from_onnx(_model(src, dst))
