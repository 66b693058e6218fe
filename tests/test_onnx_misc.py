"""ONNX import of the miscellaneous ops (onnx_ops_misc): Einsum, Hardmax,
EyeLike, CastLike, Swish/SwiGLU, windows, NLL / softmax cross-entropy losses,
Attention and RotaryEmbedding, built with onnx.helper, compiled to C (a few
also on the interpreter) and compared with onnxruntime at several sizes of
the symbolic dims, 1 included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import BoundsError, RelaxError  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64
B = TensorProto.BOOL
node = helper.make_node


def model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: Sequence[str],
          inits: dict[str, np.ndarray] | None = None, opset: int = 17) -> Any:
    return onnx_model(nodes, inputs, list(outputs), inits, opset, ir_version=10)


def _arg(rng: np.random.Generator, shape: list[int], dtype: int, int_high: int) -> np.ndarray:
    if dtype == I64:
        return rng.integers(0, int_high, size=shape).astype(np.int64)
    if dtype == B:
        return rng.random(shape) > 0.3
    if dtype == TensorProto.DOUBLE:
        return rng.standard_normal(shape)
    return rng.standard_normal(shape).astype(np.float32)


def run_all(m: Any, envs: list[dict[str, int]], targets: Sequence[str] = ("c",), int_high: int = 3,
            rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Imports, compiles once per target, runs at every binding: equal to onnxruntime's results."""
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(m)
    exes = [rx.compile(mod, target=t) for t in targets]
    ins = [(vi.name, vi.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim])
           for vi in m.graph.input]
    rng = np.random.default_rng(0)
    for env in envs:
        args = [_arg(rng, [env[d] if isinstance(d, str) else d for d in s], t, int_high) for _, t, s in ins]
        want = sess.run(None, {n: a for (n, _, _), a in zip(ins, args)})
        for got in [rx.evaluate(mod, "main", *args)] + [exe["main"](*args) for exe in exes]:
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for g, e in zip(got, want):
                assert g.shape == e.shape and g.dtype == e.dtype, env
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=str(env))


SIZES = [{"n": 1}, {"n": 3}]
slow = pytest.mark.slow


def fast_first(cases: list[Any]) -> list[Any]:
    """The first case runs in the quick suite, the rest (each compiles C, seconds) are marked slow."""
    return [c if i == 0 else pytest.param(*(c if isinstance(c, tuple) else (c,)), marks=slow)
            for i, c in enumerate(cases)]


@pytest.mark.parametrize("eq, shapes", fast_first([
    ("ij,jk->ik", [["n", 4], [4, 5]]),
    ("bij,bjk->bik", [["n", 2, 3], ["n", 3, 4]]),
    ("...ij,...jk", [["n", 2, 3], [1, 3, 4]]),
    ("ii->i", [[3, 3]]),
    ("bii->b", [["n", 3, 3]]),
    ("ij->", [["n", 4]]),
    ("i,i", [[5], [5]]),
    ("ij,j->i", [["n", 4], [4]]),
    ("i,j->ij", [["n"], [3]]),
    ("abc,cd,de->abe", [["n", 2, 3], [3, 4], [4, 2]]),
    ("bhqd,bhkd->bhqk", [["n", 2, 3, 4], ["n", 2, 5, 4]]),
    ("ij,kj->ik", [[1, 4], ["n", 4]]),
]))
def test_einsum(eq: str, shapes: list[list[Any]]) -> None:
    names = [f"x{i}" for i in range(len(shapes))]
    m = model([node("Einsum", names, ["y"], equation=eq)], [(nm, F, s) for nm, s in zip(names, shapes)], ["y"],
              opset=12)
    run_all(m, SIZES, rtol=1e-4, atol=1e-4)


def test_einsum_maps_onto_matmul() -> None:
    m = model([node("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")], [("a", F, ["n", 2, 3]), ("b", F, ["n", 3, 4])],
              ["y"], opset=12)
    text = rx.print_module(rx.from_onnx(m))
    assert "relax.matmul" in text


