"""Indexing with data has one out-of-range behaviour on every target and
pipeline, the evaluator's: a `take` index outside [-n, n) (so any index into
an axis that is empty at run time) is a BoundsError naming the op, the index
and the axis extent, from the evaluator, the interpreter and C (baseline,
default, debug pipelines and debug builds). Valid negative indices count from
the end; in-range indices agree with numpy.take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from util import rand

import relax_xdsl as rx
from relax_xdsl import op

Run = Callable[[Any, tuple[np.ndarray, ...]], Any]


def _compiled(target: str, pipeline: str = "baseline", debug: bool = False) -> Run:
    cache: dict[int, Any] = {}

    def run(module: Any, args: tuple[np.ndarray, ...]) -> Any:
        if id(module) not in cache:
            cache[id(module)] = rx.compile(module, target=target, pipeline=pipeline, debug=debug)
        return cache[id(module)]["main"](*args)

    return run


def _legalized(module: Any, args: tuple[np.ndarray, ...]) -> Any:
    """The evaluator on the legalized module: tensor programs run by the interpreter."""
    from relax_xdsl.passes.legalize import legalize_module

    return rx.evaluate(legalize_module(module.clone()), "main", *args)


RUNNERS: dict[str, Run] = {
    "evaluate": lambda module, args: rx.evaluate(module, "main", *args),
    "legalized": _legalized,
    "interp": _compiled("interp"),
    "interp-default": _compiled("interp", "default"),
    "c-baseline": _compiled("c"),
    "c-default": _compiled("c", "default"),
    "c-debug-pipeline": _compiled("c", "debug"),
    "c-debug-build": _compiled("c", debug=True),
}


def take_module(axis: int | None, index_dtype: str = "int64", index_shape: tuple[Any, ...] = ("k",)) -> Any:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", "m"], "float32")
        i = fb.param("i", list(index_shape), index_dtype)
        fb.ret(op.take(x, i, axis=axis))
    return fb.module


def empty_axis_module() -> Any:
    """take along x[:, 1:], whose axis is empty at m = 1 (and at m = 0)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", "m"], "float32")
        i = fb.param("i", ["k"], "int64")
        fb.ret(op.take(op.strided_slice(x, [1], [1], [2**31 - 1]), i, axis=1))
    return fb.module


