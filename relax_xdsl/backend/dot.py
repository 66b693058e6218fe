"""`relax-xdsl-opt -t dot`: a Graphviz view of the graph functions.

One cluster per `relax.function`; parameters, constants and ops are nodes
(an op's label: its name, its callee for call_tir / lib.call with what the
callee is -- the ops a fused program holds, the library a call goes to --
and its parameters); each edge is a value, labelled with its shape and
dtype (`[n, 784] f32`). Dataflow blocks are nested clusters. Works at every
stage that still has graph functions (before or after legalize, offload and
fusion); after lower-graph there are none, which is an error rather than an
empty picture.

    relax-xdsl-opt model.mlir -p fuse-ops -t dot | dot -Tsvg > model.svg
"""

from __future__ import annotations

from typing import IO

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    TupleType,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.traits import SymbolTable

from relax_xdsl.dialects.relax import (
    ConstantOp,
    DataflowOp,
    DimsAttr,
    FunctionOp,
    OutputOp,
    ReturnOp,
    ShapeType,
    TensorType,
)
from relax_xdsl.errors import RelaxError
from relax_xdsl.shape import shape_to_str

_SHORT_DTYPES = {"float32": "f32", "float16": "f16", "float64": "f64", "int64": "i64", "int32": "i32",
                 "int16": "i16", "int8": "i8", "uint8": "ui8", "bool": "i1"}
_MAX_ATTR = 60


def quote(text: str) -> str:
    """A DOT double-quoted string: quotes and backslashes escaped, newlines
    as DOT's `\\n` line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def type_label(t: Attribute) -> str:
    """`[n, 784] f32` for a tensor; tuples and shapes likewise."""
    if isinstance(t, TensorType):
        return f"{shape_to_str(t.sym_shape)} {_SHORT_DTYPES.get(t.dtype, t.dtype)}"
    if isinstance(t, TupleType):
        return "(" + ", ".join(type_label(x) for x in t.types.data) + ")"
    if isinstance(t, ShapeType):
        return f"shape {shape_to_str(t.dims.data)}"
    return str(t)


def attr_text(a: Attribute) -> str:
    """An op parameter as a user wrote it (`axis = 1`, `padding = [1, 1]`, `shape = [n, 4]`)."""
    if isinstance(a, StringAttr):
        return a.data
    if isinstance(a, IntegerAttr):
        if isinstance(a.type, IntegerType) and a.type.width.data == 1:
            return "true" if a.value.data else "false"
        return str(a.value.data)
    if isinstance(a, FloatAttr):
        return f"{a.value.data:g}"
    if isinstance(a, IntAttr):
        return str(a.data)
    if isinstance(a, DimsAttr):
        return shape_to_str(a.data)
    if isinstance(a, DenseArrayBase):
        return "[" + ", ".join(str(v) for v in a.get_values()) + "]"
    if isinstance(a, SymbolRefAttr):
        return "@" + a.string_value()
    if isinstance(a, ArrayAttr):
        return "[" + ", ".join(attr_text(x) for x in a.data) + "]"
    if isinstance(a, (TensorType, TupleType, ShapeType)):
        return type_label(a)
    text = str(a)
    return text if len(text) <= _MAX_ATTR else text[: _MAX_ATTR - 3] + "..."


def _callee_note(op: Operation) -> str | None:
    """What a call's callee is: the graph ops fused into it, or the library."""
    callee = op.properties.get("callee")
    if not isinstance(callee, SymbolRefAttr):
        return None
    target = SymbolTable.lookup_symbol(op, callee)
    if target is None:
        return None
    fused = target.attributes.get("relax.fused")
    if isinstance(fused, StringAttr):
        return "fused: " + ", ".join(fused.data.split(","))
    library = target.properties.get("library")
    if isinstance(library, StringAttr):
        return f"library: {library.data}"
    return None


def op_label(op: Operation) -> str:
    """Op name, callee and parameters, one per line."""
    lines = [op.name]
    callee = op.properties.get("callee")
    if isinstance(callee, SymbolRefAttr):
        lines[0] += " @" + callee.string_value()
        if (note := _callee_note(op)) is not None:
            lines.append(note)
    for name, a in list(op.properties.items()) + list(op.attributes.items()):
        if name in ("callee", "value") or name.startswith("relax.op_pattern"):
            continue
        lines.append(f"{name} = {attr_text(a)}")
    return "\n".join(lines)


class _Graph:
    """Writes nodes and edges; `ids` maps each SSA value to the node that defines it."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.ids: dict[SSAValue, str] = {}
        self.nodes = 0
        self.clusters = 0

    def node(self, label: str, indent: str, shape: str = "box", style: str = "") -> str:
        name = f"n{self.nodes}"
        self.nodes += 1
        extra = f", {style}" if style else ""
        self.out.write(f"{indent}{name} [label={quote(label)}, shape={shape}{extra}];\n")
        return name

    def edges(self, op: Operation, dst: str, indent: str) -> None:
        for value in op.operands:
            src = self.ids.get(value)
            if src is not None:
                self.out.write(f"{indent}{src} -> {dst} [label={quote(type_label(value.type))}];\n")

    def cluster(self, label: str, indent: str, style: str = "") -> None:
        self.out.write(f"{indent}subgraph cluster_{self.clusters} {{\n{indent}  label={quote(label)};\n")
        if style:
            self.out.write(f"{indent}  {style}\n")
        self.clusters += 1

    def block(self, block: Block, indent: str) -> None:
        for op in block.ops:
            if isinstance(op, DataflowOp):
                self.cluster("dataflow", indent, "style=dashed;")
                self.block(op.body.block, indent + "  ")
                self.out.write(f"{indent}}}\n")
                term = op.body.block.last_op
                for result, value in zip(op.results, term.operands if term is not None else ()):
                    if value in self.ids:
                        self.ids[result] = self.ids[value]
                continue
            if isinstance(op, OutputOp):
                continue
            if isinstance(op, ConstantOp):
                n = self.node(f"constant\n{type_label(op.result.type)}", indent, "note",
                              "style=filled, fillcolor=lightgrey")
            elif isinstance(op, ReturnOp):
                n = self.node("return", indent, "oval", "style=filled, fillcolor=lightblue")
            else:
                n = self.node(op_label(op), indent)
            self.edges(op, n, indent)
            for r in op.results:
                self.ids[r] = n

    def function(self, f: FunctionOp) -> None:
        self.cluster("@" + f.sym_name.data, "  ")
        for i, a in enumerate(f.args):
            self.ids[a] = self.node(f"%{a.name_hint or i}", "    ", "oval", "style=filled, fillcolor=palegreen")
        self.block(f.body.block, "    ")
        self.out.write("  }\n")


def emit_dot(module: ModuleOp, out: IO[str]) -> None:
    """Writes the DOT text of every relax.function of `module` to `out`."""
    funcs = [op for op in module.body.ops if isinstance(op, FunctionOp)]
    if not funcs:
        raise RelaxError("-t dot shows graph functions (relax.function), and the module has none "
                         "(after lower-graph there are only host functions); print it before lowering, "
                         "e.g. with -p legalize,lower-tir")
    out.write("digraph relax {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n"
              "  edge [fontname=\"monospace\", fontsize=9];\n")
    g = _Graph(out)
    for f in funcs:
        g.function(f)
    out.write("}\n")
