"""Ops whose result size is known only after they run: nonzero, compress,
unique, topk with a run-time k, non_max_suppression (the ONNX ops of the
same names).

Each is two graph ops with static shape rules around a `tensor_to_shape`:
a *count* op computes the result size as an int64 [1] tensor, the
`tensor_to_shape` binds a fresh symbol k to it at run time, and a *fill*
op, whose dims parameter `count` is [k], writes the k results. The
composite builder functions at the end of this file (`nonzero`,
`compress`, `unique`, `topk_dynamic`, `non_max_suppression`, exposed as
`relax_xdsl.op.<name>`) emit the three.

The fill op recomputes what it writes and never trusts k: every store of a
result position is a checked index (position < k), and after the scan the
number of results found must equal k, so a count tensor that does not fit
the data (hand-written IR, or a count op of other data) is a BoundsError
naming the op, from the evaluator, the interpreter and C alike, never a
write past the buffer or uninitialized output.

All are serial scans (opaque to fusion). Unique sorts the item indices
(elements, or slices along an axis compared lexicographically) with a
stable merge sort, O(n log n) comparisons, then finds the distinct items
in one scan of that order; NaN equals NaN and sorts after every number, as
numpy's unique with equal_nan, and -0.0 equals 0.0. Non-max
suppression never selects a NaN score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from xdsl.dialects.builtin import IndexType, TupleType

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import CheckIndexOp
from relax_xdsl.errors import index_out_of_range
from relax_xdsl.ops.indexing import TopK, _i1, _loops, _store, topk_picks
from relax_xdsl.ops.registry import OPAQUE, REQUIRED, Infer, OpSpec, Param, register_op, tensor
from relax_xdsl.shape import canon, dim_to_str, shape_to_str

# -- shared helpers ------------------------------------------------------------------------------------------------


def _count_param(ctx: Infer, count: Sequence[sympy.Expr]) -> sympy.Expr:
    if len(count) != 1:
        ctx.fail(f"count must be one dim [k], got {len(count)} dims")
    k = canon(count[0])
    if k.is_Integer and int(k) < 0:
        ctx.fail(f"count must be >= 0, got {int(k)}")
    return k


def _beyond(op: str) -> str:
    return f"relax.{op}: result position beyond the count k"


def _short(op: str) -> str:
    return f"relax.{op}: results missing (the count k minus the results the data yields)"


def _check_found(op: str, found: int, k: int) -> None:
    """The reference's version of the fill programs' checks (same text)."""
    if found > k:
        raise index_out_of_range(_beyond(op), k, k)
    if found < k:
        raise index_out_of_range(_short(op), k - found, 1)


def _where(pb: Any, what: str) -> str:
    return f"{what} in tensor program @{pb.func.sym_name.data}"


def _check(pb: Any, index: Any, extent: Any, what: str) -> None:
    pb.emit(CheckIndexOp(pb.index(index).value, pb.index(extent).value, _where(pb, what)))


def _check_total(pb: Any, op: str, found: Any, k: Any) -> None:
    """found == k, given found <= k (every store was checked): k - found in [-1, 1)."""
    _check(pb, pb.index(k) - found, 1, _short(op))


def _when(pb: Any, cond: Any, body: Callable[[], None]) -> None:
    """Runs body (stores) only when cond holds (an scf.if)."""

    def then() -> Any:
        body()
        return pb.index(0)

    pb.if_then_else(cond, then, 0)


def _cell(pb: Any, init: Any = 0) -> Any:
    """A one-element int64 scratch buffer (a counter kept across loops)."""
    c = pb.alloc([1], "int64")
    _store(pb, c, [0], init)
    return c


def _get(pb: Any, cell: Any) -> Any:
    return pb.cast(cell[pb.index(0)], IndexType())


def _put(pb: Any, cell: Any, value: Any) -> None:
    _store(pb, cell, [0], pb.cast(pb.index(value), cell.type.element_type))


def _unravel(pb: Any, flat: Any, shape: Sequence[Any]) -> tuple[Any, ...]:
    """Row-major indices of a flat index into `shape`."""
    out: list[Any] = []
    rest = flat
    for d in reversed(shape):
        ext = pb.index(d)
        out.append(rest % ext)
        rest = rest // ext
    return tuple(reversed(out))


def _truthy(pb: Any, v: Any) -> Any:
    return v.ne(0.0 if v.is_float else 0)


def _count_out(t: TensorType) -> TensorType:
    return tensor([1], "int64")


# -- count_nonzero (the count of nonzero and of compress) ------------------------------------------------------------


@register_op
class CountNonzero(OpSpec):
    """relax.count_nonzero: the number of nonzero (true) elements of x, as
    an int64 [1] tensor: the result size of nonzero and of compress (NaN
    counts as nonzero, as in numpy)."""

    name = "count_nonzero"
    inputs = ("x",)
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType) -> TensorType:
        return _count_out(x)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return np.array([np.count_nonzero(x)], dtype=np.int64)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any]) -> None:
        (x,), (out,) = inputs, outputs
        n = pb.fold(list(x.shape), pb.index(0), lambda acc, *ivs: pb.select(_truthy(pb, x[ivs]), acc + 1, acc))
        _store(pb, out, [0], pb.cast(n, "int64"))


# -- nonzero ---------------------------------------------------------------------------------------------------------


@register_op
class NonzeroFill(OpSpec):
    """relax.nonzero_fill: ONNX NonZero given its count k (count_nonzero of
    x): the int64 [rank, k] indices of x's nonzero elements, row-major."""

    name = "nonzero_fill"
    inputs = ("x",)
    params = {"count": Param("dims", REQUIRED)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, count: Sequence[sympy.Expr]) -> TensorType:
        k = _count_param(ctx, count)
        if x.ndim == 0:
            ctx.fail("x must have rank >= 1")
        return tensor([x.ndim, k], "int64")

    def reference(self, x: np.ndarray, count: tuple[int, ...]) -> np.ndarray:
        out = np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)
        _check_found(self.name, out.shape[1], count[0])
        return out

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], count: Sequence[sympy.Expr]) -> None:
        (x,), (out,) = inputs, outputs
        k = out.shape[1]

        def step(p: Any, *ivs: Any) -> Any:
            def put() -> Any:
                _check(pb, p, k, _beyond(self.name))
                for d, i in enumerate(ivs):
                    _store(pb, out, [d, p], pb.cast(i, "int64"))
                return p + 1

            return pb.if_then_else(_truthy(pb, x[ivs]), put, p)

        found = pb.fold(list(x.shape), pb.index(0), step)
        _check_total(pb, self.name, found, k)


