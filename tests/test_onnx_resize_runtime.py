"""ONNX Resize whose scales, sizes or roi are computed at run time (graph
inputs, as ONNX's own node tests give them): imported once as
relax.resize_with_scales over fresh output symbols, then one executable
runs with scales and sizes that change between calls, equal to
onnxruntime; hostile scales and sizes are project errors naming the node."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import ResourceLimitError, ShapeError

ort = pytest.importorskip("onnxruntime")

F32 = np.float32


def _resize(inputs: list[tuple[str, int, list[Any]]], names: list[str], opset: int = 19, **attrs: Any) -> Any:
    return onnx_model([helper.make_node("Resize", names, ["y"], name="myResize", **attrs)], inputs, ["y"],
                      opset=opset)


def _img(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


X4 = ("x", T.FLOAT, ["n", "c", "h", "w"])
SCALES = ("s", T.FLOAT, [4])
SIZES = ("z", T.INT64, [4])

CASES = {
    "scales_linear_symbolic": (
        _resize([X4, SCALES], ["x", "", "s"], mode="linear"),
        [{"x": _img((1, 2, 4, 5)), "s": np.array([1, 1, 2, 0.6], F32)},
         {"x": _img((2, 1, 3, 1), 1), "s": np.array([1, 1, 1.5, 3], F32)}]),
    "scales_nearest_asymmetric_ceil": (
        _resize([X4, SCALES], ["x", "", "s"], mode="nearest", coordinate_transformation_mode="asymmetric",
                nearest_mode="ceil"),
        [{"x": _img((1, 1, 4, 4)), "s": np.array([1, 1, 0.75, 2.5], F32)}]),
    "scales_cubic_antialias": (
        _resize([X4, SCALES], ["x", "", "s"], mode="cubic", antialias=1, cubic_coeff_a=-0.5),
        [{"x": _img((1, 1, 7, 6)), "s": np.array([1, 1, 0.45, 0.7], F32)},
         {"x": _img((1, 1, 5, 9), 2), "s": np.array([1, 1, 0.8, 0.3], F32)}]),
    "sizes_cubic_exclude_outside": (
        _resize([X4, SIZES], ["x", "", "", "z"], mode="cubic", exclude_outside=1),
        [{"x": _img((1, 2, 4, 4)), "z": np.array([1, 2, 7, 3])},
         {"x": _img((1, 2, 1, 6), 3), "z": np.array([1, 2, 2, 1])}]),
    "sizes_axes_not_larger": (
        _resize([X4, ("z", T.INT64, [2])], ["x", "", "", "z"], mode="linear", axes=[3, 2],
                keep_aspect_ratio_policy="not_larger"),
        [{"x": _img((1, 1, 4, 6)), "z": np.array([9, 7])}, {"x": _img((1, 1, 3, 3), 4), "z": np.array([2, 8])}]),
    "roi_crop_and_resize": (
        _resize([X4, ("r", T.FLOAT, [4]), ("s", T.FLOAT, [2])], ["x", "r", "s"], mode="linear", axes=[2, 3],
                coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=7.0),
        [{"x": _img((1, 1, 4, 4)), "r": np.array([0.2, -0.3, 0.9, 1.2], F32), "s": np.array([1.5, 0.75], F32)}]),
    "opset10_scales": (
        _resize([("x", T.FLOAT, ["h", "w"]), ("s", T.FLOAT, [2])], ["x", "s"], opset=10, mode="nearest"),
        [{"x": _img((3, 4)), "s": np.array([2, 0.5], F32)}, {"x": _img((1, 2)), "s": np.array([1.5, 3], F32)}]),
}


def _outs(r: Any) -> Any:
    return r[0] if isinstance(r, tuple) else r


@pytest.mark.parametrize("target", ["c", "interp"])
@pytest.mark.parametrize("case", list(CASES))
def test_runtime_resize_matches_onnxruntime(case: str, target: str) -> None:
    if target == "interp" and case not in ("scales_linear_symbolic", "sizes_axes_not_larger"):
        pytest.skip("the interpreter runs a few small cases only")
    m, calls = CASES[case]
    module = rx.from_onnx(m)
    assert "relax.resize_with_scales" in str(module)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    exe = rx.compile(module, target=target)
    for feeds in calls:
        (want,) = sess.run(None, feeds)
        for got in (_outs(exe.main(*feeds.values())), _outs(rx.evaluate(module, "main", *feeds.values()))):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_symbolic_input_dims_stay_symbolic() -> None:
    """Unresized axes keep the input's symbols; resized ones are fresh symbols named after the node."""
    m, _ = CASES["sizes_axes_not_larger"]
    text = str(rx.from_onnx(m))
    assert "!relax.tensor<[n, c, myResize_sizes" in text


