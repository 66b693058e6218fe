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
    runs += [rx.compile(module, target=t, pipeline=p).main for t, p in (("interp", "baseline"), ("c", "default"))]
    for run in runs:
        for feeds in feeds_list:
            got = run(*feeds.values())
            got = got if isinstance(got, tuple) else (got,)
            want = sess.run(None, feeds)
            assert len(got) == len(want)
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


# -- scan outputs of unstated shape, and Scan -------------------------------------------------------------------------

RUNS = [("interp", "baseline"), ("c", "default")]


def _same_as_ort_everywhere(m, feeds_list) -> None:
    """Equal to onnxruntime on the evaluator, the interpreter and C."""
    _same_as_ort(m, feeds_list)


def untyped_scan_loop_model(out_type=None):
    """Loop whose scan output, [2, n] from x [n], has no type in the body (as in expanded ONNX functions)."""
    body = _graph([helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Cast", ["i"], ["fi"], to=T.FLOAT),
                   helper.make_node("Mul", ["x", "fi"], ["xi"]), helper.make_node("Unsqueeze", ["xi", "ax"], ["u"]),
                   helper.make_node("Concat", ["u", "u"], ["sc"], axis=0)],
                  "body", [_vi("i", T.INT64, []), _vi("c", T.BOOL, [])],
                  [_vi("c2", T.BOOL, []), out_type or helper.ValueInfoProto(name="sc")])
    body.initializer.append(helper.make_tensor("ax", T.INT64, [1], [0]))
    return onnx_model([helper.make_node("Loop", ["M", ""], ["scans"], body=body)],
                      [("x", T.FLOAT, ["n"]), ("M", T.INT64, [])], ["scans"])


@pytest.mark.parametrize("out_type", [None, _vi("sc", T.FLOAT, [2, "k"])], ids=["untyped", "dynamic"])
def test_loop_scan_output_of_unstated_shape(out_type) -> None:
    _same_as_ort_everywhere(untyped_scan_loop_model(out_type),
                            [{"x": np.arange(n, dtype="float32"), "M": np.array(m)} for n, m in ((4, 3), (2, 1), (3, 0))])


def test_loop_scan_slices_of_different_shapes_are_a_shape_error() -> None:
    body = _graph([helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Unsqueeze", ["i", "ax"], ["end"]),
                   helper.make_node("Slice", ["x", "zero", "end"], ["sc"])],
                  "body", [_vi("i", T.INT64, []), _vi("c", T.BOOL, [])], [_vi("c2", T.BOOL, []), _vi("sc", T.FLOAT, None)])
    body.initializer.extend([helper.make_tensor("ax", T.INT64, [1], [0]), helper.make_tensor("zero", T.INT64, [1], [0])])
    m = onnx_model([helper.make_node("Loop", ["M", ""], ["scans"], body=body)],
                   [("x", T.FLOAT, ["n"]), ("M", T.INT64, [])], ["scans"])
    module = rx.from_onnx(m)
    x = np.arange(4, dtype="float32")
    assert rx.evaluate(module, "main", x, np.array(1)).shape == (1, 0)  # one slice: nothing to disagree with
    with pytest.raises(rx.ShapeError, match="first_slice_dim"):
        rx.evaluate(module, "main", x, np.array(3))
    with pytest.raises(rx.ShapeError, match="first_slice_dim"):
        rx.compile(module, target="c")["main"](x, np.array(3))


def scan_model(in_dirs=(0, 1), out_axes=(0, 1), out_dirs=(0, 1), typed=True, y_length="t"):
    """Scan over x [t, 3] along axis 0 and y [2, t] along axis 1 (reversed by default): a running sum state,
    and per step the state [3] and x_t * y_t [2, 3] as scan outputs."""
    body = _graph([helper.make_node("Add", ["s", "xt"], ["s2"]), helper.make_node("Identity", ["s2"], ["o1"]),
                   helper.make_node("Unsqueeze", ["yt", "ax"], ["yc"]), helper.make_node("Mul", ["yc", "xt"], ["o2"])],
                  "body", [_vi("s", T.FLOAT, [3]), _vi("xt", T.FLOAT, [3]), _vi("yt", T.FLOAT, [2])],
                  [_vi("s2", T.FLOAT, [3]), _vi("o1", T.FLOAT, [3] if typed else None),
                   _vi("o2", T.FLOAT, [2, 3]) if typed else helper.ValueInfoProto(name="o2")])
    body.initializer.append(helper.make_tensor("ax", T.INT64, [1], [1]))
    node = helper.make_node("Scan", ["s0", "x", "y"], ["s", "ys1", "ys2"], body=body, num_scan_inputs=2,
                            scan_input_axes=[0, 1], scan_input_directions=list(in_dirs),
                            scan_output_axes=list(out_axes), scan_output_directions=list(out_dirs))
    return onnx_model([node], [("s0", T.FLOAT, [3]), ("x", T.FLOAT, ["t", 3]), ("y", T.FLOAT, [2, y_length])],
                      ["s", "ys1", "ys2"])


def _scan_feeds(t: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(t)
    return {"s0": rng.random(3, dtype="float32"), "x": rng.random((t, 3), dtype="float32"),
            "y": rng.random((2, t), dtype="float32")}


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "untyped"])
def test_scan_with_axes_and_directions(typed: bool) -> None:
    _same_as_ort_everywhere(scan_model(typed=typed), [_scan_feeds(t) for t in (4, 1)])


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "untyped"])
def test_scan_of_length_zero(typed: bool) -> None:
    """No iterations: the states come back unchanged and the scan outputs are empty, with the per-iteration dims the
    body's type states or its traced shapes give (onnxruntime 1.x stops with SIGFPE here, so the spec is the check)."""
    module = rx.from_onnx(scan_model(typed=typed))
    feeds = _scan_feeds(0)
    runs = [lambda *a: rx.evaluate(module, "main", *a)]
    runs += [rx.compile(module, target=t, pipeline=p)["main"] for t, p in RUNS]
    for run in runs:
        s, ys1, ys2 = run(*feeds.values())
        np.testing.assert_array_equal(s, feeds["s0"])
        assert ys1.shape == (0, 3) and ys2.shape == (2, 0, 3)


@pytest.mark.parametrize("dirs", [((0, 0), (0, 0), (0, 0)), ((1, 0), (-1, 2), (1, 0))])
def test_scan_directions_and_output_axes(dirs) -> None:
    in_dirs, out_axes, out_dirs = dirs
    module = _same_as_ort(scan_model(in_dirs, out_axes, out_dirs), [_scan_feeds(t) for t in (5, 2)])
    assert "relax.while" in rx.print_module(module)


def test_scan_inputs_of_different_lengths_are_a_shape_error() -> None:
    module = rx.from_onnx(scan_model(y_length="u"))  # lengths t and u: equal only at run time
    assert rx.evaluate(module, "main", *_scan_feeds(3).values())[2].shape == (2, 3, 3)
    s0, x, y = np.zeros(3, "float32"), np.zeros((4, 3), "float32"), np.zeros((2, 5), "float32")
    with pytest.raises(rx.ShapeError):
        rx.evaluate(module, "main", s0, x, y)
    for target, pipeline in RUNS:
        with pytest.raises(rx.ShapeError):
            rx.compile(module, target=target, pipeline=pipeline)["main"](s0, x, y)


def test_scan_before_opset_9_is_an_import_error() -> None:
    m = scan_model()
    m.opset_import[0].version = 8
    with pytest.raises(rx.OnnxImportError, match="Scan before opset 9"):
        rx.from_onnx(m)
