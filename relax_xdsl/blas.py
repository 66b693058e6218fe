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
from relax_xdsl.libraries import register_library_function

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
        body = f"""  for (int64_t i = 0; i < {batch}; ++i)
    scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint){m}, (blasint){n}, (blasint){k},
                      1.0f, A + i * {m} * {k}, (blasint){k}, B + i * {k} * {n}, (blasint){n}, 0.0f,
                      C + i * {m} * {n}, (blasint){n});"""
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


def register() -> None:
    flags = link_flags()
    for ra, rb in MATMUL_RANKS:
        register_library_function(f"blas.matmul_{ra}x{rb}", _matmul_reference,
                                  c_source=_matmul_c(ra, rb) if flags else "", link=flags)


register()
