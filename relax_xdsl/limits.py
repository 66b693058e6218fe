"""Resource limits: how large one buffer may be, how deep calls may nest and
how many times a loop may run, at every level (reference evaluator,
interpreter, generated C), so a symbolic shape bound to absurd sizes or
hostile control flow is a clear error rather than an exhausted machine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation

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


LOOP_ENV = "RELAX_XDSL_MAX_LOOP_ITERATIONS"
DEFAULT_LOOP_ITERATIONS = 2**31
"""Far more iterations than any model's loop runs (a decoder's tokens, a
Loop over a sequence), yet a bound: a hostile trip count with a condition
that stays true (an ONNX Loop of 2**62 iterations) stops in finite time."""

WHILE_NAME_ATTR = "relax.while_name"
"""On a lowered scf.while: the name of the graph loop it came from, which
the interpreter and the emitted C count iterations for and name in errors."""

LOOP_TOO_LONG = "more iterations than"
"""The words of every loop-limit message (compiled code reports it as text,
and the C backend tells it from other failures by these words)."""


def max_loop_iterations() -> int:
    """$RELAX_XDSL_MAX_LOOP_ITERATIONS, else DEFAULT_LOOP_ITERATIONS: how many
    times one `relax.while` may run its body per execution, on every target."""
    return positive_int_env(LOOP_ENV, DEFAULT_LOOP_ITERATIONS, "iterations")


def loop_limit_message(loop: str, limit: int) -> str:
    """The one wording of a loop over the limit (C prints the same words)."""
    return f"{loop}: {LOOP_TOO_LONG} {limit} ({LOOP_ENV})"


def loop_name(loop: Operation) -> str:
    """The graph loop a lowered scf.while came from (WHILE_NAME_ATTR), for errors."""
    name = loop.attributes.get(WHILE_NAME_ATTR)
    return name.data if isinstance(name, StringAttr) else loop.name
