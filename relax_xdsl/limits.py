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


def positive_int_env(name: str, default: int, unit: str) -> int:
    """$name as a positive integer (`unit` words the error), else `default`."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ResourceLimitError(f"{name}={text!r} is not an integer number of {unit}") from None
    if value <= 0:
        raise ResourceLimitError(f"{name}={text!r} must be positive")
    return value


def max_alloc_bytes() -> int:
    """$RELAX_XDSL_MAX_ALLOC_BYTES, else half the machine's physical memory."""
    return positive_int_env(ENV, physical_memory() // 2, "bytes")


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
    return positive_int_env(RECURSION_ENV, DEFAULT_RECURSION_DEPTH, "calls")
