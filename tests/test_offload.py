"""offload{lib=blas}: matmuls become BLAS library calls (scipy-openblas32 on
the C target, numpy's matmul on the interpreter); the rest is legalized as
usual; patterns are data a user can extend."""

from __future__ import annotations

import itertools
import math
import platform
from typing import Any

import numpy as np
import pytest
from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.passes.offload import OffloadPattern, offload_module, register_offload_pattern
from relax_xdsl.passes.pipelines import PIPELINES
from util import SIZES, assert_close, check_levels, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.backend.c import DEFAULT_FLAGS
from relax_xdsl.libraries import register_library_function
from relax_xdsl.models import transformer_block

NCHW_CONVS = PIPELINES["default"].replace("convert-layout,", "")
"""The default pipeline with convolutions left NCHW, where offload sends them to BLAS (the tests of that path)."""


def matmul_module(a: list[Any], b: list[Any]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.nn.relu(op.matmul(fb.param("a", a, "float32"), fb.param("b", b, "float32"))))
    return fb.module


@pytest.mark.parametrize(("a", "b", "envs"), [
    (["n", "k"], ["k", 5], [{"n": 1, "k": 3}, {"n": 7, "k": 1}]),
    (["b", "t", 4], [4, "m"], [{"b": 1, "t": 1, "m": 2}, {"b": 2, "t": 3, "m": 5}]),
    (["b", 2, "t", 4], [4, 3], [{"b": 1, "t": 1}, {"b": 3, "t": 2}]),
    (["b", "t", 4], ["b", 4, "t"], [{"b": 1, "t": 1}, {"b": 3, "t": 2}]),
    (["b", 2, "t", 3], ["b", 2, 3, "t"], [{"b": 1, "t": 1}, {"b": 2, "t": 3}]),
], ids=["2x2", "3x2", "4x2", "3x3", "4x4"])
def test_matmul_offloaded_at_every_level(a: list[Any], b: list[Any], envs: list[dict[str, int]]) -> None:
    module = offload_module(matmul_module(a, b), gemm="blas")  # (batched products go to oneDNN by default)
    text = rx.print_module(roundtrip(module))
    assert "lib.call @blas_matmul_" in text and "relax.matmul" not in text
    cases = []
    for k, env in enumerate(envs):
        shape_a = tuple(env[d] if isinstance(d, str) else d for d in a)
        shape_b = tuple(env[d] if isinstance(d, str) else d for d in b)
        cases.append((rand(shape_a, seed=k), rand(shape_b, seed=k + 5)))
    for x, y in cases:
        assert_close(rx.evaluate(module, "main", x, y), np.maximum(x @ y, 0))
    check_levels(module, cases)


def test_broadcast_batch_is_left_to_generated_code() -> None:
    module = offload_module(matmul_module(["b", "t", 4], [1, 4, "t"]))
    assert "relax.matmul" in rx.print_module(module)


def test_fast_pipeline_transformer_matches_numpy() -> None:
    model = transformer_block()
    exe = rx.compile(model.module, target="c", pipeline="fast")
    from relax_xdsl.passes.offload import auto_dense_library

    # attention as one library call (recognize-attention), its projections dense layers on packed weights
    # (oneDNN's on AVX-512)
    loops = rx.print_module(exe.loops)
    assert loops.count("func.call @rx_blas_attention_") == 1 and "softmax" not in loops
    dense = "func.call @rx_dnnl_dense_" if auto_dense_library() == "dnnl" else "func.call @rx_blas_packed_dense_"
    assert dense in loops
    for b, t in ((1, 1), (2, 7)):
        (x,) = model.make_inputs(b, t)
        assert_close(exe.main(x), model.numpy_fn(x))


def test_inconsistent_inner_dims_are_checked_before_the_library_call() -> None:
    module = offload_module(matmul_module(["n", "k"], ["j", 5]))
    exe = rx.compile(module, target="c")
    with pytest.raises(rx.ShapeError, match="must equal"):
        exe.main(rand((2, 3)), rand((4, 5)))


def _scale_c() -> str:
    return """void user_scale2(float* x, float* out, int64_t n0, int64_t n1) {
  for (int64_t i = 0; i < n0; ++i) out[i] = 2.0f * x[i];
}
"""


