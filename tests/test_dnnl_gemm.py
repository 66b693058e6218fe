"""GEMMs on oneDNN (relax_xdsl/dnnl.py, rx_dnnl_dense and rx_dnnl_matmul in
c_runtime/rx_dnnl.c). A dense layer, a matmul by a model-constant matrix
with its bias row and activation, becomes one `dnnl.dense` call whose
weights oneDNN packs once; a batched matmul of computed operands (rank 3 or
4, the second read transposed in place or not: attention's) one
`dnnl.matmul` call. For dense layers, each
rank of x and each epilogue (none, bias, bias + relu, bias + gelu) is checked against the reference evaluator at a
symbolic batch bound to 0, 1 (one row: BLAS's GEMV path of the same call),
3 and 7, and at k = 0; the direct fallback (NaN through relu: test_packed_dense.py), the activation
as oneDNN's post-op only where the result is proven finite, and what stays
on BLAS (weights computed at run time, `gemm=blas`). Dense layers are
compiled with `gemm=dnnl` (DNNL): `auto` sends them to oneDNN only on
AVX-512, and to BLAS's packed kernels elsewhere (test_packed_dense.py). For batched matmuls,
each rank and layout at batch 0, 1 and 3 with one query row (BLAS's GEMV
path of the same call) and several, and k = 0.
Skipped without oneDNN."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.offload import offload_module
from util import LEAD, assert_close, dense_module, gemm_pipeline, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import dnnl, op
from relax_xdsl.backend.c import DEFAULT_FLAGS

pytestmark = pytest.mark.skipif(not dnnl.available(), reason="oneDNN is not installed "
                                "(pip install onednn-cpu-gomp onednn-devel-cpu-gomp)")

DNNL = gemm_pipeline("dnnl")
"""The default pipeline with dense layers on oneDNN whatever the CPU."""

BATCHES = (0, 1, 3, 7)
def dense_cases(rank: int, k: int = 6, weights: str = "constant") -> list[tuple[np.ndarray, ...]]:
    out = []
    for b in BATCHES:
        args = [rand((*LEAD[rank], b, k), seed=b + 1)]
        if weights != "constant":
            args.append(rand((k, 5), seed=b + 2))
        out.append(tuple(args))
    return out


def calls(module: Any, **routes: str) -> list[str]:
    text = rx.print_module(roundtrip(offload_module(module.clone(), **routes)))
    return [line.split("@")[1].split("(")[0] for line in text.splitlines() if "lib.call @" in line]


@pytest.mark.parametrize("epilogue", ["", "bias", "bias_relu", "bias_gelu"])
@pytest.mark.parametrize("rank", [2, 3, 4])
def test_dense_is_one_dnnl_call(rank: int, epilogue: str) -> None:
    module = dense_module(rank, epilogue)
    variant = "_" + epilogue if epilogue else ""
    assert calls(module, gemm="dnnl") == [f"dnnl_dense_{rank}x2{variant}"]
    exe = rx.compile(module, target="c", pipeline=DNNL)
    before = int(exe.backend.lib.rx_dnnl_fallbacks())  # type: ignore[attr-defined]
    interp = rx.compile(offload_module(module.clone(), gemm="dnnl"), target="interp", pipeline="baseline")
    for args in dense_cases(rank):
        want = rx.evaluate(module, "main", *args)
        assert_close(exe.main(*args), want)
        assert_close(interp.main(*args), want)  # the library function's numpy reference
    assert int(exe.backend.lib.rx_dnnl_fallbacks()) == before  # type: ignore[attr-defined]


@pytest.mark.parametrize("epilogue", ["", "bias_relu", "bias_gelu"])
def test_an_empty_reduction_gives_the_bias(epilogue: str) -> None:
    """k = 0: no product terms (oneDNN takes no zero-sized tensor, the direct loops do)."""
    module = dense_module(2, epilogue, k=0)
    exe = rx.compile(module, target="c", pipeline=DNNL)
    for args in dense_cases(2, k=0):
        assert_close(exe.main(*args), rx.evaluate(module, "main", *args))


@pytest.mark.parametrize("epilogue", ["", "bias_relu", "bias_gelu"])
def test_direct_fallback_when_dnnl_refuses(epilogue: str) -> None:
    """When oneDNN cannot create or run the matmul (a build flag stands in for
    its refusal) the call computes it with direct loops."""
    from relax_xdsl.backend.c import CModule

    module = dense_module(3, epilogue)
    lib = CModule(rx.lower(module, DNNL), cflags=(*DEFAULT_FLAGS, "-DRX_TEST_DNNL_DIRECT"))
    for args in dense_cases(3):
        (got,) = lib.call("main", list(args))
        assert_close(got, rx.evaluate(module, "main", *args))
    assert lib.lib.rx_dnnl_fallbacks() == 3  # 2, 6 and 14 rows (none: nothing to write)


def fused(exe: rx.Executable) -> int:
    return int(exe.backend.lib.rx_dnnl_fused_activations())  # type: ignore[attr-defined]


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_activation_is_a_post_op_only_when_the_result_is_finite(act: str) -> None:
    """A dense layer's relu / gelu runs as oneDNN's post-op (clip,
    gelu_erf; counted) when its input, weights and bias are finite and no
    sum can overflow, and k <= n (proving it reads x, which costs more than
    the pass it saves when x is the larger); otherwise as our pass after
    the GEMM, which keeps NaN as relax does (the clip post-op gives 0, and
    gelu_erf is not specified for NaN): NaN or inf in the input, an input
    whose sums might overflow, a NaN weight or bias, k > n."""
    module = dense_module(2, f"bias_{act}", k=6, n=16)
    exe = rx.compile(module, target="c", pipeline=DNNL)
    assert f"rx_dnnl_dense_2x2_bias_{act}" in exe.c_source
    x = rand((9, 6), seed=4) * 3

    def check(arg: np.ndarray, expect_fused: bool, module: Any = module, exe: rx.Executable = exe) -> None:
        before = fused(exe)
        got, want = exe.main(arg), rx.evaluate(module, "main", arg)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = np.abs(want[np.isfinite(want)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
        assert fused(exe) - before == int(expect_fused)

    check(x, True)
    check(np.zeros((0, 6), np.float32), False)  # no rows: nothing runs
    check(x * 1e30, True)  # max|x| * max column sum|w| is near 1e31: far from FLT_MAX
    huge = x.copy()
    huge[3, 2] = 1e38  # finite, but times a column sum of several weights a sum might overflow
    check(huge, False)
    for bad in (np.nan, np.inf, -np.inf):
        with_bad = x.copy()
        with_bad[5, 1] = bad
        check(with_bad, False)
    rng = np.random.default_rng(3)
    w, b = rng.standard_normal((6, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    nan_w, nan_b = w.copy(), b.copy()
    nan_w[2, 7], nan_b[11] = np.nan, np.nan
    for bad_w, bad_b in ((nan_w, b), (w, nan_b)):
        with rx.FunctionBuilder("main") as fb:
            y = op.add(op.matmul(fb.param("x", ["b", 6], "float32"), fb.const(bad_w)), fb.const(bad_b))
            fb.ret(op.nn.relu(y) if act == "relu" else op.nn.gelu(y))
        check(x, False, fb.module, rx.compile(fb.module, target="c", pipeline=DNNL))
    wide = dense_module(2, f"bias_{act}", k=16, n=6)  # k > n: our pass
    check(rand((9, 16), seed=5), False, wide, rx.compile(wide, target="c", pipeline=DNNL))


@pytest.mark.parametrize(("epilogue", "weights", "routes"), [
    ("bias", "computed", {}), ("", "computed", {}), ("bias_gelu", "constant", {"gemm": "blas"}),
    ("bias_relu", "constant", {"gemm": "blas"})])
def test_what_stays_on_blas(epilogue: str, weights: str, routes: dict) -> None:
    """Weights computed at run time (only constants are packed, by oneDNN
    or when compiling), and anything under `gemm=blas`."""
    module = dense_module(2, epilogue, weights=weights)
    assert all(c.startswith("blas_") for c in calls(module, **routes)) and calls(module, **routes)
    exe = rx.compile(module, target="c", pipeline="default" if not routes else
                     "fold-constants,offload{lib=blas gemm=blas},default")
    for args in dense_cases(2, weights=weights):
        assert_close(exe.main(*args), rx.evaluate(module, "main", *args))


def test_an_unknown_gemm_route_is_an_error() -> None:
    with pytest.raises(rx.RelaxError, match=r"gemm='gpu' is no GEMM route; choose one of auto, blas, dnnl, packed"):
        offload_module(dense_module(2, ""), gemm="gpu")


def test_two_modules_and_freed_modules_keep_their_own_weights() -> None:
    """Two executables with the same shapes and other constant weights share
    one oneDNN cache entry: each reads its own packed copy, calls
    interleaved; a freed module's copies are forgotten (the next module's
    weights often land at the same addresses)."""
    import gc

    def module(seed: int) -> Any:
        with rx.FunctionBuilder("main") as fb:
            x = fb.param("x", ["b", 32], "float32")
            fb.ret(op.matmul(x, fb.const(rand((32, 24), seed=seed))))
        return fb.module

    modules = [module(1), module(2)]
    exes = [rx.compile(m, target="c", pipeline=DNNL) for m in modules]
    for b in (4, 9, 4):
        x = rand((b, 32), seed=b)
        for m, exe in zip(modules, exes):
            assert_close(exe.main(x), rx.evaluate(m, "main", x))
    del exes
    x = rand((5, 32), seed=3)
    for seed in range(3, 8):
        m = module(seed)
        exe = rx.compile(m, target="c", pipeline=DNNL)
        assert_close(exe.main(x), rx.evaluate(m, "main", x))
        del exe
        gc.collect()


def attention_module(rank: int, transposed: bool, k: Any = "d") -> Any:
    """q [*lead, m, k] @ K^T (K stored [*lead, n, k]) or @ V [*lead, k, n], lead = (b,) or (b, 2)."""
    lead = ["b"] if rank == 3 else ["b", 2]
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", [*lead, "m", k], "float32")
        other = fb.param("kv", [*lead, "n", k] if transposed else [*lead, k, "n"], "float32")
        rhs = op.permute_dims(other, axes=[*range(rank - 2), rank - 1, rank - 2]) if transposed else other
        fb.ret(op.matmul(q, rhs))
    return fb.module


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("rank", [3, 4])
def test_batched_matmul_is_one_dnnl_call(rank: int, transposed: bool) -> None:
    module = attention_module(rank, transposed)
    assert calls(module) == [f"dnnl_matmul_{rank}x{rank}{'_tb' if transposed else ''}"]
    exe = rx.compile(module, target="c")
    lead = (3,) if rank == 3 else (3, 2)
    for b, m, n, d in ((0, 4, 5, 6), (1, 1, 7, 8), (3, 1, 5, 4), (3, 6, 5, 4), (1, 5, 3, 0)):
        shape = (b, *lead[1:])
        q = rand((*shape, m, d), seed=m)
        kv = rand((*shape, n, d) if transposed else (*shape, d, n), seed=n)
        assert_close(exe.main(q, kv), rx.evaluate(module, "main", q, kv))
    assert calls(module, gemm="blas") == [f"blas_matmul_{rank}x{rank}{'_tb' if transposed else ''}"]


def test_batched_matmul_direct_fallback_when_dnnl_refuses() -> None:
    from relax_xdsl.backend.c import CModule

    module = attention_module(4, True)
    lib = CModule(rx.lower(module), cflags=(*DEFAULT_FLAGS, "-DRX_TEST_DNNL_DIRECT"))
    for b in (1, 3):
        q, kv = rand((b, 2, 4, 6), seed=b), rand((b, 2, 5, 6), seed=b + 1)
        (got,) = lib.call("main", [q, kv])
        assert_close(got, rx.evaluate(module, "main", q, kv))
    assert lib.lib.rx_dnnl_fallbacks() == 2
