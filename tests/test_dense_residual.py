"""A residual add in a dense layer's epilogue (passes/offload.py's
_dense_variant): matmul(x, W) + bias + a residual of the result's type is one
`..._bias_add` call on the packed route (added to each tile in cache,
rx_packed.c) and on oneDNN's (its binary post-op, rx_dnnl.c). Checked
against the graph's evaluation at every rank, on the interpreter (the
numpy reference) and in C, at batches 0, 1 (the one-row kernels: packed's
four-sum row, oneDNN's GEMV path), a few rows and many, with a tail of
columns; what stays a graph add: the BLAS route, a residual that
broadcasts, an add read by a LayerNorm."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.offload import offload_module
from util import LEAD, assert_close, check_levels, gemm_pipeline, rand

import relax_xdsl as rx
from relax_xdsl import dnnl, op
from relax_xdsl.backend.c import DEFAULT_FLAGS

K, N = 24, 37  # two panels of 16 and a tail of 5
ROUTES = ["packed", pytest.param("dnnl", marks=pytest.mark.skipif(not dnnl.available(),
                                                                   reason="oneDNN is not installed"))]


def residual_module(rank: int, residual: str = "param", then: str = "") -> Any:
    """matmul(x, W) + bias + r: r a parameter of the result's shape, `x` itself (k = n), or `row` (one row for
    every batch: a broadcast); then `then` ("", "layer_norm")."""
    rng = np.random.default_rng(rank)
    k = N if residual == "x" else K
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [*LEAD[rank], "b", k], "float32")
        r = (x if residual == "x" else fb.param("r", [1, N], "float32") if residual == "row"
             else fb.param("r", [*LEAD[rank], "b", N], "float32"))
        y = op.add(op.matmul(x, fb.const(rng.standard_normal((k, N)).astype(np.float32))),
                   fb.const(rng.standard_normal(N).astype(np.float32)))
        y = op.add(r, y)
        if then == "layer_norm":
            y = op.nn.layer_norm(y, fb.const(np.ones(N, np.float32)), fb.const(np.zeros(N, np.float32)), axes=[-1])
        fb.ret(y)
    return fb.module


def cases(rank: int, residual: str = "param", batches: tuple[int, ...] = (0, 1, 2, 7, 13)) -> list[tuple[Any, ...]]:
    k = N if residual == "x" else K
    out = []
    for b in batches:
        x = rand((*LEAD[rank], b, k), seed=b + 1)
        if residual == "x":
            out.append((x,))
        else:
            out.append((x, rand((1, N) if residual == "row" else (*LEAD[rank], b, N), seed=b + 2)))
    return out


@pytest.mark.parametrize("residual", ["param", "x"])
@pytest.mark.parametrize("rank", [2, 3, 4])
@pytest.mark.parametrize("route", ROUTES)
def test_residual_is_part_of_the_dense_call(route: str, rank: int, residual: str) -> None:
    module = residual_module(rank, residual)
    text = rx.print_module(offload_module(module.clone(), gemm=route))
    prefix = "blas_packed_dense" if route == "packed" else "dnnl_dense"
    assert text.count("lib.call") == 1 and "relax.add" not in text
    assert f"lib.call @{prefix}_{rank}x2_bias_add(" in text
    check_levels(rx.parse_module(text), cases(rank, residual), levels=("interp", "c"))


@pytest.mark.parametrize(("m", "k", "n"), [(1, 300, 48), (400, 512, 10), (300, 400, 40), (3, 0, 20)])
@pytest.mark.parametrize("route", ROUTES)
def test_threads_and_empty_k(route: str, m: int, k: int, n: int) -> None:
    """Products large enough for threads (split by panels or by rows), and k = 0 (the bias and residual)."""
    rng = np.random.default_rng(m)
    with rx.FunctionBuilder("main") as fb:
        x, r = fb.param("x", ["b", k], "float32"), fb.param("r", ["b", n], "float32")
        y = op.add(op.matmul(x, fb.const(rng.standard_normal((k, n)).astype(np.float32))),
                   fb.const(rng.standard_normal(n).astype(np.float32)))
        fb.ret(op.add(y, r))
    module = fb.module
    exe = rx.compile(module, target="c", pipeline=gemm_pipeline(route))
    assert "_bias_add(" in exe.c_source
    x, r = rand((m, k), seed=1), rand((m, n), seed=2)
    assert_close(exe.main(x, r), rx.evaluate(module, "main", x, r))


def test_dnnl_fallback_adds_the_residual() -> None:
    """oneDNN refusing the matmul (a build flag stands in for it): the direct loops, then the residual."""
    from relax_xdsl.backend.c import CModule

    if not dnnl.available():
        pytest.skip("oneDNN is not installed")
    module = residual_module(3)
    loops = rx.lower(offload_module(module.clone(), gemm="dnnl"), "default")
    lib = CModule(loops, cflags=(*DEFAULT_FLAGS, "-DRX_TEST_DNNL_DIRECT"))
    for args in cases(3, batches=(0, 2, 7)):
        (got,) = lib.call("main", list(args))
        assert_close(got, rx.evaluate(module, "main", *args))


@pytest.mark.parametrize(("route", "residual", "then"), [
    ("blas", "param", ""), ("packed", "row", ""), ("packed", "param", "layer_norm")])
def test_what_keeps_its_add(route: str, residual: str, then: str) -> None:
    """The BLAS route takes no residual; a broadcast residual is no operand of
    the result's shape; an add read by a LayerNorm is left to the norm's
    kernel. Each stays a graph add, with the same results."""
    module = residual_module(2, residual, then)
    text = rx.print_module(offload_module(module.clone(), gemm=route))
    assert "_bias_add" not in text and "relax.add" in text
    exe = rx.compile(module, target="c", pipeline=gemm_pipeline(route))
    for args in cases(2, residual, batches=(0, 1, 7)):
        assert_close(exe.main(*args), rx.evaluate(module, "main", *args))
