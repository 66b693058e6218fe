"""Operator fusion in three passes (TVM's AnnotateOpPattern, FuseOps, FuseTIR):

- `annotate-op-pattern` writes each graph op's pattern kind (elementwise,
  broadcast, injective, reduction, output-fusible, opaque) as its
  `relax.op_pattern` attribute: the OpSpec's kind, or one set from user code
  with `set_op_pattern`.
- `fuse-ops` groups ops and marks each member with `relax.fusion_group`.
  Walking consumers first, a graph op absorbs each producer whose kind is
  elementwise, broadcast or injective, whose single result has no other
  use, and whose shape rule needed no runtime assumption (recursively), except
  into an output-fusible op (whose operands are read many times); an
  output-fusible or reduction op (conv2d, pools, matmul, sum) takes the
  elementwise ops that follow it as its epilogue. Rules registered with
  `register_fusion_rule` decide first.
- `fuse-tir` turns each group into one tensor program: the root op's own
  legalization runs with a *virtual buffer* in place of each absorbed
  producer's output; reading it computes the producer's element from its
  inputs (its legalization's compute body, captured), so the intermediate is
  never materialized. A reduction producer's element is its reduction
  computed inline (an scf.for nest). A group whose program cannot be formed
  (a producer needing a local buffer) is left to `legalize`.

`fuse_module` runs all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy
from relax_xdsl.dialects.relax import CallTIROp, FunctionOp, GraphOp, TensorType, TupleOp
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.passes.legalize import Legalizer, _bare_symbols
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, TupleType, i64
from xdsl.ir import Attribute, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.utils.exceptions import VerifyException

from relax_xdsl import dtypes
from relax_xdsl.errors import RelaxError
from relax_xdsl.ops.registry import (
    BROADCAST,
    ELEMWISE,
    INJECTIVE,
    OUT_FUSIBLE,
    PATTERN_KINDS,
    REDUCTION,
    get_spec,
    types_match,
)
from relax_xdsl.shape import sym, symbols_in_order
from relax_xdsl.tir_builder import Buffer, PrimFuncBuilder

FUSABLE_PRODUCERS = frozenset({ELEMWISE, BROADCAST, INJECTIVE})
EPILOGUE_PRODUCERS = frozenset({OUT_FUSIBLE, REDUCTION})
REREADING = frozenset({"softmax", "log_softmax", "layer_norm", "rms_norm", "variance"})
"""Ops whose programs read their input more than once per row (max, sum,
write): a producer inlined into them is recomputed on every read."""
CHEAP = frozenset({"add", "subtract", "multiply", "negative", "relu", "maximum", "minimum", "abs", "astype"})
"""Producers cheap enough to recompute on every read of a REREADING op
(no transcendental functions, no division): measured, inlining gelu into
rms_norm was slower than computing it once."""


class _NotFusable(Exception):
    """A producer whose legalization is not one plain compute."""


class VirtualBuffer(Buffer):
    """Looks like a tir_builder.Buffer to a legalization (shape, dtype, ndim,
    type); `buf[idx]` computes the element instead of loading it."""

    def __init__(self, pb: PrimFuncBuilder, t: TensorType, body: Callable[..., Any] | None = None):
        self.b = pb
        self._type = BufferType.of(t.sym_shape, t.dtype)
        self.body = body

    @property
    def type(self) -> BufferType:
        return self._type

    def __getitem__(self, idx: Any) -> Any:
        if self.body is None:
            raise _NotFusable("a producer read its own output")
        idx = idx if isinstance(idx, tuple) else (idx,)
        return self.b.lift(self.body(*(self.b.index(i) for i in idx)), self.type.element_type)


class _Capture:
    """Stands in for the PrimFuncBuilder while a producer's legalization
    runs: its one compute (body, reduction, epilogue) is recorded,
    everything else delegated."""

    def __init__(self, pb: PrimFuncBuilder):
        self._pb = pb
        self.body: Callable[..., Any] | None = None
        self.reduce: tuple[str, Any] | None = None
        self.epilogue: Callable[..., Any] | None = None
        self.value_type: str | None = None

    def compute(self, out: Any, body: Callable[..., Any], reduce: Any = None, epilogue: Any = None,
                value_type: Any = None) -> None:
        if self.body is not None:
            raise _NotFusable("more than one compute")
        self.body, self.reduce, self.epilogue, self.value_type = body, reduce, epilogue, value_type

    def element(self, pb: PrimFuncBuilder, out_type: Attribute) -> Callable[..., Any]:
        """out[idx] as an expression: the body, folded over the reduction
        (from the combiner's identity) and passed through the epilogue."""
        body, reduce, epilogue = self.body, self.reduce, self.epilogue
        assert body is not None
        if reduce is None:
            return body
        combiner, extents = reduce
        acc_t = dtypes.to_xdsl(self.value_type) if self.value_type else out_type

        def element(*idx: Any) -> Any:
            init = pb.lift(pb.identity(combiner, acc_t), acc_t)

            def step(acc: Any, *rivs: Any) -> Any:
                v = pb.lift(body(*idx, *rivs), acc_t)
                return {"add": lambda: acc + v, "mul": lambda: acc * v, "max": lambda: pb.max(acc, v),
                        "min": lambda: pb.min(acc, v)}[combiner]()

            total = pb.fold(list(extents), init, step)
            return epilogue(total, *idx) if epilogue is not None else total

        return element

    def alloc(self, *args: Any, **kwargs: Any) -> Any:
        raise _NotFusable("needs a local buffer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pb, name)


PATTERN_ATTR = "relax.op_pattern"
GROUP_ATTR = "relax.fusion_group"
_PATTERN_OVERRIDES: dict[str, str] = {}

FusionRule = Callable[[GraphOp, GraphOp], "bool | None"]
_RULES: list[FusionRule] = []


def set_op_pattern(op_name: str, kind: str) -> None:
    """Override the pattern kind `annotate-op-pattern` gives op `op_name`
    (e.g. mark a user op "opaque" to keep it out of every group)."""
    get_spec(op_name)
    if kind not in PATTERN_KINDS:
        raise RelaxError(f"unknown pattern kind {kind!r}; choose one of {', '.join(PATTERN_KINDS)}")
    _PATTERN_OVERRIDES[op_name] = kind


def register_fusion_rule(rule: FusionRule) -> FusionRule:
    """Adds a rule `rule(producer, consumer) -> True | False | None` that
    `fuse-ops` asks, latest first, before its own: True absorbs the producer
    into the consumer's group (if it has a single use and can be computed
    inline), False keeps it out, None leaves the decision to the next rule
    and finally to the pattern kinds. Usable as a decorator."""
    _RULES.insert(0, rule)
    return rule


def unregister_fusion_rule(rule: FusionRule) -> None:
    _RULES.remove(rule)


def pattern_of(op: GraphOp) -> str:
    """The op's pattern kind: its annotation, else the override or its OpSpec's."""
    attr = op.attributes.get(PATTERN_ATTR)
    if isinstance(attr, StringAttr):
        return attr.data
    return _PATTERN_OVERRIDES.get(op.SPEC.name, op.SPEC.pattern)


def annotate_op_patterns(module: ModuleOp) -> ModuleOp:
    for op in module.walk():
        if isinstance(op, GraphOp):
            op.attributes[PATTERN_ATTR] = StringAttr(_PATTERN_OVERRIDES.get(op.SPEC.name, op.SPEC.pattern))
    return module


def _assumes(op: GraphOp) -> bool:
    spec = op.SPEC
    _, ctx = spec.run_infer([v.type for v in op.inputs], spec.decode_params(dict(op.attributes)))
    return bool(ctx.assumptions)


@dataclass
class _Group:
    root: GraphOp
    ops: list[GraphOp] = field(default_factory=list)  # producers first, root last
    inputs: list[SSAValue] = field(default_factory=list)  # from outside the group


def consumed_buffers(fn: FunctionOp) -> frozenset[SSAValue]:
    """The values of `fn` that share a buffer a relax.call_tir_inplace writes
    (computed once per function: find_groups does not change it)."""
    from relax_xdsl.dialects.relax import CallTIRInplaceOp

    from relax_xdsl.aliasing import storage_classes

    written = [c.inputs[i] for c in fn.body.walk() if isinstance(c, CallTIRInplaceOp) for _, i in c.aliased()]
    if not written:
        return frozenset()
    classes = storage_classes(fn)
    return frozenset(m for v in written for m in classes.get(v, frozenset({v})))


def _reads_consumed_input(p: GraphOp, consumed: frozenset[SSAValue]) -> bool:
    """A producer reading a buffer that a relax.call_tir_inplace writes stays
    where it is: computed inline in a consumer after that call, it would read
    the written data."""
    return any(v in consumed for v in p.operands)


def _fusable_producer(v: SSAValue, root: GraphOp, taken: set[GraphOp], elementwise_path: bool,
                      consumed: frozenset[SSAValue]) -> GraphOp | None:
    """A producer to absorb: injective, or (epilogue fusion) output-fusible /
    reduction when only elementwise ops lie between it and the root and it
    has the root's shape, so each of its elements is computed once."""
    p = v.owner
    if not isinstance(p, GraphOp) or p in taken or p.parent is not root.parent:
        return None
    if not p.SPEC.can_legalize or isinstance(p.res.type, TupleType):
        return None
    if len(list(p.res.uses)) != 1 or _assumes(p):
        return None
    if _reads_consumed_input(p, consumed):
        return None
    consumer = next(iter(p.res.uses)).operation
    for rule in _RULES:
        verdict = rule(p, consumer)  # type: ignore[arg-type]
        if verdict is not None:
            return p if verdict else None
    if isinstance(consumer, GraphOp) and pattern_of(consumer) == OUT_FUSIBLE:
        return None  # computed inline, a matmul/conv operand would be recomputed for every output it feeds
    if root.SPEC.name in REREADING and p.SPEC.name not in CHEAP:
        return None
    kind = pattern_of(p)
    if kind in FUSABLE_PRODUCERS:
        if not elementwise_path and _heads_an_epilogue(p):
            return None  # left as the root of conv + bias + relu rather than split from it
        return p
    if kind in EPILOGUE_PRODUCERS and elementwise_path and types_match(p.res.type, root.res.type):
        return p
    return None


def _heads_an_epilogue(o: GraphOp) -> bool:
    """An elementwise op that could take an output-fusible producer (through
    a chain of single-use elementwise ops) as its epilogue group."""
    if pattern_of(o) not in (ELEMWISE, BROADCAST):
        return False
    for v in o.inputs:
        p = v.owner
        if not isinstance(p, GraphOp) or len(list(p.res.uses)) != 1 or not types_match(p.res.type, o.res.type):
            continue
        if pattern_of(p) in EPILOGUE_PRODUCERS or _heads_an_epilogue(p):
            return True
    return False


def _absorb(o: GraphOp, root: GraphOp, taken: set[GraphOp], members: list[GraphOp], elementwise_path: bool,
            consumed: frozenset[SSAValue]) -> None:
    path = elementwise_path and pattern_of(o) in (ELEMWISE, BROADCAST)
    for v in o.inputs:
        p = _fusable_producer(v, root, taken, path, consumed)
        if p is not None:
            taken.add(p)
            _absorb(p, root, taken, members, path, consumed)
            members.append(p)


def find_groups(func: FunctionOp) -> list[_Group]:
    """Fusion groups of a function, roots taken consumers first."""
    taken: set[GraphOp] = set()
    groups = []
    consumed = consumed_buffers(func)
    ops = list(func.walk())
    order = {op: i for i, op in enumerate(ops)}
    for op in reversed(ops):
        if not isinstance(op, GraphOp) or op in taken or not op.SPEC.can_legalize or _assumes(op):
            continue
        group = _Group(op)
        members: list[GraphOp] = []

        _absorb(op, op, taken, members, True, consumed)
        if members:
            taken.add(op)
            members.sort(key=order.__getitem__)
            group.ops = [*members, op]
            _group_inputs(group)
            groups.append(group)
    return groups


def _group_inputs(group: _Group) -> None:
    inside = {o.res for o in group.ops}
    for o in group.ops:
        for v in o.inputs:
            if v not in inside and v not in group.inputs:
                group.inputs.append(v)


def mark_groups(module: ModuleOp) -> ModuleOp:
    """fuse-ops: every member of a group gets `relax.fusion_group = k`
    (numbered per function, in order)."""
    for func in [op for op in module.body.ops if isinstance(op, FunctionOp)]:
        for k, group in enumerate(reversed(find_groups(func))):
            for o in group.ops:
                o.attributes[GROUP_ATTR] = IntegerAttr(k, i64)
    return module


def marked_groups(func: FunctionOp) -> list[_Group]:
    """The groups fuse-ops marked, each root (its last member) last."""
    by_id: dict[int, list[GraphOp]] = {}
    for op in func.walk():
        attr = op.attributes.get(GROUP_ATTR)
        if isinstance(op, GraphOp) and isinstance(attr, IntegerAttr):
            by_id.setdefault(attr.value.data, []).append(op)
    groups = []
    for members in by_id.values():
        if len(members) < 2:
            continue
        group = _Group(members[-1], list(members))
        _group_inputs(group)
        groups.append(group)
    return groups


def _clear_marks(module: ModuleOp) -> None:
    for op in module.walk():
        if isinstance(op, GraphOp):
            op.attributes.pop(GROUP_ATTR, None)


class Fuser(Legalizer):
    """Generates one program per fusion group (shared between equal groups)."""

    def fuse(self, group: _Group) -> bool:
        root = group.root
        out_types: list[TensorType] = (list(root.res.type.types.data) if isinstance(root.res.type, TupleType)
                                       else [root.res.type])  # type: ignore[list-item]
        in_types: list[TensorType] = [v.type for v in group.inputs]  # type: ignore[misc]
        types = in_types + out_types
        order = symbols_in_order(t.sym_shape for t in types)
        to_canon = {s: sym(f"s{i}") for i, s in enumerate(order)}
        from_canon = {c: s for s, c in to_canon.items()}
        index = {o.res: k for k, o in enumerate(group.ops)}
        key = "|".join(["fused", *(str(TensorType.of([d.subs(to_canon) for d in t.sym_shape], t.dtype)) for t in types),
                        *(f"{o.SPEC.name}{sorted(o.attributes.items())}"
                          f"{[('op', index[v]) if v in index else ('in', group.inputs.index(v)) for v in o.inputs]}"
                          for o in group.ops)])
        program = self.programs.get(key)
        if program is None:
            try:
                program = self._generate_group(group, in_types, out_types, to_canon)
            except (_NotFusable, VerifyException, RelaxError):
                return False
            self.programs[key] = program
        sym_args = [e.subs(from_canon) for e in program.syms]
        call = CallTIROp(program.name, list(group.inputs), out_types, sym_args or None)
        if isinstance(root.res.type, TupleType):  # e.g. split: its results as a tuple, as legalize does
            tup = TupleOp(*call.results)
            Rewriter.replace_op(root, [call, tup], [tup.results[0]])
        else:
            Rewriter.replace_op(root, call)
        for o in reversed(group.ops[:-1]):
            o.detach()
            o.erase()
        return True

    def _generate_group(self, group: _Group, in_types: list[TensorType], out_types: list[TensorType],
                        to_canon: dict[sympy.Symbol, sympy.Symbol]) -> Any:
        from relax_xdsl.passes.legalize import _Program

        types = in_types + out_types
        free = [s for s in symbols_in_order(t.sym_shape for t in types) if s not in _bare_symbols(types)]
        name = self._fresh("fused_" + "_".join(o.SPEC.name for o in reversed(group.ops)))
        buffers = [(f"in{i}", t.sym_shape, t.dtype) for i, t in enumerate(in_types)]
        buffers += [("out" if len(out_types) == 1 else f"out{i}", t.sym_shape, t.dtype) for i, t in enumerate(out_types)]
        pb = PrimFuncBuilder(name, buffers, [str(s) for s in free])
        bufs: dict[SSAValue, Any] = dict(zip(group.inputs, pb.params))
        for o in group.ops[:-1]:
            spec = o.SPEC
            capture = _Capture(pb)
            out = VirtualBuffer(pb, o.res.type)  # type: ignore[arg-type]
            spec.legalize(capture, [bufs[v] for v in o.inputs], [out],  # type: ignore[arg-type]
                          **spec.decode_params(dict(o.attributes)))
            if capture.body is None:
                raise _NotFusable("no compute")
            element = capture.element(pb, out.type.element_type)
            bufs[o.res] = VirtualBuffer(pb, o.res.type, element)  # type: ignore[arg-type]
        root = group.root
        root.SPEC.legalize(pb, [bufs[v] for v in root.inputs], pb.params[len(in_types):],
                           **root.SPEC.decode_params(dict(root.attributes)))
        func = pb.finish()
        func.attributes["relax.fused"] = StringAttr(",".join(o.SPEC.name for o in group.ops))
        func.verify()
        self._insert(func)
        return _Program(name, [s.subs(to_canon) for s in free])


def fuse_tir(module: ModuleOp) -> ModuleOp:
    """fuse-tir: one tensor program per marked group; marks are removed."""
    fuser = Fuser(module)
    for func in [op for op in module.body.ops if isinstance(op, FunctionOp)]:
        for group in marked_groups(func):
            group.inputs = []  # an earlier group's call may now produce some of them
            _group_inputs(group)
            fuser.fuse(group)
    _clear_marks(module)
    return module


def fuse_module(module: ModuleOp) -> ModuleOp:
    """annotate-op-pattern, fuse-ops and fuse-tir."""
    return fuse_tir(mark_groups(annotate_op_patterns(module)))


@dataclass(frozen=True)
class AnnotateOpPatternPass(ModulePass):
    """annotate-op-pattern: each graph op's pattern kind as `relax.op_pattern`."""

    name = "annotate-op-pattern"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        annotate_op_patterns(op)


@dataclass(frozen=True)
class FuseOpsPass(ModulePass):
    """fuse-ops: groups marked with `relax.fusion_group` (see the module docstring)."""

    name = "fuse-ops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        mark_groups(op)


@dataclass(frozen=True)
class FuseTIRPass(ModulePass):
    """fuse-tir: each marked group becomes one tensor program."""

    name = "fuse-tir"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_tir(op)
