"""`free-buffers`: buffer lifetimes of host functions (after `lower-graph`).

Every buffer a host function owns is freed right after its last use, in the
block that owns it, unless ownership moves on. Owned are the results of
`memref.alloc` (but not the memory-planning pool, which `lower-graph`
frees itself), the memref results of `scf.if`, `scf.while` and of calls of
other host functions (the callee's results belong to the caller), and the
block arguments of `scf.while` regions (the values carried from one
iteration to the next). Ownership moves with the value through
`func.return`, `scf.yield` and `scf.condition`, and into the loop that an
`scf.while` starts with it. A use through a view or
cast (`memref.cast`, `reinterpret_cast`, `view`, `subview`, `expand_shape`,
`collapse_shape`) is a use of the buffer, and a use inside a nested region
counts at the op that holds the region.

Because it reasons on the loop-level IR alone, the same rule frees buffers
in straight-line code, in branches, in loop bodies and around calls.
`lower-graph` keeps one invariant for it: a value handed on by a
terminator is owned by that terminator's block, so no buffer is handed on
on one path and still live on another (it copies a value otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, memref, scf
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from relax_xdsl.errors import RelaxError

ALIAS_OPS = (memref.CastOp, memref.ReinterpretCastOp, memref.ViewOp, memref.SubviewOp, memref.ExpandShapeOp,
             memref.CollapseShapeOp)
"""Ops whose memref result is a view of their first (source) operand."""

TRANSFERS = (func.ReturnOp, scf.YieldOp, scf.ConditionOp)


def _is_memref(v: SSAValue) -> bool:
    return isinstance(v.type, MemRefType)


def _owned(block: Block, module: ModuleOp) -> list[SSAValue]:
    """The buffers `block` owns, in order of definition."""
    out: list[SSAValue] = []
    parent = block.parent_op()
    if isinstance(parent, scf.WhileOp):
        out += [a for a in block.args if _is_memref(a)]
    for op in block.ops:
        if isinstance(op, memref.AllocOp) and "relax.pool" not in op.attributes:
            out.append(op.memref)
        elif isinstance(op, (scf.IfOp, scf.WhileOp)):
            out += [r for r in op.results if _is_memref(r)]
        elif isinstance(op, func.CallOp) and _defined_host(module, op.callee.root_reference.data):
            out += [r for r in op.results if _is_memref(r)]
    return out


def _defined_host(module: ModuleOp, name: str) -> bool:
    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == name:
            return not op.is_declaration
    return False


def _aliases(v: SSAValue) -> list[SSAValue]:
    """`v` and every view of it."""
    out, todo = [v], [v]
    while todo:
        cur = todo.pop()
        for use in cur.uses:
            user = use.operation
            if isinstance(user, ALIAS_OPS) and use.index == 0:
                for r in user.results:
                    if r not in out:
                        out.append(r)
                        todo.append(r)
    return out


def _in_block(op: Operation, block: Block) -> Operation | None:
    """The ancestor of `op` (or `op`) that lies directly in `block`."""
    cur: Operation | None = op
    while cur is not None and cur.parent_block() is not block:
        cur = cur.parent_op()
    return cur


@dataclass
class _Lifetimes:
    module: ModuleOp

    def run_block(self, block: Block) -> None:
        for op in list(block.ops):
            for region in op.regions:
                for inner in region.blocks:
                    self.run_block(inner)
        position = {op: k for k, op in enumerate(block.ops)}
        for value in _owned(block, self.module):
            self.free(value, block, position)

    def free(self, value: SSAValue, block: Block, position: dict[Operation, int]) -> None:
        last: Operation | None = None
        for alias in _aliases(value):
            for use in alias.uses:
                user = use.operation
                if isinstance(user, memref.DeallocOp):
                    return  # freed already
                at = _in_block(user, block)
                if at is None:
                    raise RelaxError(f"free-buffers: a buffer of block {block} is used outside it")
                if isinstance(user, TRANSFERS) or isinstance(user, scf.WhileOp) and at is user:
                    if at is user:
                        return  # handed on with the value (a loop owns its initial values)
                    raise RelaxError(f"free-buffers: {user.name} inside {at.name} hands on a buffer its block "
                                     "does not own (lower-graph copies such values)")
                if last is None or position[at] > position[last]:
                    last = at
        dealloc = memref.DeallocOp.get(value)
        if last is None:
            owner = value.owner
            if isinstance(value, BlockArgument):
                first = block.first_op
                assert first is not None
                block.insert_op_before(dealloc, first)
            else:
                assert isinstance(owner, Operation)
                block.insert_op_after(dealloc, owner)
            return
        block.insert_op_after(dealloc, last)


@dataclass(frozen=True)
class FreeBuffersPass(ModulePass):
    """Frees the buffers of host functions (those without `relax.buffers`,
    which tensor programs lowered by lower-tir carry: they free their own)."""

    name = "free-buffers"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        lifetimes = _Lifetimes(op)
        for fn in op.ops:
            if isinstance(fn, func.FuncOp) and not fn.is_declaration and "relax.buffers" not in fn.attributes:
                for block in fn.body.blocks:
                    lifetimes.run_block(block)
