"""Run-time forms of ONNX inputs that carry sizes (Reshape's shape, Tile's
repeats, Slice's starts, Range's bounds, ...) when they are not known at
import time: a graph input, or computed from tensor data.

Such an input is normalised with ordinary graph ops on small int64 tensors
(ONNX's 0 and -1 in Reshape, negative and out-of-range Slice bounds, Range's
length) and then turned into sizes with `tensor_to_shape`: its entries bind
FRESH symbols at run time, which the op then uses in its (static-attribute)
dims. The symbols are named after the node and input (`Reshape_3_shape0`),
so the run-time checks (a size out of range, an element count that does not
match) name the ONNX op. An output whose RANK would depend on data
(Squeeze/Unsqueeze with run-time axes) is an import error: types here have a
static rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from relax_xdsl import dtypes
from relax_xdsl.builder import Var
from relax_xdsl.frontend.onnx_import import Known, Node, Value, identifier, known_dims
from relax_xdsl.shape import Dim, canon, dim_to_str, dims_equal

_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def is_runtime(n: Node, i: int) -> bool:
    """Input `i` is present and computed at run time (not a Known)."""
    return isinstance(n.optional(i), Var)


def refuse_runtime(n: Node, i: int, what: str, why: str) -> None:
    """An import error for input `i` computed at run time where the output's
    rank (or which dims it has) would depend on the data."""
    if is_runtime(n, i):
        n.fail(f"input {i} ({what}) is computed at run time, but {why}; it must be known at import time "
               "(a constant, or computed from shapes)")


def const(value: Any, dtype: str = "int64") -> Known:
    return Known(np.array(value, dtype=dtype), dtype)


def dims_data(n: Node, dims: list[Any]) -> Var:
    """Dims (ints or symbolic) as an int64 [k] tensor."""
    return n.importer.tensor(known_dims([canon(d) for d in dims]), n)


def int_vector(n: Node, i: int, what: str) -> Var:
    """Input `i` as an int64 [k] tensor of static length k (the length fixes a rank or a count)."""
    v = n.tensor(i, what)
    if v.dtype not in _INT_TYPES:
        n.fail(f"input {i} ({what}) must hold integers, got {v.dtype}")
    if v.ndim != 1:
        n.fail(f"input {i} ({what}) must be a 1-d tensor, got rank {v.ndim}")
    length = canon(v.shape[0])
    if not length.is_Integer:
        n.fail(f"input {i} ({what}) has a length of {dim_to_str(length)} entries computed at run time; its length "
               "fixes the output rank, so it must be static")
    return v if v.dtype == "int64" else as_int64(n, v)


def scalar_tensor(n: Node, i: int, what: str) -> Var:
    """Input `i` as a 0-d tensor (ONNX scalars are sometimes given as [1])."""
    v = n.tensor(i, what)
    size = canon(sympy.Mul(*[canon(d) for d in v.shape]))
    if v.ndim > 1 or not (size.is_Integer and int(size) == 1):
        n.fail(f"input {i} ({what}) must be a scalar, got shape [{', '.join(dim_to_str(canon(d)) for d in v.shape)}]")
    return v if v.ndim == 0 else as_var(n.op("reshape", v, shape=[]))


def as_var(v: Value) -> Var:
    assert isinstance(v, Var)
    return v


def as_int64(n: Node, v: Value) -> Var:
    return as_var(n.op("astype", v, dtype="int64")) if v.dtype != "int64" else as_var(v)


def sizes(n: Node, t: Value, what: str, dims: list[Dim] | None = None) -> list[Dim]:
    """The entries of int64 [k] tensor `t` as sizes: fresh symbols named after
    the node and `what`, bound at run time (each checked to be a valid size);
    `dims` replaces them with expressions to check instead."""
    tensor = as_int64(n, t)
    fb = n.importer.fb
    k = int(canon(tensor.shape[0]))
    if dims is None:
        label = n.name or f"{n.op_type}_{n.index}"
        dims = fb.fresh_symbols(k, prefix=identifier(f"{label}_{what}", "s"))
    return list(fb.tensor_to_shape(tensor, dims).sym_value)  # type: ignore[arg-type]


def numel_data(n: Node, x: Value) -> Var:
    """The element count of `x` as an int64 [1] tensor."""
    return dims_data(n, [canon(sympy.Mul(*[canon(d) for d in x.shape]))])


def reshape_target(n: Node, x: Value, shape: Var, allowzero: bool) -> list[Dim]:
    """Reshape's run-time shape tensor as dims: 0 copies the input dim (unless
    allowzero), one -1 is inferred from the element count; two -1s, negative
    or oversized entries are rejected by the size checks at run time, a wrong
    element count by reshape's own check."""
    k = int(canon(shape.shape[0]))
    s: Value = shape
    if not allowzero:
        copy = dims_data(n, [x.shape[i] if i < x.ndim else 0 for i in range(k)])  # 0 past the rank stays 0: rejected
        s = n.op("where", n.op("equal", s, const(0)), copy, s)
    minus = n.op("equal", s, const(-1))
    count = n.op("sum", n.op("astype", minus, dtype="int64"), axis=[0], keepdims=True)
    others = n.op("prod", n.op("where", minus, const(1), s), axis=[0], keepdims=True)
    infer = n.op("divide", numel_data(n, x), n.op("maximum", others, const(1)))
    infer = n.op("where", n.op("greater", count, const(1)), const(-1), infer)  # two -1s: stays -1, rejected
    s = n.op("where", minus, infer, s)
    return sizes(n, s, "shape")


