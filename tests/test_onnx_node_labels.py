"""Import errors name the node: `node 'name' (Concat)` when the exporter
named it, else its position in the graph, `node 3 (Concat)` (most exporters
leave nodes unnamed, and `'#3'` read like a name)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402

F = TensorProto.FLOAT


def _model(nodes: list[Any], inits: dict[str, np.ndarray] | None = None) -> Any:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [2, 3])],
                              [helper.make_empty_tensor_value_info(nodes[-1].output[0])],
                              [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _relus(k: int) -> list[Any]:
    return [helper.make_node("Relu", ["x" if i == 0 else f"r{i - 1}"], [f"r{i}"]) for i in range(k)]


def _error(m: Any) -> str:
    with pytest.raises(rx.OnnxImportError) as info:
        rx.from_onnx(m)
    return str(info.value)


def test_unnamed_nodes_by_position() -> None:
    bad = helper.make_node("Concat", ["r2", "r2"], ["y"], axis=5)
    msg = _error(_model([*_relus(3), bad]))
    assert msg.startswith("node 3 (Concat): ") and "#" not in msg


def test_named_nodes_by_name() -> None:
    bad = helper.make_node("Concat", ["r0", "r0"], ["y"], axis=5, name="cat")
    assert _error(_model([*_relus(1), bad])).startswith("node 'cat' (Concat): ")


@pytest.mark.parametrize("name, label", [("", "node 1 (NoSuchOp)"), ("gs", "node 'gs' (NoSuchOp)")])
def test_every_error_kind_uses_the_label(name: str, label: str) -> None:
    unknown = helper.make_node("NoSuchOp", ["r0", "r0"], ["y"], name=name)
    assert _error(_model([*_relus(1), unknown])).startswith(f"{label}: op NoSuchOp is not supported")
    attr = helper.make_node("Relu", ["r0"], ["y"], name=name, bogus=1)
    assert _error(_model([*_relus(1), attr])).startswith(label.replace("NoSuchOp", "Relu") + ": attribute 'bogus'")
    cast = helper.make_node("Cast", ["r0"], ["y"], name=name, to=TensorProto.STRING)
    assert _error(_model([*_relus(1), cast])).startswith(label.replace("NoSuchOp", "Cast") + " attribute to")
    undefined = helper.make_node("Add", ["r0", "nowhere"], ["y"], name=name)
    assert _error(_model([*_relus(1), undefined])).startswith(label.replace("NoSuchOp", "Add") + ": input 1")


def _runtime_model(nodes: list[Any], inputs: list[tuple[str, int, list[int]]]) -> Any:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_empty_tensor_value_info(nodes[-1].output[0])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _runner(m: Any, level: str) -> Any:
    module = rx.from_onnx(m)
    return (lambda *a: rx.evaluate(module, "main", *a)) if level == "evaluator" else \
        rx.compile(module, target=level)["main"]


I64 = TensorProto.INT64


@pytest.mark.parametrize("level", ["evaluator", "interp", "c"])
def test_runtime_checks_name_the_node(level: str) -> None:
    """Slice's and Pad's run-time axes and Dropout's run-time ratio fail when
    they run with a BoundsError naming the ONNX node, not the internal take."""
    x = np.zeros((2, 3), "float32")
    sl = _runtime_model([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="slice_0")],
                        [("x", F, [2, 3]), ("s", I64, [2]), ("e", I64, [2]), ("a", I64, [2])])
    run = _runner(sl, level)
    with pytest.raises(rx.BoundsError, match=r"^node 'slice_0' \(Slice\): an entry of axes \(an axis of the rank-2 "
                                             r"data\).*index 5 is out of range"):
        run(x, np.array([0, 0]), np.array([1, 1]), np.array([0, 5]))
    with pytest.raises(rx.BoundsError, match=r"^node 'slice_0' \(Slice\): axes name an axis twice"):
        run(x, np.array([0, 0]), np.array([1, 1]), np.array([1, -1]))
    pad = _runtime_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "p", "", "a"], ["y"])],
                         [("x", F, [2, 3]), ("p", I64, [2]), ("a", I64, [1])])
    with pytest.raises(rx.BoundsError, match=r"^node 1 \(Pad\): an entry of axes .*index -3 is out of range"):
        _runner(pad, level)(x, np.array([1, 1]), np.array([-3]))
    drop = _runtime_model([helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop")],
                          [("x", F, [2, 3]), ("r", F, []), ("t", TensorProto.BOOL, [])])
    with pytest.raises(rx.BoundsError, match=r"^node 'drop' \(Dropout\): ratio must be in \[0, 1\)"):
        _runner(drop, level)(x, np.array(1.5, "float32"), np.array(True))
