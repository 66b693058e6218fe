"""`lower-graph`: graph functions -> host functions at the loop level.

`relax.function @main(%x: !relax.tensor<[n, 784], f32>) -> ...` becomes
`func.func @main(%x: memref<?x784xf32>) -> (memref<?x10xf32>)` that
1. binds every symbol from the input dims (`memref.dim`; a dim linear in
   one unbound symbol is solved for it) and checks every input dim against
   the signature with `cf.assert` (message: function, input, dim, expected);
2. allocates outputs and intermediates with sizes computed from the
   symbolic expressions; `free-buffers` (passes/free_buffers.py) then frees
   each after its last use, and with `plan-memory` (the default) the
   intermediates whose sizes the inputs determine are marked for
   `plan-memory` (passes/plan_memory.py), which gives them slots of one
   pool; this pass runs both after the lowering itself;
3. calls tensor programs (`relax.call_tir` -> `func.call` of the lowered
   program: inputs, outputs, symbolic index args) and library functions
   (`lib.call` -> `func.call` of a private declaration carrying the
   library's attributes: inputs, outputs, then each symbol of the
   declaration's buffer shapes in order of first appearance);
4. checks `relax.match_cast` at run time, binding its new symbols; shape
   and scalar values are memrefs of i64 ([k], one element per dim) and
   0-d memrefs: shape and scalar parameters, `tensor_to_shape` and
   `tensor_to_prim` bind and check symbols from the values they hold (each
   first checked to lie in (-2**62, 2**62)), `make_shape` / `prim_value`
   store dim expressions, and the `*_to_tensor` / `tensor_to_*` ops are
   the same memref seen as the other kind;
5. returns the results (a tuple result is returned flattened; copies are
   made where a result would alias an input, a constant or another result,
   so the caller owns every returned buffer).

Constants become private `memref.global`s. Tensor programs must have been
lowered (`lower-tir`) first; graph ops must have been legalized.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sympy
from relax_xdsl.dialects.lib import LibCallOp, LibFuncOp
from relax_xdsl.dialects.relax import (
    CallTIRInplaceOp,
    CallTIROp,
    ConstantOp,
    DataflowOp,
    DimsAttr,
    FunctionOp,
    GetItemOp,
    GraphOp,
    MakeShapeOp,
    MatchCastOp,
    OutputOp,
    PrimToTensorOp,
    PrimType,
    PrimValueOp,
    ReturnOp,
    ShapeOfOp,
    ShapeToTensorOp,
    ShapeType,
    TensorToPrimOp,
    TensorToShapeOp,
    TensorType,
    TupleOp,
)
from relax_xdsl.dialects.relax_control_flow import CallOp, ConditionOp, IfOp, WhileOp, YieldOp
from relax_xdsl.dialects.tir import BufferType, PrimFuncOp
from xdsl.context import Context
from xdsl.dialects import arith, cf, func, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    TupleType,
    UnitAttr,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.traits import SymbolTable

from relax_xdsl.dim_lowering import DimEmitter
from relax_xdsl.dtypes import np_dtype
from relax_xdsl.errors import RelaxError
from relax_xdsl.limits import WHILE_NAME_ATTR
from relax_xdsl.shape import STATIC_DIM_LIMIT, canon, dim_to_str, dims_equal

from .free_buffers import FreeBuffersPass
from .plan_memory import BYTES_ATTR, PlanMemoryPass, mark_binding

Value = Any
"""A lowered graph value: a memref SSAValue, or a list of them (tuple)."""


def memref_type(t: TensorType | BufferType | ShapeType | PrimType) -> MemRefType:
    """The memref of a tensor/buffer type: static ints, `?` for symbolic dims
    (a shape value is a memref of i64, one element per dim; a scalar a 0-d
    memref)."""
    if isinstance(t, ShapeType):
        return MemRefType(i64, [len(t.dims.data)])
    if isinstance(t, PrimType):
        return MemRefType(t.element_type, [])
    shape = [int(d) if d.is_Integer else DYNAMIC_INDEX for d in t.sym_shape]
    return MemRefType(t.element_type, shape)


VIEW_OPS = frozenset({"reshape", "flatten", "expand_dims", "squeeze"})
"""Graph ops whose programs only copy dense data into a new shape: the host
views the input instead of calling them."""


_ALIASES = (ShapeToTensorOp, TensorToShapeOp, PrimToTensorOp, TensorToPrimOp)
"""Ops whose result is their operand's memref seen as another kind of value."""


def _held_dims(t: ShapeType | PrimType) -> tuple[sympy.Expr, ...]:
    """The dims a shape value holds, or a scalar's symbolic value (if any)."""
    if isinstance(t, ShapeType):
        return t.dims.data
    return () if t.sym_value is None else (t.sym_value,)


def _product(dims: Sequence[sympy.Expr]) -> sympy.Expr:
    return canon(sympy.Mul(*dims)) if dims else sympy.Integer(1)


def flatten_types(t: Attribute) -> list[Attribute]:
    if isinstance(t, TupleType):
        return [x for e in t.types.data for x in flatten_types(e)]
    return [t]


