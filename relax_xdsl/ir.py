"""Textual IR: the xDSL context with every dialect of the project, and
parse_module / print_module."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Dialect, Operation
from xdsl.parser import Parser
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


class LocatingParser(Parser):
    """xDSL's parser, remembering where each operation starts, so a
    verifier failure can name the line and column of the op. `line_offset`:
    the text's first line in its file (a `--split-input-file` chunk)."""

    def __init__(self, ctx: Context, text: str, name: str = "<string>", line_offset: int = 0):
        super().__init__(ctx, text, name)
        self.text, self.name, self.line_offset = text, name, line_offset
        self.starts: dict[Operation, int] = {}

    def parse_operation(self) -> Operation:
        start = self.pos
        op = super().parse_operation()
        self.starts[op] = start
        return op

    def location(self, op: Operation) -> str:
        pos = self.starts.get(op)
        if pos is None:
            return self.name
        line = self.text.count("\n", 0, pos) + 1 + self.line_offset
        return f"{self.name}:{line}:{pos - (self.text.rfind(chr(10), 0, pos) + 1) + 1}"

    def verify(self, module: ModuleOp) -> None:
        """Verifies `module`; the error names the first failing op and its position."""
        try:
            module.verify()
        except (VerifyException, DiagnosticException) as err:
            for op in module.walk():
                try:
                    op.verify(verify_nested_ops=False)
                except (VerifyException, DiagnosticException) as inner:
                    op = _redefinition(op, str(inner)) or op
                    raise IRParseError(f"{self.location(op)}: {op.name}: verification failed: {inner}") from None
            raise IRParseError(f"{self.name}: verification failed: {err}") from None


def _redefinition(table: Operation, message: str) -> Operation | None:
    """The second definition of the symbol a 'Redefinition of symbol "x"' names."""
    if not message.startswith("Redefinition of symbol") or not table.regions or not table.regions[0].blocks:
        return None
    name = message.split('"')[1] if message.count('"') >= 2 else None
    seen = False
    for op in table.regions[0].blocks[0].ops:
        sym = op.get_attr_or_prop("sym_name")
        if isinstance(sym, StringAttr) and sym.data == name:
            if seen:
                return op
            seen = True
    return None


def parse_module(text: str, name: str = "<string>", verify: bool = True) -> ModuleOp:
    """Parses (and verifies) a module; errors carry line and column."""
    try:
        parser = LocatingParser(make_context(), text, name)  # lexes the first token
    except ParseError as err:
        raise IRParseError(str(err)) from None
    try:
        module = parser.parse_module()
    except ParseError as err:
        raise IRParseError(str(err)) from None
    except RecursionError:  # xDSL's own recursive parsers (nested types, regions); dims stop at MAX_DIM_NESTING
        pos = parser.pos
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise IRParseError(f"{name}:{line}:{column}: the IR is nested too deeply to parse") from None
    if verify:
        parser.verify(module)
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
