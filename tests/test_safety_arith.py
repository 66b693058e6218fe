"""Arithmetic is defined and equal on every target (issue "Safety of
generated code", item 5): wrapping integer arithmetic (no signed-overflow UB
for gcc to fold), shifts for every amount, float -> int casts of NaN / inf /
out-of-range values, float16 accumulating in float32, bool inputs holding
bytes other than 0 / 1, and max / argmax over an empty axis.

Each case runs on the evaluator (numpy references), the interpreter and the
C target in the "baseline" and "default" (optimizing) pipelines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.errors import ShapeError

TARGETS = [("evaluator", None), ("interp", "baseline"), ("c", "baseline"), ("c", "default")]
TARGET_IDS = ["evaluator", "interp", "c-baseline", "c-default"]
INTS = ["int8", "int32", "int64"]


def _module(dtype: str, body: Callable[[Any], Any], shape: list[Any] | None = None) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", shape or ["n"], dtype)
        fb.ret(body(x))
    return fb.module


def _run(module: ModuleOp, target: str, pipeline: str | None, *arrays: np.ndarray) -> np.ndarray:
    if target == "evaluator":
        return rx.evaluate(module, "main", *arrays)
    return rx.compile(module, target=target, pipeline=pipeline or "baseline")["main"](*arrays)


# --- integer arithmetic wraps like numpy -----------------------------------------


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("dtype", INTS)
def test_add_overflow_wraps_and_compares(target: str, pipeline: str | None, dtype: str) -> None:
    """x + 1 > x is false at INT_MAX: gcc folded it to true (signed overflow UB)."""
    info = np.iinfo(dtype)
    x = np.array([info.max, info.min, 0, -1, info.max - 1], dtype)
    module = _module(dtype, lambda v: op.greater(op.add(v, 1), v))
    out = _run(module, target, pipeline, x)
    assert out.tolist() == [False, True, True, True, True]
    wrapped = _run(_module(dtype, lambda v: op.add(v, 1)), target, pipeline, x)
    assert wrapped.tolist() == (x + np.array(1, dtype)).tolist()


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("dtype", INTS)
def test_abs_negative_multiply_at_int_min(target: str, pipeline: str | None, dtype: str) -> None:
    info = np.iinfo(dtype)
    x = np.array([info.min, info.max, -1, 0, 7], dtype)
    with np.errstate(over="ignore"):
        assert _run(_module(dtype, op.abs), target, pipeline, x).tolist() == np.abs(x).tolist()
        assert _run(_module(dtype, op.negative), target, pipeline, x).tolist() == np.negative(x).tolist()
        square = _run(_module(dtype, lambda v: op.multiply(v, v)), target, pipeline, x)
        assert square.tolist() == (x * x).tolist()


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("dtype", INTS)
def test_integer_power_and_division_edges(target: str, pipeline: str | None, dtype: str) -> None:
    info = np.iinfo(dtype)
    base = np.array([3, -2, info.min, info.max, 2, -1, 0, 5], dtype)
    exps = np.array([40, 63, 2, 3, info.max, 7, 0, -1], dtype)
    module = _module(dtype, lambda v: op.power(v, fb_const(exps)))
    expected = [_wrapping_power(int(b), int(e), dtype) for b, e in zip(base, exps)]
    assert _run(module, target, pipeline, base).tolist() == expected
    num = np.array([info.min, info.min, info.max, -7, 7, 0], dtype)
    den = np.array([-1, 0, -1, 2, -2, 0], dtype)
    module = _module(dtype, lambda v: op.divide(v, fb_const(den)))
    want = [int(info.min), 0, -int(info.max), -4, -4, 0]  # floor division, x // 0 = 0, INT_MIN // -1 wraps
    assert _run(module, target, pipeline, num).tolist() == want


def fb_const(values: np.ndarray) -> Any:
    return rx.FunctionBuilder.current().const(values)


def _wrapping_power(b: int, e: int, dtype: str) -> int:
    if e < 0:
        return 1 if b == 1 else (1 if e % 2 == 0 else -1) if b == -1 else 0
    bits = np.iinfo(dtype).bits
    v = pow(b, e, 1 << bits)
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


# --- shifts: numpy's semantics for every amount ----------------------------------


def _shift_program(kind: type, dtype: str) -> ModuleOp:
    from relax_xdsl.passes.lower_tir import LowerTIRPass

    from relax_xdsl.ir import make_context
    from relax_xdsl.tir_builder import PrimFuncBuilder

    pb = PrimFuncBuilder("shift", [("a", ["n"], dtype), ("b", ["n"], dtype), ("out", ["n"], dtype)])
    a, b, out = pb.params
    pb.compute(out, lambda i: pb.emit(kind(a[i].value, b[i].value)))
    module = ModuleOp([pb.finish()])
    LowerTIRPass().apply(make_context(), module)
    return module


@pytest.mark.parametrize("target", ["interp", "c"])
@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize(("kind", "reference"), [(arith.ShLIOp, np.left_shift), (arith.ShRSIOp, np.right_shift)],
                         ids=["shl", "shr"])
def test_shifts_defined_for_every_amount(target: str, dtype: str, kind: type, reference: Any) -> None:
    """C's shifts are undefined below 0 and from the width on; numpy gives 0
    (left) or the sign (right) there."""
    from relax_xdsl.backend.c import CModule
    from relax_xdsl.backend.interp import InterpModule

    info = np.iinfo(dtype)
    amounts = [0, 1, 7, 8, 31, 32, 63, 64, 100, -1, -2, info.max, info.min]
    values = [5, -5, 1, info.min, info.max]
    a = np.array([v for v in values for _ in amounts], dtype)
    b = np.array([s for _ in values for s in amounts], dtype=np.int64).astype(dtype)  # 100 wraps in int8
    out = np.zeros_like(a)
    module = _shift_program(kind, dtype)
    backend = InterpModule(module) if target == "interp" else CModule(module)
    backend.call("shift", [a, b, out])
    assert out.tolist() == reference(a, b).tolist()


# --- float -> int casts ------------------------------------------------------------

_SPECIAL = [np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -1e20, 200.0, -200.0, 127.9, -128.9, 2.5, -2.5, 0.0]


def _saturated(values: list[float], dtype: str) -> list[int]:
    info = np.iinfo(dtype)
    out = []
    for v in values:
        if np.isnan(v):
            out.append(0)
        elif v >= info.max + 1:
            out.append(int(info.max))
        elif v < info.min:
            out.append(int(info.min))
        else:
            out.append(int(v))
    return out


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("src", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dst", INTS)
def test_float_to_int_saturates(target: str, pipeline: str | None, src: str, dst: str) -> None:
    """NaN -> 0, beyond the type -> its min / max, else truncation toward zero."""
    with np.errstate(over="ignore"):
        x = np.array(_SPECIAL, src)
    out = _run(_module(src, lambda v: op.astype(v, dst)), target, pipeline, x)
    assert out.dtype == np.dtype(dst)
    assert out.tolist() == _saturated([float(v) for v in x], dst)


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
def test_float_to_int64_at_two_to_the_63(target: str, pipeline: str | None) -> None:
    x = np.array([2.0**63, -(2.0**63), np.nextafter(2.0**63, 0), 2.0**64], np.float64)
    out = _run(_module("float64", lambda v: op.astype(v, "int64")), target, pipeline, x)
    assert out.tolist() == [2**63 - 1, -(2**63), int(np.nextafter(2.0**63, 0)), 2**63 - 1]


# --- float16 accumulates in float32 ------------------------------------------------


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
def test_float16_sum_of_4096_ones(target: str, pipeline: str | None) -> None:
    """In float16, 2048 + 1 rounds back to 2048."""
    x = np.ones((2, 4096), np.float16)
    out = _run(_module("float16", lambda v: op.sum(v, axis=[1]), ["b", 4096]), target, pipeline, x)
    assert out.dtype == np.float16 and out.tolist() == [4096.0, 4096.0]
    total = _run(_module("float16", lambda v: op.sum(v), ["b", 4096]), target, pipeline, x)
    assert total.dtype == np.float16 and float(total) == 8192.0
    mean = _run(_module("float16", lambda v: op.mean(v, axis=[1]), ["b", 4096]), target, pipeline, x)
    assert mean.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
def test_float16_matmul_accumulates_in_float32(target: str, pipeline: str | None) -> None:
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["m", 4096], "float16")
        b = fb.param("b", [4096, 3], "float16")
        fb.ret(op.matmul(a, b))
    out = _run(fb.module, target, pipeline, np.ones((2, 4096), np.float16), np.ones((4096, 3), np.float16))
    assert out.dtype == np.float16 and out.tolist() == [[4096.0] * 3] * 2


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
def test_float16_norms_match_float32(target: str, pipeline: str | None) -> None:
    """layer_norm and softmax over a long float16 row: float32 statistics."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 4096)) + 8.0).astype(np.float16)
    with rx.FunctionBuilder("main") as fb:
        v = fb.param("x", ["b", 4096], "float16")
        g = fb.const(np.ones(4096, np.float16))
        z = fb.const(np.zeros(4096, np.float16))
        fb.ret(op.add(op.nn.layer_norm(v, g, z, axes=[-1]), op.nn.softmax(v, axis=-1)))
    out = _run(fb.module, target, pipeline, x).astype(np.float32)
    xf = x.astype(np.float32)
    norm = (xf - xf.mean(-1, keepdims=True)) / np.sqrt(xf.var(-1, keepdims=True) + 1e-5)
    soft = np.exp(xf - xf.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, norm + soft, atol=2e-2, rtol=1e-2)


