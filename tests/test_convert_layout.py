"""convert-layout (passes/convert_layout.py): float32 convolutions go
channels last (NHWC) for oneDNN and the data stays NHWC from conv to conv;
the NHWC conv2d op itself (shape rule, reference, legalization) and the
NHWC oneDNN library functions, against the NCHW reference at a symbolic
batch bound to 0, 1 and 3."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from relax_xdsl.dialects.relax import GraphOp
from relax_xdsl.passes.convert_layout import convert_layout
from relax_xdsl.passes.offload import offload_module
from test_dnnl_offload import KINDS, cases, conv_module, fallbacks
from util import assert_close, check_levels, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import dnnl, op
from relax_xdsl.backend.c import DEFAULT_FLAGS

pytestmark = pytest.mark.skipif(not dnnl.available(), reason="oneDNN is not installed")



def ops_named(module: Any, name: str) -> list[GraphOp]:
    return [o for o in module.walk() if isinstance(o, GraphOp) and o.SPEC.name == name]


def nhwc_module(kind: str, epilogue: str = "") -> Any:
    """An NHWC conv2d as a user writes it (data [n, 7, 6, c]), + a (1, 1, 1, o) bias [+ relu | relu6]."""
    return conv_module(kind, epilogue, layout="NHWC")


def nhwc_cases(kind: str, epilogue: str = "") -> list[tuple[np.ndarray, ...]]:
    return cases(kind, epilogue, layout="NHWC")


@pytest.mark.parametrize("kind", ["groups1", "groups2", "depthwise-x2", "dilation-2x1-groups2", "strides-2x1-asym",
                                  "asym-depthwise", "pointwise-strides2"])
def test_nhwc_conv2d_is_the_nchw_one_transposed(kind: str) -> None:
    """The shape rule, reference and generated code of data_layout=NHWC:
    the NCHW convolution of the transposed data, transposed back. Generated
    code: C on the baseline pipeline (no library), and for one small kind
    the legalized program run by the interpreter (about 0.3 ms per scalar
    operation, so only batches 0 and 1)."""
    module = nhwc_module(kind)
    c, o, kernel, strides, padding, dilation, groups = KINDS[kind]
    (conv,) = ops_named(module, "conv2d")
    out = conv.res.type
    assert str(out.sym_shape[0]) == "n" and int(out.sym_shape[3]) == o  # type: ignore[union-attr]
    cases = nhwc_cases(kind)
    for x, w in cases:
        want = op_reference_nchw(x.transpose(0, 3, 1, 2), w, strides, padding, dilation, groups).transpose(0, 2, 3, 1)
        assert_close(rx.evaluate(module, "main", x, w), want)
    exe = rx.compile(module, target="c", pipeline="baseline")
    for a in cases:
        assert_close(exe.main(*a), rx.evaluate(module, "main", *a))
    if kind == "asym-depthwise":
        check_levels(module, cases[:2], levels=("legalized",))


def op_reference_nchw(x: np.ndarray, w: np.ndarray, strides: Any, padding: Any, dilation: Any, groups: int) -> Any:
    from relax_xdsl.ops.registry import get_spec

    return get_spec("conv2d").reference(x, w, strides=strides, padding=padding, dilation=dilation, groups=groups,
                                        data_layout="NCHW", kernel_layout="OIHW", out_dtype=None)


@pytest.mark.parametrize("epilogue", ["", "bias", "bias_relu", "bias_relu6"])
@pytest.mark.parametrize("kind", ["groups1", "depthwise", "dilation-2x1-groups2", "strides-2x1-asym", "pointwise",
                                  "pointwise-groups4"])
def test_nhwc_conv_is_one_dnnl_call(kind: str, epilogue: str) -> None:
    """offload sends an NHWC conv (and its (1, 1, 1, o) bias, relu / relu6) to
    one `dnnl.conv2d_nhwc` call, which oneDNN computes (no fallback)."""
    module = nhwc_module(kind, epilogue)
    offloaded = roundtrip(offload_module(module.clone()))
    text = rx.print_module(offloaded)
    assert text.count("lib.call @dnnl_conv2d_nhwc_") == 1 and "relax." + "conv2d" not in text
    assert "relax.add" not in text and "relax.relu" not in text and "relax.clip" not in text
    args = nhwc_cases(kind, epilogue)
    check_levels(offloaded, args, levels=("interp",))
    exe = rx.compile(offloaded, target="c")
    for a in args:
        assert_close(exe.main(*a), rx.evaluate(module, "main", *a))
    assert fallbacks(exe) == 0


@pytest.mark.parametrize("kind", ["groups1", "depthwise", "strides-2x1-asym"])
def test_nhwc_direct_fallback_when_dnnl_refuses(kind: str) -> None:
    """The direct loops that stand in when oneDNN refuses a convolution read and write NHWC too."""
    from relax_xdsl.backend.c import CModule

    module = nhwc_module(kind, "bias_relu6")
    lib = CModule(rx.lower(offload_module(module.clone()), "default"), cflags=(*DEFAULT_FLAGS, "-DRX_TEST_DNNL_DIRECT"))
    for args in nhwc_cases(kind, "bias_relu6"):
        (got,) = lib.call("main", list(args))
        assert_close(got, rx.evaluate(module, "main", *args))
    assert lib.lib.rx_dnnl_fallbacks() == 2  # batches 1 and 3 (batch 0 writes nothing)


def small_cnn() -> tuple[Any, list[tuple[np.ndarray, ...]]]:
    """conv -> bias (a rank-3 constant) -> relu -> depthwise conv -> + residual -> relu6, then a concat with
    another conv along the channels, a per-channel bias parameter, a scalar multiply, a max-pool, a last
    conv, then both a global average pool to [n, 4] (mean without keepdims) and an average pool beside it."""
    rng = np.random.default_rng(0)
    with rx.FunctionBuilder("main") as fb:

        def const(*shape: int) -> Any:
            return fb.const(rng.standard_normal(shape).astype(np.float32) * 0.5)

        x = fb.param("x", ["n", 3, "h", "h"], "float32")
        b = fb.param("b", [1, 12, 1, 1], "float32")
        a = op.nn.relu(op.add(op.nn.conv2d(x, const(6, 3, 3, 3), padding=(1, 1)), const(6, 1, 1)))
        d = op.nn.conv2d(a, const(6, 1, 3, 3), padding=(1, 1), groups=6)
        r = op.clip(op.add(d, a), 0.0, 6.0)
        j = op.concat([r, op.nn.conv2d(a, const(6, 6, 1, 1))], axis=1)
        s = op.multiply(op.add(j, b), fb.const(np.float32(0.5)))
        p = op.nn.max_pool2d(s, pool_size=(2, 2), strides=(2, 2))
        y = op.nn.conv2d(p, const(4, 12, 1, 1))
        fb.ret(fb.tuple(op.mean(y, axis=[2, 3]), op.nn.avg_pool2d(y, pool_size=(2, 2), padding=(1, 1))))
    cases = [(rand((n, 3, h, h), seed=n), rand((1, 12, 1, 1), seed=7)) for n, h in ((0, 4), (1, 6), (3, 5))]
    return fb.module, cases


def test_data_stays_nhwc_between_convs() -> None:
    """Every conv and pool of the small CNN runs NHWC; the data is
    transposed only into the first conv and out of the average pool; the
    bias parameter is permuted where it is added; the global mean needs no
    transpose."""
    module, cases = small_cnn()
    converted = roundtrip(convert_layout(module.clone()))
    convs = ops_named(converted, "conv2d")
    assert len(convs) == 4 and all(c.attributes["data_layout"].data == "NHWC" for c in convs)  # type: ignore[attr-defined]
    assert len(ops_named(converted, "permute_dims")) == 3  # x in, the bias in, the average pool's result out
    assert all(p.SPEC.decode_params(dict(p.attributes))["layout"] == "NHWC"
               for p in ops_named(converted, "max_pool2d") + ops_named(converted, "avg_pool2d"))
    (mean,) = ops_named(converted, "mean")
    assert list(mean.SPEC.decode_params(dict(mean.attributes))["axis"]) == [1, 2]
    (cat,) = ops_named(converted, "concat")
    assert cat.SPEC.decode_params(dict(cat.attributes))["axis"] == 3
    for args in cases:
        assert_close(rx.evaluate(converted, "main", *args), rx.evaluate(module, "main", *args))
    check_levels(module, cases, levels=("c",))


def test_local_response_norm_runs_nhwc_between_convs() -> None:
    """AlexNet's block (conv, relu, LRN, max pool, conv): the LRN runs on the
    NHWC data over axis 3, so the only transposes are into the first conv
    and out of the last; an LRN over another axis stays where it was."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3, "h", "h"], "float32")
        y = op.nn.relu(op.nn.conv2d(x, fb.const(rand((8, 3, 3, 3), seed=1)), padding=1))
        y = op.nn.local_response_norm(y, size=5, alpha=1e-2, beta=0.75, bias=1.0)
        y = op.nn.conv2d(op.nn.max_pool2d(y, pool_size=(2, 2), strides=(2, 2)), fb.const(rand((4, 8, 1, 1), seed=2)))
        fb.ret(fb.tuple(y, op.nn.local_response_norm(y, size=3, axis=2)))
    converted = roundtrip(convert_layout(fb.module.clone()))
    lrns = ops_named(converted, "local_response_norm")
    assert [lrn.SPEC.decode_params(dict(lrn.attributes))["axis"] for lrn in lrns] == [3, 2]
    assert len(ops_named(converted, "permute_dims")) == 2  # x in, the last conv's result out
    cases = [(rand((n, 3, h, h), seed=n),) for n, h in ((0, 4), (1, 6), (3, 5))]
    for args in cases:
        assert_close(rx.evaluate(converted, "main", *args), rx.evaluate(fb.module, "main", *args))
    check_levels(fb.module, cases, levels=("c",))

