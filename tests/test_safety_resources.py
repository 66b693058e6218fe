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
    # baseline: the default pipeline fuses the whole chain into one kernel, leaving nothing to plan
    exe = rx.compile(fb.module, target=target, pipeline="baseline")
    loops = rx.lower(fb.module, "baseline")
    main = next(o for o in loops.body.ops if o.name == "func.func" and o.sym_name.data == "main")
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
        exe = rx.compile(module, target=target, pipeline="baseline")
        # the interpreter's time: one tile and its leftovers
        sizes = [(rows + 1, 1, cols + 1)] if target == "interp" else \
            [(1, 2, 3), (rows, 3, cols), (2 * rows + 5, 7, 2 * cols + 1)]
        for n, k, m in sizes:
            shape = [1 if target == "interp" else 2] if lead else []
            args = [rand((*shape, n, k), seed=n), rand((*shape, k, m), seed=m)]
            got, want = exe.main(*args), plain.main(*args)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --- import-time memory of constant folding ---------------------------------------------

FOLD_MODELS = '''
import numpy as np
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def expands(count: int, consumed: bool) -> bytes:
    """`count` Expands of a scalar constant to 1000 x 1000 (each foldable:
    1M elements); dead, or each consumed by a ReduceSum (folded to a scalar)
    summed into the output."""
    nodes = [helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.array(1.0, np.float32))),
             helper.make_node("Constant", [], ["big"],
                              value=numpy_helper.from_array(np.array([1000, 1000], np.int64)))]
    acc = "x"
    for k in range(count):
        nodes.append(helper.make_node("Expand", ["one", "big"], [f"e{k}"], name=f"expand_{k}"))
        if consumed:
            nodes.append(helper.make_node("ReduceSum", [f"e{k}"], [f"s{k}"], keepdims=0))
            nodes.append(helper.make_node("Add", [acc, f"s{k}"], [f"acc{k}"]))
            acc = f"acc{k}"
    nodes.append(helper.make_node("Identity", [acc], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ["n"])],
                              [helper.make_tensor_value_info("y", F, ["n"])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()
'''


def fold_model(count: int, consumed: bool) -> bytes:
    scope: dict[str, Any] = {}
    exec(compile(FOLD_MODELS, "fold_models", "exec"), scope)  # test-local source, not IR or model text
    return scope["expands"](count, consumed)


@pytest.mark.parametrize(("count", "consumed"), [(200, False), (60, True)])
def test_folding_holds_only_live_values(count: int, consumed: bool, tmp_path: Path) -> None:
    """A 5 KB model of 200 dead 1M-element Expands took 800 MB to import
    (every folded value kept); dead nodes are not folded and a value is
    dropped after its last use. Peak traced memory of the import, in a
    fresh process: under 100 MB (each Expand alone is 4 MB)."""
    pytest.importorskip("onnx")
    import subprocess

    path = tmp_path / "expands.onnx"
    path.write_bytes(fold_model(count, consumed))
    assert path.stat().st_size < 20_000
    script = f"""
import tracemalloc, numpy as np
import relax_xdsl as rx
from relax_xdsl.frontend import onnx_ops  # imported before tracing starts
import onnx
tracemalloc.start()
module = rx.from_onnx({str(path)!r})
print(tracemalloc.get_traced_memory()[1])
x = np.arange(3, dtype=np.float32)
print(float(rx.evaluate(module, "main", x)[0]))
"""
    out = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, check=True).stdout.split()
    peak, first = int(out[0]), float(out[1])
    assert peak < 100 << 20, f"import peak {peak / 2**20:.0f} MB"
    assert first == (count * 1e6 if consumed else 0.0)


def test_a_folded_value_over_the_limit_names_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    monkeypatch.setenv("RELAX_XDSL_MAX_ALLOC_BYTES", str(3 << 20))  # under one 4 MB Expand
    with pytest.raises(rx.ResourceLimitError, match=r"node 'expand_0' \(Expand\).*4000000 bytes.*3145728"):
        rx.from_onnx(fold_model(1, True))


def test_folded_values_held_at_once_count_against_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 4 MB folded values alive together (the second Expand's input
    keeps the first) pass one at a time under a 6 MB limit but not at once;
    consumed one by one, many pass."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    monkeypatch.setenv("RELAX_XDSL_MAX_ALLOC_BYTES", str(6 << 20))
    rx.from_onnx(fold_model(5, True))
    m = onnx.load_from_string(fold_model(2, False))
    g = m.graph
    g.node.append(helper.make_node("Add", ["e0", "e1"], ["both"], name="add_both"))
    g.node.append(helper.make_node("ReduceSum", ["both"], ["total"], keepdims=0))
    g.node.append(helper.make_node("Add", ["x", "total"], ["z"]))
    g.output.append(helper.make_tensor_value_info("z", 1, ["n"]))
    with pytest.raises(rx.ResourceLimitError, match=r"node 'expand_1' \(Expand\): the values folded at import time "
                                                    r"and still needed hold 80000\d\d bytes"):
        rx.from_onnx(m)
