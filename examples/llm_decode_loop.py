"""A greedy decode loop with a growing KV cache, compiled once for every
cache length.

One decoder step (token embedding, a single attention layer, an output head):
`step(token: int64 [1], k_cache: [t, d], v_cache: [t, d]) -> (logits [1, vocab],
k_cache' [t + 1, d], v_cache' [t + 1, d])`. The cache length `t` is a symbol,
so one executable serves every step: the concatenated caches are `[t + 1, d]`
by the shape rules, and each call binds `t` from the arrays passed. Each
step is compared with the reference evaluator, and the generated tokens with
a plain numpy decoder.

    python examples/llm_decode_loop.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

import relax_xdsl as rx
from relax_xdsl import op

VOCAB, D, STEPS = 32, 16, 8


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype("float32")
            for name, shape in (("emb", (VOCAB, D)), ("wq", (D, D)), ("wk", (D, D)), ("wv", (D, D)), ("wo", (D, D)), ("head", (D, VOCAB)))}


def build_step(w: dict[str, np.ndarray]) -> Any:
    with rx.FunctionBuilder("step") as fb:
        token = fb.param("token", [1], "int64")
        k_cache = fb.param("k_cache", ["t", D], "float32")
        v_cache = fb.param("v_cache", ["t", D], "float32")
        emb = fb.const(w["emb"])
        x = op.take(emb, token, axis=0)                                    # [1, D]
        q = op.matmul(x, fb.const(w["wq"]))
        keys = op.concat([k_cache, op.matmul(x, fb.const(w["wk"]))], axis=0)    # [t + 1, D]
        values = op.concat([v_cache, op.matmul(x, fb.const(w["wv"]))], axis=0)
        scores = op.multiply(op.matmul(q, op.permute_dims(keys)), float(1 / np.sqrt(D)))   # [1, t + 1]
        attended = op.matmul(op.softmax(scores, axis=-1), values)            # [1, D]
        h = op.add(x, op.matmul(attended, fb.const(w["wo"])))
        logits = op.matmul(h, fb.const(w["head"]))                        # [1, VOCAB]
        fb.ret(logits, keys, values)
    return fb.module


def numpy_step(w: dict[str, np.ndarray], token: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    x = w["emb"][token]
    keys, values = np.concatenate([k, x @ w["wk"]]), np.concatenate([v, x @ w["wv"]])
    s = (x @ w["wq"]) @ keys.T / np.float32(np.sqrt(D))
    p = np.exp(s - s.max(-1, keepdims=True))
    h = x + (p / p.sum(-1, keepdims=True)) @ values @ w["wo"]
    return h @ w["head"], keys, values


def main() -> None:
    w = weights()
    module = build_step(w)
    print("step signature:", rx.print_module(module).split("relax.function @step")[1].split("{")[0].strip())
    exe = rx.compile(module, target="c", pipeline="default")
    empty = np.zeros((0, D), "float32")
    k, v, token = empty, empty, np.array([1], np.int64)
    nk, nv, ntoken = empty, empty, token
    tokens, reference_tokens = [], []
    for _ in range(STEPS):
        logits, k, v = exe.step(token, k, v)
        want = rx.evaluate(module, "step", token, k[:-1], v[:-1])
        for got, ref in zip((logits, k, v), want):
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
        token = np.array([int(np.argmax(logits))], np.int64)
        tokens.append(int(token[0]))
        nlogits, nk, nv = numpy_step(w, ntoken, nk, nv)
        ntoken = np.array([int(np.argmax(nlogits))], np.int64)
        reference_tokens.append(int(ntoken[0]))
    assert tokens == reference_tokens, (tokens, reference_tokens)
    print(f"{STEPS} steps, cache length 0 -> {k.shape[0]}: every step matches the reference evaluator; "
          f"tokens {tokens} match numpy")


if __name__ == "__main__":
    main()
