"""Data-dependent output shapes (issue 16, item 2): nonzero, compress,
unique, topk with a run-time k and non_max_suppression as count op,
tensor_to_shape and fill op, on every level (evaluator, interp and C with
both pipelines), the result size changing between calls of one executable,
against numpy; and the fill ops' run-time checks of a count that does not
fit the data."""

from __future__ import annotations

import numpy as np
import pytest
from util import assert_close, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import BoundsError, ShapeError

RUNS = [("interp", "baseline"), ("interp", "default"), ("c", "baseline"), ("c", "default")]


def _all_levels(module, cases, expected) -> None:
    """The evaluator, then every target and pipeline (one executable each,
    called on every case), against the numpy results."""
    module = roundtrip(module)
    for args, exp in zip(cases, expected):
        assert_close(rx.evaluate(module, "main", *args), exp)
    for target, pipeline in RUNS:
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for args, exp in zip(cases, expected):
            assert_close(exe["main"](*args), exp)


def _module(build, *params):
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(name, shape, dtype) for name, shape, dtype in params]
        out = build(*args)
        fb.ret(*(out if isinstance(out, tuple) else (out,)))
    return fb.module


def _np_unique(x: np.ndarray, sorted_: bool, axis: int | None) -> tuple[np.ndarray, ...]:
    y, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    inv = inv.reshape(-1)
    if not sorted_:  # ONNX sorted=0: order of first occurrence
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y = np.take(y, order, axis=0 if axis is None else axis)
        idx, cnt, inv = idx[order], cnt[order], rank[inv]
    return y, idx.astype(np.int64), inv.astype(np.int64), cnt.astype(np.int64)


NONZERO = _module(op.nonzero, ("x", ["n", 3], "float32"))


def test_nonzero_sizes_vary() -> None:
    xs = [np.array([[0, 1, 0], [2, 0, 3]], "float32"), np.arange(12, dtype="float32").reshape(4, 3),
          np.array([[0, 0, np.nan]], "float32")]
    _all_levels(NONZERO, [(x,) for x in xs], [np.array(np.nonzero(x), np.int64) for x in xs])


def test_nonzero_of_all_zeros() -> None:
    x = np.zeros((2, 3), "float32")
    _all_levels(NONZERO, [(x,)], [np.zeros((2, 0), np.int64)])


def test_compress_with_and_without_axis() -> None:
    module = _module(lambda x, c: (op.compress(x, c, axis=1), op.compress(x, c)),
                     ("x", [2, "n"], "int32"), ("c", ["m"], "bool"))
    cases = [(np.arange(10, dtype="int32").reshape(2, 5), np.array([1, 0, 1], bool)),  # shorter than the axis
             (np.arange(8, dtype="int32").reshape(2, 4), np.array([1, 1, 1, 0], bool))]
    expected = [(np.compress(c, x, axis=1), np.compress(c, x)) for x, c in cases]
    _all_levels(module, cases, expected)


def test_compress_condition_past_the_axis_is_a_bounds_error() -> None:
    module = _module(lambda x, c: op.compress(x, c, axis=0), ("x", ["n"], "float32"), ("c", ["m"], "bool"))
    args = (np.ones(2, "float32"), np.array([1, 0, 1], bool))
    with pytest.raises(BoundsError, match="true condition entry past the axis 0.*index 2"):
        rx.evaluate(module, "main", *args)
    for target, pipeline in RUNS[::3]:
        with pytest.raises(BoundsError, match="true condition entry past the axis 0.*index 2"):
            rx.compile(module, target=target, pipeline=pipeline)["main"](*args)


@pytest.mark.parametrize("sorted_", [True, False])
def test_unique_flattened(sorted_: bool) -> None:
    module = _module(lambda x: op.unique(x, sorted=sorted_), ("x", ["n"], "float32"))
    xs = [np.array([2, 1, 1, 3, 4, 3], "float32"), np.array([5, 5, 5], "float32"),  # all equal
          np.array([3, -1, 0, 7, -1, 2, 7], "float32")]
    _all_levels(module, [(x,) for x in xs], [_np_unique(x, sorted_, None) for x in xs])


@pytest.mark.parametrize("sorted_", [True, False])
def test_unique_along_an_axis(sorted_: bool) -> None:
    module = _module(lambda x: op.unique(x, sorted=sorted_, axis=0), ("x", ["n", 3], "int64"))
    xs = [np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4], [0, 9, 9]], "int64"), np.array([[1, 2, 3]], "int64")]
    _all_levels(module, [(x,) for x in xs], [_np_unique(x, sorted_, 0) for x in xs])


def test_unique_nan_equals_nan_and_sorts_last() -> None:
    module = _module(lambda x: op.unique(x), ("x", ["n"], "float32"))
    x = np.array([np.nan, 1, np.nan, 0], "float32")
    expected = (np.array([0, 1, np.nan], "float32"), np.array([3, 1, 0]), np.array([2, 1, 2, 0]), np.array([1, 1, 2]))
    _all_levels(module, [(x,)], [expected])