def test_einsum_bad_equation() -> None:
    m = model([node("Einsum", ["a"], ["y"], equation="ijk->i")], [("a", F, [2, 3])], ["y"], opset=12)
    with pytest.raises(RelaxError, match="Einsum.*3 labels but the operand has rank 2"):
        rx.from_onnx(m)


@pytest.mark.parametrize("opset, axis", fast_first([(11, 0), (13, -1), (13, 0), (11, 1)]))
def test_hardmax(opset: int, axis: int) -> None:
    m = model([node("Hardmax", ["x"], ["y"], axis=axis)], [("x", F, ["n", 3, 4])], ["y"], opset=opset)
    run_all(m, SIZES, targets=("c", "interp"))


def test_hardmax_ties_pick_the_first() -> None:
    m = model([node("Hardmax", ["x"], ["y"])], [("x", F, ["n", 4])], ["y"], opset=13)
    exe = rx.compile(rx.from_onnx(m), target="c")
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    np.testing.assert_array_equal(exe["main"](x), [[0, 1, 0, 0], [1, 0, 0, 0]])


@pytest.mark.parametrize("k, dtype", fast_first([(1, TensorProto.INT32), (0, None), (-2, TensorProto.DOUBLE)]))
def test_eye_like_symbolic(k: int, dtype: int | None) -> None:
    attrs = {"k": k} | ({"dtype": dtype} if dtype is not None else {})
    m = model([node("EyeLike", ["x"], ["y"], **attrs)], [("x", F, ["n", 4])], ["y"], opset=9)
    run_all(m, SIZES + [{"n": 6}])


def test_cast_like_and_swish_swiglu() -> None:
    m = model([node("CastLike", ["x", "like"], ["c"])], [("x", F, ["n", 3]), ("like", TensorProto.DOUBLE, [1])],
              ["c"], opset=15)
    run_all(m, SIZES)
    for alpha in (1.0, 1.702):
        m = model([node("SwiGLU", ["a", "b"], ["y"], alpha=alpha)], [("a", F, ["n", 4]), ("b", F, ["n", 4])], ["y"],
                  opset=28)
        exe = rx.compile(rx.from_onnx(m), target="c")
        a, b = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
        want = a / (1 + np.exp(-alpha * a)) * b
        np.testing.assert_allclose(exe["main"](a, b), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, periodic", fast_first([(o, p) for o in ("HannWindow", "HammingWindow", "BlackmanWindow")
                                                      for p in (1, 0)]))
def test_windows(op: str, periodic: int) -> None:
    size = numpy_helper.from_array(np.array(10, np.int64), "size")
    m = model([node("Constant", [], ["size"], value=size), node(op, ["size"], ["y"], periodic=periodic)], [], ["y"],
              opset=17)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {})[0]
    got = rx.compile(rx.from_onnx(m), target="c")["main"]()
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction, weighted, ignore", fast_first(
    [("mean", True, 1)] + [(r, w, i) for r in ("none", "sum", "mean") for w in (False, True) for i in (None, 1)
                           if (r, w, i) != ("mean", True, 1)]))
def test_nll_loss(reduction: str, weighted: bool, ignore: int | None) -> None:
    attrs: dict[str, Any] = {"reduction": reduction} | ({"ignore_index": ignore} if ignore is not None else {})
    inits = {"w": np.array([0.5, 2.0, 1.5], np.float32)} if weighted else {}
    m = model([node("NegativeLogLikelihoodLoss", ["x", "t"] + (["w"] if weighted else []), ["y"], **attrs)],
              [("x", F, ["n", 3, 2]), ("t", I64, ["n", 2])], ["y"], inits, opset=13)
    run_all(m, [{"n": 1}, {"n": 4}])


@pytest.mark.parametrize("reduction", fast_first(["mean", "none"]))
def test_softmax_cross_entropy(reduction: str) -> None:
    m = model([node("SoftmaxCrossEntropyLoss", ["x", "t"], ["y", "lp"], reduction=reduction, ignore_index=-1)],
              [("x", F, ["n", 4]), ("t", I64, ["n"])], ["y", "lp"], opset=13)
    run_all(m, SIZES, targets=("c", "interp"), int_high=4)


