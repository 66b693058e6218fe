"""Differential testing: random graph functions over a slice of the operator
set (elementwise chains with broadcasting, reductions, reshapes, permutes,
concat, matmul) with symbolic shapes, valid by construction, run through the
reference evaluator and the C target with the default and fast pipelines at
several bindings of the symbols including 1. A fixed seed and a bounded
example count keep CI fast; RELAX_XDSL_FUZZ_EXAMPLES raises the count."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from util import assert_close, roundtrip

import relax_xdsl as rx
from relax_xdsl import op

EXAMPLES = int(os.environ.get("RELAX_XDSL_FUZZ_EXAMPLES", "12"))

UNARY = ["exp", "negative", "tanh", "sigmoid", "relu", "abs"]
BINARY = ["add", "subtract", "multiply", "maximum", "minimum"]


@st.composite
def programs(draw: Any) -> tuple[Any, list[tuple[np.ndarray, ...]]]:
    """A function of x: [n, 4] and y: [4] or [n, 4], with a random op chain."""
    y_full = draw(st.booleans())
    steps = draw(st.lists(st.sampled_from(["unary", "binary", "reduce", "epilogue", "reshape", "permute", "concat",
                                           "matmul"]),
                          min_size=1, max_size=6))
    choices = [draw(st.integers(0, 1000)) for _ in steps]
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4], "float32")
        y = fb.param("y", ["n", 4] if y_full else [4], "float32")
        w = fb.const(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4))
        cur = x
        for step, c in zip(steps, choices):
            if cur.ndim != 2 or cur.shape[1] != 4:
                cur = op.reshape(cur, ["n", 4]) if cur.ndim else op.add(x, cur)
            if step == "unary":
                cur = getattr(op, UNARY[c % len(UNARY)])(cur)
            elif step == "binary":
                cur = getattr(op, BINARY[c % len(BINARY)])(cur, y if c % 2 else x)
            elif step == "reduce":
                red = op.sum(cur, axis=[1], keepdims=True) if c % 2 else op.max(cur, axis=[1], keepdims=True)
                cur = op.subtract(cur, red)
            elif step == "epilogue":  # a reduction with elementwise ops of its shape after it
                red = op.sum(cur, axis=[1]) if c % 2 else op.max(cur, axis=[1])
                cur = op.add(x, op.expand_dims(getattr(op, UNARY[c % len(UNARY)])(red), [1]))
            elif step == "reshape":
                cur = op.reshape(op.reshape(cur, [-1, 2]), ["n", 4])
            elif step == "permute":
                cur = op.permute_dims(op.permute_dims(cur, [1, 0]), [1, 0])
            elif step == "concat":
                cur = op.strided_slice(op.concat([cur, x], axis=1), [1], [c % 4], [c % 4 + 4])
            else:
                cur = op.nn.softmax(op.matmul(cur, w), axis=-1)
        fb.ret(cur)
    cases = []
    for k, n in enumerate((1, 3, 5)):
        rng = np.random.default_rng(k)
        cases.append((rng.standard_normal((n, 4)).astype(np.float32),
                      rng.standard_normal((n, 4) if y_full else (4,)).astype(np.float32)))
    return fb.module, cases


@seed(20261125)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs())
def test_random_programs_agree_everywhere(program: tuple[Any, list[tuple[np.ndarray, ...]]]) -> None:
    module, cases = program
    module = roundtrip(module)
    expected = [rx.evaluate(module, "main", *args) for args in cases]
    for pipeline in ("default", "fast"):
        roundtrip(rx.lower(module, pipeline))
        exe = rx.compile(module, target="c", pipeline=pipeline)
        for args, want in zip(cases, expected):
            assert_close(exe.main(*args), want)
