"""relax_xdsl: a Relax-style ML compiler with symbolic shapes, on xDSL.

The public API: FunctionBuilder and `op` to build graph functions,
parse_module / print_module for textual IR, evaluate for the numpy
reference, compile for executables (targets interp and c), export_library /
load_module to save one and load it in another process, and the error
types."""

from relax_xdsl import op
from relax_xdsl.builder import FunctionBuilder, Var
from relax_xdsl.deploy import export_library, load_module
from relax_xdsl.errors import BoundsError, DimParseError, IRParseError, RelaxError, ResourceLimitError, ShapeError
from relax_xdsl.evaluator import evaluate
from relax_xdsl.frontend import OnnxImportError, from_onnx
from relax_xdsl.ir import make_context, parse_module, print_module
from relax_xdsl.ops.registry import OpSpec, Param, register_op
from relax_xdsl.runtime import Executable, compile, lower  # noqa: A004
from relax_xdsl.shape import sym

__all__ = [
    "BoundsError", "DimParseError", "Executable", "OnnxImportError", "FunctionBuilder", "IRParseError", "OpSpec", "Param", "RelaxError", "ResourceLimitError", "ShapeError", "Var",
    "compile", "evaluate", "export_library", "from_onnx", "load_module", "lower", "make_context", "op", "parse_module", "print_module", "register_op", "sym",
]