def test_user_offload_pattern() -> None:
    """A new library function and pattern from user code: exp of a 1-D
    float32 tensor 'offloaded' to a (deliberately wrong) C function that
    doubles, so the test sees which implementation ran."""
    register_library_function("user.scale2", lambda x, out: np.multiply(x, 2, out=out), c_source=_scale_c())

    def match(o: Any) -> LibFuncOp | None:
        t = o.inputs[0].type
        if t.ndim != 1 or t.dtype != "float32":
            return None
        buf = BufferType.of(["n"], "float32")
        return LibFuncOp("user_scale2", [buf, buf], "user_scale2", "user", reference="user.scale2")

    register_offload_pattern("user", OffloadPattern("exp", match))
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        fb.ret(op.add(op.exp(x), 1.0))
    module = offload_module(fb.module, "user")
    assert "lib.call @user_scale2" in rx.print_module(module)
    for target in ("interp", "c"):
        exe = rx.compile(module, target=target)
        for n in SIZES:
            x = rand((n,), seed=n)
            assert_close(exe.main(x), 2 * x + 1)


def test_unknown_library_is_an_error() -> None:
    with pytest.raises(rx.RelaxError, match="no patterns for library 'nope'"):
        offload_module(matmul_module(["n", 2], [2, 2]), "nope")


@pytest.mark.parametrize(("strides", "padding"), [((1, 1), (0, 0)), ((2, 2), (1, 1)), ((1, 2), (1, 0, 2, 1))])
def test_conv2d_offloaded_as_im2col_gemm(strides: tuple[int, int], padding: tuple[int, ...]) -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, "h", "h"], "float32")
        w = fb.param("w", [3, 2, 3, 3], "float32")
        fb.ret(op.nn.conv2d(x, w, strides=strides, padding=padding))
    module = offload_module(fb.module)
    text = rx.print_module(module)
    assert "lib.call @blas_conv2d_" in text and "relax.conv2d" not in text
    again = rx.parse_module(text)  # the library function is found again from its name
    cases = [(rand((n, 2, h, h), seed=n), rand((3, 2, 3, 3), seed=7)) for n, h in ((1, 3), (2, 6))]
    check_levels(again, cases)


@pytest.mark.parametrize(("kernel", "padding"), [
    ((1, 1), (0, 0)), ((3, 3), (1, 1)), ((5, 5), (2, 2)), ((3, 3), (0, 2, 2, 0)), ((2, 3), (1, 0, 0, 2)),
], ids=["1x1", "3x3", "5x5", "3x3-asym", "2x3-asym"])
def test_conv2d_rows_as_wide_as_the_input(kernel: tuple[int, int], padding: tuple[int, ...]) -> None:
    """Stride 1 with output rows as wide as the input's and more output
    channels than the windows path takes: each tap's columns are one
    shifted copy of the image plane, its wrapped ends and the rows outside
    the input zeroed (images smaller than the kernel included)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, "h", "w"], "float32")
        fb.ret(op.nn.conv2d(x, fb.param("k", [40, 2, *kernel], "float32"), padding=padding))
    text = rx.print_module(offload_module(fb.module))
    assert "lib.call @blas_conv2d_" in text
    cases = [(rand((n, 2, h, w), seed=h * w), rand((40, 2, *kernel), seed=7)) for n, h, w in ((1, 1, 1), (2, 4, 6), (1, 7, 3))]
    check_levels(rx.parse_module(text), cases)


def _activation(y: Any, act: str) -> Any:
    return op.nn.relu(y) if act == "relu" else op.clip(y, 0.0, 6.0) if act == "relu6" else y


@pytest.mark.parametrize("act", ["", "relu", "relu6"])
@pytest.mark.parametrize(("bias_shape", "bias_first"), [([1, 8, 1, 1], False), ([8, 1, 1], True)])
@pytest.mark.parametrize(("strides", "padding"), [((1, 1), (1, 1)), ((2, 1), (0, 2, 1, 0))])
def test_conv2d_bias_relu_is_one_library_call(act: str, bias_shape: list[int], bias_first: bool,
                                              strides: tuple[int, int], padding: tuple[int, ...]) -> None:
    """conv2d + per-channel bias (+ relu | relu6) -> one call: the bias is the
    GEMM's C operand and the activation runs per image; 4 images of this
    size take the multi-threaded path (one column buffer per thread)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4, "h", "h"], "float32")
        w = fb.param("w", [8, 4, 3, 3], "float32")
        b = fb.param("b", bias_shape, "float32")
        y = op.nn.conv2d(x, w, strides=strides, padding=padding)
        y = op.add(b, y) if bias_first else op.add(y, b)
        fb.ret(_activation(y, act))
    text = rx.print_module(offload_module(fb.module))
    assert text.count("lib.call") == 1 and "relax.add" not in text and "relax.relu" not in text
    assert "relax.clip" not in text and f"_bias{len(bias_shape)}{'_' + act if act else ''}(" in text
    cases = [(rand((n, 4, h, h), seed=n), rand((8, 4, 3, 3), seed=7), rand(bias_shape, seed=3))
             for n, h in ((1, 2), (1, 5), (4, 16))]
    check_levels(rx.parse_module(text), cases)


