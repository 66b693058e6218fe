"""ONNX's Hann, Hamming and Blackman windows with a size given as data: one
executable serves every size (the length is a symbol bound when it runs),
against onnxruntime; a constant size still folds to a constant."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from util import onnx_model

import relax_xdsl as rx

pytest.importorskip("onnxruntime")
WINDOWS = ("HannWindow", "HammingWindow", "BlackmanWindow")


def window_model(op: str, periodic: int, dtype: int = TensorProto.FLOAT) -> object:
    node = helper.make_node(op, ["size"], ["w"], periodic=periodic, output_datatype=dtype)
    return onnx_model([node], [("size", TensorProto.INT64, [])], ["w"], opset=17)


def check(model: object, sizes: tuple[int, ...], target: str) -> object:
    """One executable for every size equals onnxruntime (which computes in
    float32 even for a double window, hence the absolute tolerance near 0)
    and the evaluator."""
    import onnxruntime as ort

    module = rx.from_onnx(model)
    sess = ort.InferenceSession(model.SerializeToString())  # type: ignore[attr-defined]
    exe = rx.compile(module, target=target)
    for s in sizes:
        size = np.array(s, dtype=np.int64)
        (want,) = sess.run(None, {"size": size})
        got, ref = exe.main(size), rx.evaluate(module, "main", size)
        assert got.shape == want.shape == ref.shape == (s,) and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ref, want, rtol=1e-5, atol=1e-6)
    return module


@pytest.mark.parametrize("periodic", [1, 0])
@pytest.mark.parametrize("op", WINDOWS)
def test_window_of_a_run_time_size(op: str, periodic: int) -> None:
    module = check(window_model(op, periodic), (10, 1, 2, 0, 33), "c")
    assert "relax.cos" in rx.print_module(module)  # computed when it runs, not folded


def test_window_on_the_interpreter_and_in_double() -> None:
    check(window_model("BlackmanWindow", 1, TensorProto.DOUBLE), (7, 1), "interp")


def test_negative_run_time_size_is_a_clear_error() -> None:
    exe = rx.compile(rx.from_onnx(window_model("HannWindow", 1)), target="c")
    with pytest.raises(rx.RelaxError, match="size"):
        exe.main(np.array(-3, dtype=np.int64))


def test_constant_size_folds() -> None:
    size = helper.make_node("Constant", [], ["size"], value=helper.make_tensor("v", TensorProto.INT64, [], [8]))
    node = helper.make_node("HannWindow", ["size"], ["w"])
    module = rx.from_onnx(onnx_model([size, node], [], ["w"], opset=17))
    text = rx.print_module(module)
    assert "relax.cos" not in text and "relax.constant" in text
    np.testing.assert_allclose(rx.evaluate(module, "main"), np.hanning(9)[:8].astype(np.float32), atol=1e-7)
