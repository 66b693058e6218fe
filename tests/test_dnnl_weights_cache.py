"""oneDNN conv2d with constant weights (rx_dnnl_conv2d_cw, c_runtime/rx_dnnl.c):
the reordered copy of a model constant is kept between calls, keyed on the
convolution and the weights' address. These tests check it never serves a
stale copy: two modules compiled to the same library with different
constants, a module freed and another one's constants at its addresses, a
weights parameter beside a constant one, calls from several threads; and
that the kept-copy kind is only ever called with a constant. Skipped
without oneDNN."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.offload import offload_module
from util import assert_close, call_concurrently, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import dnnl, op

pytestmark = pytest.mark.skipif(not dnnl.available(), reason="oneDNN is not installed "
                                "(pip install onednn-cpu-gomp onednn-devel-cpu-gomp)")

C, OUT, HW = 8, 16, 9
"""A groups-1 3x3 conv: oneDNN reorders its weights into a blocked layout."""


def const_conv(weights: np.ndarray, bias: np.ndarray) -> Any:
    """conv2d(x, constant weights) + constant bias, relu; batch `n` symbolic."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", C, HW, HW], "float32")
        y = op.nn.conv2d(x, fb.const(weights), padding=1)
        fb.ret(op.nn.relu(op.add(y, fb.const(bias))))
    return fb.module


def compile_dnnl(module: Any) -> rx.Executable:
    return rx.compile(offload_module(module.clone(), conv="dnnl"), target="c")


def weights(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return rand((OUT, C, 3, 3), seed=seed), rand((1, OUT, 1, 1), seed=seed + 100)


def fallbacks(exe: rx.Executable) -> int:
    return int(exe.backend.lib.rx_dnnl_fallbacks())  # type: ignore[attr-defined]


def test_constant_weights_take_the_kept_copy_kind() -> None:
    """The offload pass knows constant weights; a weights parameter keeps the per-call reorder."""
    text = rx.print_module(offload_module(const_conv(*weights(1)), conv="dnnl"))
    assert "lib.call @dnnl_conv2d_cw_" in text
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", C, HW, HW], "float32")
        fb.ret(op.nn.conv2d(x, fb.param("w", [OUT, C, 3, 3], "float32"), padding=1))
    text = rx.print_module(offload_module(fb.module, conv="dnnl"))
    assert "lib.call @dnnl_conv2d_" in text and "conv2d_cw" not in text


def test_two_modules_with_the_same_shapes_and_other_constants() -> None:
    """Both compile to one library (one cache): each must use its own weights, calls interleaved."""
    modules = [const_conv(*weights(1)), const_conv(*weights(2))]
    exes = [compile_dnnl(m) for m in modules]
    assert exes[0].backend.path == exes[1].backend.path  # one library, one oneDNN cache
    for n in (1, 3, 1):
        x = rand((n, C, HW, HW), seed=n)
        for m, exe in zip(modules, exes):
            assert_close(exe.main(x), rx.evaluate(m, "main", x))
    assert sum(fallbacks(e) for e in exes) == 0


def test_a_freed_modules_weights_are_forgotten() -> None:
    """A module's constants freed, the next module's (same shapes, other
    values) are often allocated at the same addresses: the kept copy of the
    first must not be used for them."""
    x = rand((2, C, HW, HW), seed=5)
    for seed in range(1, 6):
        module = const_conv(*weights(seed))
        exe = compile_dnnl(module)
        assert_close(exe.main(x), rx.evaluate(module, "main", x))
        del exe
        gc.collect()


def test_a_freed_modules_weight_bound_is_forgotten() -> None:
    """The bound on sum|w| that lets relu run as oneDNN's post-op is kept
    per weights address too: a NaN weight at the address of a freed
    module's finite one must not take the post-op (which turns NaN into 0)."""
    x = rand((2, C, HW, HW), seed=5)
    for seed in range(1, 7):
        w, bias = weights(seed)
        if seed % 2 == 0:
            w[3, 2, 1, 1] = np.nan  # the centre tap: every output of channel 3 is NaN
        module = const_conv(w, bias)
        exe = compile_dnnl(module)
        got, want = exe.main(x), rx.evaluate(module, "main", x)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.isnan(got).any() == (seed % 2 == 0)
        del exe
        gc.collect()


def test_weights_parameter_beside_a_constant_of_the_same_shapes() -> None:
    """One cache entry serves both convs (same shapes and epilogue): the
    parameter's contents are read on every call, the constant's kept."""
    w_const = rand((OUT, C, 3, 3), seed=7)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", C, HW, HW], "float32")
        w = fb.param("w", [OUT, C, 3, 3], "float32")
        a = op.nn.conv2d(x, fb.const(w_const), padding=1)
        b = op.nn.conv2d(x, w, padding=1)
        fb.ret(op.subtract(a, b))
    module = fb.module
    exe = compile_dnnl(module)
    assert "rx_dnnl_conv2d_cw_" in exe.c_source and "rx_dnnl_conv2d_1_" in exe.c_source
    x, w = rand((2, C, HW, HW), seed=1), w_const.copy()
    assert_close(exe.main(x, w), np.zeros((2, OUT, HW, HW), "float32"))
    for scale in (-1.0, 3.0):
        w[...] = scale * w_const  # same address, new contents
        assert_close(exe.main(x, w), (1.0 - scale) * rx.evaluate(module, "main", x, w_const.copy() * 0.0))
        assert_close(exe.main(x, w), rx.evaluate(module, "main", x, w))
    check_levels(offload_module(module.clone(), conv="dnnl"), [(x, w), (rand((1, C, HW, HW)), -w)],
                 levels=("interp", "c"))


def test_calls_from_several_threads() -> None:
    """Threads calling one function at once (ctypes and the CPython entries
    release the GIL), with different batches and inputs: the first calls
    race to make the kept weights, which are made once, under the cache's
    lock."""
    w, bias = weights(3)
    module = const_conv(w, bias)
    exe = compile_dnnl(module)
    inputs = [rand((1 + k % 3, C, HW, HW), seed=10 + k) for k in range(6)]
    want = [rx.evaluate(module, "main", x) for x in inputs]

    def calls(k: int) -> None:
        for _ in range(20):
            assert_close(exe.main(inputs[k]), want[k])

    call_concurrently(calls, len(inputs))
    assert fallbacks(exe) == 0


def test_kept_copy_kind_refuses_computed_weights() -> None:
    """IR naming the constant-weights function for a weights parameter (it
    would serve a stale copy once the parameter changes) is refused by the
    C target; the interpreter computes it (it keeps nothing)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", C, HW, HW], "float32")
        fb.ret(op.nn.conv2d(x, fb.param("w", [OUT, C, 3, 3], "float32"), padding=1))
    text = rx.print_module(offload_module(fb.module, conv="dnnl"))
    assert "dnnl.conv2d:" in text
    forged = rx.parse_module(text.replace("dnnl_conv2d_", "dnnl_conv2d_cw_").replace("dnnl.conv2d:", "dnnl.conv2d_cw:"))
    args = (rand((1, C, HW, HW)), rand((OUT, C, 3, 3), seed=1))
    assert_close(rx.compile(forged, target="interp").main(*args), rx.evaluate(fb.module, "main", *args))
    with pytest.raises(rx.RelaxError, match="operand 1, which must be a model constant"):
        rx.compile(forged, target="c")
