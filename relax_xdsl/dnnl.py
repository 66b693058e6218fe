"""oneDNN library functions on oneDNN's C API, for the `offload{lib=blas}`
pass: conv2d of every kind (groups, depthwise, dilation, any strides and
paddings, a per-channel bias and relu / relu6 epilogue, a residual add
before the relu), dense layers (a
matmul by constant weights [+ bias] [+ relu | gelu]) and batched matmuls
of computed operands (attention's). passes/offload.py routes each conv2d to
oneDNN or to BLAS's im2col + GEMM, each batched matmul to oneDNN unless
told `gemm=blas`, and a dense layer to oneDNN on AVX-512 or when told
`gemm=dnnl` (elsewhere to BLAS's kernels on weights packed when compiling).

oneDNN is optional: the onednn-cpu-gomp wheel ships libdnnl.so and
onednn-devel-cpu-gomp its headers. The C is the runtime's
relax_xdsl/c_runtime/rx_dnnl.c (compiled into the runtime archive when the
headers are found, see backend/c_runtime.py); this module registers one
small wrapper per (strides, paddings, dilations, groups, epilogue) passing
those as constants, with the conv2d op's numpy reference for the
interpreter and evaluator. Without oneDNN nothing is offloaded to it.

Each comes in two data layouts, NCHW (`dnnl.conv2d...`) and NHWC
(`dnnl.conv2d_nhwc...`, channels last, what convert-layout makes of every
conv it sends here: oneDNN runs it without reordering the data), and in
two kinds: `dnnl.conv2d...` reorders its weights into
oneDNN's layout on every call, `dnnl.conv2d_cw...` (weights that are a
model constant, which the offload pass knows) keeps the reordered copy
between calls; its weights operand is declared constant
(LibraryFunction.constant_inputs), so the C emitter refuses a computed one.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from relax_xdsl.conv_library import CONV_VARIANTS as CONV_VARIANTS
from relax_xdsl.conv_library import (
    LAYOUTS,
    RESIDUAL_VARIANTS,
    activation_code,
    check_variant,
    conv_buffers,
    conv_reference,
    has_residual,
    parse_name,
    wrapper_signature,
)
from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.libraries import register_library_function, register_resolver

CONV_PREFIX = "dnnl.conv2d"
CONST_WEIGHTS_PREFIX = "dnnl.conv2d_cw"
"""The library functions whose weights are a model constant (rx_dnnl_conv2d_cw)."""
PREFIXES = {("NCHW", False, False): CONV_PREFIX, ("NCHW", True, False): CONST_WEIGHTS_PREFIX,
            ("NHWC", False, False): "dnnl.conv2d_nhwc", ("NHWC", True, False): "dnnl.conv2d_nhwc_cw",
            ("NCHW", True, True): "dnnl.conv2d_cw_after6", ("NHWC", True, True): "dnnl.conv2d_nhwc_cw_after6"}
"""A library function's name prefix by (layout, constant weights, after a
relu6 conv). A name parses one way only: no variant starts with `_cw`,
`_nhwc` or `_after6`.

`_after6`: the data is the result of a constant-weight conv + relu6 call
(the offload pass knows it), so when that call ran its relu6 as oneDNN's
post-op (proven NaN-free, rx_dnnl_nan_free) its result is in [0, 6] and
this call need not read its data to prove its own result NaN-free
(rx_dnnl_conv2d_cw_after6). MobileNet's depthwise convs read what the
expanding 1x1 conv before them made."""



def _dist_file(dists: tuple[str, ...], suffix: str) -> Path | None:
    """The installed file of one of `dists` whose path ends with `suffix`."""
    for name in dists:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if str(f).replace("\\", "/").endswith(suffix):
                path = Path(str(dist.locate_file(f))).resolve()
                if path.is_file():
                    return path
    return None


@cache
def library_dir() -> Path | None:
    """The directory holding libdnnl.so, or None when oneDNN is not installed."""
    found = _dist_file(("onednn-cpu-gomp", "onednn-cpu-iomp", "onednn-cpu-tbb", "onednn"), "/libdnnl.so")
    if found is not None:
        return found.parent
    fallback = Path(sys.prefix) / "lib" / "libdnnl.so"
    return fallback.parent if fallback.is_file() else None


@cache
def include_dir() -> Path | None:
    """The directory holding oneapi/dnnl/dnnl.h, or None without oneDNN's
    headers or its library (both are needed to build and link the calls)."""
    if library_dir() is None:
        return None
    header = "oneapi/dnnl/dnnl.h"
    found = _dist_file(("onednn-devel-cpu-gomp", "onednn-devel-cpu-iomp", "onednn-devel-cpu-tbb", "onednn-devel"),
                       "/" + header)
    if found is not None:
        return found.parent.parent.parent
    fallback = Path(sys.prefix) / "include" / header
    return fallback.parent.parent.parent if fallback.is_file() else None


def available() -> bool:
    """Whether oneDNN's library and headers are installed (the C target can call it)."""
    return include_dir() is not None


