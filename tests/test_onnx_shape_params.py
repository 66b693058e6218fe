"""keep_params_in_input (and `relax-xdsl import --params-file`) on models
with shape subgraphs: small integer initializers (shape vectors, axes,
slice bounds) stay import-time constants, so `Concat(Shape(x)[:1], [-1])`
still folds to `[n, -1]`; only the weights become parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402

WEIGHT = np.linspace(-1, 1, 6, dtype=np.float32)


def shape_subgraph_model() -> Any:
    """x[n, 2, 3] -> Reshape(x, Concat(Shape(x)[0:1], [-1])) + w: the pattern torch emits for flatten."""
    node = helper.make_node
    nodes = [node("Shape", ["x"], ["s"]), node("Slice", ["s", "start", "end"], ["s0"]),
             node("Concat", ["s0", "tail"], ["shape"], axis=0), node("Reshape", ["x", "shape"], ["r"]),
             node("Add", ["r", "w"], ["y"])]
    inits = {"start": np.array([0], np.int64), "end": np.array([1], np.int64), "tail": np.array([-1], np.int64),
             "w": WEIGHT}
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort(m: Any, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_without_keep_params() -> None:
    m = shape_subgraph_model()
    exe = rx.compile(rx.from_onnx(m), target="c")
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 2, 3)).astype(np.float32)
        np.testing.assert_allclose(exe["main"](x), _ort(m, x), rtol=1e-6)


def test_with_keep_params_only_weights_become_parameters() -> None:
    m = shape_subgraph_model()
    mod, params = rx.from_onnx(m, keep_params_in_input=True)
    assert list(params) == ["w"]
    text = rx.print_module(mod)
    assert "%w: !relax.tensor<[6], f32>" in text and "-> !relax.tensor<[n, 6], f32>" in text
    exe = rx.compile(mod, target="c")
    for n in (1, 4):
        x = np.random.default_rng(n).standard_normal((n, 2, 3)).astype(np.float32)
        np.testing.assert_allclose(exe["main"](x, *params.values()), _ort(m, x), rtol=1e-6)


def test_large_integer_initializers_stay_parameters() -> None:
    """The exception is for shape-sized integer arrays only: a larger integer table is still a parameter."""
    n = 1000  # far above any shape vector
    table = np.arange(n, dtype=np.int64)
    graph = helper.make_graph([helper.make_node("Add", ["x", "t"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [n])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [n])],
                              [numpy_helper.from_array(table, "t")])
    mod, params = rx.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                               keep_params_in_input=True)
    assert list(params) == ["t"]
    x = np.ones(n, np.int64)
    np.testing.assert_array_equal(rx.compile(mod, target="interp")["main"](x, params["t"]), x + table)


def test_cli_params_file(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(shape_subgraph_model(), str(model))
    out, params, x = tmp_path / "m.mlir", tmp_path / "w.npz", tmp_path / "x.npy"
    np.save(x, np.ones((2, 2, 3), np.float32))
    cli = str(Path(sys.executable).parent / "relax-xdsl")
    proc = subprocess.run([cli, "import", str(model), "-o", str(out), "--params-file", str(params)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([cli, "run", str(out), "--params", str(params), "--input", f"x={x}", "--target", "interp",
                           "--check"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "output: float32[2, 6]" in proc.stdout
