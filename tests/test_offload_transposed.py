"""offload{lib=blas}: matmul(x, permute_dims(y) swapping y's last two axes)
is one GEMM that reads y as it is stored, with BLAS's transpose flag
(attention's q @ K^T on a key cache), instead of a transposed copy of y
on every call. These are BLAS's paths, so the tests keep GEMMs on BLAS
(`gemm=blas`; by default oneDNN takes batched products, see
test_dnnl_gemm.py, and reads a transposed operand in place as well)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.offload import offload_module
from util import assert_close, check_levels, gemm_pipeline, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op

BLAS_GEMMS = gemm_pipeline("blas")
"""The default pipeline with every GEMM on BLAS."""


def _env_shape(dims: list[Any], env: dict[str, int]) -> tuple[int, ...]:
    return tuple(env[d] if isinstance(d, str) else d for d in dims)


def scores_module(q: list[Any], k: list[Any], also_return_transpose: bool = False) -> Any:
    """q @ swapaxes(k, -1, -2), and the transpose itself when asked (a second user)."""
    n = len(k)
    axes = [*range(n - 2), n - 1, n - 2]
    with rx.FunctionBuilder("main") as fb:
        kt = op.permute_dims(fb.param("k", k, "float32"), axes)
        scores = op.matmul(fb.param("q", q, "float32"), kt)
        if also_return_transpose:
            fb.ret(scores, kt)
        else:
            fb.ret(scores)
    return fb.module


CASES = [
    (["m", "d"], ["n", "d"], [{"m": 1, "n": 1, "d": 1}, {"m": 3, "n": 7, "d": 5}, {"m": 0, "n": 3, "d": 2},
                              {"m": 2, "n": 0, "d": 2}, {"m": 2, "n": 3, "d": 0}]),
    (["b", "m", 8], ["b", "n", 8], [{"b": 1, "m": 1, "n": 1}, {"b": 3, "m": 2, "n": 7}, {"b": 0, "m": 2, "n": 3},
                                    {"b": 2, "m": 1, "n": 0}]),
    (["b", 4, "m", 16], ["b", 4, "n", 16], [{"b": 1, "m": 1, "n": 1}, {"b": 2, "m": 1, "n": 33},
                                            {"b": 2, "m": 5, "n": 7}, {"b": 1, "m": 0, "n": 3}]),
]


@pytest.mark.parametrize(("q", "k", "envs"), CASES, ids=["2x2", "3x3", "4x4"])
def test_transposed_operand_is_read_in_place(q: list[Any], k: list[Any], envs: list[dict[str, int]]) -> None:
    module = offload_module(scores_module(q, k), gemm="blas")
    text = rx.print_module(roundtrip(module))
    rank = len(q)
    assert f"lib.call @blas_matmul_{rank}x{rank}_tb(%q, %k)" in text
    assert "relax.permute_dims" not in text and "relax.matmul" not in text
    cases = [(rand(_env_shape(k, env), seed=i), rand(_env_shape(q, env), seed=i + 9)) for i, env in enumerate(envs)]
    for keys, queries in cases:  # (the parameters are declared k, q)
        assert_close(rx.evaluate(module, "main", keys, queries), queries @ np.swapaxes(keys, -1, -2))
    check_levels(scores_module(q, k), cases)


def test_transpose_with_another_user_is_kept_for_it() -> None:
    module = offload_module(scores_module(["m", 4], ["n", 4], also_return_transpose=True))
    text = rx.print_module(module)
    assert "lib.call @blas_matmul_2x2_tb(%q, %k)" in text and text.count("relax.permute_dims") == 1
    k, q = rand((5, 4), seed=1), rand((3, 4), seed=2)
    got = rx.compile(module, target="c")["main"](k, q)
    assert_close(got[0], q @ k.T)
    assert_close(got[1], k.T)


@pytest.mark.parametrize("axes", [[1, 0, 2], [0, 2, 1, 3]], ids=["leading", "middle"])
def test_other_permutations_are_not_a_transpose_flag(axes: list[int]) -> None:
    rank = len(axes)
    shape = [3, 4, 5] if rank == 3 else [2, 3, 4, 5]
    with rx.FunctionBuilder("main") as fb:
        kt = op.permute_dims(fb.param("k", shape, "float32"), axes)
        out_shape = [shape[a] for a in axes]
        q = fb.param("q", [*out_shape[:-2], 2, out_shape[-2]], "float32")
        fb.ret(op.matmul(q, kt))
    text = rx.print_module(offload_module(fb.module))
    assert "_tb" not in text and "relax.permute_dims" in text
    assert "_tb" not in rx.print_module(offload_module(fb.module, gemm="blas"))


@pytest.mark.parametrize(("batch", "m", "n", "d"), [(8, 1, 4096, 128), (1, 64, 512, 64), (1, 8, 4100, 64)],
                         ids=["batch-split", "row-split", "column-split"])
def test_threaded_splits_of_a_transposed_product(batch: int, m: int, n: int, d: int) -> None:
    """Products large enough for rx_gemm_batch's threads: split by batch
    entries, by rows, and by column tiles of 16 (with a ragged last tile)."""
    exe = rx.compile(scores_module(["b", "m", "d"], ["b", "n", "d"]), target="c", pipeline=BLAS_GEMMS)
    assert "rx_blas_matmul_3x3_tb" in exe.c_source
    k, q = rand((batch, n, d), seed=3), rand((batch, m, d), seed=4)
    expected = (q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(exe["main"](k, q), expected, rtol=1e-4, atol=1e-4)


def test_a_transpose_without_axes_reverses_them() -> None:
    """permute_dims without axes reverses all of them: a transpose of the
    last two only for a matrix."""
    for shape in ([4, "n"], [2, 4, "n"]):
        with rx.FunctionBuilder("main") as fb:
            k = fb.param("k", shape, "float32")
            kt = op.permute_dims(k)
            q = fb.param("q", [2, "n"] if len(shape) == 2 else ["n", 3, 4], "float32")
            fb.ret(op.matmul(q, kt))
        text = rx.print_module(offload_module(fb.module))
        assert ("_tb(" in text) == (len(shape) == 2), text
        args = [rand(tuple(5 if d == "n" else d for d in shape), seed=1),
                rand((2, 5) if len(shape) == 2 else (5, 3, 4), seed=2)]
        assert_close(rx.compile(fb.module, target="c").main(*args), rx.evaluate(fb.module, "main", *args))


@pytest.mark.parametrize(("batch", "m", "n", "d"), [(64, 1, 513, 32), (1, 1, 2000, 64), (3, 2, 1000, 40)],
                         ids=["decode-heads", "one-row", "few-rows"])
def test_memory_bound_products_split_over_threads(batch: int, m: int, n: int, d: int) -> None:
    """A decode step's q @ K^T and p @ V: few flops (below RX_SMALL_GEMM_FLOPS)
    over a cache of more than RX_SPLIT_BYTES, so rx_gemm_batch and rx_gemm
    split them over the threads by bytes: both products against float64."""
    with rx.FunctionBuilder("main") as fb:
        k, v = fb.param("k", ["b", "n", "d"], "float32"), fb.param("v", ["b", "n", "d"], "float32")
        q = fb.param("q", ["b", "m", "d"], "float32")
        scores = op.matmul(q, op.permute_dims(k, [0, 2, 1]))
        fb.ret(scores, op.matmul(scores, v))
    exe = rx.compile(fb.module, target="c", pipeline=BLAS_GEMMS)
    k, v, q = rand((batch, n, d), seed=3), rand((batch, n, d), seed=5), rand((batch, m, d), seed=4)
    scores = q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)
    got = exe["main"](k, v, q)
    np.testing.assert_allclose(got[0], scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], got[0].astype(np.float64) @ v.astype(np.float64), rtol=1e-4, atol=1e-3)
