"""relax.grid_sample, col2im, random_uniform / random_normal and det at every
level (evaluator, legalized, interp, C default and fast) on symbolic shapes
bound to several sizes including 1, plus the generator's statistics and
determinism."""

from __future__ import annotations

import numpy as np
import pytest
from util import LEVELS, SIZES, check_levels

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import ShapeError
from relax_xdsl.ops.registry import get_spec


def _fast_matches(module: object, cases: list[tuple[np.ndarray, ...]]) -> None:
    exe = rx.compile(module, target="c", pipeline="fast")
    for args in cases:
        want = rx.evaluate(module, "main", *args)
        np.testing.assert_allclose(exe["main"](*args), want, rtol=1e-4, atol=1e-5)


def _grid_module(mode: str, padding: str, align: bool, rank: int = 2) -> object:
    spatial = ["d", "h", "w"][3 - rank:]
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, *spatial], "float32")
        g = fb.param("g", ["n", "o", *([3] * (rank - 1)), rank], "float32")
        fb.ret(op.grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=align))
    return fb.module


def _grid_cases(rank: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    out = []
    for k, s in enumerate(SIZES):
        x = rng.standard_normal((s, 2, *[s + j for j in range(rank)])).astype("float32")
        g = (rng.standard_normal((s, max(1, k + 1), *([3] * (rank - 1)), rank)) * 1.4).astype("float32")
        out.append((x, g))
    return out


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_levels(mode: str, padding: str) -> None:
    module = _grid_module(mode, padding, padding == "border")
    cases = _grid_cases(2)
    check_levels(module, cases, levels=("legalized", "c") if mode != "nearest" else LEVELS)
    if padding == "zeros":
        _fast_matches(module, cases)


def test_grid_sample_volumetric_and_hostile_grid() -> None:
    """5-d input; a grid holding inf and NaN reads nothing out of range and
    gives the evaluator's answer on every target."""
    module = _grid_module("linear", "reflection", False, rank=3)
    check_levels(module, _grid_cases(3), levels=("legalized", "c"))
    x, g = _grid_cases(2)[1]
    g[0, 0, 0] = [np.inf, -np.inf]
    g[0, 0, 1] = [np.nan, 1e30]
    for mode, padding in (("cubic", "zeros"), ("nearest", "reflection"), ("linear", "border")):
        check_levels(_grid_module(mode, padding, False), [(x, g)], levels=("c",))


def test_grid_sample_matches_a_known_value() -> None:
    """align_corners maps -1 / 1 to the corner pixels; without it, to their outer edges."""
    x = np.arange(4, dtype="float32").reshape(1, 1, 2, 2)
    g = np.array([[[[-1, -1], [1, 1], [0, 0]]]], dtype="float32")
    corners = get_spec("grid_sample").reference(x, g, "linear", "zeros", True)
    np.testing.assert_allclose(corners.reshape(-1), [0.0, 3.0, 1.5])
    edges = get_spec("grid_sample").reference(x, g, "linear", "zeros", False)
    np.testing.assert_allclose(edges.reshape(-1), [0.0, 0.75, 1.5])


def test_grid_sample_shape_errors() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1, 2, 4, 4], "float32")
        g = fb.param("g", [1, 3, 3, 3], "float32")
        with pytest.raises(ShapeError, match="last dim must be 2"):
            op.grid_sample(x, g)
        g2 = fb.param("g2", [1, 3, 3, 2], "float32")
        with pytest.raises(ShapeError, match="padding_mode 'wrap'"):
            op.grid_sample(x, g2, padding_mode="wrap")


def test_col2im_levels() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8, 9], "float32")
        fb.ret(op.col2im(x, image_shape=[5, 4], block_shape=[2, 2], dilations=[1, 2], pads=[1, 0, 0, 1],
                         strides=[2, 1]))
    rng = np.random.default_rng(2)
    cases = [(rng.standard_normal((s, 8, 9)).astype("float32"),) for s in SIZES]
    check_levels(fb.module, cases)
    _fast_matches(fb.module, cases)


def test_col2im_sums_overlapping_blocks() -> None:
    """Every pixel of a 3x3 image covered by 2x2 blocks at stride 1 sums as
    many ones as blocks cover it."""
    ones = np.ones((1, 4, 4), dtype="float32")
    out = get_spec("col2im").reference(ones, (3, 3), (2, 2), None, None, None)
    np.testing.assert_array_equal(out[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1, 4, 5], "float32")
        with pytest.raises(ShapeError, match="number of blocks"):
            op.col2im(x, image_shape=[3, 3], block_shape=[2, 2])


