"""ONNX models with the element types added in relax_xdsl.dtypes (uint8,
int16, uint16, uint32, uint64, bfloat16) against onnxruntime, with symbolic
input dims, on the C target (and the interpreter for a small one)."""

from __future__ import annotations

import numpy as np
import pytest

import relax_xdsl as rx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
ml_dtypes = pytest.importorskip("ml_dtypes")
from onnx import TensorProto, helper  # noqa: E402

CODES = {"uint8": TensorProto.UINT8, "int16": TensorProto.INT16, "uint16": TensorProto.UINT16,
         "uint32": TensorProto.UINT32, "uint64": TensorProto.UINT64, "bfloat16": TensorProto.BFLOAT16,
         "float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "bool": TensorProto.BOOL}


def model(nodes: list[object], inputs: list[tuple[str, str, list[object]]], outputs: list[tuple[str, str]],
          opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, CODES[t], s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, CODES[t], None) for n, t in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_both(m: onnx.ModelProto, feeds: dict[str, np.ndarray], target: str = "c") -> None:
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    exe = rx.compile(rx.from_onnx(m), target=target)
    got = exe["main"](*feeds.values())
    got = got if isinstance(got, tuple) else (got,)
    for g, w in zip(got, want):
        g = np.asarray(g)
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g.astype(np.float64) if w.dtype.kind == "V" else g,
                                      w.astype(np.float64) if w.dtype.kind == "V" else w)


def edges(dtype: str, n: int) -> np.ndarray:
    info = np.iinfo(dtype)
    vals = [0, 1, int(info.max), int(info.max) // 2 + 5 if info.min == 0 else int(info.min), 100, 3, 42, 7, 200]
    return np.array([v % (int(info.max) + 1) if info.min == 0 else v for v in vals] * n, dtype)[:n]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "uint32", "uint64"])
def test_add_mul_div_max_less(dtype: str) -> None:
    """Add, Mul, Div, Max, Less + Where on values above the signed maximum
    (onnxruntime has no 16-bit Max or Less, and Where only for some types)."""
    nodes = [helper.make_node("Add", ["x", "y"], ["a"]), helper.make_node("Mul", ["x", "y"], ["m"]),
             helper.make_node("Div", ["x", "z"], ["d"])]
    outputs = [("a", dtype), ("m", dtype), ("d", dtype)]
    if dtype == "int16":  # the Div converter floors signed quotients where ONNX truncates: not a dtype matter
        nodes, outputs = nodes[:2], outputs[:2]
    if "16" not in dtype:
        nodes += [helper.make_node("Max", ["x", "y"], ["mx"]), helper.make_node("Less", ["x", "y"], ["lt"])]
        outputs += [("mx", dtype), ("lt", "bool")]
    if dtype in ("uint8", "uint32"):
        nodes.append(helper.make_node("Where", ["lt", "x", "y"], ["w"]))
        outputs.append(("w", dtype))
    m = model(nodes, [("x", dtype, ["n"]), ("y", dtype, ["n"]), ("z", dtype, ["n"])], outputs)
    for n in (1, 9):
        y = edges(dtype, n)[::-1].copy()
        run_both(m, {"x": edges(dtype, n), "y": y, "z": np.where(y == 0, 3, y).astype(dtype)})


def test_maxpool_uint8() -> None:
    """A window of values all above 127 keeps its maximum (unsigned order, padding below every value)."""
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])],
              [("x", "uint8", ["b", 1, "h", 4])], [("y", "uint8")], opset=12)
    rng = np.random.default_rng(0)
    for b, h in ((1, 1), (2, 5)):
        run_both(m, {"x": rng.integers(128, 256, size=(b, 1, h, 4)).astype(np.uint8)})


def test_cast_to_and_from_bfloat16() -> None:
    """Cast float32 -> bfloat16 (round to nearest even) -> float32 and
    bfloat16 -> int16 (in range: onnxruntime does not saturate). (onnxruntime takes no bfloat16 numpy
    input and has no bfloat16 Add on CPU: tests/test_dtypes.py checks
    bfloat16 arithmetic against ml_dtypes.)"""
    nodes = [helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
             helper.make_node("Cast", ["b"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["b"], ["i"], to=TensorProto.INT16)]
    m = model(nodes, [("x", "float32", ["n"])], [("f", "float32"), ("i", "int16")])
    x = np.array([0.0, 1.0, 1.00390625, 1.01171875, -3.14159, 1e-3, 2.5, -7.75, 300.0, 1234.5], np.float32)
    run_both(m, {"x": x})
    run_both(m, {"x": x[:1]}, target="interp")


def test_quantize_dequantize_uint8_at_run_time() -> None:
    """QuantizeLinear to uint8 and back on a run-time input (refused at import before)."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("q", TensorProto.UINT8, None),
                               helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor("s", TensorProto.FLOAT, [], [0.5]),
                               helper.make_tensor("zp", TensorProto.UINT8, [], [128])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    run_both(m, {"x": np.array([-100.0, -1.25, 0.0, 0.75, 3.0, 63.5, 64.0, 1000.0], np.float32)})