def _static_dims_kept(v: SSAValue, t: TensorType) -> bool:
    """Whether the memref type of `v` already holds every static dim of `t`
    (then they need no run-time check)."""
    shape = v.type.get_shape()  # type: ignore[attr-defined]
    return all(s != DYNAMIC_INDEX for s, d in zip(shape, t.sym_shape) if d.is_Integer)


def _nest(t: Attribute, flat: list[SSAValue]) -> Value:
    """The lowered value of graph type `t` taken from the front of `flat`."""
    if isinstance(t, TupleType):
        return [_nest(e, flat) for e in t.types.data]
    return flat.pop(0)


def _flatten(v: Value) -> list[SSAValue]:
    if isinstance(v, list):
        return [x for e in v for x in _flatten(e)]
    return [v]


def _arg_name(v: SSAValue, i: int) -> str:
    return v.name_hint or f"arg{i}"


@dataclass
class _HostBuilder:
    """Lowers one relax.function into one func.func."""

    fn: FunctionOp
    module: ModuleOp
    lowering: LowerGraph

    def run(self) -> func.FuncOp:
        ftype = self.fn.function_type
        in_types = [memref_type(t) for t in ftype.inputs.data]  # type: ignore[arg-type]
        out_types = [memref_type(t) for r in ftype.outputs.data for t in flatten_types(r)]  # type: ignore[arg-type]
        self.block = Block(arg_types=in_types)
        # messages name the function in ASCII: xDSL prints other characters of
        # a string attribute as byte escapes it does not parse back as a string
        self.label = "@" + self.fn.sym_name.data.encode("ascii", "backslashreplace").decode("ascii")
        self.dims = DimEmitter(lambda op: self.block.add_op(op), checked=self.label)  # follows self.block
        self.region_depth = 0  # > 0 inside relax.if / relax.while regions
        self.env: dict[SSAValue, Value] = {}
        self.allocated: list[SSAValue] = []
        self.root: dict[SSAValue, SSAValue] = {}  # a view -> the buffer it views
        self.dim_values: dict[tuple[SSAValue, int], SSAValue] = {}
        self.name = self.fn.sym_name.data
        for old, new in zip(self.fn.args, self.block.args):
            new.name_hint = old.name_hint
            self.env[old] = new
        self._bind_inputs()
        self.pool_symbols = dict(self.dims.env)  # what an intermediate's size may use to be pooled
        for s, value in self.pool_symbols.items():
            mark_binding(value, s.name)
        self.escaping = self._escaping() if self.lowering.plan_memory else set()
        results = self._lower_block(self.fn.body.block)
        self._finish(results)
        return func.FuncOp(self.name, (in_types, out_types), Region(self.block))

    # -- symbols and checks ------------------------------------------------
    def _dim(self, memref_value: SSAValue, axis: int) -> SSAValue:
        key = (memref_value, axis)
        if key not in self.dim_values:
            op = memref.DimOp(memref_value, self.dims.const(axis))
            self.block.add_op(op)
            self.dim_values[key] = op.results[0]
        return self.dim_values[key]

    def _cast(self, value: SSAValue, t: Attribute) -> SSAValue:
        """`value` as the memref type a callee declares (static <-> dynamic dims)."""
        if value.type == t:
            return value
        cast = memref.CastOp.get(value, t)
        self.block.add_op(cast)
        return cast.results[0]

    def _checked_cast(self, value: SSAValue, t: Attribute, what: str) -> SSAValue:
        """`_cast`, checking first each dim the target type makes static
        that the value's type leaves dynamic (memref.cast does not)."""
        if isinstance(t, MemRefType) and isinstance(value.type, MemRefType):
            for i, (have, want) in enumerate(zip(value.type.get_shape(), t.get_shape())):
                if have == DYNAMIC_INDEX and want != DYNAMIC_INDEX:
                    self._assert_dim(self._dim(value, i), sympy.Integer(want), f"{what} dim {i}")
        return self._cast(value, t)

    def _call(self, callee: str, formal: list[Attribute], actual: list[SSAValue]) -> None:
        args = [self._cast(v, t) for v, t in zip(actual, formal)]
        self.block.add_op(func.CallOp(callee, args, []))

    def _assert_dim(self, value: SSAValue, expected: sympy.Expr, what: str) -> None:
        ok = arith.CmpiOp(value, self.dims.emit(expected), "eq")
        self.block.add_op(ok)
        self.block.add_op(cf.AssertOp(ok, f"{what} is not {dim_to_str(expected)}"))

    def _assert_domain(self, s: sympy.Symbol, d: sympy.Expr, what: str) -> None:
        """A symbol just solved from a caller's dim lies in its domain (>= 1
        for the positive symbols dims use, >= 0 for nonnegative ones): the
        sizes computed from it are then what the types promise."""
        low = 1 if s.is_positive else 0 if s.is_nonnegative else None
        if low is None:
            return
        ok = arith.CmpiOp(self.dims.env[s], self.dims.const(low), "sge")
        self.block.add_op(ok)
        solved = "" if d == s else f", solved from {dim_to_str(d)},"
        self.block.add_op(cf.AssertOp(ok, f"{what}: symbol {s.name}{solved} must be >= {low}"))

    def _match(self, items: list[tuple[SSAValue, TensorType, str]]) -> None:
        """Binds the unbound symbols of the given values' types, then checks
        every dynamic dim (static dims are guaranteed by the memref type,
        which the caller checks before calling)."""
        self._match_values([(lambda i, v=v: self._dim(v, i), t.sym_shape, _static_dims_kept(v, t), what)
                            for v, t, what in items])

    def _match_values(self, items: list[tuple[Any, Sequence[sympy.Expr], bool, str]]) -> None:
        """`_match` over any dims: per item a reader of the run-time value of
        dim i, the expected dims, whether the memref type already guarantees
        the static ones, and what to name in messages."""
        pending = [(read, i, d, static_ok, what) for read, dims, static_ok, what in items
                   for i, d in enumerate(dims)]
        progress = True
        bound_here: set[tuple[int, int]] = set()
        while progress:
            progress = False
            for read, i, d, _static_ok, what in pending:
                if (id(read), i) in bound_here or d.is_Integer:
                    continue
                unbound = [s for s in d.free_symbols if s not in self.dims.env]
                if unbound and self.dims.try_bind(d, read(i)):
                    bound_here.add((id(read), i))
                    progress = True
                    self._assert_domain(unbound[0], d, f"{what} dim {i}")
        for read, i, d, static_ok, what in pending:
            if d.is_Integer and static_ok:
                continue
            missing = sorted(s.name for s in d.free_symbols if s not in self.dims.env)
            if missing:
                raise RelaxError(f"{what} dim {i}: cannot bind symbol(s) {', '.join(missing)} from {dim_to_str(d)}")
            if (id(read), i) in bound_here and d.is_Symbol:
                continue
            self._assert_dim(read(i), d, f"{what} dim {i}")

    def _value_reader(self, memref_value: SSAValue, what: str) -> Any:
        """Reads element i of a shape (memref<k x i64>) or a scalar (0-d
        memref) as an index, once, after checking it lies in (-2**62, 2**62):
        sizes computed from it then start in range."""
        cache: dict[int, SSAValue] = {}
        rank = len(memref_value.type.get_shape())  # type: ignore[attr-defined]

        def read(i: int) -> SSAValue:
            if i not in cache:
                load = memref.LoadOp.get(memref_value, [self.dims.const(i)] if rank else [])
                self.block.add_op(load)
                value = load.res
                if value.type != i64:
                    ext = arith.ExtSIOp(value, i64)
                    self.block.add_op(ext)
                    value = ext.result
                cast = arith.IndexCastOp(value, IndexType())
                self.block.add_op(cast)
                v = cast.result
                for bound, pred, side, sign in ((STATIC_DIM_LIMIT, "slt", "below", ""), (-STATIC_DIM_LIMIT, "sgt", "above", "-")):
                    ok = arith.CmpiOp(v, self.dims.const(bound), pred)
                    self.block.add_op(ok)
                    self.block.add_op(cf.AssertOp(ok, f"{what} value {i} must lie {side} {sign}2**62"))
                cache[i] = v
            return cache[i]

        return read

    def _match_data(self, memref_value: SSAValue, t: ShapeType | PrimType, what: str) -> None:
        """Binds and checks the symbols of a shape or scalar type from the values a memref holds."""
        dims = _held_dims(t)
        if dims:
            self._match_values([(self._value_reader(memref_value, what), dims, False, what)])

    def _bind_inputs(self) -> None:
        """Binds every symbol of the signature from the inputs' dims and the
        values of shape and scalar inputs together (`x: [a*b]` with `s: [a, b]`)."""
        items = []
        for i, (old, new) in enumerate(zip(self.fn.args, self.block.args)):
            t = old.type
            what = f"{self.label}: input {_arg_name(old, i)}"
            if isinstance(t, (ShapeType, PrimType)):
                dims = _held_dims(t)
                if dims:
                    items.append((self._value_reader(new, what), dims, False, what))
            elif isinstance(t, TensorType):
                items.append((lambda k, v=new: self._dim(v, k), t.sym_shape, True, what))
            else:
                raise RelaxError(f"{self.label}: parameter {_arg_name(old, i)} of type {t} is not supported by "
                                 "lower-graph (only tensors, shapes and scalars)")
        self._match_values(items)

    # -- body ----------------------------------------------------------------
    def _lower_block(self, block: Block) -> list[Value]:
        for op in block.ops:
            if isinstance(op, (ReturnOp, OutputOp, YieldOp)):
                return [self.env[v] for v in op.values]
            if isinstance(op, ConditionOp):
                return [self.env[op.cond], *(self.env[v] for v in op.values)]
            self._lower_op(op)
        raise RelaxError(f"{self.label}: block without a terminator")

    # -- control flow: relax.if / relax.while / relax.call -> scf.if / scf.while / func.call
    @contextmanager
    def _region(self, block: Block) -> Iterator[None]:
        """Emits into `block` (a region of an scf op being built): symbols
        bound and dims computed there stay there, and nothing is pooled."""
        saved = (self.block, dict(self.dims.env), dict(self.dims._memo), dict(self.dim_values))  # noqa: SLF001
        self.block = block
        self.region_depth += 1
        try:
            yield
        finally:
            self.block, self.dims.env, self.dims._memo, self.dim_values = saved  # noqa: SLF001
            self.region_depth -= 1

    def _handed_on(self, values: list[Value], types: list[Attribute], what: str) -> list[SSAValue]:
        """The memrefs a region yields (or a loop starts with): each one a
        buffer its block owns, cast to the declared type. Anything else (an
        outer value, a parameter, a constant, a pool slot, a view) is copied,
        so free-buffers frees each buffer exactly once on every path."""
        flat = [v for r in values for v in _flatten(r)]
        owned_here = {a for a in self.block.args}
        for o in self.block.ops:
            if isinstance(o, memref.AllocOp) and "relax.pool" not in o.attributes or \
                    isinstance(o, (scf.IfOp, scf.WhileOp, func.CallOp)):
                owned_here.update(o.results)
        out: list[SSAValue] = []
        for v, t in zip(flat, types):
            if v not in owned_here or v in out:
                copy = self._copy(v)
                v = copy
            out.append(self._checked_cast(v, t, f"{what} value {len(out)}"))
        return out

    def _own(self, results: Sequence[SSAValue]) -> None:
        """Buffers a control-flow op hands to the function body it lies in
        (returned without a copy when they are returned)."""
        if not self.region_depth:
            self.allocated.extend(results)

    def _bind_results(self, results: Sequence[SSAValue], types: Sequence[Attribute], what: str) -> list[Value]:
        """Binds the unbound symbols of the graph types from the lowered
        results (whichever branch or iteration produced them) and checks
        the rest; the results re-nested as the graph values."""
        flat = list(results)
        items, data = [], []
        for t in [x for ty in types for x in flatten_types(ty)]:
            v = flat.pop(0)
            if isinstance(t, TensorType):
                items.append((v, t, what))
            else:
                data.append((v, t))
        self._match(items)
        for v, t in data:
            self._match_data(v, t, what)  # type: ignore[arg-type]
        rest = list(results)
        return [_nest(ty, rest) for ty in types]

    def _if(self, op: IfOp) -> None:
        what = f"{self.label}: relax.if"
        cond = memref.LoadOp.get(self.env[op.cond], [])
        self.block.add_op(cond)
        types = [memref_type(t) for r in op.outs for t in flatten_types(r.type)]  # type: ignore[arg-type]
        blocks = []
        for region in (op.then_region, op.else_region):
            block = Block()
            with self._region(block):
                values = self._lower_block(region.block)
                block.add_op(scf.YieldOp(*self._handed_on(values, types, what)))
            blocks.append(block)
        if_op = scf.IfOp(cond.res, types, Region(blocks[0]), Region(blocks[1]))
        self.block.add_op(if_op)
        self._own(if_op.results)
        for r, v in zip(op.outs, self._bind_results(if_op.results, [r.type for r in op.outs], what)):
            self.env[r] = v

    def _while(self, op: WhileOp) -> None:
        what = f"{self.label}: relax.while"
        carried = [a.type for a in op.before.block.args]
        types = [memref_type(t) for c in carried for t in flatten_types(c)]  # type: ignore[arg-type]
        inits = [self.env[v] for v in op.inits]
        starts = []
        for v, t in zip([x for r in inits for x in _flatten(r)], types):  # the loop owns copies of its inputs
            copy = self._copy(v)
            starts.append(self._checked_cast(copy, t, f"{what} initial value {len(starts)}"))
        before, after = Block(arg_types=types), Block(arg_types=types)
        for block, region, kind in ((before, op.before, "before"), (after, op.after, "do")):
            with self._region(block):
                for arg, value in zip(region.block.args, self._bind_results(block.args, carried,
                                                                             f"{what} ({kind}) carried value")):
                    self.env[arg] = value
                values = self._lower_block(region.block)
                if kind == "before":
                    cond = memref.LoadOp.get(values[0], [])
                    block.add_op(cond)
                    block.add_op(scf.ConditionOp(cond.res, *self._handed_on(values[1:], types, f"{what} condition")))
                else:
                    block.add_op(scf.YieldOp(*self._handed_on(values, types, f"{what} body")))
        loop = scf.WhileOp(starts, types, Region(before), Region(after))
        names = ", ".join(f"%{r.name_hint}" for r in op.outs if r.name_hint)
        loop.attributes[WHILE_NAME_ATTR] = StringAttr(f"{what}{' (' + names + ')' if names else ''}")
        self.block.add_op(loop)
        self._own(loop.results)
        for r, v in zip(op.outs, self._bind_results(loop.results, [r.type for r in op.outs], what)):
            self.env[r] = v

    def _call_function(self, op: CallOp) -> None:
        """A call of another graph function's host function: arguments the
        callee writes in place are copied (values stay immutable), results
        are the caller's to free."""
        from relax_xdsl.aliasing import written_parameters

        callee = op.callee_function()
        name = callee.sym_name.data
        what = f"{self.label}: relax.call @{name.encode('ascii', 'backslashreplace').decode('ascii')}"
        params = [memref_type(t) for t in callee.function_type.inputs.data]  # type: ignore[arg-type]
        outs = [memref_type(t) for r in callee.function_type.outputs.data for t in flatten_types(r)]  # type: ignore[arg-type]
        written = set(written_parameters(callee))
        args = []
        for k, (v, t) in enumerate(zip(op.args, params)):
            value = self.env[v]
            if k in written:
                copy = self._copy(value)
                value = copy
            args.append(self._checked_cast(value, t, f"{what} argument {k}"))
        call = func.CallOp(name, args, outs)
        self.block.add_op(call)
        self._own(call.results)
        mine = [memref_type(t) for r in op.outs for t in flatten_types(r.type)]  # type: ignore[arg-type]
        results = []
        for k, (r, t) in enumerate(zip(call.results, mine)):
            cast = self._checked_cast(r, t, f"{what} result {k}")
            if cast is not r:
                self.root[cast] = r  # the same buffer (returned as it is, if it is returned)
            results.append(cast)
        for r, v in zip(op.outs, self._bind_results(results, [r.type for r in op.outs], what)):
            self.env[r] = v

    # -- memory planning: marks for plan-memory -----------------------------
    def _escaping(self) -> set[SSAValue]:
        """Graph values whose storage may be returned: followed back from the
        return through tuples, dataflow outputs, match_cast and views."""
        users: list[SSAValue] = []
        for op in self.fn.body.walk():
            if isinstance(op, ReturnOp):
                users.extend(op.values)
        out: set[SSAValue] = set()
        while users:
            v = users.pop()
            if v in out:
                continue
            out.add(v)
            owner = v.owner
            if isinstance(owner, TupleOp):
                users.extend(owner.fields)
            elif isinstance(owner, (GetItemOp, MatchCastOp, *_ALIASES)):
                users.extend(owner.operands)
            elif isinstance(owner, DataflowOp):
                term = owner.body.block.last_op
                assert isinstance(term, OutputOp)
                users.extend(term.values)
            elif isinstance(owner, CallTIROp) and self._is_view(owner):
                users.extend(owner.inputs)
            elif isinstance(owner, CallTIRInplaceOp):  # an in-place output is its input's buffer
                users.extend(owner.inputs[i] for k, i in owner.aliased() if owner.outs[k] is v)
        return out

    def _is_view(self, op: CallTIROp) -> bool:
        """A reshape-like program the host replaces by a view of its input."""
        callee = self.lowering.callee(op, op.callee)
        kind = callee.attributes.get("relax.op") if callee is not None else None
        return isinstance(kind, StringAttr) and kind.data in VIEW_OPS and len(op.inputs) == len(op.outs) == 1

    def _alloc(self, t: TensorType, what: str = "", value: SSAValue | None = None) -> SSAValue:
        """A buffer of type `t`; a dynamic size that could be negative (e.g.
        `h - 2` for a too-small input) is checked first, naming `what`."""
        mt = memref_type(t)
        sizes = []
        for i, d in enumerate(t.sym_shape):
            if d.is_Integer:
                continue
            size = self.dims.emit(d)
            if not d.is_nonnegative:
                ok = arith.CmpiOp(size, self.dims.const(0), "sge")
                self.block.add_op(ok)
                self.block.add_op(cf.AssertOp(ok, f"{self.label}: {what} result dim {i} ({dim_to_str(d)}) is negative: "
                                              "the input is too small for the op"))
            sizes.append(size)
        poolable = (value is not None and self.lowering.plan_memory and not self.region_depth
                    and value not in self.escaping
                    and all(s in self.pool_symbols for d in t.sym_shape for s in d.free_symbols))
        op = memref.AllocOp(sizes, [], mt, IntegerAttr(64, 64))
        if poolable:  # plan-memory gives it a slot of the pool
            op.attributes[BYTES_ATTR] = DimsAttr.of([canon(_product(t.sym_shape) * np_dtype(t.dtype).itemsize)])
        hint = what.rsplit("@", 1)[-1] if "@" in what else ""
        if hint.replace("_", "a").isalnum():
            op.memref.name_hint = f"{hint}_out"  # names the buffer in errors and generated code
        self.block.add_op(op)
        self.allocated.append(op.memref)
        return op.memref

    def _lower_op(self, op: Operation) -> None:
        if isinstance(op, ConstantOp):
            self.env[op.result] = self.lowering.global_for(op, self.block)
        elif isinstance(op, CallTIROp):
            self._call_tir(op)
        elif isinstance(op, CallTIRInplaceOp):
            self._call_tir_inplace(op)
        elif isinstance(op, LibCallOp):
            self._lib_call(op)
        elif isinstance(op, TupleOp):
            self.env[op.result] = [self.env[v] for v in op.fields]
        elif isinstance(op, GetItemOp):
            self.env[op.result] = self.env[op.tuple_value][op.index.data]
        elif isinstance(op, DataflowOp):
            outs = self._lower_block(op.body.block)
            for r, v in zip(op.outs, outs):
                self.env[r] = v
        elif isinstance(op, MatchCastOp):
            self._match_cast(op)
        elif isinstance(op, IfOp):
            self._if(op)
        elif isinstance(op, WhileOp):
            self._while(op)
        elif isinstance(op, CallOp):
            self._call_function(op)
        elif isinstance(op, ShapeOfOp):
            self.env[op.result] = self._shape_value(op.value.type.sym_shape)  # type: ignore[attr-defined]
        elif isinstance(op, MakeShapeOp):
            self.env[op.result] = self._shape_value(op.result.type.dims.data)
        elif isinstance(op, PrimValueOp):
            self.env[op.result] = self._prim_value(op.result.type)
        elif isinstance(op, (TensorToShapeOp, TensorToPrimOp)):
            named = f" (%{op.result.name_hint})" if op.result.name_hint else ""
            self._match_data(self.env[op.operands[0]], op.result.type, f"{self.label}: {op.name}{named}")
            self.env[op.result] = self.env[op.operands[0]]
        elif isinstance(op, (ShapeToTensorOp, PrimToTensorOp)):
            self.env[op.result] = self.env[op.operands[0]]
        elif isinstance(op, GraphOp):
            raise RelaxError(f"{self.label}: {op.name} is not legalized; run the legalize pass first")
        else:
            raise RelaxError(f"{self.label}: lower-graph cannot lower {op.name}")

    def _shape_value(self, dims: Sequence[sympy.Expr]) -> SSAValue:
        """A first-class shape: a memref of i64, one element per dim."""
        alloc = memref.AllocOp([], [], MemRefType(i64, [len(dims)]), IntegerAttr(64, 64))
        self.block.add_op(alloc)
        self.allocated.append(alloc.memref)
        for i, d in enumerate(dims):
            cast = arith.IndexCastOp(self.dims.emit(d), i64)
            self.block.add_op(cast)
            self.block.add_op(memref.StoreOp.get(cast.result, alloc.memref, [self.dims.const(i)]))
        return alloc.memref

    def _prim_value(self, t: PrimType) -> SSAValue:
        """A scalar of a dim expression: a 0-d memref."""
        assert t.sym_value is not None
        alloc = memref.AllocOp([], [], memref_type(t), IntegerAttr(64, 64))
        self.block.add_op(alloc)
        self.allocated.append(alloc.memref)
        value = arith.IndexCastOp(self.dims.emit(t.sym_value), i64)
        self.block.add_op(value)
        result = value.result
        if t.element_type != i64:
            trunc = arith.TruncIOp(result, t.element_type)
            self.block.add_op(trunc)
            result = trunc.result
        self.block.add_op(memref.StoreOp.get(result, alloc.memref, []))
        return alloc.memref

    def _call_tir(self, op: CallTIROp) -> None:
        callee = self.lowering.callee(op, op.callee)
        if isinstance(callee, PrimFuncOp):
            raise RelaxError(f"{self.label}: tensor program @{op.callee.root_reference.data} is not lowered; "
                             "run lower-tir before lower-graph")
        assert isinstance(callee, func.FuncOp)
        self._assert_divisors(op, f"relax.call_tir @{op.callee.root_reference.data}")
        if self._is_view(op):
            self.env[op.outs[0]] = self._view(op.inputs[0], op.outs[0].type, op)  # type: ignore[arg-type]
            return
        outs = [self._alloc(r.type, f"relax.call_tir @{op.callee.root_reference.data}", r)  # type: ignore[arg-type]
                for r in op.outs]
        syms = [self.dims.emit(d) for d in op.sym_args.data] if op.sym_args else []
        formal = callee.attributes.get("relax.buffers")
        if isinstance(formal, ArrayAttr):
            self._check_args(op, list(formal.data), f"relax.call_tir @{op.callee.root_reference.data}")
        args = [self.env[v] for v in op.inputs] + outs + syms
        self._call(callee.sym_name.data, list(callee.function_type.inputs.data), args)
        for r, v in zip(op.outs, outs):
            self.env[r] = v

    def _call_tir_inplace(self, op: CallTIRInplaceOp) -> None:
        """An in-place output IS its input's buffer: no alloc and no copy, and
        its lifetime (free, pool slot) follows that buffer. A parameter is
        written where the caller's array is (as TVM does; `_finish` still
        copies it when it is returned, so the caller owns every result); a
        constant is copied first, since its global serves every call."""
        callee = self.lowering.callee(op, op.callee)
        what = f"relax.call_tir_inplace @{op.callee.root_reference.data}"
        if isinstance(callee, PrimFuncOp):
            raise RelaxError(f"{self.label}: tensor program @{op.callee.root_reference.data} is not lowered; "
                             "run lower-tir before lower-graph")
        assert isinstance(callee, func.FuncOp)
        inputs = [self.env[v] for v in op.inputs]
        for k, i in op.aliased():
            value = inputs[i]
            if isinstance(self.root.get(value, value).owner, memref.GetGlobalOp):
                copy = self._alloc(op.inputs[i].type, what, op.outs[k])  # type: ignore[arg-type]
                self.block.add_op(memref.CopyOp(value, copy))
                inputs[i] = copy
        self._assert_divisors(op, what)  # type: ignore[arg-type]
        fresh = {k: self._alloc(op.outs[k].type, what, op.outs[k])  # type: ignore[arg-type]
                 for k, i in enumerate(op.indices) if i == -1}
        syms = [self.dims.emit(d) for d in op.sym_args.data] if op.sym_args else []
        formal = callee.attributes.get("relax.buffers")
        if isinstance(formal, ArrayAttr):
            self._check_args(op, list(formal.data), what, op.fresh_outputs())
        self._call(callee.sym_name.data, list(callee.function_type.inputs.data), [*inputs, *fresh.values(), *syms])
        for k, r in enumerate(op.outs):
            self.env[r] = fresh[k] if k in fresh else inputs[op.indices[k]]

    def _assert_divisors(self, op: CallTIROp | LibCallOp, what: str) -> None:
        """Symbols may be 0, so a result dim dividing by a symbolic dim
        (`(4*m) floordiv n`, from reshape's -1) is checked before it is used:
        a divisor of 0 is a ShapeError naming the call and the dim, not a
        size computed from a division by zero."""
        dims = [d for r in op.outs for d in r.type.sym_shape]  # type: ignore[attr-defined]
        dims += list(op.sym_args.data) if isinstance(op, CallTIROp) and op.sym_args else []
        seen: set[sympy.Expr] = set()
        for d in dims:
            for q in d.atoms(sympy.floor, sympy.ceiling, sympy.Mod):
                den = q.args[1] if isinstance(q, sympy.Mod) else sympy.fraction(sympy.together(q.args[0]))[1]
                if den.is_Integer or den.is_positive or den in seen:
                    continue
                seen.add(den)
                ok = arith.CmpiOp(self.dims.emit(den), self.dims.const(1), "sge")
                self.block.add_op(ok)
                self.block.add_op(cf.AssertOp(ok, f"{self.label}: {what}: result dim {dim_to_str(d)} divides by "
                                                  f"{dim_to_str(den)}, which must be >= 1"))

    def _view(self, src: SSAValue, t: TensorType, op: CallTIROp) -> SSAValue:
        """A reshape of dense row-major data is the same data seen with new
        dims: a memref.reinterpret_cast instead of a copy, after checking that
        the element counts agree (what the program would have checked)."""
        value = self.env[src]
        src_t = src.type
        assert isinstance(src_t, TensorType)
        total_in, total_out = _product(src_t.sym_shape), _product(t.sym_shape)
        if not dims_equal(total_in, total_out):
            ok = arith.CmpiOp(self.dims.emit(total_in), self.dims.emit(total_out), "eq")
            self.block.add_op(ok)
            self.block.add_op(cf.AssertOp(ok, f"{self.label}: relax.call_tir @{op.callee.root_reference.data}: "
                                              f"{dim_to_str(total_in)} elements cannot be viewed as "
                                              f"{dim_to_str(total_out)}"))
        sizes: list[SSAValue | int] = [int(d) if d.is_Integer else self.dims.emit(d) for d in t.sym_shape]
        strides: list[SSAValue | int] = []
        for i in range(t.ndim):
            stride = _product(t.sym_shape[i + 1:])
            strides.append(int(stride) if stride.is_Integer else self.dims.emit(stride))
        cast = memref.ReinterpretCastOp.from_dynamic(value, [0], sizes, strides, memref_type(t))
        self.block.add_op(cast)
        self.root[cast.result] = self.root.get(value, value)
        return cast.result

    def _check_args(self, op: CallTIROp | LibCallOp | CallTIRInplaceOp, formal: list[Attribute], what: str,
                    outs: Sequence[SSAValue] | None = None) -> None:
        """Checks what the callee's buffer types require of the arguments
        beyond what the caller's types prove (e.g. an `[m]` tensor passed for
        the program's `[n]` buffer: the assumption n == m of `[n] + [m]`).
        `outs`: the outputs the callee gets buffers for (default all)."""
        outs = list(op.outs) if outs is None else list(outs)
        actual = [v.type for v in op.inputs] + [r.type for r in outs]
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        for f, a in zip(formal, actual):
            for d, ad in zip(f.sym_shape, a.sym_shape):  # type: ignore[attr-defined]
                if d.is_Symbol and d not in mapping:
                    mapping[d] = ad
        for k, (f, a) in enumerate(zip(formal, actual)):
            role = f"input {k}" if k < len(op.inputs) else f"output {k - len(op.inputs)}"
            for i, (d, ad) in enumerate(zip(f.sym_shape, a.sym_shape)):  # type: ignore[attr-defined]
                if any(s not in mapping for s in d.free_symbols):
                    continue
                want = canon(d.xreplace(mapping))
                if dims_equal(want, ad):
                    continue
                ok = arith.CmpiOp(self.dims.emit(ad), self.dims.emit(want), "eq")
                self.block.add_op(ok)
                self.block.add_op(cf.AssertOp(ok, f"{self.label}: {what} {role} dim {i}: "
                                                  f"{dim_to_str(ad)} must equal {dim_to_str(want)}"))

    def _lib_call(self, op: LibCallOp) -> None:
        callee = self.lowering.callee(op, op.callee)
        assert isinstance(callee, LibFuncOp)
        self._assert_divisors(op, f"lib.call @{op.callee.root_reference.data}")
        outs = [self._alloc(r.type, f"lib.call @{op.callee.root_reference.data}", r)  # type: ignore[arg-type]
                for r in op.outs]
        self._check_args(op, callee.buffer_types(), f"lib.call @{callee.sym_name.data}")
        actual = [v.type for v in op.inputs] + [r.type for r in op.outs]
        dims = [self.dims.emit(d) for t in actual for d in t.sym_shape]  # type: ignore[attr-defined]
        args = [self.env[v] for v in op.inputs] + outs + dims
        decl = self.lowering.declare(callee)
        self._call(decl.sym_name.data, list(decl.function_type.inputs.data), args)
        for r, v in zip(op.outs, outs):
            self.env[r] = v

    def _match_cast(self, op: MatchCastOp) -> None:
        src, dst = op.value.type, op.result.type
        value = self.env[op.value]
        if isinstance(dst, (ShapeType, PrimType)):
            self._match_data(value, dst, f"{self.label}: relax.match_cast")
            self.env[op.result] = value
            return
        if not isinstance(dst, TensorType):
            raise RelaxError(f"{self.label}: lower-graph supports relax.match_cast on tensors, shapes and scalars")
        self._match([(value, dst, f"{self.label}: relax.match_cast")])
        if memref_type(src) != memref_type(dst):  # type: ignore[arg-type]
            cast = memref.CastOp.get(value, memref_type(dst))
            self.block.add_op(cast)
            self.root[cast.results[0]] = self.root.get(value, value)
            value = cast.results[0]
        self.env[op.result] = value

    def _finish(self, results: list[Value]) -> None:
        flat = [v for r in results for v in _flatten(r)]
        owned = set(self.allocated)
        returned: list[SSAValue] = []
        seen: set[SSAValue] = set()
        for v in flat:
            root = self.root.get(v)
            if root is not None and root in owned and root not in seen \
                    and sum(self.root.get(w, w) == root for w in flat) == 1:
                seen.add(root)  # a view (reshape) of a buffer nothing else returns: returned as it is
                returned.append(v)
                continue
            if v not in owned or v in seen:
                copy = self._copy(v)
                v = copy
            seen.add(v)
            returned.append(v)
        self.block.add_op(func.ReturnOp(*returned))

    def _copy(self, v: SSAValue) -> SSAValue:
        """A fresh buffer holding v's data."""
        copy = self._alloc_like(v)
        self.block.add_op(memref.CopyOp(v, copy))
        return copy

    def _alloc_like(self, v: SSAValue) -> SSAValue:
        mt = v.type
        assert isinstance(mt, MemRefType)
        sizes = [self._dim(v, i) for i, s in enumerate(mt.get_shape()) if s == DYNAMIC_INDEX]
        op = memref.AllocOp(sizes, [], mt, IntegerAttr(64, 64))
        self.block.add_op(op)
        return op.memref


