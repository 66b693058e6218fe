"""Debug mode of the C target (`compile(..., debug=True)`): every buffer
access is bounds-checked, a violation is a BoundsError naming the function,
buffer, dim, index and extent, and the process survives. Ordinary programs
give the same results as without checks."""

from __future__ import annotations

import numpy as np
import pytest
from relax_xdsl.dialects.relax import TensorType
from util import assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.models import cnn, mlp, transformer_block
from relax_xdsl.tir_builder import PrimFuncBuilder


def shifted_read_module() -> object:
    """A user's tensor program with an off-by-one read: out[i] = a[i + 1]."""
    pb = PrimFuncBuilder("shift", [("a", ["n"], "float32"), ("out", ["n"], "float32")])
    a, out = pb.params
    pb.compute(out, lambda i: a[i + 1] * 2.0)
    prog = pb.finish()
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(prog)
        x = fb.param("x", ["n"], "float32")
        fb.ret(fb.call_tir("shift", [x], TensorType.of(["n"], "float32")))
    return fb.module


def test_out_of_bounds_read_is_caught_and_named() -> None:
    module = shifted_read_module()
    exe = rx.compile(module, target="c", debug=True)
    for n in (1, 5):
        with pytest.raises(rx.BoundsError, match=rf"out-of-bounds access in @shift: buffer \w+ dim 0: index {n} "
                                                 rf"not in \[0, {n}\)"):
            exe["main"](rand((n,)))
    # the process survives and the executable stays usable
    with pytest.raises(rx.BoundsError):
        exe["main"](rand((3,)))
    with pytest.raises(rx.BoundsError, match="out of bounds"):
        rx.compile(module, target="interp")["main"](rand((3,)))


def test_debug_builds_are_cached_apart_from_normal_ones() -> None:
    module = shifted_read_module()
    normal, debug = rx.compile(module, target="c"), rx.compile(module, target="c", debug=True)
    assert debug.c_source.count("rx_bound(") > normal.c_source.count("rx_bound(") == 0  # defined in rx_runtime.h
    assert normal.backend.path != debug.backend.path  # type: ignore[attr-defined]


@pytest.mark.parametrize("build", [mlp, cnn, transformer_block], ids=["mlp", "cnn", "transformer"])
@pytest.mark.parametrize("pipeline", ["baseline", "default"])
def test_models_run_clean_under_bounds_checks(build: object, pipeline: str) -> None:
    model = build()  # type: ignore[operator]
    exe = rx.compile(model.module, target="c", pipeline=pipeline, debug=True)
    sizes = [(1,), (3,)] if model.name != "transformer" else [(1, 1), (2, 5)]
    for s in sizes:
        args = model.make_inputs(*s)
        np.testing.assert_allclose(exe["main"](*args), model.numpy_fn(*args), rtol=1e-4, atol=1e-4)


def test_ops_run_clean_under_bounds_checks() -> None:
    """Gathers, slices, pools, padding and concat: the accesses most likely to stray."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3, "h", "h"], "float32")
        i = fb.param("i", ["k"], "int64")
        p = op.nn.max_pool2d(x, pool_size=3, strides=2, padding=1, ceil_mode=True)
        a = op.nn.avg_pool2d(x, pool_size=2, padding=(0, 1, 1, 0), count_include_pad=True)
        t = op.take(op.reshape(x, [-1]), i)
        s = op.strided_slice(x, [2, 3], [-2, 1], [100, -1], [1, 2])
        c = op.concat([op.flatten(p), op.flatten(a), t, op.flatten(s)])
        fb.ret(c)
    exe, ref = rx.compile(fb.module, target="c", debug=True), fb.module
    for n, h in ((1, 1), (2, 5)):
        args = (rand((n, 3, h, h)), np.array([0, -1, 2, -3], np.int64))
        assert_close(exe["main"](*args), rx.evaluate(ref, "main", *args))
