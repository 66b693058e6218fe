"""ONNX converters for the index-carrying pooling ops: MaxPool with its
Indices output (storage_order 0 and 1, any spatial rank) and MaxUnpool.

MaxPool's values keep the existing paths (max_pool2d and its fast schedules
for 1-d / 2-d, pool_nd otherwise); the Indices output is the graph op
max_pool_indices (relax_xdsl/ops/nn_index.py) with the same window
parameters, so both outputs agree on every window. MaxUnpool is a scatter of
X into a flat zero tensor at the flat indices I (scatter_elements, whose
indices are range-checked at run time like take's), reshaped to the output
shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from relax_xdsl.frontend import onnx_ops, onnx_ops_nn
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Node, Unavailable, Value, identifier, register_converter
from relax_xdsl.shape import canon, dim_to_str


def _wants(n: Node, i: int) -> bool:
    return i < len(n.outputs) and bool(n.outputs[i])


def _storage_order(n: Node) -> int:
    order = int(n.attr("storage_order", 0))
    if order not in (0, 1):
        n.fail(f"attribute storage_order={order} is not supported (0: row-major, 1: column-major)")
    return order


@register_converter("MaxPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order",
                                      "strides"))
def _max_pool(n: Node) -> Sequence[Value | Unavailable]:
    """Y as before; Indices (int64, flat over N*C*spatial of X) only when named."""
    x = n.input(0, "X")
    onnx_ops_nn._rank_check(n, x)  # noqa: SLF001
    order = _storage_order(n)
    if x.ndim in (3, 4) and order == 0:
        y = onnx_ops._max_pool(n)[0]  # noqa: SLF001  (max_pool2d and its fast paths)
    else:
        y = onnx_ops_nn._pool_nd(n, "max", x)  # noqa: SLF001  (storage_order only affects Indices)
    if not _wants(n, 1):
        return [y, Unavailable("MaxPool's Indices output is not named")]
    if x.dtype == "bool":
        n.fail("X must be numeric, got bool")
    kernel = onnx_ops_nn._kernel(n)  # noqa: SLF001
    strides, dilations, pads = onnx_ops._window_attrs(n, x, kernel)  # noqa: SLF001
    indices = n.op("max_pool_indices", x, pool_size=kernel, strides=strides, padding=pads, dilation=dilations,
                   ceil_mode=bool(n.attr("ceil_mode", 0)), storage_order=order)
    return [y, indices]


@register_converter("MaxUnpool", attrs=("kernel_shape", "pads", "strides"))
def _max_unpool(n: Node) -> Value:
    """Output extent per spatial axis (stride * (in - 1) + kernel - pad_begin
    - pad_end) unless the output_shape input gives it (known at import time,
    or data whose spatial entries become fresh symbols)."""
    x, ind = n.input(0, "X"), n.input(1, "I")
    if x.ndim < 3:
        n.fail(f"X must have rank >= 3 (N, C, spatial...), got rank {x.ndim}")
    if ind.dtype not in ("int32", "int64"):
        n.fail(f"I must be int64, got {ind.dtype}")
    if ind.ndim != x.ndim or any(canon(a) != canon(b) for a, b in zip(ind.shape, x.shape)):
        n.fail(f"I must have X's shape [{', '.join(dim_to_str(canon(d)) for d in x.shape)}], "
               f"got [{', '.join(dim_to_str(canon(d)) for d in ind.shape)}]")
    k = x.ndim - 2
    kernel = [int(v) for v in n.attr("kernel_shape")]
    strides = [int(v) for v in n.attr("strides", [1] * k)]
    pads = [int(v) for v in n.attr("pads", [0] * 2 * k)]
    if len(kernel) != k or len(strides) != k or len(pads) != 2 * k:
        n.fail(f"kernel_shape and strides must have {k} values and pads {2 * k}, got {len(kernel)}, "
               f"{len(strides)} and {len(pads)}")
    if any(v < 1 for v in kernel + strides) or any(p < 0 for p in pads):
        n.fail(f"kernel_shape and strides must be >= 1 and pads >= 0, got {kernel}, {strides}, {pads}")
    if rt.is_runtime(n, 2):
        out = _output_shape_at_run_time(n, x)
    elif n.optional(2) is not None:
        shape = n.ints(2, "output_shape")
        if len(shape) != x.ndim:
            n.fail(f"output_shape must have {x.ndim} values (N, C, spatial...), got {len(shape)}")
        for i in (0, 1):
            if canon(shape[i]) != canon(x.shape[i]):
                n.fail(f"output_shape[{i}] {dim_to_str(canon(shape[i]))} differs from X's dim {i} "
                       f"{dim_to_str(canon(x.shape[i]))}")
        out = [canon(d) for d in shape]
    else:
        out = [canon(x.shape[0]), canon(x.shape[1])]
        for i in range(k):
            e = canon(strides[i] * (canon(x.shape[2 + i]) - 1) + kernel[i] - pads[i] - pads[k + i])
            if e.is_Integer and e < 1:
                n.fail(f"output spatial dim {i} would be {e}")
            out.append(e)
    for i, d in enumerate(out):
        if d.is_Integer and d < 1:
            n.fail(f"output_shape[{i}] must be >= 1, got {d}")
    zeros = n.op("zeros", shape=[canon(sympy.Mul(*out))], dtype=x.dtype)
    count = canon(sympy.Mul(*(canon(d) for d in x.shape)))
    flat_x = n.op("reshape", x, shape=[count])
    flat_i = n.op("reshape", ind, shape=[count])
    y = n.op("scatter_elements", zeros, flat_i, flat_x, axis=0, reduction="none")
    return n.op("reshape", y, shape=out)



def _output_shape_at_run_time(n: Node, x: Value) -> list[sympy.Expr]:
    """output_shape as data: N and C are checked against X's when it runs,
    the spatial extents bind fresh symbols (a negative or oversized one
    fails their size check; an index of I past their product fails the
    scatter's range check)."""
    shape = rt.int_vector(n, 2, "output_shape")
    if int(canon(shape.shape[0])) != x.ndim:
        n.fail(f"output_shape must have {x.ndim} values (N, C, spatial...), got {shape.shape[0]}")
    label = n.name or f"{n.op_type}_{n.index}"
    fresh = n.importer.fb.fresh_symbols(x.ndim - 2, prefix=identifier(f"{label}_output_shape", "s"))
    return [canon(d) for d in rt.sizes(n, shape, "output_shape", [canon(x.shape[0]), canon(x.shape[1]), *fresh])]
