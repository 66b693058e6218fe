"""Indexing ops driven by data: gather_elements, gather_nd, scatter_elements,
scatter_nd, one_hot, cumsum / cumprod, reverse_sequence, topk (the ONNX ops
of the same names).

Every index read from a tensor is checked as `take`'s are: in [-n, n),
negative ones counting from the end, anything else a BoundsError naming the
op, the index and the extent, from the evaluator, the interpreter and C
alike. The tensor programs check all indices in one serial loop before any
element is read or written, so a kernel never touches memory through an
unchecked index.

Gathers and one_hot are index maps (injective, fusable). Scatters, the
cumulative ops and topk are written as explicit loops (opaque): a scatter is
a copy then one serial pass over the updates in row-major order (so with
duplicate indices the last update in that order wins, or the reduction
combines them in that order, identically on every target); a cumulative
op is a recurrence, serial along its axis, parallel across the leading dims;
topk selects k times per row, each time the best element strictly after the
previous one in the order (value, then smaller index first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from xdsl.dialects.builtin import IndexType, TupleType

from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import CheckIndexOp, StoreOp
from relax_xdsl.errors import index_out_of_range
from relax_xdsl.ops.registry import INJECTIVE, OPAQUE, REQUIRED, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon, dim_to_str

REDUCTIONS = ("none", "add", "mul", "max", "min")


# -- shared helpers ------------------------------------------------------------------------------------------------


def _int_indices(ctx: Infer, t: TensorType, what: str = "indices") -> None:
    if not t.dtype.startswith("int"):
        ctx.fail(f"{what} must be integers, got {t.dtype}")


def _at_most(ctx: Infer, small: sympy.Expr, big: sympy.Expr, what: str) -> None:
    """small <= big: proven, an error if provably not, else assumed equal (and
    checked at run time): a gather never reads past a dim it cannot prove."""
    small, big = canon(small), canon(big)
    diff = canon(big - small)
    if diff.is_nonnegative:
        return
    if diff.is_Integer:
        ctx.fail(f"{what}: {dim_to_str(small)} exceeds {dim_to_str(big)}")
    ctx.same(small, big, what)


def _checked(i: np.ndarray, extent: int | np.ndarray, what: str | Callable[[int], str]) -> np.ndarray:
    """Indices normalized to [0, n); the first bad one in row-major order (as
    the compiled check loop finds it) is a BoundsError."""
    i = i.astype(np.int64)
    ext = np.broadcast_to(np.asarray(extent, dtype=np.int64), i.shape)
    bad = (i < -ext) | (i >= ext)
    if bad.any():
        k = int(np.argmax(bad.reshape(-1)))
        name = what(k) if callable(what) else what
        raise index_out_of_range(name, int(i.reshape(-1)[k]), int(ext.reshape(-1)[k]))
    return np.where(i < 0, i + ext, i)


def _where(pb: Any, what: str) -> str:
    return f"{what} in tensor program @{pb.func.sym_name.data}"


def _check(pb: Any, ind: Any, extent: Any, what: str) -> None:
    """A serial loop checking every element of `ind` against `extent`."""
    ext = pb.index(extent)
    pb.for_each(ind.shape, lambda *j: pb.emit(CheckIndexOp(pb.cast(ind[j], IndexType()).value, ext.value, what)))


def _norm(pb: Any, value: Any, extent: Any) -> Any:
    """A checked index (-n <= i < n) as one in [0, n)."""
    i = pb.cast(value, IndexType())
    return pb.select(i < 0, i + pb.index(extent), i)


def _loops(pb: Any, extents: Sequence[Any], body: Callable[..., None], parallel_first: bool = False) -> None:
    """A tir.for nest over [0, extent) each (PrimFuncBuilder.for_each); the
    outermost loop parallel if asked."""
    pb.for_each(extents, body, parallel_first)


def _store(pb: Any, buf: Any, idx: Sequence[Any], value: Any) -> None:
    pb.emit(StoreOp(pb.lift(value, buf.type.element_type).value, buf.value, [pb.index(i).value for i in idx]))


def _combine(pb: Any, reduction: str, old: Any, new: Any) -> Any:
    if reduction == "add":
        return old + new
    if reduction == "mul":
        return old * new
    if reduction == "max":
        return pb.max(old, new)
    if reduction == "min":
        return pb.min(old, new)
    return new


def _np_combine(reduction: str) -> Any:
    return {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction]


def _scatter_flat(out: np.ndarray, lin: np.ndarray, upd: np.ndarray, reduction: str) -> np.ndarray:
    """out.flat[lin[k]] (op)= upd[k] in the order of k: with "none" the last
    write to an element wins."""
    flat = out.reshape(-1)
    if reduction == "none":
        if lin.size:
            _, last = np.unique(lin[::-1], return_index=True)
            pos = lin.size - 1 - last
            flat[lin[pos]] = upd[pos]
    else:
        _np_combine(reduction).at(flat, lin, upd)
    return flat.reshape(out.shape)


# -- gathers -----------------------------------------------------------------------------------------------------


@register_op
class GatherElements(OpSpec):
    """relax.gather_elements: out[j] = x[j with j[axis] replaced by
    indices[j]] (ONNX GatherElements, numpy take_along_axis). indices has x's
    rank; its other dims must not exceed x's (equal when not provable)."""

    name = "gather_elements"
    inputs = ("x", "indices")
    params = {"axis": Param("int", 0)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, indices: TensorType, axis: int) -> TensorType:
        _int_indices(ctx, indices)
        if x.ndim == 0 or indices.ndim != x.ndim:
            ctx.fail(f"indices must have x's rank {x.ndim} (>= 1), got rank {indices.ndim}")
        a = ctx.axis(axis, x.ndim)
        for d in range(x.ndim):
            if d != a:
                _at_most(ctx, indices.sym_shape[d], x.sym_shape[d], f"indices dim {d} within x's dim {d}")
        return tensor(indices.sym_shape, x.dtype)

    def reference(self, x: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
        a = axis % x.ndim
        i = _checked(indices, x.shape[a], f"relax.gather_elements along axis {a}")
        sub = x[tuple(slice(0, s) if d != a else slice(None) for d, s in enumerate(indices.shape))]
        return np.take_along_axis(sub, i, axis=a)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: int) -> None:
        (x, ind), (out,) = inputs, outputs
        a = axis % x.ndim
        _check(pb, ind, x.shape[a], _where(pb, f"relax.gather_elements along axis {a}"))
        pb.compute(out, lambda *idx: x[idx[:a] + (_norm(pb, ind[idx], x.shape[a]),) + idx[a + 1:]])


