"""relax.call_tir_inplace: outputs alias chosen inputs (TVM Relax's in-place
call). Printed and parsed back, evaluated, lowered without alloc or copy of
the aliased output, compiled for both targets and pipelines; a parameter is
written in the caller's array; hostile uses are verifier errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from relax_xdsl.dialects.tir import StoreOp
from util import assert_close, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import IRParseError
from relax_xdsl.tir_builder import PrimFuncBuilder

F32 = "float32"


def add_one() -> object:
    """x[i] += 1 in place; `extra` buffers: a fresh [n] output = x + 2 as well."""
    pb = PrimFuncBuilder("add_one", [("x", ["n"], F32)])
    (x,) = pb.params
    pb.for_each(["n"], lambda i: pb.emit(StoreOp((x[i] + 1.0).value, x.value, [i.value])))
    return pb.finish()


def add_one_and_two() -> object:
    """x[i] += 1 in place and a fresh output y = old x + 2."""
    pb = PrimFuncBuilder("add_one_and_two", [("x", ["n"], F32), ("y", ["n"], F32)])
    x, y = pb.params

    def body(i: object) -> None:
        old = x[i]
        pb.emit(StoreOp((old + 2.0).value, y.value, [i.value]))  # type: ignore[attr-defined]
        pb.emit(StoreOp((old + 1.0).value, x.value, [i.value]))  # type: ignore[attr-defined]

    pb.for_each(["n"], body)
    return pb.finish()


def on_intermediate() -> rx.FunctionBuilder:
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(add_one_and_two())
        a = fb.param("a", ["n"], F32)
        e = op.exp(a)
        q = op.negative(e)  # read before the in-place write; fusion must not move it after
        x, y = fb.call_tir_inplace("add_one_and_two", [e], [0, -1], [e.type, e.type])
        fb.ret(op.add(op.multiply(x, y), q))
    return fb


def expected_intermediate(a: np.ndarray) -> np.ndarray:
    e = np.exp(a)
    return ((e + 1) * (e + 2) - e).astype(np.float32)


def on_parameter() -> rx.FunctionBuilder:
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(add_one())
        a = fb.param("a", ["n"], F32)
        fb.ret(fb.call_tir_inplace("add_one", [a], 0))
    return fb


def test_print_parse_round_trip() -> None:
    module = on_intermediate().module
    text = rx.print_module(module)
    assert "relax.call_tir_inplace @add_one_and_two(%0) {inplace_indices = array<i64: 0, -1>}" in text
    assert rx.print_module(rx.parse_module(text)) == text


def test_evaluator_returns_the_updated_input() -> None:
    a = np.linspace(-1, 1, 5, dtype=np.float32)
    assert_close(rx.evaluate(on_intermediate().module, "main", a), expected_intermediate(a))
    b = a.copy()
    out = rx.evaluate(on_parameter().module, "main", b)
    assert_close(out, a + 1)
    assert_close(b, a + 1)  # the caller's array is written, as on the compiled targets


@pytest.mark.parametrize(("target", "pipeline"), [("interp", "baseline"), ("c", "baseline"), ("c", "default"),
                                                  ("interp", "default")])
def test_compiled_matches_evaluator(target: str, pipeline: str) -> None:
    module = roundtrip(on_intermediate().module)
    exe = rx.compile(module, target=target, pipeline=pipeline)
    for n in (1, 7):
        a = np.linspace(-1, 1, n, dtype=np.float32)
        assert_close(exe.main(a), expected_intermediate(a))


def test_lowered_host_has_no_alloc_or_copy_for_the_aliased_output() -> None:
    host = rx.print_module(rx.lower(on_intermediate().module, "baseline")).split("func.func @main(")[1]
    host = host.split("\n  }\n")[0]
    call = next(line for line in host.splitlines() if "func.call @add_one_and_two(" in line)
    exp_buffer = next(line for line in host.splitlines() if "func.call @exp(" in line).split(", ")[1].split(")")[0]
    assert call.split("(")[1].startswith(exp_buffer + ",")  # the program writes the exp's buffer
    assert "memref.copy" not in host


@pytest.mark.parametrize("target", ["interp", "c"])
def test_parameter_written_in_caller_array_result_owned(target: str) -> None:
    exe = rx.compile(on_parameter().module, target=target)
    a = np.arange(4, dtype=np.float32)
    out = exe.main(a)
    assert_close(a, np.arange(4, dtype=np.float32) + 1)
    assert_close(out, a)
    assert not np.shares_memory(out, a)  # the returned result is the caller's own copy
    out[0] = 100
    assert a[0] == 1


@pytest.mark.parametrize("bad", ["readonly", "strided", "list"])
def test_parameter_must_be_the_callers_writeable_array(bad: str) -> None:
    exe = rx.compile(on_parameter().module, target="c")
    base = np.arange(8, dtype=np.float32)
    a: object
    if bad == "readonly":
        a = base[:4].copy()
        a.flags.writeable = False  # type: ignore[attr-defined]
    elif bad == "strided":
        a = base[::2]
    else:
        a = [1.0, 2.0]
    with pytest.raises(TypeError, match=r"input 'a' is written in place"):
        exe.main(a)
    with pytest.raises(TypeError, match=r"input 'a' is written in place"):
        rx.evaluate(on_parameter().module, "main", a)


def test_constant_is_copied_before_the_write() -> None:
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(add_one())
        a = fb.param("a", ["n"], F32)
        c = fb.match_cast(fb.const(np.zeros(3, np.float32)), ["n"])
        fb.ret(op.add(fb.call_tir_inplace("add_one", [c], 0), a))
    exe = rx.compile(fb.module, target="c")
    a = np.ones(3, np.float32)
    for _ in range(2):  # the constant's global is left as it was
        assert_close(exe.main(a), np.full(3, 2, np.float32))


HOSTILE = {
    "index out of range": ("array<i64: 3>", "(A) -> A", r"output 0 aliases input 3, out of range"),
    "two outputs, one input": ("array<i64: 0, 0>", "(A) -> (A, A)", r"outputs 0 and 1 both alias input 0"),
    "type mismatch": ("array<i64: 0>", "(A) -> !relax.tensor<[n, 1], f32>", r"exactly its input's type"),
    "count": ("array<i64: 0, -1>", "(A) -> A", r"2 inplace_indices for 1 outputs"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_indices(case: str) -> None:
    indices, ftype, message = HOSTILE[case]
    ftype = ftype.replace("A", "!relax.tensor<[n], f32>")
    results = "%0, %1" if "(A, A)" in HOSTILE[case][1] else "%0"
    text = f"""builtin.module {{
  tir.prim_func @p(%x: !tir.buffer<[n], f32>) {{
  }}
  relax.function @main(%a: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {{
    {results} = relax.call_tir_inplace @p(%a) {{inplace_indices = {indices}}} : {ftype}
    relax.return %a : !relax.tensor<[n], f32>
  }}
}}"""
    with pytest.raises(IRParseError, match=r"<string>:5:\d+: relax.call_tir_inplace.*" + message):
        rx.parse_module(text)


def test_aliased_input_used_after_the_call() -> None:
    text = """builtin.module {
  tir.prim_func @p(%x: !tir.buffer<[n], f32>) {
  }
  relax.function @main(%a: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {
    %c = relax.match_cast %a : !relax.tensor<[n], f32> -> !relax.tensor<[n], f32>
    %0 = relax.call_tir_inplace @p(%c) {inplace_indices = array<i64: 0>} : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    %1 = relax.add %0, %a : (!relax.tensor<[n], f32>, !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    relax.return %1 : !relax.tensor<[n], f32>
  }
}"""
    with pytest.raises(IRParseError, match=r"<string>:6:\d+: relax.call_tir_inplace.*input 0 \(%c\) is written in "
                                           r"place.*must not be used after the call, but relax.add uses it.*%a"):
        rx.parse_module(text)


def test_aliased_input_also_read_by_the_call() -> None:
    pb = PrimFuncBuilder("p2", [("x", ["n"], F32), ("y", ["n"], F32)])
    prog = pb.finish()
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(prog)
        a = fb.param("a", ["n"], F32)
        e = op.exp(a)
        fb.ret(fb.call_tir_inplace("p2", [e, e], 0))
    with pytest.raises(IRParseError, match=r"input 0 \(.*\) is written in place by output 0 and also read as input 1"):
        rx.ir.verify_module(fb.module)


def _example() -> object:
    path = Path(__file__).resolve().parents[1] / "relax_xdsl" / "examples" / "kv_cache_append.py"
    spec = importlib.util.spec_from_file_location("kv_cache_append", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kv_cache_step_copies_nothing_of_the_cache() -> None:
    example = _example()
    module = example.build_module(2, "m", 8)  # type: ignore[attr-defined]
    host = example.host_function(module)  # type: ignore[attr-defined]
    allocs = [line for line in host.splitlines() if "memref.alloc" in line]
    assert "memref.copy" not in host and allocs and all("memref<1xi64>" in line for line in allocs)
    exe = rx.compile(module, target="c", pipeline="fast")
    cache = np.zeros((2, 6, 8), np.float32)
    row = np.arange(8, dtype=np.float32)[None]
    length = exe.step(cache, row, np.array([-1], np.int64), np.array([1], np.int64))
    assert length.tolist() == [6] and np.array_equal(cache[1, 5], row[0]) and np.count_nonzero(cache) == 7
    with pytest.raises(rx.errors.BoundsError, match=r"kv_append position: index 6 is out of range"):
        exe.step(cache, row, np.array([6], np.int64), np.array([0], np.int64))
