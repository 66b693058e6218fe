"""conv2d offloaded to oneDNN (relax_xdsl/dnnl.py, c_runtime/rx_dnnl.c):
every kind (groups, depthwise, dilation, strides, asymmetric padding, bias
and relu epilogues) becomes one `dnnl.conv2d` library call, equal to the
conv2d op's reference on the interpreter and the C target, at a symbolic
batch bound to 0, 1 and 3. Skipped without oneDNN."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.offload import offload_module
from util import assert_close, check_levels, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import dnnl, op
from relax_xdsl.backend.c import DEFAULT_FLAGS

pytestmark = pytest.mark.skipif(not dnnl.available(), reason="oneDNN is not installed "
                                "(pip install onednn-cpu-gomp onednn-devel-cpu-gomp)")

BATCHES = (0, 1, 3)

# name: (c, o, kernel, strides, padding, dilation, groups)
KINDS: dict[str, tuple[int, int, tuple[int, int], tuple[int, int], tuple[int, ...], tuple[int, int], int]] = {
    "groups1": (8, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "groups2": (4, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2),
    "groups4": (8, 8, (3, 2), (1, 1), (0, 1), (1, 1), 4),
    "depthwise": (6, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6),
    "depthwise-x2": (3, 6, (3, 3), (2, 2), (1, 1), (1, 1), 3),
    "dilation2": (4, 5, (3, 3), (1, 1), (2, 2), (2, 2), 1),
    "dilation-2x1-groups2": (4, 4, (3, 3), (1, 1), (1, 0), (2, 1), 2),
    "strides2": (5, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1),
    "strides-2x1-asym": (4, 3, (3, 2), (2, 1), (1, 0, 2, 1), (1, 1), 1),
    "asym-depthwise": (4, 4, (2, 3), (1, 2), (0, 2, 1, 0), (1, 1), 4),
    # pointwise: oneDNN on NCHW in place (no reorders), grouped (ShuffleNet) and not
    "pointwise": (8, 6, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "pointwise-groups4": (8, 12, (1, 1), (1, 1), (0, 0), (1, 1), 4),
    "pointwise-strides2": (8, 12, (1, 1), (2, 2), (0, 0), (1, 1), 4),
}


def conv_module(kind: str, epilogue: str = "", bias_shape: list[int] | None = None, layout: str = "NCHW") -> Any:
    """A conv2d of `kind` on data [n, c, 7, 6] (NHWC: [n, 7, 6, c]), + a per-channel bias [+ relu | relu6]."""
    c, o, kernel, strides, padding, dilation, groups = KINDS[kind]
    nhwc = layout == "NHWC"
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 7, 6, c] if nhwc else ["n", c, 7, 6], "float32")
        w = fb.param("w", [o, c // groups, *kernel], "float32")
        y = op.nn.conv2d(x, w, strides=strides, padding=padding, dilation=dilation, groups=groups,
                         data_layout=layout)
        if epilogue:
            y = op.add(y, fb.param("b", bias_shape or ([1, 1, 1, o] if nhwc else [1, o, 1, 1]), "float32"))
        if epilogue == "bias_relu":
            y = op.nn.relu(y)
        elif epilogue == "bias_relu6":
            y = op.clip(y, 0.0, 6.0)
        fb.ret(y)
    return fb.module


def cases(kind: str, epilogue: str = "", bias_shape: list[int] | None = None,
          layout: str = "NCHW") -> list[tuple[np.ndarray, ...]]:
    c, o, kernel, _, _, _, groups = KINDS[kind]
    nhwc = layout == "NHWC"
    out = []
    for n in BATCHES:
        args = [rand((n, 7, 6, c) if nhwc else (n, c, 7, 6), seed=n + 1), rand((o, c // groups, *kernel), seed=n + 2)]
        if epilogue:
            args.append(rand(tuple(bias_shape or ([1, 1, 1, o] if nhwc else [1, o, 1, 1])), seed=n + 3))
        out.append(tuple(args))
    return out


def fallbacks(exe: rx.Executable) -> int:
    """Calls of the C module that fell back from oneDNN to the direct loops."""
    return int(exe.backend.lib.rx_dnnl_fallbacks())  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_conv_kind_is_one_dnnl_call(kind: str) -> None:
    """groups 1 is routed to oneDNN when forced (conv=dnnl); every other kind
    BLAS cannot take goes to oneDNN by default."""
    module = conv_module(kind)
    _, _, _, _, _, dilation, groups = KINDS[kind]
    route = "dnnl" if groups == 1 and dilation == (1, 1) else "auto"
    offloaded = roundtrip(offload_module(module.clone(), conv=route))
    text = rx.print_module(offloaded)
    assert "lib.call @dnnl_conv2d_" in text and "relax.conv2d" not in text
    args = cases(kind)
    for a in args:
        assert_close(rx.evaluate(offloaded, "main", *a), rx.evaluate(module, "main", *a))
    check_levels(offloaded, args, levels=("interp", "c"))
    exe = rx.compile(offloaded, target="c")
    for a in args:
        assert_close(exe.main(*a), rx.evaluate(module, "main", *a))
    assert fallbacks(exe) == 0  # oneDNN computed them, not the fallback loops


@pytest.mark.parametrize("bias_shape", [[1, "o", 1, 1], ["o", 1, 1]], ids=["bias4", "bias3"])
@pytest.mark.parametrize("epilogue", ["bias", "bias_relu", "bias_relu6"])
@pytest.mark.parametrize("kind", ["groups1", "depthwise", "dilation2", "strides-2x1-asym", "pointwise-groups4"])
def test_bias_relu_epilogue_is_part_of_the_call(kind: str, epilogue: str, bias_shape: list[Any]) -> None:
    o = KINDS[kind][1]
    shape = [o if d == "o" else d for d in bias_shape]
    module = conv_module(kind, epilogue, shape)
    text = rx.print_module(offload_module(module.clone(), conv="dnnl"))
    variant = f"_bias{len(shape)}{epilogue[4:]}"
    assert text.count("lib.call") == 1 and "relax.add" not in text and "relax.relu" not in text
    assert "relax.clip" not in text
    assert "lib.call @dnnl_conv2d_" in text and f"{variant}(" in text
    check_levels(rx.parse_module(text), cases(kind, epilogue, shape), levels=("interp", "c"))


def test_fast_pipeline_sends_grouped_convs_to_dnnl() -> None:
    """The optimizing pipeline's offload picks oneDNN for a grouped conv + bias + relu (BLAS cannot take it),
    channels last (convert-layout; the bias parameter permuted with the data)."""
    module = conv_module("groups4", "bias_relu")
    exe = rx.compile(module, target="c", pipeline="fast")
    assert "rx_dnnl_conv2d_nhwc_1_1_0_1_0_1_1_1_4_bias4_relu(" in exe.c_source
    for a in cases("groups4", "bias_relu"):
        assert_close(exe.main(*a), rx.evaluate(module, "main", *a))
    assert fallbacks(exe) == 0


def test_forced_blas_route_leaves_grouped_convs_to_generated_code() -> None:
    """conv=blas: what the pipeline did before oneDNN (benchmarks/conv_layers.py compares both)."""
    text = rx.print_module(offload_module(conv_module("groups2"), conv="blas"))
    assert "relax.conv2d" in text and "dnnl" not in text
    text = rx.print_module(offload_module(conv_module("groups1"), conv="blas"))
    assert "lib.call @blas_conv2d_" in text


def test_unknown_conv_route_is_an_error() -> None:
    with pytest.raises(rx.RelaxError, match="conv='mkl' is no conv2d route"):
        offload_module(conv_module("groups1"), conv="mkl")


@pytest.mark.parametrize("epilogue", ["bias_relu", "bias_relu6"])
@pytest.mark.parametrize("kind", ["groups1", "depthwise", "dilation-2x1-groups2", "strides-2x1-asym"])
def test_direct_fallback_when_dnnl_refuses(kind: str, epilogue: str) -> None:
    """When oneDNN cannot create or run a convolution (a build flag stands in
    for its refusal) the call computes it with direct loops: the library
    call has no error path, so it never leaves the output unwritten."""
    from relax_xdsl.backend.c import CModule

    module = conv_module(kind, epilogue)
    loops = rx.lower(offload_module(module.clone(), conv="dnnl"), "default")
    lib = CModule(loops, cflags=(*DEFAULT_FLAGS, "-DRX_TEST_DNNL_DIRECT"))
    for args in cases(kind, epilogue):
        (got,) = lib.call("main", list(args))
        assert_close(got, rx.evaluate(module, "main", *args))
    assert lib.lib.rx_dnnl_fallbacks() == 2  # batches 1 and 3 (batch 0 writes nothing)


@pytest.mark.parametrize("epilogue", ["bias", "bias_relu", "bias_relu6"])
def test_nan_is_kept_as_relax_relu_keeps_it(epilogue: str) -> None:
    """NaN inputs give NaN outputs through the bias and relu epilogue
    (oneDNN's relu post-op would give 0: relu runs as a pass of ours)."""
    module = conv_module("groups1", epilogue)
    exe = rx.compile(offload_module(module.clone(), conv="dnnl"), target="c")
    args = list(cases("groups1", epilogue)[2])
    args[0].flat[::11] = np.nan
    got, want = exe.main(*args), rx.evaluate(module, "main", *args)
    assert np.isnan(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close(got, want)


def test_weights_changing_between_calls_are_read_again() -> None:
    """Weights are a parameter here: the same buffer address with new
    contents must give the new convolution (no stale reordered copy)."""
    module = conv_module("depthwise")
    exe = rx.compile(offload_module(module.clone(), conv="dnnl"), target="c")
    x, w = rand((2, 6, 7, 6), seed=1), rand((6, 1, 3, 3), seed=2)
    first = exe.main(x, w)
    w *= -2.0
    assert_close(exe.main(x, w), rx.evaluate(module, "main", x, w))
    assert_close(exe.main(x, w), -2.0 * first)


@pytest.mark.parametrize(("c", "o", "k", "hw", "lib"), [
    (24, 58, 1, 28, "blas"),  # 1.1 M multiply-adds per image: below DNNL_MIN_MACS
    (64, 64, 3, 56, "dnnl"),  # 116 M
    (3, 64, 7, 112, "dnnl"),  # an RGB stem, 118 M
    (64, 64, 3, "h", "blas"),  # a symbolic image size counts as 1: not known to be large
    (256, 256, 1, 56, "blas"),  # pointwise, 205 M: BLAS's GEMM reads the image in place, oneDNN would reorder it
])
def test_auto_route_sends_large_groups_1_convs_to_dnnl(c: int, o: int, k: int, hw: Any, lib: str) -> None:
    from relax_xdsl.passes.offload import DNNL_MIN_MACS

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", c, hw, hw], "float32")
        fb.ret(op.nn.conv2d(x, fb.param("w", [o, c, k, k], "float32"), padding=k // 2))
    text = rx.print_module(offload_module(fb.module))
    assert f"lib.call @{lib}_conv2d_" in text
    assert DNNL_MIN_MACS > 24 * 58 * 28 * 28


def test_grouped_convs_whose_channels_do_not_fit_the_groups_stay_checked() -> None:
    """A library call cannot state `o mod groups == 0` or `c == groups * ci`: such convs (symbolic channels)
    stay generated code, whose checks raise a ShapeError instead of a library computing the wrong groups."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4, 3, 3], "float32")
        w = fb.param("w", ["o", 2, 1, 1], "float32")
        fb.ret(op.nn.conv2d(x, w, groups=2))
    for route in ("auto", "dnnl"):
        assert "lib.call" not in rx.print_module(offload_module(fb.module.clone(), conv=route))
    exe = rx.compile(fb.module)
    with pytest.raises(rx.ShapeError, match="o mod 2"):
        exe.main(np.ones((1, 4, 3, 3), "float32"), np.ones((3, 2, 1, 1), "float32"))


def constant_conv_module(w: np.ndarray, b: np.ndarray, act: str) -> Any:
    """conv2d (padding 1, groups from w) by constant weights, + a constant bias, then relu or relu6."""
    o, cg = w.shape[:2]
    c = 4
    with rx.FunctionBuilder("main") as fb:
        y = op.nn.conv2d(fb.param("x", ["n", c, 5, 5], "float32"), fb.const(w), padding=(1, 1), groups=c // cg)
        y = op.add(y, fb.const(b.reshape(1, o, 1, 1)))
        fb.ret(op.nn.relu(y) if act == "relu" else op.clip(y, 0.0, 6.0))
    return fb.module


def fused(exe: rx.Executable) -> int:
    return int(exe.backend.lib.rx_dnnl_fused_activations())  # type: ignore[attr-defined]


def nan_from_overflow() -> np.ndarray:
    """Input whose conv by weights of 10 overflows (3e38 and -3e38 in one window)."""
    x = rand((1, 4, 5, 5), seed=3)
    x[0, 0, 2, 2], x[0, 1, 2, 2] = 3e38, -3e38
    return x


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_activation_is_a_post_op_only_when_no_nan_can_arise(act: str, groups: int) -> None:
    """A constant-weight conv's relu / relu6 runs as oneDNN's clip post-op
    (counted) when its input, weights and bias are finite and no sum can
    overflow; otherwise as our pass, which keeps NaN as relax does (the
    clip post-op gives 0): NaN or inf in the input, an overflow to +inf and
    -inf in one sum, a NaN weight or bias."""
    w = np.full((6, 4 // groups, 3, 3), 10.0, np.float32) if groups == 1 else rand((4, 1, 3, 3), seed=1) * 10
    b = rand((w.shape[0],), seed=2)
    module = constant_conv_module(w, b, act)
    exe = rx.compile(module, target="c")
    assert "rx_dnnl_conv2d_nhwc_cw_" in exe.c_source
    x = rand((2, 4, 5, 5), seed=4) * 3

    def check(arg: np.ndarray, expect_fused: bool, module: Any = module, exe: rx.Executable = exe) -> None:
        before = fused(exe)
        got, want = exe.main(arg), rx.evaluate(module, "main", arg)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = np.abs(want[np.isfinite(want)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0  # x * 1e30: cancellation at that scale
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
        assert fused(exe) - before == int(expect_fused)

    check(x, True)
    check(np.zeros((0, 4, 5, 5), np.float32), False)  # an empty batch: nothing runs
    with_nan = x.copy()
    with_nan[1, 2, 3, 4] = np.nan
    check(with_nan, False)
    with_inf = x.copy()
    with_inf[0, 0, 0, 0], with_inf[1, 3, 4, 4] = np.inf, -np.inf
    check(with_inf, False)
    if groups == 1:
        # sums past FLT_MAX: inf, or NaN where +inf meets -inf, depending on the order and on FMA (BLAS and
        # oneDNN give inf here), so the result is compared with oneDNN's own conv + bias and relax's
        # activation after it: the guard must decline (a NaN would become 0)
        over = nan_from_overflow()
        with rx.FunctionBuilder("main") as fb:
            y = op.nn.conv2d(fb.param("x", ["n", 4, 5, 5], "float32"), fb.const(w), padding=(1, 1))
            fb.ret(op.add(y, fb.const(b.reshape(1, -1, 1, 1))))
        linear = rx.compile(fb.module, target="c").main(over)
        assert np.isinf(linear).any()
        before = fused(exe)
        want = np.maximum(linear, 0) if act == "relu" else np.clip(linear, 0, 6)
        np.testing.assert_array_equal(exe.main(over), want)
        assert fused(exe) == before
    check(x * 1e30, True)  # max|x| * max sum|w| is near 1e34: far from FLT_MAX
    check(x * 1e36, False)  # near 1e40: a sum might overflow
    nan_w, nan_b = w.copy(), b.copy()
    nan_w[0, 0, 1, 1] = np.nan  # the centre tap: never over the padding, where oneDNN skips what the reference
    nan_b[1] = np.nan           # multiplies by 0
    for bad_w, bad_b in ((nan_w, b), (w, nan_b)):
        bad = constant_conv_module(bad_w, bad_b, act)
        bad_exe = rx.compile(bad, target="c")
        check(x, False, bad, bad_exe)


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_grouped_conv_activation_is_our_pass(act: str) -> None:
    """A grouped conv that is not depthwise (groups 2 of 4 channels) runs
    on oneDNN's GEMM-based conv, whose post-ops are a scalar reference loop
    several times slower than our pass: its activation is never a post-op."""
    w, b = rand((6, 2, 3, 3), seed=1), rand((6,), seed=2)
    module = constant_conv_module(w, b, act)
    exe = rx.compile(module, target="c")
    assert "rx_dnnl_conv2d_nhwc_cw_" in exe.c_source
    x = rand((2, 4, 5, 5), seed=4)
    assert_close(exe.main(x), rx.evaluate(module, "main", x))
    assert fused(exe) == 0


def relu6_chain_module(seed: int, second: str) -> Any:
    """A constant-weight 1x1 conv + bias + relu6, then a depthwise one + bias + `second` (relu6 or relu) on
    its result (MobileNet's expand + depthwise pair)."""
    with rx.FunctionBuilder("main") as fb:
        y = fb.param("x", ["n", 4, 6, 6], "float32")
        y = op.nn.conv2d(y, fb.const(rand((8, 4, 1, 1), seed=seed)))
        y = op.clip(op.add(y, fb.const(rand((1, 8, 1, 1), seed=seed + 1))), 0.0, 6.0)
        y = op.nn.conv2d(y, fb.const(rand((8, 1, 3, 3), seed=seed + 2)), padding=(1, 1), groups=8)
        y = op.add(y, fb.const(rand((1, 8, 1, 1), seed=seed + 3)))
        fb.ret(op.clip(y, 0.0, 6.0) if second == "relu6" else op.nn.relu(y))
    return fb.module


@pytest.mark.parametrize("second", ["relu6", "relu"])
def test_a_conv_after_a_fused_relu6_conv_does_not_read_its_data_again(second: str) -> None:
    """The depthwise conv's data is the result of the relu6 conv before it
    (the offload pass knows it: `_after6`). When that call fused its relu6
    (finite input), its result is in [0, 6] and the depthwise call takes
    the post-op without reading it; when it did not (a NaN in the input),
    the depthwise call reads its data and finds the NaN, so NaN stays NaN,
    also when the last fused relu6 call (the previous run's) wrote the same
    address (with `relu` second, the first conv's result is the last one)."""
    module = relu6_chain_module(1, second)
    exe = rx.compile(module, target="c")
    assert exe.c_source.count("void rx_dnnl_conv2d_nhwc_cw_after6_") == 1  # the depthwise conv's wrapper
    assert "rx_dnnl_conv2d_cw_after6(" in exe.c_source
    for n in (0, 1, 3):
        x = rand((n, 4, 6, 6), seed=n) * 4
        for poison in (False, True):
            if poison and n:
                x[n - 1, 1, 2, 3] = np.nan
            before = fused(exe)
            got, want = exe.main(x), rx.evaluate(module, "main", x)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            assert_close(got, want)
            assert np.isnan(got).any() == (poison and n > 0)
            assert fused(exe) - before == (0 if n == 0 or poison else 2)


def test_after6_names() -> None:
    assert dnnl.bounds_by_six("dnnl_conv2d_nhwc_cw_1_1_0_0_0_0_1_1_1_bias4_relu6")
    assert dnnl.bounds_by_six("dnnl_conv2d_cw_after6_1_1_1_1_1_1_1_1_8_bias4_relu6")
    assert not dnnl.bounds_by_six("dnnl_conv2d_nhwc_1_1_0_0_0_0_1_1_1_bias4_relu6")  # weights computed
    assert not dnnl.bounds_by_six("dnnl_conv2d_nhwc_cw_1_1_0_0_0_0_1_1_1_bias4_relu")
    with pytest.raises(ValueError, match="only with constant weights and an activation"):
        dnnl.conv2d_function((1, 1), (0, 0, 0, 0), (1, 1), 1, "_bias4", constant_weights=True, after6=True)
    from relax_xdsl.libraries import lookup
    with pytest.raises(rx.RelaxError, match="no library function registered"):
        lookup("dnnl.conv2d_nhwc_cw_after6_bias4:1,1,0,0,0,0,1,1,1")
    assert lookup("dnnl.conv2d_nhwc_cw_after6_bias4_relu6:1,1,0,0,0,0,1,1,1") is not None


def test_a_narrowing_conv_keeps_the_separate_pass() -> None:
    """Proving a conv's result NaN-free reads its input; when the input is
    larger than the output (a 1x1 conv from 16 channels to 4) that read costs
    more than the activation pass it would save, so the pass stays (not
    counted as fused), with the same result."""
    w, b = rand((4, 16, 1, 1), seed=1), rand((4,), seed=2)
    with rx.FunctionBuilder("main") as fb:
        y = op.nn.conv2d(fb.param("x", ["n", 16, 5, 5], "float32"), fb.const(w))
        fb.ret(op.nn.relu(op.add(y, fb.const(b.reshape(1, 4, 1, 1)))))
    exe = rx.compile(fb.module, target="c")
    assert "rx_dnnl_conv2d_nhwc_cw_" in exe.c_source
    x = rand((2, 16, 5, 5), seed=3)
    before = fused(exe)
    assert_close(exe.main(x), rx.evaluate(fb.module, "main", x))
    assert fused(exe) == before
