"""Textual IR: the xDSL context with every dialect of the project, and
parse_module / print_module."""

from __future__ import annotations

from io import StringIO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException

from relax_xdsl.errors import IRParseError

UPSTREAM_DIALECTS = ("builtin", "func", "arith", "math", "scf", "memref", "affine", "cf", "omp", "llvm", "vector")


def make_context() -> Context:
    """A context with relax, tir, lib (including ops registered from user
    code so far) and the upstream loop-level dialects."""
    from xdsl.universe import Universe

    from relax_xdsl.dialects.lib import lib_dialect
    from relax_xdsl.dialects.relax import relax_dialect
    from relax_xdsl.dialects.tir import Tir

    ctx = Context()
    all_dialects = Universe.get_multiverse().all_dialects
    for name in UPSTREAM_DIALECTS:
        ctx.register_dialect(name, all_dialects[name])
    ctx.load_dialect(relax_dialect())
    ctx.load_dialect(Tir)
    ctx.load_dialect(lib_dialect())
    return ctx


def parse_module(text: str, name: str = "<string>", verify: bool = True) -> ModuleOp:
    """Parses (and verifies) a module; errors carry line and column."""
    from xdsl.parser import Parser

    try:
        module = Parser(make_context(), text, name).parse_module()
    except ParseError as err:
        raise IRParseError(str(err)) from None
    if verify:
        verify_module(module)
    return module


def verify_module(module: ModuleOp) -> None:
    try:
        module.verify()
    except (VerifyException, DiagnosticException) as err:
        raise IRParseError(f"verification failed: {err}") from None


def print_module(module: ModuleOp) -> str:
    out = StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue() + "\n"
