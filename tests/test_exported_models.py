"""Models that real exporters produce (benchmarks/exported_models.py):
transformers' BERT, GPT-2, a Llama-style decoder, ViT, ResNet, MobileNet and
torch's nn.MultiheadAttention, exported by both torch.onnx exporters with a
dynamic batch (and sequence). Each imports with symbolic dims and, from one
compiled executable, matches onnxruntime at two sizes within a relative
error of 1e-4 on the `c` target, each written-out attention of the
transformers run as one library call (recognize-attention); the light
zoo models onnx ships match too.

Skipped where torch and transformers are not installed (`pip install
".[models]"`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import exported_models as em  # noqa: E402

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import relax_xdsl as rx  # noqa: E402

SIZES = [(1, 5), (3, 11)]  # (batch, seq); image models use the batch only
# The TorchScript exporter traces nn.MultiheadAttention's reshapes with the
# example's sizes as constants, so its graph is only valid at the export size:
# onnxruntime refuses other sizes too. Checked at the export size only.
STATIC_EXPORTS = {("mha", "torchscript")}


def check_model(name: str, exporter: str, scale: str = "tiny", sizes: list[tuple[int, int]] | None = None) -> None:
    why = em.available()
    if why is not None:
        pytest.skip(why)
    spec = em.MODELS[name]
    data = em.export(name, exporter, scale)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(data)
    signature = rx.print_module(mod).splitlines()[1]
    exe = rx.compile(mod, target="c")
    softmaxes = rx.print_module(mod).count("= relax.softmax ")
    if spec.kind != "image" or name == "vit":  # each written-out attention runs as one library call
        assert softmaxes and exe.loops is not None
        assert rx.print_module(exe.loops).count("func.call @rx_blas_attention") == softmaxes
    sizes = [(2, 8)] if (name, exporter) in STATIC_EXPORTS else sizes or SIZES
    if (name, exporter) not in STATIC_EXPORTS:
        assert "batch" in signature, signature  # the batch dim stays symbolic
    for batch, seq in sizes:
        feed = spec.inputs(scale, batch, seq, seed=batch)
        want = sess.run(None, feed)[0]
        got = np.asarray(exe["main"](*feed.values()))
        assert got.shape == want.shape
        assert np.all(np.isfinite(want)) and float(np.max(np.abs(want))) > 1e-3  # a comparison that can fail
        err = em.relative_error(got, want)
        assert err <= 1e-4, f"{name}/{exporter} at batch {batch}, seq {seq}: relative error {err:.2e}"


@pytest.mark.parametrize("exporter", em.EXPORTERS)
def test_bert(exporter: str) -> None:
    check_model("bert", exporter)


@pytest.mark.parametrize("exporter", em.EXPORTERS)
def test_resnet(exporter: str) -> None:
    check_model("resnet", exporter)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", em.EXPORTERS)
@pytest.mark.parametrize("name", ["gpt2", "llama", "vit", "mobilenet", "mha"])
def test_more_models(name: str, exporter: str) -> None:
    check_model(name, exporter)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", em.EXPORTERS)
@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_cnn_at_224(name: str, exporter: str) -> None:
    """ResNet-18 and MobileNetV2 at full size and resolution: 50+ layers of
    float32 rounding, where the tiny configs have a handful."""
    check_model(name, exporter, "bench", [(1, 0), (2, 0)])


@pytest.mark.slow
@pytest.mark.parametrize("name", em.LIGHT_ZOO)
def test_light_zoo(name: str) -> None:
    """The zoo's light models against onnxruntime: the graph output, and
    for a model ending in Softmax also the logits before it (the
    comparison that means something when the constant weights drive the
    logits to 1e21, see em.light_zoo_error)."""
    model, ends_in_softmax = em.light_zoo_model(name)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    exe = rx.compile(rx.from_onnx(model), target="c")
    (inp,) = sess.get_inputs()
    x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape])
    want = sess.run(None, {inp.name: x.astype(np.float32)})
    err = em.light_zoo_error(exe["main"](x.astype(np.float32)), want, ends_in_softmax)
    assert err <= 1e-4, f"{name}: relative error {err:.2e}"
