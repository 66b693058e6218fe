"""Shared test helpers: the float32 tolerance (stated once), the sizes every
symbolic dim is bound to, and round-trip checking."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx

RTOL = 1e-4
ATOL = 1e-5
SIZES = (1, 3, 7)
"""Bindings for symbolic dims: always including 1."""


def assert_close(actual: object, expected: object) -> None:
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e)
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_array_equal(actual, expected)


def roundtrip(module: ModuleOp) -> ModuleOp:
    """print -> parse -> print must be the identity; returns the reparsed module."""
    text = rx.print_module(module)
    again = rx.parse_module(text)
    again_text = rx.print_module(again)
    if again_text != text:
        import difflib
        diff = "\n".join(difflib.unified_diff(text.splitlines(), again_text.splitlines(), lineterm="", n=0))
        raise AssertionError(f"printing the parsed module changed it:\n{diff}")
    return again


def rand(shape: tuple[int, ...], dtype: str = "float32", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith("int"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


LEVELS = ("legalized", "interp", "c")
"""Every level an op is checked at, against the reference evaluator."""


def gemm_pipeline(route: str) -> str:
    """The default pipeline with offload's GEMM route `route` (passes/offload.py's GEMM_ROUTES)."""
    from relax_xdsl.passes.pipelines import PIPELINES

    return PIPELINES["default"].replace("offload{lib=blas}", f"offload{{lib=blas gemm={route}}}")


LEAD = {2: [], 3: [2], 4: [2, 3]}
"""x's dims before the batch and k in dense_module, per rank: the GEMM's rows are their product with the batch."""


def dense_module(rank: int, epilogue: str, k: int = 6, n: int = 5, weights: str = "constant", seed: int = 3) -> Any:
    """x [*LEAD, b, k] @ W [k, n] (+ bias [n]) (+ relu | gelu): a dense layer,
    its W and bias constants (W computed from a parameter with
    `weights="computed"`), `epilogue` one of "", bias, bias_relu, bias_gelu."""
    from relax_xdsl import op

    rng = np.random.default_rng(seed)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [*LEAD[rank], "b", k], "float32")
        w = fb.const(rng.standard_normal((k, n)).astype(np.float32)) if weights == "constant" else \
            op.multiply(fb.param("w", [k, n], "float32"), fb.const(np.float32(2.0)))
        y = op.matmul(x, w)
        if epilogue:
            y = op.add(y, fb.const(rng.standard_normal(n).astype(np.float32)))
        if epilogue in ("bias_relu", "bias_gelu"):
            y = op.nn.relu(y) if epilogue == "bias_relu" else op.nn.gelu(y)
        fb.ret(y)
    return fb.module


def check_levels(module: ModuleOp, cases: list[tuple[np.ndarray, ...]], levels: tuple[str, ...] = LEVELS,
                 func: str = "main") -> None:
    """Runs `func` on each input tuple (one per binding of the symbols) with
    the reference evaluator, then checks every level against it:
    - legalized: every graph op legalized to call_tir (printed, reparsed),
      evaluated with tensor programs run by the interpreter;
    - interp / c: one executable per target from `relax_xdsl.compile`,
      called on every case: C on the default (optimizing) pipeline, what
      users run; the interpreter on `baseline`, so each op's own generated
      kernel is checked too (BLAS offload and fusion would replace some)."""
    from relax_xdsl.passes.legalize import legalize_module

    expected = [rx.evaluate(module, func, *args) for args in cases]
    if "legalized" in levels:
        legal = roundtrip(legalize_module(module.clone()))
        for args, exp in zip(cases, expected):
            assert_close(rx.evaluate(legal, func, *args), exp)
    for target in ("interp", "c"):
        if target in levels:
            exe = rx.compile(module, target=target, pipeline="baseline" if target == "interp" else "default")
            for args, exp in zip(cases, expected):
                assert_close(exe[func](*args), exp)


LEGALIZED_RELU = """builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    %0 = relax.call_tir @relu(%x) : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %0 : !relax.tensor<[n, 4], f32>
  }
  tir.prim_func @relu(%x: !tir.buffer<[n, 4], f32>, %out: !tir.buffer<[n, 4], f32>) {
    tir.compute %out : !tir.buffer<[n, 4], f32> {
    ^bb0(%0: index, %1: index):
      %2 = tir.load %x[%0, %1] : !tir.buffer<[n, 4], f32>
      tir.yield %2 : f32
    }
  }
}
"""
"""relu on [n, 4] as a graph function calling its tensor program: the
base that textual-IR error tests break in one place each."""


def onnx_model(nodes: list[object], inputs: list[tuple[str, int, list[object]]], outputs: list[str],
               inits: dict[str, np.ndarray] | None = None, opset: int = 17, ir_version: int | None = None) -> object:
    """An ONNX model of `nodes` (onnx.helper): typed inputs (str dims are
    symbolic), outputs of unknown type, initializers; IR version 8, or 10
    from opset 21 on, unless given."""
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version if ir_version is not None else (8 if opset < 21 else 10)
    return m


def check_against_onnxruntime(m: Any, calls: list[dict[str, np.ndarray]], target: str, pipeline: str = "default",
                              exact: bool = False, rtol: float = 1e-6) -> ModuleOp:
    """Every call of one executable compiled from ONNX model `m` (and of the
    reference evaluator) equals onnxruntime: as many outputs, of the same
    shapes, and with `exact` the compiled dtype and every value equal, else
    values within `rtol`. Returns the imported module."""
    import onnxruntime as ort

    def outs(r: Any) -> tuple[Any, ...]:
        return r if isinstance(r, tuple) else (r,)

    module = rx.from_onnx(m)
    sess = ort.InferenceSession(m.SerializeToString())
    exe = rx.compile(module, target=target, pipeline=pipeline)
    for feeds in calls:
        want = sess.run(None, feeds)
        got = outs(exe.main(*feeds.values()))
        ref = outs(rx.evaluate(module, "main", *feeds.values()))
        assert len(got) == len(ref) == len(want)
        for g, r, w in zip(got, ref, want):
            assert g.shape == w.shape and r.shape == w.shape
            if exact:
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g, w)
                np.testing.assert_array_equal(r, w)
            else:
                np.testing.assert_allclose(g, w, rtol=rtol)
                np.testing.assert_allclose(r, w, rtol=rtol)
    return module


def call_concurrently(call: Callable[[int], None], count: int) -> None:
    """Runs call(0) .. call(count - 1) on threads started together (a
    barrier), then re-raises the first error any of them raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def work(k: int) -> None:
        try:
            start.wait()
            call(k)
        except BaseException as err:  # noqa: BLE001 - reported by the calling thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
