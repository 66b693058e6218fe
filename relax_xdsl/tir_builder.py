"""Writing tensor programs from Python (the structured compute form).

    pb = PrimFuncBuilder("add_one", [("a", ["n", 4], "float32"), ("c", ["n", 4], "float32")])
    a, c = pb.params
    pb.compute(c, lambda i, j: a[i, j] + 1.0)
    func = pb.finish()

Index and scalar values are `Expr`s whose operators emit `arith` / `math`
ops; `buffer[i, j]` emits `tir.load`. Legalizations of graph ops and user
tensor programs are both written with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import sympy
from xdsl.dialects import arith, scf
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    AnyFloat,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from relax_xdsl import dtypes
from relax_xdsl.dialects.tir import AllocOp, BufferType, ComputeOp, ForOp, LoadOp, PrimFuncOp, SymExprOp, YieldOp
from relax_xdsl.errors import RelaxError
from relax_xdsl.shape import Dim, canon

Scalar = "Expr | int | float | bool"
INDEX = IndexType()


class Expr:
    """A scalar SSA value being built (index, integer or float)."""

    def __init__(self, b: PrimFuncBuilder, value: SSAValue):
        self.b = b
        self.value = value

    @property
    def type(self) -> Attribute:
        return self.value.type

    @property
    def is_float(self) -> bool:
        return isinstance(self.type, AnyFloat)

    @property
    def is_unsigned(self) -> bool:
        return dtypes.is_unsigned(self.type)

    def _binary(self, other: Any, fop: type[Operation] | None, iop: type[Operation] | None, reverse: bool = False,
                uop: type[Operation] | None = None) -> Expr:
        """fop on floats, iop on integers, uop (when given) on unsigned ones."""
        o = self.b.lift(other, self.type)
        lhs, rhs = (o, self) if reverse else (self, o)
        cls = fop if self.is_float else uop if uop is not None and self.is_unsigned else iop
        if cls is None:
            raise RelaxError(f"operation not defined for {self.type}")
        return self.b.emit(cls(lhs.value, rhs.value))

    def __add__(self, o: Any) -> Expr:
        return self._binary(o, arith.AddfOp, arith.AddiOp)

    def __radd__(self, o: Any) -> Expr:
        return self._binary(o, arith.AddfOp, arith.AddiOp, True)

    def __sub__(self, o: Any) -> Expr:
        return self._binary(o, arith.SubfOp, arith.SubiOp)

    def __rsub__(self, o: Any) -> Expr:
        return self._binary(o, arith.SubfOp, arith.SubiOp, True)

    def __mul__(self, o: Any) -> Expr:
        return self._binary(o, arith.MulfOp, arith.MuliOp)

    def __rmul__(self, o: Any) -> Expr:
        return self._binary(o, arith.MulfOp, arith.MuliOp, True)

    def __truediv__(self, o: Any) -> Expr:
        return self._binary(o, arith.DivfOp, arith.DivSIOp, uop=arith.DivUIOp)

    def __rtruediv__(self, o: Any) -> Expr:
        return self._binary(o, arith.DivfOp, arith.DivSIOp, True, uop=arith.DivUIOp)

    def __floordiv__(self, o: Any) -> Expr:
        return self._binary(o, None, arith.FloorDivSIOp, uop=arith.DivUIOp)

    def __mod__(self, o: Any) -> Expr:
        return self._binary(o, None, arith.RemSIOp, uop=arith.RemUIOp)

    def __neg__(self) -> Expr:
        if self.is_float:
            return self.b.emit(arith.NegfOp(self.value))
        return self.b.lift(0, self.type) - self

    def _cmp(self, o: Any, fpred: str, ipred: str) -> Expr:
        other = self.b.lift(o, self.type)
        if self.is_float:
            return self.b.emit(arith.CmpfOp(self.value, other.value, fpred))
        if self.is_unsigned and ipred[0] == "s":
            ipred = "u" + ipred[1:]
        return self.b.emit(arith.CmpiOp(self.value, other.value, ipred))

    def __lt__(self, o: Any) -> Expr:
        return self._cmp(o, "olt", "slt")

    def __le__(self, o: Any) -> Expr:
        return self._cmp(o, "ole", "sle")

    def __gt__(self, o: Any) -> Expr:
        return self._cmp(o, "ogt", "sgt")

    def __ge__(self, o: Any) -> Expr:
        return self._cmp(o, "oge", "sge")

    def eq(self, o: Any) -> Expr:
        return self._cmp(o, "oeq", "eq")

    def ne(self, o: Any) -> Expr:
        return self._cmp(o, "une", "ne")

    def __and__(self, o: Any) -> Expr:
        return self.b.emit(arith.AndIOp(self.value, self.b.lift(o, self.type).value))

    def __or__(self, o: Any) -> Expr:
        return self.b.emit(arith.OrIOp(self.value, self.b.lift(o, self.type).value))


class Buffer:
    """A buffer parameter or local allocation; `buf[i, j]` loads."""

    def __init__(self, b: PrimFuncBuilder, value: SSAValue):
        self.b = b
        self.value = value

    @property
    def type(self) -> BufferType:
        return self.value.type  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[sympy.Expr, ...]:
        return self.type.sym_shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    def __getitem__(self, idx: Any) -> Expr:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != self.ndim:
            raise RelaxError(f"{len(idx)} indices for a buffer of rank {self.ndim}")
        return self.b.emit(LoadOp(self.value, [self.b.index(i).value for i in idx]))


class PrimFuncBuilder:
    """Builds one `tir.prim_func` in the structured compute form."""

    def __init__(self, name: str, buffers: Sequence[tuple[str, Sequence[Dim | str], str] | BufferType], syms: Sequence[str] = ()):
        types = [t if isinstance(t, BufferType) else BufferType.of(t[1], t[2]) for t in buffers]
        self.func = PrimFuncOp(name, types, list(syms))
        self._blocks: list[Block] = [self.func.body.block]
        self.params = [Buffer(self, a) for a in self.func.args]
        for a, t in zip(self.func.args, buffers):
            if not isinstance(t, BufferType) and t[0].isidentifier():
                a.name_hint = t[0]

    # -- emission ----------------------------------------------------------
    def emit(self, op: Operation) -> Expr:
        self._blocks[-1].add_op(op)
        return Expr(self, op.results[0]) if op.results else None  # type: ignore[return-value]

    def const(self, value: int | float | bool, type_: Attribute) -> Expr:
        if isinstance(type_, AnyFloat):
            return self.emit(arith.ConstantOp(FloatAttr(float(value), type_)))
        if isinstance(type_, IndexType):
            return self.emit(arith.ConstantOp(IntegerAttr(int(value), INDEX)))
        assert isinstance(type_, IntegerType)
        v = int(value)
        if type_.width.data == 1:
            v = -1 if v else 0
        if dtypes.is_unsigned(type_):  # arith.constant is signless: the same bits, bitcast
            w = type_.width.data
            v %= 1 << w
            bits = self.emit(arith.ConstantOp(IntegerAttr(v - (1 << w) if v >= 1 << (w - 1) else v, IntegerType(w))))
            return self.emit(arith.BitcastOp(bits.value, type_))
        return self.emit(arith.ConstantOp(IntegerAttr(v, type_)))

    def lift(self, value: Any, type_: Attribute) -> Expr:
        """A Python number as a constant of the given type; Exprs pass through."""
        if isinstance(value, Expr):
            if value.type != type_:
                raise RelaxError(f"type mismatch: {value.type} vs {type_}; use cast()")
            return value
        if isinstance(type_, IndexType):
            return self.index(value)
        return self.const(value, type_)

    def index(self, value: Any) -> Expr:
        """An index from an Expr, an int or a symbolic dim (tir.sym)."""
        if isinstance(value, Expr):
            if not isinstance(value.type, IndexType):
                raise RelaxError(f"index of type {value.type}; cast it to index")
            return value
        e = canon(value)
        if e.is_Integer:
            return self.const(int(e), INDEX)
        return self.emit(SymExprOp(e))

    # -- scalar helpers ------------------------------------------------------
    def cast(self, x: Expr, dtype: str | Attribute) -> Expr:
        """Converts between index, integer and float types (C semantics)."""
        dst = dtypes.to_xdsl(dtype) if isinstance(dtype, str) else dtype
        src = x.type
        if src == dst:
            return x
        sf, df = isinstance(src, AnyFloat), isinstance(dst, AnyFloat)
        if isinstance(src, IndexType) or isinstance(dst, IndexType):
            if x.is_unsigned and src.width.data == 64:  # type: ignore[union-attr]
                x = self.min(x, 2**63 - 1)  # index is signed 64-bit: saturate (an index this large is out of range)
            if df:
                return self.cast(self.cast(x, dtypes.to_xdsl("int64")), dst)
            if sf:
                return self.cast(self.cast(x, dtypes.to_xdsl("int64")), dst)
            return self.emit(arith.IndexCastOp(x.value, dst))
        if sf and df:
            op = arith.ExtFOp if dst.bitwidth > src.bitwidth else arith.TruncFOp  # type: ignore[union-attr]
            return self.emit(op(x.value, dst))
        if sf:
            if dst.width.data == 1:  # type: ignore[union-attr]
                return x.ne(0.0)
            return self.emit((arith.FPToUIOp if dtypes.is_unsigned(dst) else arith.FPToSIOp)(x.value, dst))
        if df:
            if src.width.data == 1 or x.is_unsigned:  # type: ignore[union-attr]
                return self.emit(arith.UIToFPOp(x.value, dst))
            return self.emit(arith.SIToFPOp(x.value, dst))
        sw, dw = src.width.data, dst.width.data  # type: ignore[union-attr]
        if dw == 1:
            return x.ne(0)
        if dw > sw:  # extended by the source's signedness (int8 -1 is uint32 4294967295, as numpy)
            return self.emit((arith.ExtUIOp if sw == 1 or x.is_unsigned else arith.ExtSIOp)(x.value, dst))
        if dw == sw:  # signedness only: the same bits
            return self.emit(arith.BitcastOp(x.value, dst))
        return self.emit(arith.TruncIOp(x.value, dst))

    def select(self, cond: Expr, a: Any, b: Any) -> Expr:
        t = a.type if isinstance(a, Expr) else b.type
        return self.emit(arith.SelectOp(cond.value, self.lift(a, t).value, self.lift(b, t).value))

    def max(self, a: Expr, b: Any) -> Expr:
        return a._binary(b, arith.MaximumfOp, arith.MaxSIOp, uop=arith.MaxUIOp)  # noqa: SLF001

    def min(self, a: Expr, b: Any) -> Expr:
        return a._binary(b, arith.MinimumfOp, arith.MinSIOp, uop=arith.MinUIOp)  # noqa: SLF001

    def math(self, name: str, *args: Expr) -> Expr:
        """A `math` dialect op by name: exp, log, sqrt, rsqrt, tanh, erf, absf, floor, ceil, powf, ..."""
        classes = {"exp": xmath.ExpOp, "log": xmath.LogOp, "sqrt": xmath.SqrtOp, "rsqrt": xmath.RsqrtOp,
                   "tanh": xmath.TanhOp, "erf": xmath.ErfOp, "absf": xmath.AbsFOp, "absi": xmath.AbsIOp,
                   "floor": xmath.FloorOp, "ceil": xmath.CeilOp, "powf": xmath.PowFOp,
                   "sin": xmath.SinOp, "cos": xmath.CosOp, "tan": xmath.TanOp, "asin": xmath.AsinOp,
                   "acos": xmath.AcosOp, "atan": xmath.AtanOp, "sinh": xmath.SinhOp, "cosh": xmath.CoshOp,
                   "asinh": xmath.AsinhOp, "acosh": xmath.AcoshOp, "atanh": xmath.AtanhOp,
                   "roundeven": xmath.RoundEvenOp}
        if name not in classes:
            raise RelaxError(f"unknown math function {name!r}")
        return self.emit(classes[name](*(a.value for a in args)))

    def if_then_else(self, cond: Expr, then: Callable[[], Expr], otherwise: Callable[[], Expr] | Any) -> Expr:
        """scf.if: evaluates only the taken branch (e.g. a padded load)."""
        then_block, else_block = Block(), Block()
        self._blocks.append(then_block)
        t = then()
        then_block.add_op(scf.YieldOp(t.value))
        self._blocks.pop()
        self._blocks.append(else_block)
        e = otherwise() if callable(otherwise) else self.lift(otherwise, t.type)
        else_block.add_op(scf.YieldOp(self.lift(e, t.type).value))
        self._blocks.pop()
        return self.emit(scf.IfOp(cond.value, [t.type], Region(then_block), Region(else_block)))

    def fold(self, extents: Sequence[Dim | str], init: Expr, step: Callable[..., Expr]) -> Expr:
        """An scf.for nest over [0, extent) each, carrying a value from `init`:
        acc = step(acc, *indices) at every point; returns the final value.
        (How a reduction is computed inline, e.g. in a fused consumer.)"""
        if not extents:
            return step(init)
        zero, one = self.index(0), self.index(1)
        body = Block(arg_types=[INDEX, init.type])
        self._blocks.append(body)
        try:
            iv, acc = Expr(self, body.args[0]), Expr(self, body.args[1])
            rest = list(extents[1:])
            new = self.fold(rest, acc, lambda a, *ivs: step(a, iv, *ivs)) if rest else step(acc, iv)
            body.add_op(scf.YieldOp(self.lift(new, init.type).value))
        finally:
            self._blocks.pop()
        loop = scf.ForOp(zero.value, self.index(extents[0]).value, one.value, [init.value], body)
        return self.emit(loop)

    def for_each(self, extents: Sequence[Dim | str], body: Callable[..., None], parallel_first: bool = False) -> None:
        """A tir.for nest over [0, extent) each, running body(*indices) for
        its effects (a check per index before a parallel compute, a scatter,
        a recurrence); serial, except the outermost loop when
        `parallel_first` (its iterations independent)."""
        if not extents:
            body()
            return
        zero, one, ub = self.index(0), self.index(1), self.index(extents[0])
        block = Block(arg_types=[INDEX])
        self._blocks.append(block)
        try:
            iv = Expr(self, block.args[0])
            rest = list(extents[1:])
            if rest:
                self.for_each(rest, lambda *ivs: body(iv, *ivs))
            else:
                body(iv)
        finally:
            self._blocks.pop()
        self.emit(ForOp(zero.value, ub.value, one.value, Region(block), "parallel" if parallel_first else "serial"))

    @staticmethod
    def identity(combiner: str, type_: Attribute) -> float | int:
        if isinstance(type_, AnyFloat):
            return {"add": 0.0, "mul": 1.0, "max": -math.inf, "min": math.inf}[combiner]
        w = type_.width.data  # type: ignore[attr-defined]
        if dtypes.is_unsigned(type_):
            return {"add": 0, "mul": 1, "max": 0, "min": 2**w - 1}[combiner]
        return {"add": 0, "mul": 1, "max": -(2 ** (w - 1)), "min": 2 ** (w - 1) - 1}[combiner]

    # -- structure -----------------------------------------------------------
    def alloc(self, shape: Sequence[Dim | str], dtype: str) -> Buffer:
        op = AllocOp(BufferType.of(shape, dtype))
        self.func.body.block.add_op(op)
        return Buffer(self, op.result)

    def compute(
        self,
        out: Buffer,
        body: Callable[..., Any],
        reduce: tuple[str, Sequence[Dim | str]] | None = None,
        epilogue: Callable[..., Any] | None = None,
        value_type: str | None = None,
    ) -> ComputeOp:
        """out[spatial] = body(spatial..., reduce...) combined over the
        reduce extents, then passed through epilogue(acc, spatial...).
        `value_type` is the accumulator dtype when it differs from out's."""
        nspatial = out.ndim
        nred = len(reduce[1]) if reduce else 0
        acc_t = dtypes.to_xdsl(value_type) if value_type else out.type.element_type
        block = Block(arg_types=[INDEX] * (nspatial + nred))
        self._blocks.append(block)
        try:
            v = body(*(Expr(self, a) for a in block.args))
            block.add_op(YieldOp(self.lift(v, acc_t).value))
        finally:
            self._blocks.pop()
        epi_region = None
        if epilogue is not None:
            eblock = Block(arg_types=[acc_t] + [INDEX] * nspatial)
            self._blocks.append(eblock)
            try:
                w = epilogue(*(Expr(self, a) for a in eblock.args))
                eblock.add_op(YieldOp(self.lift(w, out.type.element_type).value))
            finally:
                self._blocks.pop()
            epi_region = Region(eblock)
        op = ComputeOp(out.value, Region(block), reduce, epi_region)
        self._blocks[-1].add_op(op)
        return op

    def require_nonempty(self, dims: Sequence[Dim | str], what: str) -> None:
        """Dims that must be at least 1 when the program runs (a maximum over
        an empty axis has no value): recorded on the program as
        `relax.nonempty` and checked on entry by lower-tir, outside any
        parallel loop, on every target. Dims that are provably positive
        (integers, bare symbols) need no check."""
        from xdsl.dialects.builtin import ArrayAttr, StringAttr

        from relax_xdsl.dialects.relax import DimsAttr

        dims = [canon(d) for d in dims]
        dims = [d for d in dims if not (d.is_positive or (d.is_Integer and int(d) > 0))]
        if not dims:
            return
        old = self.func.attributes.get("relax.nonempty")
        texts = self.func.attributes.get("relax.nonempty_what")
        known = list(old.data) if isinstance(old, DimsAttr) else []
        whats = list(texts.data) if isinstance(texts, ArrayAttr) else []
        self.func.attributes["relax.nonempty"] = DimsAttr.of([*known, *dims])
        self.func.attributes["relax.nonempty_what"] = ArrayAttr([*whats, *(StringAttr(what) for _ in dims)])

    def finish(self) -> PrimFuncOp:
        return self.func