# -- compress --------------------------------------------------------------------------------------------------------


@register_op
class CompressFill(OpSpec):
    """relax.compress_fill: ONNX Compress given its count k
    (count_nonzero of the condition): the slices of x along `axis` (x
    flattened when axis is None) whose condition entry is true. The
    condition may be shorter than the axis (the rest is not selected); a
    true entry past the axis is a BoundsError, as numpy's compress."""

    name = "compress_fill"
    inputs = ("x", "condition")
    params = {"count": Param("dims", REQUIRED), "axis": Param("int", None)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, condition: TensorType, count: Sequence[sympy.Expr],
              axis: int | None) -> TensorType:
        k = _count_param(ctx, count)
        if condition.ndim != 1:
            ctx.fail(f"condition must have rank 1, got {condition.ndim}")
        if axis is None:
            return tensor([k], x.dtype)
        a = ctx.axis(axis, x.ndim)
        shape = list(x.sym_shape)
        shape[a] = k
        return tensor(shape, x.dtype)

    def reference(self, x: np.ndarray, condition: np.ndarray, count: tuple[int, ...],
                  axis: int | None) -> np.ndarray:
        src = x.reshape(-1) if axis is None else x
        a = 0 if axis is None else axis % x.ndim
        sel = np.nonzero(condition)[0]
        n = src.shape[a]
        bad = sel[sel >= n]
        if bad.size:
            raise index_out_of_range(_axis_what(self.name, axis), int(bad[0]), n)
        _check_found(self.name, sel.size, count[0])
        return np.take(src, sel, axis=a)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], count: Sequence[sympy.Expr],
                 axis: int | None) -> None:
        (x, cond), (out,) = inputs, outputs
        a = 0 if axis is None else axis % x.ndim
        k = out.shape[a]
        n = canon(math.prod(x.shape)) if axis is None else x.shape[a]
        sel = pb.alloc([k], "int64")

        def step(p: Any, i: Any) -> Any:
            def put() -> Any:
                _check(pb, i, n, _axis_what(self.name, axis))
                _check(pb, p, k, _beyond(self.name))
                _store(pb, sel, [p], pb.cast(i, "int64"))
                return p + 1

            return pb.if_then_else(_truthy(pb, cond[i]), put, p)

        found = pb.fold([cond.shape[0]], pb.index(0), step)
        _check_total(pb, self.name, found, k)
        if axis is None:
            pb.compute(out, lambda j: x[_unravel(pb, pb.cast(sel[j], IndexType()), x.shape)])
        else:
            pb.compute(out, lambda *idx: x[idx[:a] + (pb.cast(sel[idx[a]], IndexType()),) + idx[a + 1:]])


def _axis_what(op: str, axis: int | None) -> str:
    return f"relax.{op}: a true condition entry past the {'flattened input' if axis is None else f'axis {axis}'}"


