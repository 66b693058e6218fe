"""ONNX opset-27 ops with a carried state (relax_xdsl/frontend/onnx_ops_recurrent_state.py):
CausalConvWithState and LinearAttention. Small onnx.helper models with a
symbolic batch `b` and sequence length `t`, compiled once and run at several
bindings (1 included), compared with ONNX's reference evaluator (onnxruntime
does not implement them); hostile shapes and attributes fail naming the node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

try:
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.ops.op_linear_attention import LinearAttention as _RefLinearAttention  # noqa: F401
except ImportError:  # onnx before 1.21 has neither op
    pytest.skip("onnx has no opset-27 reference implementations", allow_module_level=True)

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import ShapeError  # noqa: E402
from relax_xdsl.frontend.onnx_import import OnnxImportError  # noqa: E402

F, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
NP = {F: np.float32, F16: np.float16}
OPSET = 27


def _model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: Sequence[str],
           inits: dict[str, np.ndarray] | None = None) -> Any:
    return onnx_model(nodes, inputs, list(outputs), inits, OPSET)


def _feeds(m: Any, bind: dict[str, int], rng: np.random.Generator, scale: dict[str, float] | None = None,
           shift: dict[str, float] | None = None) -> list[np.ndarray]:
    args = []
    for vi in m.graph.input:
        tt = vi.type.tensor_type
        shape = [bind[d.dim_param] if d.dim_param else d.dim_value for d in tt.shape.dim]
        a = rng.standard_normal(shape) * (scale or {}).get(vi.name, 1.0) + (shift or {}).get(vi.name, 0.0)
        args.append(a.astype(NP[tt.elem_type]))
    return args


def _check(m: Any, binds: Sequence[dict[str, int]], targets: Sequence[str] = ("c",), atol: float = 1e-5,
           scale: dict[str, float] | None = None, shift: dict[str, float] | None = None) -> None:
    """One executable per target; at every binding each output equals the
    reference evaluator's in shape, dtype and value."""
    ref = ReferenceEvaluator(m)
    mod = rx.from_onnx(m)
    exes = [rx.compile(mod, target=t) for t in targets]
    rng = np.random.default_rng(0)
    for bind in binds:
        args = _feeds(m, bind, rng, scale, shift)
        want = ref.run(None, {vi.name: a for vi, a in zip(m.graph.input, args)})
        for t, exe in zip(targets, exes):
            got = exe["main"](*args)
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for k, (g, w) in enumerate(zip(got, want)):
                g = np.asarray(g)
                assert g.shape == w.shape and g.dtype == w.dtype, (t, bind, k, g.shape, w.shape, g.dtype, w.dtype)
                np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=1e-3, atol=atol,
                                           err_msg=f"{t} {bind} output {k}")


# -- CausalConvWithState --------------------------------------------------------------------------------------------

C = 4


def _conv_model(k: int, bias: bool, past: bool, activation: str | None, weight_init: bool = True,
                past_dims: list[Any] | None = None, name: str = "conv0") -> Any:
    rng = np.random.default_rng(1)
    attrs = {} if activation is None else {"activation": activation}
    ins = ["x", "w", "bias" if bias else "", "past" if past else ""]
    while ins[-1] == "":
        ins.pop()
    nodes = [helper.make_node("CausalConvWithState", ins, ["y", "state"], name=name, **attrs)]
    inputs: list[tuple[str, int, list[Any]]] = [("x", F, ["b", C, "t"])]
    inits = {}
    if weight_init:
        inits["w"] = rng.standard_normal((C, 1, k)).astype(np.float32)
    else:
        inputs.append(("w", F, [C, 1, k]))
    if bias:
        inits["bias"] = rng.standard_normal(C).astype(np.float32)
    if past:
        inputs.append(("past", F, past_dims or ["b", C, k - 1]))
    return _model(nodes, inputs, ["y", "state"], inits)


