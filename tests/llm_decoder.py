"""A Llama-style decoder with a KV cache, built with onnx.helper the way
torch.onnx exports one, for the end-to-end tests and the decode benchmark.

Why hand-built: torch is not a dependency, yet the point is to compile the
graphs exporters really produce, so every size here comes from a `Shape`
the way traced code computes it (past length from the cache, reshape targets
from `Shape(x)`, the causal mask from `Range` / `LessOrEqual` / `Where` and
from `Trilu` with a data-dependent diagonal, position ids from a `CumSum` of
ones), rather than from constants a hand-written graph would use.

Inputs: `input_ids [batch, seq] int64`, then `past_key_values.{i}.key` /
`.value [batch, heads, past, head_dim]` per layer. Outputs: `logits
[batch, seq, vocab]`, then `present.{i}.key` / `.value [batch, heads,
past + seq, head_dim]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DecoderConfig:
    vocab: int = 64
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    ffn: int = 64
    seed: int = 0
    eps: float = 1e-5
    rope_base: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


TINY = DecoderConfig()
BENCH = DecoderConfig(vocab=1000, d_model=256, heads=8, layers=4, ffn=1024)


class _Graph:
    """Node and initializer lists with fresh names, so each helper reads as
    the torch code it stands for."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: dict[str, np.ndarray] = {}
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, dtype: Any, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.inits[name] = np.asarray(value, dtype=dtype)
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, out: str | None = None,
           **attrs: Any) -> str:
        from onnx import helper

        name = out or self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=f"/{name}/{op_type}", **attrs))
        return name

    def dim(self, x: str, axis: int) -> str:
        """`x.shape[axis]` as a 0-d int64, as tracing emits it."""
        return self.op("Gather", [self.op("Shape", [x]), self.const(axis, np.int64, "axis")], "dim", axis=0)

    def unsq(self, x: str, axes: list[int]) -> str:
        return self.op("Unsqueeze", [x, self.const(axes, np.int64, "axes")])


def _rms_norm(g: _Graph, x: str, weight: np.ndarray, eps: float) -> str:
    """torch's `x / sqrt(mean(x**2) + eps) * w`, decomposed as exporters do."""
    sq = g.op("Pow", [x, g.const(2.0, np.float32)])
    mean = g.op("ReduceMean", [sq], axes=[-1], keepdims=1)
    root = g.op("Sqrt", [g.op("Add", [mean, g.const(eps, np.float32, "eps")])])
    return g.op("Mul", [g.op("Div", [x, root]), g.const(weight, np.float32, "norm_w")])


def _rotate(g: _Graph, x: str, cos: str, sin: str, half: int) -> str:
    """Rotary embedding: `x * cos + rotate_half(x) * sin`."""
    zero, mid, end = (g.const([v], np.int64) for v in (0, half, 2 * half))
    ax = g.const([3], np.int64)
    x1 = g.op("Slice", [x, zero, mid, ax])
    x2 = g.op("Slice", [x, mid, end, ax])
    rot = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
    return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rot, sin])])


def _heads(g: _Graph, x: str, batch: str, seq: str, cfg: DecoderConfig) -> str:
    """`x.view(b, t, h, d).transpose(1, 2)` with b and t from Shape."""
    shape = g.op("Concat", [g.unsq(batch, [0]), g.unsq(seq, [0]), g.const([cfg.heads], np.int64),
                            g.const([cfg.head_dim], np.int64)], axis=0)
    return g.op("Transpose", [g.op("Reshape", [x, shape])], perm=[0, 2, 1, 3])


