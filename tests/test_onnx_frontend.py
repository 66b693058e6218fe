"""ONNX import (relax_xdsl.from_onnx): graphs built with onnx.helper, one
per op family and per shape-subgraph pattern exporters emit, compiled once
(C) and run at several sizes (1 included), against onnxruntime. Also the
symbolic shapes the importer deduces, and its errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402
from relax_xdsl.dialects.relax import FunctionOp  # noqa: E402
from util import onnx_model  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.shape import shape_to_str  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64
node = helper.make_node


def model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: Sequence[str],
          inits: dict[str, np.ndarray] | None = None, opset: int = 17) -> Any:
    return onnx_model(nodes, inputs, list(outputs), inits, opset, ir_version=8)


def rng_array(rng: np.random.Generator, shape: Sequence[int], dtype: int) -> np.ndarray:
    if dtype == I64:
        return rng.integers(0, 4, size=shape).astype(np.int64)
    if dtype == TensorProto.BOOL:
        return rng.random(shape) > 0.5
    return rng.standard_normal(shape).astype(np.float32)


def w(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def concrete(shape: list[Any], env: dict[str, int]) -> list[int]:
    return [env[d] if isinstance(d, str) else d for d in shape]


def check_against_ort(m: Any, envs: list[dict[str, int]], targets: Sequence[str] = ("c",), rtol: float = 1e-4,
                      atol: float = 1e-5) -> Any:
    """Imports, compiles once per target, runs at every binding; results equal onnxruntime's."""
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(m)
    exes = [rx.compile(mod, target=t) for t in targets]
    inputs = [(vi.name, vi.type.tensor_type.elem_type,
               [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]) for vi in m.graph.input]
    rng = np.random.default_rng(0)
    for env in envs:
        args = [rng_array(rng, concrete(s, env), t) for _, t, s in inputs]
        want = sess.run(None, {n: a for (n, _, _), a in zip(inputs, args)})
        got_ref = rx.evaluate(mod, "main", *args)
        for got in [got_ref] + [exe["main"](*args) for exe in exes]:
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for g, e in zip(got, want):
                assert g.shape == e.shape, env
                assert g.dtype == e.dtype, env
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=str(env))
    return mod


def main_types(mod: Any) -> tuple[list[str], list[str]]:
    fn = next(op for op in mod.body.block.ops if isinstance(op, FunctionOp))
    ins = [shape_to_str(a.type.sym_shape) for a in fn.args]
    outs = [shape_to_str(t.sym_shape) for t in fn.function_type.outputs.data]
    return ins, outs


N = [{"n": s} for s in (1, 3, 7)]
BT = [{"b": 1, "t": 1}, {"b": 2, "t": 5}, {"b": 3, "t": 2}]

Case = tuple[str, Callable[[], Any], list[dict[str, int]]]