def test_conv2d_with_a_non_channel_bias_keeps_the_add() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, 4, 4], "float32")
        y = op.nn.conv2d(x, fb.param("w", [3, 2, 3, 3], "float32"), padding=(1, 1))
        fb.ret(op.add(y, fb.param("b", [3, 4, 4], "float32")))
    text = rx.print_module(offload_module(fb.module))
    assert "lib.call @blas_conv2d_1_1_1_1_1_1(" in text and "relax.add" in text


@pytest.mark.parametrize("o", [3, 40], ids=["few-rows", "gemm"])
@pytest.mark.parametrize("act", ["", "relu", "relu6"])
def test_pointwise_conv2d_reads_the_image_in_place(o: int, act: str) -> None:
    """A 1x1 stride-1 unpadded conv's GEMM takes the NCHW image as its column
    matrix (no im2col copy), with bias and relu / relu6, for register-tile
    and BLAS products alike; NaN stays NaN through both."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 5, "h", "w"], "float32")
        y = op.add(op.nn.conv2d(x, fb.param("k", [o, 5, 1, 1], "float32")), fb.param("b", [1, o, 1, 1], "float32"))
        fb.ret(_activation(y, act))
    module = offload_module(fb.module, conv="blas")
    assert "lib.call @blas_conv2d_" in rx.print_module(module) and "relax.clip" not in rx.print_module(module)
    cases = []
    for n, h, w in ((0, 2, 3), (1, 1, 1), (3, 4, 7)):
        x = 4 * rand((n, 5, h, w), seed=n)  # (outputs beyond 6 for relu6)
        if x.size:
            x.flat[3] = np.nan
        cases.append((x, rand((o, 5, 1, 1), seed=1), rand((1, o, 1, 1), seed=2)))
    check_levels(module, cases, levels=("c",))
    if o <= 32:  # the register tiles' epilogue, also where the machine would take SGEMM (no AVX-512)
        tiles = rx.compile(module, target="c", cflags=(*DEFAULT_FLAGS, "-DRX_TEST_SMALL_GEMM"))
        for args in cases:
            assert_close(tiles.main(*args), rx.evaluate(module, "main", *args))


def test_grouped_conv_is_left_to_generated_code() -> None:
    """BLAS alone (conv=blas, or without oneDNN) cannot take a grouped conv
    (tests/test_dnnl_offload.py: oneDNN can)."""
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.nn.conv2d(fb.param("x", ["n", 4, 5, 5], "float32"), fb.param("w", [4, 2, 3, 3], "float32"),
                            groups=2))
    assert "relax.conv2d" in rx.print_module(offload_module(fb.module, conv="blas"))


ACTIVATIONS = {"": lambda v: v, "relu": lambda v: np.maximum(v, 0),
               "gelu": lambda v: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))}


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("bias_first", [False, True])
@pytest.mark.parametrize("lead", [["n"], ["b", "t"]])
def test_dense_bias_activation_is_one_library_call(act: str, bias_first: bool, lead: list[str]) -> None:
    """matmul(x, W) + bias (+ relu | gelu) -> one GEMM with the bias as C
    (beta = 1) and the activation in place."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [*lead, 6], "float32")
        w = fb.param("w", [6, "m"], "float32")
        bias = fb.param("bias", ["m"], "float32")
        mm = op.matmul(x, w)
        y = op.add(bias, mm) if bias_first else op.add(mm, bias)
        fb.ret(getattr(op.nn, act)(y) if act else y)
    module = roundtrip(offload_module(fb.module.clone()))
    text = rx.print_module(module)
    tag = f"{len(lead) + 1}x2{'_' + act if act else ''}"
    assert f"lib.call @blas_dense_{tag}(%x, %w, %bias)" in text and "relax." + "add" not in text
    cases = []
    for k, size in enumerate(SIZES):
        env = {"n": size, "b": size, "t": 2, "m": 4 - k}
        cases.append((rand(tuple(env[d] for d in lead) + (6,), seed=k), rand((6, env["m"]), seed=k + 3),
                      rand((env["m"],), seed=k + 7)))
    for x, w, b in cases:
        assert_close(rx.evaluate(module, "main", x, w, b), ACTIVATIONS[act]((x @ w + b).astype(np.float64)).astype(np.float32))
    check_levels(module, cases)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_dense_epilogue_on_many_threads(act: str) -> None:
    """Large enough for the bias fill and the activation to be split over threads."""
    with rx.FunctionBuilder("main") as fb:
        y = op.add(op.matmul(fb.param("x", ["n", 64], "float32"), fb.param("w", [64, 256], "float32")),
                   fb.param("bias", [256], "float32"))
        fb.ret(getattr(op.nn, act)(y))
    exe = rx.compile(fb.module, target="c", pipeline="fast")
    assert f"rx_blas_dense_2x2_{act}(" in exe.c_source
    x, w, b = rand((4096, 64), seed=1), rand((64, 256), seed=2), rand((256,), seed=3)
    assert_close(exe.main(x, w, b), ACTIVATIONS[act]((x @ w + b).astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("rows", [1, 2, 3, 8, 13, 32, 33])
def test_few_row_gemms_in_register_tiles(rows: int) -> None:
    """2..32 rows run in rx_sgemm_small (tiles of 8/4/2/1 rows, 32- and
    16-column tiles, the last columns as a zero-padded 16-column tile or,
    without memory for it, column by column); 33 rows take SGEMM; one row
    takes rx_sgemv_narrow up to 32 columns (its last rows one float at a
    time; at depth 1 all of them), SGEMV for more. Plain matmul
    (C written) and dense + gelu (C accumulated onto the bias) at widths
    that exercise every column path, one large enough to split over threads."""
    with rx.FunctionBuilder("main") as fb:
        x, w = fb.param("x", ["n", "k"], "float32"), fb.param("w", ["k", "m"], "float32")
        fb.ret(op.matmul(x, w))
    mm = rx.compile(fb.module, target="c", pipeline="fast")
    with rx.FunctionBuilder("main") as fb:
        x, w = fb.param("x", ["n", "k"], "float32"), fb.param("w", ["k", "m"], "float32")
        fb.ret(op.nn.gelu(op.add(op.matmul(x, w), fb.param("bias", ["m"], "float32"))))
    dense = rx.compile(fb.module, target="c", pipeline="fast")
    assert "rx_blas_matmul_2x2(" in mm.c_source and "rx_blas_dense_2x2_gelu(" in dense.c_source
    kernels = (*DEFAULT_FLAGS, "-DRX_TEST_SMALL_GEMM")  # the register tiles even where SGEMM takes these rows
    exes = [(mm, dense), (rx.compile(mm.graph, target="c", pipeline="fast", cflags=kernels),
                          rx.compile(dense.graph, target="c", pipeline="fast", cflags=kernels))]
    if rows == 13:  # the last columns without memory for their padded copies: column by column
        flags = (*DEFAULT_FLAGS, "-DRX_TEST_GEMM_TAIL_DIRECT", "-DRX_TEST_SMALL_GEMM")
        exes.append((rx.compile(mm.graph, target="c", pipeline="fast", cflags=flags),
                     rx.compile(dense.graph, target="c", pipeline="fast", cflags=flags)))
    if platform.machine() == "x86_64" and rows in (3, 13):  # AVX2 without AVX-512: 16-column tiles only
        flags = [*(f if f != "-march=native" else "-march=x86-64-v3" for f in DEFAULT_FLAGS), "-DRX_TEST_SMALL_GEMM"]
        exes.append((rx.compile(mm.graph, target="c", pipeline="fast", cflags=flags),
                     rx.compile(dense.graph, target="c", pipeline="fast", cflags=flags)))
    for (mm, dense), (k, m) in itertools.product(exes, ((1, 1), (7, 16), (5, 17), (64, 47), (3, 100), (256, 512))):
        x, w, b = rand((rows, k), seed=k), rand((k, m), seed=m), rand((m,), seed=3)
        want = x.astype(np.float64) @ w
        assert_close(mm.main(x, w), want.astype(np.float32))
        assert_close(dense.main(x, w, b), ACTIVATIONS["gelu"](want + b).astype(np.float32))


def test_dense_needs_a_bias_row_and_a_single_use() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 6], "float32")
        w = fb.param("w", [6, 4], "float32")
        mm = op.matmul(x, w)
        fb.ret(fb.tuple(op.add(mm, fb.param("full", ["n", 4], "float32")), op.add(op.matmul(x, w), mm)))
    text = rx.print_module(offload_module(fb.module.clone()))
    assert "blas_dense" not in text and text.count("lib.call @blas_matmul_2x2") == 2


