"""ONNX converters for the opset-27 ops that carry a recurrent state between
calls: CausalConvWithState (the short causal convolution of Mamba / Gated
DeltaNet blocks) and LinearAttention (linear / gated / delta / gated-delta
recurrences), mapped onto existing graph ops.

CausalConvWithState is the Concat + depthwise Conv + Slice it replaces: the
past state (zeros when absent) joined before the input along time, a
depthwise conv2d (groups = channels, so the default pipeline reaches
oneDNN's depthwise kernel), bias and SiLU fused after it, and the new
state the last k - 1 steps of the joined sequence.

LinearAttention runs its recurrence token by token in a `relax.while`, so
the sequence length may be symbolic (prefill and decode share one graph).
Everything that does not depend on the state is computed for all tokens
before the loop (unpacking heads, exp of the decay, the output scale); a
step is a few small batched matmuls and elementwise ops on the
[B, H_kv, d_k, d_v] state, in float32 whatever the input type, as ONNX's
reference computes it. Output rows are gathered by concatenating one
[B, H_q, d_v] slice per token. chunk_size only tunes chunk-parallel
kernels elsewhere: the result does not depend on it, and it is ignored.

Shapes the schema ties together (state dims, heads dividing the packed
feature dims, batch and sequence of every input) are checked at import
when they are static, and at run time by a match_cast otherwise, whose
symbols are named after the node so the ShapeError names it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from relax_xdsl import op as rop
from relax_xdsl.builder import Var
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.frontend.onnx_import import Known, Node, Value, identifier, register_converter
from relax_xdsl.shape import Dim, canon, dim_to_str, dims_differ, dims_equal

_FLOATS = ("float32", "float16", "bfloat16")


def _float_tensor(n: Node, i: int, what: str, rank: int) -> Var:
    v = n.tensor(i, what)
    if v.dtype not in _FLOATS:
        n.fail(f"input {i} ({what}) must be float32, float16 or bfloat16, got {v.dtype}")
    if v.ndim != rank:
        n.fail(f"input {i} ({what}) must have rank {rank}, got shape {_dims(v.shape)}")
    return v


def _dims(dims: Any) -> str:
    return f"[{', '.join(dim_to_str(canon(d)) for d in dims)}]"


def _static(n: Node, d: Any, what: str) -> int:
    c = canon(d)
    if not c.is_Integer:
        n.fail(f"{what} must be static, got the symbolic dim {dim_to_str(c)}")
    return int(c)


def _with_shape(n: Node, v: Var, want: list[Dim], what: str) -> Var:
    """`v` with the shape `want`: an import error when a dim provably
    differs, else `v` as is when every dim is provably equal, else checked
    at run time: its shape as data through a tensor_to_shape named after the
    node and input (so the ShapeError names them), then a match_cast."""
    have = [canon(d) for d in v.shape]
    for k, (a, b) in enumerate(zip(have, want)):
        if dims_differ(a, b):
            n.fail(f"{what} has shape {_dims(have)}, expected {_dims(want)} (dim {k} differs)")
    if all(dims_equal(a, b) for a, b in zip(have, want)):
        return v
    fb = n.importer.fb
    checked = fb.tensor_to_shape(fb.shape_to_tensor(fb.shape_of(v)), want)
    label = n.name or f"{n.op_type}_{n.index}"
    checked.value.name_hint = identifier(f"{label}_{what.replace(' ', '_')}_shape", "state_shape")
    return fb.match_cast(v, want)


def _const(v: float, dtype: str) -> Known:
    return Known(np.array(v, dtype=dtype), dtype)


# -- CausalConvWithState --------------------------------------------------------------------------------------------


@register_converter("CausalConvWithState", attrs=("activation",))
def _causal_conv_with_state(n: Node) -> list[Value]:
    """(output, present_state) of a depthwise causal conv over the last axis
    with a carried state of the last k - 1 steps; activation none, silu or
    swish (the same SiLU)."""
    activation = n.attr("activation", "none")
    if activation not in ("none", "silu", "swish"):
        n.fail(f"attribute 'activation' is {activation!r}; expected one of 'none', 'silu', 'swish'")
    x = _float_tensor(n, 0, "input", 3)
    dtype = x.dtype
    w = n.input(1, "weight")
    if w.dtype != dtype or w.ndim != 3:
        n.fail(f"input 1 (weight) must be a rank-3 {dtype} tensor (channels, 1, k), got {w.dtype} {_dims(w.shape)}")
    batch, channels, length = (canon(d) for d in x.shape)
    c = _static(n, channels, "the channel count (input dim 1)")
    k = _static(n, w.shape[2], "the kernel size (weight dim 2)")
    if k < 1:
        n.fail(f"the kernel size (weight dim 2) must be at least 1, got {k}")
    if not dims_equal(w.shape[0], c) or not dims_equal(w.shape[1], 1):
        n.fail(f"input 1 (weight) has shape {_dims(w.shape)}, expected [{c}, 1, {k}] (depthwise, layout (C, 1, k))")
    state_dims = [batch, channels, canon(k - 1)]
    past = n.optional(3)
    if past is None:
        pad: Value = n.op("zeros", shape=state_dims, dtype=dtype)
    else:
        p = _float_tensor(n, 3, "past_state", 3)
        if p.dtype != dtype:
            n.fail(f"input 3 (past_state) is {p.dtype}, input is {dtype}: they must have one type")
        pad = _with_shape(n, p, state_dims, "past_state")
    joined = n.op("concat", pad, x, axis=2)  # (B, C, k - 1 + L)
    y = n.op("conv2d", n.op("expand_dims", joined, axis=[2]), n.op("expand_dims", w, axis=[2]), groups=c)
    y = n.op("squeeze", y, axis=[2])
    bias = n.optional(2)
    if bias is not None:
        if bias.dtype != dtype or bias.ndim != 1 or not dims_equal(bias.shape[0], c):
            n.fail(f"input 2 (bias) must be a {dtype} tensor of shape [{c}], got {bias.dtype} {_dims(bias.shape)}")
        y = n.op("add", y, n.op("reshape", bias, shape=[1, c, 1]))
    if activation != "none":
        y = n.op("silu", y)
    present = n.op("strided_slice", joined, axes=[2], begin=[length], end=[length + k - 1], strides=[1])
    return [y, present]


# -- LinearAttention ------------------------------------------------------------------------------------------------

_RULES = ("linear", "gated", "delta", "gated_delta")

ROWS_PER_CHUNK = 32
"""Output rows are gathered per chunk of this many tokens (an inner loop)
and chunks joined in an outer one: joining one row per token onto the whole
output would copy O(T^2) rows over a long prefill."""


def _heads(n: Node) -> tuple[int, int]:
    hq, hkv = int(n.attr("q_num_heads")), int(n.attr("kv_num_heads"))
    if hq <= 0 or hkv <= 0 or hq % hkv:
        n.fail(f"attributes 'q_num_heads' ({hq}) and 'kv_num_heads' ({hkv}): q_num_heads must be a positive "
               "multiple of kv_num_heads")
    return hq, hkv


def _per_head(n: Node, feature: int, heads: int, what: str, attr: str) -> int:
    if feature % heads:
        n.fail(f"{what} has {feature} features, not divisible by {attr} {heads}")
    return feature // heads


def _time_major(n: Node, v: Var, dims: list[Any]) -> Var:
    """(B, T, H*D) packed as (T, B, *dims): one token's slice is a take along axis 0."""
    four = rop.reshape(rop.astype(v, "float32") if v.dtype != "float32" else v, [v.shape[0], v.shape[1], *dims])
    return rop.permute_dims(four, [1, 0, *range(2, 2 + len(dims))])