# -- unique ----------------------------------------------------------------------------------------------------------


def _nan_key(v: Any) -> tuple[bool, Any]:
    f = float(v) if isinstance(v, (float, np.floating)) else None
    if f is not None and f != f:
        return (True, 0)
    return (False, v.item() if isinstance(v, np.generic) else v)


def _unique_items(x: np.ndarray, axis: int | None) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """The items compared (elements, or slices along axis moved first) and their keys."""
    items = x.reshape(-1, 1) if axis is None else np.moveaxis(x, axis % x.ndim, 0).reshape(x.shape[axis % x.ndim], -1)
    return items, [tuple(_nan_key(v) for v in row) for row in items]


def _unique_np(x: np.ndarray, sorted_: bool, axis: int | None) -> tuple[np.ndarray, ...]:
    """Y, indices, inverse_indices, counts as numpy's unique (ONNX Unique)."""
    items, keys = _unique_items(x, axis)
    first: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
        counts[key] = counts.get(key, 0) + 1
    order = sorted(first, key=lambda kk: kk) if sorted_ else list(first)
    pos = {key: r for r, key in enumerate(order)}
    idx = np.array([first[key] for key in order], dtype=np.int64)
    inverse = np.array([pos[key] for key in keys], dtype=np.int64)
    cnt = np.array([counts[key] for key in order], dtype=np.int64)
    if axis is None:
        y = x.reshape(-1)[idx]
    else:
        y = np.take(x, idx, axis=axis % x.ndim)
    return y, idx, inverse, cnt