@pytest.mark.parametrize("variant", ["plain", "bias_relu"])
def test_conv2d_without_memory_for_columns_convolves_directly(variant: str) -> None:
    """When a thread cannot allocate its im2col buffer the library call
    still computes the convolution (directly), never leaves the output
    unwritten (the build flag stands in for a failing malloc)."""
    from relax_xdsl.backend.c import CModule

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3, "h", "h"], "float32")
        y = op.nn.conv2d(x, fb.param("w", [4, 3, 3, 3], "float32"), strides=(2, 1), padding=(1, 0, 2, 1))
        if variant == "bias_relu":
            y = op.nn.relu(op.add(y, fb.param("b", [1, 4, 1, 1], "float32")))
        fb.ret(y)
    loops = rx.lower(fb.module, NCHW_CONVS)
    lib = CModule(loops, cflags=(*DEFAULT_FLAGS, "-DRX_TEST_CONV_DIRECT"))
    assert "-DRX_TEST_CONV_DIRECT" in lib.flags  # reaches the runtime archive's conv kernel
    for n, h in ((1, 3), (5, 9)):
        args = [rand((n, 3, h, h), seed=n), rand((4, 3, 3, 3), seed=2)] + ([rand((1, 4, 1, 1), seed=3)]
                                                                          if variant == "bias_relu" else [])
        (got,) = lib.call("main", args)
        assert_close(got, rx.evaluate(fb.module, "main", *args))