@register_converter("LinearAttention", attrs=("chunk_size", "kv_num_heads", "q_num_heads", "scale", "update_rule"))
def _linear_attention(n: Node) -> list[Value]:
    """(output, present_state): o_t = scale * q_t^T S_t with S_t updated per
    token by the update rule; grouped query heads share a KV head's state."""
    rule = n.attr("update_rule", "gated_delta")
    if rule not in _RULES:
        n.fail(f"attribute 'update_rule' is {rule!r}; expected one of {', '.join(repr(r) for r in _RULES)}")
    hq, hkv = _heads(n)
    group = hq // hkv
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    fb = n.importer.fb
    q = _float_tensor(n, 0, "query", 3)
    dtype = q.dtype
    batch, length = canon(q.shape[0]), canon(q.shape[1])
    d_k = _per_head(n, _static(n, q.shape[2], "query's packed feature dim"), hq, "query", "q_num_heads")
    k = _float_tensor(n, 1, "key", 3)
    v = _float_tensor(n, 2, "value", 3)
    for i, t in ((1, k), (2, v)):
        if t.dtype != dtype:
            n.fail(f"input {i} ({'key' if i == 1 else 'value'}) is {t.dtype}, query is {dtype}: they must have one type")
    d_v = _per_head(n, _static(n, v.shape[2], "value's packed feature dim"), hkv, "value", "kv_num_heads")
    k = _with_shape(n, k, [batch, length, hkv * d_k], "key")
    v = _with_shape(n, v, [batch, length, hkv * d_v], "value")

    for i, name, needed in ((4, "decay", gating), (5, "beta", delta)):
        if needed and n.optional(i) is None:
            n.fail(f"update_rule {rule!r} needs input {i} ({name})")
        if not needed and n.optional(i) is not None:
            n.fail(f"update_rule {rule!r} takes no input {i} ({name}); it is used by "
                   f"{'gated and gated_delta' if name == 'decay' else 'delta and gated_delta'}")
    decay = beta = None
    if gating:
        g = _float_tensor(n, 4, "decay", 3)
        width = _static(n, g.shape[2], "decay's last dim")
        if width not in (hkv, hkv * d_k):
            n.fail(f"input 4 (decay) has last dim {width}; expected kv_num_heads ({hkv}) or kv_num_heads * d_k "
                   f"({hkv * d_k})")
        g = _with_shape(n, g, [batch, length, width], "decay")
        decay = rop.exp(_time_major(n, g, [hkv, width // hkv, 1]))  # (T, B, H_kv, d_k or 1, 1)
    if delta:
        b = _float_tensor(n, 5, "beta", 3)
        width = _static(n, b.shape[2], "beta's last dim")
        if width not in (hkv, 1):
            n.fail(f"input 5 (beta) has last dim {width}; expected kv_num_heads ({hkv}) or 1")
        b = _with_shape(n, b, [batch, length, width], "beta")
        beta = _time_major(n, b, [width, 1])  # (T, B, H_kv or 1, 1)

    state_dims: list[Dim] = [batch, canon(hkv), canon(d_k), canon(d_v)]
    past = n.optional(3)
    if past is None:
        state_dtype = dtype
        state0 = rop.zeros(state_dims, "float32")
    else:
        p = _float_tensor(n, 3, "past_state", 4)
        state_dtype = p.dtype
        p = _with_shape(n, p, state_dims, "past_state")
        state0 = p if p.dtype == "float32" else rop.astype(p, "float32")

    scale = float(n.attr("scale", 0.0))
    if scale == 0.0:
        scale = 1.0 / math.sqrt(d_k)
    qs = rop.multiply(_time_major(n, q, [hkv, group, d_k]), fb.const(np.array(scale, np.float32)))
    ks = _time_major(n, k, [hkv, d_k])  # (T, B, H_kv, d_k)
    vs = _time_major(n, v, [hkv, d_v])  # (T, B, H_kv, d_v)
    rows = [batch, canon(hkv), canon(group), canon(d_v)]

    steps = _length(n, length)
    i0 = fb.const(np.array(0, np.int64))
    one, chunk = fb.const(np.array(1, np.int64)), fb.const(np.array(ROWS_PER_CHUNK, np.int64))

    def step(i: Var, state: Var, out: Var) -> list[Var]:
        """Token i: the state updated and its output row appended to `out`."""
        state = fb.match_cast(state, state_dims)
        k_t, v_t = rop.take(ks, i, axis=0), rop.take(vs, i, axis=0)
        if decay is not None:
            state = rop.multiply(state, rop.take(decay, i, axis=0))
        if beta is not None:
            recalled = rop.squeeze(rop.matmul(rop.expand_dims(k_t, axis=[2]), state), axis=[2])  # S^T k
            v_t = rop.multiply(rop.take(beta, i, axis=0), rop.subtract(v_t, recalled))
        state = rop.add(state, rop.multiply(rop.expand_dims(k_t, axis=[3]), rop.expand_dims(v_t, axis=[2])))
        o_t = rop.matmul(rop.take(qs, i, axis=0), state)  # (B, H_kv, group, d_v)
        return [rop.add(i, one), state, rop.concat([out, rop.expand_dims(o_t, axis=[0])], axis=0)]

    def carried() -> list[Any]:
        """Each loop's carried types (a token index, the state, rows so far), with its own fresh symbols."""
        return [i0.type, fb.generalize(state0.type),
                fb.generalize(TensorType.of([fb.fresh_symbols(1)[0], *rows], "float32"))]

    def one_chunk(j: Var, state: Var, out: Var) -> list[Var]:
        """Tokens j .. min(j + ROWS_PER_CHUNK, T) - 1, their rows gathered
        apart and then joined to the output once."""
        end = rop.minimum(rop.add(j, chunk), steps)
        _, state, piece = fb.while_([j, state, rop.zeros([0, *rows], "float32")], lambda i, *_: rop.less(i, end),
                                    step, carried=carried())
        return [end, state, rop.concat([out, piece], axis=0)]

    _, state, out = fb.while_([i0, state0, rop.zeros([0, *rows], "float32")], lambda j, *_: rop.less(j, steps),
                              one_chunk, carried=carried())
    state = fb.match_cast(state, state_dims)
    out = fb.match_cast(out, [length, *rows])  # (T, B, H_kv, group, d_v)
    out = rop.reshape(rop.permute_dims(out, [1, 0, 2, 3, 4]), [batch, length, hq * d_v])
    return [out if dtype == "float32" else rop.astype(out, dtype),
            state if state_dtype == "float32" else rop.astype(state, state_dtype)]


def _length(n: Node, d: Dim) -> Var:
    """A dim as a 0-d int64 tensor."""
    fb = n.importer.fb
    if d.is_Integer:
        return fb.const(np.array(int(d), np.int64))
    return rop.reshape(fb.shape_to_tensor(fb.make_shape([d])), [])
