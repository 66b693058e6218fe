"""Empty tensors: symbols are nonnegative, so a symbolic dim bound to 0 at run
time must give numpy's answer on every target and pipeline (an empty sum is
0, an empty product 1, an empty mean NaN, a matmul with k = 0 zeros), and an
op that has no answer on an empty axis (max, argmax) a ShapeError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from util import assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op

F = "float32"
BINDINGS = (0, 1, 3)
TARGETS = (("interp", "baseline"), ("c", "baseline"), ("c", "default"))

Shape = list[Any]
Case = tuple[str, Callable[..., Any], list[tuple[Shape, str]], Callable[..., Any]]


def _indices(shape: tuple[int, ...], bound: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, max(bound, 1), size=shape).astype("int64")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - (x.max(axis=-1, keepdims=True) if x.size else 0))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


CASES: list[Case] = [
    ("elementwise", lambda x: op.exp(op.negative(x)), [(["n", 4], F)], lambda x: np.exp(-x)),
    ("broadcast", lambda x, y: op.add(x, y), [(["n", 4], F), ([4], F)], lambda x, y: x + y),
    ("broadcast-row", lambda x, y: op.multiply(x, y), [([3, "n"], F), ([3, 1], F)], lambda x, y: x * y),
    ("sum-empty-axis", lambda x: op.sum(x, axis=[0]), [(["n", 4], F)], lambda x: x.sum(axis=0)),
    ("sum-of-empty", lambda x: op.sum(x, axis=[1]), [(["n", 4], F)], lambda x: x.sum(axis=1)),
    ("prod-empty-axis", lambda x: op.prod(x, axis=[1]), [([4, "n"], F)], lambda x: x.prod(axis=1)),
    ("mean-empty-axis", lambda x: op.mean(x, axis=[1]), [([4, "n"], F)], lambda x: np.full(4, np.nan, F)
     if x.shape[1] == 0 else x.mean(axis=1)),
    ("max-rows", lambda x: op.max(x, axis=[1]), [(["n", 4], F)], lambda x: x.max(axis=1)),
    ("argmax-rows", lambda x: op.argmax(x, axis=1), [(["n", 4], F)], lambda x: x.argmax(axis=1)),
    ("matmul-m", lambda x, w: op.matmul(x, w), [(["n", 8], F), ([8, 5], F)], lambda x, w: x @ w),
    ("matmul-n", lambda x, w: op.matmul(x, w), [([6, 8], F), ([8, "n"], F)], lambda x, w: x @ w),
    ("matmul-k", lambda x, w: op.matmul(x, w), [([6, "n"], F), (["n", 5], F)], lambda x, w: x @ w),
    ("matmul-k-sgemm", lambda x, w: op.matmul(x, w), [([40, "n"], F), (["n", 5], F)], lambda x, w: x @ w),
    ("matmul-n-sgemm", lambda x, w: op.matmul(x, w), [([40, 8], F), ([8, "n"], F)], lambda x, w: x @ w),
    ("matmul-k-sgemv", lambda x, w: op.matmul(x, w), [([1, "n"], F), (["n", 40], F)], lambda x, w: x @ w),
    ("matmul-n-sgemv", lambda x, w: op.matmul(x, w), [([1, 8], F), ([8, "n"], F)], lambda x, w: x @ w),
    ("matmul-batch", lambda x, w: op.matmul(x, w), [(["n", 40, 8], F), (["n", 8, 5], F)], lambda x, w: x @ w),
    ("matmul-batch-k", lambda x, w: op.matmul(x, w), [([2, 40, "n"], F), ([2, "n", 5], F)], lambda x, w: x @ w),
    ("matmul-batch-n", lambda x, w: op.matmul(x, w), [([2, 40, 8], F), ([2, 8, "n"], F)], lambda x, w: x @ w),
    ("dense-k-sgemm", lambda x, w, b: op.add(op.matmul(x, w), b), [([40, "n"], F), (["n", 5], F), ([5], F)],
     lambda x, w, b: x @ w + b),
    ("dense-bias-relu", lambda x, w, b: op.nn.relu(op.add(op.matmul(x, w), b)),
     [([6, "n"], F), (["n", 5], F), ([5], F)], lambda x, w, b: np.maximum(x @ w + b, 0)),
    ("conv2d-batch", lambda x, w: op.nn.conv2d(x, w, padding=(1, 1)), [(["n", 3, 6, 6], F), ([4, 3, 3, 3], F)],
     None),
    ("conv2d-in-channels", lambda x, w: op.nn.conv2d(x, w, padding=(1, 1)), [([2, "n", 6, 6], F), ([4, "n", 3, 3], F)],
     None),
    ("conv2d-in-channels-gemm", lambda x, w: op.nn.conv2d(x, w, strides=(2, 2)),
     [([2, "n", 6, 6], F), ([40, "n", 3, 3], F)], None),
    ("conv2d-out-channels", lambda x, w: op.nn.conv2d(x, w), [([2, 3, 6, 6], F), (["n", 3, 3, 3], F)], None),
    ("conv2d-bias-relu", lambda x, w, b: op.nn.relu(op.add(op.nn.conv2d(x, w, padding=(1, 1)), b)),
     [([2, "n", 6, 6], F), ([4, "n", 3, 3], F), ([4, 1, 1], F)], None),
    ("max-pool-batch", lambda x: op.nn.max_pool2d(x, pool_size=(2, 2), strides=(2, 2)), [(["n", 3, 6, 6], F)], None),
    ("avg-pool-batch", lambda x: op.nn.avg_pool2d(x, pool_size=(2, 2), strides=(2, 2)), [(["n", 3, 6, 6], F)], None),
    ("concat-empty-piece", lambda x, y: op.concat([x, y], axis=0), [(["n", 4], F), ([2, 4], F)],
     lambda x, y: np.concatenate([x, y])),
    ("take-empty-indices", lambda x, i: op.take(x, i, axis=0), [([5, 3], F), (["n"], "int64")],
     lambda x, i: x[i]),
    ("softmax-rows", lambda x: op.nn.softmax(x, axis=-1), [(["n", 7], F)], _softmax),
    ("softmax-empty-row", lambda x: op.nn.softmax(x, axis=-1), [([3, "n"], F)], _softmax),
    ("layer-norm-rows", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1]), [(["n", 6], F), ([6], F), ([6], F)],
     _layer_norm),
    ("reshape", lambda x: op.reshape(x, [-1, 2]), [(["n", 4], F)], lambda x: x.reshape(-1, 2)),
    ("transpose", lambda x: op.permute_dims(x, [1, 0]), [(["n", 4], F)], lambda x: x.T),
    ("strided-slice", lambda x: op.strided_slice(x, [0], [1], [100], [2]), [(["n", 4], F)], lambda x: x[1::2]),
    ("cumsum", lambda x: op.cumsum(x, axis=0), [(["n", 4], F)], lambda x: np.cumsum(x, axis=0)),
]


def _build(fn: Callable[..., Any], params: list[tuple[Shape, str]]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        xs = [fb.param(f"x{i}", shape, dtype) for i, (shape, dtype) in enumerate(params)]
        fb.ret(fn(*xs))
    return fb.module


def _inputs(params: list[tuple[Shape, str]], n: int) -> tuple[np.ndarray, ...]:
    out = []
    for i, (shape, dtype) in enumerate(params):
        concrete = tuple(n if d == "n" else d for d in shape)
        out.append(_indices(concrete, 5, i) if dtype == "int64" else rand(concrete, dtype, seed=i))
    return tuple(out)


RUNS = [pytest.param(*case, target, pipeline, id=f"{case[0]}-{target}-{pipeline}",
                     marks=[pytest.mark.slow] if target == "interp" and case[0].startswith("conv2d") else [])
        for case in CASES for target, pipeline in TARGETS]
"""Every case on every target; the interpreted convolutions (10-15 s each) only in the slow set."""


@pytest.mark.parametrize(("name", "fn", "params", "ref", "target", "pipeline"), RUNS)
def test_empty_at_run_time(name: str, fn: Callable[..., Any], params: list[tuple[Shape, str]],
                           ref: Callable[..., Any] | None, target: str, pipeline: str) -> None:
    module = _build(fn, params)
    exe = rx.compile(module, target=target, pipeline=pipeline)
    for n in BINDINGS:
        args = _inputs(params, n)
        expected = rx.evaluate(module, "main", *args)
        if ref is not None:
            assert_close(expected, ref(*args))
        assert_close(exe["main"](*args), expected)


@pytest.mark.parametrize(("target", "pipeline"), TARGETS)
@pytest.mark.parametrize("reduce", ["max", "argmax"])
def test_extreme_of_an_empty_axis_is_a_shape_error(reduce: str, target: str, pipeline: str) -> None:
    """max / argmax of no elements has no value: a ShapeError at n = 0 (the
    evaluator and every compiled target), numpy's answer at n >= 1."""
    fn = (lambda x: op.max(x, axis=[1])) if reduce == "max" else (lambda x: op.argmax(x, axis=1))
    module = _build(fn, [([4, "n"], F)])
    exe = rx.compile(module, target=target, pipeline=pipeline)
    empty = rand((4, 0))
    with pytest.raises(rx.ShapeError, match=rf"relax.{reduce}.*empty"):
        rx.evaluate(module, "main", empty)
    with pytest.raises(rx.ShapeError, match=rf"relax.{reduce}.*empty"):
        exe["main"](empty)
    x = rand((4, 3))
    assert_close(exe["main"](x), x.max(axis=1) if reduce == "max" else x.argmax(axis=1))


@pytest.mark.parametrize(("target", "pipeline"), TARGETS)
def test_symbolic_divisor_of_zero_is_a_shape_error(target: str, pipeline: str) -> None:
    """reshape [m, 4] to [-1, n] divides by n: at n = 0 the size is
    undefined, a ShapeError naming the op and the dim (never a C division
    by 0); an empty m with n >= 1 is an empty result."""
    module = _build(lambda x, y: op.exp(op.reshape(op.exp(x), [-1, "n"])), [(["m", 4], F), (["n"], F)])
    exe = rx.compile(module, target=target, pipeline=pipeline)
    for m, n in ((3, 0), (0, 0)):
        args = (rand((m, 4)), rand((n,)))
        with pytest.raises(rx.ShapeError, match=r"reshape.*divis.* n.* >= 1"):
            rx.evaluate(module, "main", *args)
        with pytest.raises(rx.ShapeError, match=r"reshape: result dim \(4\*m\) floordiv n divides by n"):
            exe["main"](*args)
    for m, n in ((0, 3), (2, 4)):
        args = (rand((m, 4)), rand((n,)))
        assert_close(exe["main"](*args), np.exp(np.exp(args[0]).reshape(-1, n)))


def _onnx_exe(model: object, target: str, pipeline: str) -> Any:
    return rx.compile(rx.from_onnx(model), target=target, pipeline=pipeline)


