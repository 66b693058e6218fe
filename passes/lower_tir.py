"""`lower-tir`: tensor programs -> the loop level (func/scf/memref/arith/math/cf).

`tir.prim_func @f(%a: !tir.buffer<[n, 4], f32>, ...) syms [k]` becomes
`func.func @f(%a: memref<?x4xf32>, ..., %k: index)`:
- each symbol is bound once at entry (`memref.dim` of the first buffer dim
  where it is bare, or the trailing index args); every other dim is checked
  with `cf.assert` naming program, buffer, dim and expected expression, so a
  kernel stays in bounds whatever its caller passes;
- `tir.compute` -> an `scf.for` nest: spatial axes outer, reduction axes
  inner with the accumulator carried in `iter_args` from the combiner's
  identity, then the epilogue, then `memref.store`;
- `tir.for` -> `scf.for` (serial), `scf.parallel` (parallel), or `scf.for`
  tagged `{relax.loop = "vectorize" | "unroll"}`;
- `tir.load/store/alloc/sym` -> `memref.load/store/alloc(+dealloc)`, index arithmetic
  (a small static `tir.alloc` inside a loop -> `memref.alloca`).

Everything else in the module is left as it is (partial lowering).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from relax_xdsl.dialects.relax import DimsAttr
from relax_xdsl.dialects.tir import AllocOp, ComputeOp, ForOp, LoadOp, PrimFuncOp, StoreOp, SymExprOp, YieldOp
from xdsl.context import Context
from xdsl.dialects import arith, cf, func, memref, scf
from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from relax_xdsl.dim_lowering import DimEmitter
from relax_xdsl.dtypes import is_unsigned
from relax_xdsl.errors import RelaxError
from relax_xdsl.shape import dim_to_str

INDEX = IndexType()

LOCAL_BUFFER_MAX = 4096
"""A tir.alloc inside a loop with a static shape of at most this many
elements lowers to memref.alloca (a stack array per iteration), not to a
heap buffer."""

_COMBINE_FLOAT = {"add": arith.AddfOp, "mul": arith.MulfOp, "max": arith.MaximumfOp, "min": arith.MinimumfOp}
_COMBINE_INT = {"add": arith.AddiOp, "mul": arith.MuliOp, "max": arith.MaxSIOp, "min": arith.MinSIOp}


_COMBINE_UINT = {"add": arith.AddiOp, "mul": arith.MuliOp, "max": arith.MaxUIOp, "min": arith.MinUIOp}


def identity_constant(combiner: str, t: Attribute) -> arith.ConstantOp:
    """The combiner's identity: the initial value of a reduction (of a float
    or signed type; identity_ops takes every type)."""
    if isinstance(t, AnyFloat):
        value = {"add": 0.0, "mul": 1.0, "max": -math.inf, "min": math.inf}[combiner]
        return arith.ConstantOp(FloatAttr(value, t))
    assert isinstance(t, IntegerType) and not is_unsigned(t)
    w = t.width.data
    value = {"add": 0, "mul": 1, "max": -(2 ** (w - 1)), "min": 2 ** (w - 1) - 1}[combiner]
    return arith.ConstantOp(IntegerAttr(value, t))


def identity_ops(combiner: str, t: Attribute) -> list[Operation]:
    """The combiner's identity as ops, the last one's result the value: an
    unsigned one is a signless constant bitcast (arith.constant is signless)."""
    if not (isinstance(t, IntegerType) and is_unsigned(t)):
        return [identity_constant(combiner, t)]
    w = t.width.data
    value = {"add": 0, "mul": 1, "max": 0, "min": -1}[combiner]  # -1: all ones, the unsigned maximum
    bits = arith.ConstantOp(IntegerAttr(value, IntegerType(w)))
    return [bits, arith.BitcastOp(bits.result, t)]


def combine_op(combiner: str, acc: SSAValue, v: SSAValue) -> Operation:
    table = _COMBINE_FLOAT if isinstance(acc.type, AnyFloat) else _COMBINE_UINT if is_unsigned(acc.type) else \
        _COMBINE_INT
    return table[combiner](acc, v)


def memref_type_of(t: Attribute) -> Attribute:
    from relax_xdsl.passes.lower_graph import memref_type

    return memref_type(t)  # type: ignore[arg-type]


@dataclass
class _Lowering:
    """Lowers one prim_func; values map tir SSA values to loop-level ones."""

    prim: PrimFuncOp

    def run(self) -> func.FuncOp:
        prim = self.prim
        self.name = prim.sym_name.data
        buffers = prim.buffer_types()
        nsyms = prim.num_sym_args()
        arg_types = [memref_type_of(t) for t in buffers] + [INDEX] * nsyms
        self.entry = Block(arg_types=arg_types)
        self.prologue: list[Operation] = []
        self.dims = DimEmitter(self.prologue.append)
        self.map: dict[SSAValue, SSAValue] = {}
        self.allocs: list[SSAValue] = []  # heap buffers of the function's body: freed before its return
        self.loop_allocs: dict[Block, list[SSAValue]] = {}  # those of a loop body: freed at its end
        for old, new in zip(prim.args, self.entry.args):
            new.name_hint = old.name_hint
            self.map[old] = new
        if prim.sym_params:
            for s, v in zip(prim.sym_params.data, self.entry.args[len(buffers):]):
                v.name_hint = str(s)
                self.dims.bind(s, v)  # type: ignore[arg-type]
        self._bind_and_check()
        body = Block()
        self._convert_block(prim.body.block, body)
        for a in self.allocs:
            body.add_op(memref.DeallocOp.get(a))
        body.add_op(func.ReturnOp())
        self.entry.add_ops(self.prologue)
        for o in list(body.ops):
            o.detach()
            self.entry.add_op(o)
        f = func.FuncOp(self.name, (arg_types, []), Region(self.entry))
        for key, value in prim.attributes.items():
            f.attributes[key] = value
        # The symbolic buffer types, for callers that check their arguments (lower-graph).
        f.attributes["relax.buffers"] = ArrayAttr(buffers)
        return f

    # -- entry: bind symbols, check dims ------------------------------------
    def _dim(self, buf: SSAValue, axis: int) -> SSAValue:
        op = memref.DimOp(buf, self.dims.const(axis))
        self.prologue.append(op)
        return op.results[0]

    def _bind_and_check(self) -> None:
        args = self.entry.args
        dims = [(args[b], t, i, d) for b, t in enumerate(self.prim.buffer_types()) for i, d in enumerate(t.sym_shape)]
        bound_from: set[tuple[int, int]] = set()
        for b, (buf, _t, i, d) in enumerate(dims):
            if d.is_Symbol and d not in self.dims.env:
                self.dims.bind(d, self._dim(buf, i))  # type: ignore[arg-type]
                bound_from.add((b, i))
        for b, (buf, _t, i, d) in enumerate(dims):
            if d.is_Integer or (b, i) in bound_from:
                continue
            missing = sorted(s.name for s in d.free_symbols if s not in self.dims.env)
            if missing:
                raise RelaxError(f"tensor program {self.name}: symbol(s) {', '.join(missing)} are not bound")
            ok = arith.CmpiOp(self._dim(buf, i), self.dims.emit(d), "eq")
            self.prologue.append(ok)
            name = buf.name_hint or f"#{b}"
            self.prologue.append(cf.AssertOp(ok, f"tensor program {self.name}: buffer {name} dim {i} is not {dim_to_str(d)}"))
        assume, what = self.prim.attributes.get("relax.assume"), self.prim.attributes.get("relax.assume_what")
        if isinstance(assume, DimsAttr):
            exprs = assume.data
            texts = [w.data for w in what.data] if isinstance(what, ArrayAttr) else []  # type: ignore[attr-defined]
            for k in range(0, len(exprs) - 1, 2):
                a, b = exprs[k], exprs[k + 1]
                ok = arith.CmpiOp(self.dims.emit(a), self.dims.emit(b), "eq")
                self.prologue.append(ok)
                why = texts[k // 2] if k // 2 < len(texts) else "assumption"
                self.prologue.append(cf.AssertOp(
                    ok, f"tensor program {self.name}: {why}: {dim_to_str(a)} must equal {dim_to_str(b)}"))

        nonempty, what = self.prim.attributes.get("relax.nonempty"), self.prim.attributes.get("relax.nonempty_what")
        if isinstance(nonempty, DimsAttr):
            texts = [w.data for w in what.data] if isinstance(what, ArrayAttr) else []  # type: ignore[attr-defined]
            for k, d in enumerate(nonempty.data):
                ok = arith.CmpiOp(self.dims.emit(d), self.dims.const(0), "sgt")
                self.prologue.append(ok)
                why = texts[k] if k < len(texts) else "a reduction"
                self.prologue.append(cf.AssertOp(
                    ok, f"tensor program {self.name}: {why} over an empty axis: dim {dim_to_str(d)} must be at "
                        "least 1 (the result has no value)"))

    # -- body ------------------------------------------------------------------
    def _convert_block(self, src: Block, dst: Block) -> SSAValue | None:
        """Converts `src`'s ops into `dst`; returns the value a tir.yield yields."""
        for op in src.ops:
            if isinstance(op, YieldOp):
                return self.map[op.values[0]] if op.values else None
            self._convert(op, dst)
        return None

    def _convert(self, op: Operation, dst: Block) -> None:
        m = self.map
        if isinstance(op, LoadOp):
            new: Operation = memref.LoadOp.get(m[op.buffer], [m[i] for i in op.indices])
        elif isinstance(op, StoreOp):
            new = memref.StoreOp.get(m[op.value], m[op.buffer], [m[i] for i in op.indices])
        elif isinstance(op, SymExprOp):
            m[op.results[0]] = self.dims.emit(op.expr.data[0])
            return
        elif isinstance(op, AllocOp):
            t = op.result.type
            if not isinstance(op.parent_op(), PrimFuncOp) and all(d.is_Integer for d in t.sym_shape) \
                    and math.prod(int(d) for d in t.sym_shape) <= LOCAL_BUFFER_MAX:  # type: ignore[attr-defined]
                # a small buffer per loop iteration (a register tile's
                # accumulators): on the stack, where gcc keeps it in registers
                mt = memref_type_of(t)
                new = memref.AllocaOp.get(mt.get_element_type(), 64, mt.get_shape())
            else:
                sizes = [self.dims.emit(d) for d in t.sym_shape if not d.is_Integer]  # type: ignore[attr-defined]
                new = memref.AllocOp(sizes, [], memref_type_of(t), IntegerAttr(64, 64))
                if isinstance(op.parent_op(), PrimFuncOp):
                    self.allocs.append(new.results[0])
                elif isinstance(op.parent_op(), ForOp):
                    # a buffer per iteration (a register tile too large for
                    # the stack): freed at the end of the iteration, where it
                    # is still in scope
                    self.loop_allocs.setdefault(dst, []).append(new.results[0])
                else:
                    raise RelaxError(f"tensor program {self.name}: a heap tir.alloc inside {op.parent_op().name} "
                                     "is not supported (only in the function body or a tir.for)")
        elif isinstance(op, ComputeOp):
            self._compute(op, dst)
            return
        elif isinstance(op, ForOp):
            self._for(op, dst)
            return
        else:
            regions = []
            for r in op.regions:
                blocks = []
                for b in r.blocks:
                    nb = Block(arg_types=b.arg_types)
                    for a, na in zip(b.args, nb.args):
                        m[a] = na
                    for inner in b.ops:
                        if isinstance(inner, YieldOp):
                            raise RelaxError(f"tensor program {self.name}: tir.yield inside {op.name}")
                        self._convert(inner, nb)
                    blocks.append(nb)
                regions.append(Region(blocks))
            new = op.__class__.create(
                operands=[m[o] for o in op.operands], result_types=[r.type for r in op.results],
                properties=dict(op.properties), attributes=dict(op.attributes), regions=regions,
            )
        dst.add_op(new)
        for old, res in zip(op.results, new.results):
            m[old] = res
            res.name_hint = old.name_hint

    def _loop_nest(self, dst: Block, extents: list[SSAValue], iter_init: SSAValue | None,
                   inner: object, parallel_outer: bool = False) -> SSAValue | None:
        """scf.for nest over [0, extent) each; `inner(block, ivs, acc)` fills the
        innermost body and returns the new accumulator (or None). With
        `parallel_outer` the outermost loop is an scf.parallel (no accumulator)."""
        zero, one = self.dims.const(0), self.dims.const(1)

        def build(level: int, block: Block, ivs: list[SSAValue], acc: SSAValue | None) -> SSAValue | None:
            if level == len(extents):
                return inner(block, ivs, acc)  # type: ignore[operator]
            arg_types = [INDEX] + ([acc.type] if acc is not None else [])
            body = Block(arg_types=arg_types)
            res = build(level + 1, body, [*ivs, body.args[0]], body.args[1] if acc is not None else None)
            if level == 0 and parallel_outer and acc is None:
                body.add_op(scf.ReduceOp())
                block.add_op(scf.ParallelOp([zero], [extents[0]], [one], Region(body)))
                return None
            body.add_op(scf.YieldOp(*([res] if acc is not None else [])))
            loop = scf.ForOp(zero, extents[level], one, [acc] if acc is not None else [], body)
            block.add_op(loop)
            return loop.results[0] if acc is not None else None

        return build(0, dst, [], iter_init)

    def _inline(self, region: Region, args: list[SSAValue], dst: Block) -> SSAValue:
        for a, v in zip(region.block.args, args):
            self.map[a] = v
        value = self._convert_block(region.block, dst)
        assert value is not None
        return value

    def _compute(self, op: ComputeOp, dst: Block) -> None:
        out = self.map[op.out]
        spatial = [self.dims.emit(d) for d in op.out_type.sym_shape]
        reduce = [self.dims.emit(d) for d in op.reduce_extents()]
        combiner = op.combiner.data if op.combiner else None
        acc_t = op.body_value_type()

        def spatial_body(block: Block, ivs: list[SSAValue], _acc: SSAValue | None) -> None:
            if combiner is None:
                value = self._inline(op.body, ivs, block)
            else:
                init = identity_ops(combiner, acc_t)
                block.add_ops(init)

                def reduce_body(rblock: Block, rivs: list[SSAValue], acc: SSAValue | None) -> SSAValue:
                    v = self._inline(op.body, [*ivs, *rivs], rblock)
                    c = combine_op(combiner, acc, v)  # type: ignore[arg-type]
                    rblock.add_op(c)
                    return c.results[0]

                value = self._loop_nest(block, reduce, init[-1].results[0], reduce_body)  # type: ignore[assignment]
            if op.epilogue is not None:
                value = self._inline(op.epilogue, [value, *ivs], block)
            block.add_op(memref.StoreOp.get(value, out, ivs))

        self._loop_nest(dst, spatial, None, spatial_body, parallel_outer=_parallel_outer(op))

    def _for(self, op: ForOp, dst: Block) -> None:
        kind = op.kind.data
        lb, ub, step = self.map[op.lb], self.map[op.ub], self.map[op.step]
        body = Block(arg_types=[INDEX])
        self.map[op.induction_var] = body.args[0]
        for inner in op.body.block.ops:
            self._convert(inner, body)
        for a in self.loop_allocs.pop(body, []):
            body.add_op(memref.DeallocOp.get(a))
        if kind == "parallel":
            body.add_op(scf.ReduceOp())
            loop: Operation = scf.ParallelOp([lb], [ub], [step], Region(body))
        else:
            body.add_op(scf.YieldOp())
            loop = scf.ForOp(lb, ub, step, [], body)
            if kind != "serial":
                loop.attributes["relax.loop"] = StringAttr(kind)
        dst.add_op(loop)


