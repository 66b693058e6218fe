"""Dense layers side by side: onnxruntime (2 threads) against relax_xdsl's
default pipeline with the layer offloaded on each GEMM route
(`offload{lib=blas gemm=...}`): `packed` (weights packed when compiling,
BLAS's packed dense kernels), `dnnl` (oneDNN's matmul), `blas` (OpenBLAS's
SGEMM, which packs the weights on every call) and `auto` (the pipeline's
own choice).

    python benchmarks/dense_layers.py
    python benchmarks/dense_layers.py --layers 0 3 --routes packed dnnl

Each layer is one ONNX MatMul by a constant + Add of a bias row (+ Relu for
the MLP's), imported with from_onnx (weights as constants); results are
checked against onnxruntime before timing; medians of interleaved rounds
(benchmarks/run.py), with the GFLOP/s of each and its ratio to
onnxruntime. The shapes are the dense layers of the benchmark models: the
MLP (784 -> 256), the transformer block (d 256, ff 1024), BERT / GPT-2 /
ViT (768, 3072), at their batch-1 and batch-8 row counts and a decode step.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")  # oneDNN (GNU OpenMP) and generated code: 2 threads, as onnxruntime

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
from conv_layers import checked_medians, ort_run  # noqa: E402  (a sibling script)

LAYERS: list[dict[str, Any]] = [
    {"name": "mlp 784->256 relu, 1 row", "m": 1, "k": 784, "n": 256, "relu": True},
    {"name": "mlp 784->256 relu, 64 rows", "m": 64, "k": 784, "n": 256, "relu": True},
    {"name": "mlp 784->256 relu, 512 rows", "m": 512, "k": 784, "n": 256, "relu": True},
    {"name": "d256 -> 1024, 16 rows", "m": 16, "k": 256, "n": 1024},
    {"name": "d256 -> 1024, 1024 rows", "m": 1024, "k": 256, "n": 1024},
    {"name": "1024 -> d256, 1024 rows", "m": 1024, "k": 1024, "n": 256},
    {"name": "768 -> 768, 1 row (decode)", "m": 1, "k": 768, "n": 768},
    {"name": "768 -> 768, 128 rows", "m": 128, "k": 768, "n": 768},
    {"name": "768 -> 3072, 128 rows", "m": 128, "k": 768, "n": 3072},
    {"name": "3072 -> 768, 1024 rows", "m": 1024, "k": 3072, "n": 768},
]
ROUTES = ("packed", "dnnl", "blas", "auto")


def dense_model(layer: dict[str, Any]) -> Any:
    """x [m, k] @ W [k, n] + b [n] (+ Relu) as an ONNX model, random weights as initializers."""
    from onnx import TensorProto, helper, numpy_helper

    k, n = layer["k"], layer["n"]
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])]
    if layer.get("relu"):
        nodes.append(helper.make_node("Relu", ["y"], ["z"]))
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def pipeline(gemm: str) -> str:
    """The default pipeline with dense layers routed to `gemm` (ROUTES)."""
    default = PIPELINES["default"]
    if "offload{lib=blas}" not in default.split(","):
        raise SystemExit("the default pipeline no longer runs offload{lib=blas}: update dense_layers.py")
    return default.replace("offload{lib=blas}", f"offload{{lib=blas gemm={gemm}}}", 1)


def bench(model: Any, x: np.ndarray, routes: list[str], repeat: int, budget: float) -> dict[str, float]:
    fns: dict[str, Callable[[np.ndarray], Any]] = {"onnxruntime": ort_run(model)}
    module = from_onnx(model)
    for route in routes:
        fns[route] = rx.compile(module, target="c", pipeline=pipeline(route)).main
    return checked_medians(fns, x, repeat, budget)


def main(argv: list[str] | None = None) -> int:
    from relax_xdsl.passes.offload import auto_dense_library

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per timing at most (after 3 rounds)")
    ap.add_argument("--routes", nargs="*", default=list(ROUTES), choices=ROUTES)
    ap.add_argument("--layers", nargs="*", type=int, help="indexes into LAYERS (default: all)")
    args = ap.parse_args(argv)
    print(f"threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, onnxruntime intra-op 2; medians; "
          f"`auto` is {auto_dense_library()} on this machine")
    for i, layer in enumerate(LAYERS):
        if args.layers and i not in args.layers:
            continue
        x = np.random.default_rng(1).standard_normal((layer["m"], layer["k"])).astype(np.float32)
        times = bench(dense_model(layer), x, args.routes, args.repeat, args.budget)
        flops = 2.0 * layer["m"] * layer["k"] * layer["n"]
        ort = times["onnxruntime"]
        cells = "  ".join(f"{k}: {v * 1e3:7.3f} ms {flops / v / 1e9:5.0f} GF/s ({v / ort:4.2f}x)"
                          for k, v in times.items())
        print(f"{layer['name']:30s} {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
