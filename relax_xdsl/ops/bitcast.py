"""relax.bitcast: the bits of each element read as another element type of
the same width (ONNX BitCast), unlike astype, which converts the value.

Every pair of dtypes of one width is allowed: integers of either
signedness and the floats of that width (float16 and bfloat16 with
int16 / uint16, float32 with int32 / uint32, float64 with int64 /
uint64). bool is one byte as in numpy and ONNX: bool -> uint8 / int8 is
0 or 1, and a byte read as bool is True when nonzero (a bool holds only
those two values). In tensor programs it is arith.bitcast (bool as a
comparison or a widening), which the C target prints as a memcpy of the
scalar (rx_bits_* / rx_*_from_bits in the C runtime: no pointer pun) and
the interpreter computes with numpy's view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.dialects import arith

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.ops.registry import ELEMWISE, REQUIRED, Infer, OpSpec, Param, register_op, tensor


def bit_width(dtype: str) -> int:
    """Bits per element as stored (bool is a byte)."""
    return 8 if dtype == "bool" else dtypes.np_dtype(dtype).itemsize * 8


@register_op
class Bitcast(OpSpec):
    """relax.bitcast: x's elements' bits as `dtype`, of the same width (same shape)."""

    name = "bitcast"
    inputs = ("x",)
    params = {"dtype": Param("str", REQUIRED)}
    pattern = ELEMWISE

    def infer(self, ctx: Infer, x: TensorType, dtype: str) -> TensorType:
        name = ctx.dtype(dtype)
        if bit_width(name) != bit_width(x.dtype):
            ctx.fail(f"{x.dtype} ({bit_width(x.dtype)} bits) cannot be reinterpreted as {name} "
                     f"({bit_width(name)} bits): the widths differ")
        return tensor(x.sym_shape, name)

    def reference(self, x: np.ndarray, dtype: str) -> np.ndarray:
        target = dtypes.np_dtype(dtype)
        x = np.ascontiguousarray(x)
        if target == np.bool_:
            return x.view(np.uint8) != 0
        return x.view(target)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], dtype: str) -> None:
        (x,), (out,) = inputs, outputs

        def body(*i: Any) -> Any:
            v = x[i]
            if x.dtype == "bool" or out.dtype == "bool" or x.dtype == out.dtype:
                return pb.cast(v, out.dtype)  # 0 / 1 widened, or != 0
            return pb.emit(arith.BitcastOp(v.value, dtypes.to_xdsl(out.dtype)))

        pb.compute(out, body)
