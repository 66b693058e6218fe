"""Layout graph ops (relax.pad, relax.tile, relax.resize): symbolic shape
rules, their errors, and values at every level (reference evaluator,
legalized programs, interp, C default and fast) with the symbols bound to
several sizes including 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import RelaxError, ShapeError
from relax_xdsl.shape import dim_to_str

Spec = tuple[str, Sequence[Any], str]


def build(params: Sequence[Spec], body: Callable[..., rx.Var]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(body(*[fb.param(n, s, d) for n, s, d in params]))
    return fb.module


def shape_of(params: Sequence[Spec], body: Callable[..., rx.Var]) -> str:
    with rx.FunctionBuilder("main") as fb:
        v = body(*[fb.param(n, s, d) for n, s, d in params])
        fb.ret(v)
        return ", ".join(dim_to_str(d) for d in v.shape)


NCHW = [("x", ["n", "c", "h", "w"], "float32")]


@pytest.mark.parametrize(("body", "expected"), [
    (lambda x: op.pad(x, [0, 0, 1, 1], [0, 0, 1, 1]), "n, c, h + 2, w + 2"),
    (lambda x: op.pad(x, [0, 0, -1, 2], [0, 1, 0, -3], "reflect"), "n, c + 1, h - 1, w - 1"),
    (lambda x: op.tile(x, [1, 2, 1, 3]), "n, 2*c, h, 3*w"),
    (lambda x: op.resize(x, sizes=["n", "c", "2*h", "2*w"], scales=[1, 1, 2, 2], mode="linear"), "n, c, 2*h, 2*w"),
])
def test_shapes_stay_symbolic(body: Callable[..., rx.Var], expected: str) -> None:
    assert shape_of(NCHW, body) == expected


@pytest.mark.parametrize(("params", "body", "match"), [
    (NCHW, lambda x: op.pad(x, [1, 1], [1, 1]), "one entry per axis"),
    (NCHW, lambda x: op.pad(x, [0, 0, 0, 0], [0, 0, 0, 1], "mirror"), "mode 'mirror'"),
    ([("x", [4, 3], "float32")], lambda x: op.pad(x, [-3, 0], [-2, 0]), "cropping 3 \\+ 2"),
    ([("x", [4, 3], "float32")], lambda x: op.pad(x, [-4, 0], [1, 0], "edge"), "empty extent"),
    (NCHW, lambda x: op.tile(x, [1, 2]), "one entry per axis"),
    (NCHW, lambda x: op.tile(x, [1, -1, 1, 1]), "non-negative"),
    ([("x", ["n", 4], "int32")], lambda x: op.resize(x, sizes=["n", 8], mode="linear"), "floating-point"),
    ([("x", ["n", "h"], "float32")], lambda x: op.resize(x, sizes=["n", 2], mode="linear", antialias=True),
     "antialias needs a static scale"),
    ([("x", ["n", 4], "float32")], lambda x: op.resize(x, sizes=["n", 8], mode="area"), "mode 'area'"),
    ([("x", ["n", 4], "float32")], lambda x: op.resize(x, sizes=["n", 8], coordinate_transformation_mode="x"),
     "coordinate_transformation_mode 'x'"),
    ([("x", ["n", 4], "float32")], lambda x: op.resize(x, sizes=[8]), "one entry per axis"),
])
def test_errors_name_the_op(params: Sequence[Spec], body: Callable[..., rx.Var], match: str) -> None:
    with pytest.raises(ShapeError, match=match):
        build(params, body)


X3 = [("x", ["n", 3, 4], "float32")]

VALUE_CASES = {
    "pad_constant_crop": (X3, lambda x: op.pad(x, [1, 2, -1], [0, 1, 2], pad_value=1.5)),
    "pad_reflect_wide": (X3, lambda x: op.pad(x, [0, 5, 1], [1, 4, -1], "reflect")),
    "pad_edge": (X3, lambda x: op.pad(x, [2, 0, 3], [1, 2, 0], "edge")),
    "pad_wrap_wide": (X3, lambda x: op.pad(x, [0, 7, 1], [2, 3, 9], "wrap")),
    "pad_int": ([("x", ["n", 3], "int32")], lambda x: op.pad(x, [1, 1], [0, 2], pad_value=-7)),
    "tile": (X3, lambda x: op.tile(x, [2, 1, 3])),
    "resize_nearest_int": ([("x", [1, "n", 3], "int64")],
                           lambda x: op.resize(x, sizes=[1, "2*n", 7], mode="nearest", nearest_mode="ceil",
                                               coordinate_transformation_mode="align_corners")),
    "resize_linear_runtime_scale": ([("x", ["n", 2, "h"], "float32")],
                                    lambda x: op.resize(x, sizes=["n", 2, 5], mode="linear")),
    "resize_cubic_exclude": (X3, lambda x: op.resize(x, sizes=["n", 7, 2], mode="cubic", exclude_outside=True,
                                                     cubic_coeff_a=-0.5)),
    "resize_cubic_antialias": ([("x", ["n", 9, 8], "float32")],
                               lambda x: op.resize(x, sizes=["n", 4, 3], mode="cubic", antialias=True,
                                                   coordinate_transformation_mode="pytorch_half_pixel")),
    "resize_crop": (X3, lambda x: op.resize(x, sizes=["n", 5, 6], scales=[1, 5 / 3, 1.5], mode="linear",
                                            coordinate_transformation_mode="tf_crop_and_resize",
                                            roi=[0, 0.1, -0.2, 1, 0.8, 1.3], extrapolation_value=9.0)),
    "resize_symmetric": (X3, lambda x: op.resize(x, sizes=["n", 5, 3], scales=[1, 1.7, 0.8], mode="linear",
                                                 coordinate_transformation_mode="half_pixel_symmetric")),
}


def _inputs(params: Sequence[Spec], n: int) -> tuple[np.ndarray, ...]:
    return tuple(rand(tuple(n if isinstance(d, str) and d in ("n", "h") else 2 * n if d == "2*n" else d
                            for d in shape), dtype, seed=n) for _, shape, dtype in params)


SLOW_CASES = {"resize_cubic_antialias"}  # 64 taps per element: slow in the interpreter


@pytest.mark.parametrize("name", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_CASES else k
                                  for k in VALUE_CASES])
def test_values_at_every_level(name: str) -> None:
    params, body = VALUE_CASES[name]
    check_levels(build(params, body), [_inputs(params, n) for n in SIZES])


def test_reference_matches_numpy_pad_and_tile() -> None:
    x = rand((3, 4), seed=2)
    with rx.FunctionBuilder("main") as fb:
        p = fb.param("x", [3, 4], "float32")
        fb.ret(op.pad(p, [2, 5], [4, 6], "reflect"), op.pad(p, [0, 9], [7, 1], "wrap"), op.tile(p, [2, 3]))
    got = rx.compile(fb.module, target="c")["main"](x)
    assert_close(got, (np.pad(x, ((2, 4), (5, 6)), "reflect"), np.pad(x, ((0, 7), (9, 1)), "wrap"),
                       np.tile(x, (2, 3))))


def test_fused_pad_resize_in_fast_pipeline() -> None:
    """pad and resize are injective: fast fuses them into their consumer; values unchanged."""
    params = [("x", ["n", 2, 5, 5], "float32")]
    mod = build(params, lambda x: op.relu(op.resize(op.pad(x, [0, 0, 1, 1], [0, 0, 1, 1], "edge"),
                                                     sizes=["n", 2, 14, 3], mode="cubic")))
    exe = rx.compile(mod, target="c", pipeline="fast")
    for n in SIZES:
        x = _inputs(params, n)[0]
        assert_close(exe["main"](x), rx.evaluate(mod, "main", x))


def test_padding_an_extent_cropped_to_nothing_is_an_error_on_every_target() -> None:
    """wrap needs at least one element left after cropping: n = 1 minus one is none."""
    mod = build([("x", ["n"], "float32")], lambda x: op.pad(x, [-1], [2], "wrap"))
    for target in ("interp", "c"):
        exe = rx.compile(mod, target=target)
        assert_close(exe["main"](np.arange(3, dtype="float32")), np.array([1, 2, 1, 2], "float32"))
        with pytest.raises(RelaxError):
            exe["main"](np.ones(1, "float32"))
    with pytest.raises(RelaxError):
        rx.evaluate(mod, "main", np.ones(1, "float32"))
