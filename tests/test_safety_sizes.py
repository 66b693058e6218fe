"""Symbols and sizes at their limits, each a clear error on every level and
call path, never a crash: a symbol solved outside its domain, size
products overflowing 64 bits, static dims too large, and dims nested past
the parser's depth.

Calls that crashed the interpreter before the checks existed run in a
subprocess (`_isolated`), so a regression fails a test rather than pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import BufferType

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.dim_lowering import CHECKED_ATTR
from relax_xdsl.models import cnn, mlp, transformer_block

PIPELINES = ["baseline", "default"]


def _isolated(program: str) -> list[str]:
    """Runs `program` in a fresh interpreter; its stdout lines (a crash fails here)."""
    proc = subprocess.run([sys.executable, "-P", "-c", textwrap.dedent(program)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"exit code {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    return proc.stdout.splitlines()


CALL_PATHS = '''
import numpy as np
import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.shape import sym

def report(label, fn):
    try:
        out = fn()
        print(label, "OK", np.asarray(out if not isinstance(out, tuple) else out[0]).shape)
    except rx.RelaxError as err:
        print(label, type(err).__name__, str(err).replace("\\n", " "))
    except BaseException as err:  # a raw exception is a failure of the test, as a crash is
        print(label, "RAW", type(err).__name__, err)

def call_paths(exe, x):
    """The CPython entry point (a plain array), ctypes (a strided one), the host function itself."""
    strided = np.repeat(x, 2)[::2]
    report("entry", lambda: exe["main"](x))
    report("ctypes", lambda: exe["main"](strided))
    report("host", lambda: exe.backend.call("main", [x]))
'''


def _check_lines(lines: list[str], error: str, *words: str) -> None:
    assert len(lines) == 3, lines
    for line in lines:
        label, kind, message = (line.split(" ", 2) + ["", ""])[:3]
        assert kind == error, line
        for w in words:
            assert w in message, line


# --- a symbol solved outside its domain --------------------------------------

SOLVED_NEGATIVE = CALL_PATHS + '''
n = sym("n")
with rx.FunctionBuilder("main") as fb:
    x = fb.param("x", ["n + 10000"], "float32")
    y = op.exp(op.exp(x))
    w = op.exp(op.exp(op.ones([n], "float32")))  # a pooled buffer of n floats
    fb.ret(op.add(op.sum(y), op.sum(w)))
exe = rx.compile(fb.module, target="{target}", pipeline="{pipeline}")
call_paths(exe, np.ones(5001, "float32"))  # n + 10000 = 5001: n = -4999
'''


@pytest.mark.parametrize(("target", "pipeline"), [("interp", "baseline"), ("c", "baseline"), ("c", "default")])
def test_symbol_solved_below_its_domain_is_a_shape_error(target: str, pipeline: str) -> None:
    lines = _isolated(SOLVED_NEGATIVE.format(target=target, pipeline=pipeline))
    _check_lines(lines, "ShapeError", "@main", "input", "x", "dim 0", "n")
    host = lines[2]
    assert "n + 10000" in host and ">= 0" in host, host  # the host's own check names the dim and the domain


def test_symbol_solved_below_its_domain_in_the_evaluator() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n + 10000"], "float32")
        fb.ret(op.add(x, x))
    with pytest.raises(rx.ShapeError, match=r"input 'x': dim 0 is 5001.*n = -4999.*>= 0"):
        rx.evaluate(fb.module, "main", np.ones(5001, "float32"))


@pytest.mark.parametrize("target", ["interp", "c"])
def test_bare_symbol_of_zero_is_accepted_by_the_host(target: str) -> None:
    """Symbols are nonnegative: the host function itself (not only the
    Python-side checks) takes n = 0 and returns an empty result."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3], "float32")
        fb.ret(op.exp(op.exp(x)))
    exe = rx.compile(fb.module, target=target)
    out = exe.backend.call("main", [np.ones((0, 3), "float32")])
    assert np.asarray(out[0] if isinstance(out, (list, tuple)) else out).shape == (0, 3)
    np.testing.assert_allclose(exe["main"](np.ones((2, 3), "float32")), np.exp(np.exp(np.ones((2, 3)))), rtol=1e-5)


# --- size products overflowing 64 bits -----------------------------------------

BROADCAST = CALL_PATHS + '''
n = sym("n")
with rx.FunctionBuilder("main") as fb:
    x = fb.param("x", ["n"], "float32")
    fb.ret({body})
exe = rx.compile(fb.module, target="{target}", pipeline="{pipeline}")
call_paths(exe, np.ones(65536, "float32"))  # n**4 = 2**64 elements
'''


@pytest.mark.parametrize(("target", "pipeline"), [("interp", "baseline"), ("c", "baseline"), ("c", "default")])
def test_broadcast_whose_element_count_overflows(target: str, pipeline: str) -> None:
    body = "op.broadcast_to(x, [n, n, n, n])"
    lines = _isolated(BROADCAST.format(target=target, pipeline=pipeline, body=body))
    _check_lines(lines, "ResourceLimitError", "broadcast_to_out")


@pytest.mark.parametrize("target", ["interp", "c"])
def test_pool_size_arithmetic_overflow(target: str) -> None:
    """An intermediate of n**4 floats lives in the memory-planning pool: the
    host computes its size with checked arithmetic (baseline pipeline; the
    optimizing default fuses it away)."""
    body = "op.sum(op.exp(op.broadcast_to(x, [n, n, n, n])))"
    lines = _isolated(BROADCAST.format(target=target, pipeline="baseline", body=body))
    _check_lines(lines, "ResourceLimitError", "@main", "n*n*n*n", "overflows 64-bit")


