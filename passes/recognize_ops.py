"""recognize-ops: exporters' written-out forms of GELU, LayerNorm, RMSNorm
and softmax become the one op each (what onnxruntime's and TVM's fusions
of the same forms do).

torch.onnx writes what Python computed: GPT-2's tanh GELU as eight
multiplies, adds and a tanh; a GELU through Erf below opset 20; LayerNorm
below opset 17 as ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div;
Llama's RMSNorm as Pow / ReduceMean / Add / Rsqrt / Mul in every opset.
As one op each is one pass over a row (layer_norm, rms_norm, softmax) or
one elementwise function (gelu, gelu_tanh) that offload can put into a
dense layer's epilogue, and the IR says what the model computes.

The elementwise forms are matched by value, not by spelling: the factors
of the outer product and the argument of erf / tanh are read as
polynomials in x (add, subtract, multiply, divide by a constant, small
integer powers, scalar constants), so any order and association the
exporter chose matches, and a coefficient off by more than float32
rounding does not. The normalizations are matched by structure (the
means' axes and keepdims, the epsilon a scalar constant); their scale and
shift are folded into the op by two more patterns, one multiply and one
add at a time.

A replacement keeps the root's exact result type; the written-out ops
left unused are removed by dead-code elimination later in the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import constant_array, graph_op, single_user, splat_constant, splat_value
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.utils.exceptions import VerifyException

from relax_xdsl import dtypes
from relax_xdsl.errors import RelaxError
from relax_xdsl.ops.elementwise import GELU_TANH_CUBIC, GELU_TANH_SCALE
from relax_xdsl.ops.registry import types_match

Poly = dict[int, float]
"""A polynomial in x: degree -> coefficient."""

ARITHMETIC = ("add", "subtract", "multiply", "divide", "power", "negative")
"""The elementwise ops a polynomial in x is read through."""

MAX_DEGREE = 3
MAX_DEPTH = 16
"""How deep a polynomial's expression tree is read (a hostile chain of a
million adds is not walked)."""


def producer(value: SSAValue, *names: str) -> GraphOp | None:
    owner = value.owner
    return owner if isinstance(owner, GraphOp) and owner.SPEC.name in names else None


def _params(op: GraphOp) -> dict:
    return op.SPEC.decode_params(dict(op.attributes))


def scalar(value: SSAValue) -> float | None:
    """The value of a one-valued constant (rank 0, one element, or a splat), else None."""
    one = splat_value(value)
    if one is None:
        t = value.type
        if not isinstance(t, TensorType) or not all(getattr(d, "is_Integer", False) and int(d) == 1
                                                    for d in t.sym_shape):
            return None
        one = constant_array(value)
    if one is None or one.dtype.kind not in "fiu":
        return None
    v = float(one.reshape(()))
    return v if math.isfinite(v) else None


def _close(a: float, b: float) -> bool:
    """Equal within float32 rounding of constants written by an exporter."""
    return abs(a - b) <= 1e-5 * max(abs(a), abs(b), 1e-30)


def _add(p: Poly, q: Poly, sign: float = 1.0) -> Poly:
    out = dict(p)
    for d, c in q.items():
        out[d] = out.get(d, 0.0) + sign * c
    return {d: c for d, c in out.items() if c != 0.0}


def _mul(p: Poly, q: Poly) -> Poly | None:
    out: Poly = {}
    for d1, c1 in p.items():
        for d2, c2 in q.items():
            if d1 + d2 > MAX_DEGREE:
                return None
            out[d1 + d2] = out.get(d1 + d2, 0.0) + c1 * c2
    return {d: c for d, c in out.items() if c != 0.0}


def polynomial(value: SSAValue, x: SSAValue, depth: int = 0,
               memo: dict[int, Poly | None] | None = None) -> Poly | None:
    """`value` as a polynomial in x (degree <= 3) built of scalar constants
    and elementwise add / subtract / multiply / divide-by-constant /
    power / negative, else None. Each value is read once (`memo`): a
    hostile y = y + y chain shares its operands, and read as a tree it
    would double at every level."""
    memo = {} if memo is None else memo
    if id(value) not in memo:
        memo[id(value)] = _polynomial(value, x, depth, memo)
    return memo[id(value)]


def _polynomial(value: SSAValue, x: SSAValue, depth: int, memo: dict[int, Poly | None]) -> Poly | None:
    if value is x:
        return {1: 1.0}
    c = scalar(value)
    if c is not None:
        return {0: c} if c != 0.0 else {}
    op = producer(value, *ARITHMETIC)
    if op is None or depth > MAX_DEPTH:
        return None
    args = [polynomial(v, x, depth + 1, memo) for v in op.inputs]
    if any(a is None for a in args):
        return None
    name = op.SPEC.name
    if name == "negative":
        return {d: -c for d, c in args[0].items()}  # type: ignore[union-attr]
    p, q = args[0], args[1]
    assert p is not None and q is not None
    if name in ("add", "subtract"):
        return _add(p, q, 1.0 if name == "add" else -1.0)
    if name == "multiply":
        return _mul(p, q)
    if set(q) != {0}:
        return None  # a divisor or an exponent that is not a constant
    k = q[0]
    if name == "divide":
        return {d: c / k for d, c in p.items()}
    if k not in (1.0, 2.0, 3.0):
        return None
    out: Poly | None = {0: 1.0}
    for _ in range(int(k)):
        out = _mul(out, p) if out is not None else None
    return out


def _matches(p: Poly | None, want: Poly) -> bool:
    return p is not None and set(p) == set(want) and all(_close(p[d], want[d]) for d in want)


def _factors(value: SSAValue, depth: int = 0) -> list[SSAValue]:
    """The operands of a tree of multiplies, leaves left to right."""
    op = producer(value, "multiply")
    if op is None or depth > MAX_DEPTH:
        return [value]
    return [f for v in op.inputs for f in _factors(v, depth + 1)]


def _candidates(value: SSAValue) -> list[SSAValue]:
    """The non-constant values of an arithmetic tree, outermost first: the
    x of a polynomial is one of them (x may itself be an add, a bias add)."""
    out: list[SSAValue] = []
    seen: set[int] = set()
    level = [value]
    for _ in range(MAX_DEPTH):
        nxt: list[SSAValue] = []
        for v in level:
            if id(v) in seen or scalar(v) is not None:
                continue
            seen.add(id(v))
            if v is not value:
                out.append(v)
            op = producer(v, *ARITHMETIC)
            if op is not None:
                nxt.extend(op.inputs)
        level = nxt
    return out


def _gate(value: SSAValue) -> tuple[str, SSAValue] | None:
    """("gelu" | "gelu_tanh", z) for 1 + erf(z) / 1 + tanh(z) (either order)."""
    add = producer(value, "add")
    if add is None:
        return None
    for a, b in (add.inputs, reversed(add.inputs)):
        one, fn = scalar(a), producer(b, "erf", "tanh")
        if one is not None and _close(one, 1.0) and fn is not None:
            return ("gelu" if fn.SPEC.name == "erf" else "gelu_tanh"), fn.inputs[0]
    return None


def _float(value: SSAValue) -> bool:
    return isinstance(value.type, TensorType) and dtypes.is_float(value.type.dtype)


def replace_with_op(root: GraphOp, rewriter: PatternRewriter, name: str, operands: list[SSAValue],
                    before: tuple[Operation, ...] = (), accept: Callable[[GraphOp], bool] | None = None,
                    **params: object) -> bool:
    """Replaces `root` by relax.<name> (after the new ops `before`, its
    operands' makers) with root's exact result type; False, nothing
    changed, when the op's shape rule does not give that type or `accept`
    refuses the new op (recognize-attention: no library call takes it)."""
    try:
        new: GraphOp | None = graph_op(name, operands, root.res.type, **params)
        new.verify()  # type: ignore[union-attr]
    except (RelaxError, ValueError, VerifyException):
        new = None
    if new is None or (accept is not None and not accept(new)):
        for made in (*before, new):  # no phantom use of the operands is left behind
            if made is not None and made.parent is None:
                made.drop_all_references()
        return False
    rewriter.replace(root, [*before, new], [new.results[0]])
    return True


class RecognizeGelu(RewritePattern):
    """0.5 x (1 + erf(x / sqrt 2)) -> gelu(x); 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) -> gelu_tanh(x),
    in any order of the factors and terms."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        root = producer(op.results[0], "multiply") if len(op.results) == 1 else None
        if root is None:
            return
        factors = _factors(root.res)
        gates = [(f, g) for f in factors if (g := _gate(f)) is not None]
        if len(gates) != 1:
            return
        gate_value, (name, z) = gates[0]
        if name == "gelu":
            want = {1: 1.0 / math.sqrt(2.0)}
        else:
            want = {1: GELU_TANH_SCALE, 3: GELU_TANH_SCALE * GELU_TANH_CUBIC}
        for x in [z, *_candidates(z)]:
            if not _float(x) or not types_match(x.type, root.res.type) or not _matches(polynomial(z, x), want):
                continue
            rest: Poly | None = {0: 1.0}
            for f in factors:
                if f is not gate_value and rest is not None:
                    p = polynomial(f, x)
                    rest = _mul(rest, p) if p is not None else None
            if _matches(rest, {1: 0.5}):
                replace_with_op(root, rewriter, name, [x])
            return


