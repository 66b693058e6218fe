"""ONNX NonZero, Compress, Unique, TopK with a run-time K and
NonMaxSuppression with run-time limits: one imported model, compiled once
per target and pipeline, against onnxruntime on inputs whose result size
differs from call to call."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from util import assert_close, onnx_model

import relax_xdsl as rx
from relax_xdsl.frontend.onnx_import import OnnxImportError

ort = pytest.importorskip("onnxruntime")
RUNS = [("interp", "baseline"), ("interp", "default"), ("c", "baseline"), ("c", "default")]
F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _against_ort(model, cases) -> None:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    expected = [tuple(sess.run(None, dict(zip(names, args)))) for args in cases]
    module = rx.from_onnx(model)
    for args, exp in zip(cases, expected):
        got = rx.evaluate(module, "main", *args)
        assert_close(got if isinstance(got, tuple) else (got,), exp)
    for target, pipeline in RUNS:
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for args, exp in zip(cases, expected):
            got = exe["main"](*args)
            assert_close(got if isinstance(got, tuple) else (got,), exp)


def test_nonzero() -> None:
    model = onnx_model([helper.make_node("NonZero", ["x"], ["y"])], [("x", F, ["n", 2])], ["y"])
    _against_ort(model, [(np.array([[0, 1], [2, 0], [0, 0]], "float32"),), (np.ones((4, 2), "float32"),)])


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_compress(axis: int | None) -> None:
    attrs = {} if axis is None else {"axis": axis}
    model = onnx_model([helper.make_node("Compress", ["x", "c"], ["y"], **attrs)],
                       [("x", F, [3, 2]), ("c", B, ["m"])], ["y"])
    _against_ort(model, [(np.arange(6, dtype="float32").reshape(3, 2), np.array([0, 1], bool)),
                         (np.arange(6, dtype="float32").reshape(3, 2), np.array([1, 1], bool))])


@pytest.mark.parametrize("sorted_, axis", [(1, None), (0, None), (1, 0), (0, 0)])
def test_unique(sorted_: int, axis: int | None) -> None:
    attrs = {"sorted": sorted_} | ({} if axis is None else {"axis": axis})
    model = onnx_model([helper.make_node("Unique", ["x"], ["y", "i", "inv", "cnt"], **attrs)],
                       [("x", F, ["n", 2])], ["y", "i", "inv", "cnt"], opset=11)
    _against_ort(model, [(np.array([[2, 1], [0, 3], [2, 1]], "float32"),),
                         (np.array([[1, 1], [1, 1], [4, 0], [4, 1]], "float32"),)])


def test_topk_with_k_from_the_graph() -> None:
    model = onnx_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)],
                       [("x", F, [2, "n"]), ("k", I64, [1])], ["v", "i"])
    x = np.array([[1, 5, 2, 5, 0], [3, 3, 3, 1, 9]], "float32")
    _against_ort(model, [(x, np.array([k], "int64")) for k in (1, 2, 5)])


@pytest.mark.parametrize("center", [0, 1])
def test_non_max_suppression_with_run_time_limits(center: int) -> None:
    names = ["boxes", "scores", "max_out", "iou", "thr"]
    model = onnx_model([helper.make_node("NonMaxSuppression", names, ["y"], center_point_box=center)],
                       [("boxes", F, [1, "n", 4]), ("scores", F, [1, 2, "n"]), ("max_out", I64, [1]),
                        ("iou", F, [1]), ("thr", F, [1])], ["y"])
    rng = np.random.default_rng(3)
    cases = [(rng.random((1, n, 4)).astype("float32"), rng.random((1, 2, n)).astype("float32"),
              np.array([m], "int64"), np.array([0.4], "float32"), np.array([t], "float32"))
             for n, m, t in ((5, 2, 0.1), (8, 6, 0.3), (3, 10, 0.0))]
    _against_ort(model, cases)


def test_unique_of_a_scalar_along_an_axis_is_an_import_error() -> None:
    model = onnx_model([helper.make_node("Unique", ["x"], ["y"], axis=0)], [("x", F, [])], ["y"], opset=11)
    with pytest.raises((OnnxImportError, rx.ShapeError), match="rank"):
        rx.from_onnx(model)
