"""ONNX math converters (relax_xdsl/frontend/onnx_ops_math.py) against
onnxruntime: elementwise functions, activations, bitwise / logical ops,
Mod, every Reduce* (axes as attribute and as input, keepdims,
noop_with_empty_axes, an empty reduced set) and ArgMax / ArgMin with
select_last_index. Each model holds many nodes (one compile), with a
symbolic (dim_param) dim bound to several sizes, 1 included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.frontend.onnx_import import OnnxImportError  # noqa: E402

F, D, I32, I64, B = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL
node = helper.make_node
NP = {F: np.float32, D: np.float64, I32: np.int32, I64: np.int64, B: np.bool_}


def model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: Sequence[str],
          inits: dict[str, np.ndarray] | None = None, opset: int = 18) -> Any:
    return onnx_model(nodes, inputs, list(outputs), inits, opset)


def data(shape: list[int], t: int, rng: np.random.Generator, low: float = -3, high: float = 3) -> np.ndarray:
    if t == B:
        return rng.random(shape) > 0.5
    if t in (I32, I64):
        return rng.integers(-9, 10, size=shape).astype(NP[t])
    return rng.uniform(low, high, size=shape).astype(NP[t])


def check(m: Any, sizes: Sequence[int] = (1, 3, 5), targets: Sequence[str] = ("c",),
          ranges: dict[str, tuple[float, float]] | None = None, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Imports, compiles once per target, runs with every input dim_param bound to each size."""
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    exes = [rx.compile(rx.from_onnx(m), target=t) for t in targets]
    rng = np.random.default_rng(0)
    for size in sizes:
        args = {}
        for vi in m.graph.input:
            shape = [size if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]
            args[vi.name] = data(shape, vi.type.tensor_type.elem_type, rng, *(ranges or {}).get(vi.name, (-3, 3)))
        want = sess.run(None, args)
        for exe in exes:
            got = exe["main"](*args.values())
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for o, g, e in zip(m.graph.output, got, want):
                assert g.shape == e.shape and g.dtype == e.dtype, (o.name, size, g.shape, e.shape, g.dtype, e.dtype)
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"{o.name} at size {size}")


UNARY = ["Sin", "Cos", "Tan", "Atan", "Sinh", "Cosh", "Asinh", "Sign", "Round", "Softplus", "Softsign", "Mish",
         "HardSwish", "Exp", "Abs", "Neg", "Reciprocal"]
ACTIVATIONS = [("Elu", {}), ("Elu", {"alpha": 0.5}), ("Celu", {}), ("Celu", {"alpha": 2.0}), ("Selu", {}),
               ("Selu", {"alpha": 2.0, "gamma": 3.0}), ("HardSigmoid", {}), ("HardSigmoid", {"alpha": 0.5, "beta": 0.1}),
               ("Shrink", {}), ("Shrink", {"lambd": 1.5, "bias": 0.5}), ("ThresholdedRelu", {}),
               ("ThresholdedRelu", {"alpha": 0.3}), ("LeakyRelu", {})]


ORT_DOUBLE = {"Sin", "Cos", "Sign", "Round", "Softplus", "Softsign", "Mish", "HardSwish", "Exp", "Abs", "Neg",
              "Reciprocal", "Log", "Elu", "Selu", "HardSigmoid", "Shrink", "ThresholdedRelu", "LeakyRelu", "PRelu"}
"""The ops of this test onnxruntime implements for double (its float64 trig kernels are missing; the graph
ops are checked in float64 against numpy in test_ops_math.py)."""


