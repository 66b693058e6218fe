"""The fuzz generator's own rules (tests/fuzz_programs.py): which programs
get the huge binding of the "large" edge case."""

from __future__ import annotations

from typing import Any

from fuzz_programs import BINDINGS, LARGE, LARGE_MANY, heavy_value, huge_binding

import relax_xdsl as rx
from relax_xdsl import op


def layer_norm_of_empty(shapes: list[list[Any]], gamma_from_data: bool = True) -> Any:
    """layer_norm over x0 = [0, k], its gamma and beta the means of x0 over
    the empty axis ([k], NaN) as the generator draws them; without them, a
    tanh of x0 (every value empty)."""
    with rx.FunctionBuilder("main") as fb:
        xs = [fb.param(f"x{i}", shape, "float32") for i, shape in enumerate(shapes)]
        if gamma_from_data:
            gamma, beta = op.sigmoid(op.mean(xs[0], axis=[0])), op.tanh(op.mean(xs[0], axis=[0]))
            fb.ret(op.layer_norm(xs[0], gamma, beta, axes=[-1], epsilon=1e-2))
        else:
            fb.ret(op.tanh(xs[0]))
    return fb.module


def test_no_huge_binding_where_an_intermediate_is_large_yet_allocatable() -> None:
    # the core of a seed-12 program: inputs of several symbolic dims give LARGE_MANY (2**20 + 1), where
    # gamma and beta are [k] of a million floats the interpreter computed for 5.5 minutes
    shapes: list[list[Any]] = [[0, "k"], [0, 4], [0, "m", "n", "n"]]
    module = layer_norm_of_empty(shapes)
    assert "[k], f32" in str(heavy_value(module, LARGE_MANY))
    assert all(heavy_value(module, b) is None for b in BINDINGS)
    assert huge_binding(module, shapes) is None
    # everything empty there: the binding stays
    assert huge_binding(layer_norm_of_empty(shapes, gamma_from_data=False), shapes) is LARGE_MANY


def test_huge_binding_kept_where_large_intermediates_are_refused() -> None:
    # one symbolic dim per input: LARGE (2**32 + 3), where [k] needs 16 GiB, past the allocation limit
    shapes: list[list[Any]] = [[0, "k"]]
    module = layer_norm_of_empty(shapes)
    assert heavy_value(module, LARGE) is None
    assert huge_binding(module, shapes) is LARGE
    assert huge_binding(module, [[0, 4]]) is None  # no symbol to make huge
