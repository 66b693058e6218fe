"""ONNX inputs naming axes (Slice's axes and steps, Pad's axes) and
Dropout's training flag computed at run time: each data axis takes the
entry that names it (or the default) as data, so one executable serves any
axes, steps and sizes, as onnxruntime does; axes ONNX calls invalid (named
twice, out of range) and a step of 0 are BoundsErrors when it runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import check_against_onnxruntime, onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import BoundsError
from relax_xdsl.frontend.onnx_import import OnnxImportError

ort = pytest.importorskip("onnxruntime")

I64 = np.int64


def _outs(r: Any) -> tuple[Any, ...]:
    return r if isinstance(r, tuple) else (r,)


def _model(op: str, inputs: list[tuple[str, int, list[Any]]], outputs: tuple[str, ...] = ("y",), opset: int = 18,
           inits: dict[str, np.ndarray] | None = None, **attrs: Any) -> Any:
    names = [n for n, _, _ in inputs] + list(inits or {})
    return onnx_model([helper.make_node(op, names, list(outputs), name=f"my{op}", **attrs)], inputs, list(outputs),
                      inits, opset=opset)


def _check(m: Any, calls: list[dict[str, np.ndarray]], target: str, pipeline: str = "default") -> None:
    """Every call of one executable (and of the reference evaluator) equals onnxruntime."""
    check_against_onnxruntime(m, calls, target, pipeline, exact=True)


def _x(*shape: int) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)


SLICE_IN = [("x", T.FLOAT, ["n", 5, 4]), ("starts", T.INT64, [2]), ("ends", T.INT64, [2]), ("axes", T.INT64, [2]),
            ("steps", T.INT64, [2])]
SLICE = _model("Slice", SLICE_IN)
SLICE_CALLS = [
    # positive steps, axes in order
    {"x": _x(6, 5, 4), "starts": np.array([1, 0], I64), "ends": np.array([5, 3], I64),
     "axes": np.array([0, 2], I64), "steps": np.array([2, 1], I64)},
    # negative axes and steps, in another order; out-of-bounds starts and ends clamp
    {"x": _x(3, 5, 4), "starts": np.array([100, -100], I64), "ends": np.array([-100, 100], I64),
     "axes": np.array([-2, 0], I64), "steps": np.array([-2, 1], I64)},
    # a symbolic dim of 1; negative starts counted from the end
    {"x": _x(1, 5, 4), "starts": np.array([-1, -3], I64), "ends": np.array([1, -1], I64),
     "axes": np.array([0, -1], I64), "steps": np.array([1, 1], I64)},
    # empty results (a negative step from before the first element, start past end)
    {"x": _x(4, 5, 4), "starts": np.array([0, 3], I64), "ends": np.array([3, 1], I64),
     "axes": np.array([1, 2], I64), "steps": np.array([-1, 1], I64)},
    # a negative step down to the first element; a large step
    {"x": _x(7, 5, 4), "starts": np.array([-1, 0], I64), "ends": np.array([-(2**63), 2**63 - 1], I64),
     "axes": np.array([0, 1], I64), "steps": np.array([-3, 2**62], I64)},
]


@pytest.mark.parametrize("target", ["c", "interp"])
def test_slice_with_runtime_axes_and_steps_matches_onnxruntime(target: str) -> None:
    _check(SLICE, SLICE_CALLS if target == "c" else SLICE_CALLS[:2], target)


def test_slice_with_runtime_axes_fast_pipeline() -> None:
    _check(SLICE, SLICE_CALLS, "c", "fast")


def test_slice_with_runtime_axes_and_default_steps() -> None:
    m = _model("Slice", SLICE_IN[:4])
    _check(m, [{"x": _x(4, 5, 4), "starts": np.array([1, -2], I64), "ends": np.array([3, 100], I64),
                "axes": np.array([2, -3], I64)},
               {"x": _x(2, 5, 4), "starts": np.array([0, 0], I64), "ends": np.array([2, 1], I64),
                "axes": np.array([1, 0], I64)}], "c")


def test_slice_with_runtime_steps_and_constant_axes() -> None:
    """Steps as data, axes an initializer, starts/ends given."""
    m = _model("Slice", [SLICE_IN[0], SLICE_IN[1], SLICE_IN[2], SLICE_IN[4]], inits={"axes": np.array([2, 0], I64)})
    m.graph.node[0].input[:] = ["x", "starts", "ends", "axes", "steps"]
    _check(m, [{"x": _x(3, 5, 4), "starts": np.array([-1, 0], I64), "ends": np.array([-5, 3], I64),
                "steps": np.array([-1, 2], I64)},
               {"x": _x(1, 5, 4), "starts": np.array([0, 0], I64), "ends": np.array([4, 1], I64),
                "steps": np.array([3, 1], I64)}], "c")


HOSTILE_SLICES = {
    "repeated axis": {"starts": [0, 1], "ends": [2, 3], "axes": [0, 0], "steps": [1, 1]},
    "repeated axis, once negative": {"starts": [0, 1], "ends": [2, 3], "axes": [2, -1], "steps": [1, 1]},
    "axis past the rank": {"starts": [0, 1], "ends": [2, 3], "axes": [0, 3], "steps": [1, 1]},
    "axis before the rank": {"starts": [0, 1], "ends": [2, 3], "axes": [-4, 1], "steps": [1, 1]},
    "step 0": {"starts": [0, 1], "ends": [2, 3], "axes": [0, 1], "steps": [1, 0]},
}


@pytest.mark.parametrize("target", ["c", "interp"])
@pytest.mark.parametrize("case", sorted(HOSTILE_SLICES))
def test_invalid_runtime_axes_and_steps_are_bounds_errors(case: str, target: str) -> None:
    module = rx.from_onnx(SLICE)
    args = [_x(3, 5, 4), *(np.array(v, I64) for v in HOSTILE_SLICES[case].values())]
    with pytest.raises(BoundsError, match="out of range"):
        rx.evaluate(module, "main", *args)
    with pytest.raises(BoundsError, match="out of range"):
        rx.compile(module, target=target).main(*args)


def test_known_step_zero_is_an_import_error() -> None:
    m = _model("Slice", SLICE_IN[:4], inits={"steps": np.array([1, 0], I64)})
    with pytest.raises(OnnxImportError, match="steps must not be 0"):
        rx.from_onnx(m)


PAD_IN = [("x", T.FLOAT, ["n", 3, 4]), ("pads", T.INT64, [4]), ("value", T.FLOAT, []), ("axes", T.INT64, [2])]


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_with_runtime_axes_matches_onnxruntime(mode: str) -> None:
    m = _model("Pad", PAD_IN if mode == "constant" else [PAD_IN[0], PAD_IN[1], PAD_IN[3]], mode=mode)
    if mode != "constant":
        m.graph.node[0].input[:] = ["x", "pads", "", "axes"]
    calls = [
        {"pads": np.array([1, 0, 2, 1], I64), "axes": np.array([0, 2], I64)},
        {"pads": np.array([0, 2, 1, 1], I64), "axes": np.array([-1, -2], I64)},
        {"pads": np.array([-1, 1, 0, -1], I64), "axes": np.array([2, 0], I64)},  # negative pads crop
    ]
    feeds = []
    for c, n in zip(calls, (3, 1, 3)):  # reflect pads less than the dim (as onnxruntime asks)
        f = {"x": _x(n, 3, 4), "pads": c["pads"]}
        if mode == "constant":
            f["value"] = np.array(-1.5, np.float32)
        f["axes"] = c["axes"]
        feeds.append(f)
    _check(m, feeds, "c")


@pytest.mark.parametrize("target", ["c", "interp"])
def test_pad_with_repeated_or_out_of_range_runtime_axes_is_a_bounds_error(target: str) -> None:
    module = rx.from_onnx(_model("Pad", PAD_IN))
    exe = rx.compile(module, target=target)
    for axes in ([1, -2], [0, 3]):
        args = (_x(2, 3, 4), np.array([1, 1, 1, 1], I64), np.array(0.0, np.float32), np.array(axes, I64))
        with pytest.raises(BoundsError, match="out of range"):
            exe.main(*args)
    got = exe.main(_x(2, 3, 4), np.array([1, 1, 1, 1], I64), np.array(0.0, np.float32), np.array([1, -3], I64))
    assert got.shape == (4, 5, 4)


# -- Dropout ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [12, 13, 22])
def test_dropout_mask_output_is_all_true(opset: int) -> None:
    m = _model("Dropout", [("x", T.FLOAT, ["n", 3])], outputs=("y", "mask"), opset=opset)
    _check(m, [{"x": _x(2, 3)}, {"x": _x(1, 3)}], "c")


@pytest.mark.parametrize("opset", [7, 10])
def test_dropout_mask_before_opset_12(opset: int) -> None:
    """As ONNX's reference (onnxruntime gives an all-false mask at opset 10):
    all ones, in the data's type before opset 10, bool from it."""
    m = _model("Dropout", [("x", T.FLOAT, ["n", 3])], outputs=("y", "mask"), opset=opset, ratio=0.3)
    y, mask = rx.compile(rx.from_onnx(m), target="c").main(_x(2, 3))
    np.testing.assert_array_equal(y, _x(2, 3))
    assert mask.dtype == (np.float32 if opset < 10 else np.bool_) and mask.shape == (2, 3) and (mask == 1).all()
