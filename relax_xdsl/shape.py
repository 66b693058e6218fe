"""Symbolic dims: ints or sympy expressions over nonnegative integer symbols.

Everything about dims lives here: construction, canonical printing in the
MLIR affine spelling (`n floordiv 2`, `n ceildiv 2`, `n mod 3`, `min(a, b)`),
a hand-written parser (IR text never reaches eval/sympify/parse_expr),
provable equality, and binding symbols from concrete shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import sympy

from relax_xdsl.errors import DimParseError, ShapeError

if TYPE_CHECKING:
    from xdsl.parser import AttrParser

Dim = int | sympy.Expr
"""A dim as users see it: a Python int, or a sympy expression."""

KEYWORDS = frozenset({"floordiv", "ceildiv", "mod", "min", "max"})

STATIC_DIM_LIMIT = 2**62
"""Static dims and the integers written in dims lie below this: sizes and
offsets computed from them in 64-bit arithmetic (C, the interpreter) then
start in range, and their products are checked where they are computed."""

MAX_DIM_NESTING = 100
"""Parentheses, `min(`/`max(` and unary minus nested deeper than this in one
dim are a parse error (the parser is recursive; Python's stack is not)."""


@cache
def sym(name: str) -> sympy.Symbol:
    """The symbol `name`: a nonnegative integer (a dim may be 0: an ONNX dim,
    a data-dependent size or an empty KV cache). One symbol per name, so
    every path that builds a symbol goes through here."""
    if not name.isidentifier() or name in KEYWORDS:
        raise DimParseError(f"invalid symbol name {name!r}")
    return sympy.Symbol(name, integer=True, nonnegative=True)


def canon(d: Dim | str) -> sympy.Expr:
    """The canonical sympy form of a dim (ints become sympy Integers)."""
    if isinstance(d, bool):
        raise DimParseError(f"a dim cannot be a bool ({d!r})")
    if isinstance(d, int):
        return sympy.Integer(d)
    if isinstance(d, str):
        return parse_dim_text(d)
    if isinstance(d, sympy.Symbol):
        if not _is_canonical(d):
            return sym(d.name)
        return d
    if isinstance(d, sympy.Expr):
        if not all(_is_canonical(s) for s in d.free_symbols):
            d = d.xreplace({s: sym(s.name) for s in d.free_symbols})
        if not d.has(sympy.floor, sympy.ceiling, sympy.Mod, sympy.Min, sympy.Max):
            return sympy.expand(d)
        return d.replace(_is_nested_floordiv, _merge_floordiv)
    if hasattr(d, "__index__"):
        return sympy.Integer(int(d))
    raise DimParseError(f"a dim must be an int, a str or a sympy expression, not {type(d).__name__}")


def _is_canonical(s: sympy.Symbol) -> bool:
    """True for the one symbol of its name that sym() makes (a symbol made
    elsewhere, e.g. a positive one, is another sympy symbol of that name)."""
    return s == sympy.Symbol(s.name, integer=True, nonnegative=True)


def _is_nested_floordiv(e: sympy.Expr) -> bool:
    """floor(floor(x) / c) with c a positive integer."""
    if not isinstance(e, sympy.floor):
        return False
    coeff, rest = e.args[0].as_coeff_Mul()
    return coeff.is_Rational and coeff.p == 1 and coeff.q > 1 and isinstance(rest, sympy.floor)


def _merge_floordiv(e: sympy.Expr) -> sympy.Expr:
    coeff, rest = e.args[0].as_coeff_Mul()
    return sympy.floor(rest.args[0] * coeff)


def to_python(d: sympy.Expr) -> Dim:
    """A dim for users: an int where it is constant, else the sympy expression."""
    return int(d) if d.is_Integer else d


def floordiv(a: Dim, b: Dim) -> sympy.Expr:
    return canon(sympy.floor(canon(a) / canon(b)))


def ceildiv(a: Dim, b: Dim) -> sympy.Expr:
    return sympy.ceiling(canon(a) / canon(b))


def mod(a: Dim, b: Dim) -> sympy.Expr:
    return sympy.Mod(canon(a), canon(b))


# --- equality ---------------------------------------------------------------


@lru_cache(maxsize=65536)
def _difference(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    diff = a - b
    if diff.is_Number:
        return diff
    return sympy.simplify(sympy.expand(diff))


def dims_equal(a: Dim, b: Dim) -> bool:
    """True when a == b is provable for every binding of the symbols."""
    a, b = canon(a), canon(b)
    if a == b:
        return True
    return _difference(a, b) == 0


def dims_differ(a: Dim, b: Dim) -> bool:
    """True when a != b is provable for every binding of the symbols."""
    a, b = canon(a), canon(b)
    if a == b:
        return False
    if a.is_Integer and b.is_Integer:
        return True
    d = _difference(a, b)
    return bool(d.is_zero is False)


def is_one(d: Dim) -> bool:
    return canon(d) == 1


# --- printing ---------------------------------------------------------------

_ADD, _MUL, _ATOM = 1, 2, 3


def check_static_dim(d: sympy.Expr, what: str | Callable[[], str]) -> None:
    """Raises ShapeError when `d` is a static dim outside [0, STATIC_DIM_LIMIT)
    or a symbolic one with an integer of magnitude STATIC_DIM_LIMIT or more.
    `what` names the dim in the message (a callable is called only then:
    every type's verifier checks every dim, and wording costs more than checking)."""
    if d.is_Integer:
        if not 0 <= int(d) < STATIC_DIM_LIMIT:
            raise ShapeError(f"{what if isinstance(what, str) else what()}: static dim {int(d)} is outside [0, 2**62)")
        return
    for atom in d.atoms(sympy.Integer):
        if abs(int(atom)) >= STATIC_DIM_LIMIT:
            raise ShapeError(f"{what if isinstance(what, str) else what()}: dim {dim_to_str(d)} holds the integer "
                             f"{int(atom)}, outside (-2**62, 2**62)")


def _print(e: sympy.Expr) -> tuple[str, int]:
    """Returns text and its precedence, so parentheses appear only where needed."""
    if e.is_Integer:
        v = int(e)
        return (str(v), _ATOM if v >= 0 else _ADD)
    if e.is_Symbol:
        return e.name, _ATOM
    if e.is_Rational:
        raise ShapeError(f"dim {e} is not an integer")
    if isinstance(e, sympy.Add):
        parts: list[str] = []
        for i, t in enumerate(e.as_ordered_terms()):
            coeff, rest = t.as_coeff_Mul()
            negative = coeff.is_negative
            mag = -t if negative else t
            text, prec = _print(mag)
            if prec < _MUL and len(e.args) > 1:
                text = f"({text})"
            if i == 0:
                parts.append(f"-{text}" if negative else text)
            else:
                parts.append(f"{'-' if negative else '+'} {text}")
        return " ".join(parts), _ADD
    if isinstance(e, sympy.Mul):
        coeff, rest = e.as_coeff_Mul()
        factors: list[sympy.Expr] = []
        if coeff != 1:
            if coeff == -1:
                text, prec = _print(rest)
                return f"-{text if prec > _ADD else '(' + text + ')'}", _ADD
            if not coeff.is_Integer:
                raise ShapeError(f"dim {e} is not an integer expression")
            factors.append(coeff)
        factors.extend(sympy.Mul.make_args(rest))
        texts = []
        for i, f in enumerate(factors):
            text, prec = _print(f)
            # `a*b floordiv c` reads as `(a*b) floordiv c`: a floordiv/ceildiv/mod
            # factor after the first needs parentheses.
            keyword = isinstance(f, (sympy.floor, sympy.ceiling, sympy.Mod)) and i > 0
            texts.append(text if prec >= _MUL and not keyword else f"({text})")
        return "*".join(texts), _MUL
    if isinstance(e, sympy.Pow) and e.exp.is_Integer and e.exp > 0:
        text, prec = _print(e.base)
        text = text if prec >= _MUL else f"({text})"
        return "*".join([text] * int(e.exp)), _MUL
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        num, den = sympy.fraction(sympy.together(e.args[0]))
        kw = "floordiv" if isinstance(e, sympy.floor) else "ceildiv"
        return f"{_operand(num)} {kw} {_operand(den)}", _MUL
    if isinstance(e, sympy.Mod):
        return f"{_operand(e.args[0])} mod {_operand(e.args[1])}", _MUL
    if isinstance(e, (sympy.Min, sympy.Max)):
        kw = "min" if isinstance(e, sympy.Min) else "max"
        args = sorted(e.args, key=sympy.default_sort_key)
        text = _print(args[-1])[0]
        for a in reversed(args[:-1]):
            text = f"{kw}({_print(a)[0]}, {text})"
        return text, _ATOM
    raise ShapeError(f"dim {e} cannot be written in IR (unsupported {type(e).__name__})")


def _operand(e: sympy.Expr) -> str:
    text, prec = _print(e)
    return text if prec == _ATOM else f"({text})"


def dim_to_str(d: Dim) -> str:
    """Canonical text of a dim: `784`, `2*n + 1`, `n floordiv 2`."""
    return _print(canon(d))[0]


def shape_to_str(shape: Sequence[Dim]) -> str:
    return "[" + ", ".join(dim_to_str(d) for d in shape) + "]"


# --- parsing ----------------------------------------------------------------


def parse_dim(parser: AttrParser) -> sympy.Expr:
    """Parses one dim expression from an xDSL parser's token stream (so errors
    carry line and column): `+ - *`, `floordiv`, `ceildiv`, `mod`, `min(,)`,
    `max(,)`, parentheses, integers (below 2**62) and symbol names, nested at
    most MAX_DIM_NESTING deep."""
    return _parse_sum(parser, 0)


def _parse_sum(p: AttrParser, depth: int) -> sympy.Expr:
    e = _parse_product(p, depth)
    while True:
        if p.parse_optional_punctuation("+"):
            e = e + _parse_product(p, depth)
        elif p.parse_optional_punctuation("-"):
            e = e - _parse_product(p, depth)
        else:
            return e


def _parse_product(p: AttrParser, depth: int) -> sympy.Expr:
    e = _parse_unary(p, depth)
    while True:
        if p.parse_optional_punctuation("*"):
            e = e * _parse_unary(p, depth)
        elif p.parse_optional_keyword("floordiv"):
            e = sympy.floor(e / _nonzero(p, _parse_unary(p, depth)))
        elif p.parse_optional_keyword("ceildiv"):
            e = sympy.ceiling(e / _nonzero(p, _parse_unary(p, depth)))
        elif p.parse_optional_keyword("mod"):
            e = sympy.Mod(e, _nonzero(p, _parse_unary(p, depth)))
        else:
            return e


def _nonzero(p: AttrParser, e: sympy.Expr) -> sympy.Expr:
    if e == 0:
        p.raise_error("division by zero in dim expression")
    return e


def _deeper(p: AttrParser, depth: int) -> int:
    if depth >= MAX_DIM_NESTING:
        p.raise_error(f"dim expression nested more than {MAX_DIM_NESTING} deep")
    return depth + 1


def _parse_unary(p: AttrParser, depth: int) -> sympy.Expr:
    if p.parse_optional_punctuation("-"):
        return -_parse_unary(p, _deeper(p, depth))
    return _parse_atom(p, depth)


def _parse_atom(p: AttrParser, depth: int) -> sympy.Expr:
    if p.parse_optional_punctuation("("):
        e = _parse_sum(p, _deeper(p, depth))
        p.parse_punctuation(")", " to close the parenthesis in a dim expression")
        return e
    start = p.pos
    value = p.parse_optional_integer(allow_boolean=False, allow_negative=False)
    if value is not None:
        if value >= STATIC_DIM_LIMIT:
            p.raise_error(f"integer {value} in a dim is not below 2**62", start, p.pos)
        return sympy.Integer(value)
    for kw, fn in (("min", sympy.Min), ("max", sympy.Max)):
        if p.parse_optional_keyword(kw):
            p.parse_punctuation("(", f" after '{kw}' in a dim expression")
            inner = _deeper(p, depth)
            a = _parse_sum(p, inner)
            p.parse_punctuation(",", f" between the arguments of '{kw}'")
            b = _parse_sum(p, inner)
            p.parse_punctuation(")", f" to close '{kw}('")
            return fn(a, b)
    name = p.parse_optional_identifier()
    if name is None:
        p.raise_error("expected a dim: an integer, a symbol name or a parenthesized expression")
    if name in KEYWORDS or not name.isidentifier() or "." in name or "$" in name:
        p.raise_error(f"'{name}' is not a valid symbol name in a dim expression")
    return sym(name)


def parse_dims(parser: AttrParser) -> tuple[sympy.Expr, ...]:
    """Parses `[d0, d1, ...]`."""
    return tuple(
        parser.parse_comma_separated_list(parser.Delimiter.SQUARE, lambda: canon(parse_dim(parser)))
    )


def parse_shape(parser: AttrParser) -> tuple[sympy.Expr, ...]:
    """Parses a tensor's or buffer's `[d0, d1, ...]`: as parse_dims, and a
    static dim outside [0, 2**62) is an error at its position."""

    def one() -> sympy.Expr:
        start = parser.pos
        d = canon(parse_dim(parser))
        try:
            check_static_dim(d, "shape")
        except ShapeError as err:
            parser.raise_error(str(err), start, parser.pos)
        return d

    return tuple(parser.parse_comma_separated_list(parser.Delimiter.SQUARE, one))


def parse_dim_text(text: str) -> sympy.Expr:
    """Parses a dim from a Python string. `//` and `%` are accepted here as
    spellings of floordiv and mod (IR text uses the MLIR keywords)."""
    from xdsl.context import Context
    from xdsl.parser import Parser
    from xdsl.utils.exceptions import ParseError
    from xdsl.utils.mlir_lexer import MLIRTokenKind

    src = text.replace("//", " floordiv ").replace("%", " mod ")
    try:
        p = Parser(Context(), src, name="<dim>")
        e = parse_dim(p)
        if p._current_token.kind != MLIRTokenKind.EOF:  # noqa: SLF001
            p.raise_error("unexpected text after the dim expression")
    except ParseError as err:
        raise DimParseError(f"invalid dim {text!r}: {_first_line(err)}") from None
    return canon(e)


def _first_line(err: Exception) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else str(err)


# --- binding ----------------------------------------------------------------


def free_symbols(dims: Iterable[Dim]) -> set[sympy.Symbol]:
    out: set[sympy.Symbol] = set()
    for d in dims:
        out |= canon(d).free_symbols
    return out


def symbols_in_order(shapes: Iterable[Sequence[Dim]]) -> list[sympy.Symbol]:
    """The symbols of some shapes in order of first appearance (the order of
    a program's index parameters and of a library function's symbol args)."""
    seen: list[sympy.Symbol] = []
    for shape in shapes:
        for d in shape:
            for s in sorted(canon(d).free_symbols, key=str):
                if s not in seen:
                    seen.append(s)
    return seen


def evaluate_dim(d: Dim, bindings: Mapping[sympy.Symbol, int]) -> int:
    """The value of a dim under bound symbols (every symbol must be bound)."""
    e = canon(d)
    if e.is_Integer:
        return int(e)
    v = e.xreplace({s: sympy.Integer(bindings[s]) for s in e.free_symbols if s in bindings})
    if not v.is_Integer:
        missing = sorted(s.name for s in v.free_symbols)
        if missing:
            raise ShapeError(f"dim {dim_to_str(e)} uses unbound symbol(s) {', '.join(missing)}")
        raise ShapeError(f"dim {dim_to_str(e)} does not evaluate to an integer")
    return int(v)


def format_bindings(bindings: Mapping[sympy.Symbol, int]) -> str:
    if not bindings:
        return "no symbols bound"
    return ", ".join(f"{s.name}={v}" for s, v in sorted(bindings.items(), key=lambda kv: kv[0].name))


def bind_shape(
    expected: Sequence[Dim],
    actual: Sequence[int],
    bindings: dict[sympy.Symbol, int],
    what: str,
) -> None:
    """Binds the symbols of `expected` from a concrete shape, then checks
    every dim. Bare symbols bind first; a dim linear in one unbound symbol is
    solved for it. Raises ShapeError naming `what`, the dim, the expected
    expression and the bound values."""
    expected = [canon(d) for d in expected]
    if len(expected) != len(actual):
        raise ShapeError(
            f"{what}: expected rank {len(expected)} {shape_to_str(expected)}, got shape {tuple(actual)}"
        )
    for e, v in zip(expected, actual):
        if e.is_Symbol and e not in bindings:
            if v < 0:
                raise ShapeError(f"{what}: symbol {e.name} must be >= 0, got {v} (shape {tuple(actual)})")
            bindings[e] = int(v)
    for i, (e, v) in enumerate(zip(expected, actual)):
        unbound = [s for s in e.free_symbols if s not in bindings]
        if len(unbound) == 1:
            _solve_linear(e, unbound[0], int(v), bindings, f"{what}: dim {i}")
    for i, (e, v) in enumerate(zip(expected, actual)):
        try:
            want = evaluate_dim(e, bindings)
        except ShapeError as err:
            raise ShapeError(f"{what}: dim {i}: {err}") from None
        if want != v:
            expect = dim_to_str(e) if e.is_Integer else f"{dim_to_str(e)} = {want} ({format_bindings(bindings)})"
            raise ShapeError(
                f"{what}: dim {i} is {v} but the signature expects {expect}; "
                f"full shape {tuple(actual)}, expected {shape_to_str(expected)}"
            )


def bind_values(
    expected: Sequence[Dim],
    values: Sequence[int],
    bindings: dict[sympy.Symbol, int],
    what: str,
) -> None:
    """`bind_shape` for sizes read from data (shape and scalar parameters,
    `tensor_to_shape`, `tensor_to_prim`): each value must first lie in
    (-2**62, 2**62), so that the sizes computed from it start in range."""
    for i, v in enumerate(values):
        if not -STATIC_DIM_LIMIT < int(v) < STATIC_DIM_LIMIT:
            raise ShapeError(f"{what}: value {i} is {int(v)}, outside (-2**62, 2**62)")
    bind_shape(expected, [int(v) for v in values], bindings, what)


def _solve_linear(e: sympy.Expr, s: sympy.Symbol, value: int, bindings: dict[sympy.Symbol, int],
                  what: str = "") -> None:
    known = e.xreplace({k: sympy.Integer(v) for k, v in bindings.items() if k in e.free_symbols})
    poly = sympy.Poly(known, s) if known.is_polynomial(s) else None
    if poly is None or poly.degree() != 1:
        return
    a, b = poly.all_coeffs()
    sol = sympy.Rational(value - b, 1) / a if a.is_Integer and b.is_Integer else None
    if sol is not None and sol.is_Integer:
        if sol < 0:
            raise ShapeError(f"{what} is {value}, which solves {dim_to_str(e)} for {s.name} = {int(sol)}, "
                             f"but {s.name} must be >= 0")
        bindings[s] = int(sol)
