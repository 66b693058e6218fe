"""Shape manipulation ops (TVM Relax names): reshape, permute_dims, flatten,
concat, split, strided_slice, take, broadcast_to, expand_dims, squeeze.

Shape rules keep symbolic dims exact: `reshape([b, t, 256], [-1, 64])` is
`[4*b*t, 64]`, `concat([n, 4], [m, 4])` is `[n + m, 4]`. Element counts or
dims that cannot be proven equal become runtime assumptions.
Legalizations are index maps: each output element reads one input element
(a flat row-major index for reshape, a guarded choice of operand for concat).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy
from xdsl.dialects.builtin import IndexType, TupleType

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import CheckIndexOp
from relax_xdsl.errors import index_out_of_range
from relax_xdsl.ops.registry import (
    INJECTIVE,
    REQUIRED,
    Infer,
    OpSpec,
    Param,
    register_op,
    tensor,
)
from relax_xdsl.shape import canon, ceildiv, dim_to_str, floordiv, mod, shape_to_str


def _prod(dims: Sequence[Any]) -> sympy.Expr:
    return canon(sympy.Mul(*dims)) if dims else sympy.Integer(1)


def _flat_index(pb: Any, shape: Sequence[Any], idx: Sequence[Any]) -> Any:
    """Row-major linear index of `idx` in `shape` (an index Expr)."""
    lin = None
    for d, i in zip(shape, idx):
        lin = i if lin is None else lin * pb.index(d) + i
    return lin if lin is not None else pb.index(0)


def _unflatten(pb: Any, shape: Sequence[Any], lin: Any) -> tuple[Any, ...]:
    """The index in `shape` of row-major position `lin` (0 <= lin < size, so
    the outermost dim needs no modulo)."""
    out = []
    stride = sympy.Integer(1)
    for k, d in enumerate(reversed(shape)):
        q = lin // pb.index(stride) if stride != 1 else lin
        out.append(q if k == len(shape) - 1 else q % pb.index(d))
        stride = canon(stride * d)
    return tuple(reversed(out))


def _reshape_groups(src: Sequence[Any], dst: Sequence[Any]) -> list[tuple[int, int, int, int]]:
    """Runs of dims (src[i0:i1] <-> dst[j0:j1]) with equal element counts, as
    fine as the symbolic shapes allow: a reshape then indexes each run on its
    own instead of linearizing the whole index, so a split or merge of two
    dims costs one division by a constant, not a divmod per dim by symbols."""
    pdst = [sympy.Integer(1)]
    for d in dst:
        pdst.append(canon(pdst[-1] * d))
    groups = []
    i0 = j0 = 0
    pa = sympy.Integer(1)
    for i, d in enumerate(src[:-1], start=1):
        pa = canon(pa * d)
        j = next((j for j in range(j0, len(dst)) if pdst[j] == pa), None)
        if j is not None:  # j == j0: src[i0:i] are all 1s
            groups.append((i0, i, j0, j))
            i0, j0 = i, j
    groups.append((i0, len(src), j0, len(dst)))
    return groups


def _reshape_legalize(pb: Any, x: Any, out: Any) -> None:
    if not x.ndim:
        pb.compute(out, lambda *idx: x[()])
        return
    groups = _reshape_groups(x.shape, out.shape)

    def element(*idx: Any) -> Any:
        src: list[Any] = []
        for i0, i1, j0, j1 in groups:
            src.extend(_unflatten(pb, x.shape[i0:i1], _flat_index(pb, out.shape[j0:j1], idx[j0:j1])))
        return x[tuple(src)]

    pb.compute(out, element)


@register_op
class Reshape(OpSpec):
    """relax.reshape: same elements, new shape; one -1 dim is inferred
    (exact symbolic division where possible)."""

    name = "reshape"
    inputs = ("x",)
    params = {"shape": Param("dims", REQUIRED)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, shape: tuple[sympy.Expr, ...]) -> TensorType:
        total = _prod(x.sym_shape)
        holes = [i for i, d in enumerate(shape) if d == -1]
        if len(holes) > 1:
            ctx.fail(f"at most one -1 dim in the target shape {list(map(dim_to_str, shape))}")
        for d in shape:
            if d != -1 and (d.is_Integer and d < 0 or d == 0):
                ctx.fail(f"target dim {dim_to_str(d)} must be positive (or -1)")
        if holes:
            known = _prod([d for d in shape if d != -1])
            q = canon(total / known)
            num, den = sympy.fraction(sympy.together(q))
            if den == 1:  # exact, but canon's expanded quotient may not show it: (8*b*p + 8*b*s) / (p + s)
                q = canon(num)
            else:
                if known.is_positive is not True:  # symbols may be 0: the division needs a divisor >= 1
                    ctx.same(sympy.Max(known, 1), known, f"divisor {dim_to_str(known)} of the -1 dim must be >= 1")
                q = floordiv(total, known)
                rem = mod(total, known)
                if rem.is_Integer and rem != 0:
                    ctx.fail(f"cannot reshape {shape_to_str(x.sym_shape)} ({dim_to_str(total)} elements) "
                             f"into {list(map(dim_to_str, shape))}: not divisible by {dim_to_str(known)}")
                ctx.same(rem, 0, f"element count {dim_to_str(total)} divisible by {dim_to_str(known)}")
            out = tuple(q if d == -1 else d for d in shape)
        else:
            out = tuple(shape)
            ctx.same(_prod(out), total, "element count")
        return tensor(out, x.dtype)

    def reference(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.reshape(x, shape).copy()

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], shape: Any) -> None:
        _reshape_legalize(pb, inputs[0], outputs[0])


@register_op
class Flatten(OpSpec):
    """relax.flatten: to one dimension (the product of all dims)."""

    name = "flatten"
    inputs = ("x",)
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType) -> TensorType:
        return tensor((_prod(x.sym_shape),), x.dtype)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(-1).copy()

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any]) -> None:
        _reshape_legalize(pb, inputs[0], outputs[0])


@register_op
class PermuteDims(OpSpec):
    """relax.permute_dims: out dim i is x dim axes[i] (reversed when axes is None)."""

    name = "permute_dims"
    inputs = ("x",)
    params = {"axes": Param("ints", None)}
    pattern = INJECTIVE

    def _axes(self, ctx: Infer, ndim: int, axes: tuple[int, ...] | None) -> tuple[int, ...]:
        if axes is None:
            return tuple(reversed(range(ndim)))
        if len(axes) != ndim:
            ctx.fail(f"axes {list(axes)} must list each of the {ndim} axes once")
        return ctx.axes(axes, ndim, "axes")

    def infer(self, ctx: Infer, x: TensorType, axes: tuple[int, ...] | None) -> TensorType:
        perm = self._axes(ctx, x.ndim, axes)
        return tensor(tuple(x.sym_shape[a] for a in perm), x.dtype)

    def reference(self, x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(x, axes))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axes: tuple[int, ...] | None) -> None:
        (x,), (out,) = inputs, outputs
        perm = self._axes(Infer(self.name), x.ndim, axes)

        def body(*idx: Any) -> Any:
            src: list[Any] = [None] * x.ndim
            for i, a in enumerate(perm):
                src[a] = idx[i]
            return x[tuple(src)]

        pb.compute(out, body)


@register_op
class Concat(OpSpec):
    """relax.concat: join along `axis`; the other dims must agree."""

    name = "concat"
    inputs = ("*tensors",)
    params = {"axis": Param("int", 0)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, *tensors: TensorType, axis: int) -> TensorType:
        first = tensors[0]
        if first.ndim == 0:
            ctx.fail("cannot concatenate scalars")
        a = ctx.axis(axis, first.ndim)
        dims = list(first.sym_shape)
        for k, t in enumerate(tensors[1:], 1):
            if t.ndim != first.ndim:
                ctx.fail(f"operand {k} has rank {t.ndim}, operand 0 rank {first.ndim}")
            if t.dtype != first.dtype:
                ctx.fail(f"operand {k} has dtype {t.dtype}, operand 0 {first.dtype}")
            for i, d in enumerate(t.sym_shape):
                if i == a:
                    dims[i] = canon(dims[i] + d)
                else:
                    dims[i] = ctx.same(dims[i], d, f"operand {k} dim {i}")
        return tensor(dims, first.dtype)

    def reference(self, *tensors: np.ndarray, axis: int) -> np.ndarray:
        return np.concatenate(tensors, axis=axis)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: int) -> None:
        (out,) = outputs
        a = axis % out.ndim
        offsets = [sympy.Integer(0)]
        for t in inputs:
            offsets.append(canon(offsets[-1] + t.shape[a]))

        def pick(lo: int, hi: int, idx: tuple[Any, ...]) -> Any:
            """The element at idx from inputs lo..hi-1: a binary search over
            the offsets, so k inputs nest log2(k) choices, not k (DenseNet
            joins dozens along its channels; a chain that deep slowed
            canonicalization and every element's load)."""
            if hi - lo == 1:
                local = idx[:a] + (idx[a] - pb.index(offsets[lo]) if offsets[lo] != 0 else idx[a],) + idx[a + 1:]
                return inputs[lo][local]
            mid = (lo + hi) // 2
            return pb.if_then_else(idx[a] < pb.index(offsets[mid]), lambda: pick(lo, mid, idx),
                                   lambda: pick(mid, hi, idx))

        pb.compute(out, lambda *idx: pick(0, len(inputs), idx))


@register_op
class Split(OpSpec):
    """relax.split: `indices_or_sections` an int (equal sections; the dim must
    divide) or a list of split points; returns a tuple."""

    name = "split"
    inputs = ("x",)
    params = {"indices_or_sections": Param("int_or_ints", REQUIRED), "axis": Param("int", 0)}
    pattern = INJECTIVE

    def _bounds(self, ctx: Infer, x: TensorType, indices_or_sections: int | tuple[int, ...],
                axis: int) -> tuple[int, list[tuple[sympy.Expr, sympy.Expr]]]:
        """(axis, [(offset, extent)] per output)."""
        if x.ndim == 0:
            ctx.fail("cannot split a scalar")
        a = ctx.axis(axis, x.ndim)
        d = x.sym_shape[a]
        if isinstance(indices_or_sections, int):
            s = indices_or_sections
            if s < 1:
                ctx.fail(f"sections must be >= 1, got {s}")
            if d.is_Integer and int(d) % s:
                ctx.fail(f"dim {a} of size {d} does not split into {s} equal sections")
            if not d.is_Integer:
                ctx.same(mod(d, s), 0, f"dim {a} ({dim_to_str(d)}) divisible by {s} sections")
            part = floordiv(d, s)
            return a, [(canon(part * k), part) for k in range(s)]
        points = list(indices_or_sections)
        if any(p < 0 for p in points) or points != sorted(points):
            ctx.fail(f"split indices {points} must be non-negative and increasing")
        bounds = [sympy.Integer(0)] + [canon(sympy.Min(p, d)) for p in points] + [d]
        return a, [(lo, canon(hi - lo)) for lo, hi in zip(bounds, bounds[1:])]

    def infer(self, ctx: Infer, x: TensorType, indices_or_sections: Any, axis: int) -> TupleType:
        a, parts = self._bounds(ctx, x, indices_or_sections, axis)
        types = []
        for _, ext in parts:
            shape = list(x.sym_shape)
            shape[a] = ext
            types.append(tensor(shape, x.dtype))
        return TupleType(tuple(types))

    def reference(self, x: np.ndarray, indices_or_sections: Any, axis: int) -> tuple[np.ndarray, ...]:
        return tuple(p.copy() for p in np.split(x, indices_or_sections, axis=axis))

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], indices_or_sections: Any, axis: int) -> None:
        (x,) = inputs
        t = TensorType.of(x.shape, x.dtype)
        a, parts = self._bounds(Infer(self.name), t, indices_or_sections, axis)
        for out, (off, _) in zip(outputs, parts):
            pb.compute(out, lambda *idx, off=off: x[idx[:a] + (idx[a] + pb.index(off),) + idx[a + 1:]])


