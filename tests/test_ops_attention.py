"""relax.attention: softmax(query @ key^T * scale + bias) @ value as one op.
Values at every level (reference, legalized, interpreter on the baseline
pipeline, C on the default one, which offloads float32 rank 3 and 4 to
rx_blas_attention) against a float64 implementation written here, masks
with -inf (whole rows removed: NaN, or 0 with zero_nan) and very negative
finite masks, NaN propagation, the offload itself, shape errors at build
and run time, and the printed form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand, roundtrip
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op

Shape = Sequence[int | str]
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
"""-inf - -inf in a fully masked row is NaN by design (the interpreter's numpy warns)."""
D, DV, HEADS = 8, 5, 2
BINDINGS = [(1, 1, 1), (2, 3, 7), (0, 3, 4), (2, 0, 4), (2, 3, 0)]
"""(b, s, t): all 1, more keys than queries, an empty batch, no query rows, no keys."""


# --- helpers --------------------------------------------------------------------------


def batch_dims(rank: int) -> list[int | str]:
    return {2: [], 3: ["b"], 4: ["b", HEADS]}[rank]


def bias_shape(kind: str, rank: int) -> list[int | str] | None:
    """The bias of `kind` for query rank `rank` (None: the scalar constant 0)."""
    lead = ["b"][: rank - 2] + [1] * max(rank - 3, 0)
    return {"zero": None, "padding": [*lead, 1, "t"], "full": [*lead, "s", "t"], "causal": ["s", "t"]}[kind]


def build(rank: int, bias: str, dtype: str = "float32", scale: float | None = None,
          zero_nan: bool | Sequence[bool] = False) -> ModuleOp:
    """relax.attention on q [*B, s, D], k [*B, t, D], v [*B, t, DV] and the
    bias of `bias`; a tuple of results when zero_nan is a sequence."""
    batch = batch_dims(rank)
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", [*batch, "s", D], dtype)
        k = fb.param("k", [*batch, "t", D], dtype)
        v = fb.param("v", [*batch, "t", DV], dtype)
        shape = bias_shape(bias, rank)
        m: Any = 0.0 if shape is None else fb.param("m", shape, dtype)
        flags = zero_nan if isinstance(zero_nan, (list, tuple)) else [zero_nan]
        fb.ret(*[op.attention(q, k, v, m, scale=scale, zero_nan=z) for z in flags])
    return fb.module


def concrete(shape: Shape, env: dict[str, int]) -> tuple[int, ...]:
    return tuple(env[d] if isinstance(d, str) else d for d in shape)


def mask_values(kind: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "padding":  # keys dropped at random (some rows may lose all of them)
        return np.where(rng.random(shape) < 0.3, -np.inf, 0.0)
    if kind == "causal":  # query i sees keys up to i + t - s (a decoder with a cache)
        s, t = shape
        return np.where(np.arange(t)[None, :] <= np.arange(s)[:, None] + (t - s), 0.0, -np.inf)
    return rng.standard_normal(shape)  # an additive bias (ALiBi-like)


def inputs(rank: int, bias: str, dtype: str, b: int, s: int, t: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    env = {"b": b, "s": s, "t": t}
    batch = concrete(batch_dims(rank), env)
    args = [rand((*batch, s, D), dtype, seed), rand((*batch, t, D), dtype, seed + 1),
            rand((*batch, t, DV), dtype, seed + 2)]
    shape = bias_shape(bias, rank)
    if shape is not None:
        args.append(mask_values(bias, concrete(shape, env), seed + 3).astype(dtype))
    return tuple(args)


def naive_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray | float, scale: float | None,
                    zero_nan: bool) -> np.ndarray:
    """softmax(q @ k^T * scale + bias) @ v in float64, one row at a time:
    NaN anywhere in a row's scores, or a row of all -inf, makes the row's
    probabilities NaN (0 with zero_nan); no keys gives 0."""
    s, d = q.shape[-2:]
    t, dv = k.shape[-2], v.shape[-1]
    factor = (1 / math.sqrt(d) if d else math.inf) if scale is None else scale
    q64, k64, v64 = (np.asarray(x, np.float64) for x in (q, k, v))
    full = np.broadcast_to(np.asarray(bias, np.float64), (*q.shape[:-1], t))
    out = np.zeros((*q.shape[:-1], dv))
    for idx in np.ndindex(q.shape[:-2]):
        for i in range(s):
            scores = [float(q64[idx][i] @ k64[idx][j]) * factor + float(full[idx][i, j]) for j in range(t)]
            top = -math.inf if not scores or any(map(math.isnan, scores)) else max(scores)
            if any(map(math.isnan, scores)) or top == -math.inf:
                probs = [math.nan] * t
            else:
                exps = [math.exp(x - top) for x in scores]
                total = sum(exps)
                probs = [e / total for e in exps]
            if zero_nan:
                probs = [0.0 if math.isnan(p) else p for p in probs]
            for c in range(dv):
                out[idx][i, c] = sum(p * float(v64[idx][j, c]) for j, p in enumerate(probs))
    return out.astype(q.dtype)


def every_level(module: ModuleOp, cases: list[tuple[np.ndarray, ...]]) -> dict[str, list[Any]]:
    """The outputs of each case at every level check_levels compares (the
    reference evaluator, legalized, interp on baseline, C on default), for
    checks of NaN and exact zeros rather than agreement alone."""
    from relax_xdsl.passes.legalize import legalize_module

    legal = roundtrip(legalize_module(module.clone()))
    interp = rx.compile(module, target="interp", pipeline="baseline")
    c = rx.compile(module, target="c", pipeline="default")
    return {
        "reference": [rx.evaluate(module, "main", *a) for a in cases],
        "legalized": [rx.evaluate(legal, "main", *a) for a in cases],
        "interp": [interp.main(*a) for a in cases],
        "c": [c.main(*a) for a in cases],
    }


def lowered(module: ModuleOp) -> str:
    return rx.print_module(rx.lower(module))


# --- values at every level -------------------------------------------------------------

VALUE_CASES = [
    # rank, bias, scale, zero_nan, dtype
    (4, "zero", None, False, "float32"),
    (4, "padding", None, True, "float32"),
    (4, "full", 0.3, False, "float32"),
    (4, "causal", 0.3, True, "float32"),
    (4, "padding", 0.3, False, "float32"),
    (3, "zero", 0.5, False, "float32"),
    (3, "causal", None, True, "float32"),
    (3, "padding", None, False, "float32"),
    (3, "full", None, True, "float32"),
    (2, "zero", None, False, "float32"),
    (2, "causal", 0.25, True, "float32"),
    (4, "full", None, True, "float64"),
    (4, "padding", 0.3, False, "float64"),
    (3, "causal", 0.5, False, "float64"),
    (2, "full", None, True, "float64"),
]


@pytest.mark.parametrize(("rank", "bias", "scale", "zero_nan", "dtype"), VALUE_CASES)
def test_values_at_every_level(rank: int, bias: str, scale: float | None, zero_nan: bool, dtype: str) -> None:
    module = build(rank, bias, dtype, scale, zero_nan)
    bindings = dict.fromkeys((b if rank > 2 else 1, s, t) for b, s, t in BINDINGS)  # rank 2 has no b
    cases = [inputs(rank, bias, dtype, *bst, seed=i) for i, bst in enumerate(bindings)]
    for args in cases:
        expect = naive_attention(*args[:3], args[3] if len(args) > 3 else 0.0, scale, zero_nan)
        got = rx.evaluate(module, "main", *args)
        assert got.shape == expect.shape == (*args[0].shape[:-1], DV)
        assert_close(got, expect)  # NaN where the naive form has NaN (assert_allclose's equal_nan)
    check_levels(module, cases)


@pytest.mark.parametrize(("rank", "bias", "s", "t"), [(4, "full", 300, 5), (3, "causal", 20, 9000)])
def test_query_rows_over_several_blocks(rank: int, bias: str, s: int, t: int) -> None:
    """More query rows than rx_blas_attention takes per task (128 for a short
    key length, 8 for a long one): every block reads its own bias rows."""
    module = build(rank, bias, "float32", 0.3, False)
    args = inputs(rank, bias, "float32", 2, s, t, seed=5)
    assert "rx_blas_attention" in lowered(module)
    expect = rx.evaluate(module, "main", *args)
    got = rx.compile(module).main(*args)
    assert_close(got, expect)
    if bias == "full":  # the naive loops are slow on the long key length
        assert_close(expect, naive_attention(*args, 0.3, False))


def test_unusual_scales() -> None:
    """A scale of 0 (uniform weights), negative, tiny, large and infinite
    (scores of +-inf: NaN rows where two infinities meet), each offloaded
    with the scale baked into the call's name."""
    scales = [0.0, -1.0, 1e-30, 3.0, math.inf]
    with rx.FunctionBuilder("main") as fb:
        q, k, v = fb.param("q", ["b", "s", 4]), fb.param("k", ["b", "t", 4]), fb.param("v", ["b", "t", 3])
        fb.ret(*[op.attention(q, k, v, 0.0, scale=sc) for sc in scales])
    module = roundtrip(fb.module)
    assert lowered(module).count("func.call @rx_blas_attention") == len(scales)
    args = (rand((2, 3, 4)), rand((2, 5, 4), seed=1), rand((2, 5, 3), seed=2))
    want = tuple(naive_attention(*args, 0.0, sc, False) for sc in scales)
    np.testing.assert_allclose(want[0], np.broadcast_to(args[2].mean(axis=1, keepdims=True), want[0].shape), rtol=1e-6)
    for level, (outs,) in every_level(module, [args]).items():
        try:
            assert_close(outs, want)
        except AssertionError as err:
            raise AssertionError(f"level {level}: {err}") from None


BROADCAST_BIASES = {4: [["t"], ["s", 1], [HEADS, 1, "t"], ["b", HEADS, "s", "t"], [1, 1, 1, 1], ["b", 1, "s", 1]],
                    3: [["t"], ["s", 1], ["b", 1, "t"], [1, "s", "t"], ["b", "s", 1], [1]]}


@pytest.mark.parametrize(("rank", "dtype"), [(4, "float32"), (3, "float32"), (3, "float64")])
def test_bias_broadcasts(rank: int, dtype: str) -> None:
    """Biases of every rank up to the scores', each dim 1 or the scores':
    per key, per query row, per head, per (batch, head) and constant."""
    shapes = BROADCAST_BIASES[rank]
    batch = batch_dims(rank)
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", [*batch, "s", D], dtype)
        k, v = fb.param("k", [*batch, "t", D], dtype), fb.param("v", [*batch, "t", DV], dtype)
        masks = [fb.param(f"m{i}", sh, dtype) for i, sh in enumerate(shapes)]
        fb.ret(*[op.attention(q, k, v, m, scale=0.4) for m in masks])
    module = fb.module
    if dtype == "float32":
        assert lowered(module).count("func.call @rx_blas_attention") == len(shapes)
    cases = []
    for n, (b, s, t) in enumerate([(2, 3, 5), (1, 1, 1), (2, 4, 0)]):
        env = {"b": b, "s": s, "t": t}
        qkv = inputs(rank, "zero", dtype, b, s, t, seed=n)
        cases.append((*qkv, *(rand(concrete(sh, env), dtype, seed=10 + i) * 3 for i, sh in enumerate(shapes))))
    for args in cases:
        want = tuple(naive_attention(*args[:3], m, 0.4, False) for m in args[3:])
        assert_close(rx.evaluate(module, "main", *args), want)
    check_levels(module, cases)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # 1/sqrt(0), by design
def test_empty_head_size() -> None:
    """d = 0: every score is the bias alone with a given scale (the C takes
    its path without a score buffer), and 0 * 1/sqrt(0) = NaN without one."""
    with rx.FunctionBuilder("main") as fb:
        q, k = fb.param("q", ["b", HEADS, "s", 0]), fb.param("k", ["b", HEADS, "t", 0])
        v, m = fb.param("v", ["b", HEADS, "t", DV]), fb.param("m", ["b", 1, "s", "t"])
        fb.ret(*[op.attention(q, k, v, m, scale=sc, zero_nan=z) for sc in (0.5, None) for z in (False, True)])
    module = fb.module
    assert lowered(module).count("func.call @rx_blas_attention") == 4
    args = ((rand((2, HEADS, 3, 0)), rand((2, HEADS, 4, 0)), rand((2, HEADS, 4, DV), seed=1),
             removed_row_mask("float32", -np.inf)))
    want = tuple(naive_attention(*args, sc, z) for sc in (0.5, None) for z in (False, True))
    assert np.isnan(want[2]).all() and not want[3].any() and np.isnan(want[0]).any()
    for level, (outs,) in every_level(module, [args]).items():
        try:
            assert_close(outs, want)
        except AssertionError as err:
            raise AssertionError(f"level {level}: {err}") from None


# --- masks: -inf and very negative finite values ------------------------------------


def removed_row_mask(dtype: str, fill: float) -> np.ndarray:
    """A [2, 1, 3, 4] mask: batch 0 loses every key in row 1, batch 1 keeps
    key 2 only in row 0, the rest drop some keys; `fill` where masked."""
    keep = np.ones((2, 1, 3, 4), bool)
    keep[0, 0, 1, :] = False
    keep[0, 0, 2, ::2] = False
    keep[1, 0, 0, [0, 1, 3]] = False
    return np.where(keep, 0.0, fill).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fully_masked_rows_are_nan_or_zero(dtype: str) -> None:
    """Removing all of a row's keys with -inf: exp(-inf - -inf) is NaN, so
    the row is NaN; zero_nan (torch's export) makes it 0. At every level,
    for the offloaded float32 call and the generated loops alike."""
    module = build(4, "full", dtype, None, (False, True))
    mask = removed_row_mask(dtype, -np.inf)
    args = (*inputs(4, "full", dtype, 2, 3, 4, seed=7)[:3], mask)
    want = [naive_attention(*args, None, z) for z in (False, True)]
    assert np.isnan(want[0][0, :, 1]).all() and not np.isnan(np.delete(want[0], 1, axis=2)).any()
    for level, (outs,) in every_level(module, [args]).items():
        plain, zeroed = outs
        assert np.isnan(plain[0, :, 1]).all(), level
        assert np.array_equal(zeroed[0, :, 1], np.zeros((HEADS, DV), dtype)), level
        keep = np.ones(plain.shape, bool)
        keep[0, :, 1] = False
        assert not np.isnan(plain[keep]).any() and not np.isnan(zeroed).any(), level
        assert_close((plain, zeroed), (want[0], want[1]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_very_negative_finite_mask_is_finite(dtype: str) -> None:
    """HF's masks use finfo(float32).min, not -inf: every result is finite;
    a row masked entirely sees every key alike (the mean of v)."""
    module = build(4, "full", dtype, None, (False, True))
    mask = removed_row_mask(dtype, float(np.finfo(np.float32).min))
    args = (*inputs(4, "full", dtype, 2, 3, 4, seed=8)[:3], mask)
    want = naive_attention(*args, None, False)
    assert np.isfinite(want).all()
    np.testing.assert_allclose(want[0, :, 1], args[2][0].mean(axis=-2), rtol=1e-5)
    for level, (outs,) in every_level(module, [args]).items():
        for out in outs:
            assert np.isfinite(out).all(), level
            assert_close(out, want)


# --- NaN in the inputs -------------------------------------------------------------------


def poisoned(rank: int, dtype: str) -> list[tuple[np.ndarray, ...]]:
    """One NaN each in q (batch 0, row 1), k (batch 0, key 2), v (batch 1,
    key 0, column 3), the bias (last batch, row 2, key 1), and in v at a key
    the mask removes for every query (0 * NaN is NaN)."""
    base = inputs(rank, "full", dtype, 2, 3, 4, seed=11)
    cases = []
    for which, idx in [(0, (0, 1, 0)), (1, (0, 2, 5)), (2, (1, 0, 3)), (3, (-1, 2, 1))]:
        args = [a.copy() for a in base]
        lead = (idx[0], *(0,) * (rank - 3)) if rank > 2 else ()
        args[which][(*lead, *idx[1:])] = np.nan
        cases.append(tuple(args))
    args = [a.copy() for a in base]
    args[3][..., 3] = -np.inf
    args[2][(..., 3, 0)] = np.nan
    cases.append(tuple(args))
    return cases


@pytest.mark.parametrize(("rank", "dtype"), [(4, "float32"), (3, "float32"), (2, "float32"), (3, "float64")])
def test_nan_inputs_propagate(rank: int, dtype: str) -> None:
    """A NaN score makes its row's probabilities NaN (0 with zero_nan); a
    NaN value reaches every row that weighs it, even by 0."""
    module = build(rank, "full", dtype, None, (False, True))
    cases = poisoned(rank, dtype)
    levels = every_level(module, cases)
    for n, args in enumerate(cases):
        want = tuple(naive_attention(*args, None, z) for z in (False, True))
        assert np.isnan(want[0]).any()
        for level, outs in levels.items():
            try:
                assert_close(outs[n], want)
            except AssertionError as err:
                raise AssertionError(f"case {n} at level {level}: {err}") from None
    q_row = levels["c"][0]  # NaN in q's row 1 of batch 0: that row only
    lead = (0,) * (rank - 2)
    assert np.isnan(q_row[0][(*lead, 1)]).all() and not np.isnan(np.delete(q_row[0], 1, axis=-2)).any()
    assert np.array_equal(q_row[1][(*lead, 1)], np.zeros(DV, dtype))


# --- offload ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rank", "bias", "dtype", "scale", "calls"), [
    (4, "padding", "float32", None, 1),
    (4, "causal", "float32", 0.3, 1),
    (3, "zero", "float32", None, 1),
    (3, "full", "float32", 0.5, 1),
    (4, "padding", "float64", None, 0),
    (3, "full", "float64", 0.5, 0),
    (2, "causal", "float32", None, 0),
])
def test_default_pipeline_offloads_float32_rank_3_and_4(rank: int, bias: str, dtype: str, scale: float | None,
                                                        calls: int) -> None:
    text = lowered(build(rank, bias, dtype, scale, True))
    assert text.count("func.call @rx_blas_attention") == calls
    if calls == 0:
        assert "rx_blas_attention" not in text
    baseline = rx.print_module(rx.lower(build(rank, bias, dtype, scale, True), "baseline"))
    assert "rx_blas_attention" not in baseline


def test_symbolic_head_size_without_scale_is_not_offloaded() -> None:
    """scale=None needs a static head size (1/sqrt(d) is baked into the call)."""
    with rx.FunctionBuilder("main") as fb:
        q, k, v = fb.param("q", ["b", "s", "d"]), fb.param("k", ["b", "t", "d"]), fb.param("v", ["b", "t", 4])
        fb.ret(op.attention(q, k, v, 0.0), op.attention(q, k, v, 0.0, scale=0.5))
    assert lowered(fb.module).count("func.call @rx_blas_attention") == 1


# --- shape and dtype errors -------------------------------------------------------------


def out_type(q: Shape, k: Shape, v: Shape, bias: Shape, dtypes: Sequence[str] = ("float32",) * 4,
             **kwargs: Any) -> rx.Var:
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(n, sh, dt) for n, sh, dt in zip("qkvm", (q, k, v, bias), dtypes)]
        return op.attention(*args, **kwargs)


def test_output_shape_and_dtype() -> None:
    from relax_xdsl.shape import dim_to_str

    y = out_type(["b", 2, "s", 8], ["b", 2, "t", 8], ["b", 2, "t", 5], ["b", 1, 1, "t"])
    assert [dim_to_str(d) for d in y.type.sym_shape] == ["b", "2", "s", "5"] and y.dtype == "float32"
    y = out_type(["s", 8], ["t", 8], ["t", "e"], [], ("float64",) * 4)
    assert [dim_to_str(d) for d in y.type.sym_shape] == ["s", "e"] and y.dtype == "float64"


@pytest.mark.parametrize(("q", "k", "v", "bias", "dtypes", "match"), [
    (["b", "s", 8], ["b", "t", 4], ["b", "t", 5], [], None, r"query dim 2 vs key dim 2 \(the head size d\): 8 vs 4"),
    (["b", "s", 8], ["b", "t", 8], ["b", "t + 1", 5], [], None,
     r"key dim 1 vs value dim 1 \(the key length t\): t vs t \+ 1"),
    (["b", "s", 8], ["b", 4, 8], ["b", 5, 5], [], None, r"key dim 1 vs value dim 1 \(the key length t\): 4 vs 5"),
    ([2, "s", 8], [3, "t", 8], [3, "t", 5], [], None, r"query dim 0 vs key dim 0 \(a batch dim\): 2 vs 3"),
    ([2, "s", 8], [2, "t", 8], [3, "t", 5], [], None, r"query dim 0 vs value dim 0 \(a batch dim\): 2 vs 3"),
    (["b", "s", 8], ["b", "t", 8], ["t", 5], [], None, r"value has rank 2 but query has rank 3"),
    ([2, 1, "s", 8], [2, 1, "t", 8], [2, 1, "t", 5], [2, 4, "s", "t"], None,
     r"bias dim 1 vs scores dim 1 \(the bias must broadcast to the scores .*\): 4 vs 1"),
    (["b", "s", 8], ["b", "t", 8], ["b", "t", 5], [2, "b", "s", "t"], None,
     r"bias has rank 4, more than the scores' rank 3"),
    (["b", 2, "s", 8], ["b", 2, "t", 8], ["b", 2, "t", 5], ["b", 3, "s", "t"], None,
     r"bias dim 1 vs scores dim 1 .*: 3 vs 2"),
    ([8], [8], [5], [], None, r"query must have rank >= 2 \(\[\*batch, s, d\]\), got rank 1"),
    (["s", 8], ["t", 8], ["t", 5], [], ("int32",) * 4, r"query must have a floating-point dtype, got int32"),
    (["s", 8], ["t", 8], ["t", 5], [], ("float32", "float32", "int8", "float32"),
     r"value must have a floating-point dtype, got int8"),
    (["s", 8], ["t", 8], ["t", 5], [], ("float32", "float64", "float32", "float32"),
     r"key has dtype float64 but query has float32; insert astype"),
    (["s", 8], ["t", 8], ["t", 5], [], ("float32", "float32", "float32", "float16"),
     r"bias has dtype float16 but query has float32"),
])
def test_errors(q: Shape, k: Shape, v: Shape, bias: Shape, dtypes: Sequence[str] | None, match: str) -> None:
    with pytest.raises(rx.ShapeError, match=r"^relax\.attention: " + match):
        out_type(q, k, v, bias, dtypes or ("float32",) * 4)


def test_enlarging_bias_error_names_the_bias() -> None:
    with pytest.raises(rx.ShapeError, match=r"relax\.attention: bias"):
        out_type(["b", 2, "s", 8], ["b", 2, "t", 8], ["b", 2, "t", 5], ["b", 3, "s", "t"])


def test_bad_parameters() -> None:
    with pytest.raises(rx.ShapeError, match=r"relax\.attention: parameter scale"):
        out_type(["s", 8], ["t", 8], ["t", 5], [], scale="x")
    with pytest.raises(rx.RelaxError, match=r"relax\.attention\(query, key, value, bias.*unexpected keyword"):
        out_type(["s", 8], ["t", 8], ["t", 5], [], causal=True)


@pytest.mark.parametrize(("shapes", "good", "bad", "match"), [
    ((["b", "s", "d"], ["c", "t", "d"], ["c", "t", 5]), [(2, 3, 4), (2, 6, 4), (2, 6, 5)],
     [(2, 3, 4), (3, 6, 4), (3, 6, 5)], r"\bc must equal b\b"),
    ((["b", "s", 8], ["b", "t", 8], ["b", "u", 5]), [(2, 3, 8), (2, 4, 8), (2, 4, 5)],
     [(2, 3, 8), (2, 4, 8), (2, 6, 5)], r"\bu must equal t\b"),
    ((["b", "s", "d"], ["b", "t", "e"], ["b", "t", 5]), [(2, 3, 4), (2, 5, 4), (2, 5, 5)],
     [(2, 3, 4), (2, 4, 6), (2, 4, 5)], r"\be must equal d\b"),
])
def test_unprovable_dims_are_checked_at_run_time(shapes: tuple[Shape, ...], good: list[tuple[int, ...]],
                                                 bad: list[tuple[int, ...]], match: str) -> None:
    """Dims assumed equal when building (b == c, t == u, d == e) are checked
    when called, by the evaluator and the compiled C (offloaded or not), as
    a ShapeError before any kernel reads out of bounds."""
    with rx.FunctionBuilder("main") as fb:
        q, k, v = (fb.param(n, sh) for n, sh in zip("qkv", shapes))
        fb.ret(op.attention(q, k, v, 0.0, scale=0.5))
    module = fb.module
    good_args = [rand(sh, seed=i) for i, sh in enumerate(good)]
    bad_args = [rand(sh, seed=i) for i, sh in enumerate(bad)]
    exe = rx.compile(module)
    expect = naive_attention(*good_args, 0.0, 0.5, False)
    assert_close(rx.evaluate(module, "main", *good_args), expect)
    assert_close(exe.main(*good_args), expect)
    with pytest.raises(rx.ShapeError, match=r"relax\.attention: .*the op assumed"):
        rx.evaluate(module, "main", *bad_args)
    with pytest.raises(rx.ShapeError, match=match):
        exe.main(*bad_args)
    assert_close(exe.main(*good_args), expect)  # still usable after the error


def test_bias_enlarging_the_scores_is_checked_at_run_time() -> None:
    """A bias dim b against a score dim 1 is assumed b == 1 (it may not
    enlarge the scores) and checked when called."""
    with rx.FunctionBuilder("main") as fb:
        q, k, v = fb.param("q", [1, "s", 8]), fb.param("k", [1, "t", 8]), fb.param("v", [1, "t", 5])
        fb.ret(op.attention(q, k, v, fb.param("m", ["b", "s", "t"])))
    module = fb.module
    good = (rand((1, 3, 8)), rand((1, 4, 8), seed=1), rand((1, 4, 5), seed=2), rand((1, 3, 4), seed=3))
    bad = (*good[:3], rand((2, 3, 4), seed=3))
    exe = rx.compile(module)
    assert_close(exe.main(*good), naive_attention(*good, None, False))
    with pytest.raises(rx.ShapeError, match=r"relax\.attention: bias dim 0 vs scores dim 0 .*b = 2"):
        rx.evaluate(module, "main", *bad)
    with pytest.raises(rx.ShapeError, match=r"input 3 dim 0: b must equal 1"):
        exe.main(*bad)


# --- printing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("rank", "bias", "dtype", "scale", "zero_nan"), [
    (4, "padding", "float32", None, False), (3, "zero", "float64", 0.125, True), (2, "causal", "float32", 2.5, False)])
def test_printed_form_round_trips(rank: int, bias: str, dtype: str, scale: float | None, zero_nan: bool) -> None:
    module = build(rank, bias, dtype, scale, zero_nan)
    text = rx.print_module(module)
    assert "relax.attention" in text
    assert ("scale = " in text) == (scale is not None) and ("zero_nan = true" in text) == zero_nan
    again = roundtrip(module)
    assert rx.print_module(again) == text
    for n in SIZES:
        args = inputs(rank, bias, dtype, n, n, n + 1, seed=n)
        assert_close(rx.evaluate(again, "main", *args), rx.evaluate(module, "main", *args))
