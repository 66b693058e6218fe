"""oneDNN library functions: conv2d of every kind (groups, depthwise,
dilation, any strides and paddings, a per-channel bias and relu epilogue)
on oneDNN's C API, for the `offload{lib=blas}` pass (passes/offload.py
routes each conv2d to oneDNN or to BLAS's im2col + GEMM).

oneDNN is optional: the onednn-cpu-gomp wheel ships libdnnl.so and
onednn-devel-cpu-gomp its headers. The C is the runtime's
relax_xdsl/c_runtime/rx_dnnl.c (compiled into the runtime archive when the
headers are found, see backend/c_runtime.py); this module registers one
small wrapper per (strides, paddings, dilations, groups, epilogue) passing
those as constants, with the conv2d op's numpy reference for the
interpreter and evaluator. Without oneDNN nothing is offloaded to it.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.libraries import register_library_function, register_resolver

CONV_PREFIX = "dnnl.conv2d"

CONV_VARIANTS = ("", "_bias3", "_bias4", "_bias3_relu", "_bias4_relu")
"""As blas.CONV_VARIANTS: plain, + a bias of shape (o, 1, 1) or (1, o, 1, 1),
each optionally + relu (a pass over the output after the convolution:
oneDNN's relu post-op does not keep NaN)."""


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


ConvParams = tuple[int, int, int, int, int, int, int, int, int]
"""(sh, sw, pt, pl, pb, pr, dh, dw, groups)."""


def _tag(params: ConvParams, variant: str) -> str:
    return "_".join(str(v) for v in params) + variant


def conv2d_function(strides: tuple[int, int], padding: tuple[int, int, int, int], dilation: tuple[int, int],
                    groups: int, variant: str = "") -> LibFuncOp:
    """The `lib.func` of a float32 NCHW/OIHW conv2d on oneDNN (weights
    o x c/groups x kh x kw), with the bias / relu epilogue of `variant`."""
    if variant not in CONV_VARIANTS:
        raise ValueError(f"conv2d variant {variant!r}; known: {CONV_VARIANTS}")
    params: ConvParams = (*strides, *padding, *dilation, groups)  # type: ignore[assignment]
    shapes: list[list[int | str]] = [["n", "c", "h", "w"], ["o", "ci", "kh", "kw"]]
    if variant.startswith("_bias3"):
        shapes.append(["o", 1, 1])
    elif variant.startswith("_bias4"):
        shapes.append([1, "o", 1, 1])
    shapes.append(["n", "o", "oh", "ow"])
    bufs = [BufferType.of(s, "float32") for s in shapes]
    tag = _tag(params, variant)
    return LibFuncOp(f"dnnl_conv2d_{tag}", bufs, f"rx_dnnl_conv2d_{tag}", "dnnl", header="oneapi/dnnl/dnnl.h",
                     link=link_flags(), reference=f"{CONV_PREFIX}{variant}:{','.join(str(v) for v in params)}",
                     pure=True)


def _parse(name: str) -> tuple[str, ConvParams] | None:
    """(variant, params) of `dnnl.conv2d[variant]:sh,sw,pt,pl,pb,pr,dh,dw,g`, or None."""
    if not name.startswith(CONV_PREFIX) or ":" not in name:
        return None
    variant, _, text = name[len(CONV_PREFIX):].partition(":")
    if variant not in CONV_VARIANTS:
        return None
    values = text.split(",")
    # canonical decimals only ("01" would be a second name of one C symbol)
    if len(values) != 9 or not all(v.isascii() and v.isdigit() and str(int(v)) == v for v in values):
        return None
    params = tuple(int(v) for v in values)
    sh, sw, _pt, _pl, _pb, _pr, dh, dw, g = params
    if min(sh, sw, dh, dw, g) < 1 or max(params) >= 2**31:
        return None
    return variant, params  # type: ignore[return-value]


def _resolve_conv(name: str) -> object:
    """Registers `dnnl.conv2d[variant]:...` (its C wrapper and numpy reference)."""
    parsed = _parse(name)
    if parsed is None:
        return None
    variant, params = parsed
    sh, sw, pt, pl, pb, pr, dh, dw, g = params
    from relax_xdsl.ops.registry import get_spec

    spec, spec_relu = get_spec("conv2d"), get_spec("relu")

    def reference(x: np.ndarray, w: np.ndarray, *rest: np.ndarray) -> None:
        out = rest[-1]
        out[...] = spec.reference(x, w, strides=(sh, sw), padding=(pt, pl, pb, pr), dilation=(dh, dw), groups=g,
                                  data_layout="NCHW", kernel_layout="OIHW", out_dtype=None)
        if variant:
            out += rest[0].reshape(1, -1, 1, 1)
        if variant.endswith("_relu"):
            out[...] = spec_relu.reference(out)

    flags = link_flags()
    symbol = f"rx_dnnl_conv2d_{_tag(params, variant)}"
    return register_library_function(name, reference, c_source=_wrapper(symbol, params, variant) if flags else "",
                                     link=flags, symbol=symbol, pure=True)


def _wrapper(symbol: str, params: ConvParams, variant: str) -> str:
    """The C of one conv2d library function: its calling convention's
    arguments passed on to the runtime's rx_dnnl_conv2d, with its strides,
    paddings, dilations and groups as constant arguments."""
    sh, sw, pt, pl, pb, pr, dh, dw, g = params
    bias = "_bias" in variant
    bias_dims = (", int64_t d0, int64_t d1, int64_t d2" + (", int64_t d3" if variant.startswith("_bias4") else "")
                 if bias else "")
    return f"""#include "rx_dnnl.h"
void {symbol}(float* X, float* W, {"float* B, " if bias else ""}float* Y, int64_t n, int64_t c, int64_t h, int64_t w,
              int64_t o, int64_t ci, int64_t kh, int64_t kw{bias_dims}, int64_t n2, int64_t o2, int64_t oh, int64_t ow) {{
  rx_dnnl_conv2d(X, W, {"B" if bias else "NULL"}, Y, n, c, h, w, o, kh, kw, oh, ow, {sh}, {sw}, {pt}, {pl}, {pb}, {pr},
                 {dh}, {dw}, {g}, {1 if variant.endswith("_relu") else 0});
}}
"""


register_resolver(_resolve_conv)
