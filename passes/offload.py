"""`offload{lib=blas}`: graph ops -> library calls, by pattern.

A pattern is data: the graph op it matches, a predicate on the op, and the
`lib.func` to call (added to the module once). `register_offload_pattern`
adds patterns from user code; this file registers BLAS for float32 matmuls
of the rank patterns in relax_xdsl/blas.py, and float32 conv2d (groups 1,
dilation 1) as im2col + GEMM. Ops no pattern matches stay as
they are (and are legalized to generated code later).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relax_xdsl.dialects.lib import LibCallOp, LibFuncOp
from relax_xdsl.dialects.relax import FunctionOp, GraphOp, TensorType
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.traits import SymbolTable

from relax_xdsl.errors import RelaxError
from relax_xdsl.shape import dims_equal


@dataclass(frozen=True)
class OffloadPattern:
    op: str
    """The graph op name (relax.<op>)."""
    function: Callable[[GraphOp], LibFuncOp | None]
    """The library function for this op, or None when the op does not match."""


OFFLOAD_PATTERNS: dict[str, list[OffloadPattern]] = {}


def register_offload_pattern(library: str, pattern: OffloadPattern) -> None:
    """Adds a pattern to `offload{lib=<library>}` (tried in registration order)."""
    OFFLOAD_PATTERNS.setdefault(library, []).append(pattern)


def _blas_matmul(op: GraphOp) -> LibFuncOp | None:
    from relax_xdsl.blas import MATMUL_RANKS, matmul_function

    a, b = (v.type for v in op.inputs)
    out = op.res.type
    if not all(isinstance(t, TensorType) and t.dtype == "float32" for t in (a, b, out)):
        return None
    ranks = (a.ndim, b.ndim)  # type: ignore[union-attr]
    if ranks not in MATMUL_RANKS:
        return None
    if a.ndim == b.ndim and not all(dims_equal(x, y) for x, y in zip(a.sym_shape[:-2], b.sym_shape[:-2])):  # type: ignore[union-attr]
        return None  # broadcast batch dims: left to generated code
    return matmul_function(*ranks)


def _blas_conv2d(op: GraphOp) -> LibFuncOp | None:
    from relax_xdsl.blas import conv2d_function
    from relax_xdsl.ops.nn import _padding

    x, w = (v.type for v in op.inputs)
    if not all(isinstance(t, TensorType) and t.dtype == "float32" for t in (x, w, op.res.type)):
        return None
    p = op.SPEC.decode_params(dict(op.attributes))
    if p["groups"] != 1 or tuple(p["dilation"]) not in ((1,), (1, 1)) or p["out_dtype"] not in (None, "float32"):
        return None
    strides = tuple(p["strides"]) * (2 // len(p["strides"]))
    from relax_xdsl.ops.registry import Infer

    padding = _padding(Infer("conv2d"), p["padding"])
    return conv2d_function(strides, padding)  # type: ignore[arg-type]


register_offload_pattern("blas", OffloadPattern("matmul", _blas_matmul))
register_offload_pattern("blas", OffloadPattern("conv2d", _blas_conv2d))


def offload_module(module: ModuleOp, library: str = "blas") -> ModuleOp:
    patterns = OFFLOAD_PATTERNS.get(library)
    if patterns is None:
        raise RelaxError(f"offload: no patterns for library {library!r}; known: {', '.join(OFFLOAD_PATTERNS)}")
    table = SymbolTable
    for func in [op for op in module.body.ops if isinstance(op, FunctionOp)]:
        for op in list(func.walk()):
            if not isinstance(op, GraphOp):
                continue
            for pattern in patterns:
                if pattern.op != op.SPEC.name:
                    continue
                lib = pattern.function(op)
                if lib is None:
                    continue
                name = lib.sym_name.data
                if table.lookup_symbol(module, name) is None:
                    module.body.block.add_op(lib)
                Rewriter.replace_op(op, LibCallOp(name, list(op.inputs), [op.res.type]))
                break
    return module


@dataclass(frozen=True)
class OffloadPass(ModulePass):
    """offload{lib=blas}: matching graph ops become library calls."""

    name = "offload"
    lib: str = "blas"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        offload_module(op, self.lib)
