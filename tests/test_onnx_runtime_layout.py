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


def _one(op: str, inputs: list[tuple[str, int, list[Any]]], opset: int = 18,
         inits: dict[str, np.ndarray] | None = None, **attrs: Any) -> Any:
    names = [n for n, _, _ in inputs] + list(inits or {})
    return onnx_model([helper.make_node(op, names, ["y"], name=f"my{op}", **attrs)], inputs,
                      ["y"], inits, opset=opset)


CASES: dict[str, tuple[Any, list[dict[str, np.ndarray]]]] = {
    "center_crop_pad": (_one("CenterCropPad", [("x", T.FLOAT, [5, 6, 2]), ("s", T.INT64, [2])], axes=[0, -2]),
                        [{"x": _rand(5, 6, 2), "s": np.array([3, 9])}, {"x": _rand(5, 6, 2), "s": np.array([8, 1])},
                         {"x": _rand(5, 6, 2), "s": np.array([0, 6])}]),
    "col2im_image_shape": (_one("Col2Im", [("x", T.FLOAT, [1, "ck", "l"]), ("i", T.INT64, [2]), ("b", T.INT64, [2])],
                                pads=[1, 0, 0, 1]),
                           [{"x": _rand(1, 8, 20), "i": np.array([4, 5]), "b": np.array([2, 2])},
                            {"x": _rand(1, 8, 9), "i": np.array([3, 3]), "b": np.array([2, 2])},
                            {"x": _rand(1, 3, 8), "i": np.array([3, 3]), "b": np.array([1, 3])}]),
    "col2im_strided": (_one("Col2Im", [("x", T.FLOAT, [2, 6, "l"]), ("i", T.INT64, [2])], strides=[2, 1],
                            dilations=[1, 2], inits={"b": np.array([3, 1])}),
                       [{"x": _rand(2, 6, 10), "i": np.array([5, 5])}, {"x": _rand(2, 6, 5), "i": np.array([3, 5])}]),
}

# name -> (case, feeds, error, whether the message names the node): a negative size fails the size check of
# the node's fresh symbol; a value outside (-2**62, 2**62) fails tensor_to_shape's range check, whose message names
# the value, not the node.
HOSTILE: dict[str, tuple[str, dict[str, np.ndarray], Any, bool]] = {
    "center_crop_pad_negative": ("center_crop_pad", {"x": _rand(5, 6, 2), "s": np.array([-3, 4])}, ShapeError, True),
    "center_crop_pad_huge": ("center_crop_pad", {"x": _rand(5, 6, 2), "s": np.array([2**62, 4])}, BIG, False),
    "center_crop_pad_large": ("center_crop_pad", {"x": _rand(5, 6, 2), "s": np.array([2**40, 2**30])}, BIG, False),
    "col2im_negative_image": ("col2im_image_shape", {"x": _rand(1, 8, 20), "i": np.array([-4, 5]),
                                                      "b": np.array([2, 2])}, ShapeError, True),
    "col2im_zero_block": ("col2im_image_shape", {"x": _rand(1, 8, 20), "i": np.array([4, 5]), "b": np.array([0, 2])},
                          ShapeError, True),
    "col2im_wrong_block_count": ("col2im_image_shape", {"x": _rand(1, 8, 19), "i": np.array([4, 5]),
                                                        "b": np.array([2, 2])}, ShapeError, True),
    "col2im_huge": ("col2im_image_shape", {"x": _rand(1, 8, 20), "i": np.array([2**62, 5]), "b": np.array([2, 2])},
                    BIG, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_size_matches_onnxruntime(case: str) -> None:
    m, calls = CASES[case]
    module = check_against_onnxruntime(m, calls, "c")
    assert "relax.tensor_to_shape" in str(module)


@pytest.mark.parametrize("case", ["center_crop_pad", "col2im_strided"])
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
