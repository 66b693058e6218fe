"""ONNX RoiAlign, MaxRoiPool and TensorScatter against onnxruntime (target
c, a few on interp), with symbolic dims, and hostile boxes: batch indices
out of range, NaN / huge / zero-size boxes, a huge sampling_ratio."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import relax_xdsl as rx
from relax_xdsl.errors import BoundsError, RelaxError

ort = pytest.importorskip("onnxruntime")
F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(op: str, inputs: list[tuple[str, int, list]], out_shape: list, opset: int, **attrs: object) -> object:
    node = helper.make_node(op, [i[0] for i in inputs], ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", inputs[0][1], out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort(model: object, *args: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, args)))[0]


def _boxes(rng: np.random.Generator, k: int, h: int, w: int, scale: float = 1.0) -> np.ndarray:
    xy = rng.random((k, 2)) * np.array([w, h]) / scale
    wh = rng.random((k, 2)) * np.array([w, h]) / scale
    return np.concatenate([xy, xy + wh], axis=1).astype("float32")


def _roi_model(opset: int = 21, **attrs: object) -> object:
    return _model("RoiAlign", [("x", F32, ["n", 3, "h", "w"]), ("rois", F32, ["k", 4]), ("b", I64, ["k"])],
                  ["k", 3, None, None], opset, **attrs)


@pytest.mark.parametrize("attrs", [
    {"mode": "avg", "coordinate_transformation_mode": "half_pixel", "sampling_ratio": 0},
    {"mode": "avg", "coordinate_transformation_mode": "output_half_pixel", "sampling_ratio": 2},
    {"mode": "max", "coordinate_transformation_mode": "half_pixel", "sampling_ratio": 2},
    {"mode": "max", "coordinate_transformation_mode": "output_half_pixel", "sampling_ratio": 0},
])
def test_roi_align_matches_onnxruntime(attrs: dict) -> None:
    model = _roi_model(output_height=3, output_width=2, spatial_scale=0.5, **attrs)
    exe = rx.compile(rx.from_onnx(model), target="c")
    rng = np.random.default_rng(0)
    for n, h, w, k in [(1, 1, 1, 1), (2, 6, 9, 4), (3, 11, 7, 5)]:
        x = rng.standard_normal((n, 3, h, w)).astype("float32")
        rois = _boxes(rng, k, h, w, 0.5)
        b = rng.integers(0, n, size=k).astype("int64")
        np.testing.assert_allclose(exe["main"](x, rois, b), _ort(model, x, rois, b), rtol=1e-4, atol=1e-5)


def test_roi_align_opset10_is_output_half_pixel_and_interp() -> None:
    model = _roi_model(opset=10, output_height=2, output_width=2)
    exe = rx.compile(rx.from_onnx(model), target="interp")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 4)).astype("float32")
    rois = _boxes(rng, 3, 5, 4)
    b = np.array([1, 0, 1], dtype=np.int64)
    np.testing.assert_allclose(exe["main"](x, rois, b), _ort(model, x, rois, b), rtol=1e-4, atol=1e-5)


def test_roi_align_hostile_boxes() -> None:
    """Zero-size, inverted, far-outside and huge boxes agree with onnxruntime;
    NaN and infinite boxes (undefined there) give 0 and read nothing."""
    model = _roi_model(output_height=2, output_width=2)
    exe = rx.compile(rx.from_onnx(model), target="c")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5)).astype("float32")
    rois = np.array([[1, 1, 1, 1], [4, 4, 1, 2], [-50, -50, -40, -40], [0, 0, 300, 200], [2, 3, 2.5, 3.1]],
                    dtype="float32")
    b = np.array([0, 1, 0, 1, 1], dtype=np.int64)
    np.testing.assert_allclose(exe["main"](x, rois, b), _ort(model, x, rois, b), rtol=1e-4, atol=1e-5)
    bad = np.array([[np.nan, 0, 3, 3], [0, 0, np.inf, 3], [0, 0, 1e30, 1e30], [-np.inf, 0, 3, 3]], dtype="float32")
    got = exe["main"](x, bad, np.zeros(4, dtype=np.int64))
    assert got.shape == (4, 3, 2, 2) and np.isfinite(got).all()
    np.testing.assert_array_equal(got[:2], 0.0)


@pytest.mark.parametrize("target", ["c", "interp"])
def test_roi_align_batch_index_out_of_range(target: str) -> None:
    exe = rx.compile(rx.from_onnx(_roi_model()), target=target)
    x = np.zeros((2, 3, 4, 4), dtype="float32")
    rois = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], dtype="float32")
    for b in ([0, 2], [-1, 0]):
        with pytest.raises(BoundsError, match=r"relax\.roi_align batch index.*index " + str(b[1] if b[1] else b[0])):
            exe["main"](x, rois, np.array(b, dtype=np.int64))


def test_roi_align_attributes_refused_at_import() -> None:
    with pytest.raises(RelaxError, match="sampling_ratio=100000"):
        rx.from_onnx(_roi_model(sampling_ratio=100000))
    with pytest.raises(RelaxError, match="mode='median'"):
        rx.from_onnx(_roi_model(mode="median"))
    with pytest.raises(RelaxError, match="coordinate_transformation_mode='align_corners'"):
        rx.from_onnx(_roi_model(coordinate_transformation_mode="align_corners"))


def _max_roi_model(**attrs: object) -> object:
    return _model("MaxRoiPool", [("x", F32, ["n", 2, "h", "w"]), ("rois", F32, ["k", 5])], ["k", 2, None, None],
                  21, **attrs)  # onnxruntime implements MaxRoiPool-1 and RoiAlign-16, not their opset-22 forms


def test_max_roi_pool_matches_onnxruntime() -> None:
    model = _max_roi_model(pooled_shape=[2, 3], spatial_scale=0.5)
    exe = rx.compile(rx.from_onnx(model), target="c")
    rng = np.random.default_rng(3)
    for n, h, w, k in [(1, 1, 1, 1), (2, 7, 5, 4), (3, 9, 12, 6)]:
        x = rng.standard_normal((n, 2, h, w)).astype("float32")
        rois = np.concatenate([rng.integers(0, n, (k, 1)), _boxes(rng, k, h, w, 0.5)], axis=1).astype("float32")
        np.testing.assert_allclose(exe["main"](x, rois), _ort(model, x, rois), rtol=1e-5)


def test_max_roi_pool_hostile_boxes() -> None:
    model = _max_roi_model(pooled_shape=[2, 2])
    exe = rx.compile(rx.from_onnx(model), target="c")
    x = np.random.default_rng(4).standard_normal((2, 2, 4, 4)).astype("float32")
    far = np.array([[1, -30, -30, -20, -20], [0, 3, 3, 1, 1], [1, 0, 0, 100, 100]], dtype="float32")
    np.testing.assert_allclose(exe["main"](x, far), _ort(model, x, far), rtol=1e-5)
    huge = np.array([[0, np.nan, 0, 1e30, np.inf]], dtype="float32")
    assert np.isfinite(exe["main"](x, huge)).all()
    for bad in (2.0, -1.0, np.nan, 1e30):
        with pytest.raises(BoundsError, match=r"relax\.max_roi_pool batch index"):
            exe["main"](x, np.array([[bad, 0, 0, 1, 1]], dtype="float32"))


def _scatter_model(mode: str, axis: int, with_indices: bool) -> object:
    inputs = [("past", F32, ["b", 2, 6, 3]), ("update", F32, ["b", 2, 2, 3])]
    if with_indices:
        inputs.append(("w", I64, ["b"]))
    return _model("TensorScatter", inputs, ["b", 2, 6, 3], 24, mode=mode, axis=axis)


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("with_indices", [True, False])
def test_tensor_scatter_matches_reference(mode: str, with_indices: bool) -> None:
    """onnxruntime 1.32 lacks TensorScatter: compared with the ONNX reference."""
    from onnx.reference import ReferenceEvaluator

    model = _scatter_model(mode, -2, with_indices)
    ref = ReferenceEvaluator(model)
    exe = rx.compile(rx.from_onnx(model), target="c")
    rng = np.random.default_rng(5)
    for b in (1, 3):
        past = rng.standard_normal((b, 2, 6, 3)).astype("float32")
        upd = rng.standard_normal((b, 2, 2, 3)).astype("float32")
        args = [past, upd]
        if with_indices:
            args.append(rng.integers(0, 5 if mode == "linear" else 6, size=b).astype("int64"))
        feeds = dict(zip(["past", "update", "w"], args))
        np.testing.assert_array_equal(exe["main"](*args), ref.run(None, feeds)[0])


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter_symbolic_lengths(mode: str) -> None:
    """max_sequence_length and sequence_length symbolic (bound per call)."""
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("TensorScatter", ["p", "u", "w"], ["y"], mode=mode)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("p", F32, ["b", 2, "m", 3]),
                                            helper.make_tensor_value_info("u", F32, ["b", 2, "s", 3]),
                                            helper.make_tensor_value_info("w", I64, ["b"])],
                              [helper.make_tensor_value_info("y", F32, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    exe = rx.compile(rx.from_onnx(model), target="c")
    rng = np.random.default_rng(6)
    for b, m, s in ((1, 5, 1), (3, 8, 3)):
        p = rng.standard_normal((b, 2, m, 3)).astype("float32")
        u = rng.standard_normal((b, 2, s, 3)).astype("float32")
        w = rng.integers(0, m - s + 1, size=b)
        np.testing.assert_array_equal(exe["main"](p, u, w), ReferenceEvaluator(model).run(None, {"p": p, "u": u, "w": w})[0])


def _deform_model(with_bias: bool, with_mask: bool, opset: int = 19, **attrs: object) -> object:
    og = int(attrs.get("offset_group", 1))
    inputs = [("x", F32, ["n", 4, "h", "w"]), ("w", F32, [6, 4 // int(attrs.get("group", 1)), 2, 2]),
              ("offset", F32, ["n", og * 8, "oh", "ow"])]
    names = ["x", "w", "offset"]
    if with_bias:
        inputs.append(("b", F32, [6]))
        names.append("b")
    if with_mask:
        inputs.append(("mask", F32, ["n", og * 4, "oh", "ow"]))
        names.append("mask" if with_bias else "")
        if not with_bias:
            names[-1:] = ["", "mask"]
    node = helper.make_node("DeformConv", names, ["y"], name="dc", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", F32, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(("with_bias", "with_mask", "attrs"), [
    (False, False, {}),
    (True, True, {"pads": [1, 0, 1, 2], "strides": [2, 1]}),
    (False, True, {"group": 2, "offset_group": 2, "dilations": [2, 1]}),
])
def test_deform_conv_matches_onnxruntime(with_bias: bool, with_mask: bool, attrs: dict) -> None:
    model = _deform_model(with_bias, with_mask, **attrs)
    exe = rx.compile(rx.from_onnx(model), target="c")
    rng = np.random.default_rng(9)
    og, g = int(attrs.get("offset_group", 1)), int(attrs.get("group", 1))
    (pt, pl, pb, pr), (sh, sw), (dh, dw) = attrs.get("pads", [0] * 4), attrs.get("strides", [1, 1]), \
        attrs.get("dilations", [1, 1])
    for n, h, w in ((1, 4, 5), (2, 6, 5)):
        oh, ow = (h + pt + pb - dh - 1) // sh + 1, (w + pl + pr - dw - 1) // sw + 1
        args = [rng.standard_normal((n, 4, h, w)).astype("float32"), rng.standard_normal((6, 4 // g, 2, 2))
                .astype("float32"), (rng.standard_normal((n, og * 8, oh, ow)) * 1.5).astype("float32")]
        if with_bias:
            args.append(rng.standard_normal(6).astype("float32"))
        if with_mask:
            args.append(rng.random((n, og * 4, oh, ow)).astype("float32"))
        np.testing.assert_allclose(exe["main"](*args), _ort(model, *args), rtol=1e-4, atol=1e-5)


def test_deform_conv_interp() -> None:
    model = _deform_model(True, True)
    exe = rx.compile(rx.from_onnx(model), target="interp")
    rng = np.random.default_rng(10)
    args = [rng.standard_normal((1, 4, 3, 3)).astype("float32"), rng.standard_normal((6, 4, 2, 2)).astype("float32"),
            rng.standard_normal((1, 8, 2, 2)).astype("float32"), rng.standard_normal(6).astype("float32"),
            rng.random((1, 4, 2, 2)).astype("float32")]
    np.testing.assert_allclose(exe["main"](*args), _ort(model, *args), rtol=1e-4, atol=1e-5)


def test_deform_conv_bad_attributes_refused_at_import() -> None:
    with pytest.raises(RelaxError, match=r"node 'dc' \(DeformConv\): attribute kernel_shape=\[3, 3\]"):
        rx.from_onnx(_deform_model(False, False, kernel_shape=[3, 3]))
    with pytest.raises(RelaxError, match=r"node 'dc' \(DeformConv\): attribute strides=\[0, 1\]"):
        rx.from_onnx(_deform_model(False, False, strides=[0, 1]))
    with pytest.raises(RelaxError, match=r"node 'dc' \(DeformConv\): attribute offset_group=0"):
        rx.from_onnx(_deform_model(False, False, offset_group=0))
