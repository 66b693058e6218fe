"""relax.roi_align and relax.max_roi_pool against their numpy references at
every level (evaluator, legalized, interp, C default and fast) on symbolic
shapes bound to several sizes including 0 and 1; batch indices out of
range are a BoundsError at every level; bad parameters a ShapeError."""

from __future__ import annotations

import numpy as np
import pytest
from util import LEVELS, SIZES, check_levels

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import BoundsError, ShapeError


def _fast_matches(module: object, cases: list[tuple[np.ndarray, ...]]) -> None:
    exe = rx.compile(module, target="c", pipeline="fast")
    for args in cases:
        np.testing.assert_allclose(exe["main"](*args), rx.evaluate(module, "main", *args), rtol=1e-4, atol=1e-5)


def _roi_module(**params: object) -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, "h", "w"], "float32")
        r = fb.param("r", ["k", 4], "float32")
        b = fb.param("b", ["k"], "int64")
        fb.ret(op.roi_align(x, r, b, **{"output_height": 2, "output_width": 3, "spatial_scale": 0.5, **params}))
    return fb.module


def _roi_cases(with_empty: bool = True) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(0)
    out = []
    for s in SIZES:
        x = rng.standard_normal((s, 2, s + 1, s + 2)).astype("float32")
        r = (rng.random((s, 4)) * 2 * (s + 2)).astype("float32")
        r[:, 2:] += r[:, :2]
        out.append((x, r, rng.integers(0, s, size=s)))
    if with_empty:  # no boxes; then an empty feature map (every sample reads nothing)
        out.append((rng.standard_normal((2, 2, 3, 3)).astype("float32"), np.zeros((0, 4), "float32"),
                    np.zeros(0, "int64")))
        out.append((np.zeros((1, 2, 0, 3), "float32"), np.array([[0, 0, 2, 2]], "float32"), np.zeros(1, "int64")))
    return out


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_levels(mode: str, sampling_ratio: int) -> None:
    for half_pixel in (True, False):
        module = _roi_module(mode=mode, sampling_ratio=sampling_ratio, half_pixel=half_pixel)
        levels = LEVELS if (mode, sampling_ratio, half_pixel) == ("avg", 0, True) else ("legalized", "c")
        check_levels(module, _roi_cases(), levels=levels)
    _fast_matches(module, _roi_cases())


def test_roi_align_huge_boxes_are_bounded() -> None:
    """An adaptive grid of about 10**29 samples per axis runs as a window of
    the samples that land in the map; every level agrees."""
    module = _roi_module()
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 5)).astype("float32")
    boxes = np.array([[0, 0, 1e30, 1e30], [-1e30, -1e30, 3, 3], [np.nan, 0, 2, 2], [0, 0, np.inf, 2]], "float32")
    check_levels(module, [(x, boxes, np.zeros(4, "int64"))], levels=("legalized", "c"))


@pytest.mark.parametrize("level", ["evaluator", "interp", "c"])
def test_roi_align_batch_index_checked(level: str) -> None:
    module = _roi_module()
    x = np.zeros((2, 2, 3, 3), "float32")
    boxes = np.zeros((2, 4), "float32")
    run = (lambda *a: rx.evaluate(module, "main", *a)) if level == "evaluator" else \
        rx.compile(module, target=level)["main"]
    for b, bad in (([0, 2], 2), ([-1, 1], -1)):
        with pytest.raises(BoundsError, match=rf"relax\.roi_align batch index.*index {bad} is out of range .* 2"):
            run(x, boxes, np.array(b, "int64"))


def test_roi_align_bad_parameters() -> None:
    for params, msg in (({"sampling_ratio": 5000}, "sampling_ratio"), ({"mode": "sum"}, "mode"),
                        ({"output_height": 0}, "output_height")):
        with pytest.raises(ShapeError, match=msg):
            _roi_module(**params)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1, 2, 3, 3], "float32")
        with pytest.raises(ShapeError, match="num_rois"):
            op.roi_align(x, fb.param("r", [2, 4], "float32"), fb.param("b", [3], "int64"))
        with pytest.raises(ShapeError, match="box columns"):
            op.roi_align(x, fb.param("r2", [2, 5], "float32"), fb.param("b2", [2], "int64"))


