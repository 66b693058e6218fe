"""`legalize`: graph ops -> `relax.call_tir` to generated tensor programs.

Each graph op whose spec has a `legalize` method becomes a call to a
`tir.prim_func` written by that method in the structured compute form. One
program is generated per op, parameters and shape signature; ops that differ
only in the names of their symbols (`add` on `[n, 4]` and on `[m, 4]`) share
it. Symbols that no buffer dim binds on its own (`n` when the only dims are
`n + 1`) become the program's index parameters and the call's `[...]` args.

Everything else is left alone: hand-written tensor programs, library calls,
and ops not selected by `ops=` (partial legalization keeps a valid module).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from relax_xdsl.dialects.relax import CallTIROp, DimsAttr, FunctionOp, GraphOp, TensorType, TupleOp
from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TupleType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.traits import SymbolOpInterface

from relax_xdsl.errors import RelaxError
from relax_xdsl.ops.registry import OpSpec, all_specs
from relax_xdsl.shape import sym, symbols_in_order
from relax_xdsl.tir_builder import PrimFuncBuilder


def _result_types(op: GraphOp) -> list[TensorType]:
    t = op.res.type
    return list(t.types.data) if isinstance(t, TupleType) else [t]  # type: ignore[list-item]


def _bare_symbols(types: list[TensorType]) -> set[sympy.Symbol]:
    return {d for t in types for d in t.sym_shape if isinstance(d, sympy.Symbol)}


def _assume(spec: OpSpec, in_types: list[TensorType], params: dict[str, object],
            out_types: list[TensorType]) -> tuple[list[TensorType], list[tuple[sympy.Expr, sympy.Expr, str]]]:
    """The program's input buffer types: where the op's shape rule assumed two
    dims equal without proof (`[n] + [m]`), the input dim is replaced by the
    one the result uses, so the program checks the assumption at run time
    (it verifies every buffer dim on entry) instead of trusting it. The other
    assumptions (`n mod 2 == 0`) are returned, for explicit entry checks."""
    _, ctx = spec.run_infer(in_types, params)
    if not ctx.assumptions:
        return in_types, []
    out_dims = {d for t in out_types for d in t.sym_shape}
    in_dims = {d for t in in_types for d in t.sym_shape}
    subst: dict[sympy.Expr, sympy.Expr] = {}
    rest = []
    for a, b, what in ctx.assumptions:
        winner, loser = (b, a) if b in out_dims and a not in out_dims else (a, b)
        if loser in in_dims:
            subst[loser] = winner
        else:
            rest.append((a, b, what))
    return [TensorType.of([subst.get(d, d) for d in t.sym_shape], t.dtype) for t in in_types], rest


def _buffer_names(spec: OpSpec, n_in: int, n_out: int) -> list[str]:
    if spec.variadic:
        base = spec.inputs[0].lstrip("*")
        ins = [f"{base}{i}" for i in range(n_in)]
    else:
        ins = list(spec.inputs)
    outs = ["out"] if n_out == 1 else [f"out{i}" for i in range(n_out)]
    return ins + outs


@dataclass
class _Program:
    name: str
    syms: list[sympy.Expr]  # index parameters, over canonical symbols


@dataclass
class Legalizer:
    """Legalizes graph ops of one module, sharing programs between ops."""

    module: ModuleOp
    only: frozenset[str] = frozenset()
    programs: dict[str, _Program] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for op in self.module.body.ops:
            iface = op.get_trait(SymbolOpInterface)
            if iface is not None:
                self.names.add(iface.get_sym_attr_name(op).data)

    def run(self) -> None:
        specs = all_specs()
        unknown = sorted(self.only - specs.keys())
        if unknown:
            raise RelaxError(f"legalize: no graph op named {', '.join(unknown)}")
        for func in [op for op in self.module.body.ops if isinstance(op, FunctionOp)]:
            for op in list(func.walk()):
                if isinstance(op, GraphOp) and op.SPEC.can_legalize and (not self.only or op.SPEC.name in self.only):
                    self.legalize(op)

    def legalize(self, op: GraphOp) -> None:
        spec: OpSpec = op.SPEC
        params = spec.decode_params(dict(op.attributes))
        out_types = _result_types(op)
        in_types, checks = _assume(spec, [v.type for v in op.inputs], params, out_types)  # type: ignore[misc]
        types = in_types + out_types
        order = symbols_in_order(t.sym_shape for t in types)
        to_canon = {s: sym(f"s{i}") for i, s in enumerate(order)}
        from_canon = {c: s for s, c in to_canon.items()}
        key = "|".join([spec.name, str(sorted(op.attributes.items())),
                        *(str(TensorType.of([d.xreplace(to_canon) for d in t.sym_shape], t.dtype)) for t in types),
                        *(f"{a.xreplace(to_canon)}=={b.xreplace(to_canon)}" for a, b, _ in checks)])
        program = self.programs.get(key)
        if program is None:
            program = self._generate(spec, params, in_types, out_types, to_canon, checks)
            self.programs[key] = program
        sym_args = [e.xreplace(from_canon) for e in program.syms]
        call = CallTIROp(program.name, list(op.inputs), out_types, sym_args or None)
        if isinstance(op.res.type, TupleType):
            tup = TupleOp(*call.results)
            Rewriter.replace_op(op, [call, tup], [tup.results[0]])
        else:
            Rewriter.replace_op(op, call)

    def _generate(self, spec: OpSpec, params: dict[str, object], in_types: list[TensorType], out_types: list[TensorType],
                  to_canon: dict[sympy.Symbol, sympy.Symbol],
                  checks: list[tuple[sympy.Expr, sympy.Expr, str]]) -> _Program:
        types = in_types + out_types
        # symbols only in dim params or checks (a slice's begin `n` when its
        # output is [1, m]) are index args too
        dims = [d for k, p in spec.params.items() if p.kind == "dims" for d in params.get(k) or ()]
        shapes = [*(t.sym_shape for t in types), dims, [d for a, b, _ in checks for d in (a, b)]]
        free = [s for s in symbols_in_order(shapes) if s not in _bare_symbols(types)]
        name = self._fresh(spec.name)
        buffers = [(n, t.sym_shape, t.dtype) for n, t in zip(_buffer_names(spec, len(in_types), len(out_types)), types)]
        pb = PrimFuncBuilder(name, buffers, [str(s) for s in free])
        spec.legalize(pb, pb.params[: len(in_types)], pb.params[len(in_types):], **params)
        func = pb.finish()
        func.attributes["relax.op"] = StringAttr(spec.name)
        if checks:  # checked on entry by lower-tir
            func.attributes["relax.assume"] = DimsAttr.of([d for a, b, _ in checks for d in (a, b)])
            func.attributes["relax.assume_what"] = ArrayAttr([StringAttr(w) for _, _, w in checks])
        self._insert(func)
        return _Program(name, [s.xreplace(to_canon) for s in free])

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def _insert(self, func: Operation) -> None:
        self.module.body.block.add_op(func)


def legalize_module(module: ModuleOp, ops: tuple[str, ...] | list[str] = ()) -> ModuleOp:
    """Legalizes `module` in place (all ops, or only those named) and returns it."""
    Legalizer(module, frozenset(ops)).run()
    return module


@dataclass(frozen=True)
class LegalizePass(ModulePass):
    """legalize{ops=add,matmul}: graph ops -> call_tir (all ops by default)."""

    name = "legalize"
    ops: tuple[str, ...] = ()

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        legalize_module(op, self.ops)