class _UniquePlan:
    """Item access for the unique programs: n items, each of `size` elements."""

    def __init__(self, pb: Any, x: Any, axis: int | None):
        self.pb, self.x = pb, x
        self.a = None if axis is None else axis % x.ndim
        if self.a is None:
            self.n, self.size, self.other = canon(math.prod(x.shape)), sympy.Integer(1), ()
        else:
            self.other = tuple(d for i, d in enumerate(x.shape) if i != self.a)
            self.n, self.size = x.shape[self.a], canon(math.prod(self.other))

    def at(self, i: Any, t: Any) -> tuple[Any, ...]:
        if self.a is None:
            return _unravel(self.pb, i, self.x.shape)
        o = _unravel(self.pb, t, self.other)
        return o[:self.a] + (i,) + o[self.a:]

    def _elem_eq(self, u: Any, v: Any) -> Any:
        if u.is_float:
            return u.eq(v) | (u.ne(u) & v.ne(v))
        return u.eq(v)

    def _elem_less(self, u: Any, v: Any) -> Any:
        if u.is_float:
            return (u < v) | (u.eq(u) & v.ne(v))
        if u.type == _i1():  # false before true (a signed i1 compare has true, -1, first)
            return u.ne(v) & v
        return u < v

    def eq(self, i: Any, j: Any) -> Any:
        pb = self.pb
        return pb.fold([self.size], pb.lift(True, _i1()),
                       lambda acc, t: acc & self._elem_eq(self.x[self.at(i, t)], self.x[self.at(j, t)]))

    def less(self, i: Any, j: Any) -> Any:
        """Item i sorts before item j (lexicographic over the item's elements)."""
        pb = self.pb

        def step(state: Any, t: Any) -> Any:  # 0 equal so far, 1 less, 2 greater
            u, v = self.x[self.at(i, t)], self.x[self.at(j, t)]
            here = pb.select(self._elem_less(u, v), pb.index(1), pb.select(self._elem_less(v, u), pb.index(2), 0))
            return pb.select(state.eq(0), here, state)

        return pb.fold([self.size], pb.index(0), step).eq(1)

    def item(self, order: Any, p: Any) -> Any:
        """The item at position p of an order buffer (item indices)."""
        return self.pb.cast(order[p], IndexType())

    def sorted_order(self) -> Any:
        """A scratch buffer: the item indices sorted by `less`, equal items
        in index order (so each run of equal items starts at its first
        occurrence), by a bottom-up merge sort: O(n log n) comparisons,
        where comparing every pair would take O(n^2)."""
        pb = self.pb
        n = pb.index(self.n)
        order, merged = pb.alloc([self.n], "int64"), pb.alloc([self.n], "int64")
        i64 = order.type.element_type
        _loops(pb, [self.n], lambda i: _store(pb, order, [i], pb.cast(i, i64)))
        width, left = _cell(pb, 1), _cell(pb, 0)

        def merge_runs(w: Any) -> None:
            """Merges each two neighbouring sorted runs of w items into merged, then back into order."""

            def merge(r: Any) -> None:
                lo = r * (w * 2)
                mid, hi = pb.min(lo + w, n), pb.min(lo + w * 2, n)
                _put(pb, left, lo)

                def take(t: Any) -> None:  # position lo + t from the left run (at i) or the right one (at j)
                    i = _get(pb, left)
                    j = mid + t - (i - lo)  # t items taken so far, i - lo of them from the left
                    right = pb.if_then_else(
                        i < mid,
                        lambda: pb.if_then_else(j < hi, lambda: self.less(self.item(order, j), self.item(order, i)),
                                                False),
                        True)  # stable: the left run wins ties
                    _store(pb, merged, [lo + t], order[pb.select(right, j, i)])
                    _put(pb, left, pb.select(right, i, i + 1))

                _loops(pb, [hi - lo], take)

            _loops(pb, [(n + w * 2 - 1) // (w * 2)], merge)
            _loops(pb, [self.n], lambda i: _store(pb, order, [i], merged[i]))

        def merge_pass(_: Any) -> None:  # widths 1, 2, 4, ... while below n: at most 63 passes
            w = _get(pb, width)

            def run() -> None:
                merge_runs(w)
                _put(pb, width, w * 2)

            _when(pb, w < n, run)

        _loops(pb, [63], merge_pass)
        return order

    def starts_run(self, order: Any, p: Any) -> Any:
        """1 (an index) where position p of a sorted order starts a run of
        equal items (a distinct value), else 0."""
        pb = self.pb
        return pb.if_then_else(
            p.eq(0), lambda: pb.index(1),
            lambda: pb.select(self.eq(self.item(order, p - 1), self.item(order, p)), pb.index(0), pb.index(1)))

    def count(self, order: Any) -> Any:
        """The number of distinct items, from their sorted order."""
        pb = self.pb
        return pb.fold([self.n], pb.index(0), lambda acc, p: acc + self.starts_run(order, p))


@register_op
class UniqueCount(OpSpec):
    """relax.unique_count: the number of distinct items of x (elements, or
    slices along `axis`), as an int64 [1] tensor: unique_fill's count."""

    name = "unique_count"
    inputs = ("x",)
    params = {"axis": Param("int", None)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, axis: int | None) -> TensorType:
        _unique_check(ctx, x, axis)
        return _count_out(x)

    def reference(self, x: np.ndarray, axis: int | None) -> np.ndarray:
        return np.array([len(set(_unique_items(x, axis)[1]))], dtype=np.int64)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: int | None) -> None:
        (x,), (out,) = inputs, outputs
        plan = _UniquePlan(pb, x, axis)
        _store(pb, out, [0], pb.cast(plan.count(plan.sorted_order()), "int64"))


def _unique_check(ctx: Infer, x: TensorType, axis: int | None) -> int | None:
    if x.dtype == "bool":
        return None if axis is None else ctx.axis(axis, x.ndim)
    if axis is None:
        return None
    if x.ndim == 0:
        ctx.fail("an axis needs x of rank >= 1")
    return ctx.axis(axis, x.ndim)


@register_op
class UniqueFill(OpSpec):
    """relax.unique_fill: ONNX Unique given its count k (unique_count of
    x): a tuple (Y, indices, inverse_indices, counts) as numpy's unique
    with return_index, return_inverse, return_counts: Y the k distinct
    items (elements of x flattened when axis is None, else slices along
    axis) sorted ascending (lexicographically for slices) or, with
    sorted=False, in order of first occurrence; indices their first
    occurrences, inverse_indices the position in Y of every item, counts
    how often each occurs."""

    name = "unique_fill"
    inputs = ("x",)
    params = {"count": Param("dims", REQUIRED), "sorted": Param("bool", True), "axis": Param("int", None)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, count: Sequence[sympy.Expr], sorted: bool,
              axis: int | None) -> TupleType:
        k = _count_param(ctx, count)
        a = _unique_check(ctx, x, axis)
        if a is None:
            y, n = [k], canon(math.prod(x.sym_shape))
        else:
            y = list(x.sym_shape)
            y[a] = k
            n = x.sym_shape[a]
        return TupleType((tensor(y, x.dtype), tensor([k], "int64"), tensor([n], "int64"), tensor([k], "int64")))

    def reference(self, x: np.ndarray, count: tuple[int, ...], sorted: bool,
                  axis: int | None) -> tuple[np.ndarray, ...]:
        out = _unique_np(x, sorted, axis)
        _check_found(self.name, out[1].size, count[0])
        return out

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], count: Sequence[sympy.Expr], sorted: bool,
                 axis: int | None) -> None:
        (x,), (y, idx, inv, cnt) = inputs, outputs
        plan = _UniquePlan(pb, x, axis)
        k = idx.shape[0]
        order = plan.sorted_order()
        # one scan of the sorted order: each item's run (a distinct value, in sorted rank), each run's first
        # item (its first occurrence: the sort is stable) and length
        run_of, first_of, length = (pb.alloc([plan.n], "int64") for _ in range(3))
        i64 = run_of.type.element_type
        runs = _cell(pb)

        def scan(p: Any) -> None:
            starts = plan.starts_run(order, p)
            g = _get(pb, runs) + starts - 1
            _put(pb, runs, g + 1)
            it = plan.item(order, p)
            _store(pb, run_of, [it], pb.cast(g, i64))

            def start() -> None:
                _store(pb, first_of, [g], pb.cast(it, i64))
                _store(pb, length, [g], pb.const(0, i64))

            _when(pb, starts.ne(0), start)
            _store(pb, length, [g], length[g] + 1)

        _loops(pb, [plan.n], scan)
        found = _get(pb, runs)
        _check(pb, found, canon(k + 1), _beyond(self.name))
        _check_total(pb, self.name, found, k)
        rank = run_of  # replaced below unless sorted, where a run's rank is its sorted position
        if not sorted:  # ranked by first occurrence: in index order, an item that is its run's first takes the next
            rank, ranked = pb.alloc([plan.n], "int64"), _cell(pb)

            def number(i: Any) -> None:
                g = pb.cast(run_of[i], IndexType())

                def next_rank() -> None:
                    r = _get(pb, ranked)
                    _store(pb, rank, [g], pb.cast(r, i64))
                    _put(pb, ranked, r + 1)

                _when(pb, pb.cast(first_of[g], IndexType()).eq(i), next_rank)

            _loops(pb, [plan.n], number)

        def rank_of(g: Any) -> Any:
            return pb.cast(rank[g], IndexType()) if not sorted else g

        def put(g: Any) -> None:
            r, i = rank_of(g), pb.cast(first_of[g], IndexType())
            _check(pb, r, k, _beyond(self.name))
            _loops(pb, [plan.size], lambda t: _store(pb, y, _y_at(plan, r, t), x[plan.at(i, t)]))
            _store(pb, idx, [r], first_of[g])
            _store(pb, cnt, [r], length[g])

        _loops(pb, [k], put)
        _loops(pb, [plan.n], lambda i: _store(pb, inv, [i], pb.cast(rank_of(pb.cast(run_of[i], IndexType())), i64)))


