"""Whole models through both targets: one executable per model and target,
called at several batch/sequence sizes, against the reference evaluator and
an independent numpy implementation (relax_xdsl.models)."""

from __future__ import annotations

import pytest
from util import assert_close

import relax_xdsl as rx
from relax_xdsl.models import Model, cnn, mlp, transformer_block

# Small instances for the interpreter (~1e5 scalar ops/s), full sizes for C.
SMALL = {
    "mlp": lambda: mlp(sizes=(24, 16, 10)),
    "cnn": lambda: cnn(channels=(2, 3, 4), image=8, classes=5),
    "transformer": lambda: transformer_block(d=8, heads=2, ff=16),
}
FULL = {"mlp": mlp, "cnn": cnn, "transformer": transformer_block}
BINDINGS = {"mlp": [(1,), (3,), (7,)], "cnn": [(1,), (3,)], "transformer": [(1, 1), (2, 5), (3, 7)]}


def check(model: Model, target: str, bindings: list[tuple[int, ...]]) -> None:
    exe = rx.compile(model.module, target=target)
    for size in bindings:
        inputs = model.make_inputs(*size)
        got = exe["main"](*inputs)
        assert_close(got, rx.evaluate(model.module, "main", *inputs))
        assert_close(got, model.numpy_fn(*inputs).astype(got.dtype))


@pytest.mark.parametrize("name", list(FULL))
def test_model_c(name: str) -> None:
    check(FULL[name](), "c", BINDINGS[name])


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "cnn" else n for n in SMALL])
def test_model_interp(name: str) -> None:
    check(SMALL[name](), "interp", BINDINGS[name][:2])


def test_model_interp_and_c_agree_small() -> None:
    model = SMALL["transformer"]()
    inputs = model.make_inputs(2, 3)
    a = rx.compile(model.module, target="interp")["main"](*inputs)
    b = rx.compile(model.module, target="c")["main"](*inputs)
    assert_close(a, b)


@pytest.mark.slow
def test_full_size_mlp_on_the_interpreter() -> None:
    """The issue's MLP (784-256-10 + softmax) itself on the interpreter, from
    one executable at two batch sizes (about 4 s per sample there)."""
    check(mlp(), "interp", [(1,), (2,)])