def _nd_plan(ctx: Infer, x: TensorType, indices: TensorType, batch_dims: int) -> int:
    """Checks gather_nd / scatter_nd shapes; returns q, the index depth."""
    _int_indices(ctx, indices)
    if indices.ndim < 1:
        ctx.fail("indices must have rank >= 1")
    q = canon(indices.sym_shape[-1])
    if not q.is_Integer:
        ctx.fail(f"the last dim of indices (the index depth) must be static, got {dim_to_str(q)}")
    b = batch_dims
    if b < 0 or b >= indices.ndim or b > x.ndim:
        ctx.fail(f"batch_dims {b} is out of range for ranks {x.ndim} and {indices.ndim}")
    if b + int(q) > x.ndim:
        ctx.fail(f"batch_dims {b} + index depth {int(q)} exceeds x's rank {x.ndim}")
    for d in range(b):
        ctx.same(indices.sym_shape[d], x.sym_shape[d], f"batch dim {d}")
    return int(q)


def _nd_what(op: str, b: int, q: int) -> Callable[[int], str]:
    return lambda k: f"relax.{op} index component {k % q} (axis {b + k % q})" if q else f"relax.{op}"


def _nd_check(pb: Any, op: str, ind: Any, x_shape: Sequence[Any], b: int, q: int) -> None:
    exts = [pb.index(x_shape[b + c]) for c in range(q)]

    def check(*j: Any) -> None:
        for c in range(q):
            i = pb.cast(ind[(*j, pb.index(c))], IndexType())
            pb.emit(CheckIndexOp(i.value, exts[c].value,
                                 _where(pb, f"relax.{op} index component {c} (axis {b + c})")))

    pb.for_each(ind.shape[:-1], check)


