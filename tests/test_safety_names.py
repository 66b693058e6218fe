"""Names and library symbols in generated C: any function name compiles into
its own C function and runs (nothing pasted into C text runs or clashes),
names are mangled injectively, text reaches C string literals intact, and a
`lib.func` can only call the C symbol a registered library function
provides (never `execv`, `system` or `unlink`)."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.tir import BufferType
from xdsl.dialects import func
from xdsl.dialects.builtin import IndexType, ModuleOp, StringAttr, f32
from xdsl.utils.exceptions import VerifyException

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.backend.c_emitter import emit_c
from relax_xdsl.libraries import lookup, register_library_function

HOSTILE = [
    "f-1", "f_1", 'a"b', "c\\d", "x\ny", "*/ z /*", "/* w", "ünï 名", "int", "return", "rx_alloc", "rx_fail", "main",
    "a0", "r0", "v1", "??=", "%s%n", "e\\101", "\x7f", "rxf_main", "9lives", "",
]


def _scaling_module(names: list[str]) -> ModuleOp:
    """One graph function per name, the k-th multiplying its input by k + 1."""
    module = ModuleOp([])
    for k, name in enumerate(names):
        with rx.FunctionBuilder(name, module) as fb:
            x = fb.param("x", ["n"], "float32")
            fb.ret(op.multiply(x, float(k + 1)))
    return module


def _check_all(exe: rx.Executable, names: list[str]) -> None:
    x = np.arange(1, 6, dtype=np.float32)
    for k, name in enumerate(names):
        np.testing.assert_array_equal(exe[name](x), x * (k + 1), err_msg=repr(name))
        # the ctypes path too (the CPython entry point serves exe[name] when built)
        np.testing.assert_array_equal(exe.backend.call(name, [x])[0], x * (k + 1), err_msg=repr(name))


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_hostile_function_names_compile_and_run(debug: bool) -> None:
    names = [n for n in HOSTILE if n]  # "" is no valid symbol name in the IR
    module = rx.parse_module(rx.print_module(_scaling_module(names)))
    _check_all(rx.compile(module, target="c", debug=debug), names)


def test_names_differing_only_in_punctuation_are_different_c_functions() -> None:
    """`@"f-1"` and `@f_1` were one C identifier: gcc's 'redefinition' error."""
    names = ["f-1", "f_1", "f.1", "f 1"]
    text = rx.print_module(_scaling_module(names))
    assert '@"f-1"' in text and "@f_1" in text
    _check_all(rx.compile(rx.parse_module(text), target="c"), names)


def test_a_function_name_cannot_inject_c(tmp_path: Path) -> None:
    """A name closing the method table's string literal once defined a
    constructor that ran when the library was loaded."""
    marker = tmp_path / "injected"
    evil = ('e", NULL, 0, NULL}, {NULL, NULL, 0, NULL}}; __attribute__((constructor)) static void rx_evil(void) '
            f'{{ FILE* f = fopen("{marker}", "w"); if (f) fclose(f); }} '
            'static PyMethodDef rx_evil_tail[] = {{"e')
    names = ["main", evil]
    exe = rx.compile(_scaling_module(names), target="c")
    assert not marker.exists(), "injected C ran"
    assert 'fopen("' not in exe.c_source  # only inside literals, as fopen(\"
    _check_all(exe, names)


def test_hostile_buffer_and_message_text_stays_in_literals(tmp_path: Path) -> None:
    """Buffer names and check messages carry the function name into
    rx_alloc / rx_fail / rx_bound literals; a failed check reports it."""
    name = 'g"); system("touch x'
    with rx.FunctionBuilder(name) as fb:
        x = fb.param("x", ["n", 4], "float32")
        y = fb.param("y", ["n", 4], "float32")
        fb.ret(op.add(op.exp(x), y))
    for debug in (False, True):
        exe = rx.compile(fb.module, target="c", debug=debug)
        a = np.ones((3, 4), np.float32)
        np.testing.assert_allclose(exe[name](a, a), np.exp(a) + a, rtol=1e-6)
        with pytest.raises(rx.ShapeError):
            exe.backend.call(name, [a, np.ones((2, 4), np.float32)])