def _y_at(plan: _UniquePlan, r: Any, t: Any) -> tuple[Any, ...]:
    if plan.a is None:
        return (r,)
    o = _unravel(plan.pb, t, plan.other)
    return o[:plan.a] + (r,) + o[plan.a:]


# -- topk with a run-time k ------------------------------------------------------------------------------------------


@register_op
class TopKFill(OpSpec):
    """relax.topk_fill: topk with k a dims parameter [k] (a symbol bound at
    run time, e.g. from ONNX TopK's K input): as relax.topk, with k larger
    than the axis a BoundsError when the program runs."""

    name = "topk_fill"
    inputs = ("x",)
    params = {"count": Param("dims", REQUIRED), "axis": Param("int", -1), "largest": Param("bool", True),
              "sorted": Param("bool", True)}
    pattern = OPAQUE

    def infer(self, ctx: Infer, x: TensorType, count: Sequence[sympy.Expr], axis: int, largest: bool,
              sorted: bool) -> TupleType:
        k = _count_param(ctx, count)
        if x.ndim == 0:
            ctx.fail("x must have rank >= 1")
        if x.dtype == "bool":
            ctx.fail("x must be numeric, got bool")
        a = ctx.axis(axis, x.ndim)
        n = canon(x.sym_shape[a])
        if canon(n - k).is_negative:
            ctx.fail(f"k {dim_to_str(k)} exceeds the axis dim {dim_to_str(n)}")
        shape = list(x.sym_shape)
        shape[a] = k
        return TupleType((tensor(shape, x.dtype), tensor(shape, "int64")))

    def reference(self, x: np.ndarray, count: tuple[int, ...], axis: int, largest: bool,
                  sorted: bool) -> tuple[np.ndarray, np.ndarray]:
        return TopK().reference(x, k=count[0], axis=axis, largest=largest, sorted=sorted)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], count: Sequence[sympy.Expr], axis: int,
                 largest: bool, sorted: bool) -> None:
        (x,), (vals, inds) = inputs, outputs
        a = axis % x.ndim
        _check(pb, vals.shape[a], canon(x.shape[a] + 1), f"relax.topk k along axis {a}")
        topk_picks(pb, x, vals, inds, a, largest)


# -- non_max_suppression ---------------------------------------------------------------------------------------------

_NMS_INPUTS = ("boxes", "scores", "max_output_boxes_per_class", "iou_threshold", "score_threshold")
_NMS_PARAMS = {"center_point_box": Param("int", 0), "has_score_threshold": Param("bool", False)}