def _slice_axis(ctx: Infer, d: sympy.Expr, begin: sympy.Expr, end: sympy.Expr, stride: int,
                assume_inbound: bool = False) -> tuple[sympy.Expr, sympy.Expr]:
    """(first index, length) of x[begin:end:stride] along a dim of size d
    (numpy semantics). Bounds may be symbolic (`x[:t]`); with
    assume_inbound a symbolic bound is taken to lie within the dim, which is
    checked at run time, so the length stays `end - begin` instead of
    `min(end, d) - begin`."""
    if stride == 0:
        ctx.fail("strides must be non-zero")
    begin, end = canon(begin), canon(end)
    if d.is_Integer and begin.is_Integer and end.is_Integer:
        rng = range(*slice(int(begin), int(end), stride).indices(int(d)))
        return sympy.Integer(rng.start if len(rng) else 0), sympy.Integer(len(rng))
    if stride < 0:
        ctx.fail("negative strides with symbolic dims or bounds are not supported")

    def clamp(v: sympy.Expr, what: str) -> sympy.Expr:
        if v.is_Integer and v >= 2**31 - 1:  # "to the end" sentinels (INT_MAX, as exporters write them)
            return d
        if v.is_nonnegative:
            pos, bounded = v, canon(sympy.Min(v, d))
        elif v.is_negative:
            pos, bounded = canon(d + v), canon(sympy.Max(d + v, 0))
        else:
            ctx.fail(f"the sign of {what} {dim_to_str(v)} is unknown")
        if assume_inbound and not v.is_Integer:
            return ctx.same(bounded, pos, f"slice {what} {dim_to_str(v)} within the dim {dim_to_str(d)}")
        return bounded

    b, e = clamp(begin, "begin"), clamp(end, "end")
    return b, canon(sympy.Max(ceildiv(e - b, stride), 0))