def _pool_module() -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, "h", "w"], "float32")
        r = fb.param("r", ["k", 5], "float32")
        fb.ret(op.max_roi_pool(x, r, pooled_shape=[2, 3], spatial_scale=0.5))
    return fb.module


def _pool_cases() -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(2)
    out = []
    for s in SIZES:
        x = rng.standard_normal((s, 2, s + 2, s + 1)).astype("float32")
        r = (rng.random((s, 4)) * 2 * (s + 2) - 1).astype("float32")
        r[:, 2:] += r[:, :2]
        out.append((x, np.concatenate([rng.integers(0, s, (s, 1)), r], axis=1).astype("float32")))
    out.append((np.zeros((1, 2, 2, 2), "float32"), np.zeros((0, 5), "float32")))
    out.append((np.zeros((1, 2, 0, 2), "float32"), np.array([[0, 0, 0, 3, 3]], "float32")))
    out.append((rng.standard_normal((1, 2, 3, 3)).astype("float32"),
                np.array([[0, np.nan, 0, 1e30, np.inf], [0.9, -1e30, 2, 1, -np.inf]], "float32")))
    return out


def test_max_roi_pool_levels() -> None:
    module = _pool_module()
    check_levels(module, _pool_cases())
    _fast_matches(module, _pool_cases())


@pytest.mark.parametrize("level", ["evaluator", "interp", "c"])
def test_max_roi_pool_batch_index_checked(level: str) -> None:
    module = _pool_module()
    run = (lambda *a: rx.evaluate(module, "main", *a)) if level == "evaluator" else \
        rx.compile(module, target=level)["main"]
    x = np.zeros((2, 2, 3, 3), "float32")
    for bad, shown in ((2.5, 2), (-1.0, -1), (np.nan, -1)):
        with pytest.raises(BoundsError, match=rf"relax\.max_roi_pool batch index.*index {shown} is out of range"):
            run(x, np.array([[0, 0, 0, 1, 1], [bad, 0, 0, 1, 1]], "float32"))


