"""Sizes that become tensor data in exported graphs: the causal mask of a
decoder as torch.onnx builds it, `LessOrEqual(Range(0, past + 1), past)`
with `past` taken from the KV cache's shape. Imported once, it runs for
every past length, as onnxruntime does."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx

ort = pytest.importorskip("onnxruntime")


def causal_mask_model():
    nodes = [
        helper.make_node("Shape", ["cache"], ["sh"]),
        helper.make_node("Gather", ["sh", "one"], ["past"], axis=0),
        helper.make_node("Add", ["past", "one"], ["lim"]),
        helper.make_node("Range", ["zero", "lim", "one"], ["cols"]),
        helper.make_node("LessOrEqual", ["cols", "past"], ["mask"]),
        helper.make_node("Where", ["mask", "fzero", "ninf"], ["bias"]),
        helper.make_node("Unsqueeze", ["bias", "ax0"], ["bias2"]),
        helper.make_node("Shape", ["cache"], ["sh2"]),
        helper.make_node("Cast", ["sh2"], ["shf"], to=T.FLOAT),
    ]
    inits = {"one": np.array(1, np.int64), "zero": np.array(0, np.int64), "ax0": np.array([0], np.int64),
             "fzero": np.array(0.0, np.float32), "ninf": np.array(-np.inf, np.float32)}
    return onnx_model(nodes, [("cache", T.FLOAT, ["b", "p", 4])], ["bias2", "shf", "past"], inits)


@pytest.mark.parametrize("target", ["interp", "c"])
def test_causal_mask_from_the_cache_length(target: str) -> None:
    m = causal_mask_model()
    module = rx.from_onnx(m)
    text = str(module)
    assert "relax.make_shape" in text and "relax.shape_to_tensor" in text
    sess = ort.InferenceSession(m.SerializeToString())
    exe = rx.compile(module, target=target, pipeline="fast")
    for p in (1, 2, 9):
        cache = np.random.rand(2, p, 4).astype("float32")
        got, want = exe.main(cache), sess.run(None, {"cache": cache})
        assert len(got) == len(want) == 3
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def positions_and_triu_model():
    """`torch.arange(past, past + t)` (Range with a start computed from the
    cache's shape) and `full(-inf).triu(past + 1)` (Trilu with a diagonal
    from it): the position ids and causal mask of a decoder step."""
    nodes = [
        helper.make_node("Shape", ["cache"], ["sh"]),
        helper.make_node("Gather", ["sh", "one"], ["past"], axis=0),
        helper.make_node("Shape", ["ids"], ["ish"]),
        helper.make_node("Gather", ["ish", "one"], ["t"], axis=0),
        helper.make_node("Add", ["past", "t"], ["total"]),
        helper.make_node("Range", ["past", "total", "one"], ["pos"]),
        helper.make_node("Range", ["total", "past", "minus_two"], ["down"]),
        helper.make_node("Unsqueeze", ["t", "ax0"], ["t1"]),
        helper.make_node("Unsqueeze", ["total", "ax0"], ["total1"]),
        helper.make_node("Concat", ["t1", "total1"], ["grid"], axis=0),
        helper.make_node("ConstantOfShape", ["grid"], ["full"],
                         value=helper.make_tensor("v", T.FLOAT, [1], [-np.inf])),
        helper.make_node("Add", ["past", "one"], ["k"]),
        helper.make_node("Trilu", ["full", "k"], ["mask"], upper=1),
        helper.make_node("Trilu", ["full", "k"], ["lower"], upper=0),
    ]
    inits = {"one": np.array(1, np.int64), "minus_two": np.array(-2, np.int64), "ax0": np.array([0], np.int64)}
    return onnx_model(nodes, [("ids", T.INT64, ["b", "t"]), ("cache", T.FLOAT, ["b", "p", 4])],
                      ["pos", "down", "mask", "lower"], inits)


def trilu_data_k_model():
    return onnx_model([helper.make_node("Trilu", ["x", "k"], ["y"], upper=0)],
                      [("x", T.FLOAT, [2, "r", "c"]), ("k", T.INT64, [])], ["y"])


@pytest.mark.parametrize("target", ["interp", "c"])
def test_range_from_the_cache_length_and_triu_by_it(target: str) -> None:
    m = positions_and_triu_model()
    module = rx.from_onnx(m)
    sess = ort.InferenceSession(m.SerializeToString())
    exe = rx.compile(module, target=target)
    for p, t in ((0, 3), (5, 1), (2, 4)):
        ids, cache = np.zeros((1, t), np.int64), np.random.rand(1, p, 4).astype("float32")
        got, want = exe.main(ids, cache), sess.run(None, {"ids": ids, "cache": cache})
        assert got[0].shape == (t,)  # the length stays t: positions line up with the tokens
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("target", ["interp", "c"])
def test_trilu_diagonal_as_data(target: str) -> None:
    m = trilu_data_k_model()
    sess = ort.InferenceSession(m.SerializeToString())
    exe = rx.compile(rx.from_onnx(m), target=target)
    for r, c, k in ((3, 5, 0), (4, 2, -1), (2, 3, 7), (3, 3, -9), (0, 3, 1)):
        x = np.random.rand(2, r, c).astype("float32")
        np.testing.assert_array_equal(exe.main(x, np.array(k)), sess.run(None, {"x": x, "k": np.array(k)})[0])
