"""`relax-xdsl-opt -t dot`: a Graphviz view of the graph functions.

One cluster per `relax.function`; parameters, constants and ops are nodes
(an op's label: its name, its callee for call_tir / lib.call, and its
parameters); each edge is a value, labelled with its shape and dtype
(`[n, 784] f32`). Dataflow blocks are nested clusters. Works at every stage
that still has graph functions (before or after legalize, offload and
fusion); after lower-graph there are none, which is an error.

    relax-xdsl-opt model.mlir -p fuse-ops -t dot | dot -Tsvg > model.svg
"""

from __future__ import annotations

from typing import IO

from xdsl.dialects.builtin import ArrayAttr, IntAttr, IntegerAttr, ModuleOp, StringAttr, SymbolRefAttr, TupleType
from xdsl.ir import Attribute, Block, Operation, SSAValue

from relax_xdsl.dialects.relax import (
    ConstantOp,
    DataflowOp,
    FunctionOp,
    OutputOp,
    ReturnOp,
    ShapeType,
    TensorType,
)
from relax_xdsl.errors import RelaxError
from relax_xdsl.shape import shape_to_str


def _quote(text: str) -> str:
    """A DOT double-quoted string (backslashes, quotes and newlines escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def type_label(t: Attribute) -> str:
    if isinstance(t, TensorType):
        return f"{shape_to_str(t.sym_shape)} {_short_dtype(t.dtype)}"
    if isinstance(t, TupleType):
        return "(" + ", ".join(type_label(x) for x in t.types.data) + ")"
    if isinstance(t, ShapeType):
        return f"shape {shape_to_str(t.dims.data)}"
    return str(t)


def _short_dtype(dtype: str) -> str:
    return {"float32": "f32", "float16": "f16", "float64": "f64", "int64": "i64", "int32": "i32", "int8": "i8",
            "uint8": "ui8"}.get(dtype, dtype)


def _attr_text(a: Attribute) -> str:
    if isinstance(a, StringAttr):
        return a.data
    if isinstance(a, IntegerAttr):
        return str(a.value.data)
    if isinstance(a, IntAttr):
        return str(a.data)
    if isinstance(a, SymbolRefAttr):
        return "@" + a.root_reference.data
    if isinstance(a, ArrayAttr):
        return "[" + ", ".join(_attr_text(x) for x in a.data) + "]"
    text = str(a)
    return text if len(text) <= 60 else text[:57] + "..."


def op_label(op: Operation) -> str:
    lines = [op.name]
    callee = op.properties.get("callee")
    if isinstance(callee, SymbolRefAttr):
        lines[0] += " @" + callee.root_reference.data
    for name, a in list(op.properties.items()) + list(op.attributes.items()):
        if name in ("callee", "value") or name.startswith("relax.op_pattern"):
            continue
        lines.append(f"{name} = {_attr_text(a)}")
    return "\n".join(lines)


class _Graph:
    def __init__(self, out: IO[str]):
        self.out = out
        self.ids: dict[SSAValue, str] = {}
        self.count = 0

    def node(self, label: str, shape: str = "box", style: str = "") -> str:
        name = f"n{self.count}"
        self.count += 1
        extra = f", {style}" if style else ""
        self.out.write(f"    {name} [label={_quote(label)}, shape={shape}{extra}];\n")
        return name

    def edge(self, value: SSAValue, dst: str) -> None:
        src = self.ids.get(value)
        if src is None:
            return
        self.out.write(f"    {src} -> {dst} [label={_quote(type_label(value.type))}];\n")

    def block(self, block: Block, prefix: str) -> None:
        for op in block.ops:
            if isinstance(op, DataflowOp):
                self.out.write(f"    subgraph cluster_{prefix}_df{self.count} {{\n"
                               f"    label=\"dataflow\"; style=dashed;\n")
                self.block(op.body.block, prefix)
                self.out.write("    }\n")
                for r, v in zip(op.results, _outputs(op)):
                    if v in self.ids:
                        self.ids[r] = self.ids[v]
                continue
            if isinstance(op, OutputOp):
                continue
            if isinstance(op, ConstantOp):
                n = self.node(f"constant\n{type_label(op.results[0].type)}", "note", "style=filled, fillcolor=lightgrey")
            elif isinstance(op, ReturnOp):
                n = self.node("return", "oval", "style=filled, fillcolor=lightblue")
            else:
                n = self.node(op_label(op))
            for v in op.operands:
                self.edge(v, n)
            for r in op.results:
                self.ids[r] = n


def _outputs(op: DataflowOp) -> list[SSAValue]:
    term = op.body.block.last_op
    return list(term.operands) if term is not None else []


def emit_dot(module: ModuleOp, out: IO[str]) -> None:
    funcs = [op for op in module.body.ops if isinstance(op, FunctionOp)]
    if not funcs:
        raise RelaxError("-t dot shows graph functions (relax.function), and the module has none "
                         "(after lower-graph there are only host functions); print it before lowering")
    out.write("digraph relax {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n"
              "  edge [fontname=\"monospace\", fontsize=9];\n")
    g = _Graph(out)
    for k, f in enumerate(funcs):
        out.write(f"  subgraph cluster_f{k} {{\n    label={_quote('@' + f.sym_name.data)};\n")
        for i, a in enumerate(f.args):
            g.ids[a] = g.node(f"%{a.name_hint or i}", "oval", "style=filled, fillcolor=palegreen")
        g.block(f.body.block, f"f{k}")
        out.write("  }\n")
    out.write("}\n")
