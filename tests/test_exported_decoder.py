"""Issue 16's proof on real exports: transformers decoders (Llama with
grouped-query attention, GPT-2) exported by both torch.onnx exporters with
an explicit KV cache (benchmarks/exported_models.py `export_decoder`:
dynamic batch, sequence and past length). Each imports once, compiles once
(`c`, default pipeline), and that one executable runs greedy generation:
a 5-token prefill from an empty cache ([b, kv_heads, 0, d]), then 6 decode
steps feeding the present keys and values back, at batch 1 and batch 2 (the
second row left-padded through the attention mask). Tokens match
onnxruntime token for token, every output within a relative error of 1e-4.

Skipped where torch and transformers are not installed (`pip install
".[models]"`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import exported_models as em  # noqa: E402

ort = pytest.importorskip("onnxruntime")

import relax_xdsl as rx  # noqa: E402

PROMPTS = np.array([[3, 17, 42, 8, 61], [9, 0, 33, 33, 12]], np.int64)
DECODE_STEPS = 6
PADDING = 2
"""Leading prompt positions of the last row masked out at batch 2."""

Step = Callable[[list[np.ndarray]], list[np.ndarray]]


def _generate(step: Step, spec: em.DecoderSpec, batch: int) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Greedy generation with `step(feeds) -> outputs`: the tokens [batch, 1 + DECODE_STEPS] and every step's outputs."""
    ids, cache = PROMPTS[:batch], spec.cache(batch, 0)
    tokens, seen = [], []
    for _ in range(1 + DECODE_STEPS):
        mask = np.ones((batch, cache[0].shape[2] + ids.shape[1]), np.int64)
        if batch > 1:
            mask[-1, :PADDING] = 0
        out = [np.asarray(o) for o in step([ids, mask, *cache])]
        seen.append(out)
        ids, cache = np.argmax(out[0][:, -1], axis=-1).astype(np.int64)[:, None], out[1:]
        tokens.append(ids[:, 0])
    return np.stack(tokens, axis=1), seen


def check_decoder(exporter: str, model: str) -> None:
    why = em.available()
    if why is not None:
        pytest.skip(why)
    data = em.export_decoder(exporter, "tiny", model)
    spec = em.decoder_spec("tiny", model)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(data)
    signature = rx.print_module(mod).splitlines()[1]
    for dim in ("batch", "seq", "past"):
        assert dim in signature, signature  # one executable for every size
    exe = rx.compile(mod, target="c")
    for batch in (1, 2):
        want_tokens, want = _generate(lambda feeds: sess.run(None, dict(zip(spec.input_names(), feeds))), spec, batch)
        got_tokens, got = _generate(lambda feeds: exe.main(*feeds), spec, batch)
        assert got_tokens.tolist() == want_tokens.tolist(), f"{model}/{exporter} at batch {batch}"
        assert len(set(want_tokens[0].tolist())) > 1  # generation that does not just repeat one token
        for i, (g, w) in enumerate(zip(got, want)):
            assert [a.shape for a in g] == [b.shape for b in w]
            err = max(em.relative_error(a, b) for a, b in zip(g, w))
            assert err <= 1e-4, f"{model}/{exporter} at batch {batch}, step {i}: relative error {err:.2e}"


def test_llama_torchscript() -> None:
    check_decoder("torchscript", "llama")


@pytest.mark.slow
def test_llama_dynamo() -> None:
    check_decoder("dynamo", "llama")


@pytest.mark.slow
@pytest.mark.parametrize("exporter", em.EXPORTERS)
def test_gpt2(exporter: str) -> None:
    check_decoder(exporter, "gpt2")
