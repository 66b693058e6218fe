"""Shared test helpers: the float32 tolerance (stated once), the sizes every
symbolic dim is bound to, and round-trip checking."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx

RTOL = 1e-4
ATOL = 1e-5
SIZES = (1, 3, 7)
"""Bindings for symbolic dims: always including 1."""


def assert_close(actual: object, expected: object) -> None:
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e)
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_array_equal(actual, expected)


def roundtrip(module: ModuleOp) -> ModuleOp:
    """print -> parse -> print must be the identity; returns the reparsed module."""
    text = rx.print_module(module)
    again = rx.parse_module(text)
    assert rx.print_module(again) == text
    return again


def rand(shape: tuple[int, ...], dtype: str = "float32", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith("int"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