def _mean(value: SSAValue, ndim: int) -> tuple[SSAValue, tuple[int, ...]] | None:
    """(x, normalized axes) of mean(x, axis, keepdims=True)."""
    op = producer(value, "mean")
    if op is None:
        return None
    p = _params(op)
    if not p["keepdims"]:
        return None
    axes = tuple(range(ndim)) if p["axis"] is None else tuple(sorted(a % ndim for a in p["axis"]))
    return op.inputs[0], axes


def _square_of(value: SSAValue) -> SSAValue | None:
    """d for d * d or power(d, 2)."""
    op = producer(value, "multiply", "power")
    if op is None:
        return None
    a, b = op.inputs
    if op.SPEC.name == "multiply":
        return a if a is b else None
    exponent = scalar(b)
    return a if exponent is not None and exponent == 2.0 else None


def _inverse_root(value: SSAValue, divides: bool) -> tuple[SSAValue, float] | None:
    """(v, eps) for sqrt(v + eps) (a divisor) or rsqrt(v + eps) or 1 / sqrt(v + eps) (a factor)."""
    root = producer(value, "sqrt" if divides else "rsqrt")
    reciprocal = producer(value, "divide") if not divides else None
    if reciprocal is not None and scalar(reciprocal.inputs[0]) == 1.0:
        root = producer(reciprocal.inputs[1], "sqrt")
    if root is None:
        return None
    add = producer(root.inputs[0], "add")
    if add is None:
        return None
    for a, b in (add.inputs, reversed(add.inputs)):
        eps = scalar(b)
        if eps is not None and eps >= 0.0:
            return a, eps
    return None


