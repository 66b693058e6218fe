"""ONNX sequences and optionals as import-time values.

relax has no sequence or optional type, and the models exporters write do
not need one: their sequences have a length the importer can know (a
SequenceConstruct of three tensors, a SplitToSequence of a static dim, a
graph input whose length the caller states). So a sequence is a Python list
of tensor values held by the importer, and an optional is absent or one
value (a tensor or a sequence). Converters read and build these lists; what
reaches the graph function is only the tensors in them. A sequence graph
input becomes one parameter per item, a sequence graph output one result per
item, and `output_slots` tells a caller how to regroup the results.

What needs a length or a presence known only at run time -- a Loop growing
a sequence for a run-time trip count, an If choosing between sequences on a
run-time condition, SequenceAt or SequenceInsert at a run-time position --
is refused at import time, naming the node.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from relax_xdsl.errors import ResourceLimitError

# Items one sequence may hold. Every item is a function parameter, result or unrolled body, so a length from a
# model or a caller (a SplitToSequence of a 10**6 dim, a list of 10**6 inputs) must not turn into that many.
MAX_SEQUENCE_LENGTH = 1024

# Ops whose converters take sequences or optionals among their inputs; any other op given one fails clearly.
CONTAINER_OPS: set[str] = {"Identity"}


@dataclass(eq=False)
class SequenceValue:
    """An ONNX sequence of known length: its items (graph values or Knowns),
    all of element type `dtype` (ONNX sequences are homogeneous)."""

    items: list[Any]
    dtype: str

    def __len__(self) -> int:
        return len(self.items)


@dataclass(eq=False)
class OptionalValue:
    """An ONNX optional: absent (`value` None) or holding a tensor or a sequence."""

    value: Any = None

    @property
    def present(self) -> bool:
        return self.value is not None


def is_container(v: Any) -> bool:
    return isinstance(v, (SequenceValue, OptionalValue))


def item_name(name: str, i: int) -> str:
    """The name of item i of sequence input `name`: its parameter's, and the key `shapes` gives its dims under.
    Not name_i: xDSL drops a `_<digits>` suffix from value names, which would name every item `name`."""
    return f"{name}_item{i}"


def contents(v: Any) -> list[Any]:
    """The tensor values `v` stands for: itself, or what a sequence or an optional holds."""
    if isinstance(v, OptionalValue):
        return contents(v.value) if v.present else []
    if isinstance(v, SequenceValue):
        return list(v.items)
    return [v]


def describe(v: Any) -> str:
    """How errors name a container value."""
    if isinstance(v, SequenceValue):
        return f"a sequence of {len(v)} {v.dtype} tensor{'s' if len(v) != 1 else ''}"
    if isinstance(v, OptionalValue):
        return f"an optional holding {describe(v.value)}" if v.present else "an empty optional"
    return "a tensor"


def length_problem(length: int) -> str | None:
    """Why a sequence of `length` items cannot be made, or None."""
    if length < 0:
        return f"a sequence length must be >= 0, got {length}"
    if length > MAX_SEQUENCE_LENGTH:
        return (f"a sequence of {length} items is longer than the {MAX_SEQUENCE_LENGTH} items relax_xdsl unrolls "
                "(each item is a separate value of the graph function)")
    return None


def check_length(length: int, what: str) -> None:
    """A sequence length within [0, MAX_SEQUENCE_LENGTH], or a ResourceLimitError naming `what`."""
    why = length_problem(length)
    if why:
        raise ResourceLimitError(f"{what}: {why}")


@dataclass(frozen=True)
class OutputSlot:
    """One ONNX graph output among the graph function's results: `kind` is
    "tensor", "sequence" (`count` results, one per item) or "absent" (an
    empty optional: no result); `optional` marks an optional-typed output."""

    name: str
    kind: str
    count: int = 1
    optional: bool = False


@dataclass
class OutputLayout:
    """The graph outputs in order, and whether the function returns a
    placeholder result (a relax function returns at least one value, and
    outputs that are all empty sequences or absent optionals give none)."""

    slots: list[OutputSlot] = field(default_factory=list)
    placeholder: bool = False

    def regroup(self, results: list[Any]) -> list[Any]:
        """The function's results as ONNX outputs: a list per sequence, None per absent optional."""
        out: list[Any] = []
        k = 0
        for s in self.slots:
            if s.kind == "absent":
                out.append(None)
            elif s.kind == "sequence":
                out.append(list(results[k:k + s.count]))
                k += s.count
            else:
                out.append(results[k])
                k += 1
        return out


def flatten_output(name: str, v: Any) -> tuple[OutputSlot, list[Any]]:
    """A graph output's slot and the tensor values it returns."""
    optional = isinstance(v, OptionalValue)
    if optional:
        if not v.present:
            return OutputSlot(name, "absent", 0, True), []
        v = v.value
    if isinstance(v, SequenceValue):
        return OutputSlot(name, "sequence", len(v), optional), list(v.items)
    return OutputSlot(name, "tensor", 1, optional), [v]


_LAYOUTS: weakref.WeakKeyDictionary[ModuleOp, OutputLayout] = weakref.WeakKeyDictionary()


def record_layout(module: ModuleOp, layout: OutputLayout) -> None:
    _LAYOUTS[module] = layout


def output_layout(module: ModuleOp) -> OutputLayout | None:
    """How `from_onnx`'s module returns its graph outputs, or None for a module it did not make."""
    return _LAYOUTS.get(module)