# --- bool inputs: any nonzero byte is True -----------------------------------------


def _bool_byte_two() -> np.ndarray:
    return np.array([2, 0, 1, 255], np.uint8).view(np.bool_)


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
def test_bool_byte_two_is_true(target: str, pipeline: str | None) -> None:
    module = _module("bool", lambda v: op.astype(v, "float32"))
    out = _run(module, target, pipeline, _bool_byte_two())
    assert out.tolist() == [1.0, 0.0, 1.0, 1.0]
    ints = _run(_module("bool", lambda v: op.astype(v, "int32")), target, pipeline, _bool_byte_two())
    assert ints.tolist() == [1, 0, 1, 1]


@pytest.mark.parametrize("path", ["entry", "ctypes", "interp"])
def test_bool_byte_two_on_each_call_path(path: str) -> None:
    """The CPython entry point, the ctypes path (backend.call directly) and
    the interpreter backend each normalise bool buffers."""
    module = _module("bool", lambda v: op.astype(v, "float32"), [4])
    exe = rx.compile(module, target="interp" if path == "interp" else "c")
    x = _bool_byte_two()
    if path == "entry":
        out = exe["main"](x)
    else:
        out = exe.backend.call("main", [x])[0]
    assert out.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert x.view(np.uint8).tolist() == [2, 0, 1, 255]  # the caller's array is left as it is


