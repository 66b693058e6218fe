"""ONNX converters for sequences and optionals (onnx_sequences.py has the
values they work on: lists of tensors and present-or-absent values, known at
import time). Positions and split sizes must therefore be known at import
time too; a Loop or If involving sequences is unrolled or decided at import
time, or refused naming the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from relax_xdsl.builder import Var
from relax_xdsl.frontend import onnx_ops_control_flow  # its If and Loop are wrapped below
from relax_xdsl.frontend.onnx_import import (
    CONVERTERS,
    Known,
    Node,
    Value,
    _outer_names,
    onnx_dtype,
    register_converter,
)
from relax_xdsl.frontend.onnx_sequences import (
    CONTAINER_OPS,
    OptionalValue,
    SequenceValue,
    describe,
    is_container,
    length_problem,
)
from relax_xdsl.shape import canon, dim_to_str

CONTAINER_TYPES = ("sequence_type", "optional_type")


def _register(op_type: str, attrs: tuple[str, ...] = ()) -> Any:
    """register_converter for an op that takes sequences or optionals."""
    CONTAINER_OPS.add(op_type)
    return register_converter(op_type, attrs=attrs)


def _sequence(n: Node, i: int, what: str = "input_sequence") -> SequenceValue:
    v = n.input(i, what)
    if not isinstance(v, SequenceValue):
        n.fail(f"input {i} ({what}) must be a sequence, got {describe(v)}")
    return v


def _tensor_input(n: Node, i: int, what: str) -> Value:
    v = n.input(i, what)
    if is_container(v):
        n.fail(f"input {i} ({what}) must be a tensor, got {describe(v)}")
    return v


def _check_length(n: Node, length: int, what: str = "") -> None:
    why = length_problem(length)
    if why:
        n.fail(f"{what}{why}")


def _with_items(n: Node, items: list[Any], dtype: str) -> SequenceValue:
    _check_length(n, len(items))
    for v in items:
        if v.dtype != dtype:
            n.fail(f"a sequence of {dtype} tensors cannot hold a {v.dtype} tensor (ONNX sequences are homogeneous)")
    return SequenceValue(items, dtype)


def _position(n: Node, i: int, length: int, inserting: bool = False) -> int:
    """Input i as a position into a sequence of `length` items: known at
    import time, negative counting from the back, within [-length, length)
    (up to `length` inclusive where an item is inserted)."""
    v = n.input(i, "position")
    if not isinstance(v, Known):
        n.fail(f"input {i} (position) is computed at run time; relax_xdsl keeps sequences at import time, so "
               "the position must be a constant or computed from shapes")
    if v.symbolic or v.array.size != 1 or v.array.dtype.kind not in "iu":
        n.fail(f"input {i} (position) must be one static integer, got {v.dtype} of shape {list(v.shape)}")
    p = int(v.array.reshape(-1)[0])
    high = length + 1 if inserting else length
    if not -length <= p < high:
        n.fail(f"position {p} is out of range for a sequence of {length} items "
               f"(valid: {-length} .. {high - 1})")
    return p + length if p < 0 else p


@_register("SequenceEmpty", ("dtype",))
def _sequence_empty(n: Node) -> SequenceValue:
    return SequenceValue([], onnx_dtype(int(n.attr("dtype", 1)), f"{n.where}: dtype"))


@_register("SequenceConstruct")
def _sequence_construct(n: Node) -> SequenceValue:
    if not n.inputs:
        n.fail("needs at least one input tensor")
    items = [_tensor_input(n, i, "inputs") for i in range(len(n.inputs))]
    return _with_items(n, items, items[0].dtype)


@_register("SequenceAt")
def _sequence_at(n: Node) -> Value:
    s = _sequence(n, 0)
    return s.items[_position(n, 1, len(s))]


@_register("SequenceInsert")
def _sequence_insert(n: Node) -> SequenceValue:
    s = _sequence(n, 0)
    x = _tensor_input(n, 1, "tensor")
    p = len(s) if n.optional(2) is None else _position(n, 2, len(s), inserting=True)
    return _with_items(n, [*s.items[:p], x, *s.items[p:]], s.dtype)


@_register("SequenceErase")
def _sequence_erase(n: Node) -> SequenceValue:
    s = _sequence(n, 0)
    if not s.items:
        n.fail("cannot erase from an empty sequence")
    p = len(s) - 1 if n.optional(1) is None else _position(n, 1, len(s))
    return SequenceValue(s.items[:p] + s.items[p + 1:], s.dtype)


@_register("SequenceLength")
def _sequence_length(n: Node) -> Known:
    return Known(np.array(len(_sequence(n, 0)), np.int64), "int64")


@_register("SplitToSequence", ("axis", "keepdims"))
def _split_to_sequence(n: Node) -> SequenceValue:
    """Pieces of a given size (scalar split: all but the last), of given
    sizes (1-d split), or of size 1 with the axis kept or dropped (no split)."""
    x = _tensor_input(n, 0, "input")
    if x.ndim == 0:
        n.fail("cannot split a scalar")
    axis = n.axis(int(n.attr("axis", 0)), x.ndim)
    dim = canon(x.shape[axis])
    split = n.optional(1)
    if split is not None and not isinstance(split, Known):
        n.fail("input 1 (split) is computed at run time; the number of pieces sets the sequence's length, "
               "which relax_xdsl must know at import time")
    if split is not None and split.ndim > 1:
        n.fail(f"split must be a scalar or 1-d, got shape {list(split.shape)}")
    if split is not None and split.ndim == 1:
        sizes = n.static_ints(1, "split")
        _check_length(n, len(sizes))
        if any(s < 0 for s in sizes):
            n.fail(f"split sizes {sizes} must be >= 0")
        if dim.is_Integer and sum(sizes) != int(dim):
            n.fail(f"split sizes {sizes} do not add up to the dim {dim_to_str(dim)}")
        return SequenceValue(_pieces(n, x, axis, sizes, dim), x.dtype)
    if not dim.is_Integer:
        n.fail(f"axis {axis} has symbolic size {dim_to_str(dim)}, so the number of pieces (the sequence's length) "
               "is not known at import time; give a 1-d split of static sizes")
    size = 1 if split is None else n.static_ints(1, "split")[0]
    if size < 1:
        n.fail(f"split {size} must be >= 1")
    count = -(-int(dim) // size)
    _check_length(n, count)
    sizes = [size] * (count - 1) + [int(dim) - size * (count - 1)] if count else []
    pieces = _pieces(n, x, axis, sizes, dim)
    if split is None and not int(n.attr("keepdims", 1)):
        pieces = [n.op("squeeze", p, axis=[axis]) for p in pieces]
    return SequenceValue(pieces, x.dtype)


def _pieces(n: Node, x: Value, axis: int, sizes: list[int], dim: Any) -> list[Value]:
    if not sizes:
        return []
    points = np.cumsum(sizes[:-1]).tolist() if len(sizes) > 1 else []
    parts = n.op("split", x, indices_or_sections=[int(p) for p in points], axis=axis)
    pieces = [parts[i] for i in range(len(sizes))] if isinstance(parts, Var) else list(parts)
    last = pieces[-1]
    if not dim.is_Integer and isinstance(last, Var):  # the sizes must add up to the dim: checked at run time
        shape = list(last.type.sym_shape)
        shape[axis] = sizes[-1]
        pieces[-1] = n.importer.fb.match_cast(last, shape)
    return pieces


@_register("ConcatFromSequence", ("axis", "new_axis"))
def _concat_from_sequence(n: Node) -> Value:
    s = _sequence(n, 0)
    if not s.items:
        n.fail("cannot concatenate an empty sequence (its result's shape is unknown)")
    new_axis = int(n.attr("new_axis", 0))
    if new_axis not in (0, 1):
        n.fail(f"new_axis must be 0 or 1, got {new_axis}")
    rank = s.items[0].ndim
    items = list(s.items)
    if new_axis:
        axis = n.axis(int(n.attr("axis")), rank + 1)
        items = [n.op("expand_dims", v, axis=[axis]) for v in items]
    else:
        if rank == 0:
            n.fail("cannot concatenate scalars without new_axis=1")
        axis = n.axis(int(n.attr("axis")), rank)
    for v in items[1:]:
        if v.ndim != items[0].ndim:
            n.fail(f"the sequence's tensors have different ranks {items[0].ndim} and {v.ndim}")
    return items[0] if len(items) == 1 else n.op("concat", *items, axis=axis)


@_register("SequenceMap", ("body",))
def _sequence_map(n: Node) -> list[SequenceValue]:
    """The body imported once per item; tensor inputs are passed to every copy."""
    body = n.attr("body")
    s = _sequence(n, 0)
    for i, v in enumerate(n.inputs[1:], 1):
        if isinstance(v, SequenceValue) and len(v) != len(s):
            n.fail(f"input {i} is a sequence of {len(v)} items, input 0 one of {len(s)}")
        if v is None or isinstance(v, OptionalValue):
            n.fail(f"input {i} must be a sequence or a tensor, got {describe(v)}")
    outs: list[list[Any]] = [[] for _ in body.output]
    for k in range(len(s)):
        args = [v.items[k] if isinstance(v, SequenceValue) else v for v in n.inputs]
        for j, v in enumerate(n.importer.run_subgraph(body, args, n)):
            if is_container(v):
                n.fail(f"the body's output {j} is {describe(v)}; SequenceMap's body gives tensors")
            outs[j].append(v)
    result = []
    for vi, items in zip(body.output, outs):
        elem = vi.type.tensor_type.elem_type
        dtype = items[0].dtype if items else onnx_dtype(elem, f"{n.where}: body output {vi.name!r}") if elem else \
            "float32"
        result.append(_with_items(n, items, dtype))
    return result


@_register("Optional", ("type",))
def _optional(n: Node) -> OptionalValue:
    v = n.optional(0)
    if v is None and "type" not in n.attrs:
        n.fail("an Optional without an input needs the attribute 'type'")
    if isinstance(v, OptionalValue):
        n.fail("an optional cannot hold an optional")
    return OptionalValue(v)


@_register("OptionalHasElement")
def _optional_has_element(n: Node) -> Known:
    v = n.optional(0)
    present = v.present if isinstance(v, OptionalValue) else v is not None
    return Known(np.array(present), "bool")


@_register("OptionalGetElement")
def _optional_get_element(n: Node) -> Any:
    v = n.input(0, "input")
    if isinstance(v, OptionalValue):
        if not v.present:
            n.fail("the optional is empty (known at import time), so it has no element to get")
        return v.value
    return v


# -- control flow over sequences ---------------------------------------------------------------------------------

_tensor_if = CONVERTERS["If"]
_tensor_loop = CONVERTERS["Loop"]


def _typed_container(vis: Any) -> str | None:
    """The name of the first value-info typed as a sequence or an optional."""
    return next((vi.name for vi in vis if vi.type.WhichOneof("value") in CONTAINER_TYPES), None)


@register_converter("If", attrs=_tensor_if.attrs)
def _if(n: Node) -> Any:
    """A sequence or optional branch output needs the condition known at
    import time (the branch is then picked here): relax's if yields tensors."""
    cond = n.input(0, "cond")
    if not (isinstance(cond, Known) and not cond.symbolic):
        for branch in ("then_branch", "else_branch"):
            name = _typed_container(n.attr(branch).output)
            if name is not None:
                n.fail(f"{branch} yields {name!r}, a sequence or optional, but the condition is computed at run "
                       "time; relax_xdsl keeps sequences at import time, so only a condition known at import time "
                       "can choose between them")
    return _tensor_if.fn(n)


