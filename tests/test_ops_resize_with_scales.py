"""relax.resize_with_scales (resize with the per-axis scales and roi as
data): its shape rule and errors, equality with relax.resize where the
scales are constants, and values at every level (reference evaluator,
legalized programs, interp, C) with the symbols bound to several sizes
including 0 and 1."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import RelaxError, ShapeError
from relax_xdsl.shape import sym


def _module(shape: list[Any], out: list[Any], axes: list[int] | None, **kw: Any) -> Any:
    """main(x, scales, roi, like): `like` (shape [m]) binds the output symbol m."""
    r = len(shape)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", shape, "float32")
        s = fb.param("s", [r], "float64")
        roi = fb.param("roi", [2 * r], "float32")
        fb.param("like", ["m"], "float32")
        fb.ret(op.resize_with_scales(x, s, roi, sizes=out, axes=axes, **kw))
    return fb.module


VALUE_CASES = {
    "linear": (dict(mode="linear"), [1.0, 0.6]),
    "nearest_floor_align_corners": (dict(mode="nearest", nearest_mode="floor",
                                         coordinate_transformation_mode="align_corners"), [1.0, 1.7]),
    "cubic_exclude_outside": (dict(mode="cubic", exclude_outside=True, cubic_coeff_a=-0.5), [1.0, 2.5]),
    "linear_antialias": (dict(mode="linear", antialias=True), [1.0, 0.35]),
    "cubic_antialias": (dict(mode="cubic", antialias=True), [1.0, 0.6]),
    "crop_and_resize": (dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
                             extrapolation_value=-2.0), [1.0, 1.25]),
    "half_pixel_symmetric": (dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"), [1.0, 0.7]),
}


@pytest.mark.parametrize("name", list(VALUE_CASES))
def test_values_at_every_level(name: str) -> None:
    """x [n, 6] resized along axis 1 to m; n and m bound to 0, 1 and more."""
    kw, scales = VALUE_CASES[name]
    module = _module(["n", 6], ["n", "m"], [1], **kw)
    roi = np.array([0.0, 0.1, 1.0, 0.8], np.float32)
    cases = [(rand((n, 6), seed=n), np.array(scales), roi, np.zeros(m, np.float32))
             for n, m in [(0, 3), (0, 0), *[(n, k) for n, k in zip(SIZES, (1, 4, 9))]]]
    check_levels(module, cases)


def test_equals_resize_with_constant_scales() -> None:
    """With the scales resize would use as data, both ops give the same values (one math, two ways to get scales)."""
    x = rand((2, 5, 7), seed=3)
    for kw, scales, out in [(dict(mode="cubic"), [1.0, 1.6, 0.5], [2, 8, 3]),
                            (dict(mode="linear", antialias=True), [1.0, 0.4, 0.5], [2, 2, 3]),
                            (dict(mode="nearest", nearest_mode="round_prefer_ceil"), [1.0, 2.0, 1.5], [2, 10, 10])]:
        with rx.FunctionBuilder("main") as fb:
            p = fb.param("x", list(x.shape), "float32")
            s = fb.const(np.array(scales))
            roi = fb.const(np.array([0, 0, 0, 1, 1, 1], np.float64))
            fb.ret(op.resize_with_scales(p, s, roi, sizes=out, axes=[1, 2], **kw),
                   op.resize(p, sizes=out, scales=scales, **kw))
        a, b = rx.compile(fb.module, target="c")["main"](x)
        assert_close(a, b)
        assert_close(rx.evaluate(fb.module, "main", x)[0], b)


def test_an_empty_extent_resized_to_a_nonempty_one_is_a_shape_error_at_every_level() -> None:
    module = _module(["n", "w"], ["n", "m"], [1], mode="linear")
    args = (np.zeros((2, 0), np.float32), np.array([1.0, 2.0]), np.zeros(4, np.float32), np.zeros(3, np.float32))
    calls = [lambda *a: rx.evaluate(module, "main", *a)] + \
        [rx.compile(module, target=t)["main"] for t in ("interp", "c")]
    for call in calls:
        with pytest.raises(ShapeError):
            call(*args)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(mode="linear", scales_len=3), "length of scales"),
    (dict(mode="nearest", antialias=True), "antialias"),
    (dict(mode="linear", axes=[0, 0]), "distinct axes"),
    (dict(mode="linear", axes=[1], out=[sym("n") + 1, "m"]), "not resized"),
    (dict(mode="area"), "mode 'area'"),
])
def test_shape_rule_errors(kw: dict[str, Any], message: str) -> None:
    scales_len = kw.pop("scales_len", 2)
    out = kw.pop("out", ["n", "m"])
    with pytest.raises(RelaxError, match=message):
        with rx.FunctionBuilder("main") as fb:
            x = fb.param("x", ["n", 6], "float32")
            s = fb.param("s", [scales_len], "float64")
            roi = fb.param("roi", [4], "float32")
            fb.ret(op.resize_with_scales(x, s, roi, sizes=out, **kw))
