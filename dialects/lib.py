"""The library-call dialect `lib`.

`lib.func` declares an external function in destination-passing style over
symbolic buffers (inputs, then outputs): its C symbol, library, header and
link flags, and the name of its numpy reference (registered from Python in
relax_xdsl.libraries, used by the evaluator and the interpreter).
`lib.call` calls it from a graph function: the callee writes its outputs,
whose symbolic types the results give.
"""

from __future__ import annotations

from collections.abc import Sequence

from relax_xdsl.dialects.relax import (
    DataflowOp,
    FunctionOp,
    TensorType,
    _dps_verify,
    parse_dps_call,
    print_dps_call,
)
from relax_xdsl.dialects.tir import BufferType
from xdsl.dialects.builtin import ArrayAttr, FunctionType, StringAttr, SymbolNameConstraint, SymbolRefAttr, UnitAttr
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    opt_prop_def,
    prop_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import SymbolOpInterface
from xdsl.utils.exceptions import VerifyException


@irdl_op_definition
class LibFuncOp(IRDLOperation):
    """`lib.func @sgemm(!tir.buffer<[n, k], f32>, ...) {symbol = "...", library = "blas", header = "cblas.h", link = [...], reference = "blas.matmul"}`.

    The C function takes one pointer per buffer (inputs, then outputs), then
    the int64 dims of every buffer in the same order (relax_xdsl/libraries.py)."""

    name = "lib.func"
    sym_name = prop_def(SymbolNameConstraint())
    function_type = prop_def(FunctionType)
    symbol = prop_def(StringAttr)
    library = prop_def(StringAttr)
    header = opt_prop_def(StringAttr)
    link = opt_prop_def(ArrayAttr[StringAttr])
    reference = opt_prop_def(StringAttr)
    pure = opt_prop_def(UnitAttr)
    """Declares the function pure: it writes its output buffers and nothing
    else, so a relax.dataflow block may call it. It must agree with the
    registered library function (relax_xdsl/libraries.py)."""
    traits = traits_def(SymbolOpInterface())

    assembly_format = "$sym_name $function_type attr-dict"
    irdl_options = (ParsePropInAttrDict(),)

    def __init__(self, name: str, buffers: Sequence[BufferType], symbol: str, library: str, header: str | None = None, link: Sequence[str] = (), reference: str | None = None,
                 pure: bool = False):
        props: dict[str, Attribute] = {
            "sym_name": StringAttr(name),
            "function_type": FunctionType.from_lists(buffers, []),
            "symbol": StringAttr(symbol),
            "library": StringAttr(library),
        }
        if header:
            props["header"] = StringAttr(header)
        if link:
            props["link"] = ArrayAttr([StringAttr(x) for x in link])
        if reference:
            props["reference"] = StringAttr(reference)
        if pure:
            props["pure"] = UnitAttr()
        super().__init__(properties=props)

    def buffer_types(self) -> list[BufferType]:
        return list(self.function_type.inputs.data)  # type: ignore[arg-type]

    def num_sym_args(self) -> int:
        return 0

    def verify_(self) -> None:
        for i, t in enumerate(self.function_type.inputs.data):
            if not isinstance(t, BufferType):
                raise VerifyException(f"lib.func @{self.sym_name.data}: parameter {i} is {t}, not a !tir.buffer")
        if self.function_type.outputs.data:
            raise VerifyException(f"lib.func @{self.sym_name.data}: results are written to output buffers, not returned")
        self._verify_symbol()

    def _verify_symbol(self) -> None:
        """The C symbol must be the one its registered library function
        provides: IR names no other C function (`system`, `execv`)."""
        from relax_xdsl import libraries
        from relax_xdsl.errors import RelaxError

        symbol = self.symbol.data
        ref = self.reference.data if self.reference is not None else symbol
        try:
            fn = libraries.lookup(ref)
        except RelaxError as err:
            raise VerifyException(f"lib.func @{self.sym_name.data}: C symbol {symbol!r}: {err}") from None
        if symbol != fn.symbol:
            raise VerifyException(f"lib.func @{self.sym_name.data}: C symbol {symbol!r} is not provided by library "
                                  f"function {ref!r} (it provides {fn.symbol!r})")
        if self.pure is not None and not fn.pure:
            raise VerifyException(f"lib.func @{self.sym_name.data} is declared pure, but library function {ref!r} "
                                  "is not registered as pure (register_library_function(..., pure=True))")


@irdl_op_definition
class LibCallOp(IRDLOperation):
    """`lib.call @sgemm(%a, %b) : (A, B) -> C` at the graph level."""

    name = "lib.call"
    callee = prop_def(SymbolRefAttr)
    inputs = var_operand_def(TensorType)
    outs = var_result_def(TensorType)

    def __init__(self, callee: str | SymbolRefAttr, inputs: Sequence[SSAValue], out_types: Sequence[Attribute]):
        super().__init__(
            operands=[inputs], result_types=[out_types],
            properties={"callee": SymbolRefAttr(callee) if isinstance(callee, str) else callee},
        )

    def verify_(self) -> None:
        callee = _dps_verify(self, self.callee, (LibFuncOp,), "a lib.func", 0)
        block = self.parent_op()
        if isinstance(block, DataflowOp) and isinstance(callee, LibFuncOp) and callee.pure is None:
            fn = block.parent_op()
            where = f" of @{fn.sym_name.data}" if isinstance(fn, FunctionOp) else ""
            k = [o for o in fn.walk() if isinstance(o, DataflowOp)].index(block) if fn is not None else 0
            raise VerifyException(
                f"lib.call @{self.callee.string_value()} in the relax.dataflow block #{k}{where}: lib.func "
                f"@{callee.sym_name.data} is not declared pure, and a dataflow block holds only pure calls "
                "(declare it pure, or call it after the block)")

    @classmethod
    def parse(cls, parser: Parser) -> LibCallOp:
        pos = parser.pos
        callee, values, syms, outs, extra = parse_dps_call(parser)
        if syms:
            parser.raise_error("lib.call takes no symbolic args (the library gets them from the buffer shapes)", pos)
        op = LibCallOp(callee, values, outs)
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        print_dps_call(printer, self, self.callee, None)


def lib_dialect() -> Dialect:
    return Dialect("lib", [LibFuncOp, LibCallOp], [])
