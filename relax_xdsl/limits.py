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


RECURSION_ENV = "RELAX_XDSL_MAX_RECURSION_DEPTH"
DEFAULT_RECURSION_DEPTH = 1000
"""Host functions keep only scalars and pointers in their frames, so 1000
nested calls stay far below a thread's C stack (8 MiB by default)."""

RECURSION_TOO_DEEP = "recursion deeper than"
"""The words of every recursion-limit message: compiled code reports it as
text (`rx_last_error`), and the C backend tells it from other failures by
these words (a ResourceLimitError)."""


def max_recursion_depth() -> int:
    """$RELAX_XDSL_MAX_RECURSION_DEPTH, else DEFAULT_RECURSION_DEPTH: how
    deep calls between functions that call each other in a cycle may nest
    (on every target), so recursive input cannot overflow the stack."""
    text = os.environ.get(RECURSION_ENV)
    if not text:
        return DEFAULT_RECURSION_DEPTH
    try:
        value = int(text)
    except ValueError:
        raise ResourceLimitError(f"{RECURSION_ENV}={text!r} is not an integer number of calls") from None
    if value <= 0:
        raise ResourceLimitError(f"{RECURSION_ENV}={text!r} must be positive")
    return value