X2 = ("x", T.FLOAT, ["h", 4])
HOSTILE = [
    ("negative_scale", _resize([X2, ("s", T.FLOAT, [2])], ["x", "", "s"]), np.array([-2, 1], F32), ShapeError,
     "myResize_sizes"),
    ("nan_scale", _resize([X2, ("s", T.FLOAT, [2])], ["x", "", "s"]), np.array([np.nan, 1], F32), ShapeError,
     "myResize_sizes"),
    ("inf_scale", _resize([X2, ("s", T.FLOAT, [2])], ["x", "", "s"], mode="linear"), np.array([1, np.inf], F32),
     ShapeError, "tensor_to_shape"),
    ("huge_scale", _resize([X2, ("s", T.FLOAT, [2])], ["x", "", "s"]), np.array([1e15, 1e15], F32),
     (ShapeError, ResourceLimitError), ""),
    ("negative_size", _resize([X2, ("z", T.INT64, [2])], ["x", "", "", "z"]), np.array([3, -4]), ShapeError,
     "myResize_sizes"),
    ("huge_size", _resize([X2, ("z", T.INT64, [2])], ["x", "", "", "z"], mode="cubic"), np.array([2**40, 2**40]),
     (ShapeError, ResourceLimitError), ""),
    ("nan_aspect_scale", _resize([X2, ("z", T.INT64, [2])], ["x", "", "", "z"], keep_aspect_ratio_policy="not_smaller"),
     np.array([2**62 - 1, 2]), (ShapeError, ResourceLimitError), ""),
]


@pytest.mark.parametrize("name,m,arg,err,mentions", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_scales_and_sizes_are_project_errors(name: str, m: Any, arg: np.ndarray, err: Any,
                                                     mentions: str) -> None:
    module = rx.from_onnx(m)
    x = _img((3, 4))
    for call in (lambda *a: rx.evaluate(module, "main", *a), rx.compile(module, target="c").main):
        with pytest.raises(err) as info:
            call(x, arg)
        assert mentions in str(info.value)


def test_an_empty_axis_resized_to_a_nonempty_one_is_a_shape_error() -> None:
    """Sizes that ask for elements of an empty input have nothing to read: an error, never an out-of-range read."""
    m = _resize([X2, ("z", T.INT64, [2])], ["x", "", "", "z"], mode="linear")
    module = rx.from_onnx(m)
    x = np.zeros((0, 4), F32)
    for call in (lambda *a: rx.evaluate(module, "main", *a), rx.compile(module, target="c").main):
        with pytest.raises(ShapeError):
            call(x, np.array([2, 4]))
        assert call(x, np.array([0, 3])).shape == (0, 3)


def test_runtime_roi_is_ignored_outside_crop_and_resize() -> None:
    """ONNX reads roi only for tf_crop_and_resize: a run-time roi elsewhere is not an import error."""
    m = _resize([X2, ("r", T.FLOAT, [4]), ("s", T.FLOAT, [2])], ["x", "r", "s"], mode="linear")
    module = rx.from_onnx(m)
    x, s, r = _img((3, 4)), np.array([2, 0.5], F32), np.array([0.1, 0.1, 0.5, 0.5], F32)
    (want,) = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "r": r, "s": s})
    np.testing.assert_allclose(rx.compile(module, target="c").main(x, r, s), want, rtol=1e-5, atol=1e-5)
