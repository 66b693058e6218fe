"""Building graph functions from Python.

    with FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 784], "float32")
        y = op.relu(op.matmul(x, w))
        fb.ret(y)
    module = fb.module

Every op deduces its result type when it is emitted, so a provably wrong
shape is a ShapeError at the line that builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TupleType
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import (
    CallTIRInplaceOp,
    CallTIROp,
    ConstantOp,
    DataflowOp,
    FunctionOp,
    GetItemOp,
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
from relax_xdsl.errors import RelaxError, ShapeError
from relax_xdsl.shape import Dim, canon, dims_equal, free_symbols, shape_to_str, sym

_ACTIVE: list[FunctionBuilder] = []


class Var:
    """A graph value under construction: `.shape` (ints and sympy
    expressions), `.dtype` (numpy name), arithmetic operators emit ops."""

    def __init__(self, builder: FunctionBuilder, value: SSAValue | None, type_: Attribute):
        self.builder = builder
        self._value = value
        self.type = type_

    @property
    def value(self) -> SSAValue:
        if self._value is None:
            raise RelaxError("this dataflow output is defined when its `with fb.dataflow()` block ends; use it after")
        return self._value

    @property
    def shape(self) -> tuple[Dim, ...]:
        if not isinstance(self.type, TensorType):
            raise RelaxError(f"value of type {self.type} has no shape")
        return self.type.shape

    @property
    def dtype(self) -> str:
        if not isinstance(self.type, TensorType):
            raise RelaxError(f"value of type {self.type} has no dtype")
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def sym_value(self) -> tuple[Dim, ...] | Dim | None:
        """What a shape value holds (its dims) or a scalar's symbolic value (None when known only at run time)."""
        if isinstance(self.type, ShapeType):
            return tuple(self.type.dims.data)
        if isinstance(self.type, PrimType):
            return self.type.sym_value
        raise RelaxError(f"value of type {self.type} is not a shape or a scalar")

    def __repr__(self) -> str:
        if isinstance(self.type, TensorType):
            return f"Var({shape_to_str(self.type.sym_shape)}, {self.dtype})"
        return f"Var({self.type})"

    # Tuples: v[i] emits relax.get_item.
    def __getitem__(self, index: int) -> Var:
        if not isinstance(self.type, TupleType):
            raise RelaxError("only tuple values can be indexed; use op.strided_slice or op.take on tensors")
        n = len(self.type.types.data)
        if not -n <= index < n:
            raise IndexError(f"tuple index {index} out of range for a tuple of {n}")
        return self.builder.emit(GetItemOp(self.value, index % n))

    def __len__(self) -> int:
        if not isinstance(self.type, TupleType):
            raise RelaxError("only tuple values have a length")
        return len(self.type.types.data)

    def __iter__(self) -> Iterator[Var]:
        return (self[i] for i in range(len(self)))

    def _bin(self, name: str, other: Any, reverse: bool = False) -> Var:
        from relax_xdsl import op

        fn = getattr(op, name)
        return fn(other, self) if reverse else fn(self, other)

    def __add__(self, o: Any) -> Var:
        return self._bin("add", o)

    def __radd__(self, o: Any) -> Var:
        return self._bin("add", o, True)

    def __sub__(self, o: Any) -> Var:
        return self._bin("subtract", o)

    def __rsub__(self, o: Any) -> Var:
        return self._bin("subtract", o, True)

    def __mul__(self, o: Any) -> Var:
        return self._bin("multiply", o)

    def __rmul__(self, o: Any) -> Var:
        return self._bin("multiply", o, True)

    def __truediv__(self, o: Any) -> Var:
        return self._bin("divide", o)

    def __rtruediv__(self, o: Any) -> Var:
        return self._bin("divide", o, True)

    def __matmul__(self, o: Any) -> Var:
        return self._bin("matmul", o)

    def __neg__(self) -> Var:
        from relax_xdsl import op

        return op.negative(self)


