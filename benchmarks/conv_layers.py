"""Convolution layers side by side: onnxruntime (2 threads) against
relax_xdsl's fast pipeline with conv2d offloaded to BLAS (im2col + GEMM,
`offload{lib=blas conv=blas}`; a kind BLAS cannot take is generated code)
and to oneDNN (`conv=dnnl`), and the pipeline's own choice (`conv=auto`).

    python benchmarks/conv_layers.py                 # the layer table
    python benchmarks/conv_layers.py --zoo           # + ShuffleNet and ResNet-50 (onnx's light zoo models)

Each layer is one ONNX Conv (with bias) + Relu on float32 inputs, imported
with from_onnx (weights as constants) so every contender runs the same
graph; results are checked against onnxruntime before timing; medians are
taken in interleaved rounds (benchmarks/run.py). Needs onnx, onnxruntime
and, for the oneDNN column, onednn-cpu-gomp + onednn-devel-cpu-gomp.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")  # oneDNN (GNU OpenMP) and generated code: 2 threads, as onnxruntime
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from relax_xdsl.passes.pipelines import PIPELINES  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.frontend.onnx_import import from_onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from run import interleaved_medians  # noqa: E402  (a sibling script)

LAYERS: list[dict[str, Any]] = [
    {"name": "64->64 3x3 56x56 b1", "n": 1, "c": 64, "o": 64, "hw": 56, "k": 3, "pad": 1},
    {"name": "64->64 3x3 56x56 b8", "n": 8, "c": 64, "o": 64, "hw": 56, "k": 3, "pad": 1},
    {"name": "3->64 7x7 s2 224x224 b1", "n": 1, "c": 3, "o": 64, "hw": 224, "k": 7, "pad": 3, "stride": 2},
    {"name": "depthwise 116 3x3 28x28 b1", "n": 1, "c": 116, "o": 116, "hw": 28, "k": 3, "pad": 1, "groups": 116},
    {"name": "grouped g4 128->128 3x3 28x28", "n": 1, "c": 128, "o": 128, "hw": 28, "k": 3, "pad": 1, "groups": 4},
    {"name": "dilated d2 64->64 3x3 56x56", "n": 1, "c": 64, "o": 64, "hw": 56, "k": 3, "pad": 2, "dilation": 2},
    {"name": "1x1 256->64 56x56 b1", "n": 1, "c": 256, "o": 64, "hw": 56, "k": 1, "pad": 0},
    {"name": "1x1 24->58 28x28 b1", "n": 1, "c": 24, "o": 58, "hw": 28, "k": 1, "pad": 0},
]


def conv_model(layer: dict[str, Any]) -> Any:
    """One Conv (+ bias) + Relu as an ONNX model, random weights as initializers."""
    from onnx import TensorProto, helper, numpy_helper

    n, c, o, hw, k = layer["n"], layer["c"], layer["o"], layer["hw"], layer["k"]
    g, s, d, p = layer.get("groups", 1), layer.get("stride", 1), layer.get("dilation", 1), layer["pad"]
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((o, c // g, k, k)) / np.sqrt(c // g * k * k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=g, strides=[s, s], dilations=[d, d], pads=[p] * 4,
                            kernel_shape=[k, k])
    relu = helper.make_node("Relu", ["y"], ["z"])
    graph = helper.make_graph([conv, relu], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                     [n, c, hw, hw])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def ort_run(model: Any, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def pipeline(conv: str) -> str:
    """The fast pipeline with conv2d routed to `conv` (auto | blas | dnnl)."""
    fast = PIPELINES["fast"]
    if "offload{lib=blas}" not in fast.split(","):
        raise SystemExit("the fast pipeline no longer runs offload{lib=blas}: update conv_layers.py")
    return fast.replace("offload{lib=blas}", f"offload{{lib=blas conv={conv}}}", 1)


def contenders(model: Any, routes: list[str]) -> dict[str, Callable[[np.ndarray], Any]]:
    out: dict[str, Callable[[np.ndarray], Any]] = {"onnxruntime": ort_run(model)}
    module = from_onnx(model)
    for route in routes:
        exe = rx.compile(module, target="c", pipeline=pipeline(route))
        calls = [k for k in ("rx_dnnl_conv2d_", "rx_blas_conv2d_") if k in exe.c_source]
        label = f"{route} ({'+'.join(k[3:7] for k in calls) or 'generated'})"
        out[label] = exe.main
    return out


def bench(model: Any, x: np.ndarray, routes: list[str], repeat: int, budget: float) -> dict[str, float]:
    return checked_medians(contenders(model, routes), x, repeat, budget)


def checked_medians(fns: dict[str, Callable[[np.ndarray], Any]], x: np.ndarray, repeat: int,
                    budget: float) -> dict[str, float]:
    """Each contender's result checked against onnxruntime's (fns["onnxruntime"]), then their interleaved medians."""
    want = fns["onnxruntime"](x)
    for label, fn in fns.items():
        got = np.asarray(fn(x))
        err = float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))
        if err > 1e-3:
            raise SystemExit(f"{label}: result differs from onnxruntime (relative error {err:.2e})")
    return interleaved_medians({k: (lambda f=f: f(x)) for k, f in fns.items()}, repeat, budget)


def table(rows: list[tuple[str, dict[str, float]]]) -> None:
    for name, times in rows:
        ort = times["onnxruntime"]
        cells = "  ".join(f"{k}: {v * 1e3:8.2f} ms ({v / ort:4.2f}x)" for k, v in times.items())
        print(f"{name:34s} {cells}", flush=True)


def zoo_model(name: str) -> Any:
    import onnx

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
    return onnx.load(str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per timing at most (after 3 rounds)")
    ap.add_argument("--routes", nargs="*", default=["blas", "dnnl", "auto"], choices=["blas", "dnnl", "auto"])
    ap.add_argument("--layers", nargs="*", type=int, help="indexes into LAYERS (default: all)")
    ap.add_argument("--zoo", action="store_true", help="also ShuffleNet and ResNet-50 (light zoo models)")
    ap.add_argument("--no-layers", action="store_true")
    args = ap.parse_args(argv)
    print(f"threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, onnxruntime intra-op 2; times are medians")
    rows = []
    if not args.no_layers:
        for i, layer in enumerate(LAYERS):
            if args.layers and i not in args.layers:
                continue
            x = np.random.default_rng(1).standard_normal((layer["n"], layer["c"], layer["hw"], layer["hw"]))
            rows.append((layer["name"], bench(conv_model(layer), x.astype(np.float32), args.routes, args.repeat,
                                              args.budget)))
            table(rows[-1:])
    if args.zoo:
        for name in ("shufflenet", "resnet50"):
            model = zoo_model(name)
            shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
            x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
            rows.append((name, bench(model, x, args.routes, max(5, args.repeat // 2), args.budget)))
            table(rows[-1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