@pytest.mark.parametrize("t", [F, D])
def test_elementwise_functions_and_activations(t: int) -> None:
    nodes = [node(op, ["x"], [f"y_{op}"]) for op in UNARY]
    nodes += [node(op, ["x"], [f"a{i}"], **attrs) for i, (op, attrs) in enumerate(ACTIVATIONS)]
    nodes += [node(op, ["u"], [f"y_{op}"]) for op in ("Asin", "Acos", "Atanh")]
    nodes += [node("Acosh", ["c"], ["y_Acosh"]), node("Log", ["c"], ["y_Log"])]
    nodes += [node("PRelu", ["x", "slope"], ["p1"]), node("PRelu", ["x", "slope1"], ["p2"])]
    if t == D:
        nodes = [n for n in nodes if n.op_type in ORT_DOUBLE]
    outs = [n.output[0] for n in nodes]
    slope, slope1 = np.array([0.1, -0.5, 2.0, 0.0], NP[t]), np.array([0.25], NP[t])
    check(model(nodes, [("x", t, ["n", 4]), ("u", t, ["n", 4]), ("c", t, [2, "n"])], outs,
                {"slope": slope, "slope1": slope1}),
          ranges={"u": (-0.99, 0.99), "c": (1.0, 9.0)})


def test_float_specials_and_predicates() -> None:
    """Round halves to even; IsInf with each detect_* combination; IsNaN; Sign of NaN."""
    nodes = [node("Round", ["k"], ["r"]), node("IsNaN", ["k"], ["nan"]), node("IsInf", ["k"], ["inf"]),
             node("IsInf", ["k"], ["pos"], detect_negative=0), node("IsInf", ["k"], ["neg"], detect_positive=0),
             node("IsInf", ["k"], ["none"], detect_negative=0, detect_positive=0), node("Sign", ["k"], ["s"]),
             node("Mul", ["x", "k"], ["xk"]), node("IsNaN", ["xk"], ["nan2"])]
    k = np.array([0.5, 1.5, 2.5, -0.5, -2.5, np.nan, np.inf, -np.inf], np.float32)
    check(model(nodes, [("x", F, ["n", 8])], ["r", "nan", "inf", "pos", "neg", "none", "s", "nan2"], {"k": k}),
          targets=("c", "interp"))


