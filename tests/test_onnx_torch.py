"""Models exported from torch.nn with dynamic axes (where torch is
installed) import with symbolic dims and match onnxruntime at several sizes
from one compiled executable, on both pipelines."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import relax_xdsl as rx  # noqa: E402

try:
    import onnxscript  # noqa: F401

    DYNAMO = True  # torch's current exporter
except ImportError:
    DYNAMO = False  # the TorchScript exporter

EXPORTERS = [pytest.param(False, id="torchscript"),
             pytest.param(True, id="dynamo", marks=pytest.mark.skipif(not DYNAMO, reason="needs onnxscript"))]


def export(module: Any, example: Any, dynamic: dict[int, str], opset: int = 17, dynamo: bool = DYNAMO) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), f, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": dynamic, "y": {0: dynamic[0]}}, opset_version=opset, dynamo=dynamo)
    return f.getvalue()


def check(data: bytes, shapes: list[tuple[int, ...]], module: Any) -> Any:
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(data)
    exes = [rx.compile(mod, target="c", pipeline=p) for p in ("baseline", "default")]
    for shape in shapes:
        x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
        want = sess.run(None, {"x": x})[0]
        with torch.no_grad():
            np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), want, rtol=1e-4, atol=1e-4)
        for exe in exes:
            np.testing.assert_allclose(exe["main"](x), want, rtol=1e-4, atol=1e-4)
    return mod


def main_sig(mod: Any) -> str:
    return rx.print_module(mod).splitlines()[1]


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_torch_mlp(dynamo: bool) -> None:
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5), torch.nn.Softmax(-1))
    mod = check(export(m, torch.randn(2, 20), {0: "batch"}, dynamo=dynamo), [(1, 20), (3, 20), (8, 20)], m)
    assert "[batch, 20]" in main_sig(mod) and "[batch, 5]" in main_sig(mod)


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_torch_cnn(dynamo: bool) -> None:
    torch.manual_seed(0)
    nn = torch.nn
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2), nn.ReLU(), nn.AvgPool2d(2),
                      nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(8, 4))
    m.eval()
    with torch.no_grad():  # non-trivial running statistics
        m[1].running_mean.uniform_(-0.5, 0.5)
        m[1].running_var.uniform_(0.5, 1.5)
    mod = check(export(m, torch.randn(2, 3, 16, 16), {0: "n"}, dynamo=dynamo), [(1, 3, 16, 16), (4, 3, 16, 16)], m)
    assert "[n, 3, 16, 16]" in main_sig(mod)


def test_torch_transformer_encoder_layer() -> None:
    if not DYNAMO:
        pytest.skip("the TorchScript exporter cannot export TransformerEncoderLayer; install onnxscript")
    torch.manual_seed(0)
    m = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True,
                                         activation="gelu", dropout=0.0)
    mod = check(export(m, torch.randn(2, 5, 32), {0: "b", 1: "t"}), [(1, 1, 32), (2, 5, 32), (3, 7, 32)], m)
    assert "[b, t, 32]" in main_sig(mod)
    assert "[t, 4*b, 8]" in rx.print_module(mod)  # heads split with symbolic shapes


class _GPTBlock(torch.nn.Module):
    """Token + positional embeddings sliced to the sequence (`pos[:t]`), a
    causal mask from `tril`, masked_fill, split heads, tanh GELU."""

    def __init__(self, d: int = 32, heads: int = 4, vocab: int = 50, max_len: int = 16):
        super().__init__()
        nn = torch.nn
        self.heads = heads
        self.qkv, self.o, self.ln = nn.Linear(d, 3 * d), nn.Linear(d, d), nn.LayerNorm(d)
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.randn(max_len, d))

    def forward(self, ids: Any) -> Any:
        b, t = ids.shape
        x = self.emb(ids) + self.pos[:t]
        q, k, v = self.qkv(self.ln(x)).split(x.shape[-1], dim=-1)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
        att = att.masked_fill(torch.ones(t, t).tril() == 0, float("-inf")).softmax(-1)
        y = self.o((att @ v).transpose(1, 2).reshape(b, t, -1))
        return torch.nn.functional.gelu(y, approximate="tanh") + x.pow(2).mean(-1, keepdim=True).sqrt()


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_torch_gpt_block_symbolic_slices_and_causal_mask(dynamo: bool) -> None:
    torch.manual_seed(0)
    m = _GPTBlock().eval()
    data = export(m, torch.randint(0, 50, (2, 5)), {0: "b", 1: "t"}, dynamo=dynamo)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    mod = rx.from_onnx(data)
    assert "[b, t]" in main_sig(mod) and "[b, t, 32]" in main_sig(mod)
    exe = rx.compile(mod, target="c", pipeline="fast")
    for b, t in ((1, 1), (2, 5), (3, 16)):
        ids = np.random.default_rng(t).integers(0, 50, (b, t)).astype(np.int64)
        np.testing.assert_allclose(exe["main"](ids), sess.run(None, {"x": ids})[0], rtol=1e-4, atol=1e-4)
    # a sequence longer than the positional table: the slice's assumption fails clearly
    with pytest.raises(rx.ShapeError, match="slice end"):
        exe["main"](np.zeros((1, 17), np.int64))