def build_decoder(cfg: DecoderConfig = TINY) -> Any:
    """The decoder as an onnx.ModelProto (opset 17), random weights from cfg.seed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(cfg.seed)

    def w(*shape: int, scale: float | None = None) -> np.ndarray:
        s = scale if scale is not None else 1.0 / np.sqrt(shape[0])
        return (rng.standard_normal(shape) * s).astype(np.float32)

    def norm_w() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(cfg.d_model)).astype(np.float32)

    g = _Graph()
    d, hd, half = cfg.d_model, cfg.head_dim, cfg.head_dim // 2
    batch, seq = g.dim("input_ids", 0), g.dim("input_ids", 1)
    past = g.dim("past_key_values.0.key", 2)
    total = g.op("Add", [past, seq], "total")

    # Position ids: the Range torch.arange(past, past + seq) emits, and the
    # CumSum of an all-ones attention mask minus one plus past (HF's
    # `attention_mask.cumsum(-1) - 1`, sliced to the new tokens): equal.
    one = g.const(1, np.int64, "one")
    positions = g.op("Range", [past, total, one], "positions")
    ones = g.op("ConstantOfShape", [g.op("Shape", ["input_ids"])], "ones",
                value=numpy_helper.from_array(np.array([1], np.int64)))
    pos_ids = g.op("Add", [g.op("Sub", [g.op("CumSum", [ones, g.const(1, np.int64)]), one]), past], "position_ids")

    # Rotary tables: freqs = position_ids[..., None] * inv_freq -> [b, 1, t, hd].
    inv_freq = (1.0 / cfg.rope_base ** (np.arange(0, hd, 2, dtype=np.float64) / hd)).astype(np.float32)
    freqs = g.op("Mul", [g.unsq(g.op("Cast", [pos_ids], to=TensorProto.FLOAT), [2]), g.const(inv_freq, np.float32)])
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    cos, sin = (g.unsq(g.op(f, [emb]), [1]) for f in ("Cos", "Sin"))

    # Causal mask [t, past + t]: key j is visible from query i when
    # j <= positions[i] (Range / LessOrEqual / Where), and torch's
    # `full(-inf).triu(past + 1)` (Trilu with a diagonal from the cache): the same mask twice.
    cols = g.op("Range", [g.const(0, np.int64), total, one], "cols")
    allowed = g.op("LessOrEqual", [g.unsq(cols, [0]), g.unsq(positions, [1])])
    ninf, fzero = g.const(-np.inf, np.float32, "ninf"), g.const(0.0, np.float32, "fzero")
    mask_where = g.op("Where", [allowed, fzero, ninf], "mask_where")
    grid = g.op("Concat", [g.unsq(seq, [0]), g.unsq(total, [0])], axis=0)
    full = g.op("ConstantOfShape", [grid], value=numpy_helper.from_array(np.array([-np.inf], np.float32)))
    mask_triu = g.op("Trilu", [full, g.op("Add", [past, one])], upper=1)
    mask = g.op("Add", [mask_where, mask_triu], "causal_mask")

    h = g.op("Gather", [g.const(w(cfg.vocab, d, scale=1.0), np.float32, "embed"), "input_ids"], "embeds", axis=0)
    scale = g.const(np.sqrt(hd), np.float32, "sqrt_d")
    outputs: list[str] = []
    for i in range(cfg.layers):
        x = _rms_norm(g, h, norm_w(), cfg.eps)
        q, k, v = (_heads(g, g.op("MatMul", [x, g.const(w(d, d), np.float32, f"w{n}")]), batch, seq, cfg)
                   for n in "qkv")
        q, k = _rotate(g, q, cos, sin, half), _rotate(g, k, cos, sin, half)
        k_all = g.op("Concat", [f"past_key_values.{i}.key", k], out=f"present.{i}.key", axis=2)
        v_all = g.op("Concat", [f"past_key_values.{i}.value", v], out=f"present.{i}.value", axis=2)
        outputs += [k_all, v_all]
        scores = g.op("MatMul", [q, g.op("Transpose", [k_all], perm=[0, 1, 3, 2])])
        probs = g.op("Softmax", [g.op("Add", [g.op("Div", [scores, scale]), mask])], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v_all])], perm=[0, 2, 1, 3])
        flat = g.op("Reshape", [ctx, g.op("Concat", [g.unsq(batch, [0]), g.unsq(seq, [0]),
                                                      g.const([d], np.int64)], axis=0)])
        h = g.op("Add", [h, g.op("MatMul", [flat, g.const(w(d, d), np.float32, "wo")])], "resid")
        x = _rms_norm(g, h, norm_w(), cfg.eps)
        up = g.op("Add", [g.op("MatMul", [x, g.const(w(d, cfg.ffn), np.float32, "w_up")]),
                          g.const(0.1 * rng.standard_normal(cfg.ffn), np.float32, "b_up")])
        erf = g.op("Erf", [g.op("Div", [up, g.const(np.sqrt(2.0), np.float32)])])
        gelu = g.op("Mul", [g.op("Mul", [up, g.op("Add", [erf, g.const(1.0, np.float32)])]),
                            g.const(0.5, np.float32)])
        h = g.op("Add", [h, g.op("MatMul", [gelu, g.const(w(cfg.ffn, d), np.float32, "w_down")])], "resid")
    x = _rms_norm(g, h, norm_w(), cfg.eps)
    g.op("MatMul", [x, g.const(w(d, cfg.vocab), np.float32, "lm_head")], out="logits")

    f32 = TensorProto.FLOAT
    cache = ["batch", cfg.heads, "past_sequence_length", hd]
    present = ["batch", cfg.heads, "total_sequence_length", hd]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence_length"])]
    outs = [helper.make_tensor_value_info("logits", f32, ["batch", "sequence_length", cfg.vocab])]
    for i in range(cfg.layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", f32, cache))
            outs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", f32, present))
    inits = [numpy_helper.from_array(v, k) for k, v in g.inits.items()]
    graph = helper.make_graph(g.nodes, "llm_decoder", inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def empty_cache(cfg: DecoderConfig, batch: int) -> list[np.ndarray]:
    """past_key_values with past = 0: what prefill starts from."""
    return [np.zeros((batch, cfg.heads, 0, cfg.head_dim), np.float32) for _ in range(2 * cfg.layers)]


def random_cache(cfg: DecoderConfig, batch: int, past: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, cfg.heads, past, cfg.head_dim)).astype(np.float32)
            for _ in range(2 * cfg.layers)]


def greedy(step: Any, prompt: np.ndarray, cfg: DecoderConfig, new_tokens: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Prefill `prompt` from an empty cache, then `new_tokens - 1` decode steps
    feeding the present K/V back. `step(input_ids, cache) -> (logits,
    *present)`. Returns the generated tokens [batch, new_tokens] and each
    step's last-position logits."""
    cache = empty_cache(cfg, prompt.shape[0])
    ids = prompt
    tokens, logits_seen = [], []
    for _ in range(new_tokens):
        logits, *cache = step(ids, cache)
        last = np.asarray(logits)[:, -1, :]
        logits_seen.append(last)
        ids = np.argmax(last, axis=-1).astype(np.int64)[:, None]
        tokens.append(ids[:, 0])
    return np.stack(tokens, axis=1), logits_seen
