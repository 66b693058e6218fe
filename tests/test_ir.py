"""Textual IR: print -> parse -> print is the identity (all three dialects,
weights, symbolic shapes, every example), large weights are fast, and
malformed input is an error with line and column."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from relax_xdsl.passes.pipelines import run_pipeline
from util import roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.models import cnn, mlp, transformer_block

# inputs that parse (diagnostics/ holds deliberately malformed ones)
FILECHECK = sorted(p for p in (Path(__file__).parent / "filecheck").rglob("*.mlir") if p.parent.name != "diagnostics")


@pytest.mark.parametrize("build", [mlp, cnn, lambda: transformer_block(d=16, heads=2, ff=32)],
                         ids=["mlp", "cnn", "transformer"])
def test_models_roundtrip_at_every_stage(build: object) -> None:
    module = build().module  # type: ignore[operator]
    roundtrip(module)
    for spec in ("legalize", "lower-tir", "lower-graph", "canonicalize,cse"):
        module = run_pipeline(module, spec)
        roundtrip(module)


def test_bundled_example_and_filecheck_inputs_roundtrip() -> None:
    text = resources.files("relax_xdsl").joinpath("examples", "mlp.mlir").read_text()
    assert rx.print_module(rx.parse_module(text)) == text
    for path in FILECHECK:
        roundtrip(rx.parse_module(path.read_text(), name=str(path)))


def test_large_weights_parse_and_print_fast() -> None:
    w = np.random.default_rng(0).standard_normal((1000, 1000)).astype(np.float32)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 1000], "float32")
        fb.ret(op.matmul(x, fb.const(w)))
    t0 = time.perf_counter()
    text = rx.print_module(fb.module)
    again = rx.parse_module(text)
    elapsed = time.perf_counter() - t0
    assert rx.print_module(again) == text
    np.testing.assert_array_equal(again.body.block.first_op.body.block.first_op.to_array(), w)
    assert elapsed < 5.0, "generous bound: a million weights must not take per-element Python work"


def test_all_dtypes_and_symbolic_dims_roundtrip() -> None:
    with rx.FunctionBuilder("main") as fb:
        outs = []
        for dt in ("float32", "float64", "float16", "int32", "int64", "int8", "bool"):
            v = fb.param(f"x_{dt}", ["n", "2*n + 1", "n floordiv 2", "min(n, 4)"], dt)
            outs.append(v)
        fb.ret(fb.tuple(*outs))
    text = rx.print_module(roundtrip(fb.module))
    assert "!relax.tensor<[n, 2*n + 1, n floordiv 2, min(4, n)], i1>" in text


BAD_IR = [
    ("builtin.module {\n  relax.function @main(%x: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {\n",
     r"2:\d+|3:\d+", "truncated"),
    ("builtin.module {\n  relax.nope %x\n}", r"2:\d+(.|\n)*relax.nope is not registered", "unknown op"),
    ("builtin.module {\n relax.function @f(%x: !relax.tensor<[n+], f32>) -> !relax.tensor<[n], f32> {\n"
     "  relax.return %x : !relax.tensor<[n], f32>\n }\n}", r"2:\d+", "bad dim n+"),
    ("builtin.module {\n relax.function @f(%x: !relax.tensor<[2**n], f32>) -> !relax.tensor<[n], f32> {\n"
     "  relax.return %x : !relax.tensor<[n], f32>\n }\n}", r"2:\d+", "2**n"),
    ("builtin.module {\n relax.function @f(%x: !relax.tensor<[__import__('os')], f32>) -> !relax.tensor<[n], f32> {\n"
     "  relax.return %x : !relax.tensor<[n], f32>\n }\n}", r"2:\d+", "__import__"),
    ("builtin.module {\n relax.function @f(%x: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {\n"
     "  %0 = relax.exp %x : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], i32>\n"
     "  relax.return %x : !relax.tensor<[n], f32>\n }\n}", r"exp", "wrong result type"),
]


@pytest.mark.parametrize(("text", "where", "what"), BAD_IR, ids=[b[2] for b in BAD_IR])
def test_parse_errors_name_the_place(text: str, where: str, what: str) -> None:
    with pytest.raises(rx.IRParseError, match=where):
        rx.parse_module(text)


CALL = """builtin.module {{
  tir.prim_func @p(%a: !tir.buffer<[n, 4], f32>, %o: !tir.buffer<[n, 4], f32>) {{
  }}
  relax.function @main(%x: !relax.tensor<{xt}>) -> !relax.tensor<[n, 4], f32> {{
    %0 = relax.call_tir @{callee}({args}) : ({argt}) -> !relax.tensor<[n, 4], f32>
    relax.return %0 : !relax.tensor<[n, 4], f32>
  }}
}}"""


@pytest.mark.parametrize(("xt", "callee", "args", "argt", "match"), [
    ("[n, 4], f32", "p", "%x, %x", "!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>", "3 buffers|takes 2"),
    ("[n], f32", "p", "%x", "!relax.tensor<[n], f32>", "rank"),
    ("[n, 4], i32", "p", "%x", "!relax.tensor<[n, 4], i32>", "int32|i32"),
    ("[n, 4], f32", "nope", "%x", "!relax.tensor<[n, 4], f32>", "does not exist"),
], ids=["arity", "rank", "dtype", "undefined-callee"])
def test_call_tir_verifier(xt: str, callee: str, args: str, argt: str, match: str) -> None:
    with pytest.raises(rx.IRParseError, match=match):
        rx.parse_module(CALL.format(xt=xt, callee=callee, args=args, argt=argt))


def test_undefined_symbol_and_duplicate_names() -> None:
    with pytest.raises(rx.IRParseError, match="undefined symbol"):
        rx.parse_module("builtin.module {\n tir.prim_func @p(%a: !tir.buffer<[n], f32>) {\n"
                        "  %s = tir.sym m\n }\n}")
    dup = ("builtin.module {\n tir.prim_func @p(%a: !tir.buffer<[n], f32>) {\n }\n"
           " tir.prim_func @p(%a: !tir.buffer<[n], f32>) {\n }\n}")
    with pytest.raises(rx.IRParseError, match="p"):
        rx.parse_module(dup)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_nan_and_inf_constants_roundtrip(dtype: str) -> None:
    """xDSL prints a NaN or inf element as its bit pattern (0x7fc00000) and
    reads that back as the integer 2143289344: a -inf attention mask came
    back as 4.3e9. Such constants print as raw bytes instead."""
    values = np.array([np.nan, np.inf, -np.inf, -0.0, 1.5], dtype=np.float32).astype(rx.dtypes.np_dtype(dtype))
    for array in (values, values[:1].reshape(())):
        with rx.FunctionBuilder("main") as fb:
            x = fb.param("x", list(array.shape), dtype)
            fb.ret(op.add(x, fb.const(array, dtype=dtype)))
        parsed = roundtrip(fb.module)
        got = rx.evaluate(parsed, "main", np.zeros(array.shape, dtype=array.dtype))
        np.testing.assert_array_equal(np.asarray(got, dtype=np.float32), array.astype(np.float32))


def test_bare_hex_float_constant_is_refused() -> None:
    text = """builtin.module {
  relax.function @main() -> !relax.tensor<[2], f32> {
    %0 = relax.constant dense<[0x7FC00000, 2.0]> : tensor<2xf32>
    relax.return %0 : !relax.tensor<[2], f32>
  }
}"""
    with pytest.raises(rx.IRParseError, match=r"(?s)3:25.*hex bit pattern"):
        rx.parse_module(text)
    ints = text.replace("[0x7FC00000, 2.0]", "[0x7F, 2]").replace("f32", "i32")
    assert rx.evaluate(rx.parse_module(ints), "main").tolist() == [127, 2]


def splat_module(value: str, shape: list[int], elem: str) -> str:
    dims = "x".join(map(str, shape))
    return f"""builtin.module {{
  relax.function @main() -> !relax.tensor<{shape}, {elem}> {{
    %0 = relax.constant dense<{value}> : tensor<{dims}x{elem}>
    relax.return %0 : !relax.tensor<{shape}, {elem}>
  }}
}}"""


@pytest.mark.parametrize(("value", "shape", "elem", "want"), [
    ("2.5", [3, 2], "f32", 2.5), ('"0x0000C07F"', [2, 2], "f32", np.nan), ("-7", [4], "i64", -7),
    ("true", [3], "i1", True), ("0x7", [2, 3], "i32", 7), ("1.5", [2, 1], "f64", 1.5)])
def test_splat_constants_stay_one_value(value: str, shape: list[int], elem: str, want: object) -> None:
    """A splat parses, prints and round-trips as its one value (fold-constants
    makes them from exported ConstantOfShape weights); only evaluating or
    loading the program expands it."""
    module = rx.parse_module(splat_module(value, shape, elem))
    (const,) = [o for o in module.walk() if o.name == "relax.constant"]
    assert len(const.value.data.data) == {"f32": 4, "i64": 8, "i1": 1, "i32": 4, "f64": 8}[elem]
    again = roundtrip(module)
    for m in (module, again):
        got = rx.evaluate(m, "main")
        assert got.shape == tuple(shape)
        np.testing.assert_array_equal(got, np.full(shape, want, dtype=got.dtype))


def test_a_huge_splat_is_a_limit_error_not_an_exhausted_machine() -> None:
    """A few bytes of text naming 4 TB: parsing keeps one value; expanding it
    (evaluating, compiling) is a ResourceLimitError naming the shape."""
    module = rx.parse_module(splat_module("1.0", [10**6, 10**6], "f32"))
    (const,) = [o for o in module.walk() if o.name == "relax.constant"]
    assert len(const.value.data.data) == 4
    assert "tensor<1000000x1000000xf32>" in rx.print_module(module)
    for run in (lambda: rx.evaluate(module, "main"), lambda: rx.compile(module, target="c")):
        with pytest.raises(rx.ResourceLimitError, match=r"splat constant.*\(1000000, 1000000\)"):
            run()