# -- the mangling and escaping functions ---------------------------------------------------------------------------


def _demangle(ident: str) -> str:
    out, i = bytearray(), 0
    while i < len(ident):
        if ident[i] != "_":
            out.append(ord(ident[i]))
            i += 1
        elif ident[i + 1] == "_":
            out.append(ord("_"))
            i += 2
        else:
            out.append(int(ident[i + 1:i + 3], 16))
            i += 3
    return out.decode("utf-8", "surrogatepass")


@given(st.text())
def test_mangling_is_injective_and_an_identifier(name: str) -> None:
    import re

    from relax_xdsl.backend.c_names import FUNCTION, c_ident, mangle

    ident = mangle(name)
    assert re.fullmatch(r"[A-Za-z0-9_]*", ident)
    assert _demangle(ident) == name  # a left inverse: no two names share an identifier
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c_ident(FUNCTION, name))


@given(st.text(), st.text())
def test_different_names_mangle_differently(a: str, b: str) -> None:
    from relax_xdsl.backend.c_names import mangle

    assert (mangle(a) == mangle(b)) == (a == b)


def test_mangled_names_avoid_keywords_and_backend_names() -> None:
    from relax_xdsl.backend.c_names import C_KEYWORDS, ENTRY, FUNCTION, POOL, c_ident, local_name

    for name in HOSTILE:
        for ident in (c_ident(FUNCTION, name), c_ident(ENTRY, name), c_ident(POOL, name), local_name(3, name)):
            assert ident not in C_KEYWORDS and ident not in ("rx_alloc", "rx_fail", "main", "a0", "r0", "rx_g")
    assert c_ident(FUNCTION, "f-1") != c_ident(FUNCTION, "f_1")
    assert local_name(1, "2") != local_name(12, None)


STRINGS = ['"', "\\", "\n", "\r\t", "??=", "??/", "??'", "*/", "/*", "\0mid", "\x7f", "é1", "\x01" + "7", "名字",
           'a"); system("x', "%s%n", "\\x41F", "trail\\"]


