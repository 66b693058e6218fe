"""ONNX MaxPool's Indices output and MaxUnpool: small models built with
onnx.helper, imported, compiled for C (and the interpreter for one) and
compared with onnxruntime; symbolic (dim_param) batch dims bound to several
sizes including 1; bad indices and unsupported attributes fail clearly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import relax_xdsl as rx
from relax_xdsl.frontend.onnx_import import OnnxImportError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
BATCHES = (1, 3)


def graph_model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: list[tuple[str, int]],
                inits: list[Any] = (), opset: int = 12) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(o, t, None) for o, t in outputs], list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def max_pool(shape: list[Any], opset: int = 12, **attrs: Any) -> onnx.ModelProto:
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], **attrs)
    return graph_model([node], [("x", F, shape)], [("y", F), ("i", I64)], opset=opset)


def compare(m: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], target: str = "c") -> None:
    exe = rx.compile(rx.from_onnx(m), target=target)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in feeds:
        want = sess.run(None, feed)
        got = exe["main"](*feed.values())
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == w.dtype
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6)


def rand(*shape: int, seed: int = 0, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: windows with several maxima, the first one wins
        return rng.integers(-2, 3, size=shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_2d(storage_order: int) -> None:
    m = max_pool(["n", 3, 7, 6], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1],
                 storage_order=storage_order)
    compare(m, [{"x": rand(n, 3, 7, 6, seed=n, ties=n == 3)} for n in BATCHES])


def test_max_pool_indices_ceil_mode_dilations_opset12() -> None:
    m = max_pool(["n", 2, 6, 7], kernel_shape=[2, 2], strides=[2, 2], dilations=[1, 2], ceil_mode=1)
    compare(m, [{"x": rand(n, 2, 6, 7, seed=n)} for n in BATCHES])


def test_max_pool_indices_opset8_auto_pad_interp() -> None:
    m = max_pool(["n", 2, 4, 5], opset=8, kernel_shape=[2, 3], auto_pad="SAME_UPPER")
    compare(m, [{"x": rand(n, 2, 4, 5, seed=n, ties=True)} for n in BATCHES], target="interp")


def test_max_pool_indices_1d_and_3d() -> None:
    compare(max_pool(["n", 2, 9], kernel_shape=[3], strides=[2], pads=[1, 1]),
            [{"x": rand(n, 2, 9, seed=n)} for n in BATCHES])
    compare(max_pool(["n", 2, 4, 5, 3], kernel_shape=[2, 2, 2], strides=[1, 2, 1], pads=[0, 1, 0, 1, 0, 1]),
            [{"x": rand(n, 2, 4, 5, 3, seed=n, ties=True)} for n in BATCHES])


def test_max_pool_bad_storage_order_names_attribute() -> None:
    with pytest.raises(OnnxImportError, match="MaxPool.*storage_order=2"):
        rx.from_onnx(max_pool([1, 1, 4, 4], kernel_shape=[2, 2], storage_order=2))


def unpool(shape: list[Any], kernel: list[int], strides: list[int], pads: list[int],
           output_shape: list[int] | None = None) -> onnx.ModelProto:
    """MaxPool then MaxUnpool of its values at its indices, as exporters pair them."""
    attrs = dict(kernel_shape=kernel, strides=strides, pads=pads)
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], **attrs),
             helper.make_node("MaxUnpool", ["p", "i"] + (["s"] if output_shape else []), ["y"], **attrs)]
    inits = [numpy_helper.from_array(np.array(output_shape, np.int64), "s")] if output_shape else []
    return graph_model(nodes, [("x", F, shape)], [("y", F)], inits, opset=11)


def test_max_unpool_default_shape() -> None:
    m = unpool(["n", 2, 6, 5], [2, 2], [2, 2], [0, 0, 0, 1])
    compare(m, [{"x": rand(n, 2, 6, 5, seed=n)} for n in BATCHES])


def test_max_unpool_output_shape_and_1d() -> None:
    compare(unpool([2, 3, 5, 5], [2, 2], [2, 2], [0, 0, 0, 0], output_shape=[2, 3, 5, 5]),
            [{"x": rand(2, 3, 5, 5, seed=4)}])
    compare(unpool(["n", 2, 7], [3], [2], [1, 1]), [{"x": rand(n, 2, 7, seed=n)} for n in BATCHES])


def direct_unpool(shape: list[int], output_shape: bool = False) -> onnx.ModelProto:
    node = helper.make_node("MaxUnpool", ["x", "i"] + (["s"] if output_shape else []), ["y"], kernel_shape=[2, 2],
                            strides=[2, 2])
    inputs = [("x", F, shape), ("i", I64, shape)] + ([("s", I64, [4])] if output_shape else [])
    return graph_model([node], inputs, [("y", F)], opset=11)


def test_max_unpool_out_of_range_index_is_bounds_error() -> None:
    exe = rx.compile(rx.from_onnx(direct_unpool([1, 1, 2, 2])), target="c")
    x = np.ones((1, 1, 2, 2), np.float32)
    good = np.array([0, 3, 8, 15], np.int64).reshape(1, 1, 2, 2)
    want = np.zeros(16, np.float32)
    want[[0, 3, 8, 15]] = 1
    np.testing.assert_array_equal(exe["main"](x, good), want.reshape(1, 1, 4, 4))
    with pytest.raises(rx.BoundsError):
        exe["main"](x, np.array([0, 3, 8, 16], np.int64).reshape(1, 1, 2, 2))


def test_max_unpool_runtime_output_shape_sizes_the_output() -> None:
    """(Refused before; tests/test_onnx_runtime_layout.py compares it with onnxruntime.)"""
    exe = rx.compile(rx.from_onnx(direct_unpool([1, 1, 2, 2], output_shape=True)), target="c")
    x = np.ones((1, 1, 2, 2), np.float32)
    idx = np.array([0, 3, 8, 15], np.int64).reshape(1, 1, 2, 2)
    assert exe["main"](x, idx, np.array([1, 1, 4, 5])).shape == (1, 1, 4, 5)