def test_bitwise_logical_and_mod() -> None:
    """Integer ops; Mod with fmod=0 (divisor's sign) and fmod=1 (dividend's), ints and floats."""
    nodes = [node(op, ["a", "b"], [op]) for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor")]
    nodes += [node("BitwiseNot", ["a"], ["BitwiseNot"]), node("Mod", ["a", "d"], ["mod"]),
              node("Mod", ["a", "d"], ["fmod"], fmod=1), node("Mod", ["f", "g"], ["fmodf"], fmod=1)]
    nodes += [node(op, ["p", "q"], [op]) for op in ("And", "Or", "Xor")] + [node("Not", ["p"], ["Not"])]
    d = np.array([3, -3, 7, -2, 5], np.int32)
    g = np.array([1.5, -2.0, 0.7, -0.3, 2.5], np.float32)
    outs = [n.output[0] for n in nodes]
    check(model(nodes, [("a", I32, ["n", 5]), ("b", I32, [5]), ("f", F, ["n", 5]), ("p", B, ["n", 5]),
                        ("q", B, [1, 5])], outs, {"d": d, "g": g}), targets=("c", "interp"), sizes=(1, 4))


def test_variadic_max_min_sum_mean() -> None:
    nodes = [node(op, ["x", "y", "z"], [op]) for op in ("Max", "Min", "Sum", "Mean")]
    nodes += [node("Max", ["i", "j"], ["maxi"]), node("Min", ["i"], ["mini"]), node("Sum", ["x"], ["sum1"])]
    check(model(nodes, [("x", F, ["n", 3]), ("y", F, [3]), ("z", F, ["n", 1]), ("i", I64, ["n", 3]),
                        ("j", I64, [1, 3])], ["Max", "Min", "Sum", "Mean", "maxi", "mini", "sum1"]))


REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


def test_reductions_axes_as_input() -> None:
    """Opset 18: axes from an initializer (negative, several), none (every axis), keepdims 0/1, and
    noop_with_empty_axes (the elementwise part still applies)."""
    nodes, outs = [], []
    for op in REDUCE:
        nodes += [node(op, ["x", "ax1"], [f"{op}_a"]), node(op, ["x", "ax2"], [f"{op}_b"], keepdims=0),
                  node(op, ["x"], [f"{op}_c"], keepdims=0), node(op, ["x"], [f"{op}_d"], noop_with_empty_axes=1)]
        outs += [f"{op}_{s}" for s in "abcd"]
    m = model(nodes, [("x", F, ["n", 3, 4])], outs,
              {"ax1": np.array([-1], np.int64), "ax2": np.array([0, 2], np.int64)})
    check(m, ranges={"x": (0.2, 1.5)}, rtol=2e-4)


def test_reductions_axes_attribute_and_ints() -> None:
    """Opset 13 (ReduceSum takes axes as input, the others as attribute), on int32 data."""
    nodes, outs = [], []
    for op in ("ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare", "ReduceMean", "ReduceL2"):
        nodes += [node(op, ["x"], [f"{op}_a"], axes=[1]), node(op, ["x"], [f"{op}_b"], axes=[0, -1], keepdims=0)]
        outs += [f"{op}_a", f"{op}_b"]
    nodes += [node("ReduceSum", ["x", "ax"], ["sum_a"]), node("ReduceSum", ["x"], ["sum_b"], keepdims=0)]
    outs += ["sum_a", "sum_b"]
    check(model(nodes, [("x", I32, ["n", 3, 2])], outs, {"ax": np.array([1], np.int64)}, opset=13))


def test_reduction_over_an_empty_set_gives_the_identity() -> None:
    """A slice leaves no elements along axis 1: ONNX's identities (0, 1, -inf, +inf), output [n, 1]."""
    nodes = [node("Slice", ["x", "s", "e", "a"], ["empty"])]
    outs = []
    for op in ("ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare",
               "ReduceLogSum", "ReduceLogSumExp"):
        nodes.append(node(op, ["empty", "a"], [op]))
        outs.append(op)
    one = np.array([1], np.int64)
    check(model(nodes, [("x", F, ["n", 4])], outs, {"s": one, "e": one, "a": one}))


def test_argmax_argmin_select_last_index() -> None:
    """Ties pick the last index with select_last_index=1, the first without; along a static and a
    symbolic axis (n), keepdims 0 / 1."""
    nodes = [node("Round", ["x"], ["r"])]  # rounded data: many ties
    outs = []
    for op in ("ArgMax", "ArgMin"):
        for axis, keep, last in ((1, 1, 1), (1, 0, 1), (0, 1, 1), (0, 0, 1), (1, 1, 0), (-1, 0, 0)):
            name = f"{op}_{axis}_{keep}_{last}"
            nodes.append(node(op, ["r"], [name], axis=axis, keepdims=keep, select_last_index=last))
            outs.append(name)
    check(model(nodes, [("x", F, ["n", 6])], outs, opset=13), sizes=(1, 2, 7), targets=("c", "interp"))


@pytest.mark.parametrize(("n", "message"), [
    (node("BitShift", ["a", "a"], ["y"], direction="UP"), "direction='UP'"),
    (node("Mod", ["a", "a"], ["y"], fmod=2), "fmod=2"),
    (node("Celu", ["f"], ["y"], alpha=0.0), "alpha must not be 0"),
    (node("Elu", ["a"], ["y"]), "X must be a float tensor"),
    (node("Sin", ["f"], ["y"], alpha=1.0), "alpha"),
    (node("ReduceMax", ["f"], ["y"], axes=[3]), "out of range"),
])
def test_import_errors_name_the_node(n: Any, message: str) -> None:
    m = model([n], [("a", I32, [4]), ("f", F, [4])], ["y"], opset=12)
    with pytest.raises(OnnxImportError, match=rf"\({n.op_type}\).*{message}|{message}.*"):
        rx.from_onnx(m)


def test_swish_opset_24() -> None:
    nodes = [node("Swish", ["x"], ["s1"]), node("Swish", ["x"], ["s2"], alpha=0.5)]
    m = model(nodes, [("x", F, ["n", 4])], ["s1", "s2"], opset=24)
    m.ir_version = 10
    check(m)