def link_flags() -> list[str]:
    """Compile and link flags for libdnnl, or [] when oneDNN is missing."""
    lib, inc = library_dir(), include_dir()
    if lib is None or inc is None:
        return []
    return [f"-I{inc}", f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}"]


ALL_CONV_VARIANTS = CONV_VARIANTS + RESIDUAL_VARIANTS
"""oneDNN's conv2d functions also take a residual (its binary post-op)."""

ConvParams = tuple[int, int, int, int, int, int, int, int, int]
"""(sh, sw, pt, pl, pb, pr, dh, dw, groups)."""


def _tag(params: ConvParams, variant: str) -> str:
    return "_".join(str(v) for v in params) + variant


def _kind(layout: str, constant_weights: bool, after6: bool = False) -> str:
    """conv2d[_nhwc][_cw[_after6]]: the middle of a library function's symbol."""
    return ("conv2d" + ("_nhwc" if layout == "NHWC" else "") + ("_cw" if constant_weights else "")
            + ("_after6" if after6 else ""))


def bounds_by_six(symbol: str) -> bool:
    """Whether the `lib.func` `symbol` is a constant-weight oneDNN conv with
    relu6: its result, when its relu6 ran as oneDNN's post-op, is in [0, 6]."""
    rest = symbol.removeprefix("dnnl_")  # dnnl_conv2d[_nhwc]_cw[_after6]_<params>_bias..._relu6
    return (symbol.startswith("dnnl_") and symbol.endswith("_relu6")
            and any(rest.startswith(_kind(layout, True) + "_") for layout in LAYOUTS))


def conv2d_function(strides: tuple[int, int], padding: tuple[int, int, int, int], dilation: tuple[int, int],
                    groups: int, variant: str = "", constant_weights: bool = False,
                    layout: str = "NCHW", after6: bool = False) -> LibFuncOp:
    """The `lib.func` of a float32 conv2d on oneDNN, data NCHW or NHWC
    (`layout`), weights OIHW (o x c/groups x kh x kw), with the bias / relu
    epilogue of `variant`; `constant_weights`: the weights operand is a
    model constant (its reordered copy is kept between calls); `after6`:
    with constant weights and an activation, the data is the result of a
    call that bounds_by_six (see PREFIXES)."""
    check_variant(variant, ALL_CONV_VARIANTS)
    if after6 and not (constant_weights and activation_code(variant)):
        raise ValueError("conv2d after a relu6 conv: only with constant weights and an activation")
    params: ConvParams = (*strides, *padding, *dilation, groups)  # type: ignore[assignment]
    bufs = conv_buffers(variant, "ci", layout)
    tag = _tag(params, variant)
    kind = _kind(layout, constant_weights, after6)
    prefix = PREFIXES[layout, constant_weights, after6]
    return LibFuncOp(f"dnnl_{kind}_{tag}", bufs, f"rx_dnnl_{kind}_{tag}", "dnnl", header="oneapi/dnnl/dnnl.h",
                     link=link_flags(), reference=f"{prefix}{variant}:{','.join(str(v) for v in params)}",
                     pure=True)


def _resolve_conv(name: str) -> object:
    """Registers `dnnl.conv2d[_nhwc][_cw][variant]:sh,sw,pt,pl,pb,pr,dh,dw,g`
    (its C wrapper and numpy reference)."""
    found = next(((key, parsed) for key, prefix in PREFIXES.items()
                  if (parsed := parse_name(name, prefix, 9, ALL_CONV_VARIANTS)) is not None), None)
    if found is None:
        return None
    (layout, constant_weights, after6), (variant, params) = found  # a name parses one way only (PREFIXES)
    sh, sw, pt, pl, pb, pr, dh, dw, g = params
    if min(sh, sw, dh, dw, g) < 1 or (after6 and not activation_code(variant)):
        return None
    reference = conv_reference((sh, sw), (pt, pl, pb, pr), (dh, dw), g, variant, layout)
    flags = link_flags()
    symbol = f"rx_dnnl_{_kind(layout, constant_weights, after6)}_{_tag(params, variant)}"  # type: ignore[arg-type]
    runtime = "rx_dnnl_conv2d" + ("_cw" if constant_weights else "") + ("_after6" if after6 else "")
    source = _wrapper(symbol, runtime, params, variant, layout) if flags else ""
    return register_library_function(name, reference, c_source=source, link=flags, symbol=symbol, pure=True,
                                     constant_inputs=(1,) if constant_weights else ())