def _uses(value: SSAValue, iv: SSAValue) -> bool:
    """`value` depends on `iv` (through index arithmetic in the compute body)."""
    if value == iv:
        return True
    owner = value.owner
    return isinstance(owner, Operation) and any(_uses(o, iv) for o in owner.operands)


def _unit_stride(value: SSAValue, iv: SSAValue) -> bool:
    """`value` is `iv` plus or minus terms that do not depend on it (a
    conv's input column xx - pad + kx, in xx and in kx)."""
    if value == iv:
        return True
    owner = value.owner
    if isinstance(owner, arith.AddiOp):
        a, b = owner.lhs, owner.rhs
        return (_unit_stride(a, iv) and not _uses(b, iv)) or (_unit_stride(b, iv) and not _uses(a, iv))
    if isinstance(owner, arith.SubiOp):
        return _unit_stride(owner.lhs, iv) and not _uses(owner.rhs, iv)
    return False


def _strided_loads(c: ComputeOp, iv: SSAValue) -> int:
    """Loads that would not be contiguous with `iv` as the innermost loop:
    they depend on it other than through their last index, at unit stride."""
    count = 0
    for o in c.body.walk():
        if isinstance(o, LoadOp) and any(_uses(i, iv) for i in o.indices):
            contiguous = _unit_stride(o.indices[-1], iv) and not any(_uses(i, iv) for i in o.indices[:-1])
            count += not contiguous
    return count


