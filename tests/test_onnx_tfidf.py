"""ONNX TfIdfVectorizer on integer input (onnx_ops_tfidf): small onnx.helper
models with a symbolic row count and row length, compared with onnxruntime
on C (one also on the interpreter) at several sizes, rows shorter than an
n-gram included; string pools and bad attributes are import errors naming
the node."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import RelaxError  # noqa: E402

I32 = TensorProto.INT32
I64 = TensorProto.INT64
# unigrams 2, 3, 4; bigrams (2, 3), (4, 4), (3, 2); trigram (2, 3, 2)
POOL = dict(pool_int64s=[2, 3, 4, 2, 3, 4, 4, 3, 2, 2, 3, 2], ngram_counts=[0, 3, 9])


def _model(attrs: dict[str, Any], dtype: int, shape: list[Any]) -> Any:
    node = helper.make_node("TfIdfVectorizer", ["X"], ["Y"], name="tfidf0", **attrs)
    return onnx_model([node], [("X", dtype, shape)], ["Y"], opset=9)


def _check(m: Any, target: str, shapes: list[tuple[int, ...]]) -> None:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(m)
    exe = rx.compile(mod, target=target)
    dtype = np.int32 if m.graph.input[0].type.tensor_type.elem_type == I32 else np.int64
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.integers(1, 5, size=shape).astype(dtype)
        (want,) = sess.run(None, {"X": x})
        for got in (rx.evaluate(mod, "main", x), exe["main"](x)):
            assert got.shape == want.shape and got.dtype == want.dtype, shape
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=str(x))


CASES = [
    # every length 1..3, skips up to 2, output columns permuted with a gap (column 8 never counted)
    (dict(mode="TF", min_gram_length=1, max_gram_length=3, max_skip_count=2,
          ngram_indexes=[6, 1, 0, 2, 3, 4, 5, 7, 9], **POOL), I64),
    # bigrams only, no skip; int32 input
    (dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=0,
          ngram_indexes=list(range(7)), **POOL), I32),
    (dict(mode="IDF", min_gram_length=1, max_gram_length=2, max_skip_count=1, ngram_indexes=list(range(7)),
          weights=[0.5, 1.5, 2.0, 3.0, 0.25, 4.0, 1.0], **POOL), I64),
    (dict(mode="IDF", min_gram_length=1, max_gram_length=2, max_skip_count=1, ngram_indexes=list(range(7)),
          **POOL), I64),
    (dict(mode="TFIDF", min_gram_length=2, max_gram_length=3, max_skip_count=3, ngram_indexes=list(range(7)),
          weights=[0.5, 1.5, 2.0, 3.0, 0.25, 4.0, 1.0], **POOL), I32),
]


@pytest.mark.parametrize("attrs, dtype", CASES)
def test_tfidf_2d(attrs: dict[str, Any], dtype: int) -> None:
    _check(_model(attrs, dtype, ["n", "c"]), "c", [(1, 1), (2, 3), (3, 8), (1, 12)])


def test_tfidf_1d() -> None:
    attrs, dtype = CASES[0]
    _check(_model(attrs, dtype, ["c"]), "c", [(1,), (2,), (9,)])


def test_tfidf_interp() -> None:
    attrs, dtype = CASES[1]
    _check(_model(attrs, dtype, ["n", "c"]), "interp", [(1, 1), (2, 5)])


def test_tfidf_counts_every_skip() -> None:
    """[2, 3, 2, 3] with bigram (2, 3) and skips up to 2: at distance 1 twice, at distance 2 never, at 3 once."""
    attrs = dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=2, ngram_indexes=[0],
                 pool_int64s=[2, 3], ngram_counts=[0, 0])
    exe = rx.compile(rx.from_onnx(_model(attrs, I64, ["c"])), target="c")
    np.testing.assert_array_equal(exe["main"](np.array([2, 3, 2, 3], np.int64)), [3.0])
    np.testing.assert_array_equal(exe["main"](np.array([2], np.int64)), [0.0])


@pytest.mark.parametrize("change, message", [
    (dict(pool_strings=["a", "b"], pool_int64s=None), "tfidf0.*pool_strings"),
    (dict(mode="BM25"), "tfidf0.*mode='BM25'"),
    (dict(min_gram_length=3, max_gram_length=2), "tfidf0.*min_gram_length"),
    (dict(ngram_indexes=[0, 1]), "tfidf0.*ngram_indexes has 2 entries"),
    (dict(mode="IDF", weights=[1.0]), "tfidf0.*weights"),
    (dict(pool_int64s=[2, 3, 4, 2, 3, 2, 3, 4, 3, 2, 3, 2]), r"tfidf0.*the 2-gram \[2, 3\] twice"),
])
def test_tfidf_bad_attributes_name_the_node(change: dict[str, Any], message: str) -> None:
    attrs = {**CASES[1][0], **change}
    attrs = {k: v for k, v in attrs.items() if v is not None}
    with pytest.raises(RelaxError, match=message):
        rx.from_onnx(_model(attrs, I64, ["n", "c"]))


def test_a_large_vocabulary_maps_columns_without_a_dense_table() -> None:
    """20,000 unigrams in shuffled columns, two of them sharing a column
    (their counts add): a gather, not a 20,000 x 20,000 one-hot map."""
    vocab = 20_000
    columns = np.random.default_rng(1).permutation(vocab)
    columns[7] = columns[8]  # a shared column; the one it frees stays zero
    m = _model(dict(pool_int64s=list(range(1, vocab + 1)), ngram_counts=[0], ngram_indexes=columns.tolist(),
                    min_gram_length=1, max_gram_length=1, max_skip_count=0, mode="TF"), I64, ["n", "c"])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    exe = rx.compile(rx.from_onnx(m), target="c")
    x = np.random.default_rng(2).integers(1, 40, size=(3, 50)).astype(np.int64)
    x[0, :5] = 8  # unigram 8 (id 7) and unigram 9 (id 8) share a column: counts 5 + 4
    x[0, 5:9] = 9
    np.testing.assert_array_equal(exe["main"](x), sess.run(None, {"X": x})[0])


@pytest.mark.parametrize(("attrs", "error", "match"), [
    (dict(max_skip_count=10**9), RelaxError, r"tfidf0.*max_skip_count=1000000000.*shifted views"),
    (dict(ngram_indexes=[2**40] * 7), rx.ResourceLimitError, r"tfidf0.*output columns"),
], ids=["huge-skip", "huge-column"])
def test_hostile_attributes_fail_at_import(attrs: dict[str, Any], error: type, match: str) -> None:
    base = dict(POOL, ngram_indexes=list(range(7)), min_gram_length=1, max_gram_length=3, max_skip_count=0,
                mode="TF")
    with pytest.raises(error, match=match):
        rx.from_onnx(_model({**base, **attrs}, I64, ["n", "c"]))
