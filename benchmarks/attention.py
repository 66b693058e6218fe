"""Attention fusion, measured: the default pipeline (recognize-attention:
one rx_blas_attention call per attention) against the same pipeline without
that pass (the written-out form: oneDNN's batched matmuls around a
generated row-wise softmax), and onnxruntime (2 threads) where there is an
ONNX graph, in one run.

Rows: written-out attention built with the API on (batch, heads, seq, 64)
tensors over a sweep of sizes, and transformers' BERT, GPT-2, the
Llama-style decoder, ViT and torch's nn.MultiheadAttention exported by
torch.onnx (`--exporter`, dynamo by default; skipped with a message without
torch and transformers) at (batch, seq) (1, 128) and (8, 128). Medians of
interleaved rounds (benchmarks/run.py's interleaved_medians, which pauses
between contenders so no runtime's spinning threads fall on the next);
`fused / unfused` below 1 means the fusion is faster.

    python benchmarks/attention.py [--repeat 20] [--budget 2] [--models bert,gpt2] [--no-sweep]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exported_models  # noqa: E402  (a sibling script)
from onnx_models import ort_session  # noqa: E402
from relax_xdsl.passes.pipelines import PIPELINES  # noqa: E402
from run import interleaved_medians  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl import op  # noqa: E402

FUSED = PIPELINES["default"]
UNFUSED = FUSED.replace("recognize-attention,", "")
SWEEP = [(1, 12, 16), (8, 12, 16), (1, 4, 32), (1, 12, 128), (8, 4, 128), (8, 12, 128), (1, 12, 512), (1, 2, 2048)]
"""(batch, heads, seq) with head size 64, queries and keys of one length."""
MODELS = ("bert", "gpt2", "llama", "vit", "mha")


def written_out(heads: int, d: int = 64) -> Any:
    """softmax(q @ K^T / sqrt(d)) @ V as five ops, K given [b, seq, heads, d]."""
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", ["b", heads, "s", d], "float32")
        k = fb.param("k", ["b", "s", heads, d], "float32")
        v = fb.param("v", ["b", heads, "s", d], "float32")
        scores = op.divide(op.matmul(q, op.permute_dims(k, [0, 2, 3, 1])), np.float32(np.sqrt(d)))
        fb.ret(op.matmul(op.nn.softmax(scores, axis=-1), v))
    return fb.module


def calls(module: Any, pipeline: str) -> int:
    return rx.print_module(rx.lower(module, pipeline)).count("func.call @rx_blas_attention")


def compare(module: Any, feeds: list[tuple[str, list[np.ndarray]]], args: argparse.Namespace,
            sess: Any = None, names: list[str] | None = None) -> None:
    fused, unfused = rx.compile(module, pipeline=FUSED), rx.compile(module, pipeline=UNFUSED)
    print(f"  attention calls: fused {calls(module, FUSED)}, unfused {calls(module, UNFUSED)}", flush=True)
    for label, arrays in feeds:
        a, b = np.asarray(fused.main(*arrays)), np.asarray(unfused.main(*arrays))
        err = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
        fns = {"fused": lambda: fused.main(*arrays), "unfused": lambda: unfused.main(*arrays)}  # noqa: B023
        if sess is not None:
            feed = dict(zip(names or [], arrays))
            fns["ort"] = lambda: sess.run(None, feed)  # noqa: B023
        t = interleaved_medians(fns, args.repeat, args.budget)
        ort = f" | onnxruntime {t['ort'] * 1e3:8.3f} ms, fused/ort {t['fused'] / t['ort']:.2f}" if "ort" in t else ""
        print(f"  {label:>14}: fused {t['fused'] * 1e3:8.3f} ms | unfused {t['unfused'] * 1e3:8.3f} ms | "
              f"fused/unfused {t['fused'] / t['unfused']:.3f}{ort} | relative difference {err:.1e}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per contender and size")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--exporter", default="dynamo", choices=exported_models.EXPORTERS)
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    if not args.no_sweep:
        for heads in sorted({h for _, h, _ in SWEEP}):
            print(f"written-out attention, {heads} heads of 64", flush=True)
            feeds = [(f"({b}, {heads}, {s})", [rng.standard_normal(shape).astype(np.float32) for shape in
                                               ((b, heads, s, 64), (b, s, heads, 64), (b, heads, s, 64))])
                     for b, h, s in SWEEP if h == heads]
            compare(written_out(heads), feeds, args)
    why = exported_models.available()
    for name in [m for m in args.models.split(",") if m]:
        if why is not None:
            print(f"{name}: skipped ({why})")
            continue
        data = exported_models.export(name, args.exporter, "bench")
        spec = exported_models.MODELS[name]
        print(f"{name} ({args.exporter})", flush=True)
        feeds = [(f"({b}, {s})", list(spec.inputs("bench", b, s).values())) for b, s in ((1, 128), (8, 128))]
        compare(rx.from_onnx(data), feeds, args, ort_session(data), spec.input_names())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