def _wrapper(symbol: str, runtime: str, params: ConvParams, variant: str, layout: str) -> str:
    """The C of one conv2d library function: its calling convention's
    arguments passed on to the runtime's `runtime` (rx_dnnl_conv2d or
    rx_dnnl_conv2d_cw), with its strides, paddings, dilations and groups as
    constant arguments."""
    sh, sw, pt, pl, pb, pr, dh, dw, g = params
    return f"""#include "rx_dnnl.h"
{wrapper_signature(symbol, variant, "ci", layout)} {{
  {runtime}(X, W, {"B" if "_bias" in variant else "NULL"}, {"R" if has_residual(variant) else "NULL"}, Y,
                 n, c, h, w, o, kh, kw, oh, ow, {sh}, {sw}, {pt}, {pl}, {pb}, {pr},
                 {dh}, {dw}, {g}, {activation_code(variant)}, {int(layout == "NHWC")});
}}
"""


DENSE_RANKS = (2, 3, 4)
"""Ranks of x in dense(x, W): its leading dims are the GEMM's rows."""
DENSE_VARIANTS = ("", "_bias", "_bias_relu", "_bias_gelu", "_bias_add")
"""Dense epilogues: none, a bias row [then relu or gelu], a bias row then a
residual of the result's shape (a transformer block's shortcut; oneDNN's
binary post-op reads it while the result is in cache)."""
DENSE_ACT_CODES = {"": 0, "relu": 1, "gelu": 3}
"""rx_dnnl_dense's activation codes."""


def _dense_act(variant: str) -> str:
    """The activation of a dense variant: "", "relu" or "gelu"."""
    return "" if variant == "_bias_add" else variant.removeprefix("_bias").removeprefix("_")


def dense_function(ra: int, variant: str = "") -> LibFuncOp:
    """The `lib.func` of float32 matmul(x, W) [+ bias] [+ relu | gelu] on oneDNN, x
    of rank `ra`, W a model constant (kept in the layout oneDNN's matmul picks; the
    operand is declared constant, so the C emitter refuses a computed one)."""
    if ra not in DENSE_RANKS or variant not in DENSE_VARIANTS:
        raise ValueError(f"dnnl dense of rank {ra} {variant!r}: ranks {DENSE_RANKS}, variants {DENSE_VARIANTS}")
    lead = [f"b{i}" for i in range(ra - 2)]
    residual = [[*lead, "m", "n"]] if variant == "_bias_add" else []
    shapes = [[*lead, "m", "k"], ["k", "n"], *([["n"]] if variant else []), *residual, [*lead, "m", "n"]]
    tag = f"{ra}x2{variant}"
    return LibFuncOp(f"dnnl_dense_{tag}", [BufferType.of(s, "float32") for s in shapes], f"rx_dnnl_dense_{tag}",
                     "dnnl", header="oneapi/dnnl/dnnl.h", link=_gemm_link(), reference=f"dnnl.dense_{tag}", pure=True)


def _gemm_link() -> list[str]:
    """oneDNN's flags, then BLAS's (a single row goes to BLAS's GEMV), for
    the dense and matmul functions: [] without oneDNN."""
    from relax_xdsl import blas

    flags = link_flags()
    return [*flags, *(f for f in blas.link_flags() if f not in flags)] if flags else []


def _dense_wrapper(ra: int, variant: str, gemv: bool) -> str:
    """The C of one dense function: the calling convention's dims (x's,
    W's, the bias's, the result's) to rows, k and n for rx_dnnl_dense. With
    `gemv` (BLAS installed), a single row goes to BLAS's dense function
    instead: a GEMV reading W in place beats oneDNN's per-call setup there
    (then the residual is added to its one row)."""
    a = [f"a{i}" for i in range(ra)]
    c = [f"c{i}" for i in range(ra)]
    r = [f"r{i}" for i in range(ra)] if variant == "_bias_add" else []
    bias = ["float* D"] if variant else []
    dims = [*a, "b0", "b1", *(["d0"] if variant else []), *r, *c]
    params = ", ".join(["float* A", "float* B", *bias, *(["float* R"] if r else []), "float* C",
                        *(f"int64_t {d}" for d in dims)])
    unused = " ".join(f"(void){d};" for d in [*c, *r, "b0", *(["d0"] if variant else [])])
    rows = " * ".join(a[:-1])
    act = _dense_act(variant)
    one_row = ""
    if gemv:
        call = (f"rx_blas_dense_2x2{'_' + act if act else ''}(A, B, D, C, 1, {a[-1]}, b0, b1, d0, 1, b1)" if variant
                else f"rx_blas_matmul_2x2(A, B, C, 1, {a[-1]}, b0, b1, 1, b1)")
        add = "\n    for (int64_t j = 0; j < b1; ++j) C[j] += R[j];" if r else ""
        one_row = f"""  if ({rows} == 1) {{
    {call};{add}
    return;
  }}
"""
    return f"""#include "rx_dnnl.h"
{'#include "rx_blas.h"' if gemv else ""}
void rx_dnnl_dense_{ra}x2{variant}({params}) {{
  {unused}
{one_row}  rx_dnnl_dense(A, B, {"D" if variant else "NULL"}, {"R" if r else "NULL"}, C, {rows}, {a[-1]}, b1,
                {DENSE_ACT_CODES[act]});
}}
"""


