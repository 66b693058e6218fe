"""relax.pad's constant: bfloat16 data takes any float (infinities
included, as a masked-attention graph pads with -inf), at every level;
an integer tensor refuses a constant it cannot hold (a ShapeError naming
it, not a raw OverflowError while legalizing)."""

from __future__ import annotations

import numpy as np
import pytest
from util import LEVELS, check_levels

import relax_xdsl as rx
from relax_xdsl import dtypes, op
from relax_xdsl.errors import ShapeError


def _pad_module(dtype: str, value: float) -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3], dtype)
        fb.ret(op.pad(x, pad_before=[0, 1], pad_after=[1, 2], pad_value=value))
    return fb.module


@pytest.mark.parametrize("value", [-np.inf, np.inf, -2.5])
def test_bfloat16_pad_with_any_float(value: float) -> None:
    module = _pad_module("bfloat16", value)
    bf16 = dtypes.np_dtype("bfloat16")
    cases = [(np.arange(n * 3, dtype="float32").reshape(n, 3).astype(bf16),) for n in (1, 2)]
    check_levels(module, cases, levels=LEVELS)
    got = rx.compile(module, target="c")["main"](cases[1][0]).astype("float32")
    assert got.shape == (3, 6) and got[0, 0] == value and got[2, 5] == value
    np.testing.assert_array_equal(got[:2, 1:4], np.arange(6, dtype="float32").reshape(2, 3))


@pytest.mark.parametrize(("dtype", "value"), [("int32", np.inf), ("int32", -np.inf), ("int8", 300.0),
                                              ("int64", float(2 ** 63)), ("uint8", -1.0), ("int32", np.nan)])
def test_integer_pad_refuses_unrepresentable_value(dtype: str, value: float) -> None:
    with pytest.raises(ShapeError, match=rf"relax\.pad: pad_value .* is not a value of {dtype}"):
        _pad_module(dtype, value)


def test_integer_pad_in_range_still_works() -> None:
    module = _pad_module("int8", -128.0)
    check_levels(module, [(np.arange(6, dtype="int8").reshape(2, 3),)], levels=("legalized", "c"))