def broadcast_target(n: Node, x: Value, shape: Var) -> list[Dim]:
    """Expand's run-time shape broadcast with the input's dims: entries of 1
    keep the input dim; others must equal it or replace a 1 (broadcast_to
    checks that at run time)."""
    k, r = int(canon(shape.shape[0])), x.ndim
    rank = max(k, r)
    s: Value = shape
    if k < rank:
        s = n.op("concat", const([1] * (rank - k)), s, axis=0)
    xpad = dims_data(n, [1] * (rank - r) + list(x.shape))
    return sizes(n, n.op("where", n.op("equal", s, const(1)), xpad, s), "shape")


def expand(n: Node, x: Value, shape: Var) -> Value:
    """Expand by a run-time shape: broadcast_to the fresh dims of
    `broadcast_target` (its run-time check names the node), then a
    match_cast that gives back the dims known whatever the data: an input
    dim that is a static integer other than 1 (the entry must equal or keep
    it) and leading positions the shape does not reach. Without it such a
    dim would stay a fresh symbol, and a later Squeeze without axes would
    keep it and give a different rank than ONNX."""
    y = as_var(n.op("broadcast_to", x, shape=broadcast_target(n, x, shape)))
    rank, r = y.ndim, x.ndim
    xdims = [sympy.Integer(1)] * (rank - r) + [canon(d) for d in x.shape]
    reach = rank - int(canon(shape.shape[0]))
    known = [d if i < reach or (d.is_Integer and d != 1) else canon(y.shape[i]) for i, d in enumerate(xdims)]
    if all(dims_equal(a, canon(b)) for a, b in zip(known, y.shape)):
        return y
    return n.importer.fb.match_cast(y, known)


def tile(n: Node, x: Value, repeats: Var) -> Value:
    """Tile by run-time repeats: x viewed as [1, d0, 1, d1, ...], broadcast to
    [r0, d0, r1, d1, ...] and merged to [r0*d0, r1*d1, ...]."""
    reps = sizes(n, repeats, "repeats")
    dims = [canon(d) for d in x.shape]
    inter: list[Dim] = []
    for d in dims:
        inter += [sympy.Integer(1), d]
    y = n.op("reshape", x, shape=inter)
    y = n.op("broadcast_to", y, shape=[v for r, d in zip(reps, dims) for v in (r, d)])
    return n.op("reshape", y, shape=[canon(r * d) for r, d in zip(reps, dims)])


