"""The C backend itself: warning-free generated C, the compile cache (hit,
concurrent compiles of one module, a corrupted entry), failing checks
raise without killing the process, outputs owned by numpy."""

from __future__ import annotations

import gc
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from util import assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.backend import c as cbackend
from relax_xdsl.backend import c_python
from relax_xdsl.backend.c import DEFAULT_FLAGS, WARNING_FLAGS, CModule
from relax_xdsl.models import cnn, mlp, transformer_block


def small_module(scale: float = 2.0) -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3], "float32")
        idx = fb.param("i", ["k"], "int64")
        y = op.take(op.multiply(x, scale), idx, axis=0)
        fb.ret(fb.tuple(op.sum(y, axis=[1]), op.greater(y, 0.0)))
    return fb.module


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("pipeline", ["baseline", "default"])
@pytest.mark.parametrize("build", [mlp, cnn, transformer_block, small_module], ids=["mlp", "cnn", "transformer", "small"])
def test_generated_c_is_warning_free(build: object, pipeline: str, cache: Path) -> None:
    """The generated C, the library functions (`default`) and the entry points."""
    module = build()  # type: ignore[operator]
    loops = rx.lower(module.module if hasattr(module, "module") else module, pipeline)
    lib = CModule(loops, cflags=(*DEFAULT_FLAGS, *WARNING_FLAGS, "-Werror"))
    # the CPython entry points too (a build failing on them would quietly fall back without)
    assert lib.fast or c_python.include_flags() is None