def fused_rows_module() -> Any:
    """take along axis 0 between elementwise ops: in `default` it is one fused
    program whose check loop and gather loop run over the same rows."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", "m"], "float32")
        i = fb.param("i", ["k"], "int32")
        fb.ret(op.relu(op.take(op.multiply(x, x), i, axis=0)))
    return fb.module


TAKE_AXIS_1 = take_module(1)
TAKE_AXIS_1_I32 = take_module(1, "int32")
TAKE_FLAT = take_module(None)
EMPTY_AXIS = empty_axis_module()
FUSED_ROWS = fused_rows_module()

BAD_CASES = [
    # (id, module, args, what, bad index, extent)
    ("positive", TAKE_AXIS_1, (rand((2, 3)), np.array([0, 3, 1], np.int64)), "along axis 1", 3, 3),
    ("too-negative", TAKE_AXIS_1, (rand((2, 3)), np.array([-3, -4], np.int64)), "along axis 1", -4, 3),
    ("huge", TAKE_AXIS_1, (rand((2, 3)), np.array([2**62], np.int64)), "along axis 1", 2**62, 3),
    ("int32", TAKE_AXIS_1_I32, (rand((2, 3)), np.array([1, 2, 7], np.int32)), "along axis 1", 7, 3),
    ("int32-negative", TAKE_AXIS_1_I32, (rand((2, 3)), np.array([-2**31], np.int32)), "along axis 1", -2**31, 3),
    ("flat", TAKE_FLAT, (rand((2, 3)), np.array([5, 6], np.int64)), "of the flattened x", 6, 6),
    ("empty-axis", EMPTY_AXIS, (rand((2, 1)), np.array([0], np.int64)), "along axis 1", 0, 0),
    ("fused-rows", FUSED_ROWS, (rand((4, 3)), np.array([1, -5, 0], np.int32)), "along axis 0", -5, 4),
]


@pytest.mark.parametrize("runner", RUNNERS, ids=list(RUNNERS))
@pytest.mark.parametrize(("case", "module", "args", "what", "index", "extent"), BAD_CASES,
                         ids=[c[0] for c in BAD_CASES])
def test_out_of_range_index_is_a_bounds_error(runner: str, case: str, module: Any, args: tuple[np.ndarray, ...],
                                              what: str, index: int, extent: int) -> None:
    with pytest.raises(rx.BoundsError) as err:
        RUNNERS[runner](module, args)
    assert isinstance(err.value, IndexError)
    text = str(err.value)
    assert text.startswith(f"relax.take {what}"), text
    # the same words from every target: only where the take runs (its tensor program) is added
    assert text.endswith(f": index {index} is out of range for an axis of extent {extent}"), text
    if runner != "evaluate":
        assert "in tensor program @" in text


@pytest.mark.parametrize("runner", ["c-baseline", "c-default", "interp"])
def test_executable_stays_usable_after_an_index_error(runner: str) -> None:
    x = rand((3, 4))
    with pytest.raises(rx.BoundsError):
        RUNNERS[runner](TAKE_AXIS_1, (x, np.array([4], np.int64)))
    np.testing.assert_array_equal(RUNNERS[runner](TAKE_AXIS_1, (x, np.array([3, -4], np.int64))), x[:, [3, 0]])


@pytest.mark.parametrize("runner", RUNNERS, ids=list(RUNNERS))
def test_valid_indices_agree_with_numpy_take(runner: str) -> None:
    """Negative indices count from the end; the extremes -n and n - 1 and a
    differential over random in-range indices, int32 and int64."""
    rng = np.random.default_rng(7)
    run = RUNNERS[runner]
    for n, m in ((1, 1), (3, 5), (4, 2)):
        x = rng.standard_normal((n, m)).astype(np.float32)
        edges = np.array([-m, m - 1, -1, 0], np.int64)
        np.testing.assert_array_equal(run(TAKE_AXIS_1, (x, edges)), np.take(x, edges, axis=1))
        for module, dtype in ((TAKE_AXIS_1, np.int64), (TAKE_AXIS_1_I32, np.int32)):
            i = rng.integers(-m, m, size=6).astype(dtype)
            np.testing.assert_array_equal(run(module, (x, i)), np.take(x, i, axis=1))
        i = rng.integers(-n * m, n * m, size=5).astype(np.int64)
        np.testing.assert_array_equal(run(TAKE_FLAT, (x, i)), np.take(x, i))
        i = rng.integers(-n, n, size=3).astype(np.int32)
        np.testing.assert_array_equal(run(FUSED_ROWS, (x, i)), np.maximum(np.take(x * x, i, axis=0), 0))
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(run(EMPTY_AXIS, (x, np.array([-2, 1], np.int64))), x[:, 1:][:, [-2, 1]])


@pytest.mark.parametrize("runner", ["evaluate", "interp", "c-baseline", "c-default"])
def test_scalar_and_2d_indices(runner: str) -> None:
    scalar, matrix = take_module(0, "int64", ()), take_module(1, "int32", (2, "k"))
    x = rand((3, 4))
    np.testing.assert_array_equal(RUNNERS[runner](scalar, (x, np.array(-3, np.int64))), x[0])
    with pytest.raises(rx.BoundsError, match="index 3 is out of range for an axis of extent 3"):
        RUNNERS[runner](scalar, (x, np.array(3, np.int64)))
    i = np.array([[0, -4], [3, 1]], np.int32)
    np.testing.assert_array_equal(RUNNERS[runner](matrix, (x, i)), np.take(x, i, axis=1))
    with pytest.raises(rx.BoundsError, match="index 4 is out of range for an axis of extent 4"):
        RUNNERS[runner](matrix, (x, np.array([[0, 1], [4, -9]], np.int32)))  # the first bad one, row-major


def test_check_loop_stays_out_of_fused_row_loops() -> None:
    """fuse-row-loops would merge the serial check loop with the gather loop
    over the same rows into one parallel loop, where a failing check cannot
    leave the kernel: loops with checks are not merged."""
    from relax_xdsl.dialects.tir import CheckIndexOp
    from xdsl.dialects import scf

    loops = rx.lower(FUSED_ROWS, "default")
    checks = [o for o in loops.walk() if isinstance(o, CheckIndexOp)]
    assert len(checks) == 1
    parent = checks[0].parent_op()
    while parent is not None and not isinstance(parent, scf.ParallelOp):
        parent = parent.parent_op()
    assert parent is None, "tir.check_index inside a parallel loop"


def test_check_survives_text_round_trip() -> None:
    from relax_xdsl.passes.legalize import legalize_module

    text = rx.print_module(legalize_module(TAKE_AXIS_1.clone()))
    assert 'tir.check_index' in text and '"relax.take along axis 1 in tensor program @take"' in text
    assert rx.print_module(rx.parse_module(text)) == text


@pytest.mark.parametrize("index_type", ["int64", "int32"])
def test_onnx_gather_with_run_time_indices_maps_onto_take(index_type: str) -> None:
    """ONNX Gather's indices are valid in [-n, n); onnxruntime rejects the
    others, and so does every target here, with a BoundsError."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    elem = {"int64": TensorProto.INT64, "int32": TensorProto.INT32}[index_type]
    emb = np.arange(40, dtype=np.float32).reshape(10, 4)
    graph = helper.make_graph([helper.make_node("Gather", ["emb", "ids"], ["out"], axis=0)], "g",
                              [helper.make_tensor_value_info("ids", elem, ["n", 2])],
                              [helper.make_empty_tensor_value_info("out")], [numpy_helper.from_array(emb, "emb")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(m)
    exes = [rx.compile(mod, target="c", pipeline="baseline"), rx.compile(mod, target="c"),
            rx.compile(mod, target="interp")]
    good = np.array([[0, -1], [9, -10]], index_type)
    want = sess.run(None, {"ids": good})[0]
    np.testing.assert_array_equal(rx.evaluate(mod, "main", good), want)
    for exe in exes:
        np.testing.assert_array_equal(exe["main"](good), want)
    for bad, value in ((np.array([[0, 10]], index_type), 10), (np.array([[-11, 0]], index_type), -11)):
        with pytest.raises(Exception):  # noqa: B017 (onnxruntime's error types are not public)
            sess.run(None, {"ids": bad})
        for run in [lambda a: rx.evaluate(mod, "main", a)] + [exe["main"] for exe in exes]:
            with pytest.raises(rx.BoundsError, match=rf"relax\.take along axis 0.*: index {value} is out of range "
                                                     r"for an axis of extent 10"):
                run(bad)


def slice_module(begin: str | int, end: str | int) -> Any:
    """x[begin:end] along axis 0 with symbolic bounds taken as in bounds
    (assume_inbound): the output is [end - begin, m], so end <= p and
    begin <= p are checked at run time."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["p", "m"], "float32")
        y = fb.param("y", ["n", "m"], "float32")
        s = op.strided_slice(x, [0], [begin], [end], assume_inbound=True)
        # y[:1] as a [1, m] row (n may be 0, so a slice y[:1] is min(1, n) long and would not broadcast)
        fb.ret(op.add(s, op.take(y, np.zeros(1, np.int64), axis=0)))
    return fb.module


SLICE_END, SLICE_BEGIN = slice_module(0, "n"), slice_module("n", "n + 1")


@pytest.mark.parametrize("runner", RUNNERS, ids=list(RUNNERS))
def test_symbolic_slice_bounds_are_checked_on_every_target(runner: str) -> None:
    run = RUNNERS[runner]
    x, y = rand((4, 2)), rand((3, 2))
    np.testing.assert_array_equal(run(SLICE_END, (x, y)), x[:3] + y[:1])
    np.testing.assert_array_equal(run(SLICE_BEGIN, (x, y)), x[3:4] + y[:1])
    for module, what in ((SLICE_END, "slice end n within the dim p"), (SLICE_BEGIN, "slice (begin n|end n \\+ 1) within")):
        with pytest.raises(rx.ShapeError, match=what):
            run(module, (x, rand((5, 2))))
