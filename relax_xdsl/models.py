"""The three reference models (tests, benchmarks and the demo use them).

Each builder returns a `Model`: the graph module (weights as constants,
dynamic dims as symbols), a numpy implementation written independently of
the op references (what the benchmarks compare against), and a function
making inputs for given symbol values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import sqrt
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from relax_xdsl import op
from relax_xdsl.builder import FunctionBuilder


@dataclass
class Model:
    name: str
    module: ModuleOp
    numpy_fn: Callable[..., np.ndarray]
    make_inputs: Callable[..., tuple[np.ndarray, ...]]
    symbols: tuple[str, ...]
    flops: Callable[..., float]
    """Multiply-adds x 2 of the model at given symbol values."""
    weights: dict[str, Any] = field(default_factory=dict)
    """The parameters and hyper-parameters (for building the same model elsewhere)."""


def _weight(rng: np.random.Generator, *shape: int) -> np.ndarray:
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_erf(x: np.ndarray) -> np.ndarray:
    """Vectorized erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): numpy
    has none, and a Python-level loop would make the numpy baseline unfair."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return (s * y).astype(x.dtype)


def mlp(seed: int = 0, sizes: tuple[int, ...] = (784, 256, 10)) -> Model:
    """Dense-relu-...-dense-softmax over a dynamic batch `n`."""
    rng = np.random.default_rng(seed)
    ws = [(_weight(rng, a, b), (rng.standard_normal(b) * 0.1).astype(np.float32)) for a, b in zip(sizes, sizes[1:])]
    with FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", sizes[0]], "float32")
        h = x
        for i, (w, b) in enumerate(ws):
            h = op.add(op.matmul(h, fb.const(w)), fb.const(b))
            h = op.nn.relu(h) if i < len(ws) - 1 else op.nn.softmax(h, axis=-1)
        fb.ret(h)

    def numpy_fn(x: np.ndarray) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(ws):
            h = h @ w + b
            h = np.maximum(h, 0) if i < len(ws) - 1 else _np_softmax(h)
        return h

    def make_inputs(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
        return (np.random.default_rng(seed).standard_normal((n, sizes[0])).astype(np.float32),)

    def flops(n: int) -> float:
        return float(sum(2 * n * a * b for a, b in zip(sizes, sizes[1:])))

    return Model("mlp", fb.module, numpy_fn, make_inputs, ("n",), flops, {"layers": ws})


def cnn(seed: int = 0, channels: tuple[int, int, int] = (3, 8, 16), image: int = 32, classes: int = 10) -> Model:
    """Two (conv3x3 pad 1 + relu + maxpool 2x2) stages, flatten, dense; batch `n`."""
    rng = np.random.default_rng(seed)
    c0, c1, c2 = channels
    k1, b1 = _weight(rng, c1, c0, 3, 3), (rng.standard_normal(c1) * 0.1).astype(np.float32)
    k2, b2 = _weight(rng, c2, c1, 3, 3), (rng.standard_normal(c2) * 0.1).astype(np.float32)
    feat = c2 * (image // 4) ** 2
    wd, bd = _weight(rng, feat, classes), (rng.standard_normal(classes) * 0.1).astype(np.float32)
    with FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", c0, image, image], "float32")
        h = x
        for k, b in ((k1, b1), (k2, b2)):
            h = op.nn.conv2d(h, fb.const(k), padding=(1, 1))
            h = op.nn.relu(op.add(h, fb.const(b.reshape(1, -1, 1, 1))))
            h = op.nn.max_pool2d(h, pool_size=(2, 2), strides=(2, 2))
        h = op.reshape(h, [-1, feat])
        fb.ret(op.add(op.matmul(h, fb.const(wd)), fb.const(bd)))

    def conv(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
        n, c, hh, ww = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.stack([xp[:, :, i:i + hh, j:j + ww] for i in range(3) for j in range(3)], axis=2)  # n c 9 h w
        out = np.einsum("ncshw,ocs->nohw", cols, k.reshape(k.shape[0], c, 9), optimize=True)
        return out + b.reshape(1, -1, 1, 1)

    def pool(x: np.ndarray) -> np.ndarray:
        n, c, hh, ww = x.shape
        return x[:, :, : hh // 2 * 2, : ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))

    def numpy_fn(x: np.ndarray) -> np.ndarray:
        h = pool(np.maximum(conv(x, k1, b1), 0))
        h = pool(np.maximum(conv(h, k2, b2), 0))
        return (h.reshape(h.shape[0], -1) @ wd + bd).astype(np.float32)

    def make_inputs(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
        return (np.random.default_rng(seed).standard_normal((n, c0, image, image)).astype(np.float32),)

    def flops(n: int) -> float:
        s1, s2 = image * image, (image // 2) ** 2
        return float(2 * n * (c1 * c0 * 9 * s1 + c2 * c1 * 9 * s2 + feat * classes))

    return Model("cnn", fb.module, numpy_fn, make_inputs, ("n",), flops,
                 {"k1": k1, "b1": b1, "k2": k2, "b2": b2, "wd": wd, "bd": bd, "channels": channels, "image": image,
                  "feat": feat})


def transformer_block(seed: int = 0, d: int = 256, heads: int = 4, ff: int = 1024) -> Model:
    """A pre-norm transformer encoder block over `[b, t, d]` (dynamic b, t)."""
    rng = np.random.default_rng(seed)
    dh = d // heads
    p = {
        "g1": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32), "be1": (0.1 * rng.standard_normal(d)).astype(np.float32),
        "g2": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32), "be2": (0.1 * rng.standard_normal(d)).astype(np.float32),
        "wq": _weight(rng, d, d), "wk": _weight(rng, d, d), "wv": _weight(rng, d, d), "wo": _weight(rng, d, d),
        "bq": (0.1 * rng.standard_normal(d)).astype(np.float32), "bk": (0.1 * rng.standard_normal(d)).astype(np.float32),
        "bv": (0.1 * rng.standard_normal(d)).astype(np.float32), "bo": (0.1 * rng.standard_normal(d)).astype(np.float32),
        "w1": _weight(rng, d, ff), "b1": (0.1 * rng.standard_normal(ff)).astype(np.float32),
        "w2": _weight(rng, ff, d), "b2": (0.1 * rng.standard_normal(d)).astype(np.float32),
    }
    scale = np.float32(1.0 / sqrt(dh))
    with FunctionBuilder("main") as fb:
        x = fb.param("x", ["b", "t", d], "float32")
        c = {k: fb.const(v) for k, v in p.items()}

        def dense(h, w, b):  # noqa: ANN001, ANN202
            return op.add(op.matmul(h, c[w]), c[b])

        def split_heads(h, axes):  # noqa: ANN001, ANN202
            return op.permute_dims(op.reshape(h, ["b", "t", heads, dh]), axes)

        h = op.nn.layer_norm(x, c["g1"], c["be1"], axes=[-1])
        q = split_heads(dense(h, "wq", "bq"), [0, 2, 1, 3])
        k = split_heads(dense(h, "wk", "bk"), [0, 2, 3, 1])
        v = split_heads(dense(h, "wv", "bv"), [0, 2, 1, 3])
        attn = op.nn.softmax(op.multiply(op.matmul(q, k), fb.const(np.array(scale))), axis=-1)
        ctx = op.reshape(op.permute_dims(op.matmul(attn, v), [0, 2, 1, 3]), ["b", "t", d])
        x1 = op.add(x, dense(ctx, "wo", "bo"))
        h2 = op.nn.layer_norm(x1, c["g2"], c["be2"], axes=[-1])
        fb.ret(op.add(x1, dense(op.nn.gelu(dense(h2, "w1", "b1")), "w2", "b2")))


    def ln(h: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu = h.mean(axis=-1, keepdims=True)
        var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
        return (h - mu) / np.sqrt(var + 1e-5) * g + b

    def numpy_fn(x: np.ndarray) -> np.ndarray:
        bsz, t, _ = x.shape
        h = ln(x, p["g1"], p["be1"])
        q, k, v = (h @ p[f"w{n}"] + p[f"b{n}"] for n in "qkv")
        q, k, v = (a.reshape(bsz, t, heads, dh).transpose(0, 2, 1, 3) for a in (q, k, v))
        attn = _np_softmax(q @ k.transpose(0, 1, 3, 2) * scale)
        x1 = x + (attn @ v).transpose(0, 2, 1, 3).reshape(bsz, t, d) @ p["wo"] + p["bo"]
        h2 = ln(x1, p["g2"], p["be2"])
        f = h2 @ p["w1"] + p["b1"]
        f = 0.5 * f * (1 + np_erf(f / np.float32(sqrt(2.0))))
        return (x1 + f @ p["w2"] + p["b2"]).astype(np.float32)

    def make_inputs(b: int, t: int, seed: int = 1) -> tuple[np.ndarray, ...]:
        return (np.random.default_rng(seed).standard_normal((b, t, d)).astype(np.float32),)

    def flops(b: int, t: int) -> float:
        return float(2 * b * t * (4 * d * d + 2 * d * ff) + 2 * 2 * b * heads * t * t * dh)

    return Model("transformer", fb.module, numpy_fn, make_inputs, ("b", "t"), flops,
                 {**p, "d": d, "heads": heads, "ff": ff})


MODELS: dict[str, Callable[..., Model]] = {"mlp": mlp, "cnn": cnn, "transformer": transformer_block}
