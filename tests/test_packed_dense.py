"""Dense layers on weights packed when compiling (offload's `packed` GEMM
route; blas.pack_dense_weights, rx_packed.c's rx_dense_packed). A matmul by a
model-constant matrix, with its bias row and relu / gelu, becomes one
`blas.packed_dense` call reading a new constant: W's panels of 16 columns
(k rows each), then its last n % 16 columns. Checked against the reference
evaluator at every rank and epilogue, at batches of 0, 1 (the one-row
kernel), a few rows (tiles of fewer than 6) and many (threads split by
panels or by rows), at widths that are all panels, all tail, or both, at
k = 0; NaN through relu; the tail read in place at k around 16; one
packed copy per weight shared by two layers; and what the route leaves
alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.dialects.relax import ConstantOp
from relax_xdsl.passes.offload import offload_module
from util import LEAD, assert_close, dense_module, gemm_pipeline, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import blas, op

PACKED = gemm_pipeline("packed")
"""The default pipeline with dense layers on packed weights whatever the CPU (`auto` picks oneDNN on AVX-512)."""

@pytest.mark.parametrize(("k", "n"), [(3, 10), (5, 16), (7, 37), (0, 5), (4, 0), (1, 1), (33, 48)])
def test_packing_is_a_permutation_that_unpacks(k: int, n: int) -> None:
    w = rand((k, n), seed=k + n)
    packed = blas.pack_dense_weights(w)
    assert packed.shape == w.shape and packed.dtype == w.dtype
    np.testing.assert_array_equal(blas.unpack_dense_weights(packed), w)
    flat, full = packed.reshape(-1), n // 16
    if full and k > 1:  # panel 0's rows 0 and 1, then panel 1 after k rows of 16
        np.testing.assert_array_equal(flat[:16], w[0, :16])
        np.testing.assert_array_equal(flat[16:32], w[1, :16])
    if n % 16 and k:  # the last columns, row by row, after the panels
        np.testing.assert_array_equal(flat[full * 16 * k:][:n % 16], w[0, full * 16:])


def calls(module: Any, gemm: str = "packed") -> list[str]:
    text = rx.print_module(roundtrip(offload_module(module.clone(), gemm=gemm)))
    return [line.split("@")[1].split("(")[0] for line in text.splitlines() if "lib.call @" in line]


def check(module: Any, exe: rx.Executable, rank: int, k: int, batches: tuple[int, ...]) -> None:
    """Against the evaluator, within float32 rounding of sums of k terms as large as the largest result."""
    for b in batches:
        x = rand((*LEAD[rank], b, k), seed=b + 1)
        got, want = exe.main(x), rx.evaluate(module, "main", x)
        assert got.shape == want.shape and got.dtype == want.dtype
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("epilogue", ["", "bias", "bias_relu", "bias_gelu"])
@pytest.mark.parametrize("rank", [2, 3, 4])
def test_dense_is_one_packed_call_at_every_level(rank: int, epilogue: str) -> None:
    """37 columns: two panels and a tail of 5; rows 0, 1, 2 (times the lead dims), 7 and 13."""
    module = dense_module(rank, epilogue, k=6, n=37)
    variant = "_" + epilogue if epilogue else ""
    assert calls(module) == [f"blas_packed_dense_{rank}x2{variant}"]
    exe = rx.compile(module, target="c", pipeline=PACKED)
    assert f"rx_blas_packed_dense_{rank}x2{variant}(" in exe.c_source
    interp = rx.compile(offload_module(module.clone(), gemm="packed"), target="interp", pipeline="baseline")
    for b in (0, 1, 2, 7, 13):
        x = rand((*LEAD[rank], b, 6), seed=b + 1)
        want = rx.evaluate(module, "main", x)
        assert_close(exe.main(x), want)
        assert_close(interp.main(x), want)  # the library function's numpy reference


@pytest.mark.parametrize(("m", "k", "n"), [
    (1, 300, 48), (5, 17, 16), (128, 256, 100), (400, 512, 10), (300, 400, 40), (3, 0, 20), (6, 1, 1)])
@pytest.mark.parametrize("epilogue", ["bias_relu", "bias_gelu"])
def test_shapes_that_take_every_kernel_path(m: int, k: int, n: int, epilogue: str) -> None:
    """One row (its four-sum kernel); tiles of 6 rows and the last 1..5;
    products large enough for threads (rx_blas_threads) split by panels
    (128 x 256 x 100: 7 panels) or by rows (400 x 512 x 10: the tail
    alone; 300 x 400 x 40: 2 panels and a tail); k = 0 (the bias alone,
    then the activation); a 1 x 1 matrix."""
    module = dense_module(2, epilogue, k=k, n=n, seed=m)
    exe = rx.compile(module, target="c", pipeline=PACKED)
    check(module, exe, 2, k, (m,))


@pytest.mark.parametrize(("k", "n"), [(1, 17), (15, 31), (16, 1), (17, 15), (18, 9), (40, 47)])
def test_the_tail_read_in_place_and_its_last_rows_from_a_copy(k: int, n: int) -> None:
    """The last n % 16 columns are read from their packed rows, 16 floats at
    a time, but for the last 16 rows (their reads would pass the end of the
    weights: a zero-padded copy on the stack); k around 16 and tails of 1 to
    15 columns, under ASan in CI."""
    module = dense_module(3, "bias_gelu", k=k, n=n, seed=k)
    exe = rx.compile(module, target="c", pipeline=PACKED)
    check(module, exe, 3, k, (0, 1, 4, 11))


@pytest.mark.parametrize("gemm", ["packed", "dnnl", "blas"])
def test_nan_is_kept_through_bias_and_relu(gemm: str) -> None:
    """On every GEMM route: a NaN row stays NaN after relu (relax's maximum
    keeps NaN; oneDNN's clip post-op would not, so it is not used then)."""
    from relax_xdsl import dnnl

    if gemm == "dnnl" and not dnnl.available():
        pytest.skip("oneDNN is not installed")
    module = dense_module(2, "bias_relu", k=64, n=48)
    exe = rx.compile(module, target="c", pipeline=gemm_pipeline(gemm))
    assert f"rx_{'blas_packed' if gemm == 'packed' else gemm}_dense_2x2" in exe.c_source
    for b in (1, 9):  # one row (the packed one-row kernel, BLAS's GEMV) and several
        x = rand((b, 64), seed=b)
        x[-1, ::7] = np.nan
        got, want = exe.main(x), rx.evaluate(module, "main", x)
        assert np.isnan(want[-1]).all() and not np.isnan(want[:-1]).any()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert_close(np.nan_to_num(got), np.nan_to_num(want))


def test_a_shared_weight_is_packed_once_and_kept_where_read_as_it_is() -> None:
    """Two layers on one weight read one packed copy; the weight's other
    reader (a plain add) keeps the original."""
    w = rand((8, 20), seed=1)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["b", 8], "float32")
        c = fb.const(w)
        h = op.nn.relu(op.matmul(x, c))
        fb.ret(op.add(op.matmul(x, c), op.add(h, op.sum(c, axis=[0]))))
    offloaded = offload_module(fb.module.clone(), gemm="packed")
    constants = [o for o in offloaded.walk() if isinstance(o, ConstantOp)]
    packed = [o for o in constants if np.array_equal(o.to_array(), blas.pack_dense_weights(w))]
    assert len(packed) == 1 and any(np.array_equal(o.to_array(), w) for o in constants)
    exe = rx.compile(fb.module, target="c", pipeline=PACKED)
    for b in (1, 6):
        x = rand((b, 8), seed=b)
        assert_close(exe.main(x), rx.evaluate(fb.module, "main", x))