def _normalized_shape(x: SSAValue, axes: tuple[int, ...]) -> list[int] | None:
    shape = x.type.sym_shape  # type: ignore[union-attr]
    dims = [shape[a] for a in axes]
    return [int(d) for d in dims] if all(getattr(d, "is_Integer", False) for d in dims) else None


def _fill(like: SSAValue, shape: list[int], value: int) -> Operation:
    """A splat constant of `shape` holding `value`, in like's dtype."""
    t = like.type
    assert isinstance(t, TensorType)
    return splat_constant(np.array(value, dtypes.np_dtype(t.dtype)), TensorType.of(shape, t.dtype))


class RecognizeNorm(RewritePattern):
    """d / sqrt(mean(d^2) + eps) or d * rsqrt(mean(d^2) + eps) over the same
    axes (keepdims): layer_norm(x) without scale and shift when d = x -
    mean(x), else rms_norm(x) with a weight of ones."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        root = producer(op.results[0], "divide", "multiply") if len(op.results) == 1 else None
        if root is None or not _float(root.res):
            return
        ndim = root.res.type.ndim  # type: ignore[union-attr]
        pairs = [tuple(root.inputs)] if root.SPEC.name == "divide" else [tuple(root.inputs),
                                                                          tuple(reversed(root.inputs))]
        for d, other in pairs:
            found = _inverse_root(other, root.SPEC.name == "divide")
            if found is None:
                continue
            var, eps = found
            mean_sq = _mean(var, ndim)
            if mean_sq is None or _square_of(mean_sq[0]) is not d:
                continue
            axes = mean_sq[1]
            centered = producer(d, "subtract")
            mean_x = _mean(centered.inputs[1], ndim) if centered is not None else None
            if centered is not None and mean_x is not None and mean_x == (centered.inputs[0], axes):
                x = centered.inputs[0]
                shape = _normalized_shape(x, axes)
                if shape is None:
                    return
                ones, zeros = _fill(x, shape, 1), _fill(x, shape, 0)
                replace_with_op(root, rewriter, "layer_norm", [x, ones.results[0], zeros.results[0]], (ones, zeros),
                         axes=axes, epsilon=eps, center=False, scale=False)
                return
            shape = _normalized_shape(d, axes)
            if shape is not None:
                ones = _fill(d, shape, 1)
                replace_with_op(root, rewriter, "rms_norm", [d, ones.results[0]], (ones,), axes=axes, epsilon=eps)
            return


def _affine(value: SSAValue, norm: GraphOp, axes: tuple[int, ...]) -> SSAValue | None:
    """A per-position parameter of the normalized dims: `value` itself when
    its shape is exactly theirs, or a constant whose shape is theirs with
    leading 1s (reshaped here)."""
    t, x = value.type, norm.inputs[0]
    shape = _normalized_shape(x, axes)
    if not isinstance(t, TensorType) or shape is None or t.dtype != x.type.dtype:  # type: ignore[union-attr]
        return None
    dims = [int(d) if getattr(d, "is_Integer", False) else None for d in t.sym_shape]
    if dims == shape:
        return value
    if dims[: len(dims) - len(shape)] != [1] * (len(dims) - len(shape)) or dims[len(dims) - len(shape):] != shape:
        return None
    if list(axes) != list(range(x.type.ndim - len(shape), x.type.ndim)):  # type: ignore[union-attr]
        return None  # not the trailing dims: the parameter's trailing dims are not the normalized ones
    array = constant_array(value)
    return None if array is None else ConstantOp.from_array(array.reshape(shape)).results[0]


class FoldNormAffine(RewritePattern):
    """layer_norm (no scale) * gamma -> layer_norm with gamma; layer_norm (no shift) + beta -> with beta;
    rms_norm (a weight of ones) * w -> rms_norm with w. The norm's only user, gamma / beta / w a
    parameter over the normalized dims."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        root = producer(op.results[0], "multiply", "add") if len(op.results) == 1 else None
        if root is None:
            return
        for v, param in (tuple(root.inputs), tuple(reversed(root.inputs))):
            norm = producer(v, "layer_norm", "rms_norm")
            if norm is None or single_user(v) is not root or not types_match(root.res.type, v.type):
                continue
            p = _params(norm)
            axes = tuple(a % v.type.ndim for a in p["axes"])  # type: ignore[union-attr]
            if norm.SPEC.name == "rms_norm":
                if root.SPEC.name != "multiply" or scalar(norm.inputs[1]) != 1.0:
                    continue
                slot, changes = 1, {}
            elif root.SPEC.name == "multiply" and not p["scale"] and not p["center"]:
                slot, changes = 1, {"scale": True}
            elif root.SPEC.name == "add" and not p["center"]:
                slot, changes = 2, {"center": True}
            else:
                continue
            affine = _affine(param, norm, axes)
            if affine is None:
                continue
            operands = list(norm.inputs)
            operands[slot] = affine
            before = (affine.owner,) if affine is not param else ()
            if replace_with_op(root, rewriter, norm.SPEC.name, operands, before, **{**p, **changes}):  # type: ignore[arg-type]
                rewriter.erase(norm)
            return