@register_op
class StridedSlice(OpSpec):
    """relax.strided_slice: x[begin:end:stride] along `axes` (numpy
    semantics: negative indices count from the end, out-of-range ends clamp).
    `begin`/`end` may be symbolic dims; `assume_inbound` (as TVM's) takes
    symbolic bounds to lie within the dim, checked at run time."""

    name = "strided_slice"
    inputs = ("x",)
    params = {"axes": Param("ints", REQUIRED), "begin": Param("dims", REQUIRED), "end": Param("dims", REQUIRED),
              "strides": Param("ints", None), "assume_inbound": Param("bool", False)}
    pattern = INJECTIVE

    def _plan(self, ctx: Infer, shape: Sequence[sympy.Expr], axes: Any, begin: Any, end: Any,
              strides: Any, assume_inbound: bool = False) -> dict[int, tuple[sympy.Expr, sympy.Expr, int]]:
        strides = strides if strides is not None else (1,) * len(axes)
        if not len(axes) == len(begin) == len(end) == len(strides):
            ctx.fail(f"axes {list(axes)}, begin {list(begin)}, end {list(end)} and strides {list(strides)} "
                     "must have the same length")
        norm = ctx.axes(axes, len(shape))
        plan = {}
        for a, b, e, s in zip(norm, begin, end, strides):
            first, length = _slice_axis(ctx, shape[a], b, e, s, assume_inbound)
            plan[a] = (first, length, s)
        return plan

    def infer(self, ctx: Infer, x: TensorType, axes: Any, begin: Any, end: Any, strides: Any,
              assume_inbound: bool) -> TensorType:
        plan = self._plan(ctx, x.sym_shape, axes, begin, end, strides, assume_inbound)
        return tensor([plan[i][1] if i in plan else d for i, d in enumerate(x.sym_shape)], x.dtype)

    def reference(self, x: np.ndarray, axes: Any, begin: Any, end: Any, strides: Any,
                  assume_inbound: bool) -> np.ndarray:
        idx = [slice(None)] * x.ndim
        for k, a in enumerate(axes):
            idx[a % x.ndim] = slice(int(begin[k]), int(end[k]), strides[k] if strides is not None else 1)
        return x[tuple(idx)].copy()

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axes: Any, begin: Any, end: Any,
                 strides: Any, assume_inbound: bool) -> None:
        (x,), (out,) = inputs, outputs
        plan = self._plan(Infer(self.name), x.shape, axes, begin, end, strides, assume_inbound)

        def body(*idx: Any) -> Any:
            src = []
            for i, v in enumerate(idx):
                if i in plan:
                    first, _, s = plan[i]
                    v = v * s if s != 1 else v
                    v = v + pb.index(first) if first != 0 else v
                src.append(v)
            return x[tuple(src)]

        pb.compute(out, body)


