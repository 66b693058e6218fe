"""The proof: a Llama-style decoder with a KV cache, imported from ONNX as an
exporter writes it (tests/llm_decoder.py), compiled once, and run from that
one executable for a prefill from an empty cache ([b, h, 0, d]) and every
greedy decode step after it, matching onnxruntime token for token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from llm_decoder import TINY, build_decoder, empty_cache, greedy, random_cache

import relax_xdsl as rx
from relax_xdsl.backend import c as c_backend

ort = pytest.importorskip("onnxruntime")

TOL = {"rtol": 1e-4, "atol": 1e-4}
PROMPTS = np.array([[3, 17, 42, 8, 61], [9, 0, 33, 33, 12]], np.int64)


@pytest.fixture(scope="module")
def model() -> Any:
    return build_decoder(TINY)


@pytest.fixture(scope="module")
def module(model: Any) -> Any:
    return rx.from_onnx(model)


@pytest.fixture(scope="module")
def ort_step(model: Any) -> Callable[..., list[np.ndarray]]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts)
    names = [i.name for i in model.graph.input]
    return lambda ids, cache: sess.run(None, dict(zip(names, [ids, *cache])))


_EXES: dict[tuple[str, str], Any] = {}


def _exe(module: Any, target: str, pipeline: str) -> Any:
    """One compile per target and pipeline for the whole file."""
    if (target, pipeline) not in _EXES:
        _EXES[target, pipeline] = rx.compile(module, target=target, pipeline=pipeline)
    return _EXES[target, pipeline]


def _recording(step: Callable[..., Any], seen: list[list[np.ndarray]]) -> Callable[..., Any]:
    def run(ids: np.ndarray, cache: list[np.ndarray]) -> list[np.ndarray]:
        out = [np.asarray(o) for o in step(ids, cache)]
        seen.append(out)
        return out
    return run


def _generate_and_compare(module: Any, ort_step: Any, target: str, pipeline: str, batch: int,
                          new_tokens: int) -> None:
    exe = _exe(module, target, pipeline)
    prompt = PROMPTS[:batch]
    got_steps: list[list[np.ndarray]] = []
    want_steps: list[list[np.ndarray]] = []
    want, _ = greedy(_recording(ort_step, want_steps), prompt, TINY, new_tokens)
    got, _ = greedy(_recording(lambda ids, c: exe.main(ids, *c), got_steps), prompt, TINY, new_tokens)
    np.testing.assert_array_equal(got, want)
    assert len(got_steps) == len(want_steps) == new_tokens
    for i, (g, w) in enumerate(zip(got_steps, want_steps)):
        assert len(g) == len(w) == 1 + 2 * TINY.layers
        past = prompt.shape[1] + i - 1 if i else 0
        assert g[0].shape == (batch, 1 if i else prompt.shape[1], TINY.vocab)
        assert g[1].shape == (batch, TINY.heads, past + g[0].shape[1], TINY.head_dim)
        for a, b in zip(g, w):
            np.testing.assert_allclose(a, b, **TOL, err_msg=f"step {i}")


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("pipeline", ["baseline", "default"])
def test_greedy_decode_matches_onnxruntime_c(module: Any, ort_step: Any, pipeline: str, batch: int) -> None:
    _generate_and_compare(module, ort_step, "c", pipeline, batch, new_tokens=12)


@pytest.mark.slow
@pytest.mark.parametrize(("pipeline", "batch"), [("baseline", 1), ("default", 2)])
def test_greedy_decode_matches_onnxruntime_interp(module: Any, ort_step: Any, pipeline: str, batch: int) -> None:
    _generate_and_compare(module, ort_step, "interp", pipeline, batch, new_tokens=3)


@pytest.mark.parametrize("pipeline", ["baseline", "default"])
def test_decode_after_a_long_cache(module: Any, ort_step: Any, pipeline: str) -> None:
    """A step with a cache longer than any prompt above (and a 2-token chunk)."""
    exe = _exe(module, "c", pipeline)
    for batch, past, seq in ((2, 70, 1), (1, 33, 2)):
        cache = random_cache(TINY, batch, past, seed=past)
        ids = PROMPTS[:batch, :seq]
        for a, b in zip(exe.main(ids, *cache), ort_step(ids, cache)):
            np.testing.assert_allclose(a, b, **TOL)


def test_one_executable_for_every_length(module: Any, ort_step: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefill and decode at several batches, prompt and cache lengths run
    through one executable: lowered once, and no C is built after it."""
    lowered: list[str] = []
    built: list[str] = []
    real_lower, real_build = rx.runtime.lower, c_backend.build_library
    monkeypatch.setattr(rx.runtime, "lower", lambda m, p: lowered.append(p) or real_lower(m, p))
    monkeypatch.setattr(c_backend, "build_library", lambda s, f, u=None: built.append(s) or real_build(s, f, u))
    exe = rx.compile(module, target="c", pipeline="fast")
    assert lowered == ["fast"] and len(built) <= 1
    built.clear()
    for batch, prompt_len, steps in ((1, 1, 3), (2, 4, 2), (3, 9, 1)):
        ids = np.random.default_rng(prompt_len).integers(0, TINY.vocab, (batch, prompt_len)).astype(np.int64)
        cache = empty_cache(TINY, batch)
        for _ in range(steps + 1):
            got, want = exe.main(ids, *cache), ort_step(ids, cache)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, **TOL)
            cache = list(got[1:])
            ids = np.argmax(got[0][:, -1], axis=-1).astype(np.int64)[:, None]
    assert lowered == ["fast"] and built == []
    params = [str(t) for t in module.body.block.ops.first.function_type.inputs.data]
    assert "past_sequence_length" in params[1] and "sequence_length" in params[0]