def test_cache_hit_skips_the_compiler(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rx.compile(small_module(), target="c")
    assert len(list(cache.glob("rx_*.so"))) == 1

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiler ran on a cache hit")

    monkeypatch.setattr(cbackend, "compile_to", no_compiler)
    exe = rx.compile(small_module(), target="c")
    out = exe.main(rand((2, 3)), np.array([1, 0], np.int64))
    assert out[0].shape == (2,)


def test_weights_do_not_change_the_binary(cache: Path) -> None:
    """Constants are passed to the library at run time: two models that
    differ only in weights share one library and still give their own results."""
    a, b = rx.compile(small_module(2.0), target="c"), rx.compile(small_module(3.0), target="c")
    assert len(list(cache.glob("rx_*.so"))) == 1 or a.backend.path != b.backend.path
    x, i = rand((2, 3)), np.array([1, 0], np.int64)
    assert_close(a.main(x, i)[0], (x * 2)[[1, 0]].sum(axis=1))
    assert_close(b.main(x, i)[0], (x * 3)[[1, 0]].sum(axis=1))


def _compile_in_child(cache_dir: str, q: multiprocessing.Queue) -> None:
    os.environ["RELAX_XDSL_CACHE_DIR"] = cache_dir
    exe = rx.compile(mlp().module, target="c")
    x = mlp().make_inputs(3)[0]
    q.put(float(exe.main(x).sum()))


def test_concurrent_compiles_of_one_module(cache: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_compile_in_child, args=(str(cache), q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    sums = [q.get(timeout=10) for _ in procs]
    assert np.allclose(sums, 3.0)  # softmax rows sum to 1
    assert len(list(cache.glob("rx_*.so"))) == 1
    assert not list(cache.glob(".build_*"))


def test_corrupted_cache_entry_is_rebuilt(cache: Path) -> None:
    """A truncated library (a crash mid-copy, a full disk) is rebuilt. Runs in
    child processes: a library this process has loaded stays mapped."""
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    first = ctx.Process(target=_compile_in_child, args=(str(cache), q))
    first.start()
    first.join(300)
    assert first.exitcode == 0 and abs(q.get(timeout=10) - 3.0) < 1e-4
    (lib,) = cache.glob("rx_*.so")
    broken = lib.with_suffix(".tmp")
    broken.write_bytes(lib.read_bytes()[:100])
    os.replace(broken, lib)
    again = ctx.Process(target=_compile_in_child, args=(str(cache), q))
    again.start()
    again.join(300)
    assert again.exitcode == 0 and abs(q.get(timeout=10) - 3.0) < 1e-4
    assert lib.stat().st_size > 1000


def test_failing_checks_raise_and_the_process_survives() -> None:
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n"], "float32")
        b = fb.param("b", ["m"], "float32")
        fb.ret(op.add(a, b))
    exe = rx.compile(fb.module, target="c")
    for _ in range(3):
        with pytest.raises(rx.ShapeError, match="must equal"):
            exe.main(rand((3,)), rand((4,)))
    assert_close(exe.main(rand((4,)), rand((4,))), rand((4,)) + rand((4,)))


def test_outputs_are_owned_by_numpy() -> None:
    exe = rx.compile(small_module(), target="c")
    outs = [exe.main(rand((50, 3)), np.arange(50, dtype=np.int64))[0] for _ in range(20)]
    base = outs[0].copy()
    del outs[1:]
    gc.collect()
    np.testing.assert_array_equal(outs[0], base)
    assert outs[0].flags.writeable and outs[0].flags.c_contiguous


def test_compiler_errors_are_reported(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "cc -include /nonexistent/header.h")
    with pytest.raises(rx.RelaxError, match="C compiler failed"):
        rx.compile(small_module(), target="c")


@pytest.mark.parametrize(("name", "ref", "max_ulp"), [("exp", np.exp, 1.0), ("erf", None, 3.0), ("tanh", np.tanh, 3.0)])
def test_vectorized_float_math_is_accurate(name: str, ref: object, max_ulp: float) -> None:
    """float32 exp, erf and tanh are inline polynomials (loops calling them
    vectorize; libm's are scalar calls): within a few ulp of the float64
    value over the whole range, with IEEE specials (inf, -inf, nan, -0,
    overflow, gradual underflow) as numpy gives them."""
    import math

    with rx.FunctionBuilder("main") as fb:
        fb.ret(getattr(op, name)(fb.param("x", ["n"], "float32")))
    exe = rx.compile(fb.module, target="c")
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 88.72, 88.73, -87.3, -103.9, -104.0, -200.0, 1e-30, -1e-30,
                1e-8, 0.99999994, 1.0, 3.999, 4.0, -4.0, 0.6249999, 0.625, -0.625, 8.999, 9.0, 9.5, -9.5]
    x = np.concatenate([np.linspace(-110, 95, 200_001), np.linspace(-6, 6, 200_001), specials]).astype(np.float32)
    got = exe.main(x)
    want = ref(x.astype(np.float64)) if callable(ref) else \
        np.array([math.erf(v) if np.isfinite(v) else np.tanh(v) for v in x.astype(np.float64)])
    with np.errstate(over="ignore"):
        want32 = want.astype(np.float32)
    special = ~np.isfinite(want32)
    subnormal = np.abs(want32) < np.finfo(np.float32).tiny
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want32))
    np.testing.assert_array_equal(got[special & ~np.isnan(want32)], want32[special & ~np.isnan(want32)])
    assert np.abs(got[subnormal] - want32[subnormal]).max() <= np.finfo(np.float32).smallest_subnormal
    normal = ~special & ~subnormal
    ulps = np.abs(got[normal] - want[normal]) / np.spacing(np.abs(want32[normal]))
    assert ulps.max() <= max_ulp, (name, float(ulps.max()), x[normal][ulps.argmax()])
    if name in ("erf", "tanh"):  # odd: erf(-0) and tanh(-0) are -0
        assert np.signbit(got[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()


def test_short_windows_are_not_simd_reductions() -> None:
    """A pool's 2x2 window is left to gcc (unrolled, vectorized across
    outputs): an `omp simd reduction` over 2 taps was 5x slower."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8, 32, 32], "float32")
        fb.ret(op.nn.max_pool2d(x, pool_size=(2, 2), strides=(2, 2)))
    exe = rx.compile(fb.module, target="c")
    assert "#pragma omp simd reduction" not in exe.c_source
    x = rand((2, 8, 32, 32))
    assert_close(exe.main(x), x.reshape(2, 8, 16, 2, 16, 2).max(axis=(3, 5)))


def test_small_parallel_nests_have_a_plain_copy() -> None:
    """A small parallel nest runs as plain loops below PARALLEL_MIN_WORK
    iterations and as an OpenMP loop above (emitted twice, no region when
    small); both give the evaluator's values, a pool in the nest included."""
    from relax_xdsl.passes.schedule_loops import PARALLEL_MIN_WORK

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 64], "float32")
        y = op.nn.max_pool2d(op.reshape(op.add(x, x), [1, -1, 8, 8]), pool_size=(2, 2), strides=(2, 2))
        fb.ret(op.nn.softmax(op.reshape(y, [-1, 16]), axis=-1))
    exe = rx.compile(fb.module)
    assert exe.c_source.count(f"< {PARALLEL_MIN_WORK}) {{") >= 2
    for n in (1, 3, PARALLEL_MIN_WORK // 64 + 5):
        x = rand((n, 64), seed=n)
        assert_close(exe.main(x), rx.evaluate(fb.module, "main", x))
