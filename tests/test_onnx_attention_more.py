"""ONNX Attention with an external KV cache (opset 24's nonpad_kv_seqlen):
keys from nonpad_kv_seqlen[b] on are padding, and the causal / sliding-window
frontier of batch b is offset by nonpad_kv_seqlen[b] - q_len. Small
onnx.helper models with symbolic batch, query and key lengths, compared with
onnxruntime on C (one also on the interpreter) at several sizes, 1 included;
an out-of-contract length is a BoundsError naming the node."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import BoundsError, RelaxError  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64
B = TensorProto.BOOL
# (batch, q_len, kv_len) bindings of the symbols b, s, t
BINDINGS = [(1, 1, 1), (2, 1, 5), (3, 4, 6), (2, 3, 3)]


def _model(attrs: dict[str, Any], q: list[Any], k: list[Any], v: list[Any], mask: tuple[int, list[Any]] | None,
           outputs: int = 1, opset: int = 24) -> Any:
    ins = [("Q", F, q), ("K", F, k), ("V", F, v)]
    names = ["Q", "K", "V", "", "", "", "L"]
    if mask is not None:
        ins.append(("M", mask[0], mask[1]))
        names[3] = "M"
    ins.append(("L", I64, ["b"]))
    outs = ["Y", "", "", "qk"][:outputs]  # an external cache has no present_key / present_value
    node = helper.make_node("Attention", names, outs, name="attn0", **attrs)
    return onnx_model([node], ins, [o for o in outs if o], opset=opset, ir_version=10)


def _feeds(m: Any, b: int, s: int, t: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    env = {"b": b, "s": s, "t": t}
    feeds: dict[str, np.ndarray] = {}
    for vi in m.graph.input:
        tt = vi.type.tensor_type
        shape = [env[d.dim_param] if d.dim_param else d.dim_value for d in tt.shape.dim]
        if vi.name == "L":
            feeds["L"] = rng.integers(0, t + 1, size=shape).astype(np.int64)
        elif tt.elem_type == B:
            feeds[vi.name] = rng.random(shape) > 0.3
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


CASES = [
    # GQA decode step into a padded cache, causal: query 0 sits at position L[b] - 1
    dict(attrs={"is_causal": 1}, q=["b", 4, "s", 8], k=["b", 2, "t", 8], v=["b", 2, "t", 4], mask=None),
    # no causal limit: the padding and a per-batch boolean mask
    dict(attrs={}, q=["b", 2, "s", 8], k=["b", 2, "t", 8], v=["b", 2, "t", 8], mask=(B, ["b", 1, "s", "t"])),
    # 3-d inputs, causal, float mask over heads, scale and softcap; the 4th output after softmax (mode 3)
    dict(attrs={"is_causal": 1, "q_num_heads": 2, "kv_num_heads": 1, "scale": 0.5, "softcap": 3.0,
                "qk_matmul_output_mode": 3},
         q=["b", "s", 16], k=["b", "t", 8], v=["b", "t", 8], mask=(F, [2, "s", "t"]), outputs=4),
    # opset 25's sliding window offset by the external cache, with the bias in the 4th output (mode 2)
    dict(attrs={"is_causal": 1, "left_window_size": 2, "qk_matmul_output_mode": 2},
         q=["b", 2, "s", 8], k=["b", 2, "t", 8], v=["b", 2, "t", 8], mask=None, outputs=4, opset=25),
]


def _check(m: Any, target: str, bindings: list[tuple[int, int, int]]) -> None:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(m)
    exe = rx.compile(mod, target=target)
    rng = np.random.default_rng(0)
    for b, s, t in bindings:
        feeds = _feeds(m, b, s, t, rng)
        want = sess.run(None, feeds)
        for got in (rx.evaluate(mod, "main", *feeds.values()), exe["main"](*feeds.values())):
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == w.shape and g.dtype == w.dtype, (b, s, t)
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=str((b, s, t, feeds["L"])))


@pytest.mark.parametrize("case", CASES)
def test_attention_nonpad_kv_seqlen(case: dict[str, Any]) -> None:
    m = _model(case["attrs"], case["q"], case["k"], case["v"], case["mask"], case.get("outputs", 1),
               case.get("opset", 24))
    _check(m, "c", BINDINGS)


def test_attention_nonpad_kv_seqlen_interp() -> None:
    m = _model({"is_causal": 1}, ["b", 2, "s", 4], ["b", 2, "t", 4], ["b", 2, "t", 4], None)
    _check(m, "interp", [(1, 1, 1), (2, 2, 3)])


def test_attention_nonpad_shorter_than_query_block_gives_zero_rows() -> None:
    """L[b] < q_len: the leading query rows of b see no key (offset < 0) and are zeros, not NaN."""
    m = _model({"is_causal": 1}, ["b", 1, "s", 4], ["b", 1, "t", 4], ["b", 1, "t", 4], None)
    exe = rx.compile(rx.from_onnx(m), target="c")
    q, k, v = (np.ones((2, 1, 3, 4), np.float32) for _ in range(3))
    y = exe["main"](q, k, v, np.array([1, 0], np.int64))
    np.testing.assert_array_equal(y[0, 0, :2], 0)
    np.testing.assert_allclose(y[0, 0, 2], 1)
    np.testing.assert_array_equal(y[1], 0)


@pytest.mark.parametrize("lens", [[2, 4], [-1, 1]])
def test_attention_nonpad_out_of_range_is_bounds_error(lens: list[int]) -> None:
    """A length above the key length (3) or negative (onnxruntime refuses both) names the node."""
    m = _model({"is_causal": 1}, ["b", 1, "s", 4], ["b", 1, "t", 4], ["b", 1, "t", 4], None)
    mod = rx.from_onnx(m)
    q = np.ones((2, 1, 2, 4), np.float32)
    k = np.ones((2, 1, 3, 4), np.float32)
    args = (q, k, k, np.array(lens, np.int64))
    with pytest.raises(BoundsError, match="attn0.*nonpad_kv_seqlen"):
        rx.evaluate(mod, "main", *args)
    with pytest.raises(BoundsError, match="attn0.*nonpad_kv_seqlen"):
        rx.compile(mod, target="c")["main"](*args)


@pytest.mark.parametrize("past", [True, False])
def test_attention_nonpad_with_past_cache_is_refused(past: bool) -> None:
    """The schema forbids an external cache length together with past_key / past_value or the present outputs."""
    ins = [("Q", F, [1, 1, 2, 4]), ("K", F, [1, 1, 2, 4]), ("V", F, [1, 1, 2, 4]), ("PK", F, [1, 1, 3, 4]),
           ("PV", F, [1, 1, 3, 4]), ("L", I64, [1])]
    names = ["Q", "K", "V", "", "PK", "PV", "L"] if past else ["Q", "K", "V", "", "", "", "L"]
    outs = ["Y"] if past else ["Y", "present_key", "present_value"]
    node = helper.make_node("Attention", names, outs, name="attn0")
    m = onnx_model([node], ins, outs, opset=24, ir_version=10)
    with pytest.raises(RelaxError, match="attn0.*nonpad_kv_seqlen.*past_key"):
        rx.from_onnx(m)
