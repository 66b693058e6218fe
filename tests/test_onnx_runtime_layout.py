"""ONNX layout ops whose size input is computed at run time (CenterCropPad's
shape, Col2Im's image_shape / block_shape, AffineGrid's size, MaxUnpool's
output_shape, Upsample's scales): imported once, one executable runs at
several sizes and equals onnxruntime; a hostile size is a project error
naming the node, on every target."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import check_against_onnxruntime, onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import ResourceLimitError, ShapeError

ort = pytest.importorskip("onnxruntime")

F32 = np.float32
RNG = np.random.default_rng(0)
BIG = (ShapeError, ResourceLimitError)


def _rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(F32)


def _one(op: str, inputs: list[tuple[str, int, list[Any]]], opset: int = 18, **attrs: Any) -> Any:
    return onnx_model([helper.make_node(op, [n for n, _, _ in inputs], ["y"], name=f"my{op}", **attrs)], inputs,
                      ["y"], opset=opset)


CASES: dict[str, tuple[Any, list[dict[str, np.ndarray]]]] = {
    "center_crop_pad": (_one("CenterCropPad", [("x", T.FLOAT, [5, 6, 2]), ("s", T.INT64, [2])], axes=[0, -2]),
                        [{"x": _rand(5, 6, 2), "s": np.array([3, 9])}, {"x": _rand(5, 6, 2), "s": np.array([8, 1])},
                         {"x": _rand(5, 6, 2), "s": np.array([0, 6])}]),
}

# name -> (case, feeds, error, whether the message names the node): a negative size fails the size check of
# the node's fresh symbol; a value outside (-2**62, 2**62) fails tensor_to_shape's range check, whose message names
# the value, not the node.
HOSTILE: dict[str, tuple[str, dict[str, np.ndarray], Any, bool]] = {
    "center_crop_pad_negative": ("center_crop_pad", {"x": _rand(5, 6, 2), "s": np.array([-3, 4])}, ShapeError, True),
    "center_crop_pad_huge": ("center_crop_pad", {"x": _rand(5, 6, 2), "s": np.array([2**62, 4])}, BIG, False),
    "center_crop_pad_large": ("center_crop_pad", {"x": _rand(5, 6, 2), "s": np.array([2**40, 2**30])}, BIG, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_size_matches_onnxruntime(case: str) -> None:
    m, calls = CASES[case]
    module = check_against_onnxruntime(m, calls, "c")
    assert "relax.tensor_to_shape" in str(module)


@pytest.mark.parametrize("case", ["center_crop_pad"])
def test_runtime_size_on_the_interpreter(case: str) -> None:
    m, calls = CASES[case]
    check_against_onnxruntime(m, calls, "interp")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_runtime_size_is_a_project_error(name: str) -> None:
    case, feeds, err, names_node = HOSTILE[name]
    m = CASES[case][0]
    module = rx.from_onnx(m)
    op = m.graph.node[0].op_type
    for call in (lambda *a: rx.evaluate(module, "main", *a), rx.compile(module, target="c").main):
        with pytest.raises(err) as info:
            call(*feeds.values())
        assert f"my{op}" in str(info.value) or not names_node
