"""`fold-batch-norm`: inference batch normalization with constant
parameters folded into what precedes it, as exporters emit it after every
conv.

With s = gamma / sqrt(var + eps) and t = beta - mean * s per channel
(gamma 1 when `scale` is off, beta 0 when `center` is off):

- conv2d(x, W) [+ c] -> batch_norm on the channel axis 1, W a constant,
  c a constant per-channel bias: conv2d(x, W * s[o]) + (t + c * s), any
  groups / strides / dilation / padding (the scale is per output channel);
- matmul(x, W) [+ c] -> batch_norm on the last axis, W a constant matrix:
  matmul(x, W * s[None, :]) + (t + c * s);
- batch_norm alone: x * s + t as per-channel constants (two broadcast
  elementwise ops that fuse, instead of the legalized normalization).

The producer (and the bias add) must have the batch_norm as their only
user. s and t are computed in float64 and stored in the weight's dtype;
only float32 and float64 are folded (the rest keep batch_norm's exact
compute-dtype semantics). The conv/matmul + bias-add form is what
`offload{lib=blas}` turns into one GEMM with the bias as its C operand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import EraseUnusedConstant, constant_array, graph_op, single_user
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

from relax_xdsl.ops.registry import types_match

FOLDED_DTYPES = ("float32", "float64")


def _scale_shift(bn: GraphOp) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(s, t, channel axis) of a batch_norm with constant parameters, in float64."""
    params = [constant_array(v) for v in bn.inputs[1:]]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
    p = bn.SPEC.decode_params(dict(bn.attributes))
    with np.errstate(all="ignore"):
        s = (gamma if p["scale"] else np.ones_like(gamma)) / np.sqrt(var + p["epsilon"])
        t = (beta if p["center"] else np.zeros_like(beta)) - mean * s
    return s, t, p["axis"] % bn.res.type.ndim  # type: ignore[union-attr]


def _channel_bias(add: Operation, producer: SSAValue, axis: int) -> np.ndarray | None:
    """The per-channel vector of an `add(producer, c)` whose constant c
    varies only along `axis` and keeps the producer's type; else None."""
    if not isinstance(add, GraphOp) or add.SPEC.name != "add" or not types_match(add.res.type, producer.type):
        return None
    others = [v for v in add.inputs if v is not producer]
    if len(others) != 1 or (c := constant_array(others[0])) is None:
        return None
    t = producer.type
    assert isinstance(t, TensorType)
    if c.dtype.name != t.dtype or c.ndim > t.ndim:
        return None
    full = c.reshape((1,) * (t.ndim - c.ndim) + c.shape)
    if any(d != 1 for i, d in enumerate(full.shape) if i != axis):
        return None
    channels = t.sym_shape[axis]
    if not channels.is_Integer or full.shape[axis] not in (1, int(channels)):
        return None
    return np.broadcast_to(full.reshape(-1), (int(channels),)).astype(np.float64)


def _weighted_producer(op: Operation, axis: int, ndim: int) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """(W, shape of s to scale W per output channel) for a conv2d or matmul
    with a constant float weight whose output channels are `axis`."""
    if not isinstance(op, GraphOp) or op.SPEC.name not in ("conv2d", "matmul"):
        return None
    w = constant_array(op.inputs[1])
    if w is None or w.dtype.name not in FOLDED_DTYPES or op.res.type.dtype != w.dtype.name:  # type: ignore[union-attr]
        return None
    if op.attributes.get("out_dtype") is not None:
        return None
    if op.SPEC.name == "conv2d":  # output channels: axis 1 (NCHW) or 3 (NHWC); weights OIHW
        nhwc = op.SPEC.decode_params(dict(op.attributes))["data_layout"] == "NHWC"
        return (w, (-1, 1, 1, 1)) if axis == (3 if nhwc else 1) else None
    return (w, (1, -1)) if w.ndim == 2 and axis == ndim - 1 else None


class FoldBatchNorm(RewritePattern):
    def match_and_rewrite(self, bn: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(bn, GraphOp) or bn.SPEC.name != "batch_norm":
            return
        out = bn.res.type
        if not isinstance(out, TensorType) or out.dtype not in FOLDED_DTYPES:
            return
        folded = _scale_shift(bn)
        if folded is None:
            return
        s, t, axis = folded
        if not self._into_producer(bn, s, t, axis, rewriter):
            self._as_multiply_add(bn, s, t, axis, rewriter)

    def _into_producer(self, bn: GraphOp, s: np.ndarray, t: np.ndarray, axis: int,
                       rewriter: PatternRewriter) -> bool:
        x = bn.inputs[0]
        producer, bias, dead = x.owner, np.zeros_like(t), [bn]
        if single_user(x) is not bn:
            return False
        if isinstance(producer, GraphOp) and producer.SPEC.name == "add":
            for v in producer.inputs:
                c = _channel_bias(producer, v, axis)
                if c is not None and isinstance(v.owner, GraphOp) and single_user(v) is producer:
                    dead.append(producer)
                    producer, bias = v.owner, c
                    break
            else:
                return False
        weighted = _weighted_producer(producer, axis, bn.res.type.ndim)  # type: ignore[union-attr]
        if weighted is None:
            return False
        assert isinstance(producer, GraphOp)
        w, s_shape = weighted
        w2 = ConstantOp.from_array((w.astype(np.float64) * s.reshape(s_shape)).astype(w.dtype))
        new_inputs = [producer.inputs[0], w2.result]
        scaled = producer.SPEC.op_class.create(operands=new_inputs, result_types=[producer.res.type],
                                               attributes=dict(producer.attributes))
        shift = t + bias * s
        dtype = w.dtype
        ndim = bn.res.type.ndim  # type: ignore[union-attr]
        shape = tuple(-1 if i == axis else 1 for i in range(ndim)) if producer.SPEC.name == "conv2d" else (-1,)
        c = ConstantOp.from_array(shift.reshape(shape).astype(dtype))
        add = graph_op("add", [scaled.res, c.result], bn.res.type)
        rewriter.replace(bn, [w2, scaled, c, add], [add.res])
        for op in dead[1:]:
            rewriter.erase(op)
        rewriter.erase(producer)
        return True

    def _as_multiply_add(self, bn: GraphOp, s: np.ndarray, t: np.ndarray, axis: int,
                         rewriter: PatternRewriter) -> None:
        out = bn.res.type
        assert isinstance(out, TensorType)
        shape = (-1,) + (1,) * (out.ndim - 1 - axis)
        dtype = np.dtype(out.dtype)
        sc = ConstantOp.from_array(s.reshape(shape).astype(dtype))
        tc = ConstantOp.from_array(t.reshape(shape).astype(dtype))
        mul = graph_op("multiply", [bn.inputs[0], sc.result], out)
        add = graph_op("add", [mul.res, tc.result], out)
        rewriter.replace(bn, [sc, tc, mul, add], [add.res])


def fold_batch_norm(module: ModuleOp) -> ModuleOp:
    PatternRewriteWalker(GreedyRewritePatternApplier([FoldBatchNorm(), EraseUnusedConstant()])).rewrite_module(module)
    return module


@dataclass(frozen=True)
class FoldBatchNormPass(ModulePass):
    """fold-batch-norm: batch_norm with constant parameters into the conv /
    matmul before it, or into a per-channel multiply + add."""

    name = "fold-batch-norm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fold_batch_norm(op)
