"""fuse-ops: injective producers fused into their single consumer, with no
intermediate buffer, at every level; what must not fuse does not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.dialects.relax import CallTIROp, GraphOp
from relax_xdsl.dialects.tir import AllocOp, PrimFuncOp
from relax_xdsl.passes.fuse_ops import fuse_module
from util import assert_close, check_levels, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.models import cnn, mlp, transformer_block


def build(body: Any, *specs: tuple[list[Any], str]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(body(*[fb.param(f"a{i}", s, d) for i, (s, d) in enumerate(specs)]))
    return fb.module


def programs(module: Any) -> list[PrimFuncOp]:
    return [o for o in module.body.ops if isinstance(o, PrimFuncOp)]


def test_elementwise_chain_becomes_one_program_without_intermediates() -> None:
    module = build(lambda x, b: op.nn.gelu(op.add(op.exp(x), b)), (["n", 4], "float32"), ([4], "float32"))
    fused = roundtrip(fuse_module(module.clone()))
    (prog,) = programs(fused)
    assert prog.attributes["relax.fused"].data == "exp,add,gelu"  # type: ignore[attr-defined]
    assert not any(isinstance(o, AllocOp) for o in prog.walk())
    assert not any(isinstance(o, GraphOp) for o in fused.walk())
    cases = [(rand((n, 4), seed=n), rand((4,), seed=9)) for n in (1, 3, 7)]
    check_levels(fused, cases)
    for args in cases:
        assert_close(rx.evaluate(fused, "main", *args), rx.evaluate(module, "main", *args))


def test_broadcast_producer_into_a_reduction_consumer() -> None:
    module = build(lambda x: op.nn.softmax(op.multiply(x, 0.5), axis=-1), (["n", "m"], "float32"))
    fused = fuse_module(module.clone())
    (call,) = [o for o in fused.walk() if isinstance(o, CallTIROp)]
    assert call.callee.root_reference.data.startswith("fused_softmax_multiply")
    check_levels(fused, [(rand((n, m), seed=n),) for n, m in ((1, 1), (3, 5), (7, 2))])


def test_producer_fused_into_a_split() -> None:
    """A tuple-valued root (split) with a fused producer keeps its tuple result."""
    def body(x: rx.Var) -> rx.Var:
        parts = op.split(op.multiply(x, 2.0), [1, 3], axis=1)
        return op.add(parts[0], parts[2])

    module = build(body, (["n", 4], "float32"))
    fused = roundtrip(fuse_module(module.clone()))
    assert any(p.attributes["relax.fused"].data == "multiply,split" for p in programs(fused))  # type: ignore[attr-defined]
    check_levels(fused, [(rand((n, 4), seed=n),) for n in (1, 3, 7)])


def test_injective_chain_reads_through_index_maps() -> None:
    module = build(lambda x: op.exp(op.permute_dims(op.reshape(op.negative(x), ["b", "t", 2, 4]), [0, 2, 1, 3])),
                   (["b", "t", 8], "float32"))
    fused = fuse_module(module.clone())
    assert len(programs(fused)) == 1
    check_levels(fused, [(rand((b, t, 8), seed=b),) for b, t in ((1, 1), (2, 3))])


def test_what_must_not_fuse() -> None:
    # a producer with two uses stays on its own
    module = build(_two_uses, (["n"], "float32"))
    fused = fuse_module(module.clone())
    assert any(isinstance(o, GraphOp) and o.SPEC.name == "exp" for o in fused.walk())
    # a producer whose shape rule assumed [n] == [m] stays on its own (its program checks it)
    module = build(lambda a, b: op.exp(op.add(a, b)), (["n"], "float32"), (["m"], "float32"))
    fused = fuse_module(module.clone())
    assert any(isinstance(o, GraphOp) and o.SPEC.name == "add" for o in fused.walk())
    # a reduction is no producer for a consumer that is not elementwise
    module = build(lambda x: op.nn.softmax(op.sum(x, axis=[1]), axis=0), (["n", 3], "float32"))
    assert not programs(fuse_module(module.clone()))


def _two_uses(x: rx.Var) -> rx.Var:
    e = op.exp(x)
    return op.add(e, op.negative(e))


def test_models_on_the_fast_pipeline() -> None:
    from relax_xdsl.passes.offload import auto_dense_library

    dense = "rx_dnnl_dense_2x2_bias_relu" if auto_dense_library() == "dnnl" else "rx_blas_packed_dense_2x2_bias_relu"
    for model, sizes, marker in ((mlp(), [(1,), (4,)], dense),
                                 (cnn(), [(1,), (2,)], "rx_dnnl_conv2d_nhwc_cw_1_1_1_1_1_1_1_1_1_bias4_relu"),
                                 (transformer_block(), [(1, 1), (2, 7)], "fused_")):
        exe = rx.compile(model.module, target="c", pipeline="fast")
        assert marker in exe.c_source
        for size in sizes:
            inputs = model.make_inputs(*size)
            assert_close(exe.main(*inputs), model.numpy_fn(*inputs).astype(np.float32))
    small = transformer_block(d=8, heads=2, ff=16)
    exe = rx.compile(small.module, target="interp", pipeline="fast")
    inputs = small.make_inputs(2, 3)
    assert_close(exe.main(*inputs), rx.evaluate(small.module, "main", *inputs))


def test_elementwise_epilogue_fused_into_conv_and_reductions() -> None:
    module = build(lambda x, w, b: op.nn.relu(op.add(op.nn.conv2d(x, w, padding=(1, 1)), b)),
                   (["n", 2, "h", "h"], "float32"), ([3, 2, 3, 3], "float32"), ([1, 3, 1, 1], "float32"))
    fused = roundtrip(fuse_module(module.clone()))
    (prog,) = programs(fused)
    assert prog.attributes["relax.fused"].data == "conv2d,add,relu"  # type: ignore[attr-defined]
    assert not any(isinstance(o, AllocOp) for o in prog.walk())
    check_levels(fused, [(rand((n, 2, h, h), seed=n), rand((3, 2, 3, 3), seed=1), rand((1, 3, 1, 1), seed=2))
                         for n, h in ((1, 1), (2, 4))])
    # a reduction followed by elementwise ops of its own shape: one program
    module = build(lambda x: op.sqrt(op.abs(op.sum(x, axis=[1]))), (["n", "m"], "float32"))
    fused = fuse_module(module.clone())
    assert len(programs(fused)) == 1
    check_levels(fused, [(rand((n, m), seed=n),) for n, m in ((1, 1), (3, 4))])
    # ... but not when the consumer broadcasts it (its elements would be recomputed)
    module = build(lambda x: op.subtract(x, op.sum(x, axis=[1], keepdims=True)), (["n", "m"], "float32"))
    fused = fuse_module(module.clone())
    assert any(isinstance(o, GraphOp) and o.SPEC.name == "sum" for o in fused.walk())


def test_custom_fusion_rules_and_op_patterns_from_user_code() -> None:
    from relax_xdsl.passes import fuse_ops

    def body(x: rx.Var) -> rx.Var:
        return op.sum(op.exp(op.negative(x)), axis=[1])

    module = build(body, (["n", 4], "float32"))
    cases = [(rand((n, 4), seed=n),) for n in (1, 3)]
    (prog,) = programs(fuse_module(module.clone()))
    assert prog.attributes["relax.fused"].data == "negative,exp,sum"  # type: ignore[attr-defined]

    # a rule that keeps exp out of every group (None: default for the rest)
    def no_exp(producer: Any, consumer: Any) -> bool | None:
        return False if producer.SPEC.name == "exp" else None

    fuse_ops.register_fusion_rule(no_exp)
    try:
        fused = fuse_module(module.clone())
        assert [p.attributes["relax.fused"].data for p in programs(fused)] == ["negative,exp"]  # type: ignore[attr-defined]
        check_levels(fused, cases, levels=("legalized", "c"))
    finally:
        fuse_ops.unregister_fusion_rule(no_exp)

    # an op marked opaque is never absorbed
    fuse_ops.set_op_pattern("negative", "opaque")
    try:
        fused = fuse_module(module.clone())
        assert [p.attributes["relax.fused"].data for p in programs(fused)] == ["exp,sum"]  # type: ignore[attr-defined]
    finally:
        fuse_ops._PATTERN_OVERRIDES.pop("negative")  # noqa: SLF001

    # a rule forcing a producer the defaults refuse: matmul operands are not fused, unless a rule says so
    mm = build(lambda x, w: op.matmul(op.exp(x), w), (["n", 4], "float32"), ([4, 3], "float32"))
    assert programs(fuse_module(mm.clone())) == []
    rule = fuse_ops.register_fusion_rule(lambda p, c: True if c.SPEC.name == "matmul" else None)
    try:
        fused = fuse_module(mm.clone())
        assert [p.attributes["relax.fused"].data for p in programs(fused)] == ["exp,matmul"]  # type: ignore[attr-defined]
        check_levels(fused, [(rand((n, 4), seed=n), rand((4, 3), seed=5)) for n in (1, 3)], levels=("c",))
    finally:
        fuse_ops.unregister_fusion_rule(rule)
    with pytest.raises(rx.RelaxError, match="unknown pattern kind"):
        fuse_ops.set_op_pattern("exp", "weird")


def test_only_cheap_producers_are_recomputed_inside_row_ops() -> None:
    """softmax / layer_norm / rms_norm read their input once per pass over
    the row: an add is inlined into layer_norm, a gelu is not inlined into
    rms_norm (it would be computed three times per element)."""
    g = np.linspace(0.5, 1.5, 8, dtype=np.float32)

    def body(x: Any, y: Any) -> Any:
        ln = op.nn.layer_norm(op.add(x, y), rx.FunctionBuilder.current().const(g),
                              rx.FunctionBuilder.current().const(g), axes=[-1])
        return op.nn.rms_norm(op.nn.gelu(ln), rx.FunctionBuilder.current().const(g), axes=[-1])

    module = build(body, (["n", 8], "float32"), (["n", 8], "float32"))
    fused = roundtrip(fuse_module(module.clone()))
    kinds = sorted(p.attributes["relax.fused"].data for p in programs(fused) if "relax.fused" in p.attributes)
    assert kinds == ["add,layer_norm"], kinds
    cases = [(rand((n, 8), seed=n), rand((n, 8), seed=9)) for n in (1, 3)]
    check_levels(fused, cases)