@pytest.mark.parametrize(("target", "pipeline"), TARGETS)
def test_onnx_static_zero_dim(target: str, pipeline: str) -> None:
    """A static 0 in an input's type and an initializer with a 0 dim import
    (they were refused) and give numpy's empty answers."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from util import onnx_model

    w = np.zeros((0, 5), F)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("ReduceSum", ["x"], ["s"], axes=[1],
                                                                              keepdims=0)]
    model = onnx_model(nodes, [("x", TensorProto.FLOAT, [3, 0])], ["y", "s"], inits={"w": w}, opset=11)
    x = np.zeros((3, 0), F)
    y, s = _onnx_exe(model, target, pipeline)["main"](x)
    assert_close(y, np.zeros((3, 5), F))
    assert_close(s, np.zeros(3, F))


@pytest.mark.parametrize(("target", "pipeline"), TARGETS)
def test_onnx_symbolic_dim_bound_to_zero(target: str, pipeline: str) -> None:
    """A dim_param becomes a nonnegative symbol: a batch of 0 runs."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from util import onnx_model

    w = rand((8, 5), seed=3)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=-1)]
    model = onnx_model(nodes, [("x", TensorProto.FLOAT, ["batch", 8])], ["y"], inits={"w": w}, opset=13)
    exe = _onnx_exe(model, target, pipeline)
    for n in BINDINGS:
        x = rand((n, 8))
        assert_close(exe["main"](x), _softmax(np.maximum(x @ w, 0)))


def _window_module(fn, *specs):
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(f"a{i}", s, d) for i, (s, d) in enumerate(specs)]
        fb.ret(fn(*args))
    return fb.module


WINDOWS_ONE_SHORT = [
    ("conv2d", lambda x, w: op.nn.conv2d(x, w), [(["n", 1, "h", 4], "float32"), ([2, 1, 3, 3], "float32")],
     [(1, 1, 2, 4), (2, 1, 3, 3)], (1, 2, 0, 2)),
    ("max_pool2d", lambda x: op.nn.max_pool2d(x, pool_size=3, strides=1), [(["n", 1, "h", 4], "float32")],
     [(2, 1, 2, 4)], (2, 1, 0, 2)),
    ("conv_nd", lambda x, w: op.conv_nd(x, w), [(["n", 1, "h", 4, 4], "float32"), ([2, 1, 3, 3, 3], "float32")],
     [(1, 1, 2, 4, 4), (2, 1, 3, 3, 3)], (1, 2, 0, 2, 2)),
    ("pool_nd", lambda x: op.pool_nd(x, kind="max", pool_size=[3, 3, 3]), [(["n", 1, "h", 4, 4], "float32")],
     [(1, 1, 2, 4, 4)], (1, 1, 0, 2, 2)),
    ("max_pool_indices", lambda x: op.max_pool_indices(x, pool_size=[3, 3]), [(["n", 1, "h", 4], "float32")],
     [(1, 1, 2, 4)], (1, 1, 0, 2)),
]


@pytest.mark.parametrize(("name", "fn", "specs", "shapes", "want"), WINDOWS_ONE_SHORT, ids=[c[0] for c in WINDOWS_ONE_SHORT])
def test_an_input_one_short_of_the_window_gives_an_empty_result(name, fn, specs, shapes, want) -> None:
    """An output extent of 0 is an empty result on every level (a negative
    one is a ShapeError: tests/test_ops_nn.py)."""
    module = _window_module(fn, *specs)
    args = [np.ones(s, "float32") for s in shapes]
    assert rx.evaluate(module, "main", *args).shape == want
    for target, pipeline in (("interp", "baseline"), ("c", "baseline"), ("c", "default")):
        assert rx.compile(module, target=target, pipeline=pipeline).main(*args).shape == want
