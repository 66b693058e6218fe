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

from collections.abc import Iterator, Sequence
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
    MatchCastOp,
    OutputOp,
    ReturnOp,
    ShapeOfOp,
    TensorType,
    TupleOp,
)
from relax_xdsl.errors import RelaxError, ShapeError
from relax_xdsl.shape import Dim, shape_to_str

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


class FunctionBuilder:
    """Builds one `relax.function` (into a new module or a given one)."""

    def __init__(self, name: str = "main", module: ModuleOp | None = None):
        self.name = name
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
        self._check_open()
        if name in self._arg_names:
            raise RelaxError(f"parameter {name!r} is defined twice")
        if len(self._blocks) > 1:
            raise RelaxError("parameters must be declared before a dataflow block")
        self._arg_names.add(name)
        t = TensorType.of(shape, dtype)
        arg = self._entry.insert_arg(t, len(self._entry.args))
        if name.isidentifier():
            arg.name_hint = name
        return Var(self, arg, t)

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

    def match_cast(self, value: Var, shape: Sequence[Dim | str]) -> Var:
        """Asserts the value's shape at run time; new symbols in `shape` get bound."""
        t = value.type
        if not isinstance(t, TensorType):
            raise RelaxError("match_cast takes a tensor")
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
        self._entry.add_op(ReturnOp(*(v.value for v in values)))
        func = FunctionOp(self.name, self._entry.arg_types, [v.type for v in values], Region(self._entry))
        for existing in self.module.ops:
            if getattr(existing, "sym_name", None) is not None and existing.sym_name.data == self.name:
                raise RelaxError(f"the module already has a function named @{self.name}")
        self.module.body.block.add_op(func)
        self.function = func
        return func