@pytest.mark.parametrize(("k", "bias", "past", "activation", "weight_init"), [
    (4, False, False, None, True),          # defaults: no bias, zero state, no activation
    (4, True, True, "silu", True),
    (3, False, True, "swish", False),       # weight as a graph input
    (4, True, False, "none", True),
    (1, True, True, None, True),            # k = 1: an empty state
])
def test_causal_conv_with_state(k: int, bias: bool, past: bool, activation: str | None, weight_init: bool) -> None:
    # t = 1 (a decode step) and t = 2 < k - 1 (the state keeps part of the past) and t = 7
    _check(_conv_model(k, bias, past, activation, weight_init),
           [{"b": 1, "t": 1}, {"b": 2, "t": 2}, {"b": 3, "t": 7}])


def test_causal_conv_with_state_interp() -> None:
    _check(_conv_model(4, True, True, "silu"), [{"b": 1, "t": 1}, {"b": 2, "t": 5}], targets=("interp", "c"))


def test_causal_conv_with_state_fp16() -> None:
    m = _model([helper.make_node("CausalConvWithState", ["x", "w", "", "past"], ["y", "state"], activation="silu")],
               [("x", F16, ["b", C, "t"]), ("w", F16, [C, 1, 3]), ("past", F16, ["b", C, 2])], ["y", "state"])
    _check(m, [{"b": 1, "t": 1}, {"b": 2, "t": 6}], atol=2e-3)


def test_causal_conv_wrong_state_shape_at_run_time() -> None:
    """past_state's time extent is a symbol: k - 1 is checked when it runs,
    and the ShapeError names the node."""
    m = _conv_model(4, False, True, None, past_dims=["b", C, "p"], name="short_conv")
    exe = rx.compile(rx.from_onnx(m))
    x = np.ones((1, C, 5), np.float32)
    good = exe["main"](x, np.ones((1, C, 3), np.float32))
    assert good[1].shape == (1, C, 3)
    with pytest.raises(ShapeError, match="short_conv"):
        exe["main"](x, np.ones((1, C, 2), np.float32))


@pytest.mark.parametrize(("past_dims", "activation", "match"), [
    (["b", C, 2], None, r"short_conv.*past_state has shape \[b, 4, 2\], expected \[b, 4, 3\]"),
    (["b", C + 1, 3], None, r"short_conv.*past_state"),
    (["b", C, 3], "relu", r"short_conv.*'activation' is 'relu'"),
])
def test_causal_conv_refused_at_import(past_dims: list[Any], activation: str | None, match: str) -> None:
    with pytest.raises(OnnxImportError, match=match):
        rx.from_onnx(_conv_model(4, False, True, activation, past_dims=past_dims, name="short_conv"))


# -- LinearAttention ------------------------------------------------------------------------------------------------

D_K, D_V = 4, 3


def _la_model(rule: str | None, hq: int, hkv: int, past: bool, decay_width: str = "key", beta_width: str = "head",
              dtype: int = F, state_dims: list[Any] | None = None, name: str = "la0", **attrs: Any) -> Any:
    rule_ = rule or "gated_delta"
    gating, delta = rule_ in ("gated", "gated_delta"), rule_ in ("delta", "gated_delta")
    ins = ["q", "k", "v", "past" if past else "", "g" if gating else "", "beta" if delta else ""]
    while ins[-1] == "":
        ins.pop()
    if rule is not None:
        attrs["update_rule"] = rule
    nodes = [helper.make_node("LinearAttention", ins, ["o", "state"], name=name, q_num_heads=hq, kv_num_heads=hkv,
                              **attrs)]
    inputs: list[tuple[str, int, list[Any]]] = [("q", dtype, ["b", "t", hq * D_K]), ("k", dtype, ["b", "t", hkv * D_K]),
                                                ("v", dtype, ["b", "t", hkv * D_V])]
    if past:
        inputs.append(("past", dtype, state_dims or ["b", hkv, D_K, D_V]))
    if gating:
        inputs.append(("g", dtype, ["b", "t", hkv * D_K if decay_width == "key" else hkv]))
    if delta:
        inputs.append(("beta", dtype, ["b", "t", hkv if beta_width == "head" else 1]))
    return _model(nodes, inputs, ["o", "state"])


