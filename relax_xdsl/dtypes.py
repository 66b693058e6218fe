"""Element types: numpy dtype names <-> xDSL builtin types.

Signedness lives in the type: uint8 .. uint64 are xDSL's unsigned integer
types (`ui8` .. `ui64`), the signed ones signless (`i8` .. `i64`). xDSL's arith
ops accept either (only `arith.constant` insists on signless: an unsigned
constant is a signless one bitcast to the unsigned type, see
`PrimFuncBuilder.const`); every op whose meaning depends on signedness
(division, remainder, comparison, max / min, right shift, extension,
int <-> float) is chosen from its operand's type when tensor programs are
built, and the interpreter and the C target read an unsigned value as
unsigned.

bfloat16 is stored as 16 bits and computed in float32 (each result rounded
to nearest even, as `ml_dtypes.bfloat16` arrays compute in numpy). numpy has
no bfloat16: its arrays are `ml_dtypes.bfloat16` arrays, a package onnx
depends on; without it every other dtype works and bfloat16 is an error
saying what to install.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
)
from xdsl.ir import Attribute

from relax_xdsl.errors import RelaxError

_TO_XDSL: dict[str, Attribute] = {
    "float16": Float16Type(),
    "bfloat16": BFloat16Type(),
    "float32": Float32Type(),
    "float64": Float64Type(),
    "int8": IntegerType(8),
    "int16": IntegerType(16),
    "int32": IntegerType(32),
    "int64": IntegerType(64),
    "uint8": IntegerType(8, Signedness.UNSIGNED),
    "uint16": IntegerType(16, Signedness.UNSIGNED),
    "uint32": IntegerType(32, Signedness.UNSIGNED),
    "uint64": IntegerType(64, Signedness.UNSIGNED),
    "bool": IntegerType(1),
}
_FROM_XDSL = {v: k for k, v in _TO_XDSL.items()}
DTYPES = tuple(_TO_XDSL)
_ALIASES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64", "i8": "int8", "i16": "int16",
            "i32": "int32", "i64": "int64", "ui8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64",
            "i1": "bool", "float": "float32", "int": "int64"}


def dtype_name(dtype: object) -> str:
    """Canonical numpy name of a dtype given as str, numpy dtype or xDSL type."""
    if isinstance(dtype, Attribute):
        if dtype not in _FROM_XDSL:
            raise RelaxError(f"unsupported element type {dtype}; supported: {', '.join(DTYPES)}")
        return _FROM_XDSL[dtype]
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
    else:
        try:
            name = np.dtype(dtype).name  # type: ignore[call-overload]
        except TypeError:
            raise RelaxError(f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPES)}") from None
    if name not in _TO_XDSL:
        raise RelaxError(f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPES)}")
    return name


def to_xdsl(dtype: object) -> Attribute:
    return _TO_XDSL[dtype_name(dtype)]


def bfloat16() -> np.dtype:
    """numpy's dtype for bfloat16 arrays (ml_dtypes')."""
    try:
        import ml_dtypes
    except ImportError:
        raise RelaxError("bfloat16 arrays need the ml_dtypes package (pip install ml_dtypes; onnx depends on it)") \
            from None
    return np.dtype(ml_dtypes.bfloat16)


def np_dtype(dtype: object) -> np.dtype:
    """The numpy dtype of a dtype given as str, numpy dtype or xDSL type."""
    name = dtype_name(dtype)
    return bfloat16() if name == "bfloat16" else np.dtype(name)


def is_float(dtype: str) -> bool:
    return dtype.startswith("float") or dtype == "bfloat16"


def is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def is_unsigned(dtype: object) -> bool:
    """uint8 .. uint64, given as a dtype name or an xDSL type (bool is not)."""
    if isinstance(dtype, IntegerType):
        return dtype.signedness.data == Signedness.UNSIGNED
    return isinstance(dtype, str) and dtype.startswith("uint")


def compute_dtype(dtype: str) -> str:
    """What a statistic over `dtype` accumulates in: float32 for the 16-bit
    floats (2048 + 1 is 2048 in float16), else the dtype itself."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype
