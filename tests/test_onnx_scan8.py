"""ONNX Scan at opset 8: a batch axis in front of every input and output
and a sequence_lens input, imported as a Scan over the batch whose body is
the Scan of one entry (both relax.while); results equal onnxruntime's.
sequence_lens other than the full length is refused (at import when
known, a ShapeError when it runs)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import RelaxError, ShapeError

ort = pytest.importorskip("onnxruntime")


def _vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def scan8_model(directions=None, lens_input: bool = False, typed_body: bool = True, **attrs):
    """state [b, 2] accumulates x [b, s, 2] (read backwards when directions
    says so) and y [b, s] (times 2); scan outputs: the running sum and y*2."""
    f = (lambda shape: shape) if typed_body else (lambda shape: None)
    body = helper.make_graph(
        [helper.make_node("Add", ["st", "xi"], ["st2"]), helper.make_node("Identity", ["st2"], ["run"]),
         helper.make_node("Add", ["yi", "yi"], ["twice"])],
        "body", [_vi("st", T.FLOAT, [2]), _vi("xi", T.FLOAT, [2]), _vi("yi", T.FLOAT, [])],
        [_vi("st2", T.FLOAT, f([2])), _vi("run", T.FLOAT, f([2])), _vi("twice", T.FLOAT, f([]))])
    if directions is not None:
        attrs["directions"] = directions
    node = helper.make_node("Scan", ["lens" if lens_input else "", "st0", "x", "y"], ["st", "runs", "twices"],
                            num_scan_inputs=2, body=body, **attrs)
    inputs = [("st0", T.FLOAT, ["b", 2]), ("x", T.FLOAT, ["b", "s", 2]), ("y", T.FLOAT, ["b", "s"])]
    if lens_input:
        inputs.insert(0, ("lens", T.INT64, ["b"]))
    return onnx_model([node], inputs, ["st", "runs", "twices"], opset=8)


def _feeds(b: int, s: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 10 * b + s)
    return {"st0": rng.standard_normal((b, 2)).astype("float32"), "x": rng.standard_normal((b, s, 2)).astype("float32"),
            "y": rng.standard_normal((b, s)).astype("float32")}


def _check(m, feeds_list, targets=(("c", "default"), ("interp", "baseline"))) -> None:
    module = rx.parse_module(rx.print_module(rx.from_onnx(m)))
    sess = ort.InferenceSession(m.SerializeToString())
    runs = [lambda *a: rx.evaluate(module, "main", *a)]
    runs += [rx.compile(module, target=t, pipeline=p).main for t, p in targets]
    for run in runs:
        for feeds in feeds_list:
            got, want = run(*feeds.values()), sess.run(None, feeds)
            assert len(got) == len(want)
            for a, w in zip(got, want):
                assert a.shape == w.shape
                np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("typed_body", [True, False])
def test_batched_scan_matches_onnxruntime(typed_body: bool) -> None:
    _check(scan8_model(typed_body=typed_body), [_feeds(1, 1), _feeds(3, 4), _feeds(2, 1)])


def test_a_reversed_scan_input() -> None:
    _check(scan8_model(directions=[1, 0]), [_feeds(1, 3), _feeds(2, 5)])


def test_full_length_sequence_lens_runs_and_a_shorter_one_is_a_shape_error() -> None:
    m = scan8_model(lens_input=True)
    full = [{"lens": np.full(b, s, np.int64), **_feeds(b, s)} for b, s in ((1, 1), (3, 4))]
    _check(m, full, targets=(("c", "default"),))
    short = {"lens": np.array([4, 2, 4], np.int64), **_feeds(3, 4)}
    module = rx.from_onnx(m)
    with pytest.raises(ShapeError, match="sequence_lens_entries_not_full_length"):
        rx.evaluate(module, "main", *short.values())
    with pytest.raises(ShapeError, match="sequence_lens_entries_not_full_length"):
        rx.compile(module, target="c").main(*short.values())


def test_known_short_sequence_lens_is_an_import_error() -> None:
    m = scan8_model(lens_input=True)
    m.graph.initializer.append(helper.make_tensor("lens", T.INT64, [2], [3, 1]))
    del m.graph.input[0]
    m.graph.input[1].type.tensor_type.shape.dim[0].dim_value = 2  # x: [2, s, 2] -> static length below
    m.graph.input[1].type.tensor_type.shape.dim[1].dim_value = 3
    with pytest.raises(RelaxError, match=r"Scan.*sequence_lens \[3, 1\] other than the full sequence length 3"):
        rx.from_onnx(m)


def test_attributes_of_the_other_opset_are_import_errors() -> None:
    with pytest.raises(RelaxError, match="'scan_input_axes' is not an attribute of Scan before opset 9"):
        rx.from_onnx(scan8_model(scan_input_axes=[0, 0]))
    m = scan8_model(directions=[0, 0])
    m.opset_import[0].version = 9
    m.graph.node[0].input.pop(0)
    with pytest.raises(RelaxError, match="'directions' is opset 8's"):
        rx.from_onnx(m)
