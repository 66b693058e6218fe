"""recognize-attention end to end: written-out attention in the forms
exporters produce, compiled by the default pipeline (one rx_blas_attention
call) and by `baseline` (every op its own kernel), against the reference
evaluator of the unfused module, on symbolic sizes including 0 and 1, with
padding masks that remove whole rows. The pass's matching (and its near
misses) is tests/filecheck/graph_opt/recognize_attention.mlir."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from util import assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op

SIZES = [(1, 1, 1), (2, 3, 5), (0, 2, 3), (2, 0, 3), (1, 4, 0), (2, 130, 70)]
"""(b, s, t): 130 query rows are two row blocks of the C kernel at t = 70."""


def sdpa_where(q: rx.Var, k: rx.Var, v: rx.Var, mask: rx.Var) -> rx.Var:
    """torch.onnx's SDPA: K^T from the [b, t, h, d] projection, mask, Where(IsNaN)."""
    p = op.nn.softmax(op.add(op.matmul(q, op.permute_dims(k, [0, 2, 3, 1])), mask), axis=-1)
    return op.matmul(op.where(op.isnan(p), 0.0, p), v)


def bert_eager(q: rx.Var, k: rx.Var, v: rx.Var, mask: rx.Var) -> rx.Var:
    """transformers' eager BERT: (q @ K^T) / sqrt(d) + mask."""
    s = op.divide(op.matmul(q, op.permute_dims(k, [0, 2, 3, 1])), np.float32(8.0))
    return op.matmul(op.nn.softmax(op.add(s, mask), axis=-1), v)


def scaled(q: rx.Var, k: rx.Var, v: rx.Var, mask: rx.Var) -> rx.Var:
    """A multiply by a scalar on the left, the mask on the left too."""
    s = op.multiply(np.float32(0.3), op.matmul(q, op.permute_dims(k, [0, 2, 3, 1])))
    return op.matmul(op.nn.softmax(op.add(mask, s), axis=-1), v)


FORMS: dict[str, Callable[..., rx.Var]] = {"sdpa_where": sdpa_where, "bert_eager": bert_eager, "scaled": scaled}


def build(form: Callable[..., rx.Var], d: int = 64) -> object:
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", ["b", 2, "s", d], "float32")
        k = fb.param("k", ["b", "t", 2, d], "float32")
        v = fb.param("v", ["b", 2, "t", 5], "float32")
        mask = fb.param("mask", ["b", 1, 1, "t"], "float32")
        fb.ret(form(q, k, v, mask))
    return fb.module


def inputs(b: int, s: int, t: int, d: int = 64, seed: int = 0) -> tuple[np.ndarray, ...]:
    mask = np.zeros((b, 1, 1, t), np.float32)
    mask[..., t // 2:] = np.finfo(np.float32).min  # padding: a large negative, as transformers write it
    if b > 1 and t:
        mask[1] = -np.inf  # a sequence that is all padding: every row of it masked
    return (rand((b, 2, s, d), seed=seed), rand((b, t, 2, d), seed=seed + 1), rand((b, 2, t, 5), seed=seed + 2), mask)


def check(got: object, want: object) -> None:
    got, want = np.asarray(got), np.asarray(want)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert_close(np.where(nan, 0, got), np.where(nan, 0, want))


@pytest.mark.parametrize("name", FORMS)
def test_fused_matches_the_written_out_form(name: str) -> None:
    module = build(FORMS[name])
    lowered = rx.print_module(rx.lower(module))
    assert lowered.count("func.call @rx_blas_attention") == 1 and "softmax" not in lowered
    fused, plain = rx.compile(module), rx.compile(module, target="interp", pipeline="baseline")
    for i, (b, s, t) in enumerate(SIZES):
        args = inputs(b, s, t, seed=i)
        want = rx.evaluate(module, "main", *args)
        check(fused.main(*args), want)
        if b * s * t < 2000:  # the interpreter is slow
            check(plain.main(*args), want)
        if name == "sdpa_where" and b > 1 and s and t:
            assert not np.isnan(np.asarray(want)).any() and not np.asarray(want)[1].any()  # masked rows: 0


def test_nan_in_the_scores_stays_nan() -> None:
    module = build(bert_eager, d=3)
    args = list(inputs(2, 3, 4, d=3))
    args[0][0, 1, 2, 0] = np.nan
    want = np.asarray(rx.evaluate(module, "main", *args))
    assert np.isnan(want[0, 1, 2]).all() and not np.isnan(want[0, 0]).any()
    check(rx.compile(module).main(*args), want)


def test_a_head_size_without_a_known_scale_is_still_fused() -> None:
    """The scale is the recognised constant, not 1/sqrt(d): a symbolic d is fine."""
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", ["b", "s", "d"], "float32")
        kt = fb.param("kt", ["b", "d", "t"], "float32")
        v = fb.param("v", ["b", "t", "e"], "float32")
        fb.ret(op.matmul(op.nn.softmax(op.matmul(q, kt), axis=-1), v))
    module = fb.module
    assert "rx_blas_attention" in rx.print_module(rx.lower(module))
    exe = rx.compile(module)
    # the C kernel's small-task loops (8-wide dot products of four keys, 32 value columns at a time, with
    # their tails) and its SGEMM path (a task of 128 x 300 x 100)
    for b, s, t, d, e in ((1, 1, 1, 1, 1), (2, 3, 4, 0, 2), (3, 5, 2, 7, 0), (2, 16, 16, 64, 64), (2, 9, 7, 19, 45),
                          (1, 130, 300, 36, 64)):
        args = (rand((b, s, d)), rand((b, d, t), seed=1), rand((b, t, e), seed=2))
        assert_close(exe.main(*args), rx.evaluate(module, "main", *args))
