"""BLAS library functions for offloaded matmuls, dense layers and conv2d, on
scipy-openblas32 (a wheel that ships OpenBLAS and `cblas.h` with
`scipy_`-prefixed symbols).

Their C is the runtime's relax_xdsl/c_runtime/rx_blas.c and rx_packed.c (compiled once into
the runtime archive, see backend/c_runtime.py), following the library
calling convention of relax_xdsl/libraries.py; this module registers them
with their numpy references, which the interpreter and evaluator run.
Without the wheel, offloaded modules still run on the interpreter; the C
target reports what to install.
"""

from __future__ import annotations

import numpy as np

from relax_xdsl.conv_library import CONV_VARIANTS as CONV_VARIANTS
from relax_xdsl.conv_library import (
    activation_code,
    check_variant,
    conv_buffers,
    conv_reference,
    parse_name,
    wrapper_signature,
)
from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.libraries import register_library_function, register_resolver

MATMUL_RANKS = ((2, 2), (3, 2), (4, 2), (3, 3), (4, 4))
"""(rank of x1, rank of x2) pairs offloaded: x1's leading dims folded into
the GEMM rows when x2 is a matrix, or a loop over equal batch dims."""

MATMUL_T_RANKS = ((2, 2), (3, 3), (4, 4))
"""Rank pairs offloaded as x1 @ swapaxes(x2, -1, -2) with x2 read as it is
stored (`blas_matmul_<r>x<r>_tb`): attention's q @ K^T on a key cache,
which would otherwise be copied transposed on every call."""


def link_flags() -> list[str]:
    """Compile and link flags for scipy-openblas32, or [] when it is missing."""
    from relax_xdsl.backend.c import quiet_idle_threads

    quiet_idle_threads()  # before OpenBLAS loads
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return []
    lib_dir = sob.get_lib_dir()
    return [f"-I{sob.get_include_dir()}", f"-L{lib_dir}", f"-l{sob.get_library()}", f"-Wl,-rpath,{lib_dir}"]