@pytest.mark.parametrize(("kernel", "padding", "o"), [
    ((3, 3), (1, 1), 8), ((1, 1), (0, 0), 1), ((5, 3), (2, 0, 1, 3), 13), ((2, 2), (0, 0), 32), ((3, 3), (1, 1), 33),
], ids=["3x3-8", "1x1-1", "5x3-asym-13", "2x2-32", "3x3-33"])
@pytest.mark.parametrize("variant", ["plain", "bias_relu"])
def test_conv2d_stride_1_windows_columns_and_direct_agree(kernel: tuple[int, int], padding: tuple[int, ...], o: int,
                                                          variant: str) -> None:
    """A stride-1 conv of up to 32 output channels reads its GEMM's rows as
    shifted windows of a zero-padded image copy (rx_conv_windows); the same
    library function built to take the column (im2col) path or the direct
    one (build flags standing in for the choice and for a failing malloc)
    gives the evaluator's values: 1x1 images and images smaller than the
    kernel, one image and several in parallel, a product large enough to
    split its column tiles over threads; rows narrower than 32 taken two at
    a time (16 wide, 16 + a tail, a tail alone, an odd last row) next to
    32-wide tiles. 33 channels take the columns."""
    from relax_xdsl.backend.c import CModule

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", "c", "h", "w"], "float32")
        y = op.nn.conv2d(x, fb.param("k", [o, "c", *kernel], "float32"), padding=padding)
        if variant == "bias_relu":
            y = op.nn.relu(op.add(y, fb.param("b", [1, o, 1, 1], "float32")))
        fb.ret(y)
    loops = rx.lower(fb.module, NCHW_CONVS)
    libs = {flag: CModule(loops, cflags=(*DEFAULT_FLAGS, "-DRX_TEST_SMALL_GEMM",
                                         *([f"-DRX_TEST_CONV_{flag}"] if flag else [])))
            for flag in ("", "IM2COL", "DIRECT")}
    libs["sgemm"] = CModule(loops, cflags=DEFAULT_FLAGS)  # without AVX-512: SGEMM for every channel count
    assert "rx_blas_conv2d(" in libs[""].source
    for n, c, h, w in ((1, 1, 1, 1), (1, 3, 2, 1), (5, 2, 7, 9), (1, 16, 32, 30), (2, 3, 5, 16), (1, 2, 4, 50)):
        if h + sum(padding[::2]) < kernel[0] or w + sum(padding[1::2]) < kernel[1]:
            continue
        args = [rand((n, c, h, w), seed=h * w), rand((o, c, *kernel), seed=o)]
        args += [rand((1, o, 1, 1), seed=3)] if variant == "bias_relu" else []
        want = rx.evaluate(fb.module, "main", *args)
        for lib in libs.values():
            assert_close(lib.call("main", args)[0], want)


