"""Textual IR: the xDSL context with every dialect of the project, and
parse_module / print_module."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Dialect
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException

from relax_xdsl.errors import IRParseError

UPSTREAM_DIALECTS = ("builtin", "func", "arith", "math", "scf", "memref", "affine", "cf", "omp", "llvm", "vector")


def project_dialects() -> dict[str, Callable[[], Dialect]]:
    """Our dialects by name, as factories (relax is built from the op
    registry when loaded, so it includes ops registered from user code)."""
    from relax_xdsl.dialects.lib import lib_dialect
    from relax_xdsl.dialects.relax import relax_dialect
    from relax_xdsl.dialects.tir import Tir

    return {"relax": relax_dialect, "tir": lambda: Tir, "lib": lib_dialect}


def make_context() -> Context:
    """A context with relax, tir, lib (including ops registered from user
    code so far) and the upstream loop-level dialects."""
    from xdsl.universe import Universe

    ctx = Context()
    all_dialects = Universe.get_multiverse().all_dialects
    for name in UPSTREAM_DIALECTS:
        ctx.register_dialect(name, all_dialects[name])
    for factory in project_dialects().values():
        ctx.load_dialect(factory())
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