def test_broadcast_overflow_in_the_evaluator() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        n = x.shape[0]
        fb.ret(op.broadcast_to(x, [n, n, n, n]))
    with pytest.raises(rx.ResourceLimitError, match="broadcast_to"):
        rx.evaluate(fb.module, "main", np.ones(65536, "float32"))


@pytest.mark.parametrize("model", [mlp, cnn, transformer_block])
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_host_size_arithmetic_stays_checked_through_the_pipeline(model: object, pipeline: str) -> None:
    """Every index add/sub/mul left in a host function after canonicalize and
    cse carries its overflow check (a rewrite dropping the attribute would
    print it unchecked)."""
    from xdsl.dialects import arith, func
    from xdsl.dialects.builtin import IndexType

    loops = rx.lower(model().module, pipeline)  # type: ignore[operator]
    hosts = [f for f in loops.body.ops if isinstance(f, func.FuncOp) and f.function_type.outputs.data]
    assert hosts
    arithmetic = [o for f in hosts for o in f.walk()
                  if isinstance(o, (arith.AddiOp, arith.SubiOp, arith.MuliOp)) and isinstance(o.result.type, IndexType)]
    assert arithmetic, "the models' hosts compute sizes"
    assert all(CHECKED_ATTR in o.attributes for o in arithmetic), [str(o) for o in arithmetic if CHECKED_ATTR not in
                                                                  o.attributes]


def test_checked_arithmetic_in_the_generated_c() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        n = x.shape[0]
        fb.ret(op.sum(op.exp(op.broadcast_to(x, [n, n]))))
    source = rx.compile(fb.module, target="c", pipeline="baseline").c_source  # the n*n intermediate is allocated
    host = source[source.index("int rxf_main("):]
    host = host[:host.index("\n}\n")]
    assert "__builtin_mul_overflow" in host
    assert " * " not in host.replace("/*", ""), host  # no unchecked product of sizes in the host


STATIC_OVERFLOW = CALL_PATHS + '''
with rx.FunctionBuilder("main") as fb:
    x = fb.param("x", [1], "float32")
    fb.ret(op.broadcast_to(x, [2**31, 2**31, 8]))  # each dim in range, 2**65 elements
call_paths(rx.compile(fb.module, target="c", pipeline="{pipeline}"), np.ones(1, "float32"))
'''


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_alloc_count_is_checked_for_static_shapes(pipeline: str) -> None:
    """Static dims below 2**62 whose product overflows: rx_count, not a wrapped size."""
    _check_lines(_isolated(STATIC_OVERFLOW.format(pipeline=pipeline)), "ResourceLimitError", "broadcast_to_out")


# --- static dims ------------------------------------------------------------------


def _module_text(shape: str) -> str:
    return (f"builtin.module {{\n  relax.function @main(%x: !relax.tensor<{shape}, f32>) -> "
            f"!relax.tensor<{shape}, f32> {{\n    relax.return %x : !relax.tensor<{shape}, f32>\n  }}\n}}\n")


@pytest.mark.parametrize("dim", [2**62, 2**62 + 1, 2**64 + 1, "n + 18446744073709551617"])
def test_static_dim_out_of_range_is_a_parse_error(dim: int | str) -> None:
    with pytest.raises(rx.IRParseError, match=r"<string>:2:\d+(.|\n)*not below 2\*\*62"):
        rx.parse_module(_module_text(f"[4, {dim}]"))


def test_static_dim_at_the_limit_parses() -> None:
    module = rx.parse_module(_module_text(f"[{2**62 - 1}]"))
    assert f"[{2**62 - 1}]" in rx.print_module(module)


@pytest.mark.parametrize("dim", [2**62, 2**62 + 1, 2**64 + 1, -1])
def test_static_dim_out_of_range_built_from_python(dim: int) -> None:
    for make in (TensorType.of, BufferType.of):
        with pytest.raises(rx.ShapeError, match=r"static dim .* outside \[0, 2\*\*62\)"):
            make([4, dim], "float32")
    with pytest.raises(rx.ShapeError, match="outside"):
        with rx.FunctionBuilder("main") as fb:
            fb.param("x", [dim], "float32")


def test_huge_coefficient_built_from_python() -> None:
    with pytest.raises(rx.ShapeError, match="outside"):
        TensorType.of([sympy.Symbol("n", integer=True, positive=True) + 2**64 + 1], "float32")


# --- nesting ----------------------------------------------------------------------


@pytest.mark.parametrize("dim", ["(" * 600 + "n" + ")" * 600, "-" * 600 + "n", "min(n, " * 600 + "n" + ")" * 600])
def test_deeply_nested_dim_is_a_parse_error(dim: str) -> None:
    with pytest.raises(rx.IRParseError, match=r"<string>:2:\d+(.|\n)*nested more than 100 deep"):
        rx.parse_module(_module_text(f"[{dim}]"))
    with pytest.raises(rx.DimParseError, match="nested more than 100 deep"):
        rx.shape.parse_dim_text(dim)


def test_nesting_within_the_limit_parses() -> None:
    assert rx.shape.parse_dim_text("(" * 90 + "n + 1" + ")" * 90) == rx.shape.parse_dim_text("n + 1")


def test_deeply_nested_types_are_a_parse_error() -> None:
    t = "tuple<" * 600 + "!relax.tensor<[n], f32>" + ">" * 600
    text = f"builtin.module {{\n  relax.function @main(%x: {t}) -> {t} {{\n    relax.return %x : {t}\n  }}\n}}\n"
    with pytest.raises(rx.IRParseError, match=r"<string>:2:\d+: the IR is nested too deeply"):
        rx.parse_module(text)