def test_det_levels() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["b", "m", "m"], "float32")
        fb.ret(op.det(x))
    rng = np.random.default_rng(3)
    cases = [(rng.standard_normal((b, m, m)).astype("float32"),) for b, m in zip(SIZES, (1, 3, 4))]
    singular = rng.standard_normal((2, 3, 3)).astype("float32")
    singular[:, 2] = singular[:, 0]       # a repeated row: det 0
    cases.append((singular,))
    check_levels(fb.module, cases)
    _fast_matches(fb.module, cases)
    for args in cases:
        np.testing.assert_allclose(rx.evaluate(fb.module, "main", *args), np.linalg.det(args[0]), rtol=1e-4,
                                   atol=1e-5)


def test_det_needs_pivoting_and_a_2d_input() -> None:
    """A zero in the first pivot needs a row swap (the sign flips)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [2, 2], "float64")
        fb.ret(op.det(x))
    a = np.array([[0.0, 2.0], [3.0, 1.0]])
    for target in ("interp", "c"):
        assert rx.compile(fb.module, target=target)["main"](a) == pytest.approx(-6.0)
    with rx.FunctionBuilder("main") as fb2:
        y = fb2.param("y", [2, 3], "float32")
        with pytest.raises(ShapeError, match="square"):
            op.det(y)


# -- random numbers ------------------------------------------------------------------------------------------------


def _random_module(seed: float, dtype: str = "float32") -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3], dtype)
        u = op.random_uniform(shape=["n", 3], seed=seed, dtype=dtype, low=-2.0, high=5.0)
        z = op.random_normal(shape=["n", 3], seed=seed, dtype=dtype, mean=1.0, scale=3.0)
        fb.ret(op.add(x, op.add(u, z)))
    return fb.module


def test_random_same_seed_same_values_everywhere() -> None:
    """float32 draws are bit-identical on the evaluator, interp and C (default and fast)."""
    module = _random_module(7.0)
    cases = [(np.zeros((s, 3), "float32"),) for s in SIZES]
    want = [rx.evaluate(module, "main", *c) for c in cases]
    for target, pipeline in (("interp", "baseline"), ("c", "baseline"), ("c", "default")):
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for c, w in zip(cases, want):
            np.testing.assert_array_equal(exe["main"](*c), w)
    other = rx.evaluate(_random_module(8.0), "main", *cases[-1])
    assert not np.array_equal(other, want[-1])


def _draw(name: str, n: int, seed: float, **params: object) -> np.ndarray:
    with rx.FunctionBuilder("main") as fb:
        fb.param("x", ["n"], "float32")
        fb.ret(getattr(op, name)(shape=["n"], seed=seed, **params))
    exe = rx.compile(fb.module, target="c")
    out = exe["main"](np.zeros(n, "float32"))
    np.testing.assert_array_equal(out, rx.evaluate(fb.module, "main", np.zeros(n, "float32")))
    return out


def test_random_statistics() -> None:
    n = 100_000
    u = _draw("random_uniform", n, 1.0, dtype="float64", low=2.0, high=4.0)
    assert u.dtype == np.float64 and u.min() >= 2.0 and u.max() < 4.0
    assert abs(u.mean() - 3.0) < 0.01 and abs(u.var() - 4 / 12) < 0.01
    assert abs(np.histogram(u, bins=10, range=(2, 4))[0] / n - 0.1).max() < 0.005
    z = _draw("random_normal", n, 2.0, dtype="float32", mean=-1.0, scale=2.0)
    assert z.dtype == np.float32 and abs(z.mean() + 1.0) < 0.03 and abs(z.std() - 2.0) < 0.03
    assert abs(np.mean(np.abs(z + 1.0) < 2.0) - 0.6827) < 0.005         # one standard deviation
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01                    # neighbours independent


def test_random_shape_and_dtype_errors() -> None:
    with rx.FunctionBuilder("main") as fb:
        with pytest.raises(ShapeError, match="floating-point"):
            op.random_uniform(shape=[3], seed=1.0, dtype="int32")
        fb.ret(op.random_normal(shape=[2, 0, 3], seed=1.0, dtype="float16"))
    out = rx.compile(fb.module, target="c")["main"]()
    assert out.shape == (2, 0, 3) and out.dtype == np.float16
