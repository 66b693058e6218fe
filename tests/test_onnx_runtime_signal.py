"""The ONNX signal ops (DFT, STFT, MelWeightMatrix) with inputs the importer
cannot read at import time (graph inputs: an axis, a transform or frame
length, a frame step, MelWeightMatrix's sizes and edges): one executable
runs with values that change the output's size, as onnxruntime does, and a
hostile value is a project error naming the node, never a crash."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import BoundsError, ResourceLimitError

ort = pytest.importorskip("onnxruntime")

F32 = np.float32
I64 = np.int64


def _model(op: str, inputs: list[tuple[str, int, list[Any]]], names: list[str], opset: int, **attrs: Any) -> Any:
    return onnx_model([helper.make_node(op, names, ["y"], name=f"my{op}", **attrs)], inputs, ["y"], opset=opset)


def _check(m: Any, calls: list[dict[str, np.ndarray]], target: str = "c", pipeline: str = "default",
           atol: float = 1e-4) -> None:
    """One executable (and the reference evaluator) equals onnxruntime on every call; the calls give
    outputs of different shapes, so the run-time value really sizes the output."""
    module = rx.from_onnx(m)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    exe = rx.compile(module, target=target, pipeline=pipeline)
    shapes = set()
    for feeds in calls:
        (want,) = sess.run(None, feeds)
        for got in (exe.main(*feeds.values()), rx.evaluate(module, "main", *feeds.values())):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)
        shapes.add(want.shape)
    assert len(shapes) == len(calls)


def _callers(m: Any) -> list[Any]:
    module = rx.from_onnx(m)
    return [lambda *a: rx.evaluate(module, "main", *a), rx.compile(module, target="interp").main,
            rx.compile(module, target="c").main]


def _fails(m: Any, args: tuple[Any, ...], err: type[Exception], *mentions: str) -> None:
    for call in _callers(m):
        with pytest.raises(err) as info:
            call(*args)
        for text in mentions:
            assert text in str(info.value)


SIGNAL = np.random.default_rng(0).standard_normal((2, 3, 5, 1)).astype(F32)
COMPLEX = np.random.default_rng(1).standard_normal((2, 4, 3, 2)).astype(F32)

# -- DFT ---------------------------------------------------------------------------------------------------------------


def _dft_axis_model(shape: list[Any], **attrs: Any) -> Any:
    return _model("DFT", [("x", T.FLOAT, shape), ("axis", T.INT64, [])], ["x", "", "axis"], 20, **attrs)


@pytest.mark.parametrize("target", ["c", "interp"])
def test_dft_runtime_axis_onesided(target: str) -> None:
    """A one-sided transform shortens the axis it runs on, so the axis (data) decides the output shape."""
    m = _dft_axis_model([2, 3, 5, 1], onesided=1)
    _check(m, [{"x": SIGNAL, "axis": np.array(a, I64)} for a in (0, 1, -2)], target)


def test_dft_runtime_axis_inverse_complex() -> None:
    m = _dft_axis_model([2, 4, 3, 2], inverse=1)
    calls = [{"x": COMPLEX, "axis": np.array(a, I64)} for a in (1, -3)]
    module = rx.from_onnx(m)
    exe = rx.compile(module, target="c")
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for feeds in calls:
        np.testing.assert_allclose(exe.main(*feeds.values()), sess.run(None, feeds)[0], rtol=1e-4, atol=1e-5)


def test_dft_runtime_axis_irfft_default_length() -> None:
    """irfft's default length 2 * (n - 1) is 0 on an axis of 1: only an error if the data picks that axis."""
    x = np.fft.rfft(np.arange(24, dtype=np.float64).reshape(1, 6, 4), axis=1)
    x = np.stack([x.real, x.imag], axis=-1).astype(F32)  # [1, 4, 4, 2]
    m = _dft_axis_model([1, 4, 4, 2], inverse=1, onesided=1)
    _check(m, [{"x": x, "axis": np.array(a, I64)} for a in (1, 2)])
    _fails(m, (x, np.array(0, I64)), BoundsError, "myDFT", "dft_length")


@pytest.mark.parametrize("axis", [3, -1, -5, 7])
def test_dft_runtime_axis_out_of_range(axis: int) -> None:
    """The last (real/imaginary) axis and axes outside the rank are run-time errors naming the node."""
    _fails(_dft_axis_model([2, 3, 5, 1]), (SIGNAL, np.array(axis, I64)), BoundsError, "myDFT", "axis")


