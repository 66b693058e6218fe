"""Models as real exporters produce them, for the benchmarks and the tests:
transformers' BERT, GPT-2, ViT, a Llama-style decoder (prefill), ResNet and
MobileNet, and torch's `nn.MultiheadAttention`, each exported by both
torch.onnx exporters (`torchscript`, and `dynamo`, torch's current one) with
a dynamic batch (and sequence) axis; and the light zoo models the onnx
package ships under `onnx/backend/test/data/light`.

Nothing is downloaded or committed: each model is built from a config with
random weights (fixed seed) and exported when asked for, so this needs torch
and transformers (`pip install ".[models]"`). Two scales: `tiny` for the
tests (exports and compiles in seconds) and `bench` for the benchmarks
(BERT/GPT-2/Llama with 4 layers of width 256 at sequence 128, ResNet-18 and
MobileNetV2 at 224x224).

Random initialisation is adjusted where it would make the comparison
meaningless: transformers initialises convolutions and BatchNorm statistics
so that a CNN's activations shrink to about 1e-24 after a few blocks, where
any implementation "matches". Convolution weights are redrawn and BatchNorm
statistics measured on a batch of random images, so activations keep their
scale as in a trained network.

The text models take `input_ids` and `attention_mask`: the TorchScript
exporter cannot export transformers' mask construction without an explicit
mask (`aten::diff`), and real deployments pass one anyway.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

EXPORTERS = ("torchscript", "dynamo")
SCALES = ("tiny", "bench")
LIGHT_ZOO = ("light_bvlc_alexnet", "light_densenet121", "light_inception_v1", "light_inception_v2",
             "light_resnet50", "light_shufflenet", "light_squeezenet", "light_vgg19", "light_zfnet512")


@dataclass(frozen=True)
class ExportedModel:
    """One model to export: how to build it (per scale), what its inputs are
    (`text`: input_ids + attention_mask of [batch, seq]; `image`: pixel_values
    [batch, 3, side, side]; `sequence`: x [batch, seq, width]), and the fixed
    dims of those inputs per scale (vocabulary, image side, width)."""

    name: str
    kind: str
    build: Callable[[str], Any]
    fixed: dict[str, dict[str, int]]

    def input_names(self) -> list[str]:
        return {"text": ["input_ids", "attention_mask"], "image": ["pixel_values"], "sequence": ["x"]}[self.kind]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {0: "batch"} if self.kind == "image" else {0: "batch", 1: "seq"}
        return {n: dict(axes) for n in self.input_names()}

    def inputs(self, scale: str, batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the given batch (and sequence length) as numpy arrays."""
        rng = np.random.default_rng(seed)
        f = self.fixed[scale]
        if self.kind == "text":
            mask = np.ones((batch, seq), np.int64)
            if batch > 1:
                mask[0, : seq // 3] = 0  # left padding in the first row: the mask matters
            return {"input_ids": rng.integers(0, f["vocab"], (batch, seq), dtype=np.int64), "attention_mask": mask}
        if self.kind == "image":
            return {"pixel_values": rng.standard_normal((batch, 3, f["side"], f["side"])).astype(np.float32)}
        return {"x": rng.standard_normal((batch, seq, f["width"])).astype(np.float32)}


def _first_output(model: Any, kind: str) -> Any:
    """A torch module giving a transformers model named tensor inputs and one tensor output
    (explicit parameters: torch.export matches dynamic_shapes against them)."""
    import torch

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

    class Image(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return self.model(pixel_values, return_dict=False)[0]

    return (Text() if kind == "text" else Image()).eval()


def _rescale_cnn(model: Any, side: int) -> Any:
    """Redraws conv weights (He init) and BatchNorm scales, then sets the
    BatchNorm statistics to those of one batch of random images, as training
    leaves them: every layer's output is normalised, as in a trained network
    (see the module doc). With statistics drawn at random instead,
    MobileNetV2's unnormalised residual sums grew until float32 rounding
    alone (onnxruntime's against float64) was 1.5e-4 of the output."""
    import torch

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
            elif isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.reset_running_stats()
                m.momentum = None  # a cumulative average: after one batch, that batch's statistics
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
        model.train()
        model(torch.randn((8, 3, side, side), generator=gen))
    return model.eval()


def _bert(scale: str) -> Any:
    import transformers as tf

    w, layers = (64, 2) if scale == "tiny" else (256, 4)
    cfg = tf.BertConfig(vocab_size=1000, hidden_size=w, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=4 * w, max_position_embeddings=512)
    return _first_output(tf.BertModel(cfg), "text")


def _gpt2(scale: str) -> Any:
    import transformers as tf

    w, layers = (64, 2) if scale == "tiny" else (256, 4)
    cfg = tf.GPT2Config(vocab_size=1000, n_embd=w, n_layer=layers, n_head=4, n_positions=512, use_cache=False)
    return _first_output(tf.GPT2Model(cfg), "text")


def _llama(scale: str) -> Any:
    import transformers as tf

    w, layers = (64, 2) if scale == "tiny" else (256, 4)
    cfg = tf.LlamaConfig(vocab_size=1000, hidden_size=w, intermediate_size=(w * 8) // 3, num_hidden_layers=layers,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512, use_cache=False)
    return _first_output(tf.LlamaForCausalLM(cfg), "text")


def _vit(scale: str) -> Any:
    import transformers as tf

    cfg = (tf.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                        image_size=32, patch_size=8) if scale == "tiny" else
           tf.ViTConfig(hidden_size=192, num_hidden_layers=4, num_attention_heads=3, intermediate_size=768,
                        image_size=224, patch_size=16))
    return _first_output(tf.ViTModel(cfg, add_pooling_layer=False), "image")


def _resnet(scale: str) -> Any:
    import transformers as tf

    cfg = (tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic")
           if scale == "tiny" else
           tf.ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2], layer_type="basic"))
    return _first_output(_rescale_cnn(tf.ResNetModel(cfg), 64 if scale == "tiny" else 224), "image")


