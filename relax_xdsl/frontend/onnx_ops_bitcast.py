"""ONNX BitCast (opset 26) onto relax.bitcast (relax_xdsl/ops/bitcast.py):
the bits reinterpreted, never converted; types of different widths are
refused at import, naming the node."""

from __future__ import annotations

from relax_xdsl.frontend.onnx_import import Node, Value, onnx_dtype, register_converter
from relax_xdsl.ops.bitcast import bit_width


@register_converter("BitCast", attrs=("to",))
def _bitcast(n: Node) -> Value:
    x = n.input(0, "input")
    to = onnx_dtype(n.attr("to"), f"{n.where} attribute to")
    if bit_width(to) != bit_width(x.dtype):
        n.fail(f"attribute to={to} ({bit_width(to)} bits) does not have the width of the input's {x.dtype} "
               f"({bit_width(x.dtype)} bits); BitCast only reinterprets bits of one width")
    if to == x.dtype:
        return x
    return n.op("bitcast", x, dtype=to)
