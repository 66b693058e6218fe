"""Hand-scheduling one tensor program from Python.

    sch = Schedule(module, "matmul")        # a tir.prim_func of the module
    i, j, k = sch.loops()                    # its compute as explicit tir.for loops
    sch.reorder(j, k)                        # i, k, j: the contiguous axis innermost
    sch.vectorize(j)
    sch.parallel(i)
    io, ii = sch.split(i, 32)                # guarded when 32 may not divide
    sch.register_tile(compute, 4, 64)        # a reduction into 2-d as register tiles

`loops()` rewrites a `tir.compute` into explicit loops: with a reduction,
an init nest, an update nest (spatial then reduction loops, the accumulator
kept in the output buffer or a local one) and an epilogue nest; it returns
the update nest's loops. The other primitives transform `tir.for` loops in
place; the program stays valid IR and runs on every target.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, IntegerAttr, ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.traits import SymbolTable

from relax_xdsl.dialects.tir import (
    AllocOp,
    BufferType,
    ComputeOp,
    ForOp,
    LoadOp,
    PrimFuncOp,
    StoreOp,
    SymExprOp,
    YieldOp,
)
from relax_xdsl.errors import RelaxError
from relax_xdsl.passes.lower_tir import combine_op, identity_constant, identity_ops

INDEX = IndexType()


class Schedule:
    """Loop transformations on one tensor program (see the module docstring)."""

    def __init__(self, module_or_prim: ModuleOp | PrimFuncOp, name: str | None = None):
        if isinstance(module_or_prim, PrimFuncOp):
            self.prim = module_or_prim
        else:
            found = SymbolTable.lookup_symbol(module_or_prim, name or "")
            if not isinstance(found, PrimFuncOp):
                raise RelaxError(f"no tensor program @{name} in the module")
            self.prim = found
        self.reduction_loops: set[ForOp] = set()

    # -- helpers -------------------------------------------------------------
    def _before(self, anchor: Operation, *ops: Operation) -> None:
        Rewriter.insert_op(list(ops), InsertPoint.before(anchor))

    def _index(self, anchor: Operation, d: object) -> SSAValue:
        from relax_xdsl.shape import canon

        e = canon(d)  # type: ignore[arg-type]
        op: Operation = arith.ConstantOp(IntegerAttr(int(e), INDEX)) if e.is_Integer else SymExprOp(e)
        self._before(anchor, op)
        return op.results[0]

    def _nest(self, anchor: Operation, extents: Sequence[object]) -> tuple[list[ForOp], Block]:
        """An empty loop nest before `anchor` over [0, extent) each; returns the
        loops and the innermost body."""
        zero, one = self._index(anchor, 0), self._index(anchor, 1)
        ubs = [self._index(anchor, e) for e in extents]
        loops: list[ForOp] = []
        parent_block: Block | None = None
        for ub in ubs:
            loop = ForOp(zero, ub, one, Region(Block(arg_types=[INDEX])))
            if parent_block is None:
                self._before(anchor, loop)
            else:
                parent_block.add_op(loop)
            loops.append(loop)
            parent_block = loop.body.block
        assert parent_block is not None
        return loops, parent_block

    @staticmethod
    def _inline(region: Region, args: Sequence[SSAValue], into: Block) -> SSAValue:
        """Clones a compute region's ops into `into` with its arguments bound;
        returns the value it yields."""
        mapping: dict[SSAValue, SSAValue] = dict(zip(region.block.args, args))
        for op in region.block.ops:
            if isinstance(op, YieldOp):
                return mapping.get(op.values[0], op.values[0])
            into.add_op(op.clone(value_mapper=mapping))
        raise RelaxError("compute region without tir.yield")

    # -- primitives ------------------------------------------------------------
    def computes(self) -> list[ComputeOp]:
        return [op for op in self.prim.body.walk() if isinstance(op, ComputeOp)]

    def loops(self, compute: int = 0) -> list[ForOp]:
        """Materializes the `compute`-th tir.compute into loops; returns the
        (update) nest's loops: spatial axes, then reduction axes."""
        computes = self.computes()
        if not 0 <= compute < len(computes):
            raise RelaxError(f"@{self.prim.sym_name.data} has {len(computes)} tir.compute ops, no #{compute}")
        c = computes[compute]
        out = c.out
        out_t = c.out_type
        spatial = list(out_t.sym_shape)
        if c.combiner is None:
            loops, body = self._nest(c, spatial)
            ivs = [lp.induction_var for lp in loops]
            value = self._inline(c.body, ivs, body)
            if c.epilogue is not None:
                value = self._inline(c.epilogue, [value, *ivs], body)
            body.add_op(StoreOp(value, out, ivs))
            c.detach()
            c.erase()
            return loops
        acc_t = c.body_value_type()
        acc = out
        if acc_t != out_t.element_type:
            alloc = AllocOp(BufferType.of(spatial, acc_t))
            self._before(c, alloc)
            acc = alloc.result
        combiner = c.combiner.data
        # init
        init_loops, body = self._nest(c, spatial)
        ivs = [lp.induction_var for lp in init_loops]
        ident = identity_ops(combiner, acc_t)
        body.add_ops(ident)
        body.add_op(StoreOp(ident[-1].results[0], acc, ivs))
        # update
        loops, body = self._nest(c, [*spatial, *c.reduce_extents()])
        ivs = [lp.induction_var for lp in loops]
        value = self._inline(c.body, ivs, body)
        old = LoadOp(acc, ivs[: len(spatial)])
        new = combine_op(combiner, old.results[0], value)
        body.add_ops([old, new, StoreOp(new.results[0], acc, ivs[: len(spatial)])])
        self.reduction_loops |= set(loops[len(spatial):])
        # epilogue
        if c.epilogue is not None or acc is not out:
            epi_loops, body = self._nest(c, spatial)
            ivs = [lp.induction_var for lp in epi_loops]
            a = LoadOp(acc, ivs)
            body.add_op(a)
            value = self._inline(c.epilogue, [a.results[0], *ivs], body) if c.epilogue is not None else a.results[0]
            body.add_op(StoreOp(value, out, ivs))
        c.detach()
        c.erase()
        return loops

    def register_tile(self, c: ComputeOp, rows: int, cols: int) -> None:
        """Rewrites a reduction into an output of 2 or more axes, out[.., i, j]
        = epilogue(combine over r of body(.., i, j, r)), as register tiles
        (leading axes as loops around what follows, the outermost in
        parallel and all inside it serial: one OpenMP region per nest, not
        one per batch entry, measured faster on the transformer block and
        the CNN):
        for each block of `rows` x `cols` outputs (blocks in parallel over
        rows when there are no leading axes), the partial results
        live in a local rows x cols buffer (on the stack at the loop level;
        gcc keeps it in vector registers) while the reduction loops run
        outside an unrolled row loop and a vectorized column loop, so each
        vector of a row of B serves `rows` outputs with no load or store of
        the output; then the block is written once, through the epilogue.
        Column panels run one after another, each panel's row blocks in
        parallel: all cores read the same panel of B from cache (measured
        faster on a 512^3 matmul than with rows outermost).
        The rows and columns left over (extents need not divide, symbolic
        ones included) run as plain loops accumulating in the output. Each
        output still combines over r in order: the same values."""
        if c.combiner is None or c.out_type.ndim < 2 or not c.reduce_extents():
            raise RelaxError("register_tile needs a reduction into an output of 2 or more axes")
        if rows < 1 or cols < 1:
            raise RelaxError(f"register_tile needs rows, cols >= 1, got {rows}, {cols}")
        acc_t = c.body_value_type()
        if acc_t != c.out_type.element_type:
            raise RelaxError("register_tile needs the accumulator of the output's element type")
        combiner, out = c.combiner.data, c.out
        *lead_dims, m, n = c.out_type.sym_shape
        lead_ubs = [self._index(c, d) for d in lead_dims]
        zero, one, r, k = (self._index(c, v) for v in (0, 1, rows, cols))
        m_v, n_v = self._index(c, m), self._index(c, n)
        extents = [self._index(c, e) for e in c.reduce_extents()]
        tiles_m, tiles_n = arith.FloorDivSIOp(m_v, r), arith.FloorDivSIOp(n_v, k)
        m_t, n_t = arith.MuliOp(tiles_m.result, r), arith.MuliOp(tiles_n.result, k)
        # no column panels at all without a whole row tile (each would enter
        # an empty parallel loop)
        any_tile = arith.MinSIOp(tiles_m.result, one)
        panels = arith.MuliOp(tiles_n.result, any_tile.result)
        self._before(c, tiles_m, tiles_n, m_t, n_t, any_tile, panels)

        def loop(into: Block | None, lb: SSAValue, ub: SSAValue, kind: str = "serial") -> ForOp:
            """A loop in `into`, else in the leading axes' body, else before `c`."""
            made = ForOp(lb, ub, one, Region(Block(arg_types=[INDEX])), kind)
            into = into if into is not None else outer
            if into is None:
                self._before(c, made)
            else:
                into.add_op(made)
            return made

        outer: Block | None = None  # the leading axes' innermost body
        lead: list[SSAValue] = []
        for ub in lead_ubs:
            lp = loop(None, zero, ub, "parallel" if not lead else "serial")
            outer, lead = lp.body.block, [*lead, lp.induction_var]
        inner_kind = "serial" if lead else "parallel"  # one parallel loop per nest

        def reduction(into: Block) -> tuple[Block, list[ForOp]]:
            """Reduction loops in `into` over the extents; returns the
            innermost body and the loops."""
            loops, body = [], into
            for e in extents:
                lp = loop(body, zero, e)
                loops.append(lp)
                body = lp.body.block
            self.reduction_loops |= set(loops)
            return body, loops

        # the tiles
        jo = loop(None, zero, panels.result)
        io = loop(jo.body.block, zero, tiles_m.result, inner_kind)
        block = io.body.block
        alloc = AllocOp(BufferType.of([rows, cols], acc_t))
        block.add_op(alloc)
        acc = alloc.result

        def cells(into: Block, row_kind: str) -> tuple[Block, list[SSAValue]]:
            """A rows x cols nest over the tile (columns vectorized); returns
            its body and the cell's index in `acc`."""
            ii = loop(into, zero, r, row_kind)
            ji = loop(ii.body.block, zero, k, "vectorize")
            return ji.body.block, [ii.induction_var, ji.induction_var]

        def output(b: Block, cell: list[SSAValue]) -> tuple[SSAValue, SSAValue]:
            """The output's i and j of a tile's cell."""
            scaled_i, scaled_j = arith.MuliOp(io.induction_var, r), arith.MuliOp(jo.induction_var, k)
            i, j = arith.AddiOp(scaled_i.result, cell[0]), arith.AddiOp(scaled_j.result, cell[1])
            b.add_ops([scaled_i, i, scaled_j, j])
            return i.result, j.result

        b, cell = cells(block, "serial")
        ident = identity_constant(combiner, acc_t)
        b.add_ops([ident, StoreOp(ident.results[0], acc, cell)])
        body, red = reduction(block)
        b, cell = cells(body, "unroll")
        i, j = output(b, cell)
        value = self._inline(c.body, [*lead, i, j, *(lp.induction_var for lp in red)], b)
        old = LoadOp(acc, cell)
        new = combine_op(combiner, old.results[0], value)
        b.add_ops([old, new, StoreOp(new.results[0], acc, cell)])
        b, cell = cells(block, "serial")
        i, j = output(b, cell)
        a = LoadOp(acc, cell)
        b.add_op(a)
        value = self._inline(c.epilogue, [a.results[0], *lead, i, j], b) if c.epilogue is not None else a.results[0]
        b.add_op(StoreOp(value, out, [*lead, i, j]))

        # what is left: the tiled rows' last columns, then the last rows
        rows_divide = m.is_Integer and int(m) % rows == 0  # type: ignore[attr-defined]
        cols_divide = n.is_Integer and int(n) % cols == 0  # type: ignore[attr-defined]
        left = [] if cols_divide else [(zero, m_t.result, n_t.result, n_v, inner_kind)]
        left += [] if rows_divide else [(m_t.result, m_v, zero, n_v, "serial")]
        for i_lb, i_ub, j_lb, j_ub, kind in left:  # per row: as auto-schedule's plain order (k, then j vectorized)
            li = loop(None, i_lb, i_ub, kind)
            row, i = li.body.block, li.induction_var
            lj = loop(row, j_lb, j_ub, "vectorize")
            ident = identity_constant(combiner, acc_t)
            lj.body.block.add_ops([ident, StoreOp(ident.results[0], out, [*lead, i, lj.induction_var])])
            body, red = reduction(row)
            lj = loop(body, j_lb, j_ub, "vectorize")
            j = lj.induction_var
            value = self._inline(c.body, [*lead, i, j, *(lp.induction_var for lp in red)], lj.body.block)
            old = LoadOp(out, [*lead, i, j])
            new = combine_op(combiner, old.results[0], value)
            lj.body.block.add_ops([old, new, StoreOp(new.results[0], out, [*lead, i, j])])
            if c.epilogue is not None:
                lj = loop(row, j_lb, j_ub, "vectorize")
                j = lj.induction_var
                a = LoadOp(out, [*lead, i, j])
                lj.body.block.add_op(a)
                value = self._inline(c.epilogue, [a.results[0], *lead, i, j], lj.body.block)
                lj.body.block.add_op(StoreOp(value, out, [*lead, i, j]))
        c.detach()
        c.erase()

    def split(self, loop: ForOp, factor: int) -> tuple[ForOp, ForOp]:
        """for i < n  ->  for io < ceildiv(n, f): for ii < f: i = io*f + ii (guarded
        by i < n unless f provably divides n)."""
        if factor < 1:
            raise RelaxError(f"split factor must be >= 1, got {factor}")
        lb = loop.lb.owner
        if not (isinstance(lb, arith.ConstantOp) and lb.value.value.data == 0):  # type: ignore[attr-defined]
            raise RelaxError("split needs a loop starting at 0")
        st = loop.step.owner
        if not (isinstance(st, arith.ConstantOp) and st.value.value.data == 1):  # type: ignore[attr-defined]
            raise RelaxError("split needs a loop of step 1")
        f = self._index(loop, factor)
        n_outer = arith.CeilDivSIOp(loop.ub, f)
        self._before(loop, n_outer)
        ub_def = loop.ub.owner
        exact = isinstance(ub_def, arith.ConstantOp) and ub_def.value.value.data % factor == 0  # type: ignore[attr-defined]
        kind = loop.kind.data
        inner = ForOp(loop.lb, f, loop.step, Region(Block(arg_types=[INDEX])), kind if kind != "parallel" else "serial")
        outer = ForOp(loop.lb, n_outer.result, loop.step, Region(Block([inner], arg_types=[INDEX])),
                      "parallel" if kind == "parallel" else "serial")
        ib = inner.body.block
        scaled = arith.MuliOp(outer.induction_var, f)
        index = arith.AddiOp(scaled, inner.induction_var)
        ib.add_ops([scaled, index])
        body_ops = list(loop.body.block.ops)
        for op in body_ops:
            op.detach()
        if exact:
            ib.add_ops(body_ops)
        else:
            cond = arith.CmpiOp(index.result, loop.ub, "slt")
            then = Block(body_ops)
            then.add_op(scf.YieldOp())
            ib.add_ops([cond, scf.IfOp(cond.result, [], Region(then), Region())])
        loop.induction_var.replace_all_uses_with(index.result)
        Rewriter.replace_op(loop, outer)
        if loop in self.reduction_loops:
            self.reduction_loops |= {outer, inner}
        return outer, inner

    def reorder(self, outer: ForOp, inner: ForOp) -> None:
        """Swaps two perfectly nested loops (`inner` the only op of `outer`'s
        body): `inner` becomes the outer loop. Loop handles keep their axes."""
        if list(outer.body.block.ops) != [inner]:
            raise RelaxError("reorder needs two perfectly nested loops (the inner one alone in the outer body)")
        if outer.induction_var in (inner.lb, inner.ub, inner.step):
            raise RelaxError("reorder: the inner loop's bounds depend on the outer loop")
        body_ops = list(inner.body.block.ops)
        for op in body_ops:
            op.detach()
        inner.detach()
        Rewriter.insert_op(inner, InsertPoint.before(outer))
        outer.detach()
        inner.body.block.add_op(outer)
        outer.body.block.add_ops(body_ops)

    def _kind(self, loop: ForOp, kind: str) -> None:
        from xdsl.dialects.builtin import StringAttr

        loop.kind = StringAttr(kind)

    def parallel(self, loop: ForOp) -> None:
        """Runs the loop's iterations on all cores (they must be independent)."""
        if loop in self.reduction_loops:
            raise RelaxError("parallel: this loop carries a reduction (its iterations update the same elements)")
        self._kind(loop, "parallel")

    def vectorize(self, loop: ForOp) -> None:
        self._kind(loop, "vectorize")

    def unroll(self, loop: ForOp) -> None:
        self._kind(loop, "unroll")
