"""Reshape with a -1 next to a dim that is a sum of symbols: torch.export's
grouped-query attention (`repeat_kv`, then scaled_dot_product_attention's
`view(-1, L, E)`) reshapes keys of [batch, heads, past + seq, d] into
[-1, past + seq, d]. The quotient is exactly 8*batch, but canonical dims
are expanded polynomials, so it must be cancelled, not left as a sum of
fractions that cannot be written in IR (the import failed on the dynamo
export of a Llama decoder with a KV cache)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from util import SIZES, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.shape import canon

ort = pytest.importorskip("onnxruntime")


def _module() -> object:
    with rx.FunctionBuilder("main") as fb:
        past = fb.param("past", ["b", 8, "p", 4])
        new = fb.param("new", ["b", 8, "s", 4])
        keys = op.concat([past, new], axis=2)
        y = op.reshape(keys, [-1, "p + s", 4])
        assert tuple(y.shape) == (canon("8*b"), canon("p + s"), canon(4))
        fb.ret(y)
    return fb.module


def test_quotient_cancels_at_every_level() -> None:
    cases = [(rand((b, 8, p, 4), seed=1), rand((b, 8, s, 4), seed=2))
             for b, p, s in [(1, 0, 1), (SIZES[1], 1, SIZES[2]), (SIZES[2], SIZES[1], 1)]]
    check_levels(_module(), cases)


def test_printed_type_is_the_cancelled_quotient() -> None:
    assert "!relax.tensor<[8*b, p + s, 4], f32>" in rx.print_module(_module())


def _onnx_model() -> bytes:
    """What the dynamo exporter writes: the target's trailing dims from
    Shape(keys)[-2:], the leading one -1."""
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Concat", ["past", "new"], ["keys"], axis=2),
        helper.make_node("Shape", ["keys"], ["shape"]),
        helper.make_node("Slice", ["shape", "m2", "big"], ["tail"]),
        helper.make_node("Concat", ["m1", "tail"], ["target"], axis=0),
        helper.make_node("Reshape", ["keys", "target"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(v, np.int64), k)
             for k, v in (("m2", [-2]), ("big", [2**62]), ("m1", [-1]))]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("past", f32, ["batch", 8, "past", 4]),
         helper.make_tensor_value_info("new", f32, ["batch", 8, "seq", 4])],
        [helper.make_tensor_value_info("y", f32, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_onnx_reshape_after_cache_concat_matches_onnxruntime() -> None:
    data = _onnx_model()
    mod = rx.from_onnx(data)
    assert "[8*batch, past + seq, 4]" in rx.print_module(mod)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    exe = rx.compile(mod, target="c")
    for batch, past, seq in [(1, 0, 5), (2, 5, 1), (3, 1, 1)]:
        feed = {"past": rand((batch, 8, past, 4), seed=3), "new": rand((batch, 8, seq, 4), seed=4)}
        (want,) = sess.run(None, feed)
        np.testing.assert_array_equal(np.asarray(exe.main(*feed.values())), want)
