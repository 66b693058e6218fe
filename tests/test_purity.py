"""Purity: a relax.dataflow block holds only pure calls. A lib.func declares
`pure` (agreeing with its registered library function; BLAS is pure); an
impure lib.call, or a call_tir_inplace writing a parameter, in a dataflow
block is a verifier error naming the op and the block."""

from __future__ import annotations

import numpy as np
import pytest

import relax_xdsl as rx
from relax_xdsl.errors import IRParseError
from relax_xdsl.libraries import lookup, register_library_function

register_library_function("test.purity_impure", lambda x, out: np.copyto(out, x))
register_library_function("test.purity_pure", lambda x, out: np.copyto(out, x), pure=True)

T = "!relax.tensor<[n], f32>"


def lib_module(reference: str, pure: bool, in_dataflow: bool) -> str:
    decl = (f'  lib.func @f (!tir.buffer<[n], f32>, !tir.buffer<[n], f32>) -> () {{symbol = '
            f'"{reference.replace(".", "_")}", library = "test", reference = "{reference}"{", pure" if pure else ""}}}')
    call = f"%0 = lib.call @f(%a) : ({T}) -> {T}"
    body = (f"    %r = relax.dataflow -> ({T}) {{\n      {call}\n      relax.output %0 : {T}\n    }}\n"
            f"    relax.return %r : {T}") if in_dataflow else f"    {call}\n    relax.return %0 : {T}"
    return f"builtin.module {{\n{decl}\n  relax.function @main(%a: {T}) -> {T} {{\n{body}\n  }}\n}}"


def test_impure_library_call_in_dataflow_is_rejected() -> None:
    with pytest.raises(IRParseError, match=r"<string>:5:\d+: lib.call.*lib.call @f in the relax.dataflow block #0 of "
                                           r"@main: lib.func @f is not declared pure"):
        rx.parse_module(lib_module("test.purity_impure", pure=False, in_dataflow=True))


def test_impure_library_call_outside_dataflow_and_pure_inside_are_accepted() -> None:
    rx.parse_module(lib_module("test.purity_impure", pure=False, in_dataflow=False))
    module = rx.parse_module(lib_module("test.purity_pure", pure=True, in_dataflow=True))
    assert ", pure}" in rx.print_module(module)
    a = np.arange(3, dtype=np.float32)
    assert np.array_equal(rx.evaluate(module, "main", a), a)


def test_pure_claim_must_agree_with_the_library() -> None:
    with pytest.raises(IRParseError, match=r"lib.func @f is declared pure, but library function "
                                           r"'test.purity_impure' is not registered as pure"):
        rx.parse_module(lib_module("test.purity_impure", pure=True, in_dataflow=False))


def test_blas_is_pure_and_offloads_inside_dataflow() -> None:
    assert lookup("blas.matmul").pure and lookup("blas.matmul_2x2").pure and lookup("blas.dense_2x2_relu").pure
    from relax_xdsl.passes.offload import offload_module

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4], "float32")
        w = fb.const(np.ones((4, 3), np.float32))
        with fb.dataflow():
            y = fb.output(rx.op.matmul(x, w))
        fb.ret(y)
    module = offload_module(fb.module, "blas")
    text = rx.print_module(module)
    assert "lib.call" in text and "pure" in text
    rx.parse_module(text)  # verifies: the offloaded call in the dataflow block is pure


INPLACE = f"""builtin.module {{
  tir.prim_func @p(%x: !tir.buffer<[n], f32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = tir.sym n
    tir.for %i = %c0 to %n step %c1 {{
      %v = tir.load %x[%i] : !tir.buffer<[n], f32>
      %w = arith.addf %v, %v : f32
      tir.store %w, %x[%i] : !tir.buffer<[n], f32>
    }}
  }}
  relax.function @main(%a: {T}) -> {T} {{
    %r = relax.dataflow -> ({T}) {{
      %e = relax.exp %a : ({T}) -> {T}
      %0 = relax.call_tir_inplace @p(%SRC) {{inplace_indices = array<i64: 0>}} : ({T}) -> {T}
      relax.output %0 : {T}
    }}
    relax.return %r : {T}
  }}
}}"""


def test_inplace_call_writing_a_parameter_in_dataflow_is_rejected() -> None:
    with pytest.raises(IRParseError, match=r"<string>:15:\d+: relax.call_tir_inplace.*in the relax.dataflow block #0 "
                                           r"of @main: output 0 writes in place into parameter %a"):
        rx.parse_module(INPLACE.replace("%SRC", "%a"))


def test_inplace_call_on_a_dataflow_local_value_is_allowed() -> None:
    module = rx.parse_module(INPLACE.replace("%SRC", "%e"))
    a = np.zeros(2, np.float32)
    assert np.array_equal(rx.evaluate(module, "main", a), np.full(2, 2, np.float32))  # exp(0) doubled
    assert np.array_equal(rx.compile(module, target="c").main(a), np.full(2, 2, np.float32))
