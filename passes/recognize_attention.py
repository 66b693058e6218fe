"""recognize-attention: exporters' written-out attention becomes one
relax.attention op, when a library call takes it (offload's
attention_function), so it runs without materialising the score matrix.

torch.onnx writes scaled_dot_product_attention as
    scores = MatMul(q, kT)            kT: a Transpose of k, or k computed transposed
    scores = Div(scores, c)           optional (Mul by c too): BERT's eager form; the scale
    scores = Add(scores, mask)        optional; either operand order
    probs  = Softmax(scores, axis=-1)
    probs  = Where(IsNaN(probs), 0, probs)    torch's zero for fully masked rows
    out    = MatMul(probs, v)
with the scale either applied to q (and k) before the first MatMul,
where it stays (scale 1 here), or to the scores by a scalar constant. Every intermediate must have no
other user: otherwise the scores are needed anyway.

The op takes the key as [*B, t, d]. When kT is a permute_dims of some x,
the key is x permuted by that permutation with its last two axes swapped
(no op at all when that is the identity: Llama's kT is K's transpose);
otherwise a permute_dims of kT is added.

Fusing only what the library takes keeps the rest on the paths that were
already fast (oneDNN's batched matmul, the generated row-wise softmax): the
op's own legalization materialises the scores as the written-out form did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import graph_op, single_user
from relax_xdsl.passes.recognize_ops import producer, replace_with_op, scalar
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from relax_xdsl.ops.registry import types_match
from relax_xdsl.shape import dims_equal


def _only_users(value: SSAValue, users: set[Operation]) -> bool:
    return {u.operation for u in value.uses} == users


def _probabilities(probs: SSAValue, root: GraphOp) -> tuple[GraphOp, bool] | None:
    """(the softmax, zero_nan) behind the second matmul's left operand."""
    if single_user(probs) is not root:
        return None
    where = producer(probs, "where")
    if where is None:
        sm = producer(probs, "softmax")
        return (sm, False) if sm is not None else None
    cond, zero, p = where.inputs
    isnan, sm = producer(cond, "isnan"), producer(p, "softmax")
    if isnan is None or sm is None or isnan.inputs[0] is not p or scalar(zero) != 0.0:
        return None
    if single_user(cond) is not where or not _only_users(p, {isnan, where}):
        return None
    return sm, True


def _scaled_product(x: SSAValue, user: GraphOp) -> tuple[GraphOp, float] | None:
    """(q @ kT, the scale) behind x, user's operand: the matmul itself
    (scale 1), or it multiplied or divided by a scalar constant (BERT's
    MatMul -> Div by sqrt(d)), the product's type kept."""
    if single_user(x) is not user:
        return None
    mm = producer(x, "matmul")
    if mm is not None:
        return mm, 1.0
    for name in ("multiply", "divide"):
        scaling = producer(x, name)
        if scaling is None:
            continue
        a, b = scaling.inputs
        orders = [(a, b), (b, a)] if name == "multiply" else [(a, b)]
        for product, factor in orders:
            c, mm = scalar(factor), producer(product, "matmul")
            if mm is None or c is None or (name == "divide" and c == 0.0) or product is factor:
                continue
            if single_user(product) is scaling and types_match(product.type, x.type):
                return mm, c if name == "multiply" else 1.0 / c
    return None


def _scores(x: SSAValue, sm: GraphOp) -> tuple[GraphOp, SSAValue | None, float] | None:
    """(q @ kT, the bias added to it or None, the scale) behind the softmax's input."""
    found = _scaled_product(x, sm)
    if found is not None:
        return found[0], None, found[1]
    add = producer(x, "add")
    if add is None or single_user(x) is not sm:
        return None
    for s, bias in (tuple(add.inputs), tuple(reversed(add.inputs))):
        found = _scaled_product(s, add) if s is not bias else None
        if found is not None:
            return found[0], bias, found[1]
    return None


def _key(kt: SSAValue) -> tuple[SSAValue, list[Operation]]:
    """The key [*B, t, d] whose last two axes swapped are kT, and the op made for it (if any)."""
    from relax_xdsl.passes.simplify_layout import permutation

    ndim = kt.type.ndim  # type: ignore[union-attr]
    swap = [*range(ndim - 2), ndim - 1, ndim - 2]
    permute = producer(kt, "permute_dims")
    source, axes = (kt, swap) if permute is None else (
        permute.inputs[0], [permutation(permute)[a] for a in swap])
    if axes == list(range(ndim)):
        return source, []
    op = graph_op("permute_dims", [source], axes=axes)
    return op.results[0], [op]


class RecognizeAttention(RewritePattern):
    """matmul(softmax(q @ kT [+ bias]) [NaN -> 0], v) -> attention(q, k, v, bias)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        from relax_xdsl.passes.offload import attention_function

        root = producer(op.results[0], "matmul") if len(op.results) == 1 else None
        if root is None:
            return
        probs, value = root.inputs
        found = _probabilities(probs, root)
        if found is None:
            return
        sm, zero_nan = found
        x = sm.inputs[0]
        t = x.type
        if not isinstance(t, TensorType) or t.ndim < 2 or sm.SPEC.decode_params(dict(sm.attributes))["axis"] % t.ndim != t.ndim - 1:
            return
        scores = _scores(x, sm)
        if scores is None:
            return
        mm, bias, scale = scores
        q, kt = mm.inputs
        if not all(isinstance(v.type, TensorType) and v.type.ndim == t.ndim for v in (q, kt, value, root.res)):
            return
        if not all(dims_equal(a, b) for a, b in zip(q.type.sym_shape[:-2], t.sym_shape[:-2])):  # type: ignore[union-attr]
            return  # q's batch dims broadcast: not the op's
        made: list[Operation] = []
        if bias is None:
            zero = ConstantOp.from_array(np.zeros((), dtype=np.dtype(t.dtype)))
            bias, made = zero.results[0], [zero]
        key, key_ops = _key(kt)
        if replace_with_op(root, rewriter, "attention", [q, key, value, bias], (*made, *key_ops),
                           accept=lambda new: attention_function(new) is not None, scale=scale, zero_nan=zero_nan):
            _erase_unused(rewriter, probs.owner)


def _erase_unused(rewriter: PatternRewriter, op: object) -> None:
    """Erases op when nothing uses it, then so its operands' producers: the
    written-out chain (graph ops have no side effects; what the new op or
    anything else still reads stays); without this the chain stayed in
    the IR after the pass."""
    work = [op]
    while work:
        o = work.pop()
        if isinstance(o, (GraphOp, ConstantOp)) and o.parent is not None and not any(r.uses for r in o.results):
            owners = [v.owner for v in o.operands]
            rewriter.erase(o)
            work.extend(owners)


def recognize_attention(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(RecognizeAttention(), apply_recursively=False).rewrite_module(module)
    return module


@dataclass(frozen=True)
class RecognizeAttentionPass(ModulePass):
    """recognize-attention: written-out scaled dot-product attention as one relax.attention op."""

    name = "recognize-attention"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        recognize_attention(op)
