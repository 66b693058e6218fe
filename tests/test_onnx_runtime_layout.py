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
from relax_xdsl.errors import BoundsError, ResourceLimitError, ShapeError

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
    "affine_grid_2d": (_one("AffineGrid", [("t", T.FLOAT, ["n", 2, 3]), ("s", T.INT64, [4])], opset=20),
                       [{"t": _rand(2, 2, 3), "s": np.array([2, 3, 4, 5])},
                        {"t": _rand(1, 2, 3), "s": np.array([1, 1, 1, 6])}]),
    "affine_grid_3d_align_corners": (_one("AffineGrid", [("t", T.FLOAT, ["n", 3, 4]), ("s", T.INT64, [5])],
                                          opset=20, align_corners=1),
                                     [{"t": _rand(2, 3, 4), "s": np.array([2, 1, 3, 4, 2])},
                                      {"t": _rand(1, 3, 4), "s": np.array([1, 5, 2, 1, 3])}]),
    "max_unpool": (_one("MaxUnpool", [("x", T.FLOAT, ["n", 1, 2, 2]), ("i", T.INT64, ["n", 1, 2, 2]),
                                       ("s", T.INT64, [4])], opset=11, kernel_shape=[2, 2], strides=[2, 2]),
                   [{"x": _rand(1, 1, 2, 2), "i": np.array([5, 7, 13, 15]).reshape(1, 1, 2, 2),
                     "s": np.array([1, 1, 4, 4])},
                    {"x": _rand(2, 1, 2, 2), "i": np.array([0, 6, 12, 24, 3, 1, 20, 2]).reshape(2, 1, 2, 2),
                     "s": np.array([2, 1, 5, 5])}]),
    "upsample_nearest": (_one("Upsample", [("x", T.FLOAT, [1, 2, "h", 3]), ("s", T.FLOAT, [4])], opset=9),
                         [{"x": _rand(1, 2, 2, 3), "s": np.array([1, 1, 2, 3], F32)},
                          {"x": _rand(1, 2, 3, 3), "s": np.array([2, 1, 1.5, 1], F32)}]),
    "upsample_linear": (_one("Upsample", [("x", T.FLOAT, [1, 1, 3, 3]), ("s", T.FLOAT, [4])], opset=9,
                             mode="linear"),
                        [{"x": _rand(1, 1, 3, 3), "s": np.array([1, 1, 2, 2.5], F32)},
                         {"x": _rand(1, 1, 3, 3), "s": np.array([1, 1, 1, 1], F32)}]),
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
    "affine_grid_negative": ("affine_grid_2d", {"t": _rand(2, 2, 3), "s": np.array([2, 3, -4, 5])}, ShapeError, True),
    "affine_grid_batch_mismatch": ("affine_grid_2d", {"t": _rand(2, 2, 3), "s": np.array([3, 3, 4, 5])}, ShapeError,
                                   False),
    "affine_grid_huge": ("affine_grid_2d", {"t": _rand(2, 2, 3), "s": np.array([2, 3, 2**40, 2**40])}, BIG, False),
    "max_unpool_negative": ("max_unpool", {"x": _rand(1, 1, 2, 2), "i": np.zeros((1, 1, 2, 2), np.int64),
                                           "s": np.array([1, 1, -4, 4])}, ShapeError, True),
    "max_unpool_index_past_the_output": ("max_unpool", {"x": _rand(1, 1, 2, 2), "i": np.full((1, 1, 2, 2), 9),
                                                        "s": np.array([1, 1, 3, 3])}, BoundsError, False),
    "max_unpool_batch_mismatch": ("max_unpool", {"x": _rand(1, 1, 2, 2), "i": np.zeros((1, 1, 2, 2), np.int64),
                                                 "s": np.array([2, 1, 4, 4])}, ShapeError, False),
    "upsample_negative": ("upsample_nearest", {"x": _rand(1, 2, 2, 3), "s": np.array([1, 1, -2, 1], F32)},
                          ShapeError, True),
    "upsample_below_one": ("upsample_nearest", {"x": _rand(1, 2, 2, 3), "s": np.array([1, 1, 1, 0.5], F32)},
                           ShapeError, True),
    "upsample_nan": ("upsample_nearest", {"x": _rand(1, 2, 2, 3), "s": np.array([1, 1, np.nan, 1], F32)},
                     ShapeError, True),
    "upsample_huge": ("upsample_nearest", {"x": _rand(1, 2, 2, 3), "s": np.array([1, 1, 2**40, 2**40], F32)}, BIG,
                      False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_size_matches_onnxruntime(case: str) -> None:
    m, calls = CASES[case]
    module = check_against_onnxruntime(m, calls, "c", rtol=1e-5)  # AffineGrid: float32 sums near 0
    assert "relax.tensor_to_shape" in str(module)


@pytest.mark.parametrize("case", ["center_crop_pad", "col2im_strided"])
def test_runtime_size_on_the_interpreter(case: str) -> None:
    m, calls = CASES[case]
    check_against_onnxruntime(m, calls, "interp", rtol=1e-5)


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


def test_expand_by_runtime_shape_keeps_static_input_dims() -> None:
    """Expand's run-time shape cannot change an input dim that is a static
    integer other than 1, so the result keeps it: a Split then a Squeeze
    without axes then give ONNX's rank (the pattern of AffineGrid's
    function body, whose Transpose saw a rank-4 operand when those dims
    were fresh symbols)."""
    nodes = [helper.make_node("Expand", ["x", "s"], ["e"], name="myExpand"),
             helper.make_node("Split", ["e"], ["a", "b"], axis=1, num_outputs=2),
             helper.make_node("Squeeze", ["a"], ["q"]),
             helper.make_node("Transpose", ["q"], ["y"], perm=[1, 0])]
    m = onnx_model(nodes, [("x", T.FLOAT, [1, 2, 3]), ("s", T.INT64, [3])], ["y"], opset=18)
    calls = [{"x": _rand(1, 2, 3), "s": np.array([2, 2, 3])}, {"x": _rand(1, 2, 3), "s": np.array([3, 1, 1])}]
    module = check_against_onnxruntime(m, calls, "c")
    assert "<[3, myExpand_shape0], f32>" in str(module)
    with pytest.raises(ShapeError, match="myExpand_shape"):
        rx.compile(module, target="c").main(_rand(1, 2, 3), np.array([2, 4, 3]))