def arange_length(n: Node, start: Var, limit: Var, delta: Var, dtype: str) -> Var:
    """max(ceil((limit - start) / delta), 0) as an int64 [1] tensor."""
    diff = n.op("subtract", limit, start)
    if dtypes.is_float(dtype):
        q = n.op("ceil", n.op("divide", diff, delta))
        q = n.op("where", n.op("equal", q, q), q, const(0.0, dtype))  # NaN (delta 0, 0/0): no elements
        big = const(float(2**62), dtype)
        q = as_int64(n, n.op("minimum", n.op("maximum", q, n.op("negative", big)), big))
    else:
        diff, delta = as_int64(n, diff), as_int64(n, delta)
        q = n.op("negative", n.op("divide", n.op("negative", diff), delta))  # ceil by floor division
    return as_var(n.op("reshape", n.op("maximum", q, const(0)), shape=[1]))


def range_values(n: Node, start: Var, limit: Var, delta: Var, dtype: str) -> Value:
    """Range with bounds as data: start + i * delta for i < the run-time length."""
    (length,) = sizes(n, arange_length(n, start, limit, delta, dtype), "length")
    i = n.op("arange", start=0.0, step=1.0, dtype=dtype, length=[length])
    return n.op("add", start, n.op("multiply", i, delta))


def slice_axis(n: Node, x: Value, axis: int, start: Var, end: Var, step: int | Var) -> Value:
    """x[start:end:step] along `axis` with bounds as data (0-d int64),
    normalised as ONNX specifies (negative: from the end; clamped to [0, d]
    for a positive step, [-1, d - 1] for a negative one), as a gather of
    start + i * step for i < max(ceil((end - start) / step), 0). The step is
    an int, or 0-d int64 data that the caller has checked is not 0."""
    d = dims_data(n, [x.shape[axis]])
    if isinstance(step, int):
        lo, hi = (const(0), d) if step > 0 else (const(-1), n.op("subtract", d, const(1)))
        stride: Value = const(step)
    else:
        positive = n.op("greater", step, const(0))
        lo = n.op("where", positive, const(0), const(-1))
        hi = n.op("where", positive, d, n.op("subtract", d, const(1)))
        stride = step

    def norm(v: Var) -> Value:
        v = as_var(n.op("where", n.op("less", v, const(0)), n.op("add", v, d), v))
        return n.op("minimum", n.op("maximum", v, lo), hi)

    b, e = norm(start), norm(end)  # a negative step from -1 (before the first element) takes nothing
    diff = n.op("subtract", e, b)
    count = n.op("negative", n.op("divide", n.op("negative", diff), stride))
    count = n.op("maximum", count, const(0))
    (length,) = sizes(n, as_var(count), f"axis{axis}_length")
    idx = n.op("add", b, n.op("multiply", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[length]),
                                stride))
    return n.op("take", x, idx, axis=axis)


def per_axis(n: Node, rank: int, axes: Var, values: list[tuple[Var, int]], invalid: Value | None = None) -> list[Var]:
    """Axes as data (Slice's and Pad's `axes`): for each data axis d < rank,
    the entry of each int64 [k] vector of `values` at the j whose axes[j]
    names d (negative ones counting from the end), else that vector's
    default; one int64 [rank] tensor per vector. ONNX calls a repeated or
    out-of-range axis invalid, so both are a BoundsError when it runs, as is
    naming an entry marked in bool [k] `invalid` (a step of 0): the axes
    are gathered from the positions [0, rank) (an axis outside [-rank, rank)
    fails that gather), and an axis named twice or with an invalid entry
    selects the slot past the k entries and the default (the selecting
    gather fails, its message giving index k + 1 for an extent of k + 1)."""
    k = int(canon(axes.shape[0]))
    positions = n.op("arange", start=0.0, step=1.0, dtype="int64", length=[rank])
    norm = n.op("take", positions, axes, axis=0, what=f"{n.where}: an entry of axes (an axis of the rank-{rank} data)")
    hits = n.op("equal", n.op("reshape", positions, shape=[rank, 1]), n.op("reshape", norm, shape=[1, k]))
    slots: Value = const(np.arange(k).reshape(1, k))
    if invalid is not None:
        slots = n.op("where", n.op("reshape", invalid, shape=[1, k]), const(k + 1), slots)
    count = n.op("sum", n.op("astype", hits, dtype="int64"), axis=[1])
    slot = n.op("sum", n.op("where", hits, slots, const(0)), axis=[1])
    select = n.op("where", n.op("equal", count, const(0)), const(k),
                  n.op("where", n.op("equal", count, const(1)), slot, const(k + 1)))
    what = f"{n.where}: axes name an axis twice{' or select a step of 0' if invalid is not None else ''} (the slot"
    return [as_var(n.op("take", n.op("concat", v, const([default]), axis=0), select, axis=0, what=f"{what})"))
            for v, default in values]