def _nms_check(ctx: Infer, boxes: TensorType, scores: TensorType, limits: Sequence[TensorType],
               center_point_box: int) -> None:
    if boxes.ndim != 3 or scores.ndim != 3:
        ctx.fail(f"boxes must be [batches, boxes, 4] and scores [batches, classes, boxes], got ranks "
                 f"{boxes.ndim} and {scores.ndim}")
    if not dtypes.is_float(boxes.dtype) or scores.dtype != boxes.dtype:
        ctx.fail(f"boxes and scores must be floats of one dtype, got {boxes.dtype} and {scores.dtype}")
    ctx.same(boxes.sym_shape[2], 4, "boxes' last dim (4 coordinates)")
    ctx.same(boxes.sym_shape[0], scores.sym_shape[0], "batches of boxes vs scores")
    ctx.same(boxes.sym_shape[1], scores.sym_shape[2], "boxes of boxes vs scores")
    if center_point_box not in (0, 1):
        ctx.fail(f"center_point_box must be 0 or 1, got {center_point_box}")
    for name, t, dtype in zip(_NMS_INPUTS[2:], limits, ("int64", boxes.dtype, boxes.dtype)):
        if t.ndim > 1 or t.dtype != dtype or not all(canon(d) == 1 for d in t.sym_shape):
            ctx.fail(f"{name} must be one {dtype} value (shape [] or [1]), got {shape_to_str(t.sym_shape)} {t.dtype}")


def _nms_limits(max_out: np.ndarray, iou: np.ndarray, score: np.ndarray, has_score_threshold: bool) -> dict[str, Any]:
    return {"max_output_boxes_per_class": max(int(max_out.reshape(-1)[0]), 0),
            "iou_threshold": iou.reshape(-1)[0],
            "score_threshold": score.reshape(-1)[0] if has_score_threshold else None}


def _corners(b: Sequence[Any], center: int, mn: Callable[..., Any], mx: Callable[..., Any]) -> tuple[Any, ...]:
    """x_min, x_max, y_min, y_max of a box ([y1, x1, y2, x2], or [xc, yc, w, h] when center)."""
    if center:
        return b[0] - b[2] / 2, b[0] + b[2] / 2, b[1] - b[3] / 2, b[1] + b[3] / 2
    return mn(b[1], b[3]), mx(b[1], b[3]), mn(b[0], b[2]), mx(b[0], b[2])


def _iou_over(b1: Sequence[Any], b2: Sequence[Any], center: int, thr: Any, mn: Callable[..., Any],
              mx: Callable[..., Any], both: Callable[..., Any]) -> Any:
    """IoU(b1, b2) > thr as ONNX's reference computes it (no overlap, an empty box or union: False)."""
    x1n, x1x, y1n, y1x = _corners(b1, center, mn, mx)
    x2n, x2x, y2n, y2x = _corners(b2, center, mn, mx)
    ixn, ixx, iyn, iyx = mx(x1n, x2n), mn(x1x, x2x), mx(y1n, y2n), mn(y1x, y2x)
    inter = (ixx - ixn) * (iyx - iyn)
    a1, a2 = (x1x - x1n) * (y1x - y1n), (x2x - x2n) * (y2x - y2n)
    union = a1 + a2 - inter
    return both(ixx > ixn, iyx > iyn, inter > 0, a1 > 0, a2 > 0, union > 0, inter / union > thr)