@register_op
class Take(OpSpec):
    """relax.take: elements of x at integer `indices` along `axis` (None: of
    the flattened x). Indices in [-n, n) are valid, negative ones counting
    from the end (ONNX Gather); any other index, so any index into an empty
    axis, is a BoundsError naming the op, the index and the extent, on every
    target (ONNX leaves it undefined; an error is the one behaviour no target
    can get wrong silently). The tensor program checks every index in a
    serial loop before its parallel gather: one cheap pass over the indices,
    and the gather reads only checked ones. `what`, when given, is what the
    error names instead of the op (an importer's node whose data the take
    checks: Slice's run-time axes)."""

    name = "take"
    inputs = ("x", "indices")
    params = {"axis": Param("int", None), "what": Param("str", None)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, indices: TensorType, axis: int | None,
              what: str | None) -> TensorType:
        if not dtypes.is_int(indices.dtype):
            ctx.fail(f"indices must be integers, got {indices.dtype}")
        if axis is None:
            return tensor(indices.sym_shape, x.dtype)
        if x.ndim == 0:
            ctx.fail("cannot take along an axis of a scalar")
        a = ctx.axis(axis, x.ndim)
        return tensor(x.sym_shape[:a] + indices.sym_shape + x.sym_shape[a + 1:], x.dtype)

    def reference(self, x: np.ndarray, indices: np.ndarray, axis: int | None, what: str | None) -> np.ndarray:
        src = x.reshape(-1) if axis is None else x
        a = 0 if axis is None else axis % x.ndim
        d = src.shape[a]
        i = np.minimum(indices, np.iinfo(np.int64).max).astype(np.int64) if indices.dtype == np.uint64 else \
            indices.astype(np.int64)  # as casting to index saturates uint64
        bad = (i < -d) | (i >= d)
        if bad.any():  # the first in row-major order, as the compiled check loop finds it
            raise index_out_of_range(what or _take_what(axis, a), int(i[bad][0]), d)
        return np.take(src, np.where(i < 0, i + d, i), axis=a)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: int | None, what: str | None) -> None:
        (x, ind), (out,) = inputs, outputs
        flat = axis is None
        a = 0 if flat else axis % x.ndim
        d = _prod(x.shape) if flat else x.shape[a]
        k = ind.ndim
        what = f"{what or _take_what(axis, a)} in tensor program @{pb.func.sym_name.data}"
        extent = pb.index(d)
        pb.for_each(ind.shape, lambda *j: pb.emit(CheckIndexOp(pb.cast(ind[j], IndexType()).value, extent.value, what)))

        def body(*idx: Any) -> Any:
            i = pb.cast(ind[idx[a:a + k]], IndexType()) if k else pb.cast(ind[()], IndexType())
            i = pb.select(i < 0, i + pb.index(d), i)  # checked above: -d <= i < d
            if flat:
                return x[_unflatten(pb, x.shape, i)] if x.ndim else x[()]
            return x[idx[:a] + (i,) + idx[a + k:]]

        pb.compute(out, body)