class RecognizeSoftmax(RewritePattern):
    """e / sum(e, a, keepdims) with e = exp(x - max(x, a, keepdims)) -> softmax(x, a)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        root = producer(op.results[0], "divide") if len(op.results) == 1 else None
        if root is None or not _float(root.res):
            return
        e, s = root.inputs
        total, exp = producer(s, "sum"), producer(e, "exp")
        shifted = producer(exp.inputs[0], "subtract") if exp is not None else None
        if total is None or shifted is None or total.inputs[0] is not e:
            return
        peak = producer(shifted.inputs[1], "max")
        ndim = root.res.type.ndim  # type: ignore[union-attr]
        pt = _params(total)
        if peak is None or peak.inputs[0] is not shifted.inputs[0] or not pt["keepdims"] or pt["axis"] is None:
            return
        pm = _params(peak)
        if not pm["keepdims"] or pm["axis"] is None or len(pt["axis"]) != 1:
            return
        axis = pt["axis"][0] % ndim
        if [a % ndim for a in pm["axis"]] != [axis]:
            return
        replace_with_op(root, rewriter, "softmax", [shifted.inputs[0]], axis=axis)


def recognize_ops(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier([RecognizeGelu(), RecognizeSoftmax(), RecognizeNorm(),
                                                      FoldNormAffine()]),
                         apply_recursively=True).rewrite_module(module)
    return module


@dataclass(frozen=True)
class RecognizeOpsPass(ModulePass):
    """recognize-ops: written-out GELU (erf and tanh), LayerNorm, RMSNorm and softmax as one op each."""

    name = "recognize-ops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        recognize_ops(op)
