"""recognize-ops (passes/recognize_ops.py): exporters' written-out GELU
(erf and tanh), LayerNorm, RMSNorm and softmax become one op each, in the
orders exporters write them, and near misses stay as they are. Each
rewritten module equals the original on C at every size (0 and 1
included); the FileCheck test is tests/filecheck/graph_opt/recognize_ops.mlir."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from relax_xdsl.passes.pipelines import run_pipeline
from util import SIZES, assert_close, onnx_model, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op


def ops(module: Any, name: str) -> int:
    return len(re.findall(rf"= relax\.{name} ", rx.print_module(module)))


def scalar(fb: Any, v: float) -> Any:
    return fb.const(np.float32(v))


def module_of(body: Callable[[Any, Any], Any], shape: tuple = ("n", 8)) -> Any:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", list(shape), "float32")
        fb.ret(body(fb, x))
    return fb.module


def recognized(module: Any) -> Any:
    return roundtrip(run_pipeline(module.clone(), "recognize-ops,dce"))


def check_same_on_c(module: Any, shape: tuple = ("n", 8)) -> None:
    """The default pipeline (which runs recognize-ops) on C equals the evaluator of the written-out form."""
    exe = rx.compile(module, target="c")
    for n in SIZES:
        x = rand(tuple(n if d == "n" else d for d in shape), seed=n) * 3
        assert_close(exe.main(x), rx.evaluate(module, "main", x))


def biased(fb: Any, x: Any) -> Any:
    """x + a bias row: GELU's input after a dense layer is itself an add."""
    return op.add(x, fb.const(rand((8,), seed=3)))


GELU_FORMS: dict[str, Callable[[Any, Any], Any]] = {
    # BERT through torch.onnx (opset < 20): x * (erf(x / sqrt 2) + 1) * 0.5
    "torch": lambda fb, x: op.multiply(op.multiply(x, op.add(op.erf(op.divide(x, scalar(fb, 1.4142135))),
                                                             scalar(fb, 1.0))), scalar(fb, 0.5)),
    # 0.5 * x * (1 + erf(x * 0.70710678))
    "scaled": lambda fb, x: op.multiply(op.multiply(scalar(fb, 0.5), x),
                                        op.add(scalar(fb, 1.0), op.erf(op.multiply(x, scalar(fb, 0.70710678))))),
    # (x * 0.5) * (1 + erf(x / sqrt 2)) on a bias add
    "biased": lambda fb, x: (lambda y: op.multiply(op.multiply(y, scalar(fb, 0.5)),
                                                   op.add(scalar(fb, 1.0), op.erf(op.divide(y, scalar(fb, math.sqrt(2)))))))(
        biased(fb, x)),
}

GELU_TANH_FORMS: dict[str, Callable[[Any, Any], Any]] = {
    # GPT-2 (transformers' NewGELUActivation) after expand-power: x*x*x
    "gpt2": lambda fb, x: op.multiply(op.multiply(x, scalar(fb, 0.5)), op.add(op.tanh(op.multiply(
        op.add(x, op.multiply(op.multiply(op.multiply(x, x), x), scalar(fb, 0.044715))), scalar(fb, 0.7978845608))),
        scalar(fb, 1.0))),
    # power(x, 3), the scale distributed over both terms, on a bias add
    "distributed": lambda fb, x: (lambda y: op.multiply(op.multiply(scalar(fb, 0.5), y), op.add(scalar(fb, 1.0), op.tanh(
        op.add(op.multiply(scalar(fb, 0.7978845608), y),
               op.multiply(op.power(y, scalar(fb, 3.0)), scalar(fb, 0.7978845608 * 0.044715)))))))(biased(fb, x)),
}


@pytest.mark.parametrize("form", list(GELU_FORMS))
def test_gelu_forms(form: str) -> None:
    module = module_of(GELU_FORMS[form])
    after = recognized(module)
    assert ops(after, "gelu") == 1 and ops(after, "erf") == 0 and ops(after, "multiply") == 0
    check_same_on_c(module)


@pytest.mark.parametrize("form", list(GELU_TANH_FORMS))
def test_gelu_tanh_forms(form: str) -> None:
    module = module_of(GELU_TANH_FORMS[form])
    after = recognized(module)
    assert ops(after, "gelu_tanh") == 1 and ops(after, "tanh") == 0 and ops(after, "multiply") == 0
    check_same_on_c(module)