@register_op
class GatherND(OpSpec):
    """relax.gather_nd: ONNX GatherND. indices [B..., M..., q]: each index
    row picks x[b..., i0, .., iq-1] (a slice of x's remaining dims) within
    its batch (the first batch_dims dims, shared by x and indices)."""

    name = "gather_nd"
    inputs = ("x", "indices")
    params = {"batch_dims": Param("int", 0)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, indices: TensorType, batch_dims: int) -> TensorType:
        q = _nd_plan(ctx, x, indices, batch_dims)
        return tensor(indices.sym_shape[:-1] + x.sym_shape[batch_dims + q:], x.dtype)

    def reference(self, x: np.ndarray, indices: np.ndarray, batch_dims: int) -> np.ndarray:
        b, q = batch_dims, indices.shape[-1]
        i = _checked(indices, np.array(x.shape[b:b + q], dtype=np.int64), _nd_what("gather_nd", b, q))
        nb = math.prod(x.shape[:b])
        m = math.prod(indices.shape[b:-1])
        xr = x.reshape((nb,) + x.shape[b:])
        ir = i.reshape(nb, m, q)
        picked = xr[(np.arange(nb)[:, None],) + tuple(ir[..., c] for c in range(q))]
        rest = x.shape[b + q:]
        picked = np.broadcast_to(picked, (nb, m) + rest)
        return np.ascontiguousarray(picked).reshape(indices.shape[:-1] + rest)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], batch_dims: int) -> None:
        (x, ind), (out,) = inputs, outputs
        b, q = batch_dims, int(canon(ind.shape[-1]))
        _nd_check(pb, self.name, ind, x.shape, b, q)
        k = ind.ndim - 1

        def body(*idx: Any) -> Any:
            pos = idx[:k]
            picked = tuple(_norm(pb, ind[(*pos, pb.index(c))], x.shape[b + c]) for c in range(q))
            return x[idx[:b] + picked + idx[k:]]

        pb.compute(out, body)


# -- scatters ----------------------------------------------------------------------------------------------------


def _reduction(ctx: Infer, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        ctx.fail(f"reduction {reduction!r} is not one of {', '.join(REDUCTIONS)}")


@register_op
class ScatterElements(OpSpec):
    """relax.scatter_elements: a copy of x with x[j with j[axis] replaced by
    indices[j]] = updates[j] (ONNX ScatterElements; reduction none, add,
    mul, max, min combines with the element instead). Updates apply serially
    in row-major order: with duplicate indices and reduction "none" (ONNX
    leaves the result undefined) the last one in that order wins, on every
    target."""

    name = "scatter_elements"
    inputs = ("x", "indices", "updates")
    params = {"axis": Param("int", 0), "reduction": Param("str", "none")}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, indices: TensorType, updates: TensorType, axis: int,
              reduction: str) -> TensorType:
        _int_indices(ctx, indices)
        _reduction(ctx, reduction)
        if x.ndim == 0 or indices.ndim != x.ndim or updates.ndim != x.ndim:
            ctx.fail(f"indices and updates must have x's rank {x.ndim} (>= 1)")
        if updates.dtype != x.dtype:
            ctx.fail(f"updates must have x's dtype {x.dtype}, got {updates.dtype}")
        a = ctx.axis(axis, x.ndim)
        for d in range(x.ndim):
            ctx.same(indices.sym_shape[d], updates.sym_shape[d], f"indices vs updates dim {d}")
            if d != a:
                _at_most(ctx, indices.sym_shape[d], x.sym_shape[d], f"indices dim {d} within x's dim {d}")
        return tensor(x.sym_shape, x.dtype)

    def reference(self, x: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int,
                  reduction: str) -> np.ndarray:
        a = axis % x.ndim
        i = _checked(indices, x.shape[a], f"relax.scatter_elements along axis {a}")
        grid = list(np.indices(indices.shape, sparse=False))
        grid[a] = i
        lin = np.ravel_multi_index(tuple(g.reshape(-1) for g in grid), x.shape) if i.size else np.zeros(0, np.int64)
        return _scatter_flat(x.copy(), lin, updates.reshape(-1), reduction)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: int, reduction: str) -> None:
        (x, ind, upd), (out,) = inputs, outputs
        a = axis % x.ndim
        _check(pb, ind, x.shape[a], _where(pb, f"relax.scatter_elements along axis {a}"))
        pb.compute(out, lambda *idx: x[idx])

        def scatter(*j: Any) -> None:
            target = j[:a] + (_norm(pb, ind[j], x.shape[a]),) + j[a + 1:]
            v = upd[j]
            _store(pb, out, target, v if reduction == "none" else _combine(pb, reduction, out[target], v))

        _loops(pb, ind.shape, scatter)


