"""Graph-level optimisation on exported CNNs: `fast` with and without
`fold-constants,fold-batch-norm,simplify-layout` prepended, against
onnxruntime (2 threads), batch 1, in one run.

Models: the onnx package's light zoo models (weights are ConstantOfShape
fills, so the graphs, not the numbers, are the real ones) and a ResNet-18
built with onnx.helper (benchmarks/deploy_load.py).

    python benchmarks/graph_opt.py [--repeat 20] [--models resnet18,light_resnet50,...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

PASSES = "fold-constants,fold-batch-norm,simplify-layout"
LIGHT = ("light_resnet50", "light_densenet121", "light_squeezenet", "light_shufflenet")


def load(name: str) -> Any:
    import onnx

    if name == "resnet18":
        from deploy_load import resnet18_onnx

        return resnet18_onnx()
    return onnx.load(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"{name}.onnx"))


def median_ms(fn: Any, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def input_of(model: Any) -> tuple[str, np.ndarray]:
    inits = {i.name for i in model.graph.initializer}
    x = next(i for i in model.graph.input if i.name not in inits)
    shape = [d.dim_value or 1 for d in x.type.tensor_type.shape.dim]
    return x.name, np.random.default_rng(0).standard_normal(shape).astype("float32")


def count(module: Any, name: str) -> int:
    import relax_xdsl as rx

    return rx.print_module(module).count(f"= relax.{name} ")


def run(name: str, repeat: int) -> dict[str, Any]:
    import onnxruntime as ort
    from relax_xdsl.passes.pipelines import run_pipeline

    import relax_xdsl as rx

    model = load(name)
    xname, x = input_of(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {xname: x})[0]
    row: dict[str, Any] = {"model": name, "ort_ms": median_ms(lambda: sess.run(None, {xname: x}), repeat)}
    t0 = time.perf_counter()
    module = rx.from_onnx(model)
    row["import_s"] = time.perf_counter() - t0
    opt = run_pipeline(module.clone(), PASSES)
    row["bn"] = f"{count(module, 'batch_norm')}->{count(opt, 'batch_norm')}"
    for label, spec in (("fast", "fast"), ("opt", f"{PASSES},fast")):
        t0 = time.perf_counter()
        exe = rx.compile(module, target="c", pipeline=spec)
        row[f"{label}_compile_s"] = time.perf_counter() - t0
        out = exe["main"](x)
        out = out[0] if isinstance(out, tuple) else out
        row[f"{label}_err"] = float(np.max(np.abs(out - ref)))
        row[f"{label}_ms"] = median_ms(lambda exe=exe: exe["main"](x), repeat)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--models", default=",".join(("resnet18", *LIGHT)))
    args = ap.parse_args()
    head = (f"{'model':18} {'bn ops':>8} {'ort ms':>8} {'fast ms':>8} {'+passes':>8} {'speedup':>8} "
            f"{'compile s fast/+passes':>23} {'max err fast/+passes':>22}")
    print(head)
    for name in args.models.split(","):
        r = run(name, args.repeat)
        print(f"{r['model']:18} {r['bn']:>8} {r['ort_ms']:8.2f} {r['fast_ms']:8.2f} {r['opt_ms']:8.2f} "
              f"{r['fast_ms'] / r['opt_ms']:7.2f}x {r['fast_compile_s']:11.1f}/{r['opt_compile_s']:<11.1f} "
              f"{r['fast_err']:10.2e}/{r['opt_err']:<10.2e}", flush=True)


if __name__ == "__main__":
    main()