def test_c_string_literals_hold_exactly_the_text(tmp_path: Path) -> None:
    """Compiled with trigraphs on (-std=c99), every literal holds the UTF-8
    bytes of its text, embedded NULs and all."""
    from relax_xdsl.backend.c import compiler
    from relax_xdsl.backend.c_names import c_string

    lits = [c_string(s) for s in STRINGS]
    src = tmp_path / "strings.c"
    src.write_text("const char* rx_strs[] = {" + ", ".join(lits) + "};\n"
                   "const long rx_lens[] = {" + ", ".join(f"sizeof({lit}) - 1" for lit in lits) + "};\n")
    lib = tmp_path / "strings.so"
    subprocess.run([*compiler(), "-std=c99", "-Werror", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    dll = ctypes.CDLL(str(lib))
    strs = (ctypes.c_void_p * len(STRINGS)).in_dll(dll, "rx_strs")
    lens = (ctypes.c_long * len(STRINGS)).in_dll(dll, "rx_lens")
    for k, text in enumerate(STRINGS):
        assert ctypes.string_at(strs[k], lens[k]) == text.encode(), repr(text)


# -- library symbols -----------------------------------------------------------------------------------------------

_USER_C = """void test_safety_double(float* x, float* out, int64_t n0, int64_t n1) {
  for (int64_t i = 0; i < n0; ++i) out[i] = 2.0f * x[i];
}
"""


def _register_user() -> None:
    register_library_function("test.safety_double", lambda x, out: np.multiply(x, 2, out=out), c_source=_USER_C)


@pytest.mark.parametrize("symbol", ["execv", "system", "unlink"])
def test_lib_func_symbols_must_be_provided_by_a_registered_library(symbol: str) -> None:
    _register_user()
    buf = BufferType.of(["n"], "float32")
    for reference in ("test.safety_double", "blas.matmul", None):
        bad = LibFuncOp("f", [buf, buf], symbol, "user", reference=reference)
        with pytest.raises(VerifyException, match=f"'{symbol}'"):
            bad.verify()
    LibFuncOp("f", [buf, buf], "test_safety_double", "user", reference="test.safety_double").verify()


@pytest.mark.parametrize("symbol", ["execv", "system", "unlink"])
def test_textual_lib_func_with_a_libc_symbol_fails_to_parse_with_its_line(symbol: str) -> None:
    text = f"""builtin.module {{
  lib.func @mm (!tir.buffer<[n, k], f32>, !tir.buffer<[k, m], f32>, !tir.buffer<[n, m], f32>) -> () \
{{symbol = "{symbol}", library = "blas", reference = "blas.matmul"}}
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %y: !relax.tensor<[4, 3], f32>) -> !relax.tensor<[n, 3], f32> {{
    %z = lib.call @mm(%x, %y) : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 3], f32>) -> !relax.tensor<[n, 3], f32>
    relax.return %z : !relax.tensor<[n, 3], f32>
  }}
}}
"""
    with pytest.raises(rx.IRParseError, match=rf"<string>:2:3: lib.func: .*'{symbol}' is not provided"):
        rx.parse_module(text)
    good = text.replace(f'"{symbol}"', '"blas_matmul"')
    rx.parse_module(good)


def test_c_emitter_rejects_a_declaration_of_an_unprovided_symbol() -> None:
    """Loop-level IR bypasses lib.func's verifier: the emitter checks too."""
    _register_user()
    from xdsl.dialects.builtin import MemRefType

    mem = MemRefType(f32, [-1])
    decl = func.FuncOp.external("unlink", [mem, mem, IndexType()], [])
    decl.attributes["relax.library"] = StringAttr("user")
    decl.attributes["relax.reference"] = StringAttr("test.safety_double")
    with pytest.raises(rx.RelaxError, match=r"'unlink' is not provided by library function 'test.safety_double'"):
        emit_c(ModuleOp([decl]))
    ok = func.FuncOp.external("test_safety_double", [mem, mem, IndexType()], [])
    ok.attributes["relax.library"] = StringAttr("user")
    ok.attributes["relax.reference"] = StringAttr("test.safety_double")
    # declared by its own source alone (no second prototype that could conflict with `const` parameters)
    source = emit_c(ModuleOp([ok]))
    assert "void test_safety_double(float* x, float* out, int64_t n0, int64_t n1) {" in source
    assert "void test_safety_double(float*, float*, int64_t);" not in source


@pytest.mark.parametrize("symbol", ["rx_alloc", "rx_fail", "rxf_main", "int", "a0", "v3", "not an ident", "x;y",
                                    "__evil", "_Evil", "rx_pool_take", "rxpy_wrap"])
def test_registering_an_unusable_symbol_is_an_error(symbol: str) -> None:
    with pytest.raises(rx.RelaxError, match="C symbol"):
        register_library_function("test.safety_bad", lambda x, out: None, symbol=symbol)


def test_default_symbol_is_the_name_as_an_identifier() -> None:
    fn = register_library_function("test.safety_default", lambda x, out: None)
    assert fn.symbol == "test_safety_default"
    assert lookup("blas.matmul_2x2").symbol == "rx_blas_matmul_2x2"


@pytest.mark.parametrize("params", ["-1,1,0,0,0,0", "1,1,0,0,0,01", "1,1,0,0,0,1_0", "0,1,0,0,0,0", "1,1,0,0,0"])
def test_conv_library_names_are_canonical(params: str) -> None:
    """Every registered conv2d name gives one C symbol that is an identifier."""
    with pytest.raises(rx.RelaxError, match="no library function registered"):
        lookup(f"blas.conv2d:{params}")


def test_a_non_ascii_function_name_survives_printing_after_lowering() -> None:
    """lower-graph's messages name the function; xDSL prints non-ASCII text
    in a string attribute as byte escapes it does not parse back as a string,
    so they name it in ASCII (the fuzzer found `naïve ψ` breaking the round
    trip after lower-graph)."""
    with rx.FunctionBuilder("naïve ψ") as fb:
        x = fb.param("x", [0, "n"], "float32")
        fb.ret(op.exp(x))
    text = rx.print_module(rx.lower(fb.module, "fast"))
    assert rx.print_module(rx.parse_module(text)) == text
    assert rx.compile(fb.module, target="c")["naïve ψ"](np.zeros((0, 3), np.float32)).shape == (0, 3)
