"""`convert-layout`: float32 convolutions to channels last (NHWC), and the
layout carried from one to the next (TVM Relax's ConvertLayout with
`{"relax.nn.conv2d": ["NHWC", "OIHW"]}`).

Why: oneDNN's fast kernels on this kind of CPU (AVX2) are channels-last or
blocked; its NCHW kernels are several times slower. Converting NCHW to its
layout and back around each conv costs about as much as a small conv, so
the data stays NHWC from conv to conv and is transposed only where an op
needs NCHW (benchmarks/run.py's MobileNetV2 and ResNet rows measure it).

How, per function body, in program order:
- a conv2d (NCHW data, OIHW weights, float32, taken by oneDNN) becomes
  conv2d(data_layout=NHWC) on the NHWC form of its data; its NCHW result
  is a permute_dims of the NHWC one, kept for users that need it;
- an elementwise or broadcasting op (add, clip, relu, ...; no axis
  parameter) with a rank-4 result whose operands all have an NHWC form, or
  are constants (permuted here), scalars or per-channel values (height and
  width 1: a bias parameter, permuted at run time, a small copy), is
  computed on NHWC forms too;
- concat along the channel axis joins NHWC forms along axis 3;
- max_pool2d and avg_pool2d pool NHWC forms (layout=NHWC), channels the
  inner loop;
- local_response_norm over the channels (axis 1) runs on the NHWC form
  over axis 3;
- a reduction over axes (mean, sum, max, ...; a global average pool is a
  mean over H and W) reduces the NHWC form over the same dims; without
  keepdims its result is the NCHW one when the kept dims keep their order
  (a pool to [n, c]);
- a value's NHWC form is the op that made it (above), or one permute_dims
  made at its first NHWC user and shared by the rest.
NCHW permutes that no user needs are erased: between two converted ops the
data never leaves NHWC. Ops in nested regions (if / loop bodies) keep NCHW.

Without oneDNN the pass changes nothing (the NHWC conv would be generated
code, no faster than the NCHW one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from relax_xdsl.dialects.relax import ConstantOp, FunctionOp, GraphOp, TensorType
from relax_xdsl.passes.graph_rewrite import graph_op, splat_constant, splat_value
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from relax_xdsl.ops.registry import BROADCAST, ELEMWISE, REDUCTION

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
NHWC_AXIS = (0, 3, 1, 2)
"""Where NCHW dim i is in NHWC."""
POOLS = ("max_pool2d", "avg_pool2d")
CHANNEL_OPS = ("local_response_norm",)
"""Ops over the channel axis given by their `axis` parameter, the same on either layout."""
REDUCTIONS = ("sum", "mean", "max", "min", "prod", "variance")


def _nhwc_type(t: TensorType) -> TensorType:
    """The type of a rank-4 NCHW value's NHWC form: given to the ops made
    here, whose shape rules would deduce it again (sympy, per op)."""
    return TensorType.of([t.sym_shape[i] for i in TO_NHWC], t.dtype)  # type: ignore[attr-defined]


def _float4(v: SSAValue) -> bool:
    t = v.type
    return isinstance(t, TensorType) and t.ndim == 4 and t.dtype == "float32"


def _converts(op: GraphOp) -> bool:
    """A conv2d that oneDNN takes in NHWC (as offload routes it)."""
    from relax_xdsl.passes.offload import divisible_channels

    from relax_xdsl import dnnl

    if op.SPEC.name != "conv2d" or not all(_float4(v) for v in (*op.inputs, op.res)):
        return False
    p = op.SPEC.decode_params(dict(op.attributes))
    if p["data_layout"] != "NCHW" or p["kernel_layout"] != "OIHW" or p["out_dtype"] not in (None, "float32"):
        return False
    x, w = (v.type for v in op.inputs)
    if p["groups"] != 1 and not divisible_channels(x, w, p["groups"], "NCHW"):  # type: ignore[arg-type]
        return False  # offload gives oneDNN grouped convs whose channel counts are static only
    return dnnl.available()


def _agnostic(op: GraphOp) -> bool:
    """An op computing each element from the elements at the same index
    (numpy broadcasting), whatever the dims mean: it runs on NHWC as well."""
    spec = op.SPEC
    return (spec.pattern in (ELEMWISE, BROADCAST) and not {"axis", "axes"} & set(spec.params)
            and len(op.results) == 1 and isinstance(op.res.type, TensorType) and op.res.type.ndim == 4)


def _nhwc_constant(v: SSAValue) -> ConstantOp | None:
    """A constant operand (rank <= 4, broadcast against a rank-4 NCHW
    value) as it broadcasts against the NHWC one (a new constant, not yet
    inserted; a splat stays one value), or None."""
    t = v.type
    if not isinstance(v.owner, ConstantOp) or not isinstance(t, TensorType) or t.ndim > 4:
        return None
    shape = (1,) * (4 - t.ndim) + tuple(int(d) for d in t.sym_shape)  # as it broadcasts against rank 4
    if (one := splat_value(v)) is not None:
        return splat_constant(one, TensorType.of([shape[a] for a in TO_NHWC], t.dtype))
    return ConstantOp.from_array(np.ascontiguousarray(v.owner.to_array().reshape(shape).transpose(TO_NHWC)))


class _Converter:
    def __init__(self, block: Block) -> None:
        self.block = block
        self.nhwc: dict[SSAValue, SSAValue] = {}  # an NCHW value -> its NHWC form (defined in this block)
        self.backs: list[GraphOp] = []  # NHWC -> NCHW permutes made for converted results

    def form(self, v: SSAValue, before: Operation) -> SSAValue:
        """v's NHWC form, made before `before` when it has none yet."""
        if v not in self.nhwc:
            perm = graph_op("permute_dims", [v], _nhwc_type(v.type), axes=list(TO_NHWC))  # type: ignore[arg-type]
            Rewriter.insert_op(perm, InsertPoint.before(before))
            self.nhwc[v] = perm.res
        return self.nhwc[v]

    def replace(self, op: GraphOp, new: list[Operation], result: SSAValue) -> None:
        """`op` becomes `new` (inserted before it), its result an NCHW permute of `result`."""
        back = graph_op("permute_dims", [result], op.res.type, axes=list(TO_NCHW))
        Rewriter.insert_op([*new, back], InsertPoint.before(op))
        op.res.replace_all_uses_with(back.res)
        Rewriter.erase_op(op)
        self.nhwc[back.res] = result
        self.backs.append(back)

    def conv(self, op: GraphOp) -> None:
        x, w = op.inputs
        attrs = dict(op.SPEC.decode_params(dict(op.attributes)))
        attrs["data_layout"] = "NHWC"
        new = graph_op("conv2d", [self.form(x, op), w], _nhwc_type(op.res.type), **attrs)  # type: ignore[arg-type]
        self.replace(op, [new], new.res)

    def elementwise(self, op: GraphOp) -> bool:
        if not any(v in self.nhwc for v in op.inputs):
            return False
        operands: list[SSAValue | ConstantOp] = []  # decided for every operand before anything is made
        for v in op.inputs:
            t = v.type
            if v in self.nhwc or (isinstance(t, TensorType) and t.ndim == 0):
                operands.append(v)
            elif (a := _nhwc_constant(v)) is not None:
                operands.append(a)
            elif isinstance(t, TensorType) and t.ndim == 4 and all(d == 1 for d in t.sym_shape[2:]):
                operands.append(v)  # a per-channel operand (a bias parameter): a small permute at run time
            else:
                return False
        made: list[Operation] = []
        values: list[SSAValue] = []
        for o in operands:
            if isinstance(o, ConstantOp):
                made.append(o)
                values.append(o.result)
            else:
                values.append(o if o.type.ndim == 0 else self.form(o, op))  # type: ignore[union-attr]
        new = graph_op(op.SPEC.name, values, _nhwc_type(op.res.type),  # type: ignore[arg-type]
                       **op.SPEC.decode_params(dict(op.attributes)))
        self.replace(op, [*made, new], new.res)
        return True

    def concat(self, op: GraphOp) -> bool:
        p = op.SPEC.decode_params(dict(op.attributes))
        if p["axis"] not in (1, -3) or not op.inputs or not all(v in self.nhwc for v in op.inputs):
            return False
        new = graph_op("concat", [self.nhwc[v] for v in op.inputs], _nhwc_type(op.res.type), axis=3)  # type: ignore[arg-type]
        self.replace(op, [new], new.res)
        return True

    def pool(self, op: GraphOp) -> bool:
        p = op.SPEC.decode_params(dict(op.attributes))
        if p["layout"] != "NCHW" or op.inputs[0] not in self.nhwc:
            return False
        new = graph_op(op.SPEC.name, [self.nhwc[op.inputs[0]]], _nhwc_type(op.res.type),  # type: ignore[arg-type]
                       **{**p, "layout": "NHWC"})
        self.replace(op, [new], new.res)
        return True

    def channel_op(self, op: GraphOp) -> bool:
        x = op.inputs[0]
        p = op.SPEC.decode_params(dict(op.attributes))
        if x not in self.nhwc or x.type.ndim != 4 or p["axis"] % 4 != 1:  # type: ignore[union-attr]
            return False
        new = graph_op(op.SPEC.name, [self.nhwc[x]], _nhwc_type(op.res.type), **{**p, "axis": 3})  # type: ignore[arg-type]
        self.replace(op, [new], new.res)
        return True

    def reduction(self, op: GraphOp) -> bool:
        x = op.inputs[0]
        if x not in self.nhwc or x.type.ndim != 4:  # type: ignore[union-attr]
            return False
        p = op.SPEC.decode_params(dict(op.attributes))
        axes = range(4) if p["axis"] is None else [a % 4 for a in p["axis"]]
        if len(set(axes)) != len(axes):
            return False
        kept = [NHWC_AXIS[a] for a in range(4) if a not in axes]
        if not p["keepdims"] and kept != sorted(kept):
            return False  # the result's dims would come out in another order
        new = graph_op(op.SPEC.name, [self.nhwc[x]], axis=sorted(NHWC_AXIS[a] for a in axes), keepdims=p["keepdims"])
        if p["keepdims"]:
            self.replace(op, [new], new.res)
            return True
        Rewriter.insert_op(new, InsertPoint.before(op))
        op.res.replace_all_uses_with(new.res)
        Rewriter.erase_op(op)
        return True

    def run(self) -> None:
        for op in list(self.block.ops):
            if not isinstance(op, GraphOp):
                continue
            name = op.SPEC.name
            if _converts(op):
                self.conv(op)
            elif name == "concat" and _float4(op.res):
                self.concat(op)
            elif name in POOLS:
                self.pool(op)
            elif name in CHANNEL_OPS:
                self.channel_op(op)
            elif name in REDUCTIONS and op.SPEC.pattern == REDUCTION:
                self.reduction(op)
            elif _agnostic(op):
                self.elementwise(op)
        for back in reversed(self.backs):
            if not back.res.uses:
                Rewriter.erase_op(back)
        for op in list(self.block.ops):  # constants the converted ops no longer read
            if isinstance(op, ConstantOp) and not op.result.uses:
                Rewriter.erase_op(op)


def convert_layout(module: ModuleOp) -> ModuleOp:
    for func in module.body.ops:
        if isinstance(func, FunctionOp) and any(isinstance(op, GraphOp) and _converts(op) for op in func.body.ops):
            _Converter(func.body.block).run()
    return module


@dataclass(frozen=True)
class ConvertLayoutPass(ModulePass):
    """convert-layout: oneDNN's convolutions and the elementwise ops between
    them to channels last (NHWC), with a transpose only where NCHW is needed."""

    name = "convert-layout"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        convert_layout(op)
