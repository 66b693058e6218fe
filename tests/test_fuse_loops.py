"""fuse-row-loops: loops over the same rows fuse only when each touches what
another writes at its own row; results are unchanged at every size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.passes.fuse_loops import fuse_row_loops
from relax_xdsl.passes.pipelines import run_pipeline
from util import SIZES, assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.tir_builder import PrimFuncBuilder


def two_computes(second: Any) -> Any:
    """tmp = a * 2 (a row loop), then out = second(tmp) (another row loop)."""
    pb = PrimFuncBuilder("prog", [("a", ["n", 4], "float32"), ("out", ["n", 4], "float32")])
    a, out = pb.params
    tmp = pb.alloc(["n", 4], "float32")
    pb.compute(tmp, lambda i, j: a[i, j] * 2.0)
    pb.compute(out, lambda i, j: second(tmp, i, j))
    prog = pb.finish()
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(prog)
        x = fb.param("x", ["n", 4], "float32")
        fb.ret(fb.call_tir("prog", [x], TensorType.of(["n", 4], "float32")))
    return fb.module


@pytest.mark.parametrize(("second", "fuses", "reference"), [
    (lambda t, i, j: t[i, 3 - j] + 1.0, True, lambda x: (2 * x)[:, ::-1] + 1),  # same row, other column
    (lambda t, i, j: t[0, j] + t[i, j], False, lambda x: 2 * x[:1] + 2 * x),  # row 0 of what the first writes
], ids=["own-row", "other-row"])
def test_fuses_only_row_local_dependences(second: Any, fuses: bool, reference: Any) -> None:
    module = two_computes(second)
    loops = run_pipeline(module.clone(), "legalize,lower-tir")
    assert fuse_row_loops(loops) == (1 if fuses else 0)
    exe = rx.compile(module, pipeline="legalize,lower-tir,fuse-row-loops,lower-graph")
    for n in SIZES:
        x = rand((n, 4), seed=n)
        assert_close(exe.main(x), reference(x).astype(np.float32))


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "layer_norm", "rms_norm"])
def test_row_ops_are_one_loop(name: str) -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8], "float32")
        g = fb.const(np.linspace(0.5, 1.5, 8, dtype=np.float32))
        if name in ("softmax", "log_softmax"):
            y = getattr(op.nn, name)(x, axis=-1)
        elif name == "layer_norm":
            y = op.nn.layer_norm(x, g, g, axes=[-1])
        else:
            y = op.nn.rms_norm(x, g, axes=[-1])
        fb.ret(y)
    loops = run_pipeline(fb.module.clone(), "legalize,lower-tir")
    assert fuse_row_loops(loops) >= 1
    prog = next(o for o in loops.body.ops if o.name == "func.func" and o.sym_name.data == name)
    assert sum(o.name == "scf.parallel" for o in prog.body.block.ops) == 1
    exe = rx.compile(fb.module, pipeline="fast")
    for n in SIZES:
        v = rand((n, 8), seed=n)
        assert_close(exe.main(v), rx.evaluate(fb.module, "main", v))


@pytest.mark.parametrize("shape", [["n", 4, 16], ["n", 2, 4, 16]])
def test_rows_under_a_batch_loop_stay_separate_passes(shape: list) -> None:
    """With the batch outside the rows ([n, rows, cols], [n, heads, rows,
    cols]) the row loops are not fused: one fused loop over n would give
    all of an image's rows to one thread at batch 1. Each pass is instead
    collapsed over n x the next axis (both threads busy), and the output
    row runs as `omp simd` (schedule-loops)."""
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.nn.softmax(fb.param("x", shape, "float32"), axis=-1))
    loops = run_pipeline(fb.module.clone(), "legalize,lower-tir")
    assert fuse_row_loops(loops) == 0
    exe = rx.compile(fb.module, target="c")
    body = exe.c_source[exe.c_source.index("int rxf_softmax(const"):]
    assert body.count("#pragma omp parallel for collapse(2)") == 3
    assert "#pragma omp simd\n" in body
    for n in SIZES:
        v = rand((n, *shape[1:]), seed=n) * 4
        assert_close(exe.main(v), rx.evaluate(fb.module, "main", v))
