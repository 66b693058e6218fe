"""ONNX TfIdfVectorizer (opset 9) on integer input, from graph ops.

The n-gram pool is an attribute, so the matching is a fixed set of
comparisons the importer lays out: for each gram length n and skip
distance d (unigrams once, as skips do not change them) the n items at
s, s + d, ..., s + (n-1) d of every position s are compared with every pool
n-gram at once (a [rows, positions, grams] equality table from broadcast
`equal` and `logical_and`), and summed over positions into counts per pool
n-gram. A gather then moves the counts to the output columns
(ngram_indexes), and the mode weights them.

The row is padded on the right with a value no pool n-gram holds, so every
shifted view has the row's own length, symbolic or not, and an n-gram that
would run past the end of the row (a too-short row included) never
matches. String pools (and string input) are refused: relax has no string
tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from relax_xdsl.frontend.onnx_import import Known, Node, Value, register_converter
from relax_xdsl.limits import check_alloc
from relax_xdsl.shape import canon

_MODES = ("TF", "IDF", "TFIDF")


def _grams(n: Node, pool: list[int], counts: list[int], lo: int, hi: int) -> tuple[dict[int, dict[tuple[int, ...], int]],
                                                                                  int]:
    """{gram length: {gram: n-gram id}} for the lengths in [lo, hi], and the
    number of ids. Ids count every n-gram of the pool in order (lengths
    outside [lo, hi] too), as ONNX numbers them for ngram_indexes. A gram
    listed twice would have two columns; ONNX's reference keeps the last,
    onnxruntime refuses the model, and so does this."""
    if any(c < 0 or c > len(pool) for c in counts) or any(a > b for a, b in zip(counts, counts[1:])):
        n.fail(f"ngram_counts {counts} must be nondecreasing starts within the pool of {len(pool)} items")
    grams: dict[int, dict[tuple[int, ...], int]] = {}
    next_id = 0
    for i, start in enumerate(counts):
        size = i + 1
        end = counts[i + 1] if i + 1 < len(counts) else len(pool)
        k = (end - start) // size
        if lo <= size <= hi:
            table = grams.setdefault(size, {})
            for j in range(k):
                gram = tuple(pool[start + j * size:start + (j + 1) * size])
                if gram in table:
                    n.fail(f"pool_int64s lists the {size}-gram {list(gram)} twice")
                table[gram] = next_id + j
        next_id += k
    return grams, next_id


def _counts(n: Node, x: Value, length: Any, gram: np.ndarray, skip: int) -> Value:
    """Float32 [rows, grams]: how often each row of padded `x` holds each
    row of `gram` [grams, size] at positions s, s + skip, ... for s < length."""
    size = gram.shape[1]
    hit: Value | None = None
    for k in range(size):
        view = n.op("strided_slice", x, axes=[1], begin=[k * skip], end=[canon(length + k * skip)], strides=[1])
        want = Known(gram[:, k].reshape(1, 1, -1), "int64")
        eq = n.op("equal", n.op("expand_dims", view, axis=[2]), want)
        hit = eq if hit is None else n.op("logical_and", hit, eq)
    assert hit is not None
    return n.op("sum", n.op("astype", hit, dtype="float32"), axis=[1])


MAX_VIEWS = 10_000
"""Shifted views of the input the importer lays out at most (gram lengths
times skip distances): a hostile max_skip_count must not make it build
graph ops without end."""


def _to_columns(n: Node, parts: list[Value], columns: list[int], rows: Any, width: int) -> Value:
    """[rows, width]: each n-gram's counts added into its output column. A
    gather per n-gram sharing a column (one, unless ngram_indexes repeats a
    column), from the counts with a zero column appended for the columns no
    n-gram maps to; no dense [n-grams, columns] map, which a vocabulary of
    tens of thousands would make gigabytes."""
    found = parts[0] if len(parts) == 1 else n.op("concat", *parts, axis=1)
    zero = n.op("full", shape=[rows, 1], fill_value=0.0, dtype="float32")
    found = n.op("concat", found, zero, axis=1)
    by_column: dict[int, list[int]] = {}
    for position, column in enumerate(columns):
        by_column.setdefault(column, []).append(position)
    total: Value | None = None
    for r in range(max(len(v) for v in by_column.values())):
        src = np.full(width, len(columns), dtype=np.int64)
        for column, positions in by_column.items():
            if r < len(positions):
                src[column] = positions[r]
        part = n.op("take", found, Known(src, "int64"), axis=1)
        total = part if total is None else n.op("add", total, part)
    assert total is not None
    return total


@register_converter("TfIdfVectorizer", attrs=("max_gram_length", "max_skip_count", "min_gram_length", "mode",
                                              "ngram_counts", "ngram_indexes", "pool_int64s", "pool_strings",
                                              "weights"))
def _tfidf_vectorizer(n: Node) -> Value:
    x = n.input(0, "X")
    if "pool_strings" in n.attrs:
        n.fail("pool_strings (string n-grams) is not supported: relax has no string tensors; use pool_int64s")
    if x.dtype not in ("int32", "int64"):
        n.fail(f"X must be int32 or int64 (with pool_int64s), got {x.dtype}")
    if x.ndim not in (1, 2):
        n.fail(f"X must have rank 1 [C] or 2 [N, C], got rank {x.ndim}")
    pool = [int(v) for v in n.attr("pool_int64s")]
    counts = [int(v) for v in n.attr("ngram_counts")]
    indexes = [int(v) for v in n.attr("ngram_indexes")]
    lo, hi = int(n.attr("min_gram_length")), int(n.attr("max_gram_length"))
    skips = int(n.attr("max_skip_count"))
    mode = n.attr("mode")
    if mode not in _MODES:
        n.fail(f"mode={mode!r} is not supported ({', '.join(_MODES)})")
    if lo < 1 or hi < lo:
        n.fail(f"min_gram_length={lo} and max_gram_length={hi} must satisfy 1 <= min <= max")
    if skips < 0:
        n.fail(f"max_skip_count={skips} must be >= 0")
    grams, ids = _grams(n, pool, counts, lo, hi)
    if len(indexes) < ids:
        n.fail(f"ngram_indexes has {len(indexes)} entries but the pool holds {ids} n-grams")
    if not indexes or min(indexes) < 0:
        n.fail(f"ngram_indexes {indexes} must be nonempty and nonnegative")
    width = max(indexes) + 1
    weights = n.attr("weights", None)
    if weights is not None and mode != "TF" and len(weights) < width:
        n.fail(f"weights has {len(weights)} entries, fewer than the {width} output columns")

    views = sum(size * (skips + 1 if size > 1 else 1) for size in grams)
    if views > MAX_VIEWS:
        n.fail(f"max_skip_count={skips} with n-grams up to {hi} long needs {views} shifted views of the input, "
               f"more than {MAX_VIEWS}")
    check_alloc((width,), 8, f"the map from n-grams to {width} output columns")

    two_d = x.ndim == 2
    rows, length = (x.shape[0], x.shape[1]) if two_d else (1, x.shape[0])
    x = n.op("reshape", x, shape=[rows, length]) if not two_d else x
    if x.dtype != "int64":
        x = n.op("astype", x, dtype="int64")
    pad = (hi - 1) * (skips + 1)
    if pad:
        fill = min(set(range(len(pool) + 1)) - set(pool))  # a value no pool n-gram holds
        x = n.op("concat", x, n.op("full", shape=[rows, pad], fill_value=fill, dtype="int64"), axis=1)
    parts: list[Value] = []
    columns: list[int] = []  # the output column of each counted n-gram, in the order of `parts`
    for size, table in sorted(grams.items()):
        if not table:
            continue
        gram = np.array(list(table.keys()), dtype=np.int64).reshape(len(table), size)
        total: Value | None = None
        for skip in range(1, (skips + 1 if size > 1 else 1) + 1):
            c = _counts(n, x, length, gram, skip)
            total = c if total is None else n.op("add", total, c)
        assert total is not None
        parts.append(total)
        columns += [indexes[i] for i in table.values()]
    if parts:
        tf = _to_columns(n, parts, columns, rows, width)
    else:  # no pool n-gram of a length in [min, max]
        tf = n.op("full", shape=[rows, width], fill_value=0.0, dtype="float32")
    w = None if weights is None else Known(np.asarray(weights[:width], dtype=np.float32), "float32")
    if mode == "TF":
        y = tf
    elif mode == "IDF":
        present = n.op("greater", tf, Known(np.array(0, np.float32), "float32"))
        y = n.op("where", present, w if w is not None else Known(np.array(1, np.float32), "float32"),
                 Known(np.array(0, np.float32), "float32"))
    else:
        y = tf if w is None else n.op("multiply", tf, w)
    return y if two_d else n.op("reshape", y, shape=[width])