def matmul_reference(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def matmul_t_reference(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, np.swapaxes(b, -1, -2), out=out)


def matmul_function(ra: int, rb: int, transposed_b: bool = False) -> LibFuncOp:
    """The `lib.func` of a float32 matmul of ranks (ra, rb); with
    `transposed_b`, of x1 @ swapaxes(x2, -1, -2) (ranks in MATMUL_T_RANKS)."""
    batch = [f"b{i}" for i in range(max(ra, rb) - 2)]
    if rb == 2 and not transposed_b:
        lead = [f"b{i}" for i in range(ra - 2)]
        a, b, c = [*lead, "m", "k"], ["k", "n"], [*lead, "m", "n"]
    else:
        a, b, c = [*batch, "m", "k"], [*batch, *(("n", "k") if transposed_b else ("k", "n"))], [*batch, "m", "n"]
    bufs = [BufferType.of(s, "float32") for s in (a, b, c)]
    tag = f"{ra}x{rb}{'_tb' if transposed_b else ''}"
    return LibFuncOp(f"blas_matmul_{tag}", bufs, f"rx_blas_matmul_{tag}", "blas",
                     header="cblas.h", link=link_flags(), reference=f"blas.matmul_{tag}", pure=True)


DENSE_ACTIVATIONS = ("", "relu", "gelu")
"""Epilogues of the dense library functions, applied in place after the GEMM."""


def _dense_tag(ra: int, act: str) -> str:
    """`2x2`, `3x2_relu`, ...: names the dense function of each rank and activation."""
    return f"{ra}x2{'_' + act if act else ''}"


def dense_reference(act: str) -> object:
    """The numpy semantics of a dense function with activation `act` ("", relu or gelu)."""
    from relax_xdsl.ops.registry import get_spec

    def reference(a: np.ndarray, b: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
        np.matmul(a, b, out=out)
        out += bias
        if act:
            out[...] = get_spec(act).reference(out)

    return reference


def dense_residual_reference(a: np.ndarray, w: np.ndarray, bias: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:
    """The numpy semantics of a dense function with a residual (oneDNN's and the packed one, W unpacked):
    matmul, + the bias row, + r."""
    np.matmul(a, w, out=out)
    out += bias
    out += r


def dense_function(ra: int, act: str = "") -> LibFuncOp:
    """The `lib.func` of float32 matmul(x, W) + bias (+ relu / gelu), x of rank `ra`."""
    if act not in DENSE_ACTIVATIONS:
        raise ValueError(f"dense activation {act!r}; known: {DENSE_ACTIVATIONS}")
    lead = [f"b{i}" for i in range(ra - 2)]
    a, b, d, c = [*lead, "m", "k"], ["k", "n"], ["n"], [*lead, "m", "n"]
    bufs = [BufferType.of(s, "float32") for s in (a, b, d, c)]
    tag = _dense_tag(ra, act)
    return LibFuncOp(f"blas_dense_{tag}", bufs, f"rx_blas_dense_{tag}", "blas",
                     header="cblas.h", link=link_flags(), reference=f"blas.dense_{tag}", pure=True)


PACKED_DENSE_RANKS = (2, 3, 4)
"""Ranks of x taken by the packed dense functions (its leading dims folded into the rows)."""

PACKED_DENSE_VARIANTS = ("", "_bias", "_bias_relu", "_bias_gelu", "_bias_add")
"""Epilogues of the packed dense functions: none, a bias row, a bias then relu or gelu, a bias then a
residual of the result's shape (added to each tile while it is in cache)."""

PANEL = 16
"""Columns per panel of packed dense weights (rx_packed.c's RX_PANEL)."""


def pack_dense_weights(w: np.ndarray) -> np.ndarray:
    """W (k x n) in the order rx_packed.c's dense kernels read it, with
    its shape kept: the n // 16 full panels of 16 columns, each k rows of 16,
    then the last n % 16 columns as k rows. SGEMM repacks its B like this on
    every call; a dense layer's weights are a model constant, so they are
    packed once, when compiling (offload's packed GEMM route)."""
    k, n = w.shape
    full = n // PANEL
    panels = w[:, :full * PANEL].reshape(k, full, PANEL).transpose(1, 0, 2).reshape(-1)
    return np.concatenate([panels, w[:, full * PANEL:].reshape(-1)]).reshape(k, n)


def unpack_dense_weights(packed: np.ndarray) -> np.ndarray:
    """The inverse of pack_dense_weights."""
    k, n = packed.shape
    full = n // PANEL
    flat = packed.reshape(-1)
    w = np.empty((k, n), dtype=packed.dtype)
    w[:, :full * PANEL] = flat[:full * PANEL * k].reshape(full, k, PANEL).transpose(1, 0, 2).reshape(k, full * PANEL)
    w[:, full * PANEL:] = flat[full * PANEL * k:].reshape(k, n - full * PANEL)
    return w


def packed_dense_reference(variant: str) -> object:
    """The numpy semantics of a packed dense function: its weights unpacked,
    then dense_reference's (matmul_reference's without a bias,
    dense_residual_reference's with a residual)."""
    dense = dense_reference(variant.removeprefix("_bias").removeprefix("_")) if variant != "_bias_add" else None

    def reference(a: np.ndarray, packed: np.ndarray, *rest: np.ndarray) -> None:
        w = unpack_dense_weights(packed)
        if len(rest) == 3:  # a bias, a residual, then the output
            dense_residual_reference(a, w, *rest)
        elif len(rest) == 2:  # a bias, then the output
            dense(a, w, *rest)  # type: ignore[operator]
        else:
            matmul_reference(a, w, *rest)

    return reference


def packed_dense_function(ra: int, variant: str) -> LibFuncOp:
    """The `lib.func` of float32 matmul(x, W) [+ bias [+ relu | gelu | + residual]] with W
    packed (pack_dense_weights), x of rank `ra` (2, 3 or 4). The kernels
    (rx_packed.c) are the runtime's own and call no OpenBLAS, so a module
    whose only library calls are these links no libscipy_openblas (and an
    ahead-of-time build does not ship it)."""
    if variant not in PACKED_DENSE_VARIANTS:
        raise ValueError(f"packed dense variant {variant!r}; known: {PACKED_DENSE_VARIANTS}")
    lead = [f"b{i}" for i in range(ra - 2)]
    residual = [[*lead, "m", "n"]] if variant == "_bias_add" else []
    shapes = [[*lead, "m", "k"], ["k", "n"], *([["n"]] if variant else []), *residual, [*lead, "m", "n"]]
    tag = f"{ra}x2{variant}"
    return LibFuncOp(f"blas_packed_dense_{tag}", [BufferType.of(s, "float32") for s in shapes],
                     f"rx_blas_packed_dense_{tag}", "blas", header="rx_blas.h",
                     reference=f"blas.packed_dense_{tag}", pure=True)


CONV_PREFIX = "blas.conv2d"


def conv2d_function(strides: tuple[int, int], padding: tuple[int, int, int, int], variant: str = "") -> LibFuncOp:
    """The `lib.func` of a float32 NCHW/OIHW conv2d (groups 1, dilation 1),
    with the bias / relu epilogue of `variant` (one of CONV_VARIANTS)."""
    check_variant(variant)
    params = ",".join(str(v) for v in (*strides, *padding))
    tag = params.replace(",", "_") + variant
    return LibFuncOp(f"blas_conv2d_{tag}", conv_buffers(variant, "c"), f"rx_blas_conv2d_{tag}", "blas",
                     header="cblas.h", link=link_flags(), reference=f"{CONV_PREFIX}{variant}:{params}", pure=True)


def _resolve_conv(name: str) -> object:
    """Registers `blas.conv2d[variant]:sh,sw,pt,pl,pb,pr` (its C and numpy reference)."""
    parsed = parse_name(name, CONV_PREFIX, 6)
    if parsed is None or min(parsed[1][:2]) < 1:
        return None
    variant, (sh, sw, pt, pl, pb, pr) = parsed
    reference = conv_reference((sh, sw), (pt, pl, pb, pr), (1, 1), 1, variant)
    flags = link_flags()
    symbol = "rx_blas_conv2d_" + "_".join(str(v) for v in (sh, sw, pt, pl, pb, pr)) + variant
    return register_library_function(name, reference, c_source=_conv2d_wrapper(symbol, (sh, sw, pt, pl), variant)
                                     if flags else "", link=flags, symbol=symbol, pure=True)


def _conv2d_wrapper(symbol: str, params: tuple[int, int, int, int], variant: str) -> str:
    """The C of one conv2d library function: its calling convention's
    arguments passed on to the runtime's rx_blas_conv2d, with its strides and
    top / left paddings as constant arguments (the bottom / right padding is
    implied by the output's extent)."""
    sh, sw, pt, pl = params
    return f"""#include "rx_blas.h"
{wrapper_signature(symbol, variant, "c2")} {{
  rx_blas_conv2d(X, W, {"B" if "_bias" in variant else "NULL"}, Y, n, c, h, w, o, kh, kw, oh, ow, {sh}, {sw}, {pt}, {pl},
                 {activation_code(variant)});
}}
"""


def register() -> None:
    flags = link_flags()
    for ra, rb in MATMUL_RANKS:
        register_library_function(f"blas.matmul_{ra}x{rb}", matmul_reference, link=flags,
                                  symbol=f"rx_blas_matmul_{ra}x{rb}", pure=True)
        if (ra, rb) in MATMUL_T_RANKS:
            register_library_function(f"blas.matmul_{ra}x{rb}_tb", matmul_t_reference, link=flags,
                                      symbol=f"rx_blas_matmul_{ra}x{rb}_tb", pure=True)
        if rb == 2:
            for act in DENSE_ACTIVATIONS:
                register_library_function(f"blas.dense_{_dense_tag(ra, act)}", dense_reference(act), link=flags,
                                          symbol=f"rx_blas_dense_{_dense_tag(ra, act)}", pure=True)
    for ra in PACKED_DENSE_RANKS:
        for variant in PACKED_DENSE_VARIANTS:
            # the runtime archive's own kernels (rx_packed.c): its header, no OpenBLAS to link
            register_library_function(f"blas.packed_dense_{ra}x2{variant}", packed_dense_reference(variant),
                                      c_source='#include "rx_blas.h"\n',
                                      symbol=f"rx_blas_packed_dense_{ra}x2{variant}", pure=True)


ATTENTION_PREFIX = "blas.attention:"
ATTENTION_RANKS = (3, 4)
"""Ranks of relax.attention's query, key and value taken by rx_blas_attention
([b1, s, d] or [b0, b1, s, d]: the heads among the batch dims)."""


def _attention_params(rank: int, bias_rank: int, scale: float, zero_nan: bool) -> tuple[int, int, int, int]:
    """(rank, bias rank, zero_nan, scale's float32 bits): a name's parameters."""
    bits = int(np.float32(scale).view(np.uint32))
    return rank, bias_rank, int(zero_nan), bits


def attention_function(rank: int, bias_rank: int, scale: float, zero_nan: bool) -> LibFuncOp:
    """The `lib.func` of float32 relax.attention with query, key and value of
    rank `rank` (ATTENTION_RANKS), a bias of rank `bias_rank` (<= rank; it
    broadcasts to the scores), the given float32 `scale` and zero_nan."""
    if rank not in ATTENTION_RANKS or not 0 <= bias_rank <= rank:
        raise ValueError(f"blas attention of rank {rank}, bias rank {bias_rank}: ranks {ATTENTION_RANKS}, "
                         f"a bias of at most that rank")
    params = _attention_params(rank, bias_rank, scale, zero_nan)
    batch = [f"b{i}" for i in range(rank - 2)]
    shapes = [[*batch, "s", "d"], [*batch, "t", "d"], [*batch, "t", "dv"], [f"m{i}" for i in range(bias_rank)],
              [*batch, "s", "dv"]]
    tag = "_".join(str(v) for v in params)
    return LibFuncOp(f"blas_attention_{tag}", [BufferType.of(sh, "float32") for sh in shapes],
                     f"rx_blas_attention_{tag}", "blas", header="cblas.h", link=link_flags(),
                     reference=ATTENTION_PREFIX + ",".join(str(v) for v in params), pure=True)


def _resolve_attention(name: str) -> object:
    """Registers `blas.attention:rank,bias_rank,zero_nan,scale_bits` (its C
    wrapper and the attention op's numpy reference)."""
    if not name.startswith(ATTENTION_PREFIX):
        return None
    values = name[len(ATTENTION_PREFIX):].split(",")
    if len(values) != 4 or not all(v.isascii() and v.isdigit() and str(int(v)) == v for v in values):
        return None
    rank, bias_rank, zero_nan, bits = (int(v) for v in values)
    if rank not in ATTENTION_RANKS or not 0 <= bias_rank <= rank or zero_nan > 1 or bits >= 2**32:
        return None
    scale = float(np.uint32(bits).view(np.float32))
    from relax_xdsl.ops.registry import get_spec

    spec = get_spec("attention")

    def reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
        out[...] = spec.reference(q, k, v, bias, scale=scale, zero_nan=bool(zero_nan))

    flags = link_flags()
    symbol = "rx_blas_attention_" + "_".join(values)
    source = _attention_wrapper(symbol, rank, bias_rank, scale, bool(zero_nan)) if flags else ""
    return register_library_function(name, reference, c_source=source, link=flags, symbol=symbol, pure=True)


def _attention_wrapper(symbol: str, rank: int, bias_rank: int, scale: float, zero_nan: bool) -> str:
    """The C of one attention function: the calling convention's dims to
    (b0, b1, s, t, d, dv) and the bias's broadcast strides (0 for a dim of
    1, aligned to the scores' last dims) for rx_blas_attention."""
    q, k, v, o = ([f"{x}{i}" for i in range(rank)] for x in "qkvo")
    m = [f"m{i}" for i in range(bias_rank)]
    dims = [*q, *k, *v, *m, *o]
    params = ", ".join(["float* Q", "float* K", "float* V", "float* M", "float* O", *(f"int64_t {x}" for x in dims)])
    b0 = q[0] if rank == 4 else "1"
    lead = "\n".join(f"  md[{4 - bias_rank + i}] = {x};" for i, x in enumerate(m))
    from xdsl.dialects.builtin import Float32Type

    from relax_xdsl.backend.c_emitter import float_literal

    literal = float_literal(float(np.float32(scale)), Float32Type())
    return f"""#include "rx_blas.h"
void {symbol}({params}) {{
  {" ".join(f"(void){x};" for x in [*k, *v[:-1], *o])}
  int64_t md[4] = {{1, 1, 1, 1}}, bst[4], step = 1;
{lead}
  for (int i = 3; i >= 0; --i) {{
    bst[i] = md[i] == 1 ? 0 : step;
    step *= md[i];
  }}
  rx_blas_attention(Q, K, V, M, bst, O, {b0}, {q[-3]}, {q[-2]}, {k[-2]}, {q[-1]}, {v[-1]}, {literal}, {int(zero_nan)});
}}
"""


register()
register_resolver(_resolve_conv)
register_resolver(_resolve_attention)
