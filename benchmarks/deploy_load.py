"""Save / load of a compiled ResNet-18: the exported library's size, and the
time `relax_xdsl.load_module` takes in fresh processes (median), against
compiling the same model cold and from the compile cache.

    python benchmarks/deploy_load.py [--batch N] [--repeat K] [--pipeline P]

The model is torchvision's ResNet-18 layout (11.7 M parameters, random
weights, BatchNormalization after every conv as exporters emit it), built as
an ONNX graph with onnx.helper so no torch is needed, and imported with
relax_xdsl's ONNX frontend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def resnet18_onnx(seed: int = 0) -> object:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def weight(shape: tuple[int, ...], scale: float) -> str:
        n = name("w")
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype("float32"), n))
        return n

    def conv_bn(x: str, cin: int, cout: int, k: int, stride: int, relu: bool) -> str:
        y = name("conv")
        nodes.append(helper.make_node("Conv", [x, weight((cout, cin, k, k), (2.0 / (cin * k * k)) ** 0.5)], [y],
                                      kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
        z = name("bn")
        params = [weight((cout,), 0.1) for _ in range(2)]
        mean = weight((cout,), 0.1)
        var = name("var")
        inits.append(numpy_helper.from_array(np.ones(cout, "float32"), var))
        nodes.append(helper.make_node("BatchNormalization", [y, *params, mean, var], [z]))
        if not relu:
            return z
        r = name("relu")
        nodes.append(helper.make_node("Relu", [z], [r]))
        return r

    x = conv_bn("input", 3, 64, 7, 2, True)
    p = name("pool")
    nodes.append(helper.make_node("MaxPool", [x], [p], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = p, 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            h = conv_bn(x, cin, cout, 3, s, True)
            h = conv_bn(h, cout, cout, 3, 1, False)
            short = conv_bn(x, cin, cout, 1, s, False) if (s != 1 or cin != cout) else x
            a, r = name("add"), name("relu")
            nodes += [helper.make_node("Add", [h, short], [a]), helper.make_node("Relu", [a], [r])]
            x, cin = r, cout
    g, f = name("gap"), name("flat")
    nodes += [helper.make_node("GlobalAveragePool", [x], [g]), helper.make_node("Flatten", [g], [f])]
    nodes.append(helper.make_node("Gemm", [f, weight((1000, 512), 0.05), weight((1000,), 0.01)], ["logits"],
                                  transB=1))
    graph = helper.make_graph(nodes, "resnet18", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                ["batch", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


LOAD = """
import sys, time
t0 = time.perf_counter()
import numpy as np, relax_xdsl as rx
t1 = time.perf_counter()
exe = rx.load_module(sys.argv[1])
t2 = time.perf_counter()
out = exe.main(np.load(sys.argv[2]))
np.save(sys.argv[3], out)
print(t1 - t0, t2 - t1)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pipeline", default="default")
    args = ap.parse_args()
    import relax_xdsl as rx

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["RELAX_XDSL_CACHE_DIR"] = str(work / "cache")
        module = rx.from_onnx(resnet18_onnx())
        t = time.perf_counter()
        exe = rx.compile(module, target="c", pipeline=args.pipeline)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        rx.compile(module, target="c", pipeline=args.pipeline)
        cached = time.perf_counter() - t
        t = time.perf_counter()
        lib = rx.export_library(exe, work / "resnet18.so")
        export = time.perf_counter() - t
        x = np.random.default_rng(1).standard_normal((args.batch, 3, 224, 224)).astype("float32")
        np.save(work / "x.npy", x)
        want = exe.main(x)
        imports, loads = [], []
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, "-P", "-c", LOAD, str(lib), str(work / "x.npy"),
                                   str(work / "y.npy")], capture_output=True, text=True, check=True)
            a, b = (float(v) for v in proc.stdout.split())
            imports.append(a)
            loads.append(b)
            assert np.array_equal(np.load(work / "y.npy"), want), "the loaded library computes something else"
        print(f"resnet18 ({args.pipeline}, batch {args.batch}): library {lib.stat().st_size / 2**20:.1f} MiB "
              f"(weights {sum(g.nbytes for g in exe.backend.globals) / 2**20:.1f} MiB)")
        print(f"  compile cold {cold:.2f} s | compile cached {cached:.2f} s | export {export:.2f} s")
        print(f"  load_module in a fresh process: median {statistics.median(loads):.3f} s "
              f"(min {min(loads):.3f}) over {args.repeat}; `import relax_xdsl` before it: "
              f"median {statistics.median(imports):.2f} s; outputs equal to the compiled executable's")


if __name__ == "__main__":
    main()