def _gemm() -> Any:
    return model([node("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)],
                 [("x", F, ["n", 8])], ["y"], {"w": w(4, 8), "c": w(4)})


def _gemm_ta() -> Any:
    return model([node("Gemm", ["x", "w"], ["y"], transA=1)], [("x", F, [6, "n"])], ["y"], {"w": w(6, 3)})


def _matmul_batched() -> Any:
    return model([node("MatMul", ["x", "w"], ["m"]), node("MatMul", ["m", "v"], ["y"])],
                 [("x", F, ["b", "t", 4]), ("v", F, ["b", 5, "t"])], ["y"], {"w": w(4, 5)})


def _conv() -> Any:
    return model([node("Conv", ["x", "k", "bias"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1], group=2,
                       kernel_shape=[3, 2])],
                 [("x", F, ["n", 4, "n", 6])], ["y"], {"k": w(6, 2, 3, 2), "bias": w(6)})


def _conv_same() -> Any:
    return model([node("Conv", ["x", "k"], ["y"], auto_pad="SAME_LOWER")],
                 [("x", F, [2, 3, "n", "n"])], ["y"], {"k": w(4, 3, 2, 3)})


def _conv1d() -> Any:
    return model([node("Conv", ["x", "k", "bias"], ["y"], pads=[1, 1])], [("x", F, ["n", 2, 9])], ["y"],
                 {"k": w(3, 2, 3), "bias": w(3)})


def _pools() -> Any:
    return model([node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                  node("AveragePool", ["x"], ["b"], kernel_shape=[2, 3], pads=[0, 1, 1, 1], count_include_pad=1),
                  node("AveragePool", ["x"], ["c"], kernel_shape=[2, 2], strides=[2, 2]),
                  node("GlobalAveragePool", ["x"], ["d"]), node("GlobalMaxPool", ["x"], ["e"])],
                 [("x", F, ["n", 2, 6, 7])], ["a", "b", "c", "d", "e"])


def _batchnorm_flatten() -> Any:
    return model([node("BatchNormalization", ["x", "g", "be", "m", "v"], ["y"], epsilon=1e-3),
                  node("Flatten", ["y"], ["f1"]), node("Flatten", ["y"], ["f0"], axis=0),
                  node("Flatten", ["y"], ["f3"], axis=-1)],
                 [("x", F, ["n", 3, 2, "n"])], ["f1", "f0", "f3"],
                 {"g": w(3), "be": w(3, seed=2), "m": w(3, seed=3), "v": np.abs(w(3, seed=4)) + 0.5})


def _softmaxes() -> Any:
    return model([node("Softmax", ["x"], ["a"], axis=1), node("LogSoftmax", ["x"], ["b"]),
                  node("Softmax", ["x"], ["c"], axis=0)], [("x", F, ["n", 5, 3])], ["a", "b", "c"], opset=13)


def _softmax_opset11() -> Any:
    return model([node("Softmax", ["x"], ["a"], axis=1), node("LogSoftmax", ["x"], ["b"])],
                 [("x", F, ["n", 5, 3])], ["a", "b"], opset=11)


def _layernorm() -> Any:
    return model([node("LayerNormalization", ["x", "g", "be"], ["a"], epsilon=1e-3),
                  node("LayerNormalization", ["x", "g2"], ["b"], axis=-2)],
                 [("x", F, ["n", 4, 6])], ["a", "b"], {"g": w(6), "be": w(6, seed=2), "g2": w(4, 6, seed=3)})


def _gelu_erf() -> Any:
    inits = {"r": np.array(1 / np.sqrt(2), np.float32), "one": np.array(1, np.float32),
             "half": np.array(0.5, np.float32)}
    return model([node("Mul", ["x", "r"], ["s"]), node("Erf", ["s"], ["e"]), node("Add", ["e", "one"], ["e1"]),
                  node("Mul", ["x", "e1"], ["g"]), node("Mul", ["g", "half"], ["y"])],
                 [("x", F, ["n", 8])], ["y"], inits)


def _gelu20() -> Any:
    return model([node("Gelu", ["x"], ["a"]), node("Gelu", ["x"], ["b"], approximate="tanh")],
                 [("x", F, ["n", 8])], ["a", "b"], opset=20)


def _splits() -> Any:
    return model([node("Split", ["x", "sizes"], ["a", "b", "c"], axis=1),
                  node("Split", ["x"], ["d", "e"], axis=-1)],
                 [("x", F, ["n", 6, 4])], ["a", "b", "c", "d", "e"], {"sizes": np.array([1, 3, 2], np.int64)})


def _split18() -> Any:
    return model([node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
                 [("x", F, ["n", 7])], ["a", "b", "c"], opset=18)


def _elementwise() -> Any:
    inits = {"two": np.array(2.0, np.float32), "three": np.array(3, np.int64)}
    return model([node("Abs", ["x"], ["ax"]), node("Sqrt", ["ax"], ["sq"]), node("Pow", ["x", "two"], ["p"]),
                  node("Pow", ["ax", "three"], ["p3"]), node("Sub", ["p", "sq"], ["d"]), node("Neg", ["d"], ["ng"]),
                  node("Exp", ["ng"], ["ex"]), node("Log", ["p"], ["lg"]), node("Tanh", ["x"], ["th"]),
                  node("Sigmoid", ["th"], ["sg"]), node("Div", ["sg", "ex"], ["dv"]), node("Relu", ["x"], ["r"]),
                  node("LeakyRelu", ["x"], ["lr"], alpha=0.2), node("Reciprocal", ["sg"], ["rc"]),
                  node("Floor", ["x"], ["fl"]), node("Ceil", ["x"], ["ce"]),
                  node("Max", ["x", "th", "lr"], ["mx"]), node("Min", ["x", "th"], ["mn"]),
                  node("Sum", ["x", "th", "r"], ["sm"]), node("Mean", ["x", "th"], ["me"]),
                  node("Clip", ["x", "lo"], ["cl"]), node("Clip", ["x", "lo", "hi"], ["cl2"]),
                  node("Dropout", ["cl2"], ["dr"]), node("Identity", ["dr"], ["id"])],
                 [("x", F, ["n", 5])],
                 ["dv", "p3", "lg", "rc", "fl", "ce", "mx", "mn", "sm", "me", "cl", "id"],
                 {**inits, "lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)})


def _compare_where() -> Any:
    return model([node("Less", ["x", "y"], ["lt"]), node("Greater", ["x", "y"], ["gt"]),
                  node("Equal", ["i", "j"], ["eq"]), node("Not", ["eq"], ["ne"]),
                  node("GreaterOrEqual", ["x", "y"], ["ge"]), node("LessOrEqual", ["x", "y"], ["le"]),
                  node("Where", ["lt", "x", "y"], ["mn"]), node("Where", ["ne", "i", "j"], ["sel"])],
                 [("x", F, ["n", 3]), ("y", F, [1, 3]), ("i", I64, ["n", 3]), ("j", I64, ["n", 3])],
                 ["gt", "ge", "le", "mn", "sel", "ne"])


def _reductions() -> Any:
    return model([node("ReduceMean", ["x"], ["a"], axes=[-1], keepdims=1), node("ReduceSum", ["x", "ax"], ["b"],
                                                                               keepdims=0),
                  node("ReduceMax", ["x"], ["c"], keepdims=0), node("ReduceMin", ["x"], ["d"], axes=[0, 2]),
                  node("ReduceProd", ["x"], ["e"], axes=[1]), node("ArgMax", ["x"], ["f"], axis=1),
                  node("ArgMin", ["x"], ["g"], axis=-1, keepdims=0)],
                 [("x", F, ["n", 3, 4])], ["a", "b", "c", "d", "e", "f", "g"], {"ax": np.array([1], np.int64)},
                 opset=13)


def _reduce18() -> Any:
    return model([node("ReduceMean", ["x", "ax"], ["a"]), node("ReduceMax", ["x"], ["b"], keepdims=0),
                  node("ReduceSum", ["x"], ["c"])],
                 [("x", F, ["n", 3, 4])], ["a", "b", "c"], {"ax": np.array([0, -1], np.int64)}, opset=18)


def _torch_style_attention_reshape() -> Any:
    """What torch's exporter emits for q.view(b, t, heads, dh).transpose(1, 2):
    Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    return model([node("Shape", ["x"], ["s"]),
                  node("Gather", ["s", "i0"], ["b"], axis=0), node("Gather", ["s", "i1"], ["t"], axis=0),
                  node("Unsqueeze", ["b", "ax0"], ["bu"]), node("Unsqueeze", ["t", "ax0"], ["tu"]),
                  node("Concat", ["bu", "tu", "heads", "dh"], ["shape"], axis=0),
                  node("MatMul", ["x", "wq"], ["q"]), node("Reshape", ["q", "shape"], ["qr"]),
                  node("Transpose", ["qr"], ["qt"], perm=[0, 2, 1, 3]),
                  node("Transpose", ["qr"], ["kt"], perm=[0, 2, 3, 1]),
                  node("MatMul", ["qt", "kt"], ["sc"]),
                  node("Shape", ["qt"], ["qs"], start=-1), node("Cast", ["qs"], ["qsf"], to=F),
                  node("Sqrt", ["qsf"], ["sd"]), node("Div", ["sc", "sd"], ["scaled"]),
                  node("Softmax", ["scaled"], ["attn"], axis=-1), node("MatMul", ["attn", "qt"], ["ctx"]),
                  node("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
                  node("Mul", ["b", "t"], ["bt"]), node("Unsqueeze", ["bt", "ax0"], ["btu"]),
                  node("Concat", ["btu", "minus1"], ["flat_shape"], axis=0),
                  node("Reshape", ["ct", "flat_shape"], ["y"])],
                 [("x", F, ["b", "t", 8])], ["y"],
                 {"i0": np.array(0, np.int64), "i1": np.array(1, np.int64), "ax0": np.array([0], np.int64),
                  "heads": np.array([2], np.int64), "dh": np.array([4], np.int64), "minus1": np.array([-1], np.int64),
                  "wq": w(8, 8)})


def _mask_pattern() -> Any:
    """A padding/causal mask built from shapes: ConstantOfShape, Range, Expand, Equal, Where."""
    return model([node("Shape", ["x"], ["s"]), node("Slice", ["s", "st", "en"], ["s1"]),
                  node("ConstantOfShape", ["s1"], ["ones"], value=helper.make_tensor("v", F, [1], [1.0])),
                  node("Range", ["r0", "r4", "r1"], ["rng"]), node("Cast", ["rng"], ["rngf"], to=F),
                  node("Add", ["ones", "rngf"], ["ramp"]),
                  node("Expand", ["ramp", "s"], ["big"]), node("Equal", ["x", "big"], ["eq"]),
                  node("Where", ["eq", "big", "x"], ["y"]), node("Size", ["s"], ["sz"]),
                  node("Cast", ["sz"], ["szf"], to=F), node("Mul", ["y", "szf"], ["out"])],
                 [("x", F, ["n", 4])], ["out"],
                 {"st": np.array([-1], np.int64), "en": np.array([2**63 - 1], np.int64), "r0": np.array(0, np.int64),
                  "r4": np.array(4, np.int64), "r1": np.array(1, np.int64)})


def _slices_gather() -> Any:
    return model([node("Slice", ["x", "st", "en", "ax", "sp"], ["a"]),
                  node("Slice", ["x", "st2", "en2"], ["b"]),
                  node("Gather", ["x", "idx"], ["c"], axis=2), node("Gather", ["emb", "ids"], ["d"]),
                  node("Squeeze", ["b", "sq"], ["e"]), node("Unsqueeze", ["e", "usq"], ["f"]),
                  node("Transpose", ["x"], ["g"]), node("Reshape", ["x", "rs"], ["h"]),
                  node("Concat", ["x", "x"], ["i"], axis=-1)],
                 [("x", F, ["n", 3, 6]), ("ids", I64, ["n", 2])], ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
                 {"st": np.array([1, -1], np.int64), "en": np.array([2**63 - 1, -7], np.int64),
                  "ax": np.array([1, 2], np.int64), "sp": np.array([1, -2], np.int64),
                  "st2": np.array([0, 0, 2], np.int64), "en2": np.array([2**63 - 1, 1, 5], np.int64),
                  "idx": np.array([[0, -1], [2, 3]], np.int64), "emb": w(10, 4),
                  "sq": np.array([1], np.int64), "usq": np.array([0, -1], np.int64),
                  "rs": np.array([0, -1, 2], np.int64)})


def _constant_cast() -> Any:
    c = helper.make_tensor("c", F, [3], [1.0, -2.0, 0.5])
    return model([node("Constant", [], ["k"], value=c), node("Constant", [], ["ki"], value_ints=[1, 2, 3]),
                  node("Add", ["x", "k"], ["a"]), node("Cast", ["a"], ["ai"], to=TensorProto.INT32),
                  node("Cast", ["ki"], ["kf"], to=F), node("Mul", ["a", "kf"], ["m"]),
                  node("Cast", ["x"], ["xd"], to=TensorProto.DOUBLE)],
                 [("x", F, ["n", 3])], ["ai", "m", "xd"])


def _symbolic_range() -> Any:
    """Position ids from the sequence length (`torch.arange(t)`) and an
    embedding lookup with them."""
    return model([node("Shape", ["x"], ["s"]), node("Gather", ["s", "one"], ["t"]),
                  node("Range", ["zero", "t", "one"], ["pos"]), node("Gather", ["emb", "pos"], ["pe"]),
                  node("Add", ["x", "pe"], ["y"]), node("Range", ["two", "t", "three"], ["odd"])],
                 [("x", F, ["b", "t", 4])], ["y", "odd"],
                 {"zero": np.array(0, np.int64), "one": np.array(1, np.int64), "two": np.array(2, np.int64),
                  "three": np.array(3, np.int64), "emb": w(16, 4)})


CASES: list[Case] = [
    ("symbolic-range", _symbolic_range, [{"b": 1, "t": 1}, {"b": 2, "t": 5}, {"b": 1, "t": 9}]),
    ("gemm", _gemm, N), ("gemm-transA", _gemm_ta, N), ("matmul-batched", _matmul_batched, BT),
    ("conv-groups-asym", _conv, [{"n": s} for s in (3, 4, 7)]), ("conv-same", _conv_same, [{"n": s} for s in (1, 4, 7)]),
    ("conv1d", _conv1d, N), ("pools", _pools, N), ("batchnorm-flatten", _batchnorm_flatten, N),
    ("softmax", _softmaxes, N), ("softmax-opset11", _softmax_opset11, N), ("layernorm", _layernorm, N),
    ("gelu-erf", _gelu_erf, N), ("gelu-opset20", _gelu20, N), ("split", _splits, N), ("split-opset18", _split18, N),
    ("elementwise", _elementwise, N), ("compare-where", _compare_where, N), ("reductions", _reductions, N),
    ("reduce-opset18", _reduce18, N), ("attention-reshape", _torch_style_attention_reshape, BT),
    ("mask-pattern", _mask_pattern, N), ("slices-gather", _slices_gather, N), ("constant-cast", _constant_cast, N),
]


@pytest.mark.parametrize(("name", "build", "envs"), CASES, ids=[c[0] for c in CASES])
def test_matches_onnxruntime(name: str, build: Callable[[], Any], envs: list[dict[str, int]]) -> None:
    check_against_ort(build(), envs)


def test_interp_target_matches_too() -> None:
    check_against_ort(_torch_style_attention_reshape(), BT[:2], targets=("interp",))


def test_shape_subgraphs_give_precise_symbolic_shapes() -> None:
    mod = rx.from_onnx(_torch_style_attention_reshape())
    text = rx.print_module(mod)
    assert "relax.reshape" in text and "[b, t, 2, 4]" in text, text
    assert main_types(mod) == (["[b, t, 8]"], ["[b*t, 8]"])
    assert "relax.shape_of" not in text  # the shape arithmetic happened at import time
    mod = rx.from_onnx(_mask_pattern())
    assert main_types(mod) == (["[n, 4]"], ["[n, 4]"])


def test_onnx_models_match_the_python_built_ones() -> None:
    """The benchmark models as ONNX (same weights) import to the same results as relax_xdsl.models."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("onnx_models", Path(__file__).parent.parent / "benchmarks" /
                                                  "onnx_models.py")
    assert spec and spec.loader
    onnx_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(onnx_models)
    from relax_xdsl import models

    for name, build, sizes in (("mlp", models.mlp, [(1,), (4,)]), ("cnn", models.cnn, [(1,), (2,)]),
                               ("transformer", models.transformer_block, [(1, 3), (2, 5)])):
        m = build()
        exe = rx.compile(rx.from_onnx(onnx_models.BUILDERS[name](m.weights)), target="c", pipeline="fast")
        sess = onnx_models.session(name, m.weights)
        for s in sizes:
            (x,) = m.make_inputs(*s)
            np.testing.assert_allclose(exe["main"](x), sess.run(None, {"x": x})[0], rtol=1e-4, atol=2e-5)


# --- inputs, parameters, names -----------------------------------------------------------------------------------


def test_dim_params_unnamed_dims_and_odd_names() -> None:
    m = model([node("Add", ["in.put:0", "y"], ["out/0"])],
              [("in.put:0", F, ["batch size", None, 3]), ("y", F, ["batch size", None, 3])], ["out/0"])
    mod = rx.from_onnx(m)
    ins, outs = main_types(mod)
    assert ins == ["[batch_size, in_put_0_dim1, 3]", "[batch_size, y_dim1, 3]"]
    text = rx.print_module(mod)
    assert rx.print_module(rx.parse_module(text)) == text
    x = np.ones((2, 4, 3), np.float32)
    np.testing.assert_allclose(rx.compile(mod)["main"](x, x), 2 * x)


def test_shapes_override() -> None:
    m = model([node("Relu", ["x"], ["y"])], [("x", F, ["n", 3])], ["y"])
    assert main_types(rx.from_onnx(m, shapes={"x": [2, "k"]})) == (["[2, k]"], ["[2, k]"])
    with pytest.raises(rx.OnnxImportError, match="not graph inputs"):
        rx.from_onnx(m, shapes={"nope": [1]})


def test_keep_params_in_input() -> None:
    m = _gemm()
    mod, params = rx.from_onnx(m, keep_params_in_input=True)
    assert list(params) == ["w", "c"]
    ins, _ = main_types(mod)
    assert ins == ["[n, 8]", "[4, 8]", "[4]"]
    assert "tensor<[4, 8]" not in rx.print_module(mod).split("relax.return")[0].split("relax.constant")[-1]
    x = w(3, 8, seed=9)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(rx.compile(mod)["main"](x, *params.values()), want, rtol=1e-5, atol=1e-6)


def test_weights_print_inline_and_round_trip(tmp_path: Any) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(model([node("MatMul", ["x", "w"], ["y"])], [("x", F, ["n", 64])], ["y"], {"w": w(64, 64)}), str(path))
    mod = rx.from_onnx(str(path))
    text = rx.print_module(mod)
    assert 'relax.constant' in text and "0x" in text
    assert rx.print_module(rx.parse_module(text)) == text
    assert rx.from_onnx(path.read_bytes()) is not None


# --- errors --------------------------------------------------------------------------------------------------------


def _errors(m: Any, match: str, **kw: Any) -> None:
    with pytest.raises(rx.OnnxImportError, match=match):
        rx.from_onnx(m, **kw)


def test_unknown_op_names_node_and_op() -> None:
    _errors(model([node("NoSuchOp", ["x"], ["y"], name="my_op")], [("x", F, [2, 2])], ["y"]),
            r"node 'my_op' \(NoSuchOp\): op NoSuchOp is not supported")


def test_unsupported_attribute_names_it() -> None:
    _errors(model([node("Softmax", ["x"], ["y"], name="sm", axis=1, foo=3)], [("x", F, [2, 2])], ["y"]),
            r"node 'sm' \(Softmax\): attribute 'foo' is not supported")
    _errors(model([node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn", spatial=0)],
                  [("x", F, [2, 2])], ["y"], {k: w(2) for k in "gbmv"}), r"'bn'.*spatial=0")
    _errors(model([node("Conv", ["x", "k"], ["y"], name="c3")], [("x", F, [1, 2])], ["y"],
                  {"k": w(1, 2)}), r"'c3' \(Conv\): X must have rank >= 3")


def test_missing_initializer_and_unsupported_outputs() -> None:
    _errors(model([node("Add", ["x", "bias"], ["y"], name="add0")], [("x", F, [2])], ["y"]),
            r"node 'add0' \(Add\): input 1 'bias' is not defined")
    _errors(model([node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y", "rm", "rv"], name="bn"),
                   node("Neg", ["rm"], ["z"], name="r")], [("x", F, [1, 2, 4])], ["z"], {k: w(2) for k in "gbmv"}),
            r"node 'r' \(Neg\): input 0 'rm': BatchNormalization's running statistics outputs .* not supported")
    _errors(model([node("Relu", ["x"], ["y"])], [("x", F, [2])], ["nothing"]), "graph output 'nothing'")


def test_runtime_values_where_import_time_values_are_needed() -> None:
    """Reshape's shape as data binds fresh symbols at run time (tests/test_onnx_runtime_shapes.py); a shape
    whose LENGTH is data is still refused, naming the node, the input and why."""
    module = rx.from_onnx(model([node("Reshape", ["x", "s"], ["y"], name="rs")], [("x", F, [4]), ("s", I64, [2])],
                                ["y"]))
    assert "relax.tensor_to_shape" in str(module)
    np.testing.assert_array_equal(rx.evaluate(module, "main", np.arange(4, dtype="float32"), np.array([2, 2])),
                                  np.arange(4, dtype="float32").reshape(2, 2))
    _errors(model([node("Reshape", ["x", "s"], ["y"], name="rs")], [("x", F, [4]), ("s", I64, ["m"])], ["y"]),
            r"'rs' \(Reshape\): input 1 \(shape\) has a length of m entries computed at run time.*must be static")


def test_sizes_used_as_tensor_data_are_computed_at_run_time() -> None:
    """A value computed from symbolic dims that import time cannot fold (a
    float conversion of `Shape`) becomes run-time data (make_shape,
    shape_to_tensor): one executable, any n, the values onnxruntime gives."""
    import onnxruntime as ort

    m = model([node("Shape", ["x"], ["s"]), node("Cast", ["s"], ["f"], to=F), node("Add", ["x", "f"], ["y"])],
              [("x", F, ["n"])], ["y"])
    module = rx.from_onnx(m)
    assert "relax.make_shape : !relax.shape<[n]>" in str(module)
    sess = ort.InferenceSession(m.SerializeToString())
    for target in ("interp", "c"):
        exe = rx.compile(module, target=target)
        for n in (1, 4):
            x = np.arange(n, dtype="float32")
            np.testing.assert_array_equal(exe.main(x), sess.run(None, {"x": x})[0])


def test_bad_types_and_domains() -> None:
    _errors(model([node("Relu", ["x"], ["y"])], [("x", TensorProto.STRING, [2])], ["y"]), r"input 'x'.*STRING")
    _errors(model([node("Relu", ["x"], ["y"])], [("x", TensorProto.COMPLEX64, [2])], ["y"]), r"COMPLEX64")
    m = model([node("FusedGemm", ["x"], ["y"], name="fg", domain="com.microsoft")], [("x", F, [2])], ["y"])
    _errors(m, r"'fg' \(FusedGemm\): domain 'com.microsoft'")
    # a static 0 is an empty dim (tests/test_empty_tensors.py); a negative one is refused
    _errors(model([node("Relu", ["x"], ["y"])], [("x", F, [-1, 2])], ["y"]), r"input 'x' dim 0 is -1; dims must be >= 0")


def test_shape_errors_carry_the_node() -> None:
    _errors(model([node("MatMul", ["x", "k"], ["y"], name="mm")], [("x", F, ["n", 3])], ["y"], {"k": w(4, 2)}),
            r"node 'mm' \(MatMul\):")


def test_hostile_files(tmp_path: Any) -> None:
    good = _gemm().SerializeToString()
    for i, data in enumerate([good[: len(good) // 2], b"\x00\x01garbage" * 10, b""]):
        p = tmp_path / f"bad{i}.onnx"
        p.write_bytes(data)
        with pytest.raises(rx.OnnxImportError, match=str(p)):
            rx.from_onnx(str(p))
    with pytest.raises(rx.OnnxImportError, match="no such file"):
        rx.from_onnx(str(tmp_path / "missing.onnx"))
    # an initializer whose dims promise far more data than it has
    m = _gemm()
    t = m.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([10**6, 10**6])
    _errors(m, r"initializer 'w'")
    # external data that is not there
    m = _gemm()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="weights.bin")
    p = tmp_path / "ext.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(rx.OnnxImportError, match="ext.onnx|weights.bin"):
        rx.from_onnx(str(p))
    _errors(m, r"initializer 'w' keeps its data in an external file")
    with pytest.raises(rx.OnnxImportError, match="takes a path"):
        rx.from_onnx(42)


@pytest.mark.parametrize("target", ["c", "interp"])
def test_integer_div_truncates_toward_zero(target: str) -> None:
    """ONNX's integer Div truncates; relax's divide floors: with operands of
    either sign known only at run time the importer must still truncate
    (it once floored them: a silent wrong answer). x / 0 is 0 here (ONNX
    leaves it undefined; onnxruntime raises), so the divisor avoids 0."""
    m = model([node("Div", ["a", "b"], ["y"])], [("a", TensorProto.INT32, ["n"]), ("b", TensorProto.INT32, ["n"])],
              ["y"])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    exe = rx.compile(rx.from_onnx(m), target=target)
    a = np.array([7, -7, 7, -7, 0, -2**31, 5, -1], np.int32)
    b = np.array([2, 2, -2, -2, 3, 1, 7, 3], np.int32)
    want = sess.run(None, {"a": a, "b": b})[0]
    np.testing.assert_array_equal(want, np.trunc(a / b).astype(np.int32))
    np.testing.assert_array_equal(exe.main(a, b), want)
    np.testing.assert_array_equal(rx.evaluate(rx.from_onnx(m), "main", a, b), want)