@register_op
class ScatterND(OpSpec):
    """relax.scatter_nd: ONNX ScatterND. indices [M..., q], updates
    [M..., x.shape[q:]]: a copy of x with each index row's slice replaced by
    (or, with a reduction, combined with) its update. Serial in row-major
    order, so duplicates resolve as in scatter_elements."""

    name = "scatter_nd"
    inputs = ("x", "indices", "updates")
    params = {"reduction": Param("str", "none")}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, indices: TensorType, updates: TensorType,
              reduction: str) -> TensorType:
        _reduction(ctx, reduction)
        q = _nd_plan(ctx, x, indices, 0)
        want = indices.sym_shape[:-1] + x.sym_shape[q:]
        if updates.ndim != len(want):
            ctx.fail(f"updates must have rank {len(want)}, got {updates.ndim}")
        for d, (u, w) in enumerate(zip(updates.sym_shape, want)):
            ctx.same(u, w, f"updates dim {d}")
        if updates.dtype != x.dtype:
            ctx.fail(f"updates must have x's dtype {x.dtype}, got {updates.dtype}")
        return tensor(x.sym_shape, x.dtype)

    def reference(self, x: np.ndarray, indices: np.ndarray, updates: np.ndarray, reduction: str) -> np.ndarray:
        q = indices.shape[-1]
        i = _checked(indices, np.array(x.shape[:q], dtype=np.int64), _nd_what("scatter_nd", 0, q))
        rows = i.reshape(-1, q)
        inner = math.prod(x.shape[q:])
        base = np.ravel_multi_index(tuple(rows[:, c] for c in range(q)), x.shape[:q]) if rows.size else \
            np.zeros(rows.shape[0], np.int64)
        lin = (base[:, None] * inner + np.arange(inner)[None, :]).reshape(-1)
        return _scatter_flat(x.copy(), lin, updates.reshape(-1), reduction)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], reduction: str) -> None:
        (x, ind, upd), (out,) = inputs, outputs
        q = int(canon(ind.shape[-1]))
        _nd_check(pb, self.name, ind, x.shape, 0, q)
        pb.compute(out, lambda *idx: x[idx])
        k = ind.ndim - 1

        def scatter(*j: Any) -> None:
            pos, rest = j[:k], j[k:]
            target = tuple(_norm(pb, ind[(*pos, pb.index(c))], x.shape[c]) for c in range(q)) + rest
            v = upd[j]
            _store(pb, out, target, v if reduction == "none" else _combine(pb, reduction, out[target], v))

        _loops(pb, list(ind.shape[:-1]) + list(x.shape[q:]), scatter)


# -- one_hot -----------------------------------------------------------------------------------------------------