def test_loss_label_out_of_range_is_bounds_error() -> None:
    m = model([node("NegativeLogLikelihoodLoss", ["x", "t"], ["y"])], [("x", F, ["n", 3]), ("t", I64, ["n"])], ["y"],
              opset=13)
    mod = rx.from_onnx(m)
    x, t = np.zeros((2, 3), np.float32), np.array([0, 7], np.int64)
    with pytest.raises(BoundsError):
        rx.evaluate(mod, "main", x, t)
    with pytest.raises(BoundsError):
        rx.compile(mod, target="c")["main"](x, t)


def _attention_model(attrs: dict[str, Any], q: list[Any], k: list[Any], v: list[Any], mask: tuple[int, list[Any]] | None,
                     past: tuple[list[Any], list[Any]] | None, outputs: int = 1) -> Any:
    ins = [("Q", F, q), ("K", F, k), ("V", F, v)]
    names = ["Q", "K", "V"]
    if mask is not None:
        ins.append(("M", mask[0], mask[1]))
        names.append("M")
    if past is not None:
        if mask is None:
            names.append("")
        ins += [("PK", F, past[0]), ("PV", F, past[1])]
        names += ["PK", "PV"]
    outs = ["Y", "present_key", "present_value", "qk"][:outputs]
    return model([node("Attention", names, outs, **attrs)], ins, outs, opset=23)


@pytest.mark.parametrize("case", fast_first([
    dict(attrs={}, q=["n", 2, 3, 8], k=["n", 2, 5, 8], v=["n", 2, 5, 4], mask=None, past=None),
    dict(attrs={"is_causal": 1}, q=["n", 2, 4, 8], k=["n", 2, 4, 8], v=["n", 2, 4, 8], mask=None, past=None),
    dict(attrs={"scale": 0.3, "softcap": 2.0}, q=["n", 4, 3, 8], k=["n", 2, 5, 8], v=["n", 2, 5, 8],
         mask=(B, [3, 5]), past=None),
    dict(attrs={"q_num_heads": 4, "kv_num_heads": 2}, q=["n", 3, 16], k=["n", 5, 8], v=["n", 5, 8],
         mask=(F, [3, 5]), past=None),
    dict(attrs={"is_causal": 1, "qk_matmul_output_mode": 0}, q=["n", 2, 2, 8], k=["n", 2, 2, 8], v=["n", 2, 2, 8],
         mask=(F, ["n", 2, 2, 6]), past=(["n", 2, 4, 8], ["n", 2, 4, 8]), outputs=4),
]))
def test_attention(case: dict[str, Any]) -> None:
    m = _attention_model(case["attrs"], case["q"], case["k"], case["v"], case["mask"], case["past"],
                         case.get("outputs", 1))
    run_all(m, SIZES, atol=1e-4)


def test_attention_fully_masked_row_is_zero() -> None:
    m = _attention_model({}, [1, 1, 2, 4], [1, 1, 3, 4], [1, 1, 3, 4], (B, [2, 3]), None)
    exe = rx.compile(rx.from_onnx(m), target="c")
    q, k, v = (np.ones(s, np.float32) for s in ([1, 1, 2, 4], [1, 1, 3, 4], [1, 1, 3, 4]))
    mask = np.array([[False, False, False], [True, True, True]])
    y = exe["main"](q, k, v, mask)
    np.testing.assert_array_equal(y[0, 0, 0], 0)
    np.testing.assert_allclose(y[0, 0, 1], 1)


@pytest.mark.parametrize("interleaved, rot", fast_first([(1, 4), (0, 0), (1, 0), (0, 4)]))
def test_rotary_embedding(interleaved: int, rot: int) -> None:
    attrs = {"interleaved": interleaved} | ({"rotary_embedding_dim": rot} if rot else {})
    half = (rot or 8) // 2
    inits = {"cos": np.cos(np.arange(16 * half).reshape(16, half) / 7).astype(np.float32),
             "sin": np.sin(np.arange(16 * half).reshape(16, half) / 7).astype(np.float32)}
    m = model([node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], **attrs)],
              [("x", F, ["n", 2, "n", 8]), ("pos", I64, ["n", "n"])], ["y"], inits, opset=23)
    run_all(m, SIZES, int_high=16)