def _dims_of(t: Attribute) -> tuple[Any, ...]:
    if isinstance(t, TensorType):
        return t.sym_shape
    if isinstance(t, ShapeType):
        return t.dims.data
    if isinstance(t, PrimType):
        return t.value.data
    return ()


def _with_dims(t: Attribute, dims: Sequence[Any]) -> Attribute:
    if isinstance(t, TensorType):
        return TensorType.of(dims, t.dtype)
    if isinstance(t, ShapeType):
        return ShapeType.of(dims)
    if isinstance(t, PrimType):
        return PrimType.of(t.dtype, dims[0] if dims else None)
    return t


class FunctionBuilder:
    """Builds one `relax.function` (into a new module or a given one)."""

    def __init__(self, name: str = "main", module: ModuleOp | None = None,
                 outputs: Sequence[Attribute] | None = None):
        """`outputs`: the result types, declared up front so that the body
        can `call` the function itself (recursion); `ret` checks them."""
        self.name = name
        self._declared_outputs = list(outputs) if outputs is not None else None
        self._handed_out: set[str] = set()  # fresh symbols given out, maybe not in the IR yet
        self.module = module if module is not None else ModuleOp([])
        self._entry = Block()
        self._blocks: list[Block] = [self._entry]
        self._outputs: list[tuple[Var, Var]] | None = None
        self._arg_names: set[str] = set()
        self.function: FunctionOp | None = None

    # -- context ---------------------------------------------------------
    def __enter__(self) -> FunctionBuilder:
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.remove(self)

    @staticmethod
    def current() -> FunctionBuilder:
        if not _ACTIVE:
            raise RelaxError("no active FunctionBuilder: use `with FunctionBuilder(...) as fb:`")
        return _ACTIVE[-1]

    def _check_open(self) -> None:
        if self.function is not None:
            raise RelaxError(f"function @{self.name} is finished (fb.ret was called)")

    # -- values ------------------------------------------------------------
    def param(self, name: str, shape: Sequence[Dim | str], dtype: object = "float32") -> Var:
        """A function parameter; its bare symbols are bound from the input's shape."""
        return self._new_param(name, TensorType.of(shape, dtype))

    def _new_param(self, name: str, t: Attribute) -> Var:
        self._check_open()
        if name in self._arg_names:
            raise RelaxError(f"parameter {name!r} is defined twice")
        if len(self._blocks) > 1:
            raise RelaxError("parameters must be declared before a dataflow block")
        self._arg_names.add(name)
        arg = self._entry.insert_arg(t, len(self._entry.args))
        if name.isidentifier():
            arg.name_hint = name
        return Var(self, arg, t)

    def shape_param(self, name: str, dims: Sequence[Dim | str]) -> Var:
        """A shape parameter (`!relax.shape<[...]>`): called with a sequence
        of ints, which bind its symbols as a tensor's dims would."""
        return self._new_param(name, ShapeType.of(dims))

    def prim_param(self, name: str, dtype: object = "int64", value: Dim | str | None = None) -> Var:
        """A scalar parameter (`!relax.prim<i64, t>`): called with a number;
        a symbolic `value` is bound from it."""
        return self._new_param(name, PrimType.of(dtype, value))

    # -- shape and scalar values -----------------------------------------
    def fresh_symbols(self, count: int, prefix: str = "s") -> list[Dim]:
        """`count` symbols no type of the module or of this function uses yet."""
        used: set[str] = set(self._handed_out)

        def visit(t: Attribute) -> None:
            if isinstance(t, TupleType):
                for e in t.types.data:
                    visit(e)
            elif isinstance(t, (TensorType, ShapeType, PrimType)):
                used.update(s.name for s in free_symbols(t.dims.data if not isinstance(t, PrimType)
                                                         else t.value.data))

        for block in [*self._blocks, *(op.body.block for op in self.module.ops if isinstance(op, FunctionOp))]:
            for a in block.args:
                visit(a.type)
            for op in block.walk():
                for r in op.results:
                    visit(r.type)
                for region in op.regions:
                    for inner in region.blocks:
                        for a in inner.args:
                            visit(a.type)
        out: list[Dim] = []
        k = 0
        while len(out) < count:
            if f"{prefix}{k}" not in used:
                out.append(sym(f"{prefix}{k}"))
                self._handed_out.add(f"{prefix}{k}")
            k += 1
        return out

    def make_shape(self, dims: Sequence[Dim | str]) -> Var:
        """The shape value of dims over bound symbols."""
        return self.emit(MakeShapeOp(dims))

    def shape_to_tensor(self, shape: Var) -> Var:
        """A shape value as an int64 [k] tensor: sizes become data."""
        if not isinstance(shape.type, ShapeType):
            raise RelaxError(f"shape_to_tensor takes a shape value, not {shape.type}")
        return self.emit(ShapeToTensorOp(shape.value))

    def tensor_to_shape(self, tensor: Var, dims: Sequence[Dim | str] | None = None) -> Var:
        """An int64 [k] tensor as a shape value: data becomes sizes. `dims`
        (fresh symbols by default) are bound or checked at run time."""
        t = tensor.type
        if not isinstance(t, TensorType) or t.dtype != "int64" or t.ndim != 1 or not t.sym_shape[0].is_Integer:
            raise RelaxError(f"tensor_to_shape takes an int64 tensor of static length, not {t}")
        k = int(t.sym_shape[0])
        dims = self.fresh_symbols(k) if dims is None else list(dims)
        if len(dims) != k:
            raise ShapeError(f"tensor_to_shape of a [{k}] tensor to {len(dims)} dims")
        return self.emit(TensorToShapeOp(tensor.value, dims))

    def prim_value(self, value: Dim | str, dtype: object = "int64") -> Var:
        """The scalar of a dim expression over bound symbols."""
        return self.emit(PrimValueOp(value, dtype))

    def prim_to_tensor(self, prim: Var) -> Var:
        """A scalar as a 0-d tensor."""
        if not isinstance(prim.type, PrimType):
            raise RelaxError(f"prim_to_tensor takes a scalar value, not {prim.type}")
        return self.emit(PrimToTensorOp(prim.value))

    def tensor_to_prim(self, tensor: Var, value: Dim | str | None = None) -> Var:
        """A 0-d tensor as a scalar; a symbolic `value` is bound or checked at run time."""
        t = tensor.type
        if not isinstance(t, TensorType) or t.ndim != 0:
            raise RelaxError(f"tensor_to_prim takes a 0-d tensor, not {t}")
        return self.emit(TensorToPrimOp(tensor.value, value))

    def emit(self, op: Operation) -> Var:
        """Appends an op to the current block; returns its (first) result."""
        self._check_open()
        self._blocks[-1].add_op(op)
        return Var(self, op.results[0], op.results[0].type) if len(op.results) == 1 else \
            tuple(Var(self, r, r.type) for r in op.results)  # type: ignore[return-value]

    def const(self, value: Any, dtype: object | None = None) -> Var:
        """A constant tensor (weights print as hex dense data)."""
        array = np.asarray(value, dtype=None if dtype is None else dtypes.dtype_name(dtype))
        if array.dtype == np.float64 and dtype is None:
            array = array.astype(np.float32)
        if array.dtype.name not in dtypes.DTYPES:
            array = array.astype(np.int64) if array.dtype.kind in "iu" else array
        return self.emit(ConstantOp.from_array(array))

    def match_cast(self, value: Var, shape: Sequence[Dim | str] | Dim | str) -> Var:
        """Asserts the value's shape at run time; new symbols in `shape` get
        bound. For a shape value `shape` gives the dims it holds, for an
        integer scalar its value."""
        t = value.type
        if isinstance(t, PrimType):
            return self.emit(MatchCastOp(value.value, PrimType.of(t.dtype, shape)))  # type: ignore[arg-type]
        if isinstance(t, ShapeType):
            if len(shape) != len(t.dims.data):  # type: ignore[arg-type]
                raise ShapeError(f"match_cast of a shape of {len(t.dims.data)} dims to {len(shape)}")  # type: ignore[arg-type]
            return self.emit(MatchCastOp(value.value, ShapeType.of(shape)))  # type: ignore[arg-type]
        if not isinstance(t, TensorType):
            raise RelaxError("match_cast takes a tensor, a shape or a scalar")
        if len(shape) != t.ndim:
            raise ShapeError(f"match_cast to rank {len(shape)} of a rank-{t.ndim} tensor")
        return self.emit(MatchCastOp(value.value, TensorType.of(shape, t.dtype)))

    def shape_of(self, value: Var) -> Var:
        return self.emit(ShapeOfOp(value.value))

    def tuple(self, *values: Var) -> Var:
        return self.emit(TupleOp(*(v.value for v in values)))

    def call_tir(self, callee: str, args: Sequence[Var], out: TensorType | Sequence[TensorType],
                 sym_args: Sequence[Dim | str] | None = None) -> Var:
        """Calls a tensor program of the module in destination-passing style."""
        outs = [out] if isinstance(out, TensorType) else list(out)
        return self.emit(CallTIROp(callee, [a.value for a in args], outs, sym_args))

    def call_tir_inplace(self, callee: str, args: Sequence[Var], inplace_indices: int | Sequence[int],
                         out: TensorType | Sequence[TensorType] | None = None,
                         sym_args: Sequence[Dim | str] | None = None) -> Var:
        """Calls a tensor program that writes output k into input
        `inplace_indices[k]` (-1: a fresh output, passed to the program after
        the inputs); `out` defaults to the aliased inputs' types. The aliased
        inputs must not be used afterwards (relax.call_tir_inplace)."""
        indices = [inplace_indices] if isinstance(inplace_indices, int) else list(inplace_indices)
        if out is None:
            if -1 in indices or any(not 0 <= i < len(args) for i in indices):
                raise RelaxError(f"call_tir_inplace @{callee}: give `out` when an output is fresh (-1) "
                                 f"or an index is not an input's position (inplace_indices {indices})")
            outs = [args[i].type for i in indices]
        else:
            outs = [out] if isinstance(out, TensorType) else list(out)
        return self.emit(CallTIRInplaceOp(callee, [a.value for a in args], outs, indices, sym_args))

    def call_lib(self, callee: str, args: Sequence[Var], out: TensorType | Sequence[TensorType]) -> Var:
        """Calls a library function (lib.func) of the module in destination-passing style."""
        from relax_xdsl.dialects.lib import LibCallOp

        outs = [out] if isinstance(out, TensorType) else list(out)
        return self.emit(LibCallOp(callee, [a.value for a in args], outs))

    # -- control flow ------------------------------------------------------
    def _region(self, fn: Callable[..., Any], arg_types: Sequence[Attribute] = ()) -> tuple[Block, list[Var]]:
        """Runs `fn` on the block arguments with ops emitted into a new block;
        the values it returns (one or a sequence)."""
        self._check_open()
        block = Block(arg_types=arg_types)
        self._blocks.append(block)
        try:
            outs = fn(*(Var(self, a, a.type) for a in block.args))
        finally:
            self._blocks.pop()
        values = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if not all(isinstance(v, Var) for v in values):
            raise RelaxError("a control-flow region must return graph values (Var)")
        return block, values

    def result_types(self, fn: Callable[..., Any], arg_types: Sequence[Attribute] = ()) -> list[Attribute]:
        """The types of the values `fn` returns on block arguments of
        `arg_types`, its ops emitted into a scratch block that is then erased:
        what a loop body gives, known before the loop's carried types must be
        (an ONNX body whose outputs state no type)."""
        block, values = self._region(fn, arg_types)
        types = [v.type for v in values]
        block.erase(safe_erase=False)
        return types

    def if_(self, cond: Var, then: Callable[[], Any], otherwise: Callable[[], Any]) -> Var | tuple[Var, ...]:
        """`relax.if`: `then()` / `otherwise()` emit each branch and return its
        values; each result's type is the most precise type of both (a dim
        the branches disagree on becomes a fresh symbol)."""
        from relax_xdsl.dialects.relax_control_flow import IfOp, YieldOp

        t = cond.type
        if not isinstance(t, TensorType) or t.ndim != 0 or t.dtype != "bool":
            raise RelaxError(f"if_ takes a 0-d bool tensor as its condition, not {t}")
        then_block, then_values = self._region(then)
        else_block, else_values = self._region(otherwise)
        if len(then_values) != len(else_values):
            raise RelaxError(f"if_: the branches give {len(then_values)} and {len(else_values)} values")
        then_block.add_op(YieldOp(*(v.value for v in then_values)))
        else_block.add_op(YieldOp(*(v.value for v in else_values)))
        types = [self._join(a.type, b.type, f"if_ result {k}") for k, (a, b) in enumerate(zip(then_values, else_values))]
        return self.emit(IfOp(cond.value, types, Region(then_block), Region(else_block)))

    def while_(self, inits: Sequence[Var], cond: Callable[..., Var], body: Callable[..., Any],
               carried: Sequence[Attribute] | None = None) -> Var | tuple[Var, ...]:
        """`relax.while`: while `cond(*values)` (a 0-d bool) holds, `values =
        body(*values)`; the final values. The carried types default to the
        initial values' types with every symbolic dim a fresh symbol (bound
        afresh each iteration); give `carried` when a static dim changes."""
        from relax_xdsl.dialects.relax_control_flow import ConditionOp, WhileOp, YieldOp

        types = list(carried) if carried is not None else [self.generalize(v.type) for v in inits]
        before, (c, *_) = self._region(lambda *vals: [cond(*vals)], types)
        before.add_op(ConditionOp(c.value, *before.args))
        after, new_values = self._region(body, types)
        after.add_op(YieldOp(*(v.value for v in new_values)))
        results = [self.generalize(t) for t in types]
        return self.emit(WhileOp([v.value for v in inits], results, Region(before), Region(after)))

    def call(self, callee: str, *args: Var) -> Var | tuple[Var, ...]:
        """`relax.call` of another relax.function of the module (built before
        or after this one: recursion included). Result dims the arguments
        determine are expressions in the caller's symbols, the rest fresh."""
        from relax_xdsl.dialects.relax_control_flow import CallOp

        target = next((op for op in self.module.ops if isinstance(op, FunctionOp) and op.sym_name.data == callee),
                      None)
        if target is not None:
            inputs, outputs = list(target.function_type.inputs.data), list(target.function_type.outputs.data)
        elif callee == self.name and self._declared_outputs is not None:
            inputs, outputs = list(self._entry.arg_types), list(self._declared_outputs)
        else:
            raise RelaxError(f"call: no relax.function @{callee} in the module (to recurse, give "
                             "FunctionBuilder(..., outputs=[...]) the result types first)")
        if len(inputs) != len(args):
            raise RelaxError(f"call @{callee}: {len(args)} arguments, the function takes {len(inputs)}")
        mapping: dict[Any, Any] = {}
        for p, a in zip(inputs, args):
            for d, ad in zip(_dims_of(p), _dims_of(a.type)):
                if d.is_Symbol and d not in mapping:
                    mapping[d] = ad
        results = [self._substitute(t, mapping) for t in outputs]
        return self.emit(CallOp(callee, [a.value for a in args], results))

    def _join(self, a: Attribute, b: Attribute, what: str) -> Attribute:
        from relax_xdsl.dialects.relax_control_flow import compatible

        why = compatible(a, b)
        if why:
            raise RelaxError(f"{what}: the values cannot join: {why}")
        if isinstance(a, TupleType):
            return TupleType(tuple(self._join(x, y, what) for x, y in zip(a.types.data, b.types.data)))
        da, db = _dims_of(a), _dims_of(b)
        dims = [x if dims_equal(x, y) else self.fresh_symbols(1)[0] for x, y in zip(da, db)]
        return _with_dims(a, dims)

    def generalize(self, t: Attribute) -> Attribute:
        """`t` with every symbolic dim a fresh symbol (a loop-carried type)."""
        if isinstance(t, TupleType):
            return TupleType(tuple(self.generalize(e) for e in t.types.data))
        dims = [d if d.is_Integer else self.fresh_symbols(1)[0] for d in _dims_of(t)]
        return _with_dims(t, dims)

    def _substitute(self, t: Attribute, mapping: dict[Any, Any]) -> Attribute:
        if isinstance(t, TupleType):
            return TupleType(tuple(self._substitute(e, mapping) for e in t.types.data))
        dims = []
        for d in _dims_of(t):
            if d.free_symbols <= set(mapping):
                dims.append(canon(d.xreplace(mapping)))
            else:
                dims.append(self.fresh_symbols(1)[0])
        return _with_dims(t, dims)

    # -- dataflow blocks ---------------------------------------------------
    @contextmanager
    def dataflow(self) -> Iterator[FunctionBuilder]:
        """Ops emitted inside go to a relax.dataflow region; mark what is
        used after it with `fb.output(v)`."""
        self._check_open()
        if len(self._blocks) > 1:
            raise RelaxError("dataflow blocks do not nest")
        block = Block()
        self._blocks.append(block)
        self._outputs = []
        try:
            yield self
        finally:
            self._blocks.pop()
            outputs, self._outputs = self._outputs, None
        block.add_op(OutputOp(*(inner.value for inner, _ in outputs)))
        op = DataflowOp(Region(block), [inner.type for inner, _ in outputs])
        self._blocks[-1].add_op(op)
        for (_, outer), res in zip(outputs, op.outs):
            outer._value = res  # noqa: SLF001

    def output(self, *values: Var) -> Var | tuple[Var, ...]:
        """Makes dataflow values visible after the dataflow block."""
        if self._outputs is None:
            raise RelaxError("fb.output is only valid inside `with fb.dataflow():`")
        outs = []
        for v in values:
            outer = Var(self, None, v.type)
            self._outputs.append((v, outer))
            outs.append(outer)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def add_func(self, func: Operation) -> str:
        """Adds a tensor program (tir.prim_func) or library declaration
        (lib.func) to the module, for call_tir / call_lib; returns its name."""
        name = func.sym_name.data  # type: ignore[attr-defined]
        for existing in self.module.ops:
            if getattr(existing, "sym_name", None) is not None and existing.sym_name.data == name:
                raise RelaxError(f"the module already has a function named @{name}")
        self.module.body.block.add_op(func)
        return name

    # -- finishing ---------------------------------------------------------
    def ret(self, *values: Var) -> FunctionOp:
        """Returns the values and adds the finished function to the module."""
        self._check_open()
        if len(self._blocks) > 1:
            raise RelaxError("fb.ret inside a dataflow block; return after it")
        if not values:
            raise RelaxError("a relax.function returns at least one value")
        types = [v.type for v in values]
        if self._declared_outputs is not None:
            from relax_xdsl.dialects.relax_control_flow import compatible

            if len(types) != len(self._declared_outputs):
                raise RelaxError(f"@{self.name} declares {len(self._declared_outputs)} results, returns {len(types)}")
            for k, (got, want) in enumerate(zip(types, self._declared_outputs)):
                why = compatible(got, want)
                if why:
                    raise RelaxError(f"@{self.name} result {k}: {why}")
                if got != want:  # a declared type is a promise checked at run time
                    values = tuple(self.emit(MatchCastOp(v.value, w)) if v.type != w else v
                                   for v, w in zip(values, self._declared_outputs))
                    break
            types = list(self._declared_outputs)
        self._entry.add_op(ReturnOp(*(v.value for v in values)))
        func = FunctionOp(self.name, self._entry.arg_types, types, Region(self._entry))
        for existing in self.module.ops:
            if getattr(existing, "sym_name", None) is not None and existing.sym_name.data == self.name:
                raise RelaxError(f"the module already has a function named @{self.name}")
        self.module.body.block.add_op(func)
        self.function = func
        return func
