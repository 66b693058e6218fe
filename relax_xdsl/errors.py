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
    """Debug mode caught a buffer access out of bounds (function, buffer,
    dim, index and extent)."""
