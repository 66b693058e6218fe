"""Symbolic dims as `arith` index arithmetic at the loop level.

`DimEmitter` turns a sympy dim into index SSA values over the values bound
to its symbols (each sub-expression emitted once), and binds symbols from
concrete dims (a bare symbol, or a dim linear in one unbound symbol).
Both `lower-tir` and `lower-graph` use it, so a dim means the same thing
in a kernel and in the host code that calls it.

Host code computes sizes and pool offsets from caller-given dims, so there
its additions, subtractions and multiplications are *checked*: each carries
CHECKED_ATTR (the error message), and the C target and the interpreter raise
it (a ResourceLimitError) where the 64-bit result would overflow. Kernels'
index arithmetic stays plain: their sizes were computed, checked, by the
host that calls them.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, StringAttr
from xdsl.ir import Operation, SSAValue

from relax_xdsl.errors import RelaxError, ResourceLimitError
from relax_xdsl.shape import canon, dim_to_str

INDEX = IndexType()

CHECKED_ATTR = "relax.checked"
"""On an index `arith.addi/subi/muli`: the message of the error raised when
its result overflows 64 bits (it names the function and the size computed;
it says "allocation limit" so every target words it as ResourceLimitError)."""

_CHECKED_OPS = (arith.AddiOp, arith.SubiOp, arith.MuliOp)


class DimEmitter:
    """Emits index arithmetic through `insert(op)`; `env` maps symbols to
    their index values. With `checked` (the function's name, `@main`), the
    additions, subtractions and multiplications are checked (CHECKED_ATTR)
    and a constant outside 64 bits is a ResourceLimitError here."""

    def __init__(self, insert: Callable[[Operation], None], checked: str | None = None):
        self.insert = insert
        self.checked = checked
        self.env: dict[sympy.Symbol, SSAValue] = {}
        self._memo: dict[sympy.Expr, SSAValue] = {}
        self._expr: sympy.Expr | None = None  # the dim being emitted, named by overflow messages
        self._messages: dict[sympy.Expr | None, StringAttr] = {}

    def _op(self, op: Operation) -> SSAValue:
        if self.checked is not None and isinstance(op, _CHECKED_OPS):
            op.attributes[CHECKED_ATTR] = self._message(self._expr)
            lhs = op.operands[0].owner
            if isinstance(lhs, arith.ConstantOp) and not isinstance(op, arith.SubiOp):
                op.operands = (op.operands[1], op.operands[0])  # canonicalize swaps it, dropping the attribute
        self.insert(op)
        return op.results[0]

    def _message(self, e: sympy.Expr | None) -> StringAttr:
        """The overflow message of the ops computing `e`, built once per dim
        (printing a large sum costs milliseconds, and a long chain emits
        thousands of checked ops); a dim over many symbols is named by them."""
        if e not in self._messages:
            if e is None:
                what = "a size"
            elif len(e.free_symbols) <= 6:
                what = dim_to_str(e)
            else:
                names = sorted(str(x) for x in e.free_symbols)
                what = f"a size over {', '.join(names[:6])}, ... ({len(names)} symbols)"
            self._messages[e] = StringAttr(
                f"{self.checked}: computing {what} overflows 64-bit integers (allocation limit exceeded)")
        return self._messages[e]

    def const(self, v: int) -> SSAValue:
        if self.checked is not None and not -(2**63) <= v < 2**63:
            raise ResourceLimitError(f"{self.checked}: the size {v} does not fit 64-bit integers")
        key = sympy.Integer(v)
        if key not in self._memo:
            self._memo[key] = self._op(arith.ConstantOp(IntegerAttr(v, INDEX)))
        return self._memo[key]

    def bind(self, s: sympy.Symbol, value: SSAValue) -> None:
        self.env[s] = value
        self._memo[s] = value

    def emit(self, d: object) -> SSAValue:
        """The index value of a dim whose symbols are all bound."""
        e = canon(d)  # type: ignore[arg-type]
        if e in self._memo:
            return self._memo[e]
        outer, self._expr = self._expr, e if self._expr is None else self._expr
        try:
            value = self._emit(e)
        finally:
            self._expr = outer
        self._memo[e] = value
        return value

    def _emit(self, e: sympy.Expr) -> SSAValue:
        if e.is_Integer:
            return self.const(int(e))
        if e.is_Symbol:
            raise RelaxError(f"symbol {e} is not bound here")
        if isinstance(e, sympy.Add):
            terms = list(e.as_ordered_terms())
            acc = self.emit(terms[0])
            for t in terms[1:]:
                coeff, rest = t.as_coeff_Mul()
                if coeff.is_negative:
                    acc = self._op(arith.SubiOp(acc, self.emit(-t)))
                else:
                    acc = self._op(arith.AddiOp(acc, self.emit(t)))
            return acc
        if isinstance(e, sympy.Mul):
            coeff, rest = e.as_coeff_Mul()
            if not coeff.is_Integer:
                raise RelaxError(f"dim {e} is not an integer expression")
            factors = list(sympy.Mul.make_args(rest))
            acc = self.emit(factors[0])
            for f in factors[1:]:
                acc = self._op(arith.MuliOp(acc, self.emit(f)))
            if coeff != 1:
                acc = self._op(arith.MuliOp(self.const(int(coeff)), acc))
            return acc
        if isinstance(e, sympy.Pow) and e.exp.is_Integer and e.exp > 0:
            base = self.emit(e.base)
            acc = base
            for _ in range(int(e.exp) - 1):
                acc = self._op(arith.MuliOp(acc, base))
            return acc
        if isinstance(e, (sympy.floor, sympy.ceiling)):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            cls = arith.FloorDivSIOp if isinstance(e, sympy.floor) else arith.CeilDivSIOp
            return self._op(cls(self.emit(num), self.emit(den)))
        if isinstance(e, sympy.Mod):
            return self._op(arith.RemSIOp(self.emit(e.args[0]), self.emit(e.args[1])))
        if isinstance(e, (sympy.Min, sympy.Max)):
            cls = arith.MinSIOp if isinstance(e, sympy.Min) else arith.MaxSIOp
            args = sorted(e.args, key=sympy.default_sort_key)
            acc = self.emit(args[0])
            for a in args[1:]:
                acc = self._op(cls(acc, self.emit(a)))
            return acc
        raise RelaxError(f"dim {dim_to_str(e)} cannot be computed at run time")

    def try_bind(self, d: object, value: SSAValue) -> bool:
        """Binds the one unbound symbol of `d` from its concrete value when
        `d` is a bare symbol or linear in it (`2*n + 1` -> n = (v - 1) floordiv 2).
        The caller checks the dim afterwards."""
        e = canon(d)  # type: ignore[arg-type]
        unbound = [s for s in e.free_symbols if s not in self.env]
        if len(unbound) != 1:
            return False
        s = unbound[0]
        if e == s:
            self.bind(s, value)
            return True
        if not e.is_polynomial(s):
            return False
        poly = sympy.Poly(e, s)
        if poly.degree() != 1:
            return False
        a, b = poly.all_coeffs()
        if not a.is_Integer or a <= 0 or b.free_symbols - set(self.env):
            return False
        offset = self.emit(b) if b != 0 else None
        outer, self._expr = self._expr, e
        try:
            rest = self._op(arith.SubiOp(value, offset)) if offset is not None else value
        finally:
            self._expr = outer
        solved = rest if a == 1 else self._op(arith.FloorDivSIOp(rest, self.const(int(a))))
        self.bind(s, solved)
        return True
