"""Symbolic dims: parsing, canonical printing, equality, binding."""

from __future__ import annotations

import pytest
import sympy

from relax_xdsl.errors import DimParseError, ShapeError
from relax_xdsl.shape import (
    bind_shape,
    canon,
    ceildiv,
    dim_to_str,
    dims_differ,
    dims_equal,
    evaluate_dim,
    floordiv,
    mod,
    parse_dim_text,
    sym,
)

n, m, b, t = sym("n"), sym("m"), sym("b"), sym("t")


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("n*784", "784*n"),
        ("784*n", "784*n"),
        ("(b*t*256) floordiv 64", "4*b*t"),
        ("2*n + 1", "2*n + 1"),
        ("1 + n*2", "2*n + 1"),
        ("n floordiv 2", "n floordiv 2"),
        ("(n + 1) floordiv 2", "(n + 1) floordiv 2"),
        ("n ceildiv 2", "n ceildiv 2"),
        ("n mod 3", "n mod 3"),
        ("min(a, b)", "min(a, b)"),
        ("max(n, 4) + 1", "max(4, n) + 1"),
        ("n - 1", "n - 1"),
        ("-1", "-1"),
        ("(n - 1)*2", "2*n - 2"),
        ("n*n", "n*n"),
        ("(n floordiv 2) floordiv 2", "n floordiv 4"),
        ("((n))", "n"),
    ],
)
def test_parse_print_roundtrip(text: str, printed: str) -> None:
    e = parse_dim_text(text)
    assert dim_to_str(e) == printed
    assert parse_dim_text(dim_to_str(e)) == e


def test_python_spellings_and_canonical_forms() -> None:
    assert parse_dim_text("(b*t*256)//64") == 4 * b * t
    assert parse_dim_text("n % 3") == sympy.Mod(n, 3)
    assert canon("n*784") == canon("784*n")
    assert canon(7) == sympy.Integer(7)
    assert floordiv(b * t * 256, 64) == 4 * b * t
    assert dim_to_str(ceildiv(n, 2)) == "n ceildiv 2"
    assert dim_to_str(mod(n, 3)) == "n mod 3"


@pytest.mark.parametrize("bad", ["n+", "2**n", "__import__('os')", "n floordiv 0", "mod", "", "n m", "(n", "min(n)", "1.5", "n.x"])
def test_malformed_dims_are_rejected(bad: str) -> None:
    with pytest.raises(DimParseError, match="invalid dim"):
        parse_dim_text(bad)


def test_equality_and_difference() -> None:
    assert dims_equal(n * 784, 784 * n)
    assert dims_equal(floordiv(4 * n, 2), 2 * n)
    assert dims_differ(n, n + 1)
    assert not dims_differ(n, 2 * n)  # symbols are >= 0: equal at n = 0
    assert dims_differ(n, 2 * n + 1)
    assert dims_differ(3, 4)
    assert not dims_differ(n, m)
    assert not dims_equal(n, m)
    assert not dims_differ(n, 3)


def test_evaluate_and_bind() -> None:
    assert evaluate_dim(2 * n + 1, {n: 3}) == 7
    assert evaluate_dim(floordiv(n, 2), {n: 7}) == 3
    assert evaluate_dim(ceildiv(n, 2), {n: 7}) == 4
    bindings: dict[sympy.Symbol, int] = {}
    bind_shape(["n", "2*m"], [3, 8], bindings, "input x")
    assert bindings == {n: 3, m: 4}
    with pytest.raises(ShapeError, match=r"input x: dim 1 is 4 but the signature expects n = 3 \(n=3\)"):
        bind_shape(["n", "n"], [3, 4], {}, "input x")
    with pytest.raises(ShapeError, match="expected rank 2"):
        bind_shape(["n", "n"], [3], {}, "input x")
    with pytest.raises(ShapeError, match="2\\*m"):
        bind_shape(["2*m"], [7], {}, "input y")
    zero: dict[sympy.Symbol, int] = {}
    bind_shape(["n"], [0], zero, "input z")  # symbols are >= 0: an empty dim binds
    assert zero == {n: 0}
    with pytest.raises(ShapeError, match="n = -1.*must be >= 0"):
        bind_shape(["n + 2"], [1], {}, "input z")


def test_floordiv_factors_print_with_parentheses() -> None:
    """`4*((3*n) floordiv 2)` is not `(4*3*n) floordiv 2`: the printer must keep
    the grouping so the text parses back to the same dim."""
    from relax_xdsl.shape import canon, dim_to_str, floordiv, parse_dim_text, sym

    n = sym("n")
    for e in (4 * floordiv(3 * n, 2), floordiv(3 * n, 2) * n, sympy.Mod(n, 3) * 2, 2 * n * sympy.ceiling(n / 4)):
        text = dim_to_str(e)
        assert canon(parse_dim_text(text)) == canon(e), text