@pytest.mark.parametrize("pool", ["max", "avg", "avg_include_pad"])
@pytest.mark.parametrize(("size", "strides", "padding", "ceil"), [
    ((2, 2), (2, 2), (0, 0), False), ((3, 3), (2, 1), (1, 0, 1, 2), True), ((3, 2), (1, 1), (1, 1), False)])
def test_nhwc_pools_are_the_nchw_ones_transposed(pool: str, size: Any, strides: Any, padding: Any,
                                                 ceil: bool) -> None:
    """max_pool2d / avg_pool2d with layout=NHWC: reference and generated code (C, baseline) against the
    NCHW op on the transposed data, padded and ceil-mode windows included."""
    kwargs = dict(pool_size=size, strides=strides, padding=padding, ceil_mode=ceil)
    if pool == "avg_include_pad":
        kwargs["count_include_pad"] = True
    fn = op.nn.max_pool2d if pool == "max" else op.nn.avg_pool2d
    modules = []
    for layout, shape in (("NCHW", ["n", 3, "h", "w"]), ("NHWC", ["n", "h", "w", 3])):
        with rx.FunctionBuilder("main") as fb:
            fb.ret(fn(fb.param("x", shape, "float32"), layout=layout, **kwargs))
        modules.append(fb.module)
    exe = rx.compile(modules[1], target="c", pipeline="baseline")
    for n, h, w in ((0, 5, 5), (1, 1, 2), (2, 6, 7)):
        x = rand((n, h, w, 3), seed=h)
        want = np.asarray(rx.evaluate(modules[0], "main", x.transpose(0, 3, 1, 2))).transpose(0, 2, 3, 1)
        assert_close(rx.evaluate(modules[1], "main", x), want)
        assert_close(exe.main(x), want)


