"""Resource limits: how large one buffer may be, at every level (reference
evaluator, interpreter, generated C), so a symbolic shape bound to absurd
sizes is a clear error rather than an exhausted machine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache

from relax_xdsl.errors import ResourceLimitError

ENV = "RELAX_XDSL_MAX_ALLOC_BYTES"


@cache
def physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def max_alloc_bytes() -> int:
    """$RELAX_XDSL_MAX_ALLOC_BYTES, else half the machine's physical memory."""
    text = os.environ.get(ENV)
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ResourceLimitError(f"{ENV}={text!r} is not an integer number of bytes") from None
        if value <= 0:
            raise ResourceLimitError(f"{ENV}={text!r} must be positive")
        return value
    return physical_memory() // 2


def check_alloc(shape: Sequence[int], itemsize: int, what: str) -> None:
    """Raises ResourceLimitError when a buffer of `shape` would exceed the limit."""
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * itemsize
    limit = max_alloc_bytes()
    if nbytes > limit:
        raise ResourceLimitError(f"{what}: a buffer of shape {tuple(int(d) for d in shape)} needs {nbytes} bytes, "
                                 f"above the allocation limit of {limit} bytes ({ENV})")


CALL_DEPTH_ENV = "RELAX_XDSL_MAX_CALL_DEPTH"
DEFAULT_CALL_DEPTH = 200


def max_call_depth() -> int:
    """$RELAX_XDSL_MAX_CALL_DEPTH, else 200: how deep `relax.call`s may nest
    (recursion is how Relax programs may loop; a bound keeps hostile input
    from exhausting the stack)."""
    text = os.environ.get(CALL_DEPTH_ENV)
    if not text:
        return DEFAULT_CALL_DEPTH
    try:
        value = int(text)
    except ValueError:
        raise ResourceLimitError(f"{CALL_DEPTH_ENV}={text!r} is not an integer") from None
    if value <= 0:
        raise ResourceLimitError(f"{CALL_DEPTH_ENV}={text!r} must be positive")
    return value
