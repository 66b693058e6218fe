"""Element semantics every target shares where C (or numpy) leaves them
undefined or platform-dependent: float -> int conversion and bool bytes.

float -> int: NaN gives 0, values beyond the integer type saturate to its
minimum / maximum (+-inf included; 0 for unsigned types below 0), the rest
truncate toward zero. C
leaves those inputs undefined and numpy's answer depends on the platform
(x86 gives INT_MIN for all of them at 32 and 64 bits); the evaluator's
astype reference, the interpreter and the generated C (`rx_fptosi<w>` in
the prelude) all use this one definition.

bool: numpy stores a bool as one byte and does not check it; an array
viewed from other bytes can hold 2, which C's `bool` may not (gcc assumes 0
or 1) and numpy's own casts pass through (astype(float32) gives 2.0). Inputs
are normalised at every call boundary: any nonzero byte is True.
"""

from __future__ import annotations

import math

import numpy as np


def float_to_int(value: float, width: int) -> int:
    """One float converted to a signed `width`-bit integer (see the module docstring)."""
    if math.isnan(value):
        return 0
    hi = 2 ** (width - 1)
    if value >= hi:
        return hi - 1
    if value < -hi:
        return -hi
    return int(value)


def float_to_uint(value: float, width: int) -> int:
    """One float converted to an unsigned `width`-bit integer: NaN gives 0,
    values below 0 (-inf included) 0, values beyond the type its maximum, the
    rest truncate toward zero (as float_to_int_array for unsigned dtypes)."""
    if math.isnan(value) or value <= 0:
        return 0
    if value >= 2**width:
        return 2**width - 1
    return int(value)


def float_to_int_array(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A float array converted to an integer dtype (see the module docstring)."""
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out = x.astype(dtype)
    wide = x.astype(np.float64, copy=False)  # every bound below is exact in float64
    out[np.isnan(wide)] = 0
    out[wide >= float(info.max) + 1] = info.max
    out[wide < float(info.min)] = info.min
    return out


def normalize_bool(a: np.ndarray) -> np.ndarray:
    """A bool array whose bytes are all 0 or 1: `a` itself when they already
    are, else a copy with every nonzero byte True."""
    if a.dtype != np.bool_ or a.size == 0:
        return a
    raw = a.view(np.uint8)
    if raw.max() <= 1:
        return a
    return raw != 0
