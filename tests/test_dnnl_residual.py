"""A residual add in a conv's epilogue (conv_library.RESIDUAL_VARIANTS,
c_runtime/rx_dnnl.c): conv2d + bias + a residual of the result's type +
relu, channels last, is one oneDNN call whose binary post-op reads the
residual. Checked against the graph's evaluation at a symbolic batch bound
to 0, 1 and 3, for several conv kinds; NaN and infinity in the residual
kept as relax.add and relax.relu keep them; oneDNN refusing the call; what
is not fused (no relu after the add, a broadcast residual, NCHW). Skipped without oneDNN."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.offload import offload_module
from util import assert_close, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import dnnl, op
from relax_xdsl.backend.c import DEFAULT_FLAGS

pytestmark = pytest.mark.skipif(not dnnl.available(), reason="oneDNN is not installed "
                                "(pip install onednn-cpu-gomp onednn-devel-cpu-gomp)")

BATCHES = (0, 1, 3)
H, W = 7, 6

# name: (c, o, kernel, strides, padding, groups); the output is (n, oh, ow, o)
KINDS: dict[str, tuple[int, int, tuple[int, int], tuple[int, int], tuple[int, ...], int]] = {
    "groups1": (8, 6, (3, 3), (1, 1), (1, 1), 1),
    "pointwise": (4, 16, (1, 1), (1, 1), (0, 0), 1),  # ResNet-50's expanding 1x1
    "depthwise": (6, 6, (3, 3), (1, 1), (1, 1), 6),
    "strides2-groups2": (4, 6, (3, 3), (2, 2), (1, 1), 2),
}


def out_hw(kind: str) -> tuple[int, int]:
    _, _, (kh, kw), (sh, sw), padding, _ = KINDS[kind]
    pt, pl, pb, pr = padding * (4 // len(padding))
    return (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1


def residual_module(kind: str, relu: bool, weights: np.ndarray | None = None,
                    residual_shape: list[Any] | None = None, layout: str = "NHWC") -> Any:
    """relu?(conv2d(x, w) + b + r): w a constant when `weights` is given."""
    c, o, kernel, strides, padding, groups = KINDS[kind]
    oh, ow = out_hw(kind)
    nhwc = layout == "NHWC"
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", H, W, c] if nhwc else ["n", c, H, W], "float32")
        w = fb.const(weights) if weights is not None else fb.param("w", [o, c // groups, *kernel], "float32")
        b = fb.param("b", [1, 1, 1, o] if nhwc else [1, o, 1, 1], "float32")
        r = fb.param("r", residual_shape or (["n", oh, ow, o] if nhwc else ["n", o, oh, ow]), "float32")
        y = op.nn.conv2d(x, w, strides=strides, padding=padding, groups=groups, data_layout=layout)
        y = op.add(op.add(y, b), r)
        fb.ret(op.nn.relu(y) if relu else y)
    return fb.module


def cases(kind: str, constant_weights: bool = False, layout: str = "NHWC") -> list[tuple[np.ndarray, ...]]:
    c, o, kernel, _, _, groups = KINDS[kind]
    oh, ow = out_hw(kind)
    nhwc = layout == "NHWC"
    out = []
    for n in BATCHES:
        args = [rand((n, H, W, c) if nhwc else (n, c, H, W), seed=n + 1)]
        if not constant_weights:
            args.append(rand((o, c // groups, *kernel), seed=n + 2))
        args += [rand((1, 1, 1, o) if nhwc else (1, o, 1, 1), seed=n + 3),
                 rand((n, oh, ow, o) if nhwc else (n, o, oh, ow), seed=n + 4)]
        out.append(tuple(args))
    return out


def weights(kind: str) -> np.ndarray:
    c, o, kernel, _, _, groups = KINDS[kind]
    return rand((o, c // groups, *kernel), seed=11)


def counters(exe: rx.Executable) -> tuple[int, int]:
    """(calls that fell back to direct loops, calls whose activation ran as oneDNN's post-op), so far in
    this process (the runtime's counters)."""
    lib = exe.backend.lib  # type: ignore[attr-defined]
    return int(lib.rx_dnnl_fallbacks()), int(lib.rx_dnnl_fused_activations())


@pytest.mark.parametrize("kind", list(KINDS))
def test_residual_is_part_of_the_call(kind: str) -> None:
    """One call, on the interpreter (the numpy reference) and in C, equal to the graph's evaluation."""
    module = residual_module(kind, True)
    text = rx.print_module(offload_module(module.clone(), conv="dnnl"))
    assert text.count("lib.call") == 1 and "relax.add" not in text and "relax.relu" not in text
    assert "_bias4_add_relu(" in text
    check_levels(rx.parse_module(text), cases(kind), levels=("interp", "c"))


@pytest.mark.parametrize("kind", ["pointwise", "depthwise"])  # X no larger than Y: the proof is tried
def test_constant_weights_fuse_relu_after_the_residual(kind: str) -> None:
    """With constant weights and finite data the relu runs as oneDNN's post-op after the residual's."""
    module = residual_module(kind, True, weights(kind))
    exe = rx.compile(offload_module(module.clone(), conv="dnnl"), target="c")
    assert "rx_dnnl_conv2d_nhwc_cw_" in exe.c_source
    before = counters(exe)
    for args in cases(kind, constant_weights=True):
        assert_close(exe.main(*args), rx.evaluate(module, "main", *args))
    after = counters(exe)
    assert (after[0] - before[0], after[1] - before[1]) == (0, 2)  # batches 1 and 3 (0 writes nothing)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 3e38])
def test_non_finite_residual_is_kept(bad: float) -> None:
    """A NaN in the residual stays NaN through relu (oneDNN's clip post-op
    would make it 0, so the proof reads the residual and the relu runs as a
    pass); infinities and sums that overflow come out as relax computes them."""
    module = residual_module("pointwise", True, weights("pointwise"))
    exe = rx.compile(offload_module(module.clone(), conv="dnnl"), target="c")
    x, b, r = (a.copy() for a in cases("pointwise", constant_weights=True)[2])
    r.flat[::7] = bad
    before = counters(exe)
    got, want = exe.main(x, b, r), rx.evaluate(module, "main", x, b, r)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    assert_close(np.where(finite, got, 0), np.where(finite, want, 0))
    assert counters(exe) == before  # the relu was not fused: the residual is not provably finite
    if np.isnan(bad):
        assert np.isnan(want).any()


def test_direct_fallback_when_dnnl_refuses() -> None:
    """oneDNN refusing every primitive (a build flag stands in for it): the conv, bias, residual and relu
    are computed by the fallback loops and one more pass, equal to the graph."""
    from relax_xdsl.backend.c import CModule

    module = residual_module("strides2-groups2", True)
    loops = rx.lower(offload_module(module.clone(), conv="dnnl"), "default")
    lib = CModule(loops, cflags=(*DEFAULT_FLAGS, "-DRX_TEST_DNNL_DIRECT"))
    for args in cases("strides2-groups2"):
        (got,) = lib.call("main", list(args))
        assert_close(got, rx.evaluate(module, "main", *args))
    assert lib.lib.rx_dnnl_fallbacks() == 4  # batches 1 and 3: the residual call, then the plain one


def test_no_relu_broadcast_residual_and_nchw_are_not_fused() -> None:
    """A residual add with no relu after it (MobileNetV2's: the binary post-op alone measured slower than
    the add as a pass), a residual that broadcasts (one image for the batch: no operand of the output's
    shape) and NCHW convs (the binary post-op is taken on the layout convert-layout gives) keep the graph
    add, with the same results."""
    text = rx.print_module(offload_module(residual_module("pointwise", False), conv="dnnl"))
    assert "_add" not in text.replace("relax.add", "") and "relax.add" in text and "_bias4(" in text
    oh, ow = out_hw("groups1")
    module = residual_module("groups1", True, residual_shape=[1, oh, ow, 6])
    text = rx.print_module(offload_module(module.clone(), conv="dnnl"))
    assert "_add" not in text.replace("relax.add", "") and "relax.add" in text
    args = [a if i != 3 else a[:1] for i, a in enumerate(cases("groups1")[2])]
    exe = rx.compile(rx.parse_module(text), target="c")
    assert_close(exe.main(*args), rx.evaluate(module, "main", *args))
    text = rx.print_module(offload_module(residual_module("groups1", True, layout="NCHW"), conv="dnnl"))
    assert "_add" not in text.replace("relax.add", "") and "relax.add" in text


def test_default_pipeline_fuses_a_resnet_block() -> None:
    """A basic ResNet block written NCHW: convert-layout makes it channels last and the second conv takes
    the shortcut and the relu into its call."""
    rng = np.random.default_rng(0)
    w1, w2 = (rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2 for _ in range(2))
    b1, b2 = (rng.standard_normal((1, 8, 1, 1)).astype(np.float32) for _ in range(2))
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8, 14, 14], "float32")
        y = op.nn.relu(op.add(op.nn.conv2d(x, fb.const(w1), padding=1), fb.const(b1)))
        y = op.add(op.nn.conv2d(y, fb.const(w2), padding=1), fb.const(b2))
        fb.ret(op.nn.relu(op.add(y, x)))
    module = fb.module
    exe = rx.compile(module, target="c")
    assert "_bias4_add_relu(" in exe.c_source
    for n in BATCHES:
        x = rand((n, 8, 14, 14), seed=n)
        assert_close(exe.main(x), rx.evaluate(module, "main", x))