def _dft_length_model(opset: int, **attrs: Any) -> Any:
    inputs: list[tuple[str, int, list[Any]]] = [("x", T.FLOAT, ["b", "n", 1]), ("len", T.INT64, [])]
    if opset >= 20:
        return _model("DFT", inputs, ["x", "len"], opset, **attrs)
    return _model("DFT", inputs, ["x", "len"], opset, axis=1, **attrs)


@pytest.mark.parametrize("opset, attrs", [(20, {}), (17, {"onesided": 1}), (20, {"inverse": 1})])
def test_dft_runtime_length(opset: int, attrs: dict[str, int]) -> None:
    """dft_length as data (and a symbolic signal dim): the signal is truncated or zero-padded to it."""
    x = np.random.default_rng(2).standard_normal((2, 6, 1)).astype(F32)
    m = _dft_length_model(opset, **attrs)
    _check(m, [{"x": x, "len": np.array(4, I64)}, {"x": x[:1, :5], "len": np.array(9, I64)},
               {"x": x, "len": np.array(1, I64)}])


def test_dft_runtime_length_and_axis_fast_pipeline() -> None:
    m = _model("DFT", [("x", T.FLOAT, [2, 3, "n", 1]), ("len", T.INT64, []), ("axis", T.INT64, [])],
               ["x", "len", "axis"], 20, onesided=1)
    _check(m, [{"x": SIGNAL, "len": np.array(7, I64), "axis": np.array(2, I64)},
               {"x": SIGNAL[:, :, :2], "len": np.array(3, I64), "axis": np.array(1, I64)}], pipeline="fast")


def test_dft_runtime_length_irfft() -> None:
    spec = np.fft.rfft(np.random.default_rng(3).standard_normal((2, 8)), axis=1)
    x = np.stack([spec.real, spec.imag], axis=-1).astype(F32)  # [2, 5, 2]
    m = _model("DFT", [("x", T.FLOAT, [2, "k", 2]), ("len", T.INT64, [])], ["x", "len"], 20, inverse=1, onesided=1)
    # bins <= len // 2 + 1: with more, onnxruntime reads the extra bins where numpy's irfft (ONNX's reference) does not
    _check(m, [{"x": x, "len": np.array(8, I64)}, {"x": x[:, :4], "len": np.array(6, I64)},
               {"x": x[:, :3], "len": np.array(7, I64)}])


@pytest.mark.parametrize("length, err, mentions", [
    (0, BoundsError, ("myDFT", "dft_length must be >= 1")),
    (-3, BoundsError, ("myDFT", "dft_length must be >= 1")),
    (2**62, BoundsError, ("myDFT", "dft_length must be >= 1")),
    (2**40, ResourceLimitError, ()),
])
def test_dft_hostile_length(length: int, err: type[Exception], mentions: tuple[str, ...]) -> None:
    x = np.ones((1, 4, 1), F32)
    _fails(_dft_length_model(20), (x, np.array(length, I64)), err, *mentions)


# -- STFT --------------------------------------------------------------------------------------------------------------

WAVE = np.random.default_rng(4).standard_normal((2, 32, 1)).astype(F32)


def _stft_model(window: bool, length: bool) -> Any:
    inputs: list[tuple[str, int, list[Any]]] = [("x", T.FLOAT, [2, "n", 1]), ("step", T.INT64, [])]
    if window:
        inputs.append(("w", T.FLOAT, ["k"]))
    if length:
        inputs.append(("len", T.INT64, []))
    return _model("STFT", inputs, ["x", "step", "w" if window else "", "len" if length else ""], 17)


@pytest.mark.parametrize("target", ["c", "interp"])
def test_stft_runtime_step_and_length(target: str) -> None:
    m = _stft_model(window=False, length=True)
    _check(m, [{"x": WAVE, "step": np.array(4, I64), "len": np.array(8, I64)},
               {"x": WAVE[:, :20], "step": np.array(3, I64), "len": np.array(5, I64)}], target)


def test_stft_runtime_step_and_window() -> None:
    m = _stft_model(window=True, length=False)
    _check(m, [{"x": WAVE, "step": np.array(5, I64), "w": np.hanning(8).astype(F32)},
               {"x": WAVE[:, :17], "step": np.array(2, I64), "w": np.hamming(6).astype(F32)}])


def test_stft_runtime_step_static_frame() -> None:
    """frame_length known at import (the constant DFT matrix), only the step is data."""
    m = onnx_model([helper.make_node("STFT", ["x", "step", "", "len"], ["y"], name="mySTFT")],
                   [("x", T.FLOAT, [2, 32, 1]), ("step", T.INT64, [])], ["y"], {"len": np.array(6, I64)}, opset=17)
    _check(m, [{"x": WAVE, "step": np.array(s, I64)} for s in (1, 5, 26)])


