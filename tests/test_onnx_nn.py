"""ONNX normalization, convolution and pooling beyond 2-d: small models built
with onnx.helper, imported, compiled for C (and the interpreter for a few)
and compared with onnxruntime; symbolic (dim_param) batch dims bound to
several sizes including 1."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import relax_xdsl as rx
from relax_xdsl.frontend.onnx_import import OnnxImportError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

F = TensorProto.FLOAT


def model(op_type: str, inputs: list[tuple[str, list[Any]]], outputs: list[str], opset: int = 18,
          **attrs: Any) -> onnx.ModelProto:
    """One node; inputs (name, shape with str dims symbolic), float32 outputs of unknown shape."""
    node = helper.make_node(op_type, [n for n, _ in inputs], outputs, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                              [helper.make_tensor_value_info(o, F, None) for o in outputs])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def compare(m: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], target: str = "c", atol: float = 1e-4) -> None:
    exe = rx.compile(rx.from_onnx(m), target=target)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in feeds:
        want = sess.run(None, feed)
        got = exe["main"](*feed.values())
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=atol)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


BATCHES = (1, 3)


def test_instance_norm_symbolic_batch() -> None:
    m = model("InstanceNormalization", [("x", ["n", 3, 4, 5]), ("s", [3]), ("b", [3])], ["y"], epsilon=1e-3)
    compare(m, [{"x": rand(n, 3, 4, 5, seed=n), "s": rand(3, seed=7), "b": rand(3, seed=8)} for n in BATCHES])


@pytest.mark.parametrize("opset", [18, 21])
def test_group_norm_both_forms(opset: int) -> None:
    groups = 2
    param = [groups] if opset == 18 else [4]
    m = model("GroupNormalization", [("x", ["n", 4, 3, 2]), ("s", param), ("b", param)], ["y"], opset=opset,
              num_groups=groups, epsilon=1e-4)
    compare(m, [{"x": rand(n, 4, 3, 2, seed=n), "s": rand(*param, seed=7), "b": rand(*param, seed=8)}
                for n in BATCHES])


def test_mvn_lp_norm_lrn_interp() -> None:
    for m, shape in ((model("MeanVarianceNormalization", [("x", ["n", 3, 4])], ["y"], axes=[0, 2]), (3, 4)),
                     (model("LpNormalization", [("x", ["n", 3, 4])], ["y"], axis=1, p=2), (3, 4)),
                     (model("LpNormalization", [("x", ["n", 3, 4])], ["y"], axis=-1, p=1), (3, 4)),
                     (model("LRN", [("x", ["n", 5, 2, 3])], ["y"], size=3, alpha=0.01, beta=0.6, bias=1.5),
                      (5, 2, 3))):
        compare(m, [{"x": rand(n, *shape, seed=n)} for n in BATCHES], target="interp")


def test_lp_norm_of_zeros_is_zero() -> None:
    m = model("LpNormalization", [("x", [2, 3])], ["y"], axis=1, p=2)
    x = np.array([[0, 0, 0], [3, 4, 0]], np.float32)
    got = rx.compile(rx.from_onnx(m), target="interp")["main"](x)
    np.testing.assert_allclose(got, [[0, 0, 0], [0.6, 0.8, 0]], rtol=1e-6)


def test_lrn_c() -> None:
    m = model("LRN", [("x", ["n", 6, 3, 3])], ["y"], size=5)
    compare(m, [{"x": rand(n, 6, 3, 3, seed=n)} for n in BATCHES])


def test_rms_norm_opset23() -> None:
    m = model("RMSNormalization", [("x", ["n", 3, 4]), ("s", [4])], ["y"], opset=23, axis=-1, epsilon=1e-3)
    x, s = [rand(n, 3, 4, seed=n) for n in BATCHES], rand(4, seed=5)
    exe = rx.compile(rx.from_onnx(m), target="c")
    for xi in x:
        ms = np.mean(xi * xi, axis=-1, keepdims=True)
        np.testing.assert_allclose(exe["main"](xi, s), xi / np.sqrt(ms + 1e-3) * s, rtol=1e-4, atol=1e-5)


def test_layer_norm_mean_and_inv_std_dev() -> None:
    m = model("LayerNormalization", [("x", ["n", 3, 4]), ("s", [3, 4]), ("b", [3, 4])], ["y", "mean", "isd"],
              opset=17, axis=1, epsilon=1e-3)
    compare(m, [{"x": rand(n, 3, 4, seed=n), "s": rand(3, 4, seed=5), "b": rand(3, 4, seed=6)} for n in BATCHES])


def test_batch_norm_training_mode() -> None:
    ins = [("x", ["n", 3, 2, 2]), ("s", [3]), ("b", [3]), ("m", [3]), ("v", [3])]
    m = model("BatchNormalization", ins, ["y", "rm", "rv"], opset=15, training_mode=1, momentum=0.8)
    params = {"s": rand(3, seed=5), "b": rand(3, seed=6), "m": rand(3, seed=7), "v": np.abs(rand(3, seed=8))}
    # onnxruntime's CPU kernel has no training mode: the ONNX definition, written out
    exe = rx.compile(rx.from_onnx(m), target="c")
    for n in (2, 3):
        x = rand(n, 3, 2, 2, seed=n)
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        c = (1, 3, 1, 1)
        y = (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + 1e-5) * params["s"].reshape(c) + params["b"].reshape(c)
        got = exe["main"](x, *params.values())
        for g, w in zip(got, (y, params["m"] * 0.8 + mean * 0.2, params["v"] * 0.8 + var * 0.2)):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_conv3d_with_bias_dilation_auto_pad() -> None:
    feeds = [{"x": rand(n, 2, 5, 4, 4, seed=n), "w": rand(4, 1, 3, 2, 2, seed=5), "b": rand(4, seed=6)}
             for n in BATCHES]
    ins = [("x", ["n", 2, 5, 4, 4]), ("w", [4, 1, 3, 2, 2]), ("b", [4])]
    compare(model("Conv", ins, ["y"], group=2, dilations=[1, 2, 1], pads=[1, 0, 1, 1, 1, 0]), feeds)
    # onnxruntime takes no dilation with auto_pad
    compare(model("Conv", ins, ["y"], group=2, strides=[2, 1, 2], auto_pad="SAME_UPPER"), feeds)


@pytest.mark.parametrize(("op_type", "attrs"), [
    ("MaxPool", dict(kernel_shape=[2, 3, 2], strides=[2, 1, 1], pads=[1, 0, 1, 0, 1, 0], dilations=[1, 1, 2])),
    ("AveragePool", dict(kernel_shape=[3, 2, 2], strides=[2, 2, 1], auto_pad="SAME_LOWER")),
    ("AveragePool", dict(kernel_shape=[2, 2, 2], pads=[1, 1, 1, 0, 0, 0], count_include_pad=1, ceil_mode=1,
                         strides=[2, 2, 2])),
    ("LpPool", dict(kernel_shape=[2, 2, 2], pads=[0, 1, 0, 1, 0, 0], p=3)),
])
def test_pools_3d(op_type: str, attrs: dict[str, Any]) -> None:
    m = model(op_type, [("x", ["n", 2, 5, 4, 4])], ["y"], **attrs)
    compare(m, [{"x": rand(n, 2, 5, 4, 4, seed=n)} for n in BATCHES])


def test_lp_pool_2d_and_global_lp_pool() -> None:
    m = model("LpPool", [("x", ["n", 2, 5, 4])], ["y"], kernel_shape=[2, 2], strides=[2, 1], p=2)
    compare(m, [{"x": rand(n, 2, 5, 4, seed=n)} for n in BATCHES])
    g = model("GlobalLpPool", [("x", ["n", 2, 5, 4])], ["y"], p=3)
    compare(g, [{"x": rand(n, 2, 5, 4, seed=n)} for n in BATCHES], target="interp")


@pytest.mark.parametrize("attrs", [
    dict(strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 0], dilations=[1, 2], group=2),
    dict(strides=[2, 2], output_shape=[8, 9]),
    dict(strides=[2, 1], auto_pad="SAME_UPPER"),
    dict(strides=[3, 2], auto_pad="SAME_LOWER", group=2),
])
def test_conv_transpose_2d(attrs: dict[str, Any]) -> None:
    m = model("ConvTranspose", [("x", ["n", 4, 3, 4]), ("w", [4, 3, 3, 2]), ("b", [3 * attrs.get("group", 1)])],
              ["y"], **attrs)
    compare(m, [{"x": rand(n, 4, 3, 4, seed=n), "w": rand(4, 3, 3, 2, seed=5),
                 "b": rand(3 * attrs.get("group", 1), seed=6)} for n in BATCHES])


def test_conv_transpose_1d_and_3d() -> None:
    m1 = model("ConvTranspose", [("x", ["n", 2, 5]), ("w", [2, 3, 3])], ["y"], strides=[2])
    compare(m1, [{"x": rand(n, 2, 5, seed=n), "w": rand(2, 3, 3, seed=5)} for n in BATCHES])
    m3 = model("ConvTranspose", [("x", [1, 2, 2, 3, 2]), ("w", [2, 2, 2, 2, 2])], ["y"], strides=[1, 2, 2],
               pads=[0, 1, 0, 1, 0, 0])
    compare(m3, [{"x": rand(1, 2, 2, 3, 2), "w": rand(2, 2, 2, 2, 2, seed=5)}])


@pytest.mark.parametrize(("op_type", "inputs", "attrs", "message"), [
    ("GroupNormalization", [("x", [1, 4, 2]), ("s", [2]), ("b", [2])], dict(num_groups=3), "num_groups 3"),
    ("LpNormalization", [("x", [2, 3])], dict(p=3), "p=3 is not supported"),
    ("LayerNormalization", [("x", [2, 3]), ("s", [3])], dict(stash_type=0), "stash_type=0"),
    ("ConvTranspose", [("x", [1, 2, 3]), ("w", [2, 2, 3])], dict(auto_pad="BOGUS"), "auto_pad='BOGUS'"),
    ("LpPool", [("x", [1, 2, 3])], dict(kernel_shape=[2], p=-1), "p must be a positive number"),
])
def test_refusals_name_the_node(op_type: str, inputs: list[tuple[str, list[Any]]], attrs: dict[str, Any],
                                message: str) -> None:
    with pytest.raises(OnnxImportError, match=message):
        rx.from_onnx(model(op_type, inputs, ["y"], **attrs))


def test_max_pool_unsupported_storage_order_refused_clearly() -> None:
    m = model("MaxPool", [("x", [1, 1, 4, 4])], ["y", "i"], kernel_shape=[2, 2], storage_order=3)
    with pytest.raises(OnnxImportError, match=r"\(MaxPool\): attribute storage_order=3 is not supported"):
        rx.from_onnx(m)
