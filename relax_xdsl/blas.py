"""BLAS library functions for offloaded matmuls, on scipy-openblas32 (a
wheel that ships OpenBLAS and `cblas.h` with `scipy_`-prefixed symbols).

One library function per rank pattern of matmul operands, each a small C
wrapper around `scipy_cblas_sgemm` (row-major) following the library calling
convention of relax_xdsl/libraries.py; numpy's matmul is the reference the
interpreter and evaluator run. Without the wheel, offloaded modules still
run on the interpreter; the C target reports what to install.
"""

from __future__ import annotations

import numpy as np

from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.libraries import register_library_function, register_resolver

MATMUL_RANKS = ((2, 2), (3, 2), (4, 2), (3, 3), (4, 4))
"""(rank of x1, rank of x2) pairs offloaded: x1's leading dims folded into
the GEMM rows when x2 is a matrix, or a loop over equal batch dims."""


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


def _matmul_c(ra: int, rb: int) -> str:
    rc = max(ra, rb)
    dims = [f"int64_t a{i}" for i in range(ra)] + [f"int64_t b{i}" for i in range(rb)] + \
           [f"int64_t c{i}" for i in range(rc)]
    name = f"rx_blas_matmul_{ra}x{rb}"
    if rb == 2:
        rows = " * ".join(f"a{i}" for i in range(ra - 1))
        body = f"""  scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)({rows}), (blasint)b1, (blasint)b0,
                    1.0f, A, (blasint)b0, B, (blasint)b1, 0.0f, C, (blasint)b1);"""
    else:
        batch = " * ".join(f"a{i}" for i in range(ra - 2))
        m, k, n = f"a{ra - 2}", f"a{ra - 1}", f"b{rb - 1}"
        # one strided-batch call: OpenBLAS spreads the batch over its threads
        # (a loop of small sgemm calls, each split over threads, measured 2x slower)
        body = f"""  scipy_cblas_sgemm_batch_strided(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint){m}, (blasint){n},
                    (blasint){k}, 1.0f, A, (blasint){k}, (blasint)({m} * {k}), B, (blasint){n}, (blasint)({k} * {n}),
                    0.0f, C, (blasint){n}, (blasint)({m} * {n}), (blasint)({batch}));"""
    return f"""#include <cblas.h>
void {name}(float* A, float* B, float* C, {", ".join(dims)}) {{
{body}
}}
"""


