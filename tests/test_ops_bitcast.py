"""relax.bitcast at every level (evaluator, legalized, interp, C default
and fast) for every pair of one width, floats included, on a symbolic
dim bound to several sizes; special values (NaN, inf, -0.0, subnormals,
integer extremes) keep their bits. Different widths are a ShapeError."""

from __future__ import annotations

import numpy as np
import pytest
from util import LEVELS, SIZES, check_levels

import relax_xdsl as rx
from relax_xdsl import dtypes, op
from relax_xdsl.errors import ShapeError

PAIRS = [("float32", "int32"), ("int32", "float32"), ("float32", "uint32"), ("uint32", "float32"),
         ("float64", "int64"), ("int64", "float64"), ("uint64", "float64"), ("float16", "int16"),
         ("uint16", "float16"), ("bfloat16", "int16"), ("uint16", "bfloat16"), ("float16", "bfloat16"),
         ("int8", "uint8"), ("bool", "uint8"), ("uint8", "bool"), ("int64", "uint64")]


def _module(src: str, dst: str) -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2], src)
        fb.ret(op.bitcast(x, dtype=dst))
    return fb.module


def _bits(src: str, n: int, seed: int) -> np.ndarray:
    """n x 2 values of src whose bits cover the special patterns, then random bits."""
    rng = np.random.default_rng(seed)
    if src == "bool":
        return rng.integers(0, 2, (n, 2)).astype(bool)
    dt = dtypes.np_dtype(src)
    width = dt.itemsize * 8
    special = {16: [0x7C00, 0xFC00, 0x8000, 0x0001, 0x7FFF, 0xFFFF, 0x7F80, 0x3C00],
               32: [0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0x7FC00000, 0xFFFFFFFF, 0x3F800000],
               64: [0x7FF0000000000000, 0x8000000000000000, 0x1, 0x7FF8000000000000, 0xFFFFFFFFFFFFFFFF]}
    ut = np.dtype(f"uint{width}")
    raw = rng.integers(0, np.iinfo(ut).max, size=2 * n, dtype=ut, endpoint=True)
    pats = np.array(special.get(width, [0x80, 0xFF, 0x7F, 0x00]), dtype=ut)
    raw[: min(len(pats), 2 * n)] = pats[: 2 * n]
    if dtypes.is_float(src):  # NaN sources compare unequal to themselves: the int -> float pairs cover NaN bits
        raw = np.where(np.isnan(raw.view(dt).astype("float64")), ut.type(0), raw)
    return raw.view(dt).reshape(n, 2)


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_bitcast_levels(src: str, dst: str) -> None:
    module = _module(src, dst)
    cases = [(_bits(src, n, n),) for n in SIZES]
    want = [rx.evaluate(module, "main", *c) for c in cases]
    for c, w in zip(cases, want):
        assert w.dtype == dtypes.np_dtype(dst)
        if dst != "bool" and src != "bool":
            assert w.tobytes() == c[0].tobytes()
    levels = LEVELS if (src, dst) in (("float32", "int32"), ("uint16", "bfloat16")) else ("c",)
    check_levels(module, cases, levels=levels)
    fast = rx.compile(module, target="c", pipeline="fast")
    for c, w in zip(cases, want):
        assert fast["main"](*c).tobytes() == w.tobytes()


@pytest.mark.parametrize("target", ["interp", "c"])
def test_bitcast_keeps_special_float_bits(target: str) -> None:
    """inf, -inf, -0.0, a subnormal and NaN through float32 -> int32 and back."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "int32")
        f = op.bitcast(x, dtype="float32")
        fb.ret(f, op.bitcast(op.add(f, f), dtype="int32"))
    exe = rx.compile(fb.module, target=target)
    bits = np.array([0x7F800000, -0x800000, -0x80000000, 1, 0x7FC00000, 0x3F800000], dtype=np.int64).astype("int32")
    f, back = exe["main"](bits)
    assert f.tobytes() == bits.tobytes()
    np.testing.assert_array_equal(back, (bits.view("float32") * 2).view("int32"))


@pytest.mark.parametrize(("src", "dst"), [("float32", "int64"), ("int8", "int16"), ("bool", "float16"),
                                          ("float64", "float32")])
def test_bitcast_widths_must_match(src: str, dst: str) -> None:
    with pytest.raises(ShapeError, match=rf"relax\.bitcast: {src} .* cannot be reinterpreted as {dst}"):
        _module(src, dst)
