"""ONNX import of the indexing family (GatherElements, GatherND,
ScatterElements / Scatter, ScatterND, OneHot, CumSum, CumProd,
ReverseSequence, TopK, Gather's negative and scalar indices): small models
built with onnx.helper, symbolic input dims bound to several sizes
(including 1), compared with onnxruntime on the C target (and the
interpreter for a few), plus the import errors for what cannot be
compiled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import BoundsError, RelaxError  # noqa: E402

F, I32, I64 = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64
node = helper.make_node
SIZES = (1, 3, 5)


def model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: Sequence[str],
          inits: dict[str, np.ndarray] | None = None, opset: int = 18) -> Any:
    return onnx_model(nodes, inputs, list(outputs), inits, opset)


def check(m: Any, feeds: Callable[[int, np.random.Generator], list[np.ndarray]], targets: Sequence[str] = ("c",),
          pipeline: str | None = None) -> None:
    """Runs at every size: the evaluator and each target equal onnxruntime."""
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(m)
    exes = [rx.compile(mod, target=t, **({"pipeline": pipeline} if pipeline else {})) for t in targets]
    names = [vi.name for vi in m.graph.input]
    for n in SIZES:
        args = feeds(n, np.random.default_rng(n))
        want = sess.run(None, dict(zip(names, args)))
        for got in [rx.evaluate(mod, "main", *args)] + [exe["main"](*args) for exe in exes]:
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for g, e in zip(got, want):
                assert g.shape == e.shape and g.dtype == e.dtype, n
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=f"n={n}")


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def ints(rng: np.random.Generator, lo: int, hi: int, *shape: int, dtype: Any = np.int64) -> np.ndarray:
    return rng.integers(lo, hi, size=shape).astype(dtype)


def test_gather_elements() -> None:
    m = model([node("GatherElements", ["x", "i"], ["y"], axis=-1)],
              [("x", F, ["n", 4]), ("i", I64, ["n", 6])], ["y"])
    check(m, lambda n, r: [f32(r, n, 4), ints(r, -4, 4, n, 6)], ("c", "interp"))


def test_gather_nd_batch_dims() -> None:
    m = model([node("GatherND", ["x", "i"], ["y"], batch_dims=1)],
              [("x", F, ["n", 3, 4]), ("i", I64, ["n", 2, 2])], ["y"])
    check(m, lambda n, r: [f32(r, n, 3, 4), np.stack([ints(r, 0, 3, n, 2), ints(r, 0, 4, n, 2)], axis=-1)])


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(reduction: str) -> None:
    m = model([node("ScatterElements", ["x", "i", "u"], ["y"], axis=1, reduction=reduction)],
              [("x", F, ["n", 5]), ("i", I64, ["n", 2]), ("u", F, ["n", 2])], ["y"])

    def feeds(n: int, r: np.random.Generator) -> list[np.ndarray]:  # distinct per row: ORT's order is unspecified
        idx = np.stack([r.permutation(5)[:2] for _ in range(n)]) - 5 * (r.random((n, 2)) < 0.5)
        return [f32(r, n, 5), idx.astype(np.int64), f32(r, n, 2)]

    check(m, feeds)


def test_scatter_opset9_alias() -> None:
    m = model([node("Scatter", ["x", "i", "u"], ["y"], axis=0)],
              [("x", F, [3, "n"]), ("i", I64, [1, "n"]), ("u", F, [1, "n"])], ["y"], opset=9)
    mod = rx.from_onnx(m)
    x, i, u = np.zeros((3, 2), np.float32), np.array([[2, -3]]), np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(rx.compile(mod, target="c")["main"](x, i, u), [[0, 1], [0, 0], [1, 0]])


def test_scatter_reduction_needs_its_opset() -> None:
    m = model([node("ScatterElements", ["x", "i", "u"], ["y"], reduction="max")],
              [("x", F, [3]), ("i", I64, [1]), ("u", F, [1])], ["y"], opset=16)
    with pytest.raises(RelaxError, match="ScatterElements.*reduction='max' needs opset 18"):
        rx.from_onnx(m)


@pytest.mark.parametrize("reduction", ["none", "add", "min"])
def test_scatter_nd(reduction: str) -> None:
    m = model([node("ScatterND", ["x", "i", "u"], ["y"], reduction=reduction)],
              [("x", F, [4, "n"]), ("i", I64, [2, 1]), ("u", F, [2, "n"])], ["y"])
    check(m, lambda n, r: [f32(r, 4, n), np.array([[1], [-1]]), f32(r, 2, n)])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis: int) -> None:
    m = model([node("OneHot", ["i", "d", "v"], ["y"], axis=axis)],
              [("i", I64, ["n", 2]), ("v", F, [2])], ["y"], inits={"d": np.array(5, np.int64)})
    check(m, lambda n, r: [ints(r, -7, 7, n, 2), np.array([3, 9], np.float32)])  # out of range: all off


@pytest.mark.parametrize("op", ["CumSum"])  # CumProd (opset 24) is newer than onnxruntime's opset
@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumulative(op: str, exclusive: int, reverse: int) -> None:
    m = model([node(op, ["x", "a"], ["y"], exclusive=exclusive, reverse=reverse)],
              [("x", F, ["n", "n"])], ["y"], inits={"a": np.array(1, np.int64)})
    check(m, lambda n, r: [f32(r, n, n)])


def test_cumprod_against_numpy() -> None:
    m = model([node("CumProd", ["x", "a"], ["y"], exclusive=1, reverse=1)],
              [("x", I32, ["n"])], ["y"], inits={"a": np.array(0, np.int32)}, opset=24)
    exe = rx.compile(rx.from_onnx(m), target="c")
    np.testing.assert_array_equal(exe["main"](np.array([2, 3, 4], np.int32)), [12, 4, 1])


def test_reverse_sequence() -> None:
    m = model([node("ReverseSequence", ["x", "s"], ["y"], batch_axis=0, time_axis=1)],
              [("x", F, ["n", 4, 2]), ("s", I64, ["n"])], ["y"])
    check(m, lambda n, r: [f32(r, n, 4, 2), ints(r, 0, 5, n)], ("c", "interp"))


@pytest.mark.parametrize("largest", [1, 0])
def test_topk(largest: int) -> None:
    m = model([node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=largest)],
              [("x", F, ["n", 6])], ["v", "i"], inits={"k": np.array([3], np.int64)})
    check(m, lambda n, r: [np.round(f32(r, n, 6))])  # rounded: ties, the smaller index first (as ORT)


def test_topk_runtime_k_of_two_values_is_refused() -> None:
    # a run-time K of shape [1] is read at run time (tests/test_onnx_data_dependent.py)
    m = model([node("TopK", ["x", "k"], ["v", "i"])], [("x", F, ["n", 6]), ("k", I64, [2])], ["v", "i"])
    with pytest.raises(RelaxError, match="TopK.*K must be an int64 tensor of shape \\[1\\]"):
        rx.from_onnx(m)


def test_gather_negative_and_scalar_indices() -> None:
    m = model([node("Gather", ["x", "i"], ["y"], axis=1), node("Gather", ["y", "j"], ["z"], axis=0)],
              [("x", F, ["n", 5]), ("i", I64, [2]), ("j", I64, [])], ["z"])
    check(m, lambda n, r: [f32(r, n, 5), np.array([-1, 2]), np.array(-n)])


def test_gather_elements_out_of_range_is_bounds_error() -> None:
    m = model([node("GatherElements", ["x", "i"], ["y"])], [("x", F, ["n", 2]), ("i", I64, ["n", 2])], ["y"])
    exe = rx.compile(rx.from_onnx(m), target="c")
    with pytest.raises(BoundsError, match="gather_elements along axis 0.*index 3"):
        exe["main"](np.zeros((2, 2), np.float32), np.array([[0, 1], [3, 0]]))


def test_fused_gather_fast_pipeline() -> None:
    """A gather whose data is an elementwise producer, and a cumsum after it, in the `fast` pipeline."""
    m = model([node("Relu", ["x"], ["r"]), node("GatherElements", ["r", "i"], ["g"], axis=1),
               node("CumSum", ["g", "a"], ["y"])],
              [("x", F, ["n", 4]), ("i", I64, ["n", 3])], ["y"], inits={"a": np.array(1, np.int64)})
    check(m, lambda n, r: [f32(r, n, 4), ints(r, -4, 4, n, 3)], pipeline="fast")
