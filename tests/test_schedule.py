"""The Python scheduling API: loops / split / reorder / parallel / vectorize /
unroll on legalized programs, checked on both targets against numpy, and
its errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.legalize import legalize_module
from util import SIZES, assert_close, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.schedule import Schedule


def legalized(body: Any, *specs: tuple[list[Any], str]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(body(*[fb.param(f"a{i}", s, d) for i, (s, d) in enumerate(specs)]))
    return legalize_module(fb.module)


def run_both(module: Any, cases: list[tuple[np.ndarray, ...]], expected: Any) -> None:
    again = roundtrip(module)
    for target in ("interp", "c"):
        exe = rx.compile(again, target=target)
        for args in cases:
            assert_close(exe.main(*args), expected(*args))


def test_matmul_schedule() -> None:
    m = legalized(op.matmul, (["n", "k"], "float32"), (["k", "m"], "float32"))
    sch = Schedule(m, "matmul")
    i, j, k = sch.loops()
    sch.reorder(j, k)
    sch.vectorize(j)
    io, ii = sch.split(i, 4)  # 4 does not divide n = 1, 3, 7: guarded
    sch.parallel(io)
    sch.unroll(ii)
    cases = [(rand((n, 3), seed=n), rand((3, m), seed=m)) for n, m in zip(SIZES, reversed(SIZES))]
    run_both(m, cases, lambda a, b: a @ b)


def test_split_by_a_dividing_factor_has_no_guard() -> None:
    m = legalized(op.exp, ([8, "n"], "float32"))
    sch = Schedule(m, "exp")
    i, _ = sch.loops()
    sch.split(i, 4)
    assert "scf.if" not in rx.print_module(m)
    run_both(m, [(rand((8, n), seed=n),) for n in SIZES], np.exp)


def test_reductions_with_epilogue_and_wider_accumulator() -> None:
    m = legalized(lambda x: op.mean(x, axis=[1]), (["n", "m"], "float16"))
    sch = Schedule(m, "mean")
    loops = sch.loops()
    assert len(loops) == 2
    with pytest.raises(rx.RelaxError, match="carries a reduction"):
        sch.parallel(loops[1])
    sch.parallel(loops[0])
    text = rx.print_module(m)
    assert "tir.alloc" in text  # float16 accumulated in float32
    run_both(m, [(rand((n, 4), "float16", seed=n),) for n in SIZES],
             lambda x: x.astype(np.float32).mean(axis=1).astype(np.float16))


def test_errors() -> None:
    m = legalized(op.matmul, (["n", "k"], "float32"), (["k", "m"], "float32"))
    with pytest.raises(rx.RelaxError, match="no tensor program @nope"):
        Schedule(m, "nope")
    sch = Schedule(m, "matmul")
    with pytest.raises(rx.RelaxError, match="no #3"):
        sch.loops(3)
    i, j, k = sch.loops()
    with pytest.raises(rx.RelaxError, match="perfectly nested"):
        sch.reorder(i, k)
    with pytest.raises(rx.RelaxError, match="factor"):
        sch.split(i, 0)


UNSCHEDULED = "legalize,lower-tir,lower-graph,canonicalize,cse"


@pytest.mark.parametrize(("body", "specs", "scheduled"), [
    (op.matmul, [(["n", "k"], "float32"), (["k", "m"], "float32")], True),
    (op.matmul, [(["b", "n", "k"], "float32"), (["b", "k", "m"], "float32")], True),
    (op.matmul, [(["n", "k"], "int32"), (["k", "m"], "int32")], True),
    (lambda x: op.sum(x, axis=[0]), [(["k", "m"], "float32")], True),
    (lambda x: op.max(x, axis=[0, 1]), [(["k", "n", "m"], "float32")], True),
    (lambda x: op.sum(x, axis=[1]), [(["k", "m"], "float32")], False),
    (lambda x: op.nn.softmax(x, axis=-1), [(["k", "m"], "float32")], False),
])
def test_auto_schedule_keeps_the_summation_order(body: Any, specs: list[tuple[list[str], str]],
                                                scheduled: bool) -> None:
    """auto-schedule reorders contractions (k outside the contiguous output
    axis) and leaves row reductions; every output element accumulates in the
    same order, so each target gives the unscheduled program's values (exactly
    on the interpreter and for integers; in C, gcc may fuse a multiply-add
    differently), at sizes including 1."""
    from relax_xdsl.passes.auto_schedule import auto_schedule

    module = legalized(body, *specs)
    assert (auto_schedule(legalized(body, *specs)) > 0) == scheduled
    for target in ("interp", "c"):
        plain = rx.compile(module, target=target, pipeline=UNSCHEDULED)
        exe = rx.compile(module, target=target, pipeline="baseline")  # auto-scheduled
        for size in SIZES:
            names = {d for s, _ in specs for d in s if isinstance(d, str)}
            env = {d: size + i for i, d in enumerate(sorted(names))} if size > 1 else dict.fromkeys(names, 1)
            args = [rand([env.get(d, d) for d in s], dtype=dt, seed=size) for s, dt in specs]
            got, want = exe.main(*args), plain.main(*args)
            if target == "interp" or got.dtype.kind != "f":
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width", ["m", 10, 16, 40, 130])
def test_matmul_register_tiles_at_every_size(width: Any) -> None:
    """auto-schedule's register tiles (4 rows x 64 columns, or the multiple of
    16 below a narrower static width; none under 16) with leftover rows and
    columns: the unscheduled program's values on both targets (exactly on
    the interpreter), for row counts below, at and past a tile and widths
    below, at and past 64."""
    from relax_xdsl.passes.auto_schedule import TILE_ROWS, tile_columns

    module = legalized(op.matmul, (["n", "k"], "float32"), (["k", width], "float32"))
    cols = tile_columns(next(c for c in Schedule(module, "matmul").computes()))
    assert cols == {"m": 64, 10: None, 16: 16, 40: 32, 130: 64}[width] and TILE_ROWS == 4
    text = rx.print_module(rx.lower(module, "baseline"))
    assert ("memref.alloca" in text) == (cols is not None)
    widths = (1, 63, 64, 130) if width == "m" else (width,)
    for target in ("interp", "c"):
        plain = rx.compile(module, target=target, pipeline=UNSCHEDULED)
        exe = rx.compile(module, target=target, pipeline="baseline")
        for n, k, m in [(1, 1, widths[0]), (4, 5, widths[-1]), (6, 3, widths[1 % len(widths)]),
                        (9, 2, widths[2 % len(widths)])]:
            if target == "interp" and n * m > 600:
                continue  # the interpreter's time
            args = [rand((n, k), seed=n), rand((k, m), seed=m)]
            got, want = exe.main(*args), plain.main(*args)
            if target == "interp":
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("width", "padding"), [
    (16, (1, 1)), pytest.param(20, (0, 2, 1, 0), marks=pytest.mark.slow), pytest.param("w", (1, 1), marks=pytest.mark.slow)])
def test_stride_1_conv_register_tiles(width: Any, padding: tuple[int, ...]) -> None:
    """A stride-1 conv is a contraction auto-schedule tiles: 4 output rows x
    the columns of a tile per output channel, the taps (with their padding
    tests) as the reduction; the unscheduled program's values on both
    targets (exactly on the interpreter) at heights below, at and past a
    tile, widths from 1 and one image or two. (Stride 1 matters: the input
    is contiguous in the output column as in the tap, and the weight
    invariant in it; with stride 2 the column is strided and the taps'
    order stays.)"""
    from relax_xdsl.passes.auto_schedule import auto_schedule

    specs = (["n", 2, "h", width], "float32"), ([3, 2, 3, 3], "float32")
    module = legalized(lambda x, w: op.nn.conv2d(x, w, padding=padding), *specs)
    assert "memref.alloca" in rx.print_module(rx.lower(module, "baseline"))
    assert auto_schedule(legalized(lambda x, w: op.nn.conv2d(x, w, strides=(1, 2), padding=padding), *specs)) == 0
    for target in ("interp", "c"):
        plain = rx.compile(module, target=target, pipeline=UNSCHEDULED)
        exe = rx.compile(module, target=target, pipeline="baseline")
        for n, h, w in [(1, 1, 1), (1, 5, 17), (2, 4, 17), (1, 9, 70)]:
            w = width if isinstance(width, int) else w
            if target == "interp" and n * h * w > 100:
                continue  # the interpreter's time
            if h + padding[0] + padding[-2 if len(padding) == 4 else 0] < 3:
                continue
            args = [rand((n, 2, h, w), seed=h), rand((3, 2, 3, 3), seed=w)]
            got, want = exe.main(*args), plain.main(*args)
            if target == "interp":
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lead", [["b"], ["b", 2]])
def test_batched_matmul_register_tiles(lead: list[Any]) -> None:
    """Batched matmuls (attention's) tile each batch entry: the leading axes
    as loops around the tiles and the leftovers, the outermost the one
    parallel loop; the unscheduled program's values on both targets."""
    from relax_xdsl.passes.auto_schedule import auto_schedule

    module = legalized(op.matmul, ([*lead, "n", "k"], "float32"), ([*lead, "k", "m"], "float32"))
    assert "memref.alloca" in rx.print_module(rx.lower(module, "baseline"))
    scheduled = module.clone()
    auto_schedule(scheduled)
    loops = [line.strip() for line in rx.print_module(scheduled).splitlines() if "tir.for" in line]
    assert loops[0].endswith("parallel {") and sum("parallel" in line for line in loops) == 1
    for target in ("interp", "c"):
        plain = rx.compile(module, target=target, pipeline=UNSCHEDULED)
        exe = rx.compile(module, target=target, pipeline="baseline")
        for b, n, k, m in [(1, 1, 1, 1), (2, 5, 3, 70), (3, 4, 2, 64)]:
            if target == "interp" and b * n * m > 300:
                continue
            shape = [b, *lead[1:]]
            args = [rand((*shape, n, k), seed=n), rand((*shape, k, m), seed=m)]
            got, want = exe.main(*args), plain.main(*args)
            if target == "interp":
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_register_tile_with_an_epilogue_from_python() -> None:
    """Schedule.register_tile on a mean into 2-d (a sum with a dividing
    epilogue), by hand with tiles of 2 x 16, at sizes including 1; and its
    errors."""
    m = legalized(lambda x: op.mean(x, axis=[1]), (["n", "k", "m"], "float32"))
    sch = Schedule(m, "mean")
    sch.register_tile(sch.computes()[0], 2, 16)
    assert "tir.compute" not in rx.print_module(m)
    run_both(m, [(rand((n, k, w), seed=n),) for n, k, w in ((1, 1, 1), (3, 2, 17), (5, 3, 40))],
             lambda x: x.mean(axis=1))
    for body, spec, match in [
        (op.exp, (["n", "m"], "float32"), "reduction into an output of 2 or more axes"),
        (lambda x: op.mean(x, axis=[1]), (["n", "k", "m"], "float16"), "accumulator of the output's element type"),
    ]:
        mod = legalized(body, spec)
        sch = Schedule(mod, next(iter(o.sym_name.data for o in mod.walk() if hasattr(o, "sym_name")
                                      and o.name == "tir.prim_func")))
        with pytest.raises(rx.RelaxError, match=match):
            sch.register_tile(sch.computes()[0], 2, 16)
    with pytest.raises(rx.RelaxError, match="rows, cols >= 1"):
        sch.register_tile(sch.computes()[0], 0, 16)


FUSED = "annotate-op-pattern,fuse-ops,fuse-tir,legalize,{}lower-tir,lower-graph,canonicalize,cse"


def test_fused_matmul_epilogue_is_register_tiled() -> None:
    """fuse-tir writes matmul + bias + relu as one spatial compute summing in
    an inner scf.for; auto-schedule reads it back as a `reduce add` compute
    with that epilogue (reduction_form) and register-tiles it: the values of
    the unscheduled fused program (exactly on the interpreter) at sizes
    including 1 and past a tile, no intermediate buffer."""
    from relax_xdsl.passes.auto_schedule import reduction_form
    from relax_xdsl.passes.pipelines import run_pipeline

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 24], "float32")
        y = op.add(op.matmul(x, fb.param("w", [24, 80], "float32")), fb.param("b", [80], "float32"))
        fb.ret(op.nn.relu(y))
    fused = run_pipeline(fb.module.clone(), "annotate-op-pattern,fuse-ops,fuse-tir,legalize")
    (c,) = [o for o in fused.walk() if o.name == "tir.compute"]
    reduced = reduction_form(c)  # type: ignore[arg-type]
    assert reduced is not None and reduced.combiner is not None and reduced.epilogue is not None
    scheduled = rx.print_module(rx.lower(fb.module, FUSED.format("auto-schedule,")))
    assert "memref.alloca" in scheduled and scheduled.count("memref.alloc(") == 1  # the result only
    for target in ("interp", "c"):
        plain = rx.compile(fb.module, target=target, pipeline=FUSED.format(""))
        exe = rx.compile(fb.module, target=target, pipeline=FUSED.format("auto-schedule,"))
        for n in (1, 5) if target == "interp" else (1, 5, 64):
            args = [rand((n, 24), seed=n), rand((24, 80), seed=2), rand((80,), seed=3)]
            got, want = exe.main(*args), plain.main(*args)
            np.testing.assert_allclose(want, np.maximum(args[0] @ args[1] + args[2], 0), rtol=1e-4, atol=1e-5)
            if target == "interp":
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reduction_form_leaves_other_computes() -> None:
    """Only a sum from 0.0 over a constant extent, adding one term per step,
    is read back as a reduction: a running max, or a spatial compute with no
    loop, stays as it is."""
    from relax_xdsl.passes.auto_schedule import reduction_form
    from relax_xdsl.passes.pipelines import run_pipeline

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 24], "float32")
        fb.ret(op.exp(op.max(x, axis=[1])))
    fused = run_pipeline(fb.module.clone(), "annotate-op-pattern,fuse-ops,fuse-tir,legalize")
    computes = [o for o in fused.walk() if o.name == "tir.compute"]
    assert computes and all(reduction_form(c) is None for c in computes)  # type: ignore[arg-type]
    m = legalized(op.exp, (["n", "m"], "float32"))
    assert reduction_form(Schedule(m, "exp").computes()[0]) is None