class LowerGraph:
    """Module-level state: constant globals and library declarations."""

    def __init__(self, module: ModuleOp, plan_memory: bool = True):
        self.module = module
        self.plan_memory = plan_memory
        self.n_globals = 0
        self.declared: dict[str, func.FuncOp] = {}
        # the callees (tensor programs, library functions) by name: SymbolTable.lookup_symbol scans the
        # module on every call, which made lowering quadratic in the number of programs
        self.symbols: dict[str, Operation] = {}
        for o in module.body.ops:
            name = o.attributes.get("sym_name") or o.properties.get("sym_name")
            if isinstance(name, StringAttr):
                self.symbols.setdefault(name.data, o)

    def callee(self, op: Operation, ref: Any) -> Operation | None:
        """The module-level symbol `ref` (a call's callee) names."""
        name = ref.root_reference.data if isinstance(ref, SymbolRefAttr) and not ref.nested_references.data \
            else None
        return self.symbols.get(name) if name is not None else SymbolTable.lookup_symbol(op, ref)

    def global_for(self, op: ConstantOp, block: Block) -> SSAValue:
        t = op.result.type
        assert isinstance(t, TensorType)
        mt = memref_type(t)
        name = f"__constant_{self.n_globals}"
        self.n_globals += 1
        value: DenseIntOrFPElementsAttr = op.value
        glob = memref.GlobalOp.get(StringAttr(name), mt, value, StringAttr("private"), UnitAttr())
        self.module.body.block.insert_op_before(glob, self.module.body.block.first_op)  # type: ignore[arg-type]
        get = memref.GetGlobalOp(name, mt)
        block.add_op(get)
        return get.memref

    def declare(self, lib: LibFuncOp) -> func.FuncOp:
        """A private func.func for the library function (once per symbol)."""
        key = lib.sym_name.data
        if key not in self.declared:
            types = [memref_type(t) for t in lib.buffer_types()]
            n_dims = sum(t.ndim for t in lib.buffer_types())
            decl = func.FuncOp.external(lib.symbol.data, [*types, *([IndexType()] * n_dims)], [])
            decl.attributes["relax.library"] = lib.library
            decl.attributes["relax.reference"] = lib.reference or lib.symbol
            if lib.header:
                decl.attributes["relax.header"] = lib.header
            if lib.link:
                decl.attributes["relax.link"] = ArrayAttr(list(lib.link.data))
            self.declared[key] = decl
            self.module.body.block.add_op(decl)
        return self.declared[key]

    def run(self) -> None:
        graph_funcs = [op for op in self.module.body.ops if isinstance(op, FunctionOp)]
        hosts = [(fn, _HostBuilder(fn, self.module, self).run()) for fn in graph_funcs]
        for fn, host in hosts:
            self.module.body.block.insert_op_before(host, fn)
            fn.detach()
            fn.erase()
        for op in list(self.module.body.ops):
            if isinstance(op, LibFuncOp):
                op.detach()
                op.erase()


@dataclass(frozen=True)
class LowerGraphPass(ModulePass):
    """`lower-graph{plan-memory=false}` allocates every intermediate on its own."""

    name = "lower-graph"
    plan_memory: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        LowerGraph(op, self.plan_memory).run()
        FreeBuffersPass().apply(ctx, op)
        PlanMemoryPass().apply(ctx, op)  # pools what the lowering marked (nothing without plan-memory)