def _mobilenet(scale: str) -> Any:
    import transformers as tf

    cfg = (tf.MobileNetV2Config(image_size=64, depth_multiplier=0.35) if scale == "tiny" else
           tf.MobileNetV2Config(image_size=224, depth_multiplier=1.0))
    return _first_output(_rescale_cnn(tf.MobileNetV2Model(cfg), cfg.image_size), "image")


def _mha(scale: str) -> Any:
    import torch

    width = 32 if scale == "tiny" else 256

    class SelfAttention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(width, 4 if scale == "tiny" else 8, batch_first=True)

        def forward(self, x: Any) -> Any:
            return self.attn(x, x, x, need_weights=False)[0]

    return SelfAttention().eval()


_TEXT = {"tiny": {"vocab": 1000}, "bench": {"vocab": 1000}}
MODELS: dict[str, ExportedModel] = {m.name: m for m in (
    ExportedModel("bert", "text", _bert, _TEXT),
    ExportedModel("gpt2", "text", _gpt2, _TEXT),
    ExportedModel("llama", "text", _llama, _TEXT),
    ExportedModel("vit", "image", _vit, {"tiny": {"side": 32}, "bench": {"side": 224}}),
    ExportedModel("resnet", "image", _resnet, {"tiny": {"side": 64}, "bench": {"side": 224}}),
    ExportedModel("mobilenet", "image", _mobilenet, {"tiny": {"side": 64}, "bench": {"side": 224}}),
    ExportedModel("mha", "sequence", _mha, {"tiny": {"width": 32}, "bench": {"width": 256}}),
)}