def _invariant_loads(c: ComputeOp, iv: SSAValue) -> int:
    """Loads that do not depend on `iv` (one broadcast for a whole vector
    of `iv`, when it is the innermost loop)."""
    return sum(isinstance(o, LoadOp) and not any(_uses(i, iv) for i in o.indices) for o in c.body.walk())


def contraction_over_contiguous_axis(c: ComputeOp) -> bool:
    """A reduction that reads fewer loads with a stride when its innermost
    output axis, not its last reduction axis, is the innermost loop
    (matmul's B[k, j]; not softmax's row sum, whose x[i, j] is contiguous
    in the reduction axis), or as few and more of them invariant (a stride-1
    conv: x[.., xx - pad + kx] is contiguous in both, the weight invariant
    in xx). auto-schedule reorders these."""
    if c.combiner is None or c.out_type.ndim == 0 or not c.reduce_extents():
        return False
    args = c.body.block.args
    last_spatial, last_reduction = args[c.out_type.ndim - 1], args[-1]
    spatial = (_strided_loads(c, last_spatial), -_invariant_loads(c, last_spatial))
    return spatial < (_strided_loads(c, last_reduction), -_invariant_loads(c, last_reduction))


def _parallel_outer(op: ComputeOp) -> bool:
    """Default schedule: run the outermost spatial axis in parallel (the C
    target forks threads only when the nest is large), except for a
    contraction over the contiguous output axis into two or more axes (a
    matmul left unscheduled, without auto-schedule): measured, gcc
    vectorizes that serial nest across j much better than the
    OpenMP-outlined one. (Row reductions, softmax's sums, stay parallel.)"""
    if op.combiner is None or op.out_type.ndim <= 1:
        return op.out_type.ndim > 0
    return not contraction_over_contiguous_axis(op)


class LowerPrimFunc(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PrimFuncOp, rewriter: PatternRewriter) -> None:
        rewriter.replace(op, _Lowering(op).run(), [])


def lower_prim_func(prim: PrimFuncOp) -> func.FuncOp:
    """The loop-level function of one tensor program (the input is untouched)."""
    return _Lowering(prim).run()


@dataclass(frozen=True)
class LowerTIRPass(ModulePass):
    name = "lower-tir"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(LowerPrimFunc(), apply_recursively=False).rewrite_module(op)
