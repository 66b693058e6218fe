"""ONNX If and Loop imported onto relax.if / relax.while: bodies see the
enclosing graph's values, a constant condition picks its branch at import
time, Loop's scan outputs grow one slice per iteration; results equal
onnxruntime's."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx

ort = pytest.importorskip("onnxruntime")


def _graph(nodes, name, inputs, outputs):
    return helper.make_graph(nodes, name, inputs, outputs)


def _vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def if_model():
    then_g = _graph([helper.make_node("Exp", ["x"], ["t"]), helper.make_node("Concat", ["x", "x"], ["t2"], axis=0)],
                    "then", [], [_vi("t", T.FLOAT, None), _vi("t2", T.FLOAT, None)])
    else_g = _graph([helper.make_node("Neg", ["x"], ["e"]), helper.make_node("Identity", ["x"], ["e2"])],
                    "else", [], [_vi("e", T.FLOAT, None), _vi("e2", T.FLOAT, None)])
    return onnx_model([helper.make_node("If", ["c"], ["y", "z"], then_branch=then_g, else_branch=else_g)],
                      [("x", T.FLOAT, ["n"]), ("c", T.BOOL, [])], ["y", "z"])


def loop_model():
    body = _graph([helper.make_node("Add", ["acc", "x"], ["acc2"]), helper.make_node("Identity", ["c"], ["c2"]),
                   helper.make_node("Cast", ["i"], ["fi"], to=T.FLOAT), helper.make_node("Mul", ["x", "fi"], ["sc"])],
                  "body", [_vi("i", T.INT64, []), _vi("c", T.BOOL, []), _vi("acc", T.FLOAT, None)],
                  [_vi("c2", T.BOOL, []), _vi("acc2", T.FLOAT, None), _vi("sc", T.FLOAT, [3])])
    return onnx_model([helper.make_node("Loop", ["M", "", "x"], ["acc", "scans"], body=body)],
                      [("x", T.FLOAT, [3]), ("M", T.INT64, [])], ["acc", "scans"])


def _same_as_ort(m, feeds_list):
    module = rx.parse_module(rx.print_module(rx.from_onnx(m)))
    sess = ort.InferenceSession(m.SerializeToString())
    runs = [lambda *a: rx.evaluate(module, "main", *a)]
    runs += [rx.compile(module, target=t, pipeline=p).main for t, p in (("interp", "default"), ("c", "fast"))]
    for run in runs:
        for feeds in feeds_list:
            got = run(*feeds.values())
            want = sess.run(None, feeds)
            for a, b in zip(got, want):
                assert a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=1e-6)
    return module


def test_if_with_branches_of_different_shapes() -> None:
    module = _same_as_ort(if_model(), [{"x": np.arange(n, dtype="float32"), "c": np.array(c)}
                                       for n in (1, 4) for c in (True, False)])
    assert "relax.if" in rx.print_module(module)


def test_a_constant_condition_picks_its_branch_at_import() -> None:
    m = if_model()
    m.graph.initializer.append(helper.make_tensor("c", T.BOOL, [], [True]))
    del m.graph.input[1]
    module = rx.from_onnx(m)
    assert "relax.if" not in rx.print_module(module)
    y, z = rx.evaluate(module, "main", np.arange(3, dtype="float32"))
    np.testing.assert_allclose(y, np.exp(np.arange(3, dtype="float32")), rtol=1e-6)
    assert z.shape == (6,)


@pytest.mark.parametrize("trips", [1, 4])
def test_loop_with_carried_values_and_scan_outputs(trips: int) -> None:
    _same_as_ort(loop_model(), [{"x": np.array([1, 2, 3], "float32"), "M": np.array(trips)}])


def test_loop_of_zero_iterations() -> None:
    _same_as_ort(loop_model(), [{"x": np.array([1, 2, 3], "float32"), "M": np.array(0)}])


def test_a_body_reading_an_undefined_name_is_an_import_error() -> None:
    then_g = _graph([helper.make_node("Exp", ["nowhere"], ["t"])], "then", [], [_vi("t", T.FLOAT, None)])
    else_g = _graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", T.FLOAT, None)])
    m = onnx_model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="branch")],
                   [("x", T.FLOAT, ["n"]), ("c", T.BOOL, [])], ["y"])
    with pytest.raises(rx.OnnxImportError, match="'nowhere' is not defined"):
        rx.from_onnx(m)


def test_if_branches_that_cannot_join_are_an_import_error() -> None:
    then_g = _graph([helper.make_node("Exp", ["x"], ["t"])], "then", [], [_vi("t", T.FLOAT, None)])
    else_g = _graph([helper.make_node("Shape", ["x"], ["e"])], "else", [], [_vi("e", T.INT64, None)])
    m = onnx_model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="branch")],
                   [("x", T.FLOAT, ["n"]), ("c", T.BOOL, [])], ["y"])
    with pytest.raises(rx.OnnxImportError, match="'branch' \\(If\\).*cannot join"):
        rx.from_onnx(m)