# --- max / argmax over an empty axis -------------------------------------------------


@pytest.mark.parametrize(("target", "pipeline"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_empty_axis_extreme_is_an_error(target: str, pipeline: str | None, name: str) -> None:
    """No value exists (numpy and ONNX refuse too); C returned -inf / INT64_MAX."""
    fn = getattr(op, name)
    module = _module("float32", lambda v: fn(v, axis=0), ["n - 1", 3])
    with pytest.raises(ShapeError, match=rf"relax\.{name}.* empty axis"):
        _run(module, target, pipeline, np.zeros((0, 3), np.float32))
    ok = _run(module, target, pipeline, np.array([[1, 5, 2], [4, 0, 3]], np.float32))
    expected = getattr(np, name)(np.array([[1, 5, 2], [4, 0, 3]], np.float32), axis=0)
    assert ok.tolist() == expected.tolist()


@pytest.mark.parametrize("name", ["max", "argmax"])
def test_static_empty_axis_fails_at_build_time(name: str) -> None:
    with pytest.raises(ShapeError, match=rf"relax\.{name}: reducing over an empty axis"):
        _module("float32", lambda v: getattr(op, name)(v, axis=0), [0, 3])


def test_cflags_keep_wrapping() -> None:
    """-fwrapv is added to caller-chosen flags too (and so to the cache key)."""
    from relax_xdsl.backend.c import CModule

    loops = rx.lower(_module("int32", lambda v: op.greater(op.add(v, 1), v)))
    backend = CModule(loops, cflags=("-O2", "-fPIC", "-shared", "-std=gnu11", "-fopenmp"))
    assert "-fwrapv" in backend.flags
    assert backend.call("main", [np.array([2**31 - 1], np.int32)])[0].tolist() == [False]
