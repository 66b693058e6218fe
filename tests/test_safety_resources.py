"""Resources (issue "Safety of generated code", item 6): importing an ONNX
model holds only the folded constants still needed and counts them against
the allocation limit; memory planning stays fast and valid on long chains of
distinct symbolic sizes; register tiles too large for the stack are heap
buffers per iteration, freed inside the loop that allocates them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from relax_xdsl.passes.legalize import legalize_module
from relax_xdsl.passes.memory_planning import MemoryPlan, _provably_ge, symbolic_max
from util import rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.schedule import Schedule
from relax_xdsl.shape import sym

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from memory_planning_scaling import concat_exp_chain  # noqa: E402

UNSCHEDULED = "legalize,lower-tir,lower-graph,canonicalize,cse"

# --- memory planning on a chain of growing, distinctly sized buffers ---------------


def test_growing_ceilings_compare_by_monotonicity() -> None:
    """64*ceiling(x/16) grows with x: the planner proves the chain's sizes
    and live totals ordered (it could not, and kept every one in a Max that
    sympy then simplified pairwise for minutes)."""
    n = [sym(f"n{k}") for k in range(4)]
    small, large = 64 * sympy.ceiling((n[0] + n[1]) / 16), 64 * sympy.ceiling((n[0] + n[1] + n[2]) / 16)
    assert _provably_ge(large, small) and not _provably_ge(small, large)
    assert _provably_ge(small + large, 2 * small)
    assert not _provably_ge(2 * small, small + large)
    # a ceiling is not below its argument's bound by more than 1: not provable either way
    assert not _provably_ge(64 * sympy.ceiling(n[0] / 16), 4 * n[0] + 64)
    tops = [k * large for k in (1, 2, 3)] + [small, 2 * small]
    assert symbolic_max(tops) == 3 * large


def chain_plan(steps: int) -> tuple[MemoryPlan, list[sympy.Expr], list[sympy.Symbol]]:
    """The benchmark chain's buffers as lower-graph takes and releases
    them: concat_k (4 * (n0 + .. + nk) bytes) while exp_{k-1} is alive, then
    exp_k while concat_k is."""
    n = [sym(f"n{k}") for k in range(steps + 1)]
    plan = MemoryPlan()
    prev = None
    for k in range(1, steps + 1):
        cat = plan.take(4 * sum(n[: k + 1]))
        if prev is not None:
            plan.release(prev)
        prev = plan.take(4 * sum(n[: k + 1]))
        plan.release(cat)
    return plan, plan.place(), n


def test_long_chain_placement_is_valid_at_every_sampled_binding() -> None:
    plan, offsets, n = chain_plan(40)
    rng = np.random.default_rng(0)
    bindings = [dict.fromkeys(n, 1), dict.fromkeys(n, 17)] + [
        {s: int(v) for s, v in zip(n, rng.integers(1, 300, len(n)))} for _ in range(6)]
    for env in bindings:
        spans = [(int(o.xreplace(env)), int((o + b.size).xreplace(env)), b) for o, b in zip(offsets, plan.buffers)]
        pool, peak = int(plan.pool.xreplace(env)), int(plan.peak.xreplace(env))
        assert peak <= pool
        for i, (lo, hi, a) in enumerate(spans):
            assert lo % 64 == 0 and 0 <= lo <= hi <= pool
            for lo2, hi2, b in spans[i + 1:]:
                alive_together = a.start < (b.end or 1 << 30) and b.start < (a.end or 1 << 30)
                assert not (alive_together and lo < hi2 and lo2 < hi), env
    # two live buffers at a time: the pool is the live peak, no more
    assert plan.pool == plan.peak


@pytest.mark.parametrize(("target", "steps"), [("interp", 12), ("c", 16), pytest.param("c", 40, marks=pytest.mark.slow)])
def test_long_chain_compiles_and_matches_the_evaluator(target: str, steps: int) -> None:
    """The benchmark's chain with tanh for exp (iterated exp overflows):
    the planned executable against the evaluator, at all sizes 1 and at
    random small ones; the pool is the live peak."""
    fb = concat_exp_chain(steps, op.tanh)
    exe = rx.compile(fb.module, target=target)
    main = next(o for o in rx.lower(fb.module).body.ops if o.name == "func.func" and o.sym_name.data == "main")
    plan = main.attributes["relax.memory_plan"].data
    pool, peak = plan["pool_bytes"].data[0], plan["peak_live_bytes"].data[0]
    rng = np.random.default_rng(1)
    for sizes in ([1] * (steps + 1), [int(v) for v in rng.integers(1, 6, steps + 1)]):
        args = [rand((s,), seed=k) for k, s in enumerate(sizes)]
        got, want = exe.main(*args), rx.evaluate(fb.module, "main", *args)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        env = {s: sizes[int(s.name[1:])] for s in pool.free_symbols | peak.free_symbols}
        assert int(pool.xreplace(env)) == int(peak.xreplace(env))


# --- register tiles on the heap -------------------------------------------------------


def tiled_matmul(rows: int, cols: int, lead: list[Any]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.matmul(fb.param("a", [*lead, "n", "k"], "float32"), fb.param("b", [*lead, "k", "m"], "float32")))
    module = legalize_module(fb.module)
    sch = Schedule(module, "matmul")
    sch.register_tile(sch.computes()[0], rows, cols)
    return module


@pytest.mark.parametrize(("rows", "cols", "lead"), [(64, 128, []), (128, 64, []), (65, 70, []), (1, 4097, []),
                                                    (64, 128, ["b"])])
def test_heap_register_tiles_match_the_unscheduled_program(rows: int, cols: int, lead: list[Any]) -> None:
    """Tiles above lower-tir's stack limit (4096 elements) are a heap buffer
    per iteration of the row-block loop, freed at the end of that iteration
    (the free was put after the loops, where the buffer is out of scope: a
    KeyError in both backends); in C, inside an OpenMP loop, a failed
    allocation skips the iteration and is reported after it."""
    module = tiled_matmul(rows, cols, lead)
    text = rx.print_module(rx.lower(module, "lower-tir"))
    assert "memref.alloca" not in text and text.count("memref.dealloc") == 1
    lines = text[text.index("func.func @matmul"):].splitlines()
    at = next(i for i, line in enumerate(lines) if "memref.dealloc" in line)
    # freed last in the loop body that allocates it, not after the loops
    assert lines[at].startswith(" " * 8) and lines[at + 1].strip() in ("scf.reduce", "}")
    for target in ("interp", "c"):
        plain = rx.compile(module, target=target, pipeline=UNSCHEDULED)
        exe = rx.compile(module, target=target)
        # the interpreter's time: one tile and its leftovers
        sizes = [(rows + 1, 1, cols + 1)] if target == "interp" else \
            [(1, 2, 3), (rows, 3, cols), (2 * rows + 5, 7, 2 * cols + 1)]
        for n, k, m in sizes:
            shape = [1 if target == "interp" else 2] if lead else []
            args = [rand((*shape, n, k), seed=n), rand((*shape, k, m), seed=m)]
            got, want = exe.main(*args), plain.main(*args)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