def _nms_np(boxes: np.ndarray, scores: np.ndarray, max_output_boxes_per_class: int, iou_threshold: float,
            score_threshold: float | None, center_point_box: int) -> np.ndarray:
    thr = iou_threshold
    out: list[tuple[int, int, int]] = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = [i for i in range(s.size) if s[i] == s[i] and (score_threshold is None or s[i] > score_threshold)]
            cand.sort(key=lambda i: (-s[i], i))
            chosen: list[int] = []
            for i in cand:
                if len(chosen) >= max_output_boxes_per_class:
                    break
                if not any(_iou_over(boxes[b, i], boxes[b, j], center_point_box, thr, np.minimum, np.maximum,
                                     lambda *fs: all(bool(f) for f in fs)) for j in chosen):
                    chosen.append(i)
                    out.append((b, c, i))
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def _nms_program(pb: Any, inputs: list[Any], center_point_box: int, has_score_threshold: bool,
                 on_select: Callable[..., None]) -> None:
    """The greedy selection per batch and class, calling on_select(b, c, box)
    for each box kept, in ONNX's order; the limits read once, at run time."""
    boxes, scores, max_t, iou_t, score_t = inputs
    nb, ncls, n = scores.shape

    def first(t: Any) -> Any:
        return t[tuple(pb.index(0) for _ in range(t.ndim))]

    max_out = pb.max(first(max_t), 0)
    thr = first(iou_t)
    sthr = first(score_t) if has_score_threshold else None
    chosen = pb.alloc([n], "int64")
    nsel, prev = _cell(pb), _cell(pb)
    none = pb.index(n)
    t = pb.lift(True, _i1())

    def better(av: Any, ai: Any, bv: Any, bi: Any) -> Any:
        return (av > bv) | (av.eq(bv) & (ai < bi))

    def box(b: Any, i: Any) -> list[Any]:
        return [boxes[b, i, pb.index(q)] for q in range(4)]

    def both(*fs: Any) -> Any:
        acc = fs[0]
        for f in fs[1:]:
            acc = acc & f
        return acc

    def per_class(b: Any, c: Any) -> None:
        _put(pb, nsel, 0)
        _put(pb, prev, none)

        def rank(r: Any) -> None:
            p = _get(pb, prev)

            def step(best: Any, i: Any) -> Any:
                s = scores[b, c, i]
                ok = s.eq(s) if sthr is None else s > sthr

                def after() -> Any:
                    return pb.if_then_else(r.eq(0), lambda: t, lambda: pb.if_then_else(
                        p.ne(none), lambda: better(scores[b, c, p], p, s, i), False))

                def beats() -> Any:
                    return pb.if_then_else(best.eq(none), lambda: t, lambda: better(s, i, scores[b, c, best], best))

                take = pb.if_then_else(ok, lambda: pb.if_then_else(after(), beats, False), False)
                return pb.select(take, i, best)

            best = pb.fold([n], none, step)
            _put(pb, prev, best)
            k = _get(pb, nsel)

            def consider() -> None:
                def suppressed(acc: Any, s: Any) -> Any:
                    def over() -> Any:
                        j = pb.cast(chosen[s], IndexType())
                        return _iou_over(box(b, best), box(b, j), center_point_box, thr, pb.min, pb.max, both)

                    return acc | pb.if_then_else(s < k, over, False)

                gone = pb.fold([n], pb.lift(False, _i1()), suppressed)

                def keep() -> None:
                    _store(pb, chosen, [k], pb.cast(best, "int64"))
                    _put(pb, nsel, k + 1)
                    on_select(b, c, best)

                _when(pb, gone.eq(pb.lift(False, _i1())), keep)

            _when(pb, best.ne(none) & (pb.cast(k, "int64") < max_out), consider)

        _loops(pb, [n], rank)

    _loops(pb, [nb, ncls], per_class)


@register_op
class NmsCount(OpSpec):
    """relax.nms_count: how many boxes ONNX NonMaxSuppression selects over
    all batches and classes, as an int64 [1] tensor:
    non_max_suppression_fill's count."""

    name = "nms_count"
    inputs = _NMS_INPUTS
    params = _NMS_PARAMS
    pattern = OPAQUE

    def infer(self, ctx: Infer, boxes: TensorType, scores: TensorType, *limits: TensorType,
              center_point_box: int, has_score_threshold: bool) -> TensorType:
        _nms_check(ctx, boxes, scores, limits, center_point_box)
        return tensor([1], "int64")

    def reference(self, boxes: np.ndarray, scores: np.ndarray, *limits: np.ndarray, center_point_box: int,
                  has_score_threshold: bool) -> np.ndarray:
        out = _nms_np(boxes, scores, center_point_box=center_point_box, **_nms_limits(*limits, has_score_threshold))
        return np.array([out.shape[0]], dtype=np.int64)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], center_point_box: int,
                 has_score_threshold: bool) -> None:
        (out,) = outputs
        total = _cell(pb)
        _nms_program(pb, inputs, center_point_box, has_score_threshold,
                     lambda b, c, i: _put(pb, total, _get(pb, total) + 1))
        _store(pb, out, [0], total[pb.index(0)])