def _take_what(axis: int | None, a: int) -> str:
    return "relax.take of the flattened x" if axis is None else f"relax.take along axis {a}"


@register_op
class BroadcastTo(OpSpec):
    """relax.broadcast_to: numpy broadcasting of x to `shape`."""

    name = "broadcast_to"
    inputs = ("x",)
    params = {"shape": Param("dims", REQUIRED)}
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, shape: tuple[sympy.Expr, ...]) -> TensorType:
        if len(shape) < x.ndim:
            ctx.fail(f"target shape {shape_to_str(shape)} has lower rank than {shape_to_str(x.sym_shape)}")
        lead = len(shape) - x.ndim
        for i, d in enumerate(x.sym_shape):
            if d != 1:
                ctx.same(d, shape[lead + i], f"dim {i} vs target dim {lead + i}")
        return tensor(shape, x.dtype)

    def reference(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, shape).copy()

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], shape: Any) -> None:
        (x,), (out,) = inputs, outputs
        lead = out.ndim - x.ndim
        zero = sympy.Integer(0)
        pb.compute(out, lambda *idx: x[tuple(pb.index(zero) if d == 1 else idx[lead + i]
                                             for i, d in enumerate(x.shape))])


@register_op
class ExpandDims(OpSpec):
    """relax.expand_dims: insert size-1 dims at `axis` (positions in the output)."""

    name = "expand_dims"
    inputs = ("x",)
    params = {"axis": Param("ints", REQUIRED)}
    pattern = INJECTIVE

    def _positions(self, ctx: Infer, ndim: int, axis: tuple[int, ...]) -> tuple[int, ...]:
        return ctx.axes(axis, ndim + len(axis))

    def infer(self, ctx: Infer, x: TensorType, axis: tuple[int, ...]) -> TensorType:
        pos = set(self._positions(ctx, x.ndim, axis))
        dims = iter(x.sym_shape)
        return tensor([sympy.Integer(1) if i in pos else next(dims) for i in range(x.ndim + len(pos))], x.dtype)

    def reference(self, x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
        return np.expand_dims(x, axis).copy()

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: tuple[int, ...]) -> None:
        (x,), (out,) = inputs, outputs
        pos = set(self._positions(Infer(self.name), x.ndim, axis))
        pb.compute(out, lambda *idx: x[tuple(v for i, v in enumerate(idx) if i not in pos)])


