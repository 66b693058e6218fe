"""ONNX converters for control flow: If onto `relax.if`, Loop and Scan onto
`relax.while` (dialects/relax_control_flow.py). Bodies are imported by
`Importer.run_subgraph`, seeing the enclosing graph's values.

A constant condition picks its branch at import time (exporters leave such
Ifs behind). Scan outputs (Loop's and Scan's) are gathered by concatenating
one slice per iteration onto a carried tensor that starts empty. When the
body's output type states a static per-iteration shape, the carried tensor
is [iterations, *shape]. Otherwise (no type, as in the bodies of expanded
ONNX functions, or dynamic dims) the body is traced once to learn the
slice's dtype and rank, and the carried tensor is the slices flattened and
joined, with the slice's shape carried beside it as int64 data: each later
slice must have the first one's shape (a ShapeError otherwise), and after
the loop the data is reshaped to [iterations, *shape]. With no iterations
there is no slice: dims the type states are used, 0 for the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relax_xdsl import op as rop
from relax_xdsl.builder import Var
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import RelaxError
from relax_xdsl.frontend.onnx_import import Known, Node, Value, identifier, onnx_dtype, register_converter
from relax_xdsl.shape import Dim, dims_differ, dims_equal

INT64_MAX = np.iinfo(np.int64).max


def _as_tensors(n: Node, values: list[Value]) -> list[Var]:
    return [n.importer.tensor(v, n) for v in values]


def _scalar_bool(n: Node, v: Var, what: str) -> Var:
    """ONNX conditions are one-element bool tensors of any rank: as a 0-d bool."""
    if v.dtype != "bool":
        n.fail(f"{what} must be bool, got {v.dtype}")
    if any(d.is_Integer and int(d) != 1 for d in v.type.sym_shape):
        n.fail(f"{what} must hold one element, got shape {v.shape}")
    return v if v.ndim == 0 else rop.reshape(v, [])


@register_converter("If", attrs=("then_branch", "else_branch"))
def _if(n: Node) -> Any:
    cond = n.input(0, "cond")
    then_g, else_g = n.attr("then_branch"), n.attr("else_branch")
    if isinstance(cond, Known) and not cond.symbolic:
        if cond.array.size != 1:
            n.fail(f"cond must hold one element, got shape {cond.shape}")
        return n.importer.run_subgraph(then_g if bool(cond.array.reshape(-1)[0]) else else_g, [], n)
    c = _scalar_bool(n, n.tensor(0, "cond"), "cond")
    fb = n.importer.fb
    given: dict[str, list[Any]] = {"then": [], "else": []}

    def branch(kind: str, graph: Any) -> list[Var]:
        values = _as_tensors(n, n.importer.run_subgraph(graph, [], n))
        given[kind] = [v.type for v in values]
        return values

    try:
        outs = fb.if_(c, lambda: branch("then", then_g), lambda: branch("else", else_g))
    except RelaxError:
        if not _ranks_differ(given["then"], given["else"]):
            raise
        return _if_by_rank_choice(n, c, then_g, else_g)
    return list(outs) if isinstance(outs, tuple) else [outs]


def _ranks_differ(then_types: Sequence[Any], else_types: Sequence[Any]) -> bool:
    return len(then_types) == len(else_types) and any(
        isinstance(a, TensorType) and isinstance(b, TensorType) and a.ndim != b.ndim
        for a, b in zip(then_types, else_types))


def _if_by_rank_choice(n: Node, c: Var, then_g: Any, else_g: Any) -> list[Any]:
    """An If whose branches give an output at different ranks under a run-time
    condition: the outputs of equal ranks from one relax.if, the others as
    RankChoices that the nodes using them resolve (onnx_rank_choice)."""
    imp = n.importer
    values = dict(imp.values)

    def run_side(which: bool) -> list[Any]:
        return imp.chooser.replay(values, lambda: imp.run_subgraph(then_g if which else else_g, [], n))

    return imp.chooser.split(c, None, run_side, 0, frozenset({id(c.value)}), n.where, n.outputs)


@dataclass
class _ScanOutput:
    """How one scan output is gathered: its dtype, its per-iteration dims
    (None where neither the body's type nor tracing gives a static one),
    and whether slices are prepended (a reversed Scan output)."""

    name: str
    dtype: str
    dims: list[int | None]
    prepend: bool = False

    @property
    def static(self) -> bool:
        return all(d is not None for d in self.dims)

    def inits(self, fb: Any) -> list[Var]:
        """The carried values before the first iteration."""
        if self.static:
            return [rop.zeros([0, *self.dims], self.dtype)]
        return [rop.zeros([0], self.dtype), fb.const(np.array([d or 0 for d in self.dims], np.int64))]

    def types(self, fb: Any) -> list[TensorType]:
        if self.static:
            return [TensorType.of([fb.fresh_symbols(1)[0], *self.dims], self.dtype)]
        return [TensorType.of([fb.fresh_symbols(1)[0]], self.dtype), TensorType.of([len(self.dims)], "int64")]

    def grow(self, fb: Any, i: Var, carried: Sequence[Var], piece: Var) -> list[Var]:
        """The carried values with this iteration's slice `piece` added."""
        if self.static:
            row = rop.expand_dims(piece, axis=[0])
            return [rop.concat([row, carried[0]] if self.prepend else [carried[0], row], axis=0)]
        acc, shape = carried
        first = rop.equal(i, fb.const(np.array(0, np.int64)))
        shape = rop.where(first, fb.shape_to_tensor(fb.shape_of(piece)), shape)
        first_dims = fb.fresh_symbols(len(self.dims), prefix=f"{self.name}_first_slice_dim")
        piece = fb.match_cast(piece, fb.tensor_to_shape(shape, first_dims).sym_value)  # as the first slice's shape
        flat = rop.reshape(piece, [-1])
        return [rop.concat([flat, acc] if self.prepend else [acc, flat], axis=0), shape]

    def result(self, fb: Any, iterations: Var, carried: Sequence[Var]) -> Var:
        """The gathered [iterations, *slice shape] tensor after the loop."""
        if self.static:
            return carried[0]
        acc, shape = carried
        dims = [d if d is not None else s for d, s in zip(self.dims, fb.fresh_symbols(len(self.dims)))]
        fb.tensor_to_shape(shape, dims)
        count = fb.fresh_symbols(1)[0]
        fb.tensor_to_prim(iterations, count)
        return rop.reshape(acc, [count, *dims])

    @property
    def width(self) -> int:
        """How many carried values it takes."""
        return 1 if self.static else 2


Stated = tuple[str, "str | None", "list[int | None] | None"]
"""A scan output's name and what its type states: dtype and per-iteration
dims (None where the type leaves them out)."""


def _stated(n: Node, outputs: Sequence[Any]) -> list[Stated]:
    """What the body's output types state of each scan output."""
    stated: list[Stated] = []
    for vi in outputs:
        tt = vi.type.tensor_type
        dtype = onnx_dtype(tt.elem_type, f"{n.where}: body output {vi.name!r}") if tt.elem_type else None
        dims = [int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim] \
            if tt.HasField("shape") else None
        stated.append((vi.name, dtype, dims))
    return stated


def _scan_outputs(n: Node, stated: Sequence[Stated], trace: Callable[[], list[Any]]) -> list[_ScanOutput]:
    """Each scan output's dtype and per-iteration dims from the body's output
    types; where a type leaves out the dtype, the rank or a dim, from the
    body traced once (`trace` gives the types its scan outputs have)."""
    traced: list[Any] = []
    if any(dtype is None or dims is None or None in dims for _, dtype, dims in stated):
        traced = trace()
    out = []
    for k, (name, dtype, dims) in enumerate(stated):
        if traced:
            t = traced[k]
            if not isinstance(t, TensorType):
                n.fail(f"scan output {name!r} must be a tensor, got {t}")
            if dtype is not None and dtype != t.dtype or dims is not None and len(dims) != t.ndim:
                n.fail(f"scan output {name!r}: the body gives {t}, its type states {dtype} of rank "
                       f"{len(dims) if dims is not None else '?'}")
            dtype = t.dtype
            dims = [d if d is not None else int(e) if e.is_Integer else None
                    for d, e in zip(dims or [None] * t.ndim, t.sym_shape)]
        assert dtype is not None and dims is not None
        out.append(_ScanOutput(identifier(name, "scan"), dtype, dims))
    return out


def _split(values: Sequence[Var], scans: Sequence[_ScanOutput]) -> list[list[Var]]:
    """The carried values of each scan output."""
    out, k = [], 0
    for s in scans:
        out.append(list(values[k:k + s.width]))
        k += s.width
    return out


def _scan_types(fb: Any, scans: Sequence[_ScanOutput]) -> list[Any]:
    return [t for s in scans for t in s.types(fb)]


def _scan_inits(fb: Any, scans: Sequence[_ScanOutput]) -> list[Var]:
    return [v for s in scans for v in s.inits(fb)]


def _grow(fb: Any, i: Var, scans: Sequence[_ScanOutput], carried: Sequence[Var], pieces: Sequence[Var]) -> list[Var]:
    return [v for s, c, p in zip(scans, _split(carried, scans), pieces) for v in s.grow(fb, i, c, p)]


def _results(fb: Any, iterations: Var, scans: Sequence[_ScanOutput], carried: Sequence[Var]) -> list[Var]:
    return [s.result(fb, iterations, c) for s, c in zip(scans, _split(carried, scans))]


def loop_arity(n: Node, body: Any) -> tuple[int, int]:
    """(carried values, scan outputs) of Loop node `n` with body graph `body`:
    Loop(M, cond, v...) and body(i, cond, v...) -> (cond, v..., scans...)."""
    n_carried = len(n.inputs) - 2
    if n_carried < 0:
        n.fail("Loop takes M and cond (either may be empty) and the carried values")
    n_scans = len(body.output) - 1 - n_carried
    if n_scans < 0:
        n.fail(f"the body gives {len(body.output)} outputs, fewer than cond and {n_carried} carried values")
    return n_carried, n_scans


@register_converter("Loop", attrs=("body",))
def _loop(n: Node) -> Any:
    """Loop(M, cond, v...) with body(i, cond, v...) -> (cond, v..., scans...):
    carried (i, cond, v..., scan accumulators) through relax.while."""
    body = n.attr("body")
    imp = n.importer
    fb = imp.fb
    n_carried, n_scans = loop_arity(n, body)
    trip = n.optional(0)
    m = fb.const(np.array(INT64_MAX, np.int64)) if trip is None else rop.reshape(rop.astype(n.tensor(0, "M"),
                                                                                          "int64"), [])
    c0 = fb.const(np.array(True)) if n.optional(1) is None else _scalar_bool(n, n.tensor(1, "cond"), "cond")
    carried = [n.tensor(2 + k, f"v_initial {k}") for k in range(n_carried)]
    head = [fb.const(np.array(0, np.int64)), c0, *carried]
    head_types = [fb.generalize(v.type) for v in head]

    def run_body(i: Var, c: Var, *values: Var) -> list[Var]:
        return _as_tensors(n, imp.run_subgraph(body, [i, c, *values], n))

    scans = _scan_outputs(n, _stated(n, body.output[1 + n_carried:]),
                          lambda: fb.result_types(lambda *args: run_body(*args)[1 + n_carried:], head_types))
    inits = [*head, *_scan_inits(fb, scans)]
    types = [*head_types, *_scan_types(fb, scans)]

    def cond(i: Var, c: Var, *rest: Var) -> Var:
        return rop.logical_and(rop.less(i, m), c)

    def step(i: Var, c: Var, *rest: Var) -> list[Var]:
        values, scan_accs = list(rest[:n_carried]), list(rest[n_carried:])
        outs = run_body(i, c, *values)
        new_c = _scalar_bool(n, outs[0], "the body's cond output")
        grown = _grow(fb, i, scans, scan_accs, outs[1 + n_carried:])
        return [rop.add(i, 1), new_c, *outs[1:1 + n_carried], *grown]

    results = fb.while_(inits, cond, step, carried=types)
    results = list(results) if isinstance(results, tuple) else [results]
    return [*results[2:2 + n_carried], *_results(fb, results[0], scans, results[2 + n_carried:])]


def _length(fb: Any, d: Dim) -> Var:
    """A dim as a 0-d int64 tensor."""
    if d.is_Integer:
        return fb.const(np.array(int(d), np.int64))
    return rop.reshape(fb.shape_to_tensor(fb.make_shape([d])), [])


def _per_value(n: Node, name: str, count: int, default: int) -> list[int]:
    values = list(n.attr(name, [default] * count))
    if len(values) != count:
        n.fail(f"attribute {name!r} gives {len(values)} values for {count} tensors")
    return [int(v) for v in values]


@register_converter("Scan", attrs=("body", "num_scan_inputs", "scan_input_axes", "scan_input_directions",
                                   "scan_output_axes", "scan_output_directions", "directions"))
def _scan(n: Node) -> Any:
    """Scan(states..., xs...) with body(states..., x slices...) -> (states..., scan slices...):
    carried (i, states..., scan accumulators) through relax.while, each x
    sliced at i (at length - 1 - i when reversed) along its axis. Opset 8's
    Scan has a batch axis in front of every input and output and a
    sequence_lens input first: a Scan over the batch whose body is the
    Scan of one batch entry."""
    if n.opset < 9:
        return _scan_batched(n)
    if "directions" in n.attrs:
        n.fail("attribute 'directions' is opset 8's (from opset 9 on: scan_input_directions)")
    body = n.attr("body")
    n_xs = int(n.attr("num_scan_inputs"))
    n_states = len(n.inputs) - n_xs
    if n_xs < 1 or n_states < 0:
        n.fail(f"num_scan_inputs is {n_xs}, but the node has {len(n.inputs)} inputs")
    n_ys = len(body.output) - n_states
    if n_ys < 0:
        n.fail(f"the body gives {len(body.output)} outputs, fewer than the {n_states} states")
    states = [n.tensor(k, f"initial state {k}") for k in range(n_states)]
    xs = [n.tensor(n_states + k, f"scan input {k}") for k in range(n_xs)]
    in_axes = [n.axis(a, x.ndim, f"scan_input_axes[{k}]")
               for k, (a, x) in enumerate(zip(_per_value(n, "scan_input_axes", n_xs, 0), xs))]
    in_reversed = [d == 1 for d in _per_value(n, "scan_input_directions", n_xs, 0)]
    out_axes = _per_value(n, "scan_output_axes", n_ys, 0)
    out_reversed = [d == 1 for d in _per_value(n, "scan_output_directions", n_ys, 0)]

    def run_body(values: Sequence[Var], slices: Sequence[Var]) -> list[Var]:
        return _as_tensors(n, n.importer.run_subgraph(body, [*values, *slices], n))

    finals, ys = _scan_loop(n, states, xs, in_axes, in_reversed, out_reversed, run_body,
                            _stated(n, body.output[n_states:]))
    for k, y in enumerate(ys):
        a = n.axis(out_axes[k], y.ndim, f"scan_output_axes[{k}]")
        if a:
            perm = list(range(1, y.ndim))
            perm.insert(a, 0)
            ys[k] = rop.permute_dims(y, perm)
    return [*finals, *ys]


def _scan_loop(n: Node, states: Sequence[Var], xs: Sequence[Var], in_axes: Sequence[int],
               in_reversed: Sequence[bool], out_reversed: Sequence[bool],
               run_body: Callable[[Sequence[Var], Sequence[Var]], list[Var]],
               stated: Sequence[Stated]) -> tuple[list[Var], list[Var]]:
    """The loop of a Scan: the final states, and the scan outputs gathered
    along a new axis 0 (`run_body(states, slices)` gives the states and
    scan slices of one iteration; `stated` what is known of the latter)."""
    fb = n.importer.fb
    xs = list(xs)
    n_states = len(states)
    length = xs[0].type.sym_shape[in_axes[0]]
    for k in range(1, len(xs)):
        dims = list(xs[k].type.sym_shape)
        if dims_differ(dims[in_axes[k]], length):
            n.fail(f"scan input {k} has length {dims[in_axes[k]]} along axis {in_axes[k]}, "
                   f"scan input 0 has {length}")
        if not dims_equal(dims[in_axes[k]], length):  # checked at run time
            dims[in_axes[k]] = length
            xs[k] = fb.match_cast(xs[k], dims)
    length_t = _length(fb, length)
    head = [fb.const(np.array(0, np.int64)), *states]
    head_types = [fb.generalize(v.type) for v in head]

    def body(i: Var, *values: Var) -> list[Var]:
        last = rop.subtract(rop.subtract(length_t, i), fb.const(np.array(1, np.int64)))
        slices = [rop.take(x, last if rev else i, axis=a) for x, a, rev in zip(xs, in_axes, in_reversed)]
        return run_body(values, slices)

    scans = _scan_outputs(n, stated, lambda: fb.result_types(lambda *args: body(*args)[n_states:], head_types))
    for s, rev in zip(scans, out_reversed):
        s.prepend = rev
    inits = [*head, *_scan_inits(fb, scans)]
    types = [*head_types, *_scan_types(fb, scans)]

    def step(i: Var, *rest: Var) -> list[Var]:
        outs = body(i, *rest[:n_states])
        return [rop.add(i, fb.const(np.array(1, np.int64))), *outs[:n_states],
                *_grow(fb, i, scans, rest[n_states:], outs[n_states:])]

    results = fb.while_(inits, lambda i, *rest: rop.less(i, length_t), step, carried=types)
    results = list(results) if isinstance(results, tuple) else [results]
    return list(results[1:1 + n_states]), _results(fb, results[0], scans, results[1 + n_states:])


def _scan_batched(n: Node) -> Any:
    """Opset 8's Scan(sequence_lens, states..., xs...): every state is
    [batch, ...] and every x [batch, sequence, ...]; the body sees one
    batch entry. Imported as a Scan over the batch whose body is the Scan
    of one entry (both relax.while). sequence_lens, when given, must be
    the full sequence length for every entry (checked at import when
    known, else when it runs): shorter sequences are not supported."""
    for name in ("scan_input_axes", "scan_input_directions", "scan_output_axes", "scan_output_directions"):
        if name in n.attrs:
            n.fail(f"attribute {name!r} is not an attribute of Scan before opset 9 (its batched form)")
    body = n.attr("body")
    n_xs = int(n.attr("num_scan_inputs"))
    n_states = len(n.inputs) - 1 - n_xs
    if n_xs < 1 or n_states < 0:
        n.fail(f"num_scan_inputs is {n_xs}, but the node has {len(n.inputs)} inputs (sequence_lens first)")
    n_ys = len(body.output) - n_states
    if n_ys < 0:
        n.fail(f"the body gives {len(body.output)} outputs, fewer than the {n_states} states")
    in_reversed = [d == 1 for d in _per_value(n, "directions", n_xs, 0)]
    states = [n.tensor(1 + k, f"initial state {k}") for k in range(n_states)]
    xs = [n.tensor(1 + n_states + k, f"scan input {k}") for k in range(n_xs)]
    for k, v in enumerate(states):
        if v.ndim < 1:
            n.fail(f"initial state {k} must have a batch axis, got a scalar")
    for k, v in enumerate(xs):
        if v.ndim < 2:
            n.fail(f"scan input {k} must have a batch and a sequence axis, got rank {v.ndim}")
    length = xs[0].type.sym_shape[1]
    if n.optional(0) is not None:
        _full_lengths(n, xs[0].type.sym_shape[0], length)

    def run_body(values: Sequence[Var], slices: Sequence[Var]) -> list[Var]:
        return _as_tensors(n, n.importer.run_subgraph(body, [*values, *slices], n))

    def one_entry(_: Sequence[Var], entry: Sequence[Var]) -> list[Var]:
        finals, ys = _scan_loop(n, entry[:n_states], entry[n_states:], [0] * n_xs, in_reversed, [False] * n_ys,
                                run_body, _stated(n, body.output[n_states:]))
        return [*finals, *ys]

    outs = [(vi.name, None, None) for vi in body.output]
    _, batched = _scan_loop(n, [], [*states, *xs], [0] * (n_states + n_xs), [False] * (n_states + n_xs),
                            [False] * len(outs), one_entry, outs)
    return batched


def _full_lengths(n: Node, batch: Dim, length: Dim) -> None:
    """sequence_lens (input 0) must be `length` for each of the `batch` entries."""
    fb = n.importer.fb
    lens = n.input(0, "sequence_lens")
    if isinstance(lens, Known) and not lens.symbolic and length.is_Integer:
        if any(int(v) != int(length) for v in lens.array.reshape(-1)):
            n.fail(f"sequence_lens {lens.array.reshape(-1).tolist()} other than the full sequence length {length} "
                   "are not supported")
        return
    lens = n.tensor(0, "sequence_lens")
    if lens.dtype not in ("int32", "int64") or lens.ndim != 1:
        n.fail(f"sequence_lens must be a 1-d int32/int64 tensor, got {lens.type}")
    short = rop.not_equal(rop.astype(lens, "int64"), _length(fb, length))
    checked = fb.tensor_to_prim(rop.sum(rop.astype(short, "int64")), 0)  # a ShapeError when any is shorter
    checked.value.name_hint = identifier(f"{n.name or 'Scan'}_sequence_lens_entries_not_full_length", "scan")
