"""ONNX GridSample, AffineGrid, Col2Im and Det against onnxruntime (symbolic
batch dims bound to several sizes, 1 included; C, and the interpreter for
small ones); the random ops (RandomUniform / RandomNormal and their *Like
forms, Bernoulli, Multinomial), whose values cannot match onnxruntime's, by
shape, dtype, statistics and seed determinism; and the import errors."""

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

F, D = TensorProto.FLOAT, TensorProto.DOUBLE
node = helper.make_node
ENVS = [{"n": 1}, {"n": 3}]


def ints(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def _grid(mode: str, padding: str, align: int, opset: int) -> Any:
    return model([node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=padding, align_corners=align)],
                 [("x", F, ["n", 2, 4, 5]), ("g", F, ["n", 3, 2, 2])], ["y"], opset=opset)


@pytest.mark.parametrize(("mode", "opset"), [("bilinear", 16), ("nearest", 16), ("bicubic", 16), ("linear", 20),
                                             ("cubic", 20)])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_matches_onnxruntime(mode: str, opset: int, padding: str) -> None:
    for align in (0, 1):
        check_against_ort(_grid(mode, padding, align, opset), ENVS)


def test_grid_sample_volumetric_and_interp() -> None:
    m = model([node("GridSample", ["x", "g"], ["y"], mode="linear", padding_mode="border")],
              [("x", F, ["n", 1, 3, 4, 2]), ("g", F, ["n", 2, 2, 3, 3])], ["y"], opset=20)
    check_against_ort(m, ENVS, targets=("c", "interp"))


@pytest.mark.parametrize(("size", "align"), [((2, 1, 3, 4), 0), ((2, 1, 3, 4), 1), ((2, 1, 2, 3, 4), 0),
                                             ((2, 1, 1, 2, 3), 1)])
def test_affine_grid_matches_onnxruntime(size: tuple[int, ...], align: int) -> None:
    """size's batch entry is computed from theta's shape (symbolic), the rest constant."""
    r = len(size) - 2
    nodes = [node("Shape", ["theta"], ["ts"], end=1), node("Concat", ["ts", "rest"], ["size"], axis=0),
             node("AffineGrid", ["theta", "size"], ["y"], align_corners=align)]
    m = model(nodes, [("theta", F, ["n", r, r + 1])], ["y"], {"rest": ints(*size[1:])}, opset=20)
    check_against_ort(m, ENVS, targets=("c", "interp") if r == 2 else ("c",))


def test_col2im_matches_onnxruntime() -> None:
    m = model([node("Col2Im", ["x", "img", "blk"], ["y"], dilations=[1, 2], pads=[1, 0, 0, 1], strides=[2, 1])],
              [("x", F, ["n", 8, 9])], ["y"], {"img": ints(5, 4), "blk": ints(2, 2)}, opset=18)
    check_against_ort(m, ENVS, targets=("c", "interp"))
    m3 = model([node("Col2Im", ["x", "img", "blk"], ["y"])], [("x", F, ["n", 8, 8])], ["y"],
               {"img": ints(3, 3, 3), "blk": ints(2, 2, 2)}, opset=18)
    check_against_ort(m3, ENVS)


def test_det_matches_onnxruntime() -> None:
    check_against_ort(model([node("Det", ["x"], ["y"])], [("x", F, ["n", "m", "m"])], ["y"], opset=11),
                      [{"n": 1, "m": 1}, {"n": 3, "m": 4}], targets=("c", "interp"), rtol=1e-3, atol=1e-4)
    check_against_ort(model([node("Det", ["x"], ["y"])], [("x", F, [3, 3])], ["y"], opset=11), [{}])


# -- random numbers ------------------------------------------------------------------------------------------------


def _run(m: Any, *args: np.ndarray, target: str = "c") -> np.ndarray:
    return rx.compile(rx.from_onnx(m), target=target)["main"](*args)


def test_random_uniform_and_normal_seeded() -> None:
    nodes = [node("RandomUniform", [], ["u"], shape=[200, 500], low=-1.0, high=3.0, seed=3.0, dtype=D),
             node("RandomNormal", [], ["z"], shape=[200, 500], mean=2.0, scale=0.5, seed=3.0)]
    m = model(nodes, [], ["u", "z"], opset=17)
    u, z = _run(m)
    assert u.shape == z.shape == (200, 500) and u.dtype == np.float64 and z.dtype == np.float32
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 16 / 12) < 0.02
    assert abs(z.mean() - 2.0) < 0.01 and abs(z.std() - 0.5) < 0.01
    again_u, again_z = _run(m)
    np.testing.assert_array_equal(again_z, z)
    np.testing.assert_array_equal(again_u, u)


