"""ONNX Dropout in training mode (opset 12+'s training_mode input, or
is_test=0 before opset 7): a random keep-mask scaled by 1 / (1 - ratio).
Its draws are relax's seeded generator's, not onnxruntime's, so the tests
check statistics and the relation between the outputs, and that every
target draws the same mask for a seed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import BoundsError
from relax_xdsl.frontend.onnx_import import OnnxImportError

N = 20_000
INPUTS = [("x", T.FLOAT, ["n", 4]), ("ratio", T.FLOAT, []), ("training_mode", T.BOOL, [])]


def _model(inputs: list[tuple[str, int, list[Any]]], opset: int = 13, inits: dict[str, np.ndarray] | None = None,
           outputs: tuple[str, ...] = ("y", "mask"), **attrs: Any) -> Any:
    names = [n for n, _, _ in inputs] + list(inits or {})
    node = helper.make_node("Dropout", names, list(outputs), name="myDropout", **attrs)
    return onnx_model([node], inputs, list(outputs), inits, opset=opset)


def _x(n: int) -> np.ndarray:
    return (np.arange(n * 4, dtype=np.float32).reshape(n, 4) % 17) + 1.0  # no zeros: a dropped element shows


def _check_draw(x: np.ndarray, y: np.ndarray, mask: np.ndarray, ratio: float) -> None:
    """y is x * mask / (1 - ratio), and about `ratio` of the elements are dropped."""
    keep = mask.astype(bool)
    np.testing.assert_allclose(y, np.where(keep, x / np.float32(1 - ratio), 0), rtol=1e-6)
    dropped = 1 - keep.mean()
    assert abs(dropped - ratio) < 4 * np.sqrt(ratio * (1 - ratio) / keep.size) + 1e-9, dropped


@pytest.mark.parametrize("target", ["c", "interp"])
def test_runtime_training_flag_and_ratio(target: str) -> None:
    m = _model(INPUTS, seed=3.0)
    module = rx.from_onnx(m)
    exe = rx.compile(module, target=target)
    x = _x(N // 40 if target == "interp" else N)  # (the interpreter runs each element in Python)
    for ratio in (0.5, 0.1, 0.9):
        args = (x, np.array(ratio, np.float32), np.array(True))
        y, mask = exe.main(*args)
        assert mask.dtype == np.bool_ and y.shape == x.shape
        _check_draw(x, y, mask, ratio)
        ref_y, ref_mask = rx.evaluate(module, "main", *args)  # the same draw on every level
        np.testing.assert_array_equal(mask, ref_mask)
        np.testing.assert_allclose(y, ref_y, rtol=1e-6)
    for ratio, flag in ((0.5, False), (0.0, True)):  # identity, all kept
        y, mask = exe.main(x, np.array(ratio, np.float32), np.array(flag))
        np.testing.assert_array_equal(y, x)
        assert mask.all()


def test_known_training_flag_and_ratio() -> None:
    m = _model(INPUTS[:1], inits={"ratio": np.array(0.25, np.float32), "training_mode": np.array(True)}, seed=1.0)
    exe = rx.compile(rx.from_onnx(m), target="c")
    x = _x(N)
    y, mask = exe.main(x)
    _check_draw(x, y, mask, 0.25)
    y2, mask2 = exe.main(x)
    np.testing.assert_array_equal(mask, mask2)  # a seed draws the same mask each call
    unseeded = _model(INPUTS[:1], inits={"ratio": np.array(0.25, np.float32), "training_mode": np.array(True)})
    masks = [rx.compile(rx.from_onnx(unseeded), target="c").main(x)[1] for _ in range(2)]
    assert (masks[0] != masks[1]).any()  # without a seed, each import draws its own
    _check_draw(x, *rx.compile(rx.from_onnx(unseeded), target="c").main(x), 0.25)  # type: ignore[misc]


def test_default_ratio_is_one_half() -> None:
    m = _model([INPUTS[0], ("", T.FLOAT, [])][:1], inits={"training_mode": np.array(True)}, outputs=("y",), seed=2.0)
    m.graph.node[0].input[:] = ["x", "", "training_mode"]
    x = _x(N)
    y = rx.compile(rx.from_onnx(m), target="c").main(x)
    _check_draw(x, y, y != 0, 0.5)


def test_before_opset_7_is_test_0_is_training() -> None:
    """is_test defaults to 0 (training) there; the mask has the data's type."""
    x = _x(N)
    y, mask = rx.compile(rx.from_onnx(_model(INPUTS[:1], opset=6, ratio=0.3, seed=5.0)), target="c").main(x)
    assert mask.dtype == np.float32
    _check_draw(x, y, mask, 0.3)
    y, mask = rx.compile(rx.from_onnx(_model(INPUTS[:1], opset=6, ratio=0.3, is_test=1)), target="c").main(x)
    np.testing.assert_array_equal(y, x)
    assert (mask == 1).all()


@pytest.mark.parametrize("opset", [7, 10, 11])
def test_opsets_7_to_11_have_no_training_mode(opset: int) -> None:
    x = _x(8)
    y, mask = rx.compile(rx.from_onnx(_model(INPUTS[:1], opset=opset, ratio=0.5)), target="c").main(x)
    np.testing.assert_array_equal(y, x)
    assert (mask == 1).all()


@pytest.mark.parametrize("ratio", [1.0, -0.1, float("nan")])
def test_ratio_outside_0_1(ratio: float) -> None:
    known = _model(INPUTS[:1], inits={"ratio": np.array(ratio, np.float32), "training_mode": np.array(True)})
    with pytest.raises(OnnxImportError, match=r"myDropout.*ratio"):
        rx.from_onnx(known)
    exe = rx.compile(rx.from_onnx(_model(INPUTS)), target="c")
    with pytest.raises(BoundsError, match=r"myDropout.*ratio must be in \[0, 1\)"):
        exe.main(_x(2), np.array(ratio, np.float32), np.array(True))


def test_training_mode_must_be_bool() -> None:
    m = _model([INPUTS[0], INPUTS[1], ("training_mode", T.INT64, [])])
    with pytest.raises(OnnxImportError, match=r"myDropout.*training_mode.*bool"):
        rx.from_onnx(m)