@register_op
class OneHot(OpSpec):
    """relax.one_hot: ONNX OneHot with a constant depth. values is [off,
    on]; the output has depth inserted at `axis`; an index in [-depth,
    depth) (negative ones counting from the end) selects its position, any
    other index gives a row of `off` (as ONNX defines it, so no error)."""

    name = "one_hot"
    inputs = ("indices", "values")
    params = {"depth": Param("int", REQUIRED), "axis": Param("int", -1)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, indices: TensorType, values: TensorType, depth: int, axis: int) -> TensorType:
        _int_indices(ctx, indices)
        if values.ndim != 1:
            ctx.fail(f"values must be [off, on], rank 1, got rank {values.ndim}")
        ctx.same(values.sym_shape[0], 2, "values (off, on) length")
        if depth < 1:
            ctx.fail(f"depth must be >= 1, got {depth}")
        a = ctx.axis(axis, indices.ndim + 1)
        shape = list(indices.sym_shape)
        shape.insert(a, sympy.Integer(depth))
        return tensor(shape, values.dtype)

    def reference(self, indices: np.ndarray, values: np.ndarray, depth: int, axis: int) -> np.ndarray:
        a = axis % (indices.ndim + 1)
        i = indices.astype(np.int64)
        i = np.where(i < 0, i + depth, i)
        pos = np.arange(depth).reshape((depth,) + (1,) * (indices.ndim - a))
        hit = np.expand_dims(i, a) == pos
        return np.where(hit, values[1], values[0]).astype(values.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], depth: int, axis: int) -> None:
        (ind, values), (out,) = inputs, outputs
        a = axis % (ind.ndim + 1)

        def body(*idx: Any) -> Any:
            i = pb.cast(ind[idx[:a] + idx[a + 1:]], IndexType())
            i = pb.select(i < 0, i + pb.index(depth), i)
            return pb.select(i.eq(idx[a]), values[pb.index(1)], values[pb.index(0)])

        pb.compute(out, body)


# -- cumulative ops ----------------------------------------------------------------------------------------------