def test_random_like_takes_shape_and_dtype_from_the_input() -> None:
    nodes = [node("RandomUniformLike", ["x"], ["u"], seed=1.0),
             node("RandomNormalLike", ["x"], ["z"], seed=1.0, dtype=D)]
    m = model(nodes, [("x", F, ["n", 4])], ["u", "z"], opset=17)
    mod = rx.from_onnx(m)
    interp, c = rx.compile(mod, target="interp"), rx.compile(mod, target="c")
    for n in (1, 3):
        x = np.zeros((n, 4), "float32")
        u, z = c["main"](x)
        assert u.shape == z.shape == (n, 4) and u.dtype == np.float32 and z.dtype == np.float64
        iu, iz = interp["main"](x)
        np.testing.assert_array_equal(iu, u)
        np.testing.assert_allclose(iz, z, rtol=1e-12)


def test_unseeded_random_differs_per_import() -> None:
    m = model([node("RandomUniform", [], ["u"], shape=[64])], [], ["u"], opset=17)
    assert not np.array_equal(_run(m), _run(m))
    seeded = model([node("RandomUniform", [], ["u"], shape=[64], seed=5.0)], [], ["u"], opset=17)
    np.testing.assert_array_equal(_run(seeded), _run(seeded))


def test_bernoulli_probabilities() -> None:
    m = model([node("Bernoulli", ["p"], ["y"], seed=2.0)], [("p", F, ["n"])], ["y"], opset=15)
    p = np.tile(np.array([0.0, 0.1, 0.5, 0.9, 1.0], "float32"), 20_000)
    y = _run(m, p)
    assert y.dtype == np.float32 and set(np.unique(y)) <= {0.0, 1.0}
    freq = y.reshape(-1, 5).mean(axis=0)
    np.testing.assert_allclose(freq, [0.0, 0.1, 0.5, 0.9, 1.0], atol=0.01)
    m_int = model([node("Bernoulli", ["p"], ["y"], seed=2.0, dtype=TensorProto.INT64)], [("p", D, ["n"])], ["y"],
                  opset=15)
    yi = _run(m_int, p.astype("float64"))
    assert yi.dtype == np.int64
    np.testing.assert_array_equal(yi, y.astype(np.int64))   # the same draws in float64


def test_multinomial_sample_size_and_frequencies() -> None:
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.0, 0.5]], "float32") + 1e-30)
    m = model([node("Multinomial", ["x"], ["y"], sample_size=50_000, seed=4.0)], [("x", F, ["b", 3])], ["y"],
              opset=7)
    y = _run(m, logits)
    assert y.shape == (2, 50_000) and y.dtype == np.int32 and y.min() >= 0 and y.max() <= 2
    freq = np.stack([np.bincount(row, minlength=3) / row.size for row in y])
    np.testing.assert_allclose(freq, [[0.1, 0.2, 0.7], [0.5, 0.0, 0.5]], atol=0.01)
    m64 = model([node("Multinomial", ["x"], ["y"], dtype=TensorProto.INT64, seed=4.0)], [("x", F, ["b", 3])], ["y"],
                opset=7)
    assert _run(m64, logits).shape == (2, 1) and _run(m64, logits).dtype == np.int64


@pytest.mark.parametrize(("nodes", "inputs", "inits", "opset", "match"), [
    ([node("GridSample", ["x", "g"], ["y"], mode="linear")], [("x", F, [1, 1, 2, 2]), ("g", F, [1, 1, 1, 2])], {},
     16, "mode='linear' is not supported"),
    ([node("GridSample", ["x", "g"], ["y"], padding_mode="wrap")], [("x", F, [1, 1, 2, 2]), ("g", F, [1, 1, 1, 2])],
     {}, 20, "padding_mode='wrap'"),
    ([node("AffineGrid", ["t", "s"], ["y"])], [("t", F, [1, 2, 3]), ("s", TensorProto.INT64, [3])], {}, 20,
     "size must have 4"),
    ([node("RandomUniform", [], ["y"], shape=[2], dtype=TensorProto.INT32)], [], {}, 17, "floating-point"),
    ([node("Multinomial", ["x"], ["y"], dtype=TensorProto.FLOAT)], [("x", F, [1, 3])], {}, 7, "int32 or int64"),
    ([node("Col2Im", ["x", "i", "b"], ["y"])], [("x", F, [1, 4, 5])], {"i": ints(3, 3), "b": ints(2, 2)}, 18,
     "number of blocks"),
])
def test_bad_nodes_fail_at_import(nodes: list[Any], inputs: list[Any], inits: dict[str, np.ndarray], opset: int,
                                  match: str) -> None:
    with pytest.raises((OnnxImportError, rx.ShapeError), match=match):
        rx.from_onnx(model(nodes, inputs, ["y"], inits, opset=opset))