def test_topk_with_a_run_time_k() -> None:
    module = _module(lambda x, k: op.topk_dynamic(x, k, axis=1, largest=False),
                     ("x", [2, "n"], "float32"), ("k", [1], "int64"))
    x = np.array([[3, 1, 2, 1, 5], [0, 0, 0, -1, 4]], "float32")

    def ref(k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.argsort(x, axis=1, kind="stable")[:, :k].astype(np.int64)
        return np.take_along_axis(x, idx, axis=1), idx

    _all_levels(module, [(x, np.array([k], "int64")) for k in (1, 3, 5)], [ref(k) for k in (1, 3, 5)])


def test_topk_k_larger_than_the_axis_is_a_bounds_error() -> None:
    module = _module(lambda x, k: op.topk_dynamic(x, k), ("x", ["n"], "float32"), ("k", [1], "int64"))
    args = (np.ones(3, "float32"), np.array([4], "int64"))
    with pytest.raises(BoundsError, match="relax.topk k along axis 0.*index 4"):
        rx.evaluate(module, "main", *args)
    for target, pipeline in RUNS:
        with pytest.raises(BoundsError, match="relax.topk k along axis 0.*index 4"):
            rx.compile(module, target=target, pipeline=pipeline)["main"](*args)


def _nms_module(center: int):
    return _module(lambda b, s, m, i, t: op.non_max_suppression(b, s, m, i, t, center_point_box=center),
                   ("boxes", ["b", "n", 4], "float32"), ("scores", ["b", "c", "n"], "float32"),
                   ("max_out", [1], "int64"), ("iou", [1], "float32"), ("thr", [1], "float32"))


@pytest.mark.parametrize("center", [0, 1])
def test_non_max_suppression(center: int) -> None:
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    names = ["boxes", "scores", "max_out", "iou", "thr"]
    node = helper.make_node("NonMaxSuppression", names, ["y"], center_point_box=center)
    types = [TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT, TensorProto.FLOAT]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, None) for n, t in zip(names, types)],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    onnx_ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    rng = np.random.default_rng(center)
    cases = []
    for b, c, n, m in ((1, 1, 6, 3), (2, 2, 5, 10), (1, 3, 8, 2)):
        boxes = rng.random((b, n, 4)).astype("float32")
        scores = rng.random((b, c, n)).astype("float32")
        scores[0, 0, 1] = scores[0, 0, 0]  # a tie: the smaller index first
        cases.append((boxes, scores, np.array([m], "int64"), np.array([0.3], "float32"), np.array([0.2], "float32")))
    expected = [onnx_ref.run(None, dict(zip(names, args)))[0] for args in cases]
    _all_levels(_nms_module(center), cases, expected)


def test_non_max_suppression_never_selects_nan_scores() -> None:
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3]]], "float32")
    scores = np.array([[[np.nan, 0.5, np.nan]]], "float32")
    args = (boxes, scores, np.array([5], "int64"), np.array([0.5], "float32"), np.array([-1.0], "float32"))
    _all_levels(_nms_module(0), [args], [np.array([[0, 0, 1]], np.int64)])


def _fill_with_count(name: str, shape: list, dtype: str, **params):
    """A fill op with its count from a tensor parameter (not the count op of
    the same data): hostile IR that the fill's checks must catch."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", shape, dtype)
        cnt = fb.param("count", [1], "int64")
        (k,) = fb.tensor_to_shape(cnt).sym_value
        out = getattr(op, name)(x, count=[k], **params)
        fb.ret(out if name != "unique_fill" else out[0])
    return fb.module


@pytest.mark.parametrize("name", ["nonzero_fill", "unique_fill"])
@pytest.mark.parametrize("k, match", [(6, "results missing"), (1, "result position beyond the count k")])
def test_a_count_that_does_not_fit_the_data_is_a_bounds_error(name: str, k: int, match: str) -> None:
    module = _fill_with_count(name, ["n"], "float32")
    args = (np.array([0, 1, 2, 3], "float32"), np.array([k], "int64"))  # 3 nonzeros, 4 distinct values
    with pytest.raises(BoundsError, match=match):
        rx.evaluate(module, "main", *args)
    for target, pipeline in RUNS[::3]:
        with pytest.raises(BoundsError, match=match):
            rx.compile(module, target=target, pipeline=pipeline)["main"](*args)


def test_shape_rules_name_what_is_wrong() -> None:
    with pytest.raises(ShapeError, match="relax.nonzero_fill: x must have rank >= 1"):
        _module(op.nonzero, ("x", [], "float32"))
    with pytest.raises(ShapeError, match="condition must have rank 1"):
        _module(lambda x, c: op.compress(x, c), ("x", [3], "float32"), ("c", [1, 3], "bool"))
    with pytest.raises(ShapeError, match="boxes' last dim"):
        _module(lambda b, s: op.non_max_suppression(b, s, 1), ("boxes", [1, 3, 5], "float32"),
                ("scores", [1, 1, 3], "float32"))
    with pytest.raises(ShapeError, match="k 5 exceeds the axis dim 3"):
        _module(lambda x: op.topk_fill(x, count=[5]), ("x", [3], "float32"))
