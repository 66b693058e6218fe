"""Symbolic dims as `arith` index arithmetic at the loop level.

`DimEmitter` turns a sympy dim into index SSA values over the values bound
to its symbols (each sub-expression emitted once), and binds symbols from
concrete dims (a bare symbol, or a dim linear in one unbound symbol).
Both `lower-tir` and `lower-graph` use it, so a dim means the same thing
in a kernel and in the host code that calls it.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr
from xdsl.ir import Operation, SSAValue

from relax_xdsl.errors import RelaxError
from relax_xdsl.shape import canon, dim_to_str

INDEX = IndexType()


class DimEmitter:
    """Emits index arithmetic through `insert(op)`; `env` maps symbols to
    their index values."""

    def __init__(self, insert: Callable[[Operation], None]):
        self.insert = insert
        self.env: dict[sympy.Symbol, SSAValue] = {}
        self._memo: dict[sympy.Expr, SSAValue] = {}

    def _op(self, op: Operation) -> SSAValue:
        self.insert(op)
        return op.results[0]

    def const(self, v: int) -> SSAValue:
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
        value = self._emit(e)
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
        rest = self._op(arith.SubiOp(value, self.emit(b))) if b != 0 else value
        solved = rest if a == 1 else self._op(arith.FloorDivSIOp(rest, self.const(int(a))))
        self.bind(s, solved)
        return True
