"""ONNX converters for miscellaneous ops: Einsum, Hardmax, EyeLike, CastLike,
SwiGLU, the spectral windows, the two classification losses, Attention and
RotaryEmbedding.

Each maps onto existing graph ops so that fusion and the matmul fast paths
apply: an Einsum becomes permute/reshape/matmul/sum (a repeated index is a
diagonal mask), Attention two matmuls around a masked softmax, the losses a
one-hot selection plus a `take` of the class weights (which range-checks the
labels on every target). Windows have a constant size and fold at import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy

from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Known, Node, Unavailable, Value, onnx_dtype, register_converter
from relax_xdsl.shape import canon, dims_equal, is_one


def _const(v: float | int | bool, dtype: str) -> Known:
    return Known(np.array(v, dtype=dtype), dtype)


def _axis_iota(n: Node, dim: Any, axis: int, rank: int, dtype: str = "int64") -> Value:
    """0..dim-1 laid along `axis` of a rank-`rank` tensor (ones elsewhere): the
    index a one-hot or diagonal mask compares against."""
    d = canon(dim)
    if d.is_Integer:
        iota: Value = Known(np.arange(int(d), dtype=dtype), dtype)
    else:
        iota = n.op("arange", start=0.0, step=1.0, dtype=dtype, length=[d])
    shape: list[Any] = [1] * rank
    shape[axis] = d
    return n.op("reshape", iota, shape=shape)


# -- casts and constants-like ----------------------------------------------------------------------------------------


@register_converter("CastLike", attrs=("saturate", "round_mode"))
def _cast_like(n: Node) -> Value:
    """saturate and round_mode only concern float8 targets, which relax has not."""
    x, like = n.input(0, "input"), n.input(1, "target_type")
    return x if x.dtype == like.dtype else n.op("astype", x, dtype=like.dtype)


@register_converter("EyeLike", attrs=("dtype", "k"))
def _eye_like(n: Node) -> Value:
    x = n.input(0, "input")
    if x.ndim != 2:
        n.fail(f"input must have rank 2, got rank {x.ndim}")
    dtype = onnx_dtype(n.attr("dtype"), f"node {n.name!r} (EyeLike) attribute dtype") if "dtype" in n.attrs \
        else x.dtype
    k = int(n.attr("k", 0))
    rows, cols = (canon(d) for d in x.shape)
    if rows.is_Integer and cols.is_Integer:
        return Known(np.eye(int(rows), int(cols), k, dtype=dtype), dtype)
    r = _axis_iota(n, rows, 0, 2)
    c = _axis_iota(n, cols, 1, 2)
    diag = n.op("equal", n.op("add", r, _const(k, "int64")), c)
    return n.op("astype", diag, dtype=dtype)


_WINDOW_TERMS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
                 "BlackmanWindow": (0.42, 0.5, 0.08)}
"""a0 - a1 cos(phase) + a2 cos(2 phase), phase = 2 pi k / N (N = size, or size - 1 when not periodic; a
symmetric window of size 1 is NaN, as ONNX's function body and onnxruntime compute it)."""


def _window_at_run_time(n: Node, dtype: str) -> Value:
    """A window whose size is data: its length is a fresh symbol bound when
    the program runs (a negative size fails there, as any size does)."""
    size = rt.as_int64(n, rt.scalar_tensor(n, 0, "size"))
    (length,) = rt.sizes(n, n.op("reshape", size, shape=[1]), "size")
    k = n.op("arange", start=0.0, step=1.0, dtype="float64", length=[length])
    denom = n.op("astype", size if n.attr("periodic", 1) else n.op("subtract", size, rt.const(1)), dtype="float64")
    phase = n.op("divide", n.op("multiply", k, rt.const(2 * np.pi, "float64")), denom)
    a0, a1, a2 = _WINDOW_TERMS[n.op_type]
    w = n.op("subtract", rt.const(a0, "float64"), n.op("multiply", rt.const(a1, "float64"), n.op("cos", phase)))
    if a2:
        twice = n.op("multiply", phase, rt.const(2.0, "float64"))
        w = n.op("add", w, n.op("multiply", rt.const(a2, "float64"), n.op("cos", twice)))
    return n.op("astype", w, dtype=dtype)


@register_converter(("HannWindow", "HammingWindow", "BlackmanWindow"), attrs=("periodic", "output_datatype"))
def _window(n: Node) -> Value:
    dtype = onnx_dtype(n.attr("output_datatype", 1), f"node {n.name!r} ({n.op_type}) attribute output_datatype")
    if rt.is_runtime(n, 0):
        return _window_at_run_time(n, dtype)
    size = n.scalar(0, "size")
    if size is None or isinstance(size, float) and not size.is_integer():
        n.fail("size must be an integer")
    size = int(size)
    if size < 1:
        n.fail(f"size must be >= 1, got {size}")
    denom = size if n.attr("periodic", 1) else size - 1
    k = np.arange(size, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # size 1, not periodic: 0 / 0, NaN as ONNX's function body
        phase = 2 * np.pi * k / denom
    a0, a1, a2 = _WINDOW_TERMS[n.op_type]
    w = a0 - a1 * np.cos(phase) + a2 * np.cos(2 * phase)
    return Known(w.astype(dtype), dtype)


# -- activations over axes -----------------------------------------------------------------------------------------


@register_converter("Hardmax", attrs=("axis",))
def _hardmax(n: Node) -> Value:
    """1 at the first maximum along the axis, 0 elsewhere; before opset 13
    over the dims from `axis` on, flattened (as Softmax)."""
    x = n.input(0, "input")
    axis = n.axis(n.attr("axis", -1 if n.opset >= 13 else 1), x.ndim)
    if n.opset < 13 and axis != x.ndim - 1:
        dims = [canon(d) for d in x.shape]
        flat = n.op("reshape", x, shape=[canon(sympy.Mul(*dims[:axis])), canon(sympy.Mul(*dims[axis:]))])
        return n.op("reshape", _hardmax_on(n, flat, 1), shape=list(x.shape))
    return _hardmax_on(n, x, axis)


def _hardmax_on(n: Node, x: Value, axis: int) -> Value:
    first = n.op("argmax", x, axis=axis, keepdims=True)
    return n.op("astype", n.op("equal", first, _axis_iota(n, x.shape[axis], axis, x.ndim)), dtype=x.dtype)


@register_converter("SwiGLU", attrs=("alpha",))
def _swiglu(n: Node) -> Value:
    a, b = n.input(0, "A"), n.input(1, "B")
    if a.dtype != b.dtype:
        n.fail(f"A and B have different element types {a.dtype} and {b.dtype}")
    alpha = float(n.attr("alpha", 1.0))
    gate = n.op("sigmoid", a if alpha == 1.0 else n.op("multiply", a, _const(alpha, a.dtype)))
    return n.op("multiply", n.op("multiply", a, gate), b)


# -- Einsum ------------------------------------------------------------------------------------------------------------


def _einsum_terms(n: Node, args: list[Value]) -> tuple[list[list[str]], list[str]]:
    """Each operand's labels and the output's, ellipses expanded to private
    labels (right-aligned, so a shorter ellipsis broadcasts)."""
    eq = str(n.attr("equation")).replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(args):
        n.fail(f"equation {eq!r} has {len(terms)} operands but the node has {len(args)} inputs")
    ell_rank = 0
    for t, a in zip(terms, args):
        letters = t.replace("...", "")
        if not letters.isalpha() and letters:
            n.fail(f"equation {eq!r}: term {t!r} has characters other than letters and '...'")
        if "..." in t:
            ell_rank = max(ell_rank, a.ndim - len(letters))
        elif len(letters) != a.ndim:
            n.fail(f"equation {eq!r}: term {t!r} has {len(letters)} labels but the operand has rank {a.ndim}")
    ell = [chr(0x3B1 + i) for i in range(ell_rank)]  # greek letters never clash with ASCII labels
    out_terms = []
    for t, a in zip(terms, args):
        letters = t.replace("...", "")
        k = a.ndim - len(letters)
        if k < 0:
            n.fail(f"equation {eq!r}: term {t!r} has more labels than the operand's rank {a.ndim}")
        pre, _, post = t.partition("...")
        out_terms.append(list(pre) + ell[ell_rank - k:] + list(post) if "..." in t else list(t))
    if arrow:
        if rhs.replace("...", "") and not rhs.replace("...", "").isalpha():
            n.fail(f"equation {eq!r}: the output has characters other than letters and '...'")
        pre, dots, post = rhs.partition("...")
        out = list(pre) + (ell if dots else []) + list(post)
    else:
        counts: dict[str, int] = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, m in counts.items() if m == 1 and c not in ell)
    seen = {c for t in out_terms for c in t}
    for c in out:
        if c not in seen:
            n.fail(f"equation {eq!r}: output label {c!r} is on no operand")
    if len(set(out)) != len(out):
        n.fail(f"equation {eq!r}: the output repeats a label")
    return out_terms, out


def _take_diagonals(n: Node, x: Value, labels: list[str]) -> tuple[Value, list[str]]:
    """A label repeated within one operand selects the diagonal: mask off the
    other entries and sum one of the two axes away."""
    labels = list(labels)
    while len(set(labels)) != len(labels):
        i = next(k for k, c in enumerate(labels) if c in labels[:k])
        first = labels.index(labels[i])
        d = x.shape[first]
        mask = n.op("equal", _axis_iota(n, d, first, x.ndim), _axis_iota(n, x.shape[i], i, x.ndim))
        x = n.op("sum", n.op("where", mask, x, _const(0, x.dtype)), axis=[i])
        labels.pop(i)
    return x, labels


def _sum_out(n: Node, x: Value, labels: list[str], keep: set[str]) -> tuple[Value, list[str]]:
    drop = [i for i, c in enumerate(labels) if c not in keep]
    if not drop:
        return x, labels
    return n.op("sum", x, axis=drop), [c for c in labels if c in keep]


def _permute(n: Node, x: Value, labels: list[str], order: list[str]) -> Value:
    perm = [labels.index(c) for c in order]
    return x if perm == list(range(len(perm))) else n.op("permute_dims", x, axes=perm)


def _reshape(n: Node, x: Value, shape: list[Any]) -> Value:
    if len(shape) == x.ndim and all(dims_equal(a, b) for a, b in zip(x.shape, shape)):
        return x
    return n.op("reshape", x, shape=shape)


def _prod(dims: list[Any]) -> Any:
    return canon(sympy.Mul(*[canon(d) for d in dims]))


def _contract(n: Node, a: Value, la: list[str], b: Value, lb: list[str], keep: set[str]) -> tuple[Value, list[str]]:
    """One pairwise contraction as a (batched) matmul: a as [batch, left, k],
    b as [batch, k, right]."""
    a, la = _sum_out(n, a, la, keep | set(lb))
    b, lb = _sum_out(n, b, lb, keep | set(la))
    batch = [c for c in la if c in lb and c in keep]
    con = [c for c in la if c in lb and c not in keep]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    da = dict(zip(la, a.shape))
    db = dict(zip(lb, b.shape))
    bdims = [da[c] for c in batch]
    a2 = _reshape(n, _permute(n, a, la, batch + left + con), bdims + [_prod([da[c] for c in left]),
                                                                       _prod([da[c] for c in con])])
    b2 = _reshape(n, _permute(n, b, lb, batch + con + right), bdims + [_prod([db[c] for c in con]),
                                                                       _prod([db[c] for c in right])])
    y = n.op("matmul", a2, b2)
    return _reshape(n, y, bdims + [da[c] for c in left] + [db[c] for c in right]), batch + left + right


def _drop_broadcast_ones(n: Node, args: list[Value], terms: list[list[str]]) -> list[Value]:
    """A dim of 1 against a larger dim of the same label broadcasts: sum that
    axis away (it holds one element) so the label comes from the other operand."""
    sizes: dict[str, list[Any]] = {}
    for a, t in zip(args, terms):
        for c, d in zip(t, a.shape):
            sizes.setdefault(c, []).append(canon(d))
    out = []
    for k, (a, t) in enumerate(zip(args, terms)):
        drop = [i for i, (c, d) in enumerate(zip(t, a.shape))
                if is_one(canon(d)) and any(not is_one(e) for e in sizes[c]) and t.count(c) == 1]
        if drop:
            a = n.op("sum", a, axis=drop)
            terms[k] = [c for i, c in enumerate(t) if i not in drop]
        out.append(a)
    return out


@register_converter("Einsum", attrs=("equation",))
def _einsum(n: Node) -> Value:
    args = [v for v in n.inputs if v is not None]
    if not args:
        n.fail("needs at least one input")
    terms, out = _einsum_terms(n, args)
    args = _drop_broadcast_ones(n, args, terms)
    vals = []
    for a, t in zip(args, terms):
        vals.append(_take_diagonals(n, a, t))
    acc, la = vals[0]
    for i in range(1, len(vals)):
        keep = set(out).union(*(set(t) for _, t in vals[i + 1:]))
        b, lb = vals[i]
        acc, la = _contract(n, acc, la, b, lb, keep)
    acc, la = _sum_out(n, acc, la, set(out))
    return _permute(n, acc, la, out)


# -- losses ------------------------------------------------------------------------------------------------------------


def _nll(n: Node, x: Value, target: Value, weight: Value | None) -> Value:
    """ONNX NegativeLogLikelihoodLoss on input [N, C, d...] and labels
    [N, d...]. The class weight is a `take` of the labels (ones without
    weights), so a label outside [-C, C) other than ignore_index is a
    BoundsError on every target."""
    if x.ndim < 2:
        n.fail(f"input must have rank >= 2 (N, C, ...), got rank {x.ndim}")
    if target.ndim != x.ndim - 1:
        n.fail(f"target must have rank {x.ndim - 1}, got rank {target.ndim}")
    if not target.dtype.startswith("int"):
        n.fail(f"target must hold integers, got {target.dtype}")
    reduction = n.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        n.fail(f"reduction={reduction!r} is not supported (none, sum or mean)")
    dt = x.dtype
    c = canon(x.shape[1])
    ignore = n.attr("ignore_index", None)
    label = target
    valid: Value | None = None
    if ignore is not None:
        valid = n.op("not_equal", target, _const(int(ignore), target.dtype))
        label = n.op("where", valid, target, _const(0, target.dtype))
    if weight is None:
        if not c.is_Integer:
            weight = n.op("full", shape=[c], fill_value=1.0, dtype=dt)
        else:
            weight = Known(np.ones(int(c), dtype=dt), dt)
    elif weight.ndim != 1:
        n.fail(f"weight must have rank 1, got rank {weight.ndim}")
    w = n.op("take", weight, label, axis=0)
    if valid is not None:
        w = n.op("where", valid, w, _const(0, dt))
    onehot = n.op("equal", n.op("expand_dims", label, axis=[1]), _axis_iota(n, c, 1, x.ndim, target.dtype))
    picked = n.op("sum", n.op("where", onehot, x, _const(0, dt)), axis=[1])
    loss = n.op("negative", n.op("multiply", picked, w))
    if reduction == "none":
        return loss
    total = n.op("sum", loss)
    if reduction == "sum":
        return total
    return n.op("divide", total, n.op("sum", w))


@register_converter("NegativeLogLikelihoodLoss", attrs=("ignore_index", "reduction"))
def _nll_loss(n: Node) -> Value:
    return _nll(n, n.input(0, "input"), n.input(1, "target"), n.optional(2))


@register_converter("SoftmaxCrossEntropyLoss", attrs=("ignore_index", "reduction"))
def _softmax_cross_entropy(n: Node) -> list[Value]:
    scores = n.input(0, "scores")
    if scores.ndim < 2:
        n.fail(f"scores must have rank >= 2 (N, C, ...), got rank {scores.ndim}")
    log_prob = n.op("log_softmax", scores, axis=1)
    return [_nll(n, log_prob, n.input(1, "labels"), n.optional(2)), log_prob]


# -- attention -----------------------------------------------------------------------------------------------------


def _heads(n: Node, x: Value, heads: int | None, what: str) -> Value:
    """[B, S, H*D] as [B, H, S, D] (3-d inputs name their head count)."""
    if x.ndim == 4:
        return x
    if x.ndim != 3:
        n.fail(f"{what} must have rank 3 or 4, got rank {x.ndim}")
    if heads is None:
        n.fail(f"3-d inputs need the attributes q_num_heads and kv_num_heads ({what})")
    hidden = canon(x.shape[2])
    if hidden.is_Integer and int(hidden) % heads:
        n.fail(f"{what}'s hidden size {hidden} is not a multiple of {heads} heads")
    y = n.op("reshape", x, shape=[x.shape[0], x.shape[1], heads, canon(hidden / heads)])
    return n.op("permute_dims", y, axes=[0, 2, 1, 3])


def _neg_inf(dt: str) -> Known:
    return _const(-np.inf, dt)


def _nonpad_lengths(n: Node, lens: Value, kv_len: Any) -> Value:
    """nonpad_kv_seqlen as int64 [batch, 1, 1, 1]. A length outside
    [0, kv] is outside ONNX's contract (above kv it would unmask keys that
    are not there; onnxruntime refuses both sides), so each goes through a
    gather from 0..kv, a negative one as index kv + 1: a BoundsError naming
    the node when it runs."""
    if lens.ndim != 1:
        n.fail(f"nonpad_kv_seqlen must have rank 1 (batch,), got rank {lens.ndim}")
    if not lens.dtype.startswith("int"):
        n.fail(f"nonpad_kv_seqlen must hold integers, got {lens.dtype}")
    if lens.dtype != "int64":
        lens = n.op("astype", lens, dtype="int64")
    d = canon(kv_len + 1)
    upto = Known(np.arange(int(d), dtype="int64"), "int64") if d.is_Integer else \
        n.op("arange", start=0.0, step=1.0, dtype="int64", length=[d])
    index = n.op("where", n.op("less", lens, _const(0, "int64")), rt.dims_data(n, [d]), lens)
    lens = n.op("take", upto, index, axis=0,
                what=f"{n.where}: nonpad_kv_seqlen must be in [0, {kv_len}] (a negative one is checked as {d})")
    return n.op("reshape", lens, shape=[lens.shape[0], 1, 1, 1])


def _attention_bias(n: Node, q_len: Any, kv_len: Any, past_len: Any, mask: Value | None, dt: str,
                    nonpad: Value | None = None) -> Value | None:
    """The additive bias [.., q, kv]: the mask (bool as 0 / -inf, padded with
    -inf up to kv), plus the causal and sliding-window limits, which align
    the query block to the end of the past (query i is at past + i). With an
    external cache (`nonpad`, [batch, 1, 1, 1] valid key counts) query i is
    at nonpad - q + i of its batch, and keys from nonpad on are padding
    (-inf), so the bias gains the batch axis."""
    bias: Value | None = None
    if mask is not None:
        if mask.dtype == "bool":
            mask = n.op("where", mask, _const(0, dt), _neg_inf(dt))
        elif mask.dtype != dt:
            n.fail(f"attn_mask has element type {mask.dtype}, expected bool or {dt}")
        m_kv = canon(mask.shape[-1])
        if not dims_equal(m_kv, kv_len):
            pad = canon(kv_len - m_kv)
            if pad.is_Integer and int(pad) < 0:
                n.fail(f"attn_mask's last dim {m_kv} exceeds the key length {kv_len}")
            fill = n.op("full", shape=[*mask.shape[:-1], pad], fill_value=-math.inf, dtype=dt)
            mask = n.op("concat", mask, fill, axis=mask.ndim - 1)
        bias = mask
    causal = bool(n.attr("is_causal", 0))
    left, right = int(n.attr("left_window_size", -1)), int(n.attr("right_window_size", -1))
    if causal or left >= 0 or right >= 0:
        j = _axis_iota(n, kv_len, 1, 2)
        if nonpad is not None:  # [batch, 1, q, 1]
            pos = n.op("add", _axis_iota(n, q_len, 2, 4), n.op("subtract", nonpad, rt.dims_data(n, [q_len])))
        elif past_len == 0:
            pos = _axis_iota(n, q_len, 0, 2)
        elif isinstance(past_len, int):
            pos = n.op("add", _axis_iota(n, q_len, 0, 2), _const(past_len, "int64"))
        else:  # query i is at position past + i among the keys
            end = canon(past_len + q_len)
            pos = n.op("strided_slice", _axis_iota(n, kv_len, 0, 2), axes=[0], begin=[past_len], end=[end],
                       strides=[1], assume_inbound=not end.is_Integer)
        diff = n.op("subtract", pos, j)  # query position - key position
        allowed: Value | None = None

        def both(a: Value | None, b: Value) -> Value:
            return b if a is None else n.op("where", a, b, _const(False, "bool"))

        if causal:
            allowed = both(allowed, n.op("greater_equal", diff, _const(0, "int64")))
        if left >= 0:
            allowed = both(allowed, n.op("less_equal", diff, _const(left, "int64")))
        if right >= 0:
            allowed = both(allowed, n.op("greater_equal", diff, _const(-right, "int64")))
        assert allowed is not None
        limit = n.op("where", allowed, _const(0, dt), _neg_inf(dt))
        bias = limit if bias is None else n.op("add", bias, limit)
    if nonpad is not None:
        padding = n.op("where", n.op("less", _axis_iota(n, kv_len, 3, 4), nonpad), _const(0, dt), _neg_inf(dt))
        bias = padding if bias is None else n.op("add", bias, padding)
    return bias


@register_converter("Attention", attrs=("is_causal", "kv_num_heads", "q_num_heads", "qk_matmul_output_mode", "scale",
                                        "softcap", "softmax_precision", "left_window_size", "right_window_size"))
def _attention(n: Node) -> list[Value | Unavailable]:
    q, k, v = n.input(0, "Q"), n.input(1, "K"), n.input(2, "V")
    mask, past_k, past_v = n.optional(3), n.optional(4), n.optional(5)
    nonpad = n.optional(6)
    if (past_k is None) != (past_v is None):
        n.fail("past_key and past_value must be given together")
    if nonpad is not None and (past_k is not None or any(n.outputs[1:3])):
        n.fail("nonpad_kv_seqlen (an external cache) cannot be combined with past_key / past_value or the "
               "present_key / present_value outputs")
    if not q.ndim == k.ndim == v.ndim:
        n.fail(f"Q, K and V must have the same rank, got {q.ndim}, {k.ndim}, {v.ndim}")
    dt = q.dtype
    three_d = q.ndim == 3
    qh = n.attr("q_num_heads", None)
    kvh = n.attr("kv_num_heads", None)
    q4, k4, v4 = _heads(n, q, qh, "Q"), _heads(n, k, kvh, "K"), _heads(n, v, kvh, "V")
    if past_k is not None:
        k4 = n.op("concat", past_k, k4, axis=2)
        v4 = n.op("concat", past_v, v4, axis=2)
    present_k, present_v = k4, v4
    head = canon(q4.shape[3])
    scale = n.attr("scale", None)
    if scale is None:
        if not head.is_Integer:
            n.fail("a symbolic head size needs the scale attribute")
        scale = 1 / math.sqrt(int(head))
    root = _const(math.sqrt(float(scale)), dt)
    n_q, n_kv = canon(q4.shape[1]), canon(k4.shape[1])
    if not dims_equal(n_q, n_kv):
        if not (n_q.is_Integer and n_kv.is_Integer) or int(n_q) % int(n_kv):
            n.fail(f"{n_q} query heads are not a multiple of {n_kv} key/value heads")
        reps = int(n_q) // int(n_kv)

        def repeat(t: Value) -> Value:
            s = list(t.shape)
            t = n.op("broadcast_to", n.op("expand_dims", t, axis=[2]), shape=[s[0], s[1], reps, *s[2:]])
            return n.op("reshape", t, shape=[s[0], n_q, *s[2:]])

        k4, v4 = repeat(k4), repeat(v4)
    qk = n.op("matmul", n.op("multiply", q4, root),
              n.op("permute_dims", n.op("multiply", k4, root), axes=[0, 1, 3, 2]))
    softcap = float(n.attr("softcap", 0.0))
    if softcap > 0:
        cap = _const(softcap, dt)
        qk = n.op("multiply", n.op("tanh", n.op("divide", qk, cap)), cap)
    q_len, kv_len = canon(q4.shape[2]), canon(k4.shape[2])
    past_len: Any = canon(past_k.shape[2]) if past_k is not None else 0
    if isinstance(past_len, sympy.Integer):
        past_len = int(past_len)
    lens = None if nonpad is None else _nonpad_lengths(n, nonpad, kv_len)
    bias = _attention_bias(n, q_len, kv_len, past_len, mask, dt, lens)
    logits = qk if bias is None else n.op("add", qk, bias)
    precision = n.attr("softmax_precision", None)
    sm_dt = onnx_dtype(precision, f"node {n.name!r} (Attention) attribute softmax_precision") if precision else dt
    p = n.op("softmax", logits if sm_dt == dt else n.op("astype", logits, dtype=sm_dt), axis=3)
    if bias is not None:  # a row with no attendable key gives zeros, not NaN
        masked = n.op("equal", n.op("max", bias, axis=[bias.ndim - 1], keepdims=True), _const(-np.inf, dt))
        p = n.op("where", masked, _const(0, sm_dt), p)
    if sm_dt != dt:
        p = n.op("astype", p, dtype=dt)
    y = n.op("matmul", p, v4)
    if three_d:
        y = n.op("permute_dims", y, axes=[0, 2, 1, 3])
        y = n.op("reshape", y, shape=[y.shape[0], y.shape[1], canon(y.shape[2] * y.shape[3])])
    mode = int(n.attr("qk_matmul_output_mode", 0))
    if mode not in (0, 1, 2, 3):
        n.fail(f"qk_matmul_output_mode={mode} is not supported (0..3)")
    qk_out = {0: qk, 1: qk, 2: logits, 3: p}[mode]
    return [y, present_k, present_v, qk_out]


@register_converter("RotaryEmbedding", attrs=("interleaved", "num_heads", "rotary_embedding_dim"))
def _rotary_embedding(n: Node) -> Value:
    x, cos, sin, pos = n.input(0, "X"), n.input(1, "cos_cache"), n.input(2, "sin_cache"), n.optional(3)
    if x.ndim == 4:
        xs = n.op("permute_dims", x, axes=[0, 2, 1, 3])
    elif x.ndim == 3:
        heads = n.attr("num_heads", None)
        if not heads:
            n.fail("3-d input needs the num_heads attribute")
        hidden = canon(x.shape[2])
        if hidden.is_Integer and int(hidden) % int(heads):
            n.fail(f"hidden size {hidden} is not a multiple of num_heads={heads}")
        xs = n.op("reshape", x, shape=[x.shape[0], x.shape[1], int(heads), canon(hidden / int(heads))])
    else:
        n.fail(f"X must have rank 3 or 4, got rank {x.ndim}")
    head = canon(xs.shape[3])
    rot = int(n.attr("rotary_embedding_dim", 0)) or None
    if rot is None:
        if not head.is_Integer:
            n.fail("a symbolic head size needs the rotary_embedding_dim attribute")
        rot = int(head)
    if rot % 2 or (head.is_Integer and rot > int(head)):
        n.fail(f"rotary_embedding_dim {rot} must be even and at most the head size {head}")
    if pos is not None:
        cos, sin = n.op("take", cos, pos, axis=0), n.op("take", sin, pos, axis=0)
    if cos.ndim != 3 or sin.ndim != 3:
        n.fail("cos_cache and sin_cache must be [batch, seq, rot/2] (or [max_pos, rot/2] with position_ids)")
    cos, sin = n.op("expand_dims", cos, axis=[2]), n.op("expand_dims", sin, axis=[2])
    interleaved = bool(n.attr("interleaved", 0))
    full = rot == int(head) if head.is_Integer else False
    x_rot = xs if full else n.op("strided_slice", xs, axes=[3], begin=[0], end=[rot], strides=[1])
    if interleaved:
        x1 = n.op("strided_slice", x_rot, axes=[3], begin=[0], end=[rot], strides=[2])
        x2 = n.op("strided_slice", x_rot, axes=[3], begin=[1], end=[rot], strides=[2])
    else:
        x1 = n.op("strided_slice", x_rot, axes=[3], begin=[0], end=[rot // 2], strides=[1])
        x2 = n.op("strided_slice", x_rot, axes=[3], begin=[rot // 2], end=[rot], strides=[1])
    real = n.op("subtract", n.op("multiply", cos, x1), n.op("multiply", sin, x2))
    imag = n.op("add", n.op("multiply", sin, x1), n.op("multiply", cos, x2))
    if interleaved:
        pair = n.op("concat", n.op("expand_dims", real, axis=[4]), n.op("expand_dims", imag, axis=[4]), axis=4)
        y = n.op("reshape", pair, shape=list(x_rot.shape))
    else:
        y = n.op("concat", real, imag, axis=3)
    if not full:
        rest = n.op("strided_slice", xs, axes=[3], begin=[rot], end=[2**63 - 1], strides=[1])
        y = n.op("concat", y, rest, axis=3)
    if x.ndim == 3:
        return n.op("reshape", y, shape=list(x.shape))
    return n.op("permute_dims", y, axes=[0, 2, 1, 3])
