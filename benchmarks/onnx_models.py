"""The three benchmark models as ONNX graphs (same weights as
relax_xdsl.models), for onnxruntime. Needs the `onnx` package."""

from __future__ import annotations

from math import sqrt
from typing import Any

import numpy as np


def _graph(name: str, nodes: list[Any], inputs: list[Any], output_shape: list[Any], inits: dict[str, np.ndarray]) -> Any:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, output_shape)
    graph = helper.make_graph(nodes, name, inputs, [out], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def mlp(weights: dict[str, Any]) -> Any:
    from onnx import TensorProto, helper

    nodes, inits, cur = [], {}, "x"
    layers = weights["layers"]
    for i, (w, b) in enumerate(layers):
        inits[f"w{i}"], inits[f"b{i}"] = w, b
        nodes += [helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
        last = i == len(layers) - 1
        nodes.append(helper.make_node("Softmax" if last else "Relu", [f"a{i}"], ["out" if last else f"h{i}"],
                                      **({"axis": -1} if last else {})))
        cur = f"h{i}"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", layers[0][0].shape[0]])
    return _graph("mlp", nodes, [x], ["n", layers[-1][0].shape[1]], inits)


def cnn(weights: dict[str, Any]) -> Any:
    from onnx import TensorProto, helper

    w = weights
    inits = {k: w[k] for k in ("k1", "b1", "k2", "b2", "wd", "bd")}
    inits["shape"] = np.array([-1, w["feat"]], np.int64)
    nodes = []
    cur = "x"
    for s in ("1", "2"):
        nodes += [helper.make_node("Conv", [cur, f"k{s}", f"b{s}"], [f"c{s}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{s}"], [f"r{s}"]),
                  helper.make_node("MaxPool", [f"r{s}"], [f"p{s}"], kernel_shape=[2, 2], strides=[2, 2])]
        cur = f"p{s}"
    nodes += [helper.make_node("Reshape", [cur, "shape"], ["flat"]),
              helper.make_node("MatMul", ["flat", "wd"], ["md"]),
              helper.make_node("Add", ["md", "bd"], ["out"])]
    c0, image = w["channels"][0], w["image"]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c0, image, image])
    return _graph("cnn", nodes, [x], ["n", w["wd"].shape[1]], inits)


def transformer(weights: dict[str, Any]) -> Any:
    from onnx import TensorProto, helper

    w = weights
    d, heads = w["d"], w["heads"]
    dh = d // heads
    inits = {k: v for k, v in w.items() if isinstance(v, np.ndarray)}
    inits.update({"split_shape": np.array([0, 0, heads, dh], np.int64), "merge_shape": np.array([0, 0, d], np.int64),
                  "scale": np.array(1.0 / sqrt(dh), np.float32), "half": np.array(0.5, np.float32),
                  "one": np.array(1.0, np.float32), "rsqrt2": np.array(1.0 / sqrt(2.0), np.float32)})
    n = helper.make_node
    nodes = [n("LayerNormalization", ["x", "g1", "be1"], ["h"], axis=-1, epsilon=1e-5)]
    for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [n("MatMul", ["h", f"w{name}"], [f"{name}m"]), n("Add", [f"{name}m", f"b{name}"], [f"{name}a"]),
                  n("Reshape", [f"{name}a", "split_shape"], [f"{name}r"]),
                  n("Transpose", [f"{name}r"], [f"{name}t"], perm=perm)]
    nodes += [n("MatMul", ["qt", "kt"], ["s"]), n("Mul", ["s", "scale"], ["ss"]),
              n("Softmax", ["ss"], ["attn"], axis=-1), n("MatMul", ["attn", "vt"], ["ctx"]),
              n("Transpose", ["ctx"], ["ctxt"], perm=[0, 2, 1, 3]), n("Reshape", ["ctxt", "merge_shape"], ["ctxm"]),
              n("MatMul", ["ctxm", "wo"], ["om"]), n("Add", ["om", "bo"], ["oa"]), n("Add", ["x", "oa"], ["x1"]),
              n("LayerNormalization", ["x1", "g2", "be2"], ["h2"], axis=-1, epsilon=1e-5),
              n("MatMul", ["h2", "w1"], ["f1m"]), n("Add", ["f1m", "b1"], ["f1"]),
              n("Mul", ["f1", "rsqrt2"], ["f1s"]), n("Erf", ["f1s"], ["erf"]), n("Add", ["erf", "one"], ["erf1"]),
              n("Mul", ["f1", "erf1"], ["g0"]), n("Mul", ["g0", "half"], ["gelu"]),
              n("MatMul", ["gelu", "w2"], ["f2m"]), n("Add", ["f2m", "b2"], ["f2"]), n("Add", ["x1", "f2"], ["out"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", d])
    return _graph("transformer", nodes, [x], ["b", "t", d], inits)


BUILDERS = {"mlp": mlp, "cnn": cnn, "transformer": transformer}


def ort_session(data: bytes, threads: int = 2) -> Any:
    """An onnxruntime CPU session of a serialized model, `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def session(model_name: str, weights: dict[str, Any], threads: int = 2) -> Any:
    """An onnxruntime CPU session of the model (None without onnxruntime)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    return ort_session(BUILDERS[model_name](weights).SerializeToString(), threads)


def tvm_function(model_name: str, weights: dict[str, Any]) -> tuple[Any, float] | None:
    """Apache TVM Relax's untuned default build of the same ONNX graph
    (`tvm.relax.frontend.onnx.from_onnx`, `tvm.compile(target="llvm")`) as
    (run(x) -> numpy array, compile seconds); None without apache-tvm."""
    try:
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx
    except ImportError:
        return None
    import time

    proto = BUILDERS[model_name](weights)
    t0 = time.perf_counter()
    mod = from_onnx(proto)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    seconds = time.perf_counter() - t0
    main = vm["main"]

    def run(x: np.ndarray) -> np.ndarray:
        return main(tvm.runtime.tensor(x)).numpy()

    return run, seconds