@register_op
class NonMaxSuppressionFill(OpSpec):
    """relax.non_max_suppression_fill: ONNX NonMaxSuppression given its
    count k (nms_count): int64 [k, 3] rows (batch, class, box) of the
    selected boxes, per batch then class, best score first. Boxes are
    [y1, x1, y2, x2] (any corner order) or, with center_point_box=1,
    [x_center, y_center, width, height]; a box is kept unless its IoU with
    a kept box of its class exceeds iou_threshold; with has_score_threshold
    only scores above score_threshold are candidates; at most
    max_output_boxes_per_class per class (0 or less: none). The three limits
    are one-element tensors, read when the program runs."""

    name = "non_max_suppression_fill"
    inputs = _NMS_INPUTS
    params = {"count": Param("dims", REQUIRED), **_NMS_PARAMS}
    pattern = OPAQUE

    def infer(self, ctx: Infer, boxes: TensorType, scores: TensorType, *limits: TensorType,
              count: Sequence[sympy.Expr], center_point_box: int, has_score_threshold: bool) -> TensorType:
        k = _count_param(ctx, count)
        _nms_check(ctx, boxes, scores, limits, center_point_box)
        return tensor([k, 3], "int64")

    def reference(self, boxes: np.ndarray, scores: np.ndarray, *limits: np.ndarray, count: tuple[int, ...],
                  center_point_box: int, has_score_threshold: bool) -> np.ndarray:
        out = _nms_np(boxes, scores, center_point_box=center_point_box, **_nms_limits(*limits, has_score_threshold))
        _check_found(self.name, out.shape[0], count[0])
        return out

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], count: Sequence[sympy.Expr],
                 center_point_box: int, has_score_threshold: bool) -> None:
        (out,) = outputs
        k = out.shape[0]
        total = _cell(pb)

        def put(b: Any, c: Any, i: Any) -> None:
            p = _get(pb, total)
            _check(pb, p, k, _beyond(self.name))
            for q, v in enumerate((b, c, i)):
                _store(pb, out, [p, q], pb.cast(v, "int64"))
            _put(pb, total, p + 1)

        _nms_program(pb, inputs, center_point_box, has_score_threshold, put)
        _check_total(pb, self.name, _get(pb, total), k)


# -- composite builder functions -------------------------------------------------------------------------------------


def _emit(name: str, *args: Any, **params: Any) -> Any:
    from relax_xdsl.op import emit
    from relax_xdsl.ops.registry import get_spec

    return emit(get_spec(name), *args, **params)


def _bind_count(count: Any) -> sympy.Expr:
    """tensor_to_shape of an int64 [1] count: its fresh symbol k."""
    (k,) = count.builder.tensor_to_shape(count).sym_value
    return k


def nonzero(x: Any) -> Any:
    """ONNX NonZero: int64 [rank, k] indices of x's nonzero elements (k bound at run time)."""
    return _emit("nonzero_fill", x, count=[_bind_count(_emit("count_nonzero", x))])


def compress(x: Any, condition: Any, axis: int | None = None) -> Any:
    """ONNX Compress: the slices of x along axis (x flattened when None) where condition is true."""
    return _emit("compress_fill", x, condition, count=[_bind_count(_emit("count_nonzero", condition))], axis=axis)


def unique(x: Any, sorted: bool = True, axis: int | None = None) -> tuple[Any, Any, Any, Any]:
    """ONNX Unique: (Y, indices, inverse_indices, counts), k distinct items bound at run time."""
    k = _bind_count(_emit("unique_count", x, axis=axis))
    out = _emit("unique_fill", x, count=[k], sorted=sorted, axis=axis)
    return out[0], out[1], out[2], out[3]


def topk_dynamic(x: Any, k: Any, axis: int = -1, largest: bool = True, sorted: bool = True) -> tuple[Any, Any]:
    """topk with k an int64 tensor of one element (read at run time)."""
    from relax_xdsl.errors import RelaxError

    if k.dtype != "int64" or math.prod(int(d) if canon(d).is_Integer else 2 for d in k.shape) != 1:
        raise RelaxError(f"topk_dynamic: k must be an int64 tensor of one element, got {k.type}")
    if k.ndim != 1:
        k = _emit("reshape", k, shape=[1])
    out = _emit("topk_fill", x, count=[_bind_count(k)], axis=axis, largest=largest, sorted=sorted)
    return out[0], out[1]


def non_max_suppression(boxes: Any, scores: Any, max_output_boxes_per_class: Any = 0, iou_threshold: Any = 0.0,
                        score_threshold: Any = None, center_point_box: int = 0) -> Any:
    """ONNX NonMaxSuppression: int64 [k, 3] (batch, class, box) rows, k bound at run time.
    The limits are numbers or one-element tensors (int64, and boxes' dtype)."""
    fb = boxes.builder

    def value(v: Any, dtype: str) -> Any:
        return v if hasattr(v, "builder") else fb.const(np.array([v], dtype=dtype))

    limits = (value(max_output_boxes_per_class, "int64"), value(iou_threshold, boxes.dtype),
              value(0.0 if score_threshold is None else score_threshold, boxes.dtype))
    params = {"center_point_box": center_point_box, "has_score_threshold": score_threshold is not None}
    count = _emit("nms_count", boxes, scores, *limits, **params)
    return _emit("non_max_suppression_fill", boxes, scores, *limits, count=[_bind_count(count)], **params)


COMPOSITES = {"nonzero": nonzero, "compress": compress, "unique": unique, "topk_dynamic": topk_dynamic,
              "non_max_suppression": non_max_suppression}