@register_op
class Squeeze(OpSpec):
    """relax.squeeze: drop size-1 dims (`axis` None: every dim that is the
    literal 1; a symbolic dim is kept). A named symbolic dim is assumed to be
    1 and checked at run time; a dim provably not 1 is an error."""

    name = "squeeze"
    inputs = ("x",)
    params = {"axis": Param("ints", None)}
    pattern = INJECTIVE

    def _drop(self, ctx: Infer, x: TensorType, axis: tuple[int, ...] | None) -> set[int]:
        if axis is None:
            return {i for i, d in enumerate(x.sym_shape) if d == 1}
        drop = set(ctx.axes(axis, x.ndim))
        for i in drop:
            ctx.same(x.sym_shape[i], 1, f"squeezed dim {i}")
        return drop

    def infer(self, ctx: Infer, x: TensorType, axis: tuple[int, ...] | None) -> TensorType:
        drop = self._drop(ctx, x, axis)
        return tensor([d for i, d in enumerate(x.sym_shape) if i not in drop], x.dtype)

    def reference(self, x: np.ndarray, axis: tuple[int, ...] | None) -> np.ndarray:
        return np.squeeze(x, axis).copy()

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], axis: tuple[int, ...] | None) -> None:
        (x,), (out,) = inputs, outputs
        drop = self._drop(Infer(self.name), TensorType.of(x.shape, x.dtype), axis)

        def body(*idx: Any) -> Any:
            it = iter(idx)
            return x[tuple(pb.index(0) if i in drop else next(it) for i in range(x.ndim))]

        pb.compute(out, body)


class _Triangle(OpSpec):
    """relax.tril / relax.triu: the lower / upper triangle of the last two
    dims (elements with j - i <= k, resp. >= k), the rest zero (numpy's
    tril/triu; ONNX Trilu)."""

    inputs = ("x",)
    params = {"k": Param("int", 0)}
    pattern = INJECTIVE
    upper = False

    def infer(self, ctx: Infer, x: TensorType, k: int) -> TensorType:
        if x.ndim < 2:
            ctx.fail(f"x must have rank >= 2, got rank {x.ndim}")
        return tensor(x.sym_shape, x.dtype)

    def reference(self, x: np.ndarray, k: int) -> np.ndarray:
        return (np.triu if self.upper else np.tril)(x, k)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], k: int) -> None:
        (x,), (out,) = inputs, outputs
        zero = False if x.dtype == "bool" else 0.0 if dtypes.is_float(x.dtype) else 0

        def body(*idx: Any) -> Any:
            row = idx[-2] + k if k else idx[-2]
            keep = idx[-1] >= row if self.upper else idx[-1] <= row
            return pb.if_then_else(keep, lambda: x[idx], zero)

        pb.compute(out, body)


@register_op
class Tril(_Triangle):
    __doc__ = _Triangle.__doc__
    name = "tril"


@register_op
class Triu(_Triangle):
    __doc__ = _Triangle.__doc__
    name = "triu"
    upper = True