MATMUL_RANKS = ((3, 3), (4, 4))
"""Batched products of two computed operands taken by oneDNN (attention's
q @ K^T, with K^T read in place, and p @ V); the buffers and references are
BLAS's (relax_xdsl/blas.py), so the two are interchangeable."""


def matmul_function(rank: int, transposed_b: bool = False) -> LibFuncOp:
    """The `lib.func` of a float32 batched matmul of two rank-`rank` operands
    on oneDNN (x1 @ swapaxes(x2, -1, -2) with `transposed_b`)."""
    from relax_xdsl import blas

    tag = f"{rank}x{rank}{'_tb' if transposed_b else ''}"
    like = blas.matmul_function(rank, rank, transposed_b)
    return LibFuncOp(f"dnnl_matmul_{tag}", list(like.function_type.inputs.data), f"rx_dnnl_matmul_{tag}", "dnnl",
                     header="oneapi/dnnl/dnnl.h", link=_gemm_link(), reference=f"dnnl.matmul_{tag}", pure=True)


def _matmul_wrapper(rank: int, transposed_b: bool, gemv: bool) -> str:
    """The C of one batched matmul: batch, m, k, n from the calling
    convention's dims for rx_dnnl_matmul; with `gemv` (BLAS installed), a
    product of one row per batch entry (a decode step's q @ K^T) goes to
    BLAS's same-named function, whose split over threads is made for it."""
    tag = f"{rank}x{rank}{'_tb' if transposed_b else ''}"
    a, b, c = ([f"{v}{i}" for i in range(rank)] for v in "abc")
    params = ", ".join(["float* A", "float* B", "float* C", *(f"int64_t {d}" for d in (*a, *b, *c))])
    dims = ", ".join((*a, *b, *c))
    batch = " * ".join(a[:-2])
    n = b[-2] if transposed_b else b[-1]
    unused = " ".join(f"(void){d};" for d in (*b, *c))
    one_row = f"""  if ({a[-2]} == 1) {{
    rx_blas_matmul_{tag}(A, B, C, {dims});
    return;
  }}
""" if gemv else ""
    return f"""#include "rx_dnnl.h"
{'#include "rx_blas.h"' if gemv else ""}
void rx_dnnl_matmul_{tag}({params}) {{
  {unused}
{one_row}  rx_dnnl_matmul(A, B, C, {batch}, {a[-2]}, {a[-1]}, {n}, {int(transposed_b)});
}}
"""


def register_gemms() -> None:
    """Registers every dense and batched matmul function (C wrapper and numpy reference)."""
    from relax_xdsl import blas

    blas_flags = blas.link_flags()
    flags = _gemm_link()
    for ra in DENSE_RANKS:
        for variant in DENSE_VARIANTS:
            tag = f"{ra}x2{variant}"
            reference = (blas.dense_residual_reference if variant == "_bias_add"
                         else blas.dense_reference(_dense_act(variant)) if variant else blas.matmul_reference)
            register_library_function(f"dnnl.dense_{tag}", reference,
                                      c_source=_dense_wrapper(ra, variant, bool(blas_flags)) if flags else "",
                                      link=flags,
                                      symbol=f"rx_dnnl_dense_{tag}", pure=True, constant_inputs=(1,))
    for rank, _ in MATMUL_RANKS:
        for transposed_b in (False, True):
            tag = f"{rank}x{rank}{'_tb' if transposed_b else ''}"
            reference = blas.matmul_t_reference if transposed_b else blas.matmul_reference
            register_library_function(f"dnnl.matmul_{tag}", reference,
                                      c_source=_matmul_wrapper(rank, transposed_b, bool(blas_flags)) if flags else "",
                                      link=flags, symbol=f"rx_dnnl_matmul_{tag}", pure=True)


register_resolver(_resolve_conv)
register_gemms()
