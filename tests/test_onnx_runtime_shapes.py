"""ONNX inputs that carry sizes (Reshape's shape, Tile's repeats, Slice's
bounds, Range's bounds, ...) computed at run time: imported once as run-time
forms (tensor_to_shape binding fresh symbols), then one executable runs
with sizes that change between calls, as onnxruntime does; hostile sizes are
project errors naming the op, never a crash."""

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

X24 = np.arange(24, dtype=np.float32)
F32 = np.float32


def _check(m: Any, calls: list[dict[str, np.ndarray]], target: str, pipeline: str = "default") -> None:
    """Every call of one executable (and of the reference evaluator) equals onnxruntime."""
    module = check_against_onnxruntime(m, calls, target, pipeline)
    assert "relax.tensor_to_shape" in str(module) or m.graph.node[0].op_type == "Clip"  # Clip's bounds are operands


def _one(op: str, inputs: list[tuple[str, int, list[Any]]], inits: dict[str, np.ndarray] | None = None,
         outputs: tuple[str, ...] = ("y",), opset: int = 17, **attrs: Any) -> Any:
    names = [n for n, _, _ in inputs] + list(inits or {})
    return onnx_model([helper.make_node(op, names, list(outputs), name=f"my{op}", **attrs)], inputs, list(outputs),
                      inits, opset=opset)