@_register("Loop", _tensor_loop.attrs)
def _loop(n: Node) -> Any:
    """A Loop carrying sequences or optionals, or reading one from the
    enclosing graph, is unrolled at import time (its trip count and
    condition must be known there); any other Loop becomes relax.while."""
    body = n.attr("body")
    outer = [v for name in _outer_names(body) if (v := n.importer.values.get(name)) is not None]
    if any(is_container(v) for v in [*n.inputs[2:], *outer]) or _typed_container(list(body.input)[2:]) or \
            _typed_container(list(body.output)[1:]):
        return _unrolled_loop(n, body)
    return _tensor_loop.fn(n)


def _known_bool(v: Any) -> bool | None:
    if isinstance(v, Known) and not v.symbolic and v.array.size == 1:
        return bool(v.array.reshape(-1)[0])
    return None


def _unrolled_loop(n: Node, body: Any) -> list[Any]:
    n_carried, n_scans = onnx_ops_control_flow.loop_arity(n, body)
    trip = n.optional(0)
    if not isinstance(trip, Known) or trip.symbolic or trip.array.size != 1:
        n.fail("the loop carries sequences or optionals, which relax_xdsl keeps at import time, so it is unrolled "
               "there; its trip count M must then be known at import time (a constant or a SequenceLength), "
               "but it is " + ("absent" if trip is None else "computed at run time" if not isinstance(trip, Known)
                               else f"{trip.dtype} of shape {list(trip.shape)}"))
    count = int(trip.array.reshape(-1)[0])
    _check_length(n, max(count, 0), f"unrolling {count} iterations: ")
    cond = True if n.optional(1) is None else _known_bool(n.input(1, "cond"))
    if cond is None:
        n.fail("the loop carries sequences and is unrolled at import time, so its condition must be known there")
    values: list[Any] = list(n.inputs[2:])
    scans: list[list[Any]] = [[] for _ in range(n_scans)]
    for i in range(count):
        if not cond:
            break
        args = [Known(np.array(i, np.int64), "int64"), Known(np.array(cond), "bool"), *values]
        outs = n.importer.run_subgraph(body, args, n)
        cond = _known_bool(outs[0])
        if cond is None:
            n.fail("the loop carries sequences and is unrolled at import time, so the body's condition output "
                   "must be known there, but it is computed at run time")
        values = outs[1:1 + n_carried]
        for k, piece in enumerate(outs[1 + n_carried:]):
            if is_container(piece):
                n.fail(f"scan output {k} is {describe(piece)}; scan outputs must be tensors")
            scans[k].append(piece)
    stacked = []
    for k, pieces in enumerate(scans):
        if not pieces:
            n.fail(f"scan output {k} has no iteration to take its shape from")
        rows = [n.op("expand_dims", p, axis=[0]) for p in pieces]
        stacked.append(rows[0] if len(rows) == 1 else n.op("concat", *rows, axis=0))
    return [*values, *stacked]