def available() -> str | None:
    """None when torch and transformers import, else why not (for a skip message)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        return f"needs torch and transformers (pip install \".[models]\"): {err}"
    return None


def export(name: str, exporter: str, scale: str = "tiny") -> bytes:
    """The ONNX model `name` as `exporter` writes it, with dynamic batch (and sequence) dims."""
    import torch

    if exporter not in EXPORTERS or scale not in SCALES:
        raise ValueError(f"exporter must be one of {EXPORTERS} and scale one of {SCALES}")
    spec = MODELS[name]
    torch.manual_seed(0)
    module = spec.build(scale)
    example = tuple(torch.from_numpy(v) for v in spec.inputs(scale, 2, 8).values())
    names = spec.input_names()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            f = io.BytesIO()
            torch.onnx.export(module, example, f, input_names=names, output_names=["output"],
                              dynamic_axes={**spec.dynamic_axes(), "output": {0: "batch"}}, opset_version=17,
                              dynamo=False)
            return f.getvalue()
        from torch.export import Dim

        dims = {0: Dim("batch", min=1, max=1024)}
        if spec.kind != "image":
            dims[1] = Dim("seq", min=2, max=512)
        program = torch.onnx.export(module, example, input_names=names, output_names=["output"],
                                    dynamic_shapes=tuple(dict(dims) for _ in names), dynamo=True, verbose=False)
        return program.model_proto.SerializeToString()


@dataclass(frozen=True)
class DecoderSpec:
    """The sizes of an exported KV-cache decoder: what its inputs and outputs
    are called and how big its cache tensors are."""

    model: str
    layers: int
    kv_heads: int
    head_dim: int
    vocab: int

    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", *self.cache_names("past_key_values")]

    def output_names(self) -> list[str]:
        return ["logits", *self.cache_names("present")]

    def cache_names(self, prefix: str) -> list[str]:
        return [f"{prefix}.{i}.{kv}" for i in range(self.layers) for kv in ("key", "value")]

    def cache(self, batch: int, past: int, seed: int | None = None) -> list[np.ndarray]:
        """Per layer key and value [batch, kv_heads, past, head_dim]: zeros, or random with a seed."""
        shape = (batch, self.kv_heads, past, self.head_dim)
        if seed is None:
            return [np.zeros(shape, np.float32) for _ in range(2 * self.layers)]
        rng = np.random.default_rng(seed)
        return [rng.standard_normal(shape).astype(np.float32) for _ in range(2 * self.layers)]


DECODERS = ("llama", "gpt2")
_DECODER_SIZES = {"tiny": (64, 2), "bench": (256, 4)}  # (width, layers); 8 heads, Llama 4 kv heads


def decoder_spec(scale: str = "tiny", model: str = "llama") -> DecoderSpec:
    """The sizes `export_decoder(exporter, scale, model)` exports with."""
    if model not in DECODERS or scale not in SCALES:
        raise ValueError(f"model must be one of {DECODERS} and scale one of {SCALES}")
    width, layers = _DECODER_SIZES[scale]
    return DecoderSpec(model, layers, 4 if model == "llama" else 8, width // 8, 1000)


def _decoder_module(spec: DecoderSpec, width: int) -> Any:
    """A torch module taking the flat tensors (input_ids, attention_mask,
    then past key/value per layer) and returning flat tensors (logits, then
    present key/value per layer): transformers 5 takes and returns a
    DynamicCache object, which neither exporter can pass across the graph's
    boundary."""
    import torch
    import transformers as tf
    from transformers import DynamicCache

    if spec.model == "llama":
        cfg = tf.LlamaConfig(vocab_size=spec.vocab, hidden_size=width, intermediate_size=(width * 8) // 3,
                             num_hidden_layers=spec.layers, num_attention_heads=8, num_key_value_heads=spec.kv_heads,
                             max_position_embeddings=1024, use_cache=True)
        model = tf.LlamaForCausalLM(cfg)
    else:
        # Untied output projection: with random weights and tied embeddings, greedy decoding repeats the prompt's
        # last token forever, a comparison that could not catch a wrong cache.
        cfg = tf.GPT2Config(vocab_size=spec.vocab, n_embd=width, n_layer=spec.layers, n_head=8, n_positions=1024,
                            use_cache=True, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
        model = tf.GPT2LMHeadModel(cfg)

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, *past: Any) -> tuple[Any, ...]:
            cache = DynamicCache([(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)])
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True,
                             return_dict=True)
            present = out.past_key_values
            return (out.logits, *(t for layer in present.layers for t in (layer.keys, layer.values)))

    return Decoder().eval()


def export_decoder(exporter: str, scale: str = "tiny", model: str = "llama") -> bytes:
    """A transformers decoder (`llama`: LlamaForCausalLM with grouped-query
    attention; `gpt2`: GPT2LMHeadModel) exported with an explicit KV cache:
    inputs input_ids [batch, seq], attention_mask [batch, past + seq] and per
    layer past key and value [batch, kv_heads, past, head_dim]; outputs
    logits [batch, seq, vocab] and the present keys and values. batch, seq
    and past are dynamic (past may be 0: a prefill from an empty cache)."""
    import torch

    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}")
    spec = decoder_spec(scale, model)
    torch.manual_seed(0)
    module = _decoder_module(spec, _DECODER_SIZES[scale][0])
    batch, seq, past = 2, 3, 4
    example = (torch.randint(0, spec.vocab, (batch, seq)), torch.ones(batch, past + seq, dtype=torch.int64),
               *(torch.from_numpy(t) for t in spec.cache(batch, past, seed=0)))
    names, outputs = spec.input_names(), spec.output_names()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
                    "logits": {0: "batch", 1: "seq"}}
            axes.update({n: {0: "batch", 2: "past"} for n in spec.cache_names("past_key_values")})
            axes.update({n: {0: "batch", 2: "total"} for n in spec.cache_names("present")})
            f = io.BytesIO()
            torch.onnx.export(module, example, f, input_names=names, output_names=outputs, dynamic_axes=axes,
                              opset_version=17, dynamo=False)
            return f.getvalue()
        from torch.export import Dim

        b, s, p = Dim("batch", min=1, max=1024), Dim("seq", min=1, max=1024), Dim("past", min=0, max=1024)
        shapes = ({0: b, 1: s}, {0: b, 1: Dim("total", min=1, max=2048)}, tuple({0: b, 2: p} for _ in example[2:]))
        program = torch.onnx.export(module, example, input_names=names, output_names=outputs, dynamic_shapes=shapes,
                                    dynamo=True, verbose=False)
        return program.model_proto.SerializeToString()


def light_zoo_path(name: str) -> str:
    """The path of one of onnx's light zoo models (weights are ConstantOfShape fills)."""
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"{name}.onnx")


