"""ONNX recurrent (RNN, GRU, LSTM), quantization and signal ops
(relax_xdsl/frontend/onnx_ops_rnnq.py): small models built with onnx.helper,
compiled to C (and the interpreter for a small one), run at several bindings
of the symbolic batch (1 included) and compared with onnxruntime, or with
ONNX's reference evaluator where onnxruntime lacks the op or type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from util import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import BoundsError  # noqa: E402
from relax_xdsl.frontend.onnx_import import OnnxImportError  # noqa: E402

F, I8, I32, U8 = TensorProto.FLOAT, TensorProto.INT8, TensorProto.INT32, TensorProto.UINT8
node = helper.make_node
NP = {F: np.float32, I8: np.int8, I32: np.int32, U8: np.uint8}


def model(nodes: list[Any], inputs: list[tuple[str, int, list[Any]]], outputs: Sequence[str],
          inits: dict[str, np.ndarray] | None = None, opset: int = 17) -> Any:
    return onnx_model(nodes, inputs, list(outputs), inits, opset)


def arr(rng: np.random.Generator, shape: Sequence[int], dtype: int, scale: float = 1.0) -> np.ndarray:
    if dtype == I8:
        return rng.integers(-128, 128, size=shape).astype(np.int8)
    if dtype == I32:
        return rng.integers(0, 4, size=shape).astype(np.int32)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def check(m: Any, batches: Sequence[int] = (1, 3), targets: Sequence[str] = ("c",), use_ort: bool = True,
          atol: float = 1e-5, feeds: dict[str, np.ndarray] | None = None) -> None:
    """Compiles once per target; at each binding of the symbol `b`, every
    target equals onnxruntime (or ONNX's reference evaluator)."""
    run = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run if use_ort else \
        ReferenceEvaluator(m).run
    mod = rx.from_onnx(m)
    exes = [rx.compile(mod, target=t) for t in targets]
    rng = np.random.default_rng(0)
    for b in batches:
        args = []
        for vi in m.graph.input:
            if feeds and vi.name in feeds:
                args.append(feeds[vi.name])
                continue
            shape = [b if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]
            args.append(arr(rng, shape, vi.type.tensor_type.elem_type))
        want = run(None, {vi.name: a for vi, a in zip(m.graph.input, args)})
        for exe in exes:
            got = exe["main"](*args)
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(want)
            for g, e in zip(got, want):
                assert g.shape == e.shape and g.dtype == e.dtype, (g.shape, e.shape, g.dtype, e.dtype)
                if g.dtype.kind == "f":
                    np.testing.assert_allclose(g, e, rtol=1e-4, atol=atol, err_msg=f"batch {b}")
                else:
                    np.testing.assert_array_equal(g, e, err_msg=f"batch {b}")


# -- recurrent -------------------------------------------------------------------------------------------------------

SEQ, IN, HID = 4, 3, 5


def rnn_model(op: str, gates: int, direction: str = "forward", layout: int = 0, seq_lens: bool = False,
              initial: Sequence[str] = (), peephole: bool = False, **attrs: Any) -> Any:
    nd = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(1)
    inits = {"W": rng.standard_normal((nd, gates * HID, IN)).astype(np.float32) * 0.5,
             "R": rng.standard_normal((nd, gates * HID, HID)).astype(np.float32) * 0.5,
             "B": rng.standard_normal((nd, 2 * gates * HID)).astype(np.float32) * 0.5}
    x_shape = ["b", SEQ, IN] if layout else [SEQ, "b", IN]
    state = ["b", nd, HID] if layout else [nd, "b", HID]
    inputs: list[tuple[str, int, list[Any]]] = [("X", F, x_shape)]
    names = ["X", "W", "R", "B", "", "", ""]
    if seq_lens:
        inputs.append(("L", I32, ["b"]))
        names[4] = "L"
    for i, s in zip((5, 6), ("H0", "C0")):
        if s in initial:
            inputs.append((s, F, state))
            names[i] = s
    if peephole:
        inits["P"] = rng.standard_normal((nd, 3 * HID)).astype(np.float32) * 0.5
        names.append("P")
    while names and names[-1] == "":
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    n = node(op, names, outs, hidden_size=HID, direction=direction, layout=layout, **attrs)
    return model([n], inputs, outs, inits, opset=14)


def test_rnn_bidirectional_activations_clip() -> None:
    m = rnn_model("RNN", 1, "bidirectional", initial=("H0",), activations=["LeakyRelu", "HardSigmoid"],
                  activation_alpha=[0.2, 0.3], activation_beta=[0.4], clip=1.5)
    check(m)


def check_layout1(op: str, gates: int, **attrs: Any) -> None:
    """onnxruntime has no layout=1: the batch-major model equals the
    time-major one on transposed inputs and outputs."""
    batchwise = rx.compile(rx.from_onnx(rnn_model(op, gates, layout=1, initial=("H0",), **attrs)), target="c")
    sess = ort.InferenceSession(rnn_model(op, gates, initial=("H0",), **attrs).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(6)
    for b in (1, 3):
        x, h0 = arr(rng, (b, SEQ, IN), F), arr(rng, (b, 1, HID), F)
        y, yh = sess.run(None, {"X": x.transpose(1, 0, 2), "H0": h0.transpose(1, 0, 2)})[:2]
        got = batchwise["main"](x, h0)
        np.testing.assert_allclose(got[0], y.transpose(2, 0, 1, 3), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1], yh.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


def test_gru_linear_before_reset_reverse_and_layout1() -> None:
    check(rnn_model("GRU", 3, "reverse", initial=("H0",), linear_before_reset=1))
    check_layout1("GRU", 3, linear_before_reset=1)


@pytest.mark.slow
def test_gru_bidirectional_sequence_lens() -> None:
    m = rnn_model("GRU", 3, "bidirectional", seq_lens=True)
    check(m, batches=(3,), feeds={"L": np.array([4, 1, 3], np.int32)})


@pytest.mark.slow
def test_lstm_peepholes_initial_state_sequence_lens() -> None:
    m = rnn_model("LSTM", 4, "bidirectional", seq_lens=True, initial=("H0", "C0"), peephole=True)
    check(m, batches=(3,), feeds={"L": np.array([2, 4, 1], np.int32)})


@pytest.mark.slow
def test_lstm_input_forget_activations() -> None:
    # ONNX's coupled forget gate (f = 1 - i) is checked against numpy on a batch of 1
    m = rnn_model("LSTM", 4, activations=["Sigmoid", "Softsign", "Elu"], activation_alpha=[0.5])
    check(m, batches=(1, 2))
    coupled = rnn_model("LSTM", 4, input_forget=1)
    x = np.random.default_rng(3).standard_normal((SEQ, 1, IN)).astype(np.float32)
    got = rx.compile(rx.from_onnx(coupled), target="c")["main"](x)
    w, r, b = (numpy_helper.to_array(t)[0] for t in coupled.graph.initializer)
    h, c = np.zeros((1, HID), np.float32), np.zeros((1, HID), np.float32)

    def sig(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    for t in range(SEQ):
        g = x[t] @ w.T + h @ r.T + b[:4 * HID] + b[4 * HID:]
        i, o, cc = sig(g[:, :HID]), sig(g[:, HID:2 * HID]), np.tanh(g[:, 3 * HID:])
        c = (1 - i) * c + i * cc
        h = o * np.tanh(c)
    np.testing.assert_allclose(got[1][0], h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[2][0], c, rtol=1e-4, atol=1e-5)


def test_rnn_symbolic_sequence_length_is_an_import_error() -> None:
    m = model([node("RNN", ["X", "W", "R"], ["Y"], hidden_size=HID, name="rnn0")], [("X", F, ["t", 1, IN])], ["Y"],
              {"W": np.zeros((1, HID, IN), np.float32), "R": np.zeros((1, HID, HID), np.float32)}, opset=14)
    with pytest.raises(OnnxImportError, match=r"'rnn0' \(RNN\).*symbolic dim t.*loop construct"):
        rx.from_onnx(m)


def test_rnn_unsupported_activation_names_the_node() -> None:
    m = rnn_model("RNN", 1, activations=["Gelu"])
    with pytest.raises(OnnxImportError, match=r"\(RNN\): activation 'Gelu' is not supported"):
        rx.from_onnx(m)


def test_rnn_sequence_lens_beyond_the_sequence_is_a_bounds_error() -> None:
    exe = rx.compile(rx.from_onnx(rnn_model("RNN", 1, seq_lens=True)), target="c")
    x = np.zeros((SEQ, 2, IN), np.float32)
    with pytest.raises(BoundsError):
        exe["main"](x, np.array([SEQ + 1, 1], np.int32))


# -- signal ----------------------------------------------------------------------------------------------------------


def test_dft_opset17_forms_against_numpy() -> None:
    rng = np.random.default_rng(2)
    real = rng.standard_normal((2, 6, 5, 1)).astype(np.float32)
    cplx = rng.standard_normal((2, 6, 5, 2)).astype(np.float32)
    cases = [  # (input, attrs, dft_length, numpy)
        (real, {"axis": 1}, None, lambda z: np.fft.fft(z, axis=1)),
        (cplx, {"axis": 2, "inverse": 1}, 8, lambda z: np.fft.ifft(z, n=8, axis=2)),
        (real, {"axis": 1, "onesided": 1}, 4, lambda z: np.fft.rfft(z, n=4, axis=1)),
        (cplx, {"axis": 1, "inverse": 1, "onesided": 1}, None, lambda z: np.fft.irfft(z, n=10, axis=1)),
    ]
    for x, attrs, length, fn in cases:
        inits = {} if length is None else {"n": np.array(length, np.int64)}
        m = model([node("DFT", ["x", "n" if length else ""], ["y"], **attrs)], [("x", F, list(x.shape))], ["y"],
                  inits)
        got = rx.compile(rx.from_onnx(m), target="c")["main"](x)
        z = x[..., 0] + (1j * x[..., 1] if x.shape[-1] == 2 else 0)
        want = fn(z)
        want = want[..., None] if np.isrealobj(want) else np.stack([want.real, want.imag], -1)
        np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-4, atol=1e-4, err_msg=str(attrs))


def test_dft_opset20_axis_input_symbolic_batch() -> None:
    m = model([node("DFT", ["x", "", "axis"], ["y"])], [("x", F, ["b", 7, 2])], ["y"],
              {"axis": np.array(-2, np.int64)}, opset=20)
    check(m, use_ort=False, targets=("interp", "c"), atol=1e-4)


def test_dft_axis_from_run_time_data_selects_the_axis_when_it_runs() -> None:
    """(Once an import error.) tests/test_onnx_runtime_signal.py covers run-time axes against onnxruntime."""
    m = model([node("DFT", ["x", "", "axis"], ["y"], name="d")], [("x", F, [1, 4, 1]), ("axis", TensorProto.INT64, [])],
              ["y"], opset=20)
    exe = rx.compile(rx.from_onnx(m), target="c")
    x = np.arange(4, dtype=np.float32).reshape(1, 4, 1)
    want = np.fft.fft(x[..., 0], axis=1)
    np.testing.assert_allclose(exe.main(x, np.array(1, np.int64)), np.stack([want.real, want.imag], -1), atol=1e-5)
    with pytest.raises(rx.BoundsError, match=r"'d' \(DFT\): axis"):
        exe.main(x, np.array(2, np.int64))


def test_stft_with_window_and_mel_weight_matrix() -> None:
    inits = {"step": np.array(4, np.int64), "win": np.hanning(8).astype(np.float32)}
    m = model([node("STFT", ["s", "step", "win"], ["y"])], [("s", F, ["b", 30, 1])], ["y"], inits)
    check(m, use_ort=False, atol=1e-4)
    mel = {"nb": np.array(8, np.int64), "n": np.array(16, np.int64), "sr": np.array(8000, np.int64),
           "lo": np.array(0.0, np.float32), "hi": np.array(4000.0, np.float32)}
    m = model([node("MelWeightMatrix", ["nb", "n", "sr", "lo", "hi"], ["y"])], [], ["y"], mel)
    want = ReferenceEvaluator(m).run(None, {})[0]
    got = rx.compile(rx.from_onnx(m), target="c")["main"]()
    np.testing.assert_array_equal(got, want)


# -- quantization ----------------------------------------------------------------------------------------------------


def test_quantize_linear_rounds_half_to_even_and_saturates() -> None:
    x = np.array([[0.5, 1.5, 2.5, -0.5], [-1.5, -2.5, 300.0, -300.0], [3.49, 254.5, -127.5, 0.0]], np.float32)
    inits = {"s": np.array(1.0, np.float32), "z": np.array(-1, np.int8)}
    m = model([node("QuantizeLinear", ["x", "s", "z"], ["y"])], [("x", F, ["b", 4])], ["y"], inits, opset=13)
    check(m, batches=(3,), targets=("interp", "c"), feeds={"x": x})


def test_quantize_dequantize_per_axis_and_blocked() -> None:
    rng = np.random.default_rng(4)
    per_axis = {"s": np.array([0.05, 0.1, 0.02], np.float32), "z": np.array([3, -7, 0], np.int8)}
    m = model([node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
               node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=-2)], [("x", F, ["b", 3, 4])], ["q", "y"],
              per_axis, opset=13)
    check(m)
    blocked = {"s": (rng.random((3, 2)) * 0.1 + 0.01).astype(np.float32), "z": np.array([[1, -2], [0, 5], [-9, 3]],
                                                                                       np.int8)}
    m = model([node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1, block_size=3),
               node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=3)], [("x", F, [3, 5])],
              ["q", "y"], blocked, opset=21)
    check(m, use_ort=False)