CASES = {
    "reshape": (_one("Reshape", [("x", T.FLOAT, ["n"]), ("s", T.INT64, [3])]),
                [{"x": X24, "s": np.array([2, -1, 4])}, {"x": X24[:12], "s": np.array([3, 1, -1])}]),
    "reshape_copy_zero": (_one("Reshape", [("x", T.FLOAT, ["n", 4]), ("s", T.INT64, [3])]),
                          [{"x": X24.reshape(6, 4), "s": np.array([0, 2, 2])},
                           {"x": X24[:8].reshape(2, 4), "s": np.array([0, -1, 1])}]),
    "expand": (_one("Expand", [("x", T.FLOAT, [3, 1]), ("s", T.INT64, [3])]),
               [{"x": X24[:3].reshape(3, 1), "s": np.array([2, 1, 4])}, {"x": X24[:3].reshape(3, 1), "s": np.array([1, 3, 5])}]),
    "tile": (_one("Tile", [("x", T.FLOAT, [2, 3]), ("r", T.INT64, [2])]),
             [{"x": X24[:6].reshape(2, 3), "r": np.array([2, 3])}, {"x": X24[:6].reshape(2, 3), "r": np.array([1, 1])}]),
    "constant_of_shape": (_one("ConstantOfShape", [("s", T.INT64, [2])], value=helper.make_tensor("v", T.FLOAT, [1], [2.5])),
                          [{"s": np.array([2, 3])}, {"s": np.array([4, 1])}]),
    "range_int": (_one("Range", [("a", T.INT64, []), ("b", T.INT64, []), ("c", T.INT64, [])]),
                  [{"a": np.array(1), "b": np.array(10), "c": np.array(3)},
                   {"a": np.array(10), "b": np.array(1), "c": np.array(-2)}]),
    "range_float": (_one("Range", [("a", T.FLOAT, []), ("b", T.FLOAT, []), ("c", T.FLOAT, [])]),
                    [{"a": np.array(1, F32), "b": np.array(2.2, F32), "c": np.array(0.5, F32)},
                     {"a": np.array(7, F32), "b": np.array(-1, F32), "c": np.array(-3, F32)}]),
    "slice": (_one("Slice", [("x", T.FLOAT, [4, 6]), ("s", T.INT64, [2]), ("e", T.INT64, [2])],
                   {"a": np.array([0, 1]), "st": np.array([1, -2])}),
              [{"x": X24.reshape(4, 6), "s": np.array([1, -1]), "e": np.array([100, -100])},
               {"x": X24.reshape(4, 6), "s": np.array([-3, 4]), "e": np.array([-1, 0])}]),
    "pad_constant": (_one("Pad", [("x", T.FLOAT, [4, 6]), ("p", T.INT64, [4]), ("v", T.FLOAT, [])], mode="constant"),
                     [{"x": X24.reshape(4, 6), "p": np.array([1, 2, 3, 0]), "v": np.array(7.5, F32)},
                      {"x": X24.reshape(4, 6), "p": np.array([-1, 3, 0, -2]), "v": np.array(-1, F32)}]),
    "pad_reflect": (_one("Pad", [("x", T.FLOAT, [4, 6]), ("p", T.INT64, [4])], mode="reflect"),
                    [{"x": X24.reshape(4, 6), "p": np.array([1, 2, 3, 0])}, {"x": X24.reshape(4, 6), "p": np.array([0, 5, 2, 1])}]),
    "pad_edge": (_one("Pad", [("x", T.FLOAT, [4, 6]), ("p", T.INT64, [4])], mode="edge"),
                 [{"x": X24.reshape(4, 6), "p": np.array([1, 2, 3, 0])}, {"x": X24.reshape(4, 6), "p": np.array([-1, 3, 0, -2])}]),
    "pad_wrap": (_one("Pad", [("x", T.FLOAT, [4, 6]), ("p", T.INT64, [4])], opset=19, mode="wrap"),
                 [{"x": X24.reshape(4, 6), "p": np.array([1, 2, 3, 0])}, {"x": X24.reshape(4, 6), "p": np.array([-1, 3, 0, -2])}]),
    "clip": (_one("Clip", [("x", T.FLOAT, ["n"]), ("lo", T.FLOAT, []), ("hi", T.FLOAT, [])]),
             [{"x": X24, "lo": np.array(3, F32), "hi": np.array(7, F32)}, {"x": X24[:5], "lo": np.array(-1, F32),
                                                                            "hi": np.array(2.5, F32)}]),
    "split": (_one("Split", [("x", T.FLOAT, [2, "n"]), ("s", T.INT64, [3])], outputs=("a", "b", "c"), axis=1),
              [{"x": X24.reshape(2, 12), "s": np.array([2, 3, 7])}, {"x": X24[:12].reshape(2, 6), "s": np.array([1, 4, 1])}]),
    "one_hot": (_one("OneHot", [("i", T.INT64, [3]), ("d", T.FLOAT, [])], {"v": np.array([0, 5], F32)}, axis=0),
                [{"i": np.array([0, -1, 7]), "d": np.array(4.0, F32)}, {"i": np.array([0, 1, 2]), "d": np.array(3.0, F32)}]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", ["interp", "c"])
def test_runtime_sizes_match_onnxruntime(case: str, target: str) -> None:
    m, calls = CASES[case]
    _check(m, calls, target)


@pytest.mark.parametrize("case", ["reshape", "tile", "pad_reflect", "split", "slice"])
def test_runtime_sizes_fast_pipeline(case: str) -> None:
    m, calls = CASES[case]
    _check(m, calls, "c", pipeline="fast")


def _callers(m: Any) -> list[Any]:
    module = rx.from_onnx(m)
    return [lambda *a: rx.evaluate(module, "main", *a), rx.compile(module, target="interp").main,
            rx.compile(module, target="c").main]


HOSTILE = [
    ("reshape_two_minus_ones", CASES["reshape"][0], (X24, np.array([-1, -1, 4])), ShapeError, "myReshape_shape"),
    ("reshape_negative", CASES["reshape"][0], (X24, np.array([-5, 2, 4])), ShapeError, "myReshape_shape"),
    ("reshape_two_minus_ones_one_element", CASES["reshape"][0], (X24[:1], np.array([-1, -1, 1])), ShapeError,
     "myReshape_shape"),
    ("reshape_huge", CASES["reshape"][0], (X24, np.array([2**40, 2**40, 1])), (ShapeError, ResourceLimitError),
     "myReshape_shape"),
    ("tile_huge", CASES["tile"][0], (X24[:6].reshape(2, 3), np.array([2**40, 1])), ResourceLimitError, ""),
    ("tile_negative", CASES["tile"][0], (X24[:6].reshape(2, 3), np.array([-2, 1])), ShapeError, "myTile_repeats"),
    ("split_not_adding_up", CASES["split"][0], (X24.reshape(2, 12), np.array([3, 4, 1])), ShapeError, "mySplit_split"),
    ("expand_mismatch", CASES["expand"][0], (X24[:3].reshape(3, 1), np.array([1, 4, 2])), ShapeError, "myExpand_shape"),
    ("constant_of_shape_huge", CASES["constant_of_shape"][0], (np.array([2**62, 4]),), (ShapeError, ResourceLimitError),
     ""),
    ("range_zero_delta", CASES["range_float"][0], tuple(np.array(v, F32) for v in (0, 1, 0)), (ShapeError, ResourceLimitError), ""),
]


@pytest.mark.parametrize("name,m,args,err,mentions", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_sizes_are_project_errors(name: str, m: Any, args: tuple[Any, ...], err: Any, mentions: str) -> None:
    for call in _callers(m):
        with pytest.raises(err) as info:
            call(*args)
        assert mentions in str(info.value)


@pytest.mark.parametrize("op,shape,axes", [("Squeeze", [2, 1, "n", 1], ([1], [-1], [3, 1])),
                                           ("Unsqueeze", [2, "n"], ([0], [-1], [2, 0]))])
def test_squeeze_and_unsqueeze_over_runtime_axes(op: str, shape: list[Any], axes: tuple[list[int], ...]) -> None:
    """The output rank is static (the axes tensor's length); which dims go
    or come is data: a reshape to dims computed at run time."""
    x = np.arange(6, dtype=F32).reshape(2, 1, 3, 1) if op == "Squeeze" else np.arange(6, dtype=F32).reshape(2, 3)
    by_len: dict[int, list[dict[str, np.ndarray]]] = {}
    for a in axes:
        by_len.setdefault(len(a), []).append({"x": x, "ax": np.array(a)})
    for k, calls in by_len.items():
        m = _one(op, [("x", T.FLOAT, shape), ("ax", T.INT64, [k])], opset=13)
        sess = ort.InferenceSession(m.SerializeToString())
        module = rx.from_onnx(m)
        for target, pipeline in (("interp", "default"), ("c", "fast")):
            exe = rx.compile(module, target=target, pipeline=pipeline)
            for feeds in calls:
                want = sess.run(None, feeds)[0]
                got = exe.main(*feeds.values())
                assert got.shape == want.shape
                np.testing.assert_array_equal(got, want)


def test_squeezing_a_dim_that_is_not_one_is_a_shape_error() -> None:
    m = _one("Squeeze", [("x", T.FLOAT, [2, 3]), ("ax", T.INT64, [1])], opset=13)
    exe = rx.compile(rx.from_onnx(m), target="c")
    with pytest.raises(ShapeError):
        exe.main(np.ones((2, 3), F32), np.array([0]))


def test_constant_sizes_keep_static_types() -> None:
    m = onnx_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", T.FLOAT, [4, 6])], ["y"],
                   {"s": np.array([-1, 3], np.int64)})
    text = str(rx.from_onnx(m))
    assert "tensor_to_shape" not in text and "!relax.tensor<[8, 3], f32>" in text


REDUCE_RUNTIME = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                  "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("op", REDUCE_RUNTIME)
def test_reductions_over_runtime_axes(op: str, keepdims: int) -> None:
    """Axes as data (ONNX's own tests pass them so): each axis reduced inside a
    relax.if on its flag; without keepdims, reshaped to the dims left. One
    executable for different axes, negative ones included."""
    m = _one(op, [("x", T.FLOAT, [3, "n", 4]), ("ax", T.INT64, [2])], opset=18, keepdims=keepdims)
    x = (np.arange(36, dtype=F32).reshape(3, 3, 4) - 10.0) / 7.0
    if op in ("ReduceLogSum", "ReduceL2"):
        x = np.abs(x) + 0.5
    calls = [{"x": x, "ax": np.array(a)} for a in ([0, 2], [-1, 1], [1, 0])]
    sess = ort.InferenceSession(m.SerializeToString())
    module = rx.from_onnx(m)
    for target, pipeline in (("interp", "default"), ("c", "fast")):
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for feeds in calls:
            want = sess.run(None, feeds)[0]
            got = exe.main(*feeds.values())
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_runtime_axes_that_repeat_or_leave_the_rank_are_shape_errors() -> None:
    m = _one("ReduceSum", [("x", T.FLOAT, [3, 4]), ("ax", T.INT64, [2])], opset=18, keepdims=0)
    exe = rx.compile(rx.from_onnx(m), target="c")
    x = np.ones((3, 4), F32)
    np.testing.assert_allclose(exe.main(x, np.array([0, 1])), 12.0)
    for bad in ([0, 0], [0, 5]):
        with pytest.raises(ShapeError):
            exe.main(x, np.array(bad))


@pytest.mark.parametrize("op", ["CumSum"])
def test_cumulation_over_a_runtime_axis(op: str) -> None:
    """The axis as data: one executable for every axis, negative ones
    included; an axis out of range is a ShapeError, not x unchanged.
    (CumProd shares the converter; onnxruntime has no CumProd to compare.)"""
    m = _one(op, [("x", T.FLOAT, [2, "n", 3]), ("a", T.INT64, [])], exclusive=1, reverse=1)
    x = np.arange(1, 25, dtype=F32).reshape(2, 4, 3) / 8.0
    sess = ort.InferenceSession(m.SerializeToString())
    module = rx.from_onnx(m)
    for target, pipeline in (("interp", "default"), ("c", "fast")):
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for a in (0, 1, -1):
            feeds = {"x": x, "a": np.array(a)}
            np.testing.assert_allclose(exe.main(*feeds.values()), sess.run(None, feeds)[0], rtol=1e-5)
        with pytest.raises(ShapeError):
            exe.main(x, np.array(3))
