"""relax_xdsl.compile end to end: pipelines, partial legalization, a
hand-written tensor program beside legalized ops, result structure, and
input checking (ShapeError / TypeError naming input, dim, expression and
bound values) on both targets."""

from __future__ import annotations

import numpy as np
import pytest
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.passes.legalize import legalize_module
from relax_xdsl.passes.pipelines import PIPELINES, run_pipeline
from util import SIZES, assert_close, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.tir_builder import PrimFuncBuilder

TARGETS = ("interp", "c")


def small_graph() -> rx.FunctionBuilder:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4], "float32")
        y = fb.param("y", [4, "m"], "float32")
        z = op.nn.relu(op.matmul(x, y))
        fb.ret(fb.tuple(op.add(z, z), op.exp(x)))
    return fb


def test_pipelines_print_and_parse_after_every_pass() -> None:
    module = small_graph().module
    for spec in PIPELINES["debug"].split(","):
        module = run_pipeline(module, spec)
        roundtrip(module)


@pytest.mark.parametrize("target", TARGETS)
def test_tuple_results_and_sizes(target: str) -> None:
    module = small_graph().module
    exe = rx.compile(module, target=target)
    for n, m in zip(SIZES, reversed(SIZES)):
        x, y = rand((n, 4), seed=n), rand((4, m), seed=m + 10)
        got = exe.main(x, y)
        assert isinstance(got, tuple) and len(got) == 2
        z = np.maximum(x @ y, 0)
        assert_close(got, (z + z, np.exp(x)))


def test_partial_legalization_stays_valid_and_runs() -> None:
    module = small_graph().module
    legalize_module(module, ["matmul"])
    text = rx.print_module(module)
    assert "relax.call_tir @matmul" in text
    assert "relax.relu" in text and "relax.add" in text and "relax.exp" in text
    again = roundtrip(module)
    x, y = rand((3, 4)), rand((4, 5), seed=1)
    z = np.maximum(x @ y, 0)
    assert_close(rx.evaluate(again, "main", x, y), (z + z, np.exp(x)))
    assert_close(rx.compile(again, target="c").main(x, y), (z + z, np.exp(x)))


def hand_written_module() -> rx.FunctionBuilder:
    """A user's tensor program (row-wise scaled sum) called beside legalized ops."""
    pb = PrimFuncBuilder("scale_rows", [("a", ["n", "k"], "float32"), ("s", ["n"], "float32"),
                                        ("out", ["n", "k"], "float32")])
    a, s, out = pb.params
    pb.compute(out, lambda i, j: a[i, j] * s[i] + 1.0)
    prog = pb.finish()
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(prog)
        x = fb.param("x", ["n", "k"], "float32")
        s = fb.param("s", ["n"], "float32")
        h = op.exp(x)
        y = fb.call_tir("scale_rows", [h, s], TensorType.of(["n", "k"], "float32"))
        fb.ret(op.nn.softmax(y, axis=-1))
    return fb


@pytest.mark.parametrize("target", TARGETS)
def test_hand_written_tensor_program_beside_legalized_ops(target: str) -> None:
    module = hand_written_module().module
    exe = rx.compile(module, target=target)
    for n, k in zip(SIZES, reversed(SIZES)):
        x, s = rand((n, k), seed=n), rand((n,), seed=k)
        y = np.exp(x) * s[:, None] + 1.0
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        assert_close(exe["main"](x, s), (e / e.sum(axis=-1, keepdims=True)).astype(np.float32))


@pytest.mark.parametrize("target", TARGETS)
def test_bad_inputs_are_named(target: str) -> None:
    exe = rx.compile(small_graph().module, target=target)
    with pytest.raises(rx.ShapeError, match=r"input 'x'.*dim 1.*4"):
        exe.main(rand((3, 5)), rand((4, 2)))
    with pytest.raises(rx.ShapeError, match=r"input 'y'.*dim 0"):
        exe.main(rand((3, 4)), rand((3, 2)))
    with pytest.raises(rx.ShapeError, match=r"rank"):
        exe.main(rand((3, 4, 1)), rand((4, 2)))
    with pytest.raises(TypeError, match=r"input 'x'.*float32.*float64"):
        exe.main(rand((3, 4)).astype(np.float64), rand((4, 2)))
    with pytest.raises(TypeError, match=r"takes 2 inputs"):
        exe.main(rand((3, 4)))


@pytest.mark.parametrize("target", TARGETS)
def test_inconsistent_symbol_bindings(target: str) -> None:
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n", 2], "float32")
        b = fb.param("b", ["n", 2], "float32")
        fb.ret(op.add(a, b))
    exe = rx.compile(fb.module, target=target)
    with pytest.raises(rx.ShapeError, match=r"input 'b'.*dim 0.*n = 3.*n=3"):
        exe.main(rand((3, 2)), rand((4, 2)))


@pytest.mark.parametrize("target", TARGETS)
def test_runtime_assumption_is_checked_in_kernels(target: str) -> None:
    """[n] + [m] cannot be proven equal: the kernel checks it at run time."""
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n"], "float32")
        b = fb.param("b", ["m"], "float32")
        fb.ret(op.add(a, b))
    exe = rx.compile(fb.module, target=target)
    assert_close(exe.main(rand((3,)), rand((3,), seed=1)), rand((3,)) + rand((3,), seed=1))
    with pytest.raises(rx.ShapeError):
        exe.main(rand((3,)), rand((4,)))