def data_axes(n: Node, i: int, rank: int, count: int) -> Var:
    """Input `i` (axes; absent: the first `count` axes) as int64 [count]
    data; known axes are checked (range, repeats) at import time."""
    if n.optional(i) is None:
        return n.importer.tensor(const(list(range(count))), n)
    if not is_runtime(n, i):
        axes = [n.axis(a, rank) for a in n.static_ints(i, "axes")]
        if len(set(axes)) != len(axes):
            n.fail(f"axes {axes} repeat an axis")
    axes_data = int_vector(n, i, "axes")
    if int(canon(axes_data.shape[0])) != count:
        n.fail(f"axes has {axes_data.shape[0]} values for {count} slices or pads")
    return axes_data


def slice_data_axes(n: Node, x: Value) -> Value:
    """Slice (opset >= 10) with axes or steps computed at run time: every
    data axis is sliced by the start / end / step the data gives it (the
    defaults 0, to the end, 1 when no axis names it; a repeated or
    out-of-range axis or a step of 0 is a BoundsError), one gather per axis,
    each dim a fresh symbol."""
    starts, ends = int_vector(n, 1, "starts"), int_vector(n, 2, "ends")
    k = int(canon(starts.shape[0]))
    if int(canon(ends.shape[0])) != k:
        n.fail("starts, ends, axes and steps must have the same length")
    axes = data_axes(n, 3, x.ndim, k)
    if n.optional(4) is None:
        steps = n.importer.tensor(const([1] * k), n)
    else:
        if not is_runtime(n, 4) and any(s == 0 for s in n.static_ints(4, "steps")):
            n.fail("steps must not be 0")
        steps = int_vector(n, 4, "steps")
        if int(canon(steps.shape[0])) != k:
            n.fail("starts, ends, axes and steps must have the same length")
    begin, end, step = per_axis(n, x.ndim, axes, [(starts, 0), (ends, 2**63 - 1), (steps, 1)],
                                invalid=n.op("equal", steps, const(0)))
    y = x
    for a in range(x.ndim):
        b, e, s = (as_var(n.op("take", v, const(a), axis=0)) for v in (begin, end, step))
        y = slice_axis(n, y, a, b, e, s)
    return y


def pad_data_axes(n: Node, x: Value, pads: Var, mode: str, value: Value) -> Value:
    """Pad (opset >= 18) with axes computed at run time: each data axis gets
    the pads of the j whose axes[j] names it, else none (a repeated or
    out-of-range axis is a BoundsError)."""
    axes = int_vector(n, 3, "axes")
    k = int(canon(axes.shape[0]))
    if int(canon(pads.shape[0])) != 2 * k:
        n.fail(f"pads has {pads.shape[0]} values; it needs two per padded axis ({2 * k})")
    before = as_var(n.op("take", pads, const(list(range(k))), axis=0))
    after = as_var(n.op("take", pads, const(list(range(k, 2 * k))), axis=0))
    before_all, after_all = per_axis(n, x.ndim, axes, [(before, 0), (after, 0)])
    return gather_pad(n, x, as_var(n.op("concat", before_all, after_all, axis=0)), list(range(x.ndim)), mode, value)