def test_matmul_integer_and_qlinear_matmul_int8() -> None:
    az, bz = np.array([3, -2, 0], np.int8), np.array([1, -1], np.int8)
    m = model([node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])], [("a", I8, [3, 6]), ("b", I8, [6, 2])], ["y"],
              {"az": az, "bz": bz}, opset=10)
    a, b = arr(np.random.default_rng(7), (3, 6), I8), arr(np.random.default_rng(8), (6, 2), I8)
    want = (a.astype(np.int32) - az.astype(np.int32)[:, None]) @ (b.astype(np.int32) - bz.astype(np.int32))
    np.testing.assert_array_equal(rx.compile(rx.from_onnx(m), target="c")["main"](a, b), want)  # per-row a_zero_point
    q = {"as": np.array(0.02, np.float32), "az": np.array(4, np.int8), "bs": np.array(0.03, np.float32),
         "bz": np.array(-3, np.int8), "ys": np.array(0.5, np.float32), "yz": np.array(-10, np.int8)}
    m = model([node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])],
              [("a", I8, ["b", 2, 8]), ("b", I8, [8, 3])], ["y"], q, opset=10)
    check(m)


def test_conv_integer_and_qlinear_conv_int8_per_channel() -> None:
    w = np.random.default_rng(5).integers(-20, 20, (2, 1, 3, 3)).astype(np.int8)
    m = model([node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])],
              [("x", I8, ["b", 1, 5, 5])], ["y"], {"w": w, "xz": np.array(2, np.int8), "wz": np.array([1, -1], np.int8)},
              opset=10)
    check(m, use_ort=False)
    q = {"xs": np.array(0.05, np.float32), "xz": np.array(-5, np.int8), "w": w, "ws": np.array([0.1, 0.02], np.float32),
         "wz": np.array([0, 0], np.int8), "ys": np.array(0.3, np.float32), "yz": np.array(7, np.int8),
         "bias": np.array([100, -50], np.int32)}
    m = model([node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"], ["y"], strides=[2, 1])],
              [("x", I8, ["b", 1, 6, 5])], ["y"], q, opset=10)
    check(m)


def test_uint8_constants_fold_and_run_time_uint8_runs() -> None:
    q = np.array([0, 7, 128, 255], np.uint8)
    m = model([node("DequantizeLinear", ["q", "s", "z"], ["y"])], [], ["y"],
              {"q": q, "s": np.array(0.5, np.float32), "z": np.array(128, np.uint8)}, opset=13)
    got = rx.compile(rx.from_onnx(m), target="c")["main"]()
    np.testing.assert_array_equal(got, (q.astype(np.float32) - 128) * 0.5)
    m = model([node("DequantizeLinear", ["q", "s"], ["y"], name="dq")], [("q", U8, [4])], ["y"],
              {"s": np.array(0.5, np.float32)}, opset=13)
    got = rx.compile(rx.from_onnx(m), target="c")["main"](q)
    np.testing.assert_array_equal(got, q.astype(np.float32) * 0.5)
