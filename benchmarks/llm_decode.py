"""Decoder latency: the KV-cache decoder of tests/llm_decoder.py (exported
the way torch.onnx writes one), imported once, compiled once (`default`, C) and
run from that one executable for every batch, prompt and cache length, side
by side with onnxruntime (2 threads) on the same graph and inputs.

    python benchmarks/llm_decode.py                       # 4 layers, d_model 256, 8 heads, vocab 1000
    python benchmarks/llm_decode.py --layers 2 --repeat 20
    python benchmarks/llm_decode.py --exported dynamo      # transformers' Llama as torch.onnx exports it

`--exported {torchscript,dynamo}` times a real export instead:
transformers' LlamaForCausalLM (4 layers, hidden 256, 8 heads, 4 kv heads,
vocab 1000, random weights) with an explicit KV cache
(benchmarks/exported_models.py `export_decoder`; needs torch and
transformers), at the same cases; `--model gpt2` for GPT-2.

Per case: the median time of one call (a decode step: one new token per
sequence on a cache of `past` tokens; prefill: the prompt on an empty cache),
and relax / onnxruntime (< 1 means faster than onnxruntime). Outputs are
checked against onnxruntime before timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import relax_xdsl as rx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from llm_decoder import BENCH, DecoderConfig, build_decoder, empty_cache, random_cache  # noqa: E402
from run import interleaved_medians  # noqa: E402  (a sibling script)

CASES = [("decode", 1, 128), ("decode", 1, 512), ("decode", 8, 512), ("prefill", 1, 256)]
"""(kind, batch, past) for decode steps; (kind, batch, prompt length) for prefill."""


def _inputs(cfg: DecoderConfig, kind: str, batch: int, length: int) -> list[np.ndarray]:
    rng = np.random.default_rng(length)
    if kind == "prefill":
        return [rng.integers(0, cfg.vocab, (batch, length)).astype(np.int64), *empty_cache(cfg, batch)]
    return [rng.integers(0, cfg.vocab, (batch, 1)).astype(np.int64), *random_cache(cfg, batch, length)]


def _exported_inputs(spec: Any, kind: str, batch: int, length: int) -> list[np.ndarray]:
    """The exported decoder's inputs: ids, an all-ones attention mask over cache and new tokens, the cache."""
    rng = np.random.default_rng(length)
    seq, past = (length, 0) if kind == "prefill" else (1, length)
    cache = spec.cache(batch, past) if kind == "prefill" else spec.cache(batch, past, seed=1)
    return [rng.integers(0, spec.vocab, (batch, seq)).astype(np.int64), np.ones((batch, past + seq), np.int64),
            *cache]


def _model(args: argparse.Namespace) -> tuple[Any, Callable[[str, int, int], list[np.ndarray]], str]:
    """The ONNX model to time, its inputs per case, and a line describing it."""
    if args.exported:
        import exported_models as em

        why = em.available()
        if why is not None:
            raise SystemExit(f"--exported {why}")
        spec = em.decoder_spec("bench", args.model)
        model = onnx.load_from_string(em.export_decoder(args.exported, "bench", args.model))
        what = (f"transformers {args.model} exported by torch.onnx ({args.exported}): {spec.layers} layers, "
                f"{spec.kv_heads} kv heads of {spec.head_dim}, vocab {spec.vocab}")
        return model, lambda kind, batch, length: _exported_inputs(spec, kind, batch, length), what
    cfg = DecoderConfig(vocab=args.vocab, d_model=args.d_model, heads=args.heads, layers=args.layers,
                        ffn=4 * args.d_model)
    what = f"decoder: {cfg.layers} layers, d_model {cfg.d_model}, {cfg.heads} heads, ffn {cfg.ffn}, vocab {cfg.vocab}"
    return build_decoder(cfg), lambda kind, batch, length: _inputs(cfg, kind, batch, length), what


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=BENCH.layers)
    ap.add_argument("--d-model", type=int, default=BENCH.d_model)
    ap.add_argument("--heads", type=int, default=BENCH.heads)
    ap.add_argument("--vocab", type=int, default=BENCH.vocab)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per contender and case")
    ap.add_argument("--pipeline", default="default")
    ap.add_argument("--exported", choices=("torchscript", "dynamo"),
                    help="time transformers' decoder as this torch.onnx exporter writes it (ignores the sizes above)")
    ap.add_argument("--model", choices=("llama", "gpt2"), default="llama", help="the exported model (--exported)")
    args = ap.parse_args()
    import onnxruntime as ort

    model, inputs, what = _model(args)
    t0 = time.perf_counter()
    exe = rx.compile(rx.from_onnx(model), target="c", pipeline=args.pipeline)
    compile_s = time.perf_counter() - t0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), opts)
    names = [i.name for i in model.graph.input]
    print(f"{what}; one executable ({args.pipeline}, c), compiled in {compile_s:.1f} s", file=sys.stderr)
    rows = []
    for kind, batch, length in CASES:
        feeds = inputs(kind, batch, length)
        ort_feeds = dict(zip(names, feeds))
        got, want = exe.main(*feeds), sess.run(None, ort_feeds)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
        t = interleaved_medians({"relax": lambda f=feeds: exe.main(*f), "ort": lambda f=ort_feeds: sess.run(None, f)},
                                args.repeat, args.budget)
        rows.append((kind, batch, length, t["relax"] * 1e3, t["ort"] * 1e3))
    print(f"{'case':<8} {'batch':>5} {'past/len':>8} {'relax ms':>10} {'ort ms':>10} {'relax/ort':>10}")
    for kind, batch, length, r, o in rows:
        print(f"{kind:<8} {batch:>5} {length:>8} {r:>10.3f} {o:>10.3f} {r / o:>10.2f}")


if __name__ == "__main__":
    main()