NEAR_MISSES: dict[str, Callable[[Any, Any], Any]] = {
    "half is 0.6": lambda fb, x: op.multiply(op.multiply(scalar(fb, 0.6), x),
                                             op.add(scalar(fb, 1.0), op.erf(op.divide(x, scalar(fb, 1.4142135))))),
    "sqrt 2 is 1.5": lambda fb, x: op.multiply(op.multiply(scalar(fb, 0.5), x),
                                               op.add(scalar(fb, 1.0), op.erf(op.divide(x, scalar(fb, 1.5))))),
    "one is 2": lambda fb, x: op.multiply(op.multiply(scalar(fb, 0.5), x),
                                          op.add(scalar(fb, 2.0), op.erf(op.divide(x, scalar(fb, 1.4142135))))),
    "erf of another value": lambda fb, x: op.multiply(op.multiply(scalar(fb, 0.5), x), op.add(
        scalar(fb, 1.0), op.erf(op.divide(op.exp(x), scalar(fb, 1.4142135))))),
    "x squared outside": lambda fb, x: op.multiply(op.multiply(scalar(fb, 0.5), op.multiply(x, x)),
                                                   op.add(scalar(fb, 1.0), op.erf(op.divide(x, scalar(fb, 1.4142135))))),
    "cubic 0.05": lambda fb, x: op.multiply(op.multiply(x, scalar(fb, 0.5)), op.add(op.tanh(op.multiply(
        op.add(x, op.multiply(op.multiply(op.multiply(x, x), x), scalar(fb, 0.05))), scalar(fb, 0.7978845608))),
        scalar(fb, 1.0))),
    "per-element half": lambda fb, x: op.multiply(op.multiply(fb.const(np.full((8,), 0.5, np.float32)), x),
                                                  op.add(scalar(fb, 1.0), op.erf(op.divide(x, scalar(fb, 1.4142135))))),
}


@pytest.mark.parametrize("case", list(NEAR_MISSES))
def test_near_misses_stay_written_out(case: str) -> None:
    """A constant off by more than rounding, another value under erf, a
    factor that is not x: not GELU, so nothing changes (and C still agrees).
    A per-element constant that happens to hold 0.5 everywhere is GELU
    too, but only scalars and splats are read (it is stored element by
    element), so it stays."""
    module = module_of(NEAR_MISSES[case])
    after = recognized(module)
    assert ops(after, "gelu") == 0 and ops(after, "gelu_tanh") == 0
    assert ops(after, "multiply") == ops(module, "multiply")
    check_same_on_c(module)


def written_layer_norm(fb: Any, x: Any, affine: bool, eps: float = 1e-5, square: str = "multiply") -> Any:
    """LayerNorm as torch.onnx writes it below opset 17."""
    d = op.subtract(x, op.mean(x, axis=[-1], keepdims=True))
    sq = op.multiply(d, d) if square == "multiply" else op.power(d, scalar(fb, 2.0))
    y = op.divide(d, op.sqrt(op.add(op.mean(sq, axis=[-1], keepdims=True), scalar(fb, eps))))
    if affine:
        y = op.add(op.multiply(y, fb.const(rand((8,), seed=5))), fb.const(rand((8,), seed=6)))
    return y


@pytest.mark.parametrize("square", ["multiply", "power"])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_form(affine: bool, square: str) -> None:
    module = module_of(lambda fb, x: written_layer_norm(fb, x, affine, square=square), ("n", 3, 8))
    after = recognized(module)
    assert ops(after, "layer_norm") == 1 and ops(after, "mean") == 0 and ops(after, "sqrt") == 0
    assert ops(after, "multiply") == 0 and ops(after, "add") == 0
    text = rx.print_module(after)
    assert ("center = true" in text) == affine or "center" not in text
    check_same_on_c(module, ("n", 3, 8))


RMS_FORMS: dict[str, Callable[[Any, Any], Any]] = {
    # Llama through dynamo: x * (1 / sqrt(mean(x*x) + eps)) * w
    "reciprocal": lambda fb, x: op.multiply(fb.const(rand((8,), seed=7)), op.multiply(x, op.divide(
        scalar(fb, 1.0), op.sqrt(op.add(op.mean(op.multiply(x, x), axis=[-1], keepdims=True), scalar(fb, 1e-6)))))),
    # x * rsqrt(mean(x^2) + eps) * w
    "rsqrt": lambda fb, x: op.multiply(op.multiply(op.rsqrt(op.add(op.mean(op.power(x, scalar(fb, 2.0)), axis=[-1],
                                                                           keepdims=True), scalar(fb, 1e-6))), x),
                                       fb.const(rand((8,), seed=7))),
    # x / sqrt(mean(x*x) + eps), no weight
    "divide": lambda fb, x: op.divide(x, op.sqrt(op.add(scalar(fb, 1e-5), op.mean(op.multiply(x, x), axis=[2],
                                                                                   keepdims=True)))),
}