def gather_pad(n: Node, x: Value, pads: Var, axes: list[int], mode: str, value: Value) -> Value:
    """Pad with pads (and the constant value) as data, as one gather per padded
    axis: output index j reads input index j - before, mapped into range by
    the mode (constant: out of range reads `value`; edge: clamped; reflect;
    wrap). Negative pads crop. The output dims are fresh symbols."""
    k = len(axes)
    before = [as_var(n.op("take", pads, const(i), axis=0)) for i in range(k)]
    after = [as_var(n.op("take", pads, const(k + i), axis=0)) for i in range(k)]
    in_dims = [dims_data(n, [x.shape[a]]) for a in axes]
    out = [n.op("add", n.op("add", b, d), e) for b, d, e in zip(before, in_dims, after)]
    lengths = sizes(n, as_var(n.op("concat", *out, axis=0)), "pads")
    y = x
    for a, b, e, full, length in zip(axes, before, after, in_dims, lengths):
        # negative pads crop first; the mode then pads the cropped range [crop, crop + d)
        crop = n.op("maximum", n.op("negative", b), const(0))
        d = n.op("subtract", n.op("subtract", full, crop), n.op("maximum", n.op("negative", e), const(0)))
        b = n.op("maximum", b, const(0))
        src = n.op("subtract", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[length]), b)
        last = n.op("subtract", d, const(1))
        if mode == "edge" or mode == "constant":
            idx = n.op("minimum", n.op("maximum", src, const(0)), last)
        elif mode == "wrap":
            idx = n.op("mod", src, d)
        else:  # reflect: period 2 * (d - 1); a dim of 1 reflects onto itself
            period = n.op("maximum", n.op("multiply", last, const(2)), const(1))
            m = n.op("mod", src, period)
            idx = n.op("minimum", n.op("where", n.op("greater", m, last), n.op("subtract", period, m), m), last)
        taken = n.op("take", y, n.op("add", idx, crop), axis=a)
        if mode == "constant":
            inside = n.op("logical_and", n.op("greater_equal", src, const(0)), n.op("less", src, d))
            shape = [1] * x.ndim
            shape[a] = length
            inside = n.op("reshape", inside, shape=shape)
            taken = n.op("where", inside, taken, value)
        y = taken
    return y


def one_hot(n: Node, indices: Value, depth: Var, values: Value, axis: int) -> Value:
    """OneHot with the depth as data: indices (negative ones counted from the
    end) compared against arange(depth) placed along `axis`."""
    d = as_int64(n, n.op("reshape", depth, shape=[1]))
    (length,) = sizes(n, d, "depth")
    idx = as_int64(n, indices)
    idx = n.op("where", n.op("less", idx, const(0)), n.op("add", idx, d), idx)
    shape: list[Any] = [1] * (indices.ndim + 1)
    shape[axis] = length
    classes = n.op("reshape", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[length]), shape=shape)
    hot = n.op("equal", n.op("expand_dims", idx, axis=[axis]), classes)
    off, on = n.op("take", values, const(0), axis=0), n.op("take", values, const(1), axis=0)
    return n.op("where", hot, on, off)


def split(n: Node, x: Value, split_sizes: Var, axis: int) -> list[Value]:
    """Split by run-time sizes: the first k - 1 bind fresh symbols, the last
    is checked to be what remains of the dim; each part is a slice."""
    k = int(canon(split_sizes.shape[0]))
    dim = canon(x.shape[axis])
    label = n.name or f"{n.op_type}_{n.index}"
    fresh = n.importer.fb.fresh_symbols(max(k - 1, 0), prefix=identifier(f"{label}_split", "s"))
    dims = [*fresh, canon(dim - sum(fresh, sympy.Integer(0)))]
    parts = sizes(n, split_sizes, "split", dims)
    out: list[Value] = []
    begin: Dim = sympy.Integer(0)
    for p in parts:
        end = canon(begin + p)
        out.append(n.op("strided_slice", x, axes=[axis], begin=[begin], end=[end], strides=[1], assume_inbound=True))
        begin = end
    return out


def normalized_axes(axes: Var, rank: int) -> Var:
    """Axis data with negative entries counted from the end of `rank` dims."""
    from relax_xdsl import op as rop

    return rop.where(rop.less(axes, np.array(0, np.int64)), rop.add(axes, np.array(rank, np.int64)), axes)


def named_positions(axes: Var, rank: int) -> Var:
    """bool [rank]: whether the (normalised) axis data names each position."""
    from relax_xdsl import op as rop

    positions = rop.arange(0, length=[rank])
    hits = rop.equal(rop.expand_dims(positions, axis=[1]), rop.expand_dims(axes, axis=[0]))
    return rop.greater(rop.sum(rop.astype(hits, "int64"), axis=[1]), np.array(0, np.int64))
