"""Element types: numpy dtype names <-> xDSL builtin types."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
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
    "float32": Float32Type(),
    "float64": Float64Type(),
    "int8": IntegerType(8),
    "int32": IntegerType(32),
    "int64": IntegerType(64),
    "uint8": IntegerType(8, Signedness.UNSIGNED),
    "bool": IntegerType(1),
}
_FROM_XDSL = {v: k for k, v in _TO_XDSL.items()}
DTYPES = tuple(_TO_XDSL)
_ALIASES = {"f16": "float16", "f32": "float32", "f64": "float64", "i8": "int8", "i32": "int32",
            "i64": "int64", "ui8": "uint8", "i1": "bool", "float": "float32", "int": "int64"}


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


def is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))