class _Cumulative(OpSpec):
    """relax.cumsum / relax.cumprod along `axis` (ONNX CumSum / CumProd):
    `exclusive` leaves the element itself out (the first is the identity),
    `reverse` runs from the end. A recurrence on the output, serial along
    the axis, parallel across the dims before it."""

    inputs = ("x",)
    params = {"axis": Param("int", 0), "exclusive": Param("bool", False), "reverse": Param("bool", False)}
    pattern = OPAQUE
    combiner = "add"

    def infer(self, ctx: Infer, x: TensorType, axis: int, exclusive: bool, reverse: bool) -> TensorType:
        if x.ndim == 0:
            ctx.fail("x must have rank >= 1")
        if x.dtype == "bool":
            ctx.fail("x must be numeric, got bool")
        ctx.axis(axis, x.ndim)
        return tensor(x.sym_shape, x.dtype)

    def reference(self, x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
        a = axis % x.ndim
        y = np.flip(x, a) if reverse else x
        fn = np.cumsum if self.combiner == "add" else np.cumprod
        r = fn(y, axis=a, dtype=x.dtype)
        if exclusive:
            ident = np.full_like(np.take(r, [0], axis=a), 0 if self.combiner == "add" else 1)
            r = np.concatenate([ident, np.take(r, range(x.shape[a] - 1), axis=a)], axis=a) if x.shape[a] else r
        return np.ascontiguousarray(np.flip(r, a) if reverse else r).astype(x.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: int, exclusive: bool,
                 reverse: bool) -> None:
        (x,), (out,) = inputs, outputs
        a = axis % x.ndim
        n = x.shape[a]
        ident = pb.identity(self.combiner, out.type.element_type)

        def step(*ivs: Any) -> None:
            k = ivs[a]
            p = pb.index(n) - k - 1 if reverse else k
            prev = p + 1 if reverse else p - 1
            here = ivs[:a] + (p,) + ivs[a + 1:]
            back = ivs[:a] + (prev,) + ivs[a + 1:]

            def later() -> Any:
                return _combine(pb, self.combiner, out[back], x[back] if exclusive else x[here])

            first = pb.lift(ident, out.type.element_type) if exclusive else x[here]
            _store(pb, out, here, pb.if_then_else(k.eq(0), lambda: first, later))

        # outer dims (independent, the first in parallel), then the axis, then the inner dims
        order = list(range(a)) + [a] + list(range(a + 1, x.ndim))
        extents = [x.shape[d] for d in order]
        _loops(pb, extents, lambda *ivs: step(*[ivs[order.index(d)] for d in range(x.ndim)]), parallel_first=a > 0)


@register_op
class Cumsum(_Cumulative):
    __doc__ = _Cumulative.__doc__
    name = "cumsum"


@register_op
class Cumprod(_Cumulative):
    __doc__ = _Cumulative.__doc__
    name = "cumprod"
    combiner = "mul"


# -- reverse_sequence --------------------------------------------------------------------------------------------


@register_op
class ReverseSequence(OpSpec):
    """relax.reverse_sequence: ONNX ReverseSequence. For batch b, the first
    seq_lens[b] steps along time_axis are reversed, the rest copied. Each
    length must lie in [0, T] (T the time dim): checked as two gather
    indices, the length and T - length, each within [-(T+1), T+1), so any
    other length is a BoundsError on every target."""

    name = "reverse_sequence"
    inputs = ("x", "seq_lens")
    params = {"batch_axis": Param("int", 1), "time_axis": Param("int", 0)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, seq_lens: TensorType, batch_axis: int, time_axis: int) -> TensorType:
        _int_indices(ctx, seq_lens, "seq_lens")
        if x.ndim < 2:
            ctx.fail(f"x must have rank >= 2, got {x.ndim}")
        b, t = ctx.axis(batch_axis, x.ndim, "batch_axis"), ctx.axis(time_axis, x.ndim, "time_axis")
        if b == t:
            ctx.fail("batch_axis and time_axis must differ")
        if seq_lens.ndim != 1:
            ctx.fail(f"seq_lens must have rank 1, got {seq_lens.ndim}")
        ctx.same(seq_lens.sym_shape[0], x.sym_shape[b], "seq_lens length vs the batch dim")
        return tensor(x.sym_shape, x.dtype)

    def reference(self, x: np.ndarray, seq_lens: np.ndarray, batch_axis: int, time_axis: int) -> np.ndarray:
        b, t = batch_axis % x.ndim, time_axis % x.ndim
        T = x.shape[t]
        lens = seq_lens.astype(np.int64)
        for v in lens:
            _checked(np.array([v]), T + 1, "relax.reverse_sequence sequence length")
            _checked(np.array([T - v]), T + 1, "relax.reverse_sequence time dim minus sequence length")
        out = x.copy()
        for k, v in enumerate(lens):
            sel: list[Any] = [slice(None)] * x.ndim
            sel[b] = k
            sel[t] = slice(0, v)
            src = list(sel)
            src[t] = slice(v - 1, None, -1) if v > 0 else slice(0, 0)
            out[tuple(sel)] = x[tuple(src)]
        return out

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], batch_axis: int, time_axis: int) -> None:
        (x, lens), (out,) = inputs, outputs
        b, t = batch_axis % x.ndim, time_axis % x.ndim
        T = x.shape[t]
        ext = pb.index(canon(T + 1))

        def check(k: Any) -> None:
            v = pb.cast(lens[k], IndexType())
            pb.emit(CheckIndexOp(v.value, ext.value, _where(pb, "relax.reverse_sequence sequence length")))
            rest = pb.index(T) - v
            pb.emit(CheckIndexOp(rest.value, ext.value,
                                 _where(pb, "relax.reverse_sequence time dim minus sequence length")))

        pb.for_each(lens.shape, check)

        def body(*idx: Any) -> Any:
            v = pb.cast(lens[idx[b]], IndexType())
            src = pb.select(idx[t] < v, v - idx[t] - 1, idx[t])
            return x[idx[:t] + (src,) + idx[t + 1:]]

        pb.compute(out, body)


# -- topk --------------------------------------------------------------------------------------------------------


@register_op
class TopK(OpSpec):
    """relax.topk: the k largest (or smallest) elements along `axis` and
    their int64 indices (ONNX TopK with a constant k), always sorted, best
    first; equal values come in index order (the smaller index first, as
    ONNX specifies). Each of the k picks scans the row for the best element
    strictly after the previous pick in that order: O(k n) per row with no
    scratch buffer. k larger than the axis is an error (checked on entry
    when the axis is symbolic)."""

    name = "topk"
    inputs = ("x",)
    params = {"k": Param("int", REQUIRED), "axis": Param("int", -1), "largest": Param("bool", True),
              "sorted": Param("bool", True)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, k: int, axis: int, largest: bool, sorted: bool) -> TupleType:
        if x.ndim == 0:
            ctx.fail("x must have rank >= 1")
        if x.dtype == "bool":
            ctx.fail("x must be numeric, got bool")
        a = ctx.axis(axis, x.ndim)
        if k < 0:
            ctx.fail(f"k must be >= 0, got {k}")
        n = canon(x.sym_shape[a])
        if canon(n - k).is_negative:
            ctx.fail(f"k {k} exceeds the axis dim {dim_to_str(n)}")
        shape = list(x.sym_shape)
        shape[a] = sympy.Integer(k)
        return TupleType((tensor(shape, x.dtype), tensor(shape, "int64")))

    def reference(self, x: np.ndarray, k: int, axis: int, largest: bool,
                  sorted: bool) -> tuple[np.ndarray, np.ndarray]:
        a = axis % x.ndim
        if k > x.shape[a]:
            raise index_out_of_range(f"relax.topk k along axis {a}", k, x.shape[a] + 1)
        if largest:  # descending, equal values by ascending index: an ascending stable sort of the flipped row
            order = x.shape[a] - 1 - np.flip(np.argsort(np.flip(x, a), axis=a, kind="stable"), a)
        else:
            order = np.argsort(x, axis=a, kind="stable")
        idx = np.take(order, range(k), axis=a).astype(np.int64)
        return np.take_along_axis(x, idx, axis=a), idx

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], k: int, axis: int, largest: bool,
                 sorted: bool) -> None:
        (x,), (vals, inds) = inputs, outputs
        a = axis % x.ndim
        n = canon(x.shape[a])
        if not n.is_Integer:
            pb.require_nonempty([canon(n - k + 1)], f"relax.topk: k = {k} must not exceed the axis dim; the axis")
        topk_picks(pb, x, vals, inds, a, largest)


def topk_picks(pb: Any, x: Any, vals: Any, inds: Any, a: int, largest: bool) -> None:
    """The k picks of topk along axis `a` (k = vals' dim there, at most x's:
    the caller checks that) into vals and inds."""
    n = canon(x.shape[a])
    i64 = inds.type.element_type

    def better(av: Any, ai: Any, bv: Any, bi: Any) -> Any:
        """(av, ai) comes before (bv, bi): a better value, or equal and a smaller index."""
        strict = av > bv if largest else av < bv
        return strict | (av.eq(bv) & (ai < bi))

    def pick(*ivs: Any) -> None:
        j = ivs[a]

        def at(p: Any) -> tuple[Any, ...]:
            return ivs[:a] + (p,) + ivs[a + 1:]

        none = pb.index(n)  # "no candidate yet"

        def step(best: Any, c: Any) -> Any:
            cv = x[at(c)]

            def after_previous() -> Any:
                prev = at(j - 1)
                return better(vals[prev], pb.cast(inds[prev], IndexType()), cv, c)

            eligible = pb.if_then_else(j.eq(0), lambda: pb.lift(True, _i1()), after_previous)

            def beats_best() -> Any:
                return pb.if_then_else(best.eq(none), lambda: pb.lift(True, _i1()),
                                       lambda: better(cv, c, x[at(best)], best))

            take = pb.if_then_else(eligible, beats_best, False)
            return pb.select(take, c, best)

        best = pb.fold([n], none, step)
        _store(pb, vals, at(j), x[at(best)])
        _store(pb, inds, at(j), pb.cast(best, i64))

    order = [d for d in range(x.ndim) if d != a] + [a]
    extents = [vals.shape[d] for d in order]
    _loops(pb, extents, lambda *ivs: pick(*[ivs[order.index(d)] for d in range(x.ndim)]),
           parallel_first=x.ndim > 1)


def _i1() -> Any:
    from xdsl.dialects.builtin import i1

    return i1