@pytest.mark.parametrize("gemm", ["blas", "auto", "dnnl"])
def test_routes_and_what_stays_off_the_packed_kernels(gemm: str) -> None:
    """`gemm=blas` keeps BLAS's dense function; `auto` packs unless oneDNN
    runs the layer on AVX-512; `dnnl` sends it to oneDNN when installed.
    Weights computed at run time are never packed."""
    from relax_xdsl.passes.offload import auto_dense_library

    from relax_xdsl import dnnl

    module = dense_module(2, "bias_relu", k=6, n=20)
    want = {"blas": "blas_dense_2x2_relu",
            "auto": "dnnl_dense_2x2_bias_relu" if auto_dense_library() == "dnnl" else "blas_packed_dense_2x2_bias_relu",
            "dnnl": "dnnl_dense_2x2_bias_relu" if dnnl.available() else "blas_dense_2x2_relu"}[gemm]
    assert calls(module, gemm) == [want]
    with rx.FunctionBuilder("main") as fb:
        w = op.multiply(fb.param("w", [6, 20], "float32"), fb.const(np.float32(2.0)))
        fb.ret(op.matmul(fb.param("x", ["b", 6], "float32"), w))
    assert not any("packed" in c for c in calls(fb.module))


def test_a_splat_weight_is_read_as_it_is() -> None:
    """A splat (one value stored once) packs to itself: no expanded copy is
    made, so a small file's 40000 x 40000 splat does not become 6.4 GB at
    compile time; the call reads the splat constant."""
    from relax_xdsl.dialects.relax import stored_elements

    text = """builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 40000], f32>) -> !relax.tensor<[n, 40000], f32> {
    %w = relax.constant dense<5.000000e-01> : tensor<40000x40000xf32>
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 40000], f32>, !relax.tensor<[40000, 40000], f32>) -> !relax.tensor<[n, 40000], f32>
    relax.return %0 : !relax.tensor<[n, 40000], f32>
  }
}"""
    offloaded = offload_module(rx.parse_module(text), gemm="packed")
    (const,) = [o for o in offloaded.walk() if isinstance(o, ConstantOp)]
    assert stored_elements(const.value).size == 1
    assert "lib.call @blas_packed_dense_2x2(%x, %w)" in rx.print_module(offloaded)
    small = rx.parse_module(text.replace("40000", "20"))
    exe = rx.compile(small, target="c", pipeline=PACKED)
    x = rand((3, 20), seed=1)
    assert_close(exe.main(x), rx.evaluate(small, "main", x))


def test_constants_reach_c_aligned() -> None:
    """The constant table's arrays start at multiples of 64 bytes
    (dialects.relax.CONSTANT_ALIGNMENT), so no 32-byte panel load straddles
    two cache lines."""
    from relax_xdsl.dialects.relax import CONSTANT_ALIGNMENT

    exe = rx.compile(dense_module(3, "bias_relu", k=5, n=37), target="c", pipeline=PACKED)
    assert exe.backend.globals and all(g.ctypes.data % CONSTANT_ALIGNMENT == 0 for g in exe.backend.globals)