def test_non_contiguous_inputs_are_handled() -> None:
    exe = rx.compile(small_graph().module, target="c")
    x = np.asfortranarray(rand((3, 4)))
    y = rand((4, 6))[:, ::3]
    assert not x.flags.c_contiguous and not y.flags.c_contiguous
    z = np.maximum(x @ y, 0)
    assert_close(exe.main(x, y), (z + z, np.exp(x)))


def test_unknown_target_and_function() -> None:
    module = small_graph().module
    with pytest.raises(rx.RelaxError, match="unknown target"):
        rx.compile(module, target="gpu")
    exe = rx.compile(module, target="c")
    with pytest.raises(KeyError, match="no graph function @nope"):
        exe["nope"]


AXPY_C = """
void test_axpy(float* x, float* y, float* out, int64_t nx, int64_t ny, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = 2.0f * x[i] + y[i];
}
"""


def _axpy_ref(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    out[...] = 2.0 * x + y


@pytest.mark.parametrize("target", TARGETS)
def test_library_call_beside_legalized_ops(target: str) -> None:
    from relax_xdsl.dialects.lib import LibFuncOp
    from relax_xdsl.dialects.tir import BufferType

    from relax_xdsl.libraries import register_library_function

    register_library_function("test.axpy", _axpy_ref, c_source=AXPY_C)
    buf = BufferType.of(["n"], "float32")
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(LibFuncOp("axpy", [buf, buf, buf], "test_axpy", "test", reference="test.axpy"))
        x = fb.param("x", ["n"], "float32")
        y = op.exp(x)
        z = fb.call_lib("axpy", [x, y], TensorType.of(["n"], "float32"))
        fb.ret(op.relu(z))
    exe = rx.compile(roundtrip(fb.module), target=target)
    for n in SIZES:
        x = rand((n,), seed=n)
        assert_close(exe.main(x), np.maximum(2 * x + np.exp(x), 0))


def test_library_without_c_implementation_is_a_clear_error() -> None:
    from relax_xdsl.dialects.lib import LibFuncOp
    from relax_xdsl.dialects.tir import BufferType

    from relax_xdsl.libraries import register_library_function

    register_library_function("test.ref_only", _axpy_ref)
    buf = BufferType.of(["n"], "float32")
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(LibFuncOp("f", [buf, buf, buf], "test_ref_only", "test", reference="test.ref_only"))
        x = fb.param("x", ["n"], "float32")
        fb.ret(fb.call_lib("f", [x, x], TensorType.of(["n"], "float32")))
    assert_close(rx.compile(fb.module, target="interp").main(rand((3,))), 3 * rand((3,)))
    with pytest.raises(rx.RelaxError, match="no C implementation"):
        rx.compile(fb.module, target="c")


@pytest.mark.parametrize("target", TARGETS)
def test_shape_values(target: str) -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3], "float32")
        y = op.reshape(x, [-1])
        fb.ret(fb.tuple(fb.shape_of(y), y))
    exe = rx.compile(fb.module, target=target)
    x = rand((4, 3))
    shape, flat = exe.main(x)
    assert shape == (12,) == rx.evaluate(fb.module, "main", x)[0]
    assert_close(flat, x.reshape(-1))


def test_a_large_module_compiles_as_two_units(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """Above SPLIT_BYTES of function text the C compiles as two translation
    units side by side: the tensor programs that call no carried library
    source in the second, the library's source and its callers (the host
    function) in the first only. Lowered here so a small module splits."""
    from relax_xdsl.dialects.lib import LibFuncOp
    from relax_xdsl.dialects.tir import BufferType

    from relax_xdsl.backend import c_emitter
    from relax_xdsl.libraries import register_library_function

    monkeypatch.setattr(c_emitter, "SPLIT_BYTES", 1)
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(tmp_path))
    register_library_function("test.axpy", _axpy_ref, c_source=AXPY_C)
    buf = BufferType.of(["n"], "float32")
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(LibFuncOp("axpy", [buf, buf, buf], "test_axpy", "test", reference="test.axpy"))
        x = fb.param("x", ["n"], "float32")
        y = op.exp(op.sigmoid(x))
        z = fb.call_lib("axpy", [x, y], TensorType.of(["n"], "float32"))
        fb.ret(op.tanh(op.relu(z)))
    exe = rx.compile(fb.module, target="c", pipeline="baseline")
    emitter = c_emitter.CEmitter(exe.loops)
    emitter.emit()
    assert emitter.units is not None
    first, second = emitter.units
    assert first.count("void test_axpy(") == 1 and "void test_axpy(" not in second
    assert "test_axpy(" not in second  # its callers stay with it
    assert "int rxf_" in second and "int rxf_main(" in first
    for n in SIZES:
        x = rand((n,), seed=n)
        assert_close(exe.main(x), np.tanh(np.maximum(2 * x + np.exp(1 / (1 + np.exp(-x))), 0)))
