"""Library functions known from Python: the numpy references that the
evaluator and the interpreter run for `lib.call` (by the `reference` name
of a `lib.func`), and what the C target needs to call and link them.

Each declares the one C symbol it provides; a `lib.func` may only name that
symbol (its verifier and the C emitter check), so IR cannot call `system`,
`execv` or any other function no registered library provides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from relax_xdsl.errors import RelaxError

Reference = Callable[..., None]
"""Called with the input arrays then the output arrays; writes the outputs."""

# The C calling convention of a library function (what `c_source` defines,
# or what a library given by `link` exports): `void f(T* in..., T* out...,
# int64_t dims...)`: one data pointer per buffer (inputs, then outputs, dense
# row-major), then every dim of every buffer, in the same order. The caller
# has checked the dims against the `lib.func`'s buffer types.


@dataclass
class LibraryFunction:
    name: str
    reference: Reference
    c_source: str = ""
    link: list[str] = field(default_factory=list)
    symbol: str = ""
    """The C symbol it provides (what `c_source` defines or `link` exports);
    by default the name with each character other than a letter, digit or
    `_` replaced by `_` (`user.scale2` -> `user_scale2`)."""
    pure: bool = False
    """It writes only its output buffers (no other memory, no I/O, no
    state): a `lib.func` of it may be declared `pure` and called in a
    relax.dataflow block. Not assumed: a library declares it."""
    constant_inputs: tuple[int, ...] = ()
    """Indexes of the buffers that must be model constants (the C emitter
    refuses any other operand there): the C function may keep what it
    derives from them between calls, keyed on their address (oneDNN's
    reordered conv weights)."""

    def __post_init__(self) -> None:
        if not self.symbol:
            self.symbol = default_symbol(self.name)
        problem = _symbol_problem(self.symbol)
        if problem is not None:
            raise RelaxError(f"library function {self.name!r}: its C symbol {self.symbol!r} {problem}")


def default_symbol(name: str) -> str:
    """The C symbol of a library function registered without one."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _symbol_problem(symbol: str) -> str | None:
    from relax_xdsl.backend.c_names import library_symbol_problem
    from relax_xdsl.backend.c_python import helper_names

    return library_symbol_problem(symbol, helper_names())


_REFERENCES: dict[str, LibraryFunction] = {}


def register_library_function(name: str, reference: Reference, c_source: str = "", link: list[str] | None = None,
                              symbol: str = "", pure: bool = False,
                              constant_inputs: tuple[int, ...] = ()) -> LibraryFunction:
    """Registers (or replaces) the library function `name`, providing the C
    symbol `symbol` (default: default_symbol(name)); RelaxError if that
    symbol is no C identifier, a keyword or a name of the C backend. `pure`:
    it writes only its outputs (LibraryFunction.pure); `constant_inputs`:
    LibraryFunction.constant_inputs."""
    fn = LibraryFunction(name, reference, c_source, list(link or []), symbol, pure, tuple(constant_inputs))
    _REFERENCES[name] = fn
    return fn


_BUILTIN_LIBRARIES = {"blas.": "relax_xdsl.blas", "dnnl.": "relax_xdsl.dnnl"}
"""Name prefixes of library functions registered by a module of the package."""


_RESOLVERS: list[Callable[[str], LibraryFunction | None]] = []


def register_resolver(resolver: Callable[[str], LibraryFunction | None]) -> None:
    """A family of library functions whose names carry their parameters
    (`blas.conv2d:1,1,1,1,1,1`): `resolver(name)` registers and returns the
    function for such a name, or returns None."""
    _RESOLVERS.append(resolver)


def lookup(name: str) -> LibraryFunction:
    if name not in _REFERENCES:
        for prefix, module in _BUILTIN_LIBRARIES.items():
            if name.startswith(prefix):
                import importlib

                importlib.import_module(module)
    if name not in _REFERENCES:
        for resolver in _RESOLVERS:
            if resolver(name) is not None:
                break
    if name not in _REFERENCES:
        known = ", ".join(sorted(_REFERENCES)) or "none"
        raise RelaxError(f"no library function registered as {name!r} (registered: {known})")
    return _REFERENCES[name]


def _matmul_ref(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


register_library_function("blas.matmul", _matmul_ref, pure=True)