# decay is a log-space gate (negative), beta a rate in (0, 1) and keys small, as in the models that use them
_LA_SCALE = {"g": 0.1, "beta": 0.1, "k": 0.4}
_LA_SHIFT = {"g": -0.3, "beta": 0.5}
_LA_BINDS = [{"b": 1, "t": 1}, {"b": 2, "t": 5}]
_LA_LONG = [{"b": 1, "t": 70}]   # output rows gathered in chunks of 32: two full chunks and a partial one


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("past", [False, True])
def test_linear_attention_rules(rule: str, past: bool) -> None:
    _check(_la_model(rule, 2, 2, past), _LA_BINDS + _LA_LONG, scale=_LA_SCALE, shift=_LA_SHIFT)


@pytest.mark.parametrize(("hq", "hkv", "decay_width", "beta_width", "attrs"), [
    (4, 2, "key", "head", {}),                                     # grouped query heads
    (4, 1, "head", "one", {"scale": 0.5}),                         # multi-query, per-head decay, beta (B, T, 1)
    (2, 2, "head", "head", {"chunk_size": 2}),                     # chunk_size: a hint, the result is the same
])
def test_linear_attention_heads_and_widths(hq: int, hkv: int, decay_width: str, beta_width: str,
                                           attrs: dict[str, Any]) -> None:
    m = _la_model(None, hq, hkv, True, decay_width, beta_width, **attrs)   # default rule: gated_delta
    _check(m, _LA_BINDS, scale=_LA_SCALE, shift=_LA_SHIFT)


def test_linear_attention_interp() -> None:
    _check(_la_model("gated_delta", 4, 2, True), _LA_BINDS + _LA_LONG, targets=("interp",), scale=_LA_SCALE, shift=_LA_SHIFT)


def test_linear_attention_fp16() -> None:
    _check(_la_model("gated", 2, 1, True, dtype=F16), _LA_BINDS, atol=3e-3, scale=_LA_SCALE, shift=_LA_SHIFT)


def test_linear_attention_wrong_state_shape_at_run_time() -> None:
    m = _la_model("linear", 2, 2, True, state_dims=["sb", "sh", "sk", "sv"], name="la_bad_state")
    exe = rx.compile(rx.from_onnx(m))
    q, k, v = (np.ones((1, 2, 2 * d), np.float32) for d in (D_K, D_K, D_V))
    assert exe["main"](q, k, v, np.zeros((1, 2, D_K, D_V), np.float32))[1].shape == (1, 2, D_K, D_V)
    with pytest.raises(ShapeError, match="la_bad_state"):
        exe["main"](q, k, v, np.zeros((1, 2, D_V, D_K), np.float32))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rule": "linear", "state_dims": ["b", 2, D_K, D_K]}, r"past_state has shape \[b, 2, 4, 4\], expected "
                                                           r"\[b, 2, 4, 3\]"),
    ({"rule": "retention"}, r"'update_rule' is 'retention'"),
    ({"rule": "linear", "hq": 3, "hkv": 2}, r"'q_num_heads' \(3\) and 'kv_num_heads' \(2\)"),
])
def test_linear_attention_refused_at_import(kwargs: dict[str, Any], match: str) -> None:
    args = {"rule": "linear", "hq": 2, "hkv": 2, "past": True, **kwargs}
    with pytest.raises(OnnxImportError, match=rf"la0.*{match}"):
        rx.from_onnx(_la_model(args.pop("rule"), args.pop("hq"), args.pop("hkv"), args.pop("past"), **args))


def test_linear_attention_inputs_the_rule_does_not_take() -> None:
    """decay is required by the gated rules and refused by the others (as
    ONNX's reference does), naming the node and the input."""
    m = _la_model("gated", 2, 2, False, name="la_rule")
    m.graph.node[0].attribute[-1].s = b"linear"   # update_rule linear with a decay input
    with pytest.raises(OnnxImportError, match=r"la_rule.*takes no input 4 \(decay\)"):
        rx.from_onnx(m)
    m = _la_model("linear", 2, 2, False, name="la_rule")
    m.graph.node[0].attribute[-1].s = b"delta"    # update_rule delta without beta
    with pytest.raises(OnnxImportError, match=r"la_rule.*needs input 5 \(beta\)"):
        rx.from_onnx(m)