FLOAT32_EPS = float(np.finfo(np.float32).eps)


def light_zoo_model(name: str) -> tuple[Any, bool]:
    """One of onnx's light zoo models and whether it ends in Softmax; such a
    model gets the Softmax's input (the logits) as a second graph output,
    for light_zoo_error."""
    import onnx

    model = onnx.load(light_zoo_path(name))
    last = model.graph.node[-1]
    if last.op_type != "Softmax":
        return model, False
    model.graph.output.append(onnx.helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, None))
    return model, True


def light_zoo_error(got: Any, want: list[np.ndarray], ends_in_softmax: bool) -> float:
    """The largest relative error over the outputs of a light_zoo_model
    (`got` one array or a sequence, `want` onnxruntime's list) that mean
    something. The light models' weights are constants (0.02 everywhere),
    so some (Inception v1) reach logits near 1e21 that are all equal: one
    float32 ulp there is 1e14, and a softmax of such logits gives 0 or
    1/992 for a difference in summation order alone. There the logits are
    the comparison that means something, and the softmax is compared only
    when an ulp of the largest logit moves its exponent by less than 1e-3."""
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    pairs = list(zip(got, want, strict=True))
    if ends_in_softmax and float(np.max(np.abs(want[1]))) * FLOAT32_EPS >= 1e-3:
        pairs = pairs[1:]
    return max(relative_error(np.asarray(g), w) for g, w in pairs)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|: the figure the issue's 1e-4 bound is about."""
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return float(np.max(np.abs(got.astype(np.float64) - want))) / scale if scale else float(np.max(np.abs(got)))