def _matmul_reference(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def matmul_function(ra: int, rb: int) -> LibFuncOp:
    """The `lib.func` of a float32 matmul of ranks (ra, rb)."""
    batch = [f"b{i}" for i in range(max(ra, rb) - 2)]
    if rb == 2:
        lead = [f"b{i}" for i in range(ra - 2)]
        a, b, c = [*lead, "m", "k"], ["k", "n"], [*lead, "m", "n"]
    else:
        a, b, c = [*batch, "m", "k"], [*batch, "k", "n"], [*batch, "m", "n"]
    bufs = [BufferType.of(s, "float32") for s in (a, b, c)]
    return LibFuncOp(f"blas_matmul_{ra}x{rb}", bufs, f"rx_blas_matmul_{ra}x{rb}", "blas",
                     header="cblas.h", link=link_flags(), reference=f"blas.matmul_{ra}x{rb}")


DENSE_ACTIVATIONS = ("", "relu", "gelu")
"""Epilogues of the dense library functions, applied in place after the GEMM."""

_ACTIVATION = {
    "relu": "v > 0.0f ? v : 0.0f",
    # as relax.gelu's legalization computes it, with the prelude's vectorizable erf
    "gelu": "(0.5f * v) * (1.0f + rx_erff(v / 1.41421353816986083984375f))",
}
"""The C expression of each activation of an offloaded call, of its input `v`."""


def _dense_tag(ra: int, act: str) -> str:
    """`2x2`, `3x2_relu`, ...: names the dense function of each rank and activation."""
    return f"{ra}x2{'_' + act if act else ''}"


def _dense_c(ra: int, act: str) -> str:
    """C = bias (each row), then C += A @ B in one SGEMM (beta = 1), then the
    activation in place; the fill and the activation are split over OpenMP
    threads when large."""
    name = f"rx_blas_dense_{_dense_tag(ra, act)}"
    rows = " * ".join(f"a{i}" for i in range(ra - 1))
    dims = [f"int64_t a{i}" for i in range(ra)] + ["int64_t b0", "int64_t b1", "int64_t d0"] + \
           [f"int64_t c{i}" for i in range(ra)]
    epilogue = f"""
  #pragma omp parallel for if(m * b1 >= 65536)
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < b1; ++j) {{ float v = C[i * b1 + j]; C[i * b1 + j] = {_ACTIVATION[act]}; }}""" \
        if act else ""
    return f"""#include <cblas.h>
#include <string.h>
void {name}(float* A, float* B, float* D, float* C, {", ".join(dims)}) {{
  int64_t m = {rows};
  #pragma omp parallel for if(m * b1 >= 65536)
  for (int64_t i = 0; i < m; ++i) memcpy(C + i * b1, D, (size_t)b1 * sizeof(float));
  scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)b1, (blasint)b0,
                    1.0f, A, (blasint)b0, B, (blasint)b1, 1.0f, C, (blasint)b1);{epilogue}
}}
"""


def _dense_reference(act: str) -> object:
    from relax_xdsl.ops.registry import get_spec

    def reference(a: np.ndarray, b: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
        np.matmul(a, b, out=out)
        out += bias
        if act:
            out[...] = get_spec(act).reference(out)

    return reference


def dense_function(ra: int, act: str = "") -> LibFuncOp:
    """The `lib.func` of float32 matmul(x, W) + bias (+ relu / gelu), x of rank `ra`."""
    if act not in DENSE_ACTIVATIONS:
        raise ValueError(f"dense activation {act!r}; known: {DENSE_ACTIVATIONS}")
    lead = [f"b{i}" for i in range(ra - 2)]
    a, b, d, c = [*lead, "m", "k"], ["k", "n"], ["n"], [*lead, "m", "n"]
    bufs = [BufferType.of(s, "float32") for s in (a, b, d, c)]
    tag = _dense_tag(ra, act)
    return LibFuncOp(f"blas_dense_{tag}", bufs, f"rx_blas_dense_{tag}", "blas",
                     header="cblas.h", link=link_flags(), reference=f"blas.dense_{tag}")


CONV_VARIANTS = ("", "_bias3", "_bias4", "_bias3_relu", "_bias4_relu")
"""Conv2d library functions: plain, + a per-channel bias of shape (o, 1, 1)
or (1, o, 1, 1), each optionally + relu (applied per image while it is in
cache, instead of another pass over the output)."""


def _conv2d_c(symbol: str, sh: int, sw: int, pt: int, pl: int, variant: str) -> str:
    """Per image: im2col (each row's in-input run copied, its padding
    zeroed, no test per element), then one SGEMM (with the bias as its C
    operand), then relu; images split across OpenMP threads, each with its
    own column buffer (OpenBLAS runs these small GEMMs on one thread). A
    thread that cannot allocate its buffer convolves directly instead."""
    bias = "_bias" in variant
    relu = variant.endswith("_relu")
    bias_dims = ", int64_t d0, int64_t d1, int64_t d2" + (", int64_t d3" if variant.startswith("_bias4") else "")
    fill = """
      for (int64_t oc = 0; oc < o; ++oc)
        for (int64_t j = 0; j < p; ++j) y[oc * p + j] = B[oc];""" if bias else ""
    act = f"""
      for (int64_t j = 0; j < o * p; ++j) {{ float v = y[j]; y[j] = {_ACTIVATION["relu"]}; }}""" if relu else ""
    return f"""#include <cblas.h>
#include <stdlib.h>
/* short rows: inline loops, not memset/memcpy calls */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void {symbol}(float* X, float* W, {"float* B, " if bias else ""}float* Y, int64_t n, int64_t c, int64_t h, int64_t w,
              int64_t o, int64_t c2, int64_t kh, int64_t kw{bias_dims if bias else ""}, int64_t n2, int64_t o2, int64_t oh,
              int64_t ow) {{
  int64_t k = c * kh * kw, p = oh * ow;
  #pragma omp parallel if(n > 1 && n * o * p * k >= 262144)
  {{
#ifndef RX_TEST_CONV_DIRECT
    float* cols = (float*)malloc((size_t)(k * p > 0 ? k * p : 1) * sizeof(float));
#else
    float* cols = NULL;  /* tests of the direct path */
#endif
    #pragma omp for schedule(static)
    for (int64_t b = 0; b < n; ++b) {{
      const float* x = X + b * c * h * w;
      float* y = Y + b * o * p;{fill}
      if (!cols) {{  /* no memory for the columns: a direct convolution, slower but right */
        for (int64_t oc = 0; oc < o; ++oc)
          for (int64_t yy = 0; yy < oh; ++yy)
            for (int64_t xx = 0; xx < ow; ++xx) {{
              float acc = {"y[(oc * oh + yy) * ow + xx]" if bias else "0.0f"};
              for (int64_t ci = 0; ci < c; ++ci)
                for (int64_t ky = 0; ky < kh; ++ky)
                  for (int64_t kx = 0; kx < kw; ++kx) {{
                    int64_t iy = yy * {sh} - {pt} + ky, ix = xx * {sw} - {pl} + kx;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                      acc += x[(ci * h + iy) * w + ix] * W[((oc * c + ci) * kh + ky) * kw + kx];
                  }}
              y[(oc * oh + yy) * ow + xx] = acc;
            }}
      }} else {{
        for (int64_t ci = 0; ci < c; ++ci)
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx) {{
              float* row = cols + ((ci * kh + ky) * kw + kx) * p;
              /* output columns whose tap lies in the input: [lo, hi) */
              int64_t first = {pl} - kx, last = w - 1 + {pl} - kx;
              int64_t lo = first <= 0 ? 0 : (first + {sw} - 1) / {sw};
              int64_t hi = last < 0 ? 0 : last / {sw} + 1;
              if (hi > ow) hi = ow;
              if (lo > hi) lo = hi;
              for (int64_t yy = 0; yy < oh; ++yy) {{
                float* r = row + yy * ow;
                int64_t iy = yy * {sh} - {pt} + ky;
                if (iy < 0 || iy >= h) {{ for (int64_t xx = 0; xx < ow; ++xx) r[xx] = 0.0f; continue; }}
                const float* src = x + (ci * h + iy) * w - {pl} + kx;
                for (int64_t xx = 0; xx < lo; ++xx) r[xx] = 0.0f;
                for (int64_t xx = lo; xx < hi; ++xx) r[xx] = src[xx * {sw}];
                for (int64_t xx = hi; xx < ow; ++xx) r[xx] = 0.0f;
              }}
            }}
        scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)o, (blasint)p, (blasint)k,
                          1.0f, W, (blasint)k, cols, (blasint)p, {"1.0f" if bias else "0.0f"}, y, (blasint)p);
      }}{act}
    }}
    free(cols);
  }}
}}
"""


CONV_PREFIX = "blas.conv2d"


def conv2d_function(strides: tuple[int, int], padding: tuple[int, int, int, int], variant: str = "") -> LibFuncOp:
    """The `lib.func` of a float32 NCHW/OIHW conv2d (groups 1, dilation 1),
    with the bias / relu epilogue of `variant` (one of CONV_VARIANTS)."""
    if variant not in CONV_VARIANTS:
        raise ValueError(f"conv2d variant {variant!r}; known: {CONV_VARIANTS}")
    params = ",".join(str(v) for v in (*strides, *padding))
    tag = params.replace(",", "_") + variant
    shapes = [["n", "c", "h", "w"], ["o", "c", "kh", "kw"]]
    if variant.startswith("_bias3"):
        shapes.append(["o", 1, 1])
    elif variant.startswith("_bias4"):
        shapes.append([1, "o", 1, 1])
    shapes.append(["n", "o", "oh", "ow"])
    bufs = [BufferType.of(s, "float32") for s in shapes]
    return LibFuncOp(f"blas_conv2d_{tag}", bufs, f"rx_blas_conv2d_{tag}", "blas", header="cblas.h",
                     link=link_flags(), reference=f"{CONV_PREFIX}{variant}:{params}")


def _resolve_conv(name: str) -> object:
    """Registers `blas.conv2d[variant]:sh,sw,pt,pl,pb,pr` (its C and numpy reference)."""
    if not name.startswith(CONV_PREFIX) or ":" not in name:
        return None
    variant, _, params = name[len(CONV_PREFIX):].partition(":")
    if variant not in CONV_VARIANTS:
        return None
    try:
        sh, sw, pt, pl, pb, pr = (int(v) for v in params.split(","))
    except ValueError:
        return None
    from relax_xdsl.ops.registry import get_spec

    spec, spec_relu = get_spec("conv2d"), get_spec("relu")

    def reference(x: np.ndarray, w: np.ndarray, *rest: np.ndarray) -> None:
        out = rest[-1]
        out[...] = spec.reference(x, w, strides=(sh, sw), padding=(pt, pl, pb, pr), dilation=(1, 1), groups=1,
                                  data_layout="NCHW", kernel_layout="OIHW", out_dtype=None)
        if variant:
            out += rest[0].reshape(1, -1, 1, 1)
        if variant.endswith("_relu"):
            out[...] = spec_relu.reference(out)

    flags = link_flags()
    symbol = "rx_blas_conv2d_" + "_".join(str(v) for v in (sh, sw, pt, pl, pb, pr)) + variant
    return register_library_function(name, reference,
                                     c_source=_conv2d_c(symbol, sh, sw, pt, pl, variant) if flags else "", link=flags)


def register() -> None:
    flags = link_flags()
    for ra, rb in MATMUL_RANKS:
        register_library_function(f"blas.matmul_{ra}x{rb}", _matmul_reference,
                                  c_source=_matmul_c(ra, rb) if flags else "", link=flags)
        if rb == 2:
            for act in DENSE_ACTIVATIONS:
                register_library_function(f"blas.dense_{_dense_tag(ra, act)}", _dense_reference(act),
                                          c_source=_dense_c(ra, act) if flags else "", link=flags)


register()
register_resolver(_resolve_conv)
