"""The legalize pass itself (ops' own legalizations are tested per family):
one program per op, parameters and shape signature, shared across symbol
names; index parameters for symbols no buffer binds; partial legalization;
tuple results; hand-written programs left alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.dialects.relax import CallTIROp, TensorType
from relax_xdsl.dialects.tir import PrimFuncOp
from relax_xdsl.passes.legalize import legalize_module
from util import assert_close, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import ELEMWISE, INJECTIVE, Infer, OpSpec, Param, register_op
from relax_xdsl.shape import sym
from relax_xdsl.tir_builder import Buffer, PrimFuncBuilder


@register_op
class ScaleByTest(OpSpec):
    """y = x * factor (a user-registered op)."""

    name = "test_scale_by"
    inputs = ("x",)
    params = {"factor": Param("float", 2.0)}
    pattern = ELEMWISE

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> TensorType:
        return x

    def reference(self, x: np.ndarray, factor: float) -> np.ndarray:
        return (x * np.float32(factor)).astype(x.dtype)

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer], factor: float) -> None:
        (x,), (out,) = inputs, outputs
        pb.compute(out, lambda *idx: x[idx] * factor)


@register_op
class PadOneTest(OpSpec):
    """[n] -> [n + 1]: a trailing zero. The program sees only `n + 1` and
    `n`... both dims are in its buffers, so `n` is bare."""

    name = "test_pad_one"
    inputs = ("x",)
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> TensorType:
        return TensorType.of([x.sym_shape[0] + 1], x.dtype)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, np.zeros(1, x.dtype)])

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer]) -> None:
        (x,), (out,) = inputs, outputs
        n = x.shape[0]
        pb.compute(out, lambda i: pb.if_then_else(i < pb.index(n), lambda: x[pb.min(i, pb.index(n - 1))], 0.0))


@register_op
class HalvesTest(OpSpec):
    """[2*n] -> ([n], [n]): a tuple result; `n` is bound by no buffer on its own."""

    name = "test_halves"
    inputs = ("x",)
    pattern = INJECTIVE

    def infer(self, ctx: Infer, x: TensorType, **params: Any) -> Any:
        from relax_xdsl.dialects.relax import TupleType

        half = x.sym_shape[0] / 2
        t = TensorType.of([half], x.dtype)
        return TupleType([t, t])

    def reference(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = x.shape[0] // 2
        return x[:h].copy(), x[h:].copy()

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer]) -> None:
        (x,), (lo, hi) = inputs, outputs
        n = lo.shape[0]
        pb.compute(lo, lambda i: x[i])
        pb.compute(hi, lambda i: x[i + pb.index(n)])


def programs(module: Any) -> list[PrimFuncOp]:
    return [o for o in module.body.ops if isinstance(o, PrimFuncOp)]


def test_one_program_per_signature_shared_across_symbol_names() -> None:
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n", 4], "float32")
        b = fb.param("b", ["m", 4], "float32")
        c = fb.param("c", ["m", 5], "float32")
        fb.ret(fb.tuple(op.test_scale_by(a), op.test_scale_by(b), op.test_scale_by(c),
                        op.test_scale_by(a, factor=3.0)))
    module = legalize_module(fb.module)
    progs = programs(module)
    assert len(progs) == 3  # [_, 4] x2 shared, [_, 5], factor=3
    calls = [o for o in module.walk() if isinstance(o, CallTIROp)]
    assert [c.callee.root_reference.data for c in calls][:2] == [progs[0].sym_name.data] * 2
    again = roundtrip(module)
    args = [rand((3, 4)), rand((2, 4), seed=1), rand((2, 5), seed=2)]
    assert_close(rx.evaluate(again, "main", *args), (args[0] * 2, args[1] * 2, args[2] * 2, args[0] * 3))


def test_symbols_not_bound_by_a_buffer_become_index_args() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [sym("n") * 2], "float32")
        fb.ret(op.test_pad_one(x))
    module = legalize_module(fb.module)
    (prog,) = programs(module)
    assert prog.sym_params is not None and [str(s) for s in prog.sym_params.data] == ["n"]
    (call,) = [o for o in module.walk() if isinstance(o, CallTIROp)]
    assert call.sym_args is not None and [str(s) for s in call.sym_args.data] == ["n"]
    again = roundtrip(module)
    for n in (1, 3):
        x = rand((2 * n,))
        assert_close(rx.evaluate(again, "main", x), np.concatenate([x, np.zeros(1, np.float32)]))


def test_tuple_results() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [sym("n") * 2], "float32")
        lo, hi = op.test_halves(x)
        fb.ret(fb.tuple(hi, lo))
    module = legalize_module(fb.module)
    (call,) = [o for o in module.walk() if isinstance(o, CallTIROp)]
    assert len(call.results) == 2
    again = roundtrip(module)
    for n in (1, 3):
        x = rand((2 * n,))
        assert_close(rx.evaluate(again, "main", x), (x[n:], x[:n]))


def test_partial_legalization_and_user_programs_left_alone() -> None:
    pb = PrimFuncBuilder("user_double", [("a", ["n"], "float32"), ("out", ["n"], "float32")])
    a, out = pb.params
    pb.compute(out, lambda i: a[i] + a[i])
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(pb.finish())
        x = fb.param("x", ["n"], "float32")
        y = fb.call_tir("user_double", [x], TensorType.of(["n"], "float32"))
        fb.ret(op.test_pad_one(op.test_scale_by(y)))
    module = legalize_module(fb.module, ["test_scale_by"])
    text = rx.print_module(module)
    assert "relax.test_pad_one" in text and "relax.test_scale_by" not in text
    assert text.count("tir.prim_func @user_double") == 1
    again = roundtrip(module)
    x = rand((3,))
    assert_close(rx.evaluate(again, "main", x), np.concatenate([x * 4, np.zeros(1, np.float32)]))
    legalize_module(again)
    assert "relax.test_pad_one" not in rx.print_module(again)
    assert_close(rx.evaluate(roundtrip(again), "main", x), np.concatenate([x * 4, np.zeros(1, np.float32)]))


def test_unknown_op_name_is_an_error() -> None:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(op.test_scale_by(fb.param("x", ["n"], "float32")))
    with pytest.raises(rx.RelaxError, match="no graph op named nope"):
        legalize_module(fb.module, ["nope"])


def test_pass_option_from_a_pipeline() -> None:
    from relax_xdsl.passes.pipelines import run_pipeline

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        fb.ret(op.test_pad_one(op.test_scale_by(x)))
    module = run_pipeline(fb.module, "legalize{ops=test_pad_one}")
    text = rx.print_module(module)
    assert "relax.test_scale_by" in text and "relax.test_pad_one" not in text
