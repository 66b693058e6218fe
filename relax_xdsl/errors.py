"""The project's error types: each names what is wrong and where."""

from __future__ import annotations


class RelaxError(Exception):
    """Base class of every error relax_xdsl raises on bad user input."""


class ShapeError(RelaxError, ValueError):
    """A shape is provably wrong at build time, or an input's shape breaks a
    function's signature at run time (naming the input, dim, expected
    expression and bound symbol values)."""


class DimParseError(RelaxError, ValueError):
    """A symbolic dim written as text could not be parsed."""


class IRParseError(RelaxError, ValueError):
    """Textual IR could not be parsed or verified; the message carries the
    line and column."""


class ResourceLimitError(RelaxError, MemoryError):
    """A buffer would exceed the allocation limit (RELAX_XDSL_MAX_ALLOC_BYTES)
    or cannot be allocated: names the buffer, its byte count and the limit."""


class BoundsError(RelaxError, IndexError):
    """An index out of range: a gather index (`take`) outside [-n, n) on any
    target, or, in debug mode, a buffer access out of bounds (function,
    buffer, dim, index and extent)."""


INDEX_OUT_OF_RANGE = "is out of range for an axis of extent"
"""The words of every index-out-of-range message. Compiled code reports a
failed check as text (`rx_last_error`); these words are how the C backend
tells an index error (BoundsError) from a shape error."""


def index_out_of_range(what: str, index: int, extent: int) -> BoundsError:
    """The error for a gather index outside [-extent, extent): the same text
    from the evaluator, the interpreter and C (whose runtime prints it with
    this format), naming the op, the index and the axis extent."""
    return BoundsError(f"{what}: index {index} {INDEX_OUT_OF_RANGE} {extent}")
