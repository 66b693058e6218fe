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