def test_what_stays_nchw() -> None:
    """Not converted: a float64 conv, a grouped conv whose channels are
    symbolic (oneDNN does not get it), and an elementwise op whose other
    operand is a full NCHW value (its NHWC form would be a whole transpose)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, 5, 5], "float64")
        fb.ret(op.nn.conv2d(x, fb.param("w", [3, 2, 3, 3], "float64")))
    assert not ops_named(convert_layout(fb.module.clone()), "permute_dims")
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", "c", 5, 5], "float32")
        fb.ret(op.nn.conv2d(x, fb.param("w", ["c", 1, 3, 3], "float32"), groups=2))
    assert not ops_named(convert_layout(fb.module.clone()), "permute_dims")
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, 5, 5], "float32")
        y = op.nn.conv2d(x, fb.param("w", [2, 2, 1, 1], "float32"))
        fb.ret(op.add(y, fb.param("z", ["n", 2, 5, 5], "float32")))
    converted = convert_layout(fb.module.clone())
    (add,) = ops_named(converted, "add")
    assert add.res.type.sym_shape[1] == 2  # type: ignore[union-attr]  # still NCHW
    args = (rand((3, 2, 5, 5), seed=1), rand((2, 2, 1, 1), seed=2), rand((3, 2, 5, 5), seed=3))
    assert_close(rx.evaluate(converted, "main", *args), rx.evaluate(fb.module, "main", *args))
    # an op refused at its last operand leaves nothing behind for the ones before (the per-channel condition)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, 5, 5], "float32")
        y = op.nn.conv2d(x, fb.param("w", [2, 2, 1, 1], "float32"))
        fb.ret(op.where(fb.param("c", [1, 2, 1, 1], "bool"), y, fb.param("z", ["n", 2, 5, 5], "float32")))
    perms = ops_named(convert_layout(fb.module.clone()), "permute_dims")
    assert [p.inputs[0].name_hint for p in perms] == ["x", None]  # x into the conv, its result back out


def test_without_dnnl_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    module, _ = small_cnn()
    monkeypatch.setattr(dnnl, "available", lambda: False)
    assert rx.print_module(convert_layout(module.clone())) == rx.print_module(module)


def test_a_splat_operand_stays_one_value() -> None:
    """A splat constant added to a conv's result (fold-constants makes them
    from exported fills) is permuted as its one value, never expanded."""
    from relax_xdsl.dialects.relax import ConstantOp, stored_elements
    from relax_xdsl.passes.fold_constants import fold_constants

    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3, 5, 5], "float32")
        y = op.nn.conv2d(x, fb.const(rand((8, 3, 1, 1), seed=4)))
        fb.ret(op.add(y, op.full(shape=[1, 8, 5, 5], fill_value=0.5, dtype="float32")))
    module = fb.module
    converted = roundtrip(convert_layout(fold_constants(module.clone())))
    (add,) = ops_named(converted, "add")
    splat = add.inputs[1].owner
    assert isinstance(splat, ConstantOp) and stored_elements(splat.value).size == 1
    assert [int(d) for d in splat.result.type.sym_shape] == [1, 5, 5, 8]
    for n in (0, 2):
        args = (rand((n, 3, 5, 5), seed=n),)
        assert_close(rx.evaluate(converted, "main", *args), rx.evaluate(module, "main", *args))