def _deform_module(groups: int = 1, offset_groups: int = 1, mask_shape: object = None,
                   bias_shape: object = None, **params: object) -> object:
    """x [n, 4, h, w], weight [6, 4 / groups, 2, 3]; offsets and mask for the output of the given params."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4, "h", "w"], "float32")
        wt = fb.param("wt", [6, 4 // groups, 2, 3], "float32")
        off = fb.param("off", ["n", offset_groups * 12, "oh", "ow"], "float32")
        b = fb.param("b", bias_shape or [6], "float32")
        m = fb.param("m", mask_shape or ["n", offset_groups * 6, "oh", "ow"], "float32")
        fb.ret(op.deform_conv2d(x, wt, off, b, m, groups=groups, offset_groups=offset_groups, **params))
    return fb.module


def _deform_cases(groups: int, offset_groups: int, stride: int, pad: tuple[int, ...], dil: int,
                  full_mask: bool = True) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(7)
    out = []
    for n, h, w in ((1, 4, 5), (2, 6, 7)):
        oh = (h + pad[0] + pad[2] - dil * 1 - 1) // stride + 1
        ow = (w + pad[1] + pad[3] - dil * 2 - 1) // stride + 1
        x = rng.standard_normal((n, 4, h, w)).astype("float32")
        wt = rng.standard_normal((6, 4 // groups, 2, 3)).astype("float32")
        off = (rng.standard_normal((n, offset_groups * 12, oh, ow)) * 2).astype("float32")
        b = rng.standard_normal(6).astype("float32")
        m = rng.random((n, offset_groups * 6, oh, ow) if full_mask else (1, 1, 1, 1)).astype("float32")
        out.append((x, wt, off, b, m))
    return out


@pytest.mark.parametrize(("groups", "offset_groups", "stride", "pad", "dil"), [
    pytest.param(1, 1, 1, (0, 0, 0, 0), 1, marks=pytest.mark.slow), (2, 2, 2, (1, 0, 2, 1), 1),
    pytest.param(1, 4, 1, (1, 1, 1, 1), 2, marks=pytest.mark.slow)])  # the interpreter takes minutes on these
def test_deform_conv2d_levels(groups: int, offset_groups: int, stride: int, pad: tuple[int, ...], dil: int) -> None:
    module = _deform_module(groups, offset_groups, strides=[stride, stride], padding=list(pad), dilation=[dil, dil])
    cases = _deform_cases(groups, offset_groups, stride, pad, dil)
    check_levels(module, cases, levels=LEVELS if groups == 1 and offset_groups == 1 else ("legalized", "c"))
    _fast_matches(module, cases)


def test_deform_conv2d_zero_offsets_is_a_convolution() -> None:
    """With zero offsets, a mask of ones and integer positions it is conv2d plus bias."""
    module = _deform_module(mask_shape=[1, 1, 1, 1], bias_shape=[1])
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 5, 6)).astype("float32")
    wt = rng.standard_normal((6, 4, 2, 3)).astype("float32")
    args = (x, wt, np.zeros((2, 12, 4, 4), "float32"), np.full(1, 0.5, "float32"), np.ones((1, 1, 1, 1), "float32"))
    with rx.FunctionBuilder("main") as fb:
        conv = op.conv2d(fb.param("x", [2, 4, 5, 6], "float32"), fb.param("wt", [6, 4, 2, 3], "float32"))
        fb.ret(conv)
    want = rx.evaluate(fb.module, "main", x, wt) + np.float32(0.5)
    for level in ("evaluator", "c"):
        got = rx.evaluate(module, "main", *args) if level == "evaluator" else rx.compile(module)["main"](*args)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_deform_conv2d_hostile_offsets_read_nothing() -> None:
    """NaN, infinite and huge offsets sample 0 (no read outside the image) at every level."""
    module = _deform_module(mask_shape=[1, 1, 1, 1])
    (x, wt, off, b, _), = _deform_cases(1, 1, 1, (0, 0, 0, 0), 1)[:1]
    off = off.copy()
    off.reshape(-1)[::3] = np.nan
    off.reshape(-1)[1::5] = np.inf
    off.reshape(-1)[2::7] = -1e30
    check_levels(module, [(x, wt, off, b, np.ones((1, 1, 1, 1), "float32"))])


def test_deform_conv2d_bad_shapes() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1, 4, 5, 5], "float32")
        wt = fb.param("wt", [6, 4, 3, 3], "float32")
        b, m = fb.param("b", [6], "float32"), fb.param("m", [1, 1, 1, 1], "float32")
        with pytest.raises(ShapeError, match=r"offset's dim 1 \(offset_groups \* kh \* kw \* 2\)"):
            op.deform_conv2d(x, wt, fb.param("o1", [1, 9, 3, 3], "float32"), b, m)
        with pytest.raises(ShapeError, match=r"offset's dim 2 \(the output height\)"):
            op.deform_conv2d(x, wt, fb.param("o2", [1, 18, 4, 3], "float32"), b, m)
        with pytest.raises(ShapeError, match="offset_groups"):
            op.deform_conv2d(x, wt, fb.param("o3", [1, 54, 3, 3], "float32"), b, m, offset_groups=3)
        with pytest.raises(ShapeError, match=r"mask's dim 1"):
            op.deform_conv2d(x, wt, fb.param("o4", [1, 18, 3, 3], "float32"), b,
                             fb.param("m2", [1, 4, 3, 3], "float32"))