@pytest.mark.parametrize("args, mentions", [
    ((WAVE, np.array(0, I64), np.array(8, I64)), "frame_step must be >= 1"),
    ((WAVE, np.array(-2, I64), np.array(8, I64)), "frame_step must be >= 1"),
    ((WAVE, np.array(2**62, I64), np.array(8, I64)), "frame_step must be >= 1"),
    ((WAVE, np.array(2, I64), np.array(0, I64)), "frame_length must be >= 1"),
    ((WAVE, np.array(2, I64), np.array(33, I64)), "shorter than frame_length"),
    ((WAVE, np.array(2, I64), np.array(2**40, I64)), "shorter than frame_length"),
])
def test_stft_hostile_values(args: tuple[Any, ...], mentions: str) -> None:
    _fails(_stft_model(window=False, length=True), args, BoundsError, "mySTFT", mentions)


def test_stft_frame_length_differs_from_window() -> None:
    args = (WAVE, np.array(2, I64), np.hanning(8).astype(F32), np.array(6, I64))
    _fails(_stft_model(window=True, length=True), args, BoundsError, "mySTFT", "frame_length must equal the window")


# -- MelWeightMatrix ---------------------------------------------------------------------------------------------------


def _mel_model(int_type: int = T.INT64, **attrs: Any) -> Any:
    inputs = [("b", int_type, []), ("l", int_type, []), ("r", int_type, []), ("lo", T.FLOAT, []), ("hi", T.FLOAT, [])]
    return _model("MelWeightMatrix", inputs, ["b", "l", "r", "lo", "hi"], 17, **attrs)


def _mel_feeds(b: int, length: int, rate: int, lo: float, hi: float, dt: Any = I64) -> dict[str, np.ndarray]:
    return {"b": np.array(b, dt), "l": np.array(length, dt), "r": np.array(rate, dt), "lo": np.array(lo, F32),
            "hi": np.array(hi, F32)}


MEL_CALLS = [_mel_feeds(8, 16, 8192, 0, 4096), _mel_feeds(5, 31, 16000, 100, 7000), _mel_feeds(1, 2, 10, 0, 5)]


@pytest.mark.parametrize("target", ["c", "interp"])
def test_mel_weight_matrix_runtime_inputs(target: str) -> None:
    _check(_mel_model(), MEL_CALLS, target, atol=0)


def test_mel_weight_matrix_equals_onnx_reference() -> None:
    """Bit for bit ONNX's reference (its integer bins included), int32 inputs, a float64 output."""
    from onnx.reference import ReferenceEvaluator

    m = _mel_model(T.INT32, output_datatype=T.DOUBLE)
    exe = rx.compile(rx.from_onnx(m), target="c")
    ref = ReferenceEvaluator(m)
    for b, length, rate, lo, hi in [(8, 16, 8192, 0, 4096), (13, 257, 22050, 20, 11025), (3, 15, 8000, 0, 4000),
                                    (40, 512, 16000, 125.5, 7600)]:
        feeds = _mel_feeds(b, length, rate, lo, hi, np.int32)
        (want,) = ref.run(None, feeds)
        got = exe.main(*feeds.values())
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("feeds, err, mentions", [
    (_mel_feeds(0, 16, 8192, 0, 4096), BoundsError, "num_mel_bins must be >= 1"),
    (_mel_feeds(8, -1, 8192, 0, 4096), BoundsError, "dft_length must be >= 1"),
    (_mel_feeds(8, 16, 0, 0, 4096), BoundsError, "sample_rate must be >= 1"),
    (_mel_feeds(2**62, 16, 8192, 0, 4096), BoundsError, "num_mel_bins must be >= 1"),
    (_mel_feeds(8, 16, 8192, 0, 4097), BoundsError, "upper_edge_hertz <= sample_rate / 2"),
    (_mel_feeds(8, 16, 8192, 300, 200), BoundsError, "lower_edge_hertz < upper_edge_hertz"),
    (_mel_feeds(8, 16, 8192, -1, 200), BoundsError, "0 <= lower_edge_hertz"),
    (_mel_feeds(8, 16, 8192, float("nan"), 200), BoundsError, "0 <= lower_edge_hertz"),
    (_mel_feeds(2**40, 2**40, 8192, 0, 4096), ResourceLimitError, ""),
])
def test_mel_weight_matrix_hostile_values(feeds: dict[str, np.ndarray], err: type[Exception], mentions: str) -> None:
    _fails(_mel_model(), tuple(feeds.values()), err, "myMelWeightMatrix" if err is BoundsError else "", mentions)