@pytest.mark.parametrize("form", list(RMS_FORMS))
def test_rms_norm_forms(form: str) -> None:
    module = module_of(RMS_FORMS[form], ("n", 3, 8))
    after = recognized(module)
    assert ops(after, "rms_norm") == 1 and ops(after, "mean") == 0 and ops(after, "multiply") == 0
    check_same_on_c(module, ("n", 3, 8))


def test_softmax_form() -> None:
    def body(fb: Any, x: Any) -> Any:
        e = op.exp(op.subtract(x, op.max(x, axis=[1], keepdims=True)))
        return op.divide(e, op.sum(e, axis=[1], keepdims=True))

    module = module_of(body, ("n", 5, 3))
    after = recognized(module)
    assert ops(after, "softmax") == 1 and ops(after, "exp") == 0 and ops(after, "sum") == 0
    assert "axis = 1" in rx.print_module(after)
    check_same_on_c(module, ("n", 5, 3))


NORM_MISSES: dict[str, Callable[[Any, Any], Any]] = {
    # no epsilon: a division by zero on a zero row, which rms_norm would not give
    "no epsilon": lambda fb, x: op.divide(x, op.sqrt(op.mean(op.multiply(x, x), axis=[-1], keepdims=True))),
    # a per-row epsilon is no epsilon
    "tensor eps": lambda fb, x: op.divide(x, op.sqrt(op.add(op.mean(op.multiply(x, x), axis=[-1], keepdims=True),
                                                            fb.const(rand((1, 3, 1), seed=1) ** 2)))),
    # x * x over another value than the one divided
    "two values": lambda fb, x: op.divide(x, op.sqrt(op.add(op.mean(op.multiply(op.exp(x), op.exp(x)), axis=[-1],
                                                                    keepdims=True), scalar(fb, 1e-5)))),
    # softmax's max over another axis
    "softmax axes": lambda fb, x: (lambda e: op.divide(e, op.sum(e, axis=[2], keepdims=True)))(
        op.exp(op.subtract(x, op.max(x, axis=[1], keepdims=True)))),
}


@pytest.mark.parametrize("case", list(NORM_MISSES))
def test_norm_near_misses_stay(case: str) -> None:
    module = module_of(NORM_MISSES[case], ("n", 3, 8))
    after = recognized(module)
    for name in ("layer_norm", "rms_norm", "softmax"):
        assert ops(after, name) == 0
    check_same_on_c(module, ("n", 3, 8))


def test_symbolic_normalized_dim_keeps_the_written_form() -> None:
    """The weight of ones a bare norm needs is a constant of the normalized
    dims: with a symbolic last dim there is none, and the form stays."""
    module = module_of(lambda fb, x: written_layer_norm(fb, x, False), ("n", "k"))
    after = recognized(module)
    assert ops(after, "layer_norm") == 0 and ops(after, "mean") == 2
    check_same_on_c(module, ("n", 5))


def test_deep_hostile_chain_is_not_walked_without_bound() -> None:
    """A GELU whose erf argument is a 600-deep chain of adds: the
    polynomial reader stops at its depth bound (no RecursionError), and the
    module compiles and agrees."""
    def body(fb: Any, x: Any) -> Any:
        z = x
        for _ in range(600):
            z = op.add(z, scalar(fb, 0.0))
        return op.multiply(op.multiply(scalar(fb, 0.5), x), op.add(scalar(fb, 1.0), op.erf(z)))

    module = module_of(body)
    after = recognized(module)
    assert ops(after, "gelu") == 0


def test_shared_operands_are_read_once() -> None:
    """erf of y60 where y(k+1) = y(k) + y(k): a tree of 2**60 leaves if each
    operand were read again (the reader would never finish); read once per
    value, 60 steps. 2**60 x is not x / sqrt 2, so it stays."""
    def body(fb: Any, x: Any) -> Any:
        z = x
        for _ in range(60):
            z = op.add(z, z)
        return op.multiply(op.multiply(scalar(fb, 0.5), x), op.add(scalar(fb, 1.0), op.erf(z)))

    after = recognized(module_of(body))
    assert ops(after, "gelu") == 0 and ops(after, "erf") == 1


def test_onnx_gelu_tanh_imports_as_one_op() -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    model = onnx_model([helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")],
                       [("x", TensorProto.FLOAT, ["n", 8])], ["y"], opset=20)
    data = model.SerializeToString()  # type: ignore[attr-defined]
    module = rx.from_onnx(data)
    assert ops(module, "gelu_tanh") == 1
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    exe = rx.compile(module, target="c")
    for n in (0, 1, 5):
        x = rand((n, 8), seed=n) * 4
        assert_close(exe.main(x), sess.run(None, {"x": x})[0])
