"""How names and text from IR, ONNX or user code reach generated C: the
only two ways in.

`mangle` turns a name into identifier characters injectively, and every
C identifier made from a name is a fixed namespace prefix plus `mangle`d
text, so two different names never meet in C (`@"f-1"` and `@f_1` were once
one C function), and no name can become a C keyword, a libc function or a
helper of the backend (`rx_alloc`, `a0`, ...). `c_string` is the only way
text becomes a C string literal, so no name or message can end the literal
and inject code.
"""

from __future__ import annotations

import re

FUNCTION = "rxf_"
"""Namespace of a defined function (looked up by ctypes)."""

ENTRY = "rxpy_f_"
"""Namespace of a function's CPython entry point (and its method table key)."""

POOL = "rxp_"
"""Namespace of a host function's memory-planning pool (a static global)."""

_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def mangle(name: str) -> str:
    """`name` as identifier characters, injectively: ASCII letters and
    digits are kept, `_` becomes `__` and every other byte of the UTF-8
    name becomes `_xx` (two lowercase hex digits). Reading left to right,
    `_` is followed by either `_` or exactly two hex digits, so the name is
    recovered from the result. Never used without a namespace prefix."""
    out = []
    for byte in name.encode("utf-8", "surrogatepass"):
        if byte in _ALNUM:
            out.append(chr(byte))
        elif byte == 0x5F:
            out.append("__")
        else:
            out.append(f"_{byte:02x}")
    return "".join(out)


def c_ident(namespace: str, name: str) -> str:
    """The C identifier of `name` in `namespace` (FUNCTION, ENTRY, POOL)."""
    return namespace + mangle(name)


def local_name(counter: int, hint: str | None) -> str:
    """A local variable of a generated function: `v<counter>`, then the
    mangled hint (`v12_acc`). The counter is unique per function, and no
    other name of the backend starts with `v` and a digit."""
    return f"v{counter}_{mangle(hint)}" if hint else f"v{counter}"


_PRINTABLE = frozenset(range(0x20, 0x7F)) - {ord("\\"), ord('"'), ord("?")}


def c_string(text: str) -> str:
    """`text` as a C string literal (with its quotes) holding its UTF-8
    bytes: printable ASCII as is, except `\\`, `"` and `?` (trigraphs)
    escaped; every other byte (newlines, NUL, non-ASCII) as a three-digit
    octal escape, which cannot take in a following character."""
    out = ['"']
    for byte in text.encode("utf-8", "surrogatepass"):
        if byte in _PRINTABLE:
            out.append(chr(byte))
        elif byte in (0x5C, 0x22, 0x3F):
            out.append("\\" + chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long register
restrict return short signed sizeof static struct switch typedef union unsigned void volatile while _Alignas _Alignof
_Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local asm typeof bool true false
""".split())

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BACKEND_NAMES = re.compile(r"(rxf_|rxp_|rxpy_|v[0-9]).*|[ar][0-9]+(_d[0-9]+|_dims)?|rx_g|rx_owned|rx_cleanup|main")


def library_symbol_problem(symbol: str, backend_names: frozenset[str] = frozenset()) -> str | None:
    """Why `symbol` cannot be a library function's C symbol, or None: it
    must be a C identifier that is no keyword, does not start with `__`
    or `_` and a capital (reserved to the C implementation) and is none of
    the backend's names (its namespaces, parameters, and `backend_names`,
    the helpers its C runtime defines)."""
    if not _IDENTIFIER.fullmatch(symbol):
        return "is not a C identifier"
    if symbol in C_KEYWORDS:
        return "is a C keyword"
    if symbol.startswith("__") or (symbol[0] == "_" and len(symbol) > 1 and symbol[1].isupper()):
        return "is reserved to the C implementation"
    if _BACKEND_NAMES.fullmatch(symbol) or symbol in backend_names:
        return "is a name of the C backend"
    return None
