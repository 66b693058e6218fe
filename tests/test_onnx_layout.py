"""ONNX layout ops (Pad, Tile, DepthToSpace, SpaceToDepth, CenterCropPad,
Resize, Upsample) imported with symbolic dims where the op allows, compiled
(C, and the interpreter for a small one) and run at several sizes (1
included) against onnxruntime; and the import errors for what is not
supported."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402
from test_onnx_frontend import check_against_ort, model  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.frontend.onnx_import import OnnxImportError  # noqa: E402
from relax_xdsl.shape import shape_to_str  # noqa: E402

F = TensorProto.FLOAT
node = helper.make_node
ENVS = [{"n": 1}, {"n": 3}]


def ints(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def floats(*v: float) -> np.ndarray:
    return np.array(v, dtype=np.float32)


CASES: dict[str, tuple[Any, list[dict[str, int]]]] = {
    "pad_constant_inputs": (lambda: model(
        [node("Pad", ["x", "p", "v"], ["y"])], [("x", F, ["n", 3, 4])], ["y"],
        {"p": ints(0, 1, 2, 1, 0, -1), "v": floats(2.5)}, opset=13), [{"n": 1}, {"n": 4}]),
    "pad_reflect_axes": (lambda: model(
        [node("Pad", ["x", "p", "", "a"], ["y"], mode="reflect")], [("x", F, ["n", 3, 5])], ["y"],
        {"p": ints(2, 1, 4, 2), "a": ints(-1, 1)}, opset=18), ENVS),
    "pad_edge_attr_opset2": (lambda: model(
        [node("Pad", ["x"], ["y"], mode="edge", pads=[0, 2, 1, 0, 1, 3])], [("x", F, ["n", 3, 4])], ["y"],
        opset=7), ENVS),
    "pad_wrap": (lambda: model(
        [node("Pad", ["x", "p"], ["y"], mode="wrap")], [("x", F, ["n", 3, 4])], ["y"],
        {"p": ints(0, 2, 1, 0, 1, 3)}, opset=19), ENVS),
    "tile": (lambda: model(
        [node("Tile", ["x", "r"], ["y"])], [("x", F, ["n", 2, 3])], ["y"], {"r": ints(2, 1, 3)}), ENVS),
    "depth_to_space_dcr_crd_space_to_depth": (lambda: model(
        [node("DepthToSpace", ["x"], ["a"], blocksize=2),
         node("DepthToSpace", ["x"], ["b"], blocksize=2, mode="CRD"),
         node("SpaceToDepth", ["a"], ["c"], blocksize=2)],
        [("x", F, ["n", 8, "h", 3])], ["a", "b", "c"]), [{"n": 1, "h": 1}, {"n": 2, "h": 3}]),
    "center_crop_pad": (lambda: model(
        [node("CenterCropPad", ["x", "s"], ["y"], axes=[1, 2])], [("x", F, ["n", 7, 4])], ["y"],
        {"s": ints(4, 7)}, opset=18), ENVS),
    "resize_nearest_scales": (lambda: model(
        [node("Resize", ["x", "", "s"], ["y"], mode="nearest", nearest_mode="round_prefer_ceil",
              coordinate_transformation_mode="asymmetric")],
        [("x", F, ["n", 2, "h", 4])], ["y"], {"s": floats(1, 1, 2, 1.5)}, opset=13),
        [{"n": 1, "h": 1}, {"n": 2, "h": 3}]),
    "resize_linear_sizes_symbolic": (lambda: model(
        [node("Shape", ["x"], ["sh"]), node("Slice", ["sh", "z", "two"], ["nc"]),
         node("Concat", ["nc", "hw"], ["sz"], axis=0),
         node("Resize", ["x", "", "", "sz"], ["y"], mode="linear")],
        [("x", F, ["n", 2, "h", 4])], ["y"], {"z": ints(0), "two": ints(2), "hw": ints(5, 3)}, opset=13),
        [{"n": 1, "h": 1}, {"n": 2, "h": 3}]),
    "resize_cubic_align_corners": (lambda: model(
        [node("Resize", ["x", "", "s"], ["y"], mode="cubic", coordinate_transformation_mode="align_corners")],
        [("x", F, ["n", 1, 4, 4])], ["y"], {"s": floats(1, 1, 1.5, 0.75)}, opset=13), ENVS),
    "resize_linear_antialias_axes": (lambda: model(
        [node("Resize", ["x", "", "s"], ["y"], mode="linear", antialias=1, axes=[3, 2])],
        [("x", F, ["n", 1, 8, 6])], ["y"], {"s": floats(0.5, 0.6)}, opset=18), ENVS),
    "resize_tf_crop_and_resize": (lambda: model(
        [node("Resize", ["x", "roi", "", "sz"], ["y"], mode="linear",
              coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0)],
        [("x", F, ["n", 1, 4, 4])], ["y"],
        {"roi": floats(0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7), "sz": ints(1, 1, 3, 3)}, opset=13), [{"n": 1}]),
    "upsample_nearest_opset9": (lambda: model(
        [node("Upsample", ["x", "s"], ["y"], mode="nearest")], [("x", F, ["n", 2, 3])], ["y"],
        {"s": floats(1, 2, 3)}, opset=9), ENVS),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_onnxruntime(name: str) -> None:
    build, envs = CASES[name]
    m = build()
    if name == "resize_tf_crop_and_resize":  # ORT wants the batch dims static here
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    check_against_ort(m, envs)


def test_pad_keeps_symbolic_shape_and_runs_on_interp() -> None:
    m = model([node("Pad", ["x", "p"], ["y"])], [("x", F, ["n", "c", "h", "w"])], ["y"],
              {"p": ints(0, 0, 1, 1, 0, 0, 1, 1)}, opset=13)
    mod = rx.from_onnx(m)
    out = next(o for o in mod.walk() if o.name == "relax.pad")
    assert shape_to_str(out.results[0].type.sym_shape) == "[n, c, h + 2, w + 2]"
    check_against_ort(m, [{"n": 1, "c": 1, "h": 1, "w": 2}, {"n": 2, "c": 3, "h": 2, "w": 1}], targets=("interp",))


@pytest.mark.parametrize(("nodes", "inits", "opset", "match"), [
    ([node("Pad", ["x", "p"], ["y"], mode="mirror")], {"p": ints(0, 0, 1, 1)}, 13, "mode='mirror'"),
    ([node("Pad", ["x", "p"], ["y"], mode="wrap")], {"p": ints(0, 0, 1, 1)}, 13, "mode='wrap'"),
    ([node("Pad", ["x", "p"], ["y"])], {"p": ints(0, 1)}, 13, "pads has 2 values"),
    ([node("Pad", ["x", "x"], ["y"])], {}, 13, "must hold integers|must be known"),
    ([node("Resize", ["x", "", "s"], ["y"], mode="area")], {"s": floats(1, 2)}, 13, "mode='area'"),
    ([node("Resize", ["x", "", "s"], ["y"], nearest_mode="up")], {"s": floats(1, 2)}, 13, "nearest_mode='up'"),
    ([node("Resize", ["x", "", "s"], ["y"], mode="nearest", antialias=1)], {"s": floats(1, 2)}, 18, "antialias"),
    ([node("Resize", ["x", "", "", "z"], ["y"], keep_aspect_ratio_policy="fit")], {"z": ints(2, 8)}, 18,
     "keep_aspect_ratio_policy='fit'"),
    ([node("Tile", ["x", "r"], ["y"])], {"r": ints(2)}, 13, "repeats has 1 values"),
    ([node("DepthToSpace", ["x"], ["y"], blocksize=2)], {}, 13, "rank 4"),
])
def test_unsupported_or_bad_attributes_name_the_node(nodes: list[Any], inits: dict[str, np.ndarray], opset: int,
                                                     match: str) -> None:
    m = model(nodes, [("x", F, ["n", 4])], ["y"], inits, opset=opset)
    with pytest.raises(OnnxImportError, match=rf"node 0 \(\w+\): .*({match})"):
        rx.from_onnx(m)


def test_runtime_scales_of_the_wrong_length_are_refused_at_import() -> None:
    """Scales computed at run time are data (tests/test_onnx_resize_runtime.py); their count fixes which axes resize."""
    m = model([node("Resize", ["x", "", "s"], ["y"])], [("x", F, ["n", 4]), ("s", F, [3])], ["y"], opset=13)
    with pytest.raises(OnnxImportError, match="scales.*must have 2 values"):
        rx.from_onnx(m)


def test_resize_scales_give_a_symbolic_floor() -> None:
    m = model([node("Resize", ["x", "", "s"], ["y"], mode="nearest")], [("x", F, ["n", "h"])], ["y"],
              {"s": floats(2, 0.5)}, opset=13)
    mod = rx.from_onnx(m)
    out = next(o for o in mod.walk() if o.name == "relax.resize")
    assert shape_to_str(out.results[0].type.sym_shape) == "[2*n, h floordiv 2]"
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(rx.compile(mod, target="c")["main"](x), want)