@pytest.mark.parametrize("kind", ["dense", "dense-small", "conv", "conv-small"])
def test_offloaded_relu_keeps_nan_as_relax_relu(kind: str) -> None:
    """relu in a library call's epilogue (SGEMM's pass or the register
    tiles) gives NaN for NaN, as relax.relu (maximum(x, 0)) does."""
    rows = 4 if kind.endswith("small") else 40
    with rx.FunctionBuilder("main") as fb:
        if kind.startswith("dense"):
            x = fb.param("x", ["n", 5], "float32")
            y = op.add(op.matmul(x, fb.param("w", [5, 40], "float32")), fb.param("b", [40], "float32"))
            args = [rand((rows, 5), seed=1), rand((5, 40), seed=2), rand((40,), seed=3)]
        else:
            x = fb.param("x", ["n", 2, 6, 6], "float32")
            y = op.add(op.nn.conv2d(x, fb.param("w", [rows, 2, 3, 3], "float32"), padding=(1, 1)),
                       fb.param("b", [1, rows, 1, 1], "float32"))
            args = [rand((2, 2, 6, 6), seed=1), rand((rows, 2, 3, 3), seed=2), rand((1, rows, 1, 1), seed=3)]
        fb.ret(op.nn.relu(y))
    args[0].flat[::7] = np.nan
    exe = rx.compile(fb.module, target="c", pipeline=NCHW_CONVS)
    assert ("rx_blas_dense_2x2_relu(" if kind.startswith("dense") else "rx_blas_conv2d_1_1_1_1_1_1_bias4_relu(") \
        in exe.c_source
    got, want = exe.main(*args), rx.evaluate(fb.module, "main", *args)
    assert np.isnan(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close(got, want)


def test_openblas_thread_count_is_restored_after_offloaded_calls() -> None:
    """Small GEMMs and convs whose images run in parallel set OpenBLAS's
    workers aside (one global count) and put the count back after."""
    import ctypes
    import glob

    import scipy_openblas32 as sob

    lib = ctypes.CDLL(glob.glob(f"{sob.get_lib_dir()}/*{sob.get_library()}*.so*")[0])
    before = lib.scipy_openblas_get_num_threads()
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4, 12, 12], "float32")
        y = op.nn.conv2d(x, fb.param("w", [40, 4, 3, 3], "float32"), padding=(1, 1))
        fb.ret(op.matmul(op.reshape(y, ["n", 40 * 144]), fb.param("v", [40 * 144, 3], "float32")))
    exe = rx.compile(fb.module, target="c", pipeline="fast")
    for n in (1, 6):
        args = (rand((n, 4, 12, 12), seed=n), rand((40, 4, 3, 3), seed=2), rand((40 * 144, 3), seed=3))
        assert_close(exe.main(*args), rx.evaluate(fb.module, "main", *args))
        assert lib.scipy_openblas_get_num_threads() == before
