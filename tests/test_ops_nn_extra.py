"""The N-d window ops (conv_nd, pool_nd, conv_transpose_nd): symbolic shape
rules and errors, references against independent implementations (the 2-d
ops' references, a naive scatter loop), and every level (legalized, interp,
C) with symbolic dims bound to several sizes including 1."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from util import SIZES, assert_close, check_levels, rand
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import OUT_FUSIBLE, get_spec
from relax_xdsl.shape import dim_to_str

Spec = tuple[str, Sequence[int | str], str]


def build(params: Sequence[Spec], body: Callable[..., rx.Var]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        args = [fb.param(name, shape, dtype) for name, shape, dtype in params]
        fb.ret(body(*args))
    return fb.module


def out_shape(params: Sequence[Spec], body: Callable[..., rx.Var]) -> list[str]:
    with rx.FunctionBuilder("main") as fb:
        v = body(*[fb.param(name, shape, dtype) for name, shape, dtype in params])
        fb.ret(v)
    return [dim_to_str(d) for d in v.type.sym_shape]


def naive_conv_transpose(x: np.ndarray, w: np.ndarray, strides: Sequence[int], pads: Sequence[int],
                         out_pad: Sequence[int], dil: Sequence[int], groups: int) -> np.ndarray:
    """Scatter form, float64 loops: each input element adds w * x to the outputs it reaches."""
    k = x.ndim - 2
    n, c = x.shape[:2]
    og = w.shape[1]
    cg = c // groups
    kernel = w.shape[2:]
    outs = [strides[i] * (x.shape[2 + i] - 1) + out_pad[i] + dil[i] * (kernel[i] - 1) + 1 - pads[i] - pads[k + i]
            for i in range(k)]
    out = np.zeros((n, og * groups, *outs))
    for b, ch in itertools.product(range(n), range(c)):
        g = ch // cg
        for pos in itertools.product(*(range(s) for s in x.shape[2:])):
            for tap in itertools.product(*(range(t) for t in kernel)):
                y = [pos[i] * strides[i] + tap[i] * dil[i] - pads[i] for i in range(k)]
                if all(0 <= y[i] < outs[i] for i in range(k)):
                    for o in range(og):
                        out[(b, g * og + o, *y)] += x[(b, ch, *pos)] * w[(ch, o, *tap)]
    return out.astype(x.dtype)


# --- shape rules ------------------------------------------------------------------------


def test_conv_nd_symbolic_shape() -> None:
    shape = out_shape([("x", ["n", 4, "d", "h", 6], "float32"), ("w", [6, 2, 3, 3, 1], "float32")],
                      lambda x, w: op.conv_nd(x, w, strides=[2, 1, 1], padding=[1, 0, 0, 1, 0, 0], groups=2))
    assert shape == ["n", "6", "(d - 1) floordiv 2 + 1", "h - 2", "6"]


def test_pool_nd_symbolic_shape_and_pattern() -> None:
    shape = out_shape([("x", ["n", 3, "w"], "float32")],
                      lambda x: op.pool_nd(x, kind="sum", pool_size=[3], strides=[2], padding=[1, 1], ceil_mode=True))
    assert shape == ["n", "3", "(w - 1) ceildiv 2 + 1"]
    assert get_spec("pool_nd").pattern == get_spec("conv_nd").pattern == OUT_FUSIBLE


def test_conv_transpose_nd_symbolic_shape() -> None:
    shape = out_shape([("x", ["n", 4, "h", "w"], "float32"), ("w", [4, 3, 3, 2], "float32")],
                      lambda x, w: op.conv_transpose_nd(x, w, strides=[2, 3], padding=[1, 0, 0, 1],
                                                        output_padding=[1, 0], dilation=[1, 2], groups=2))
    assert shape == ["n", "6", "2*h + 1", "3*w - 1"]


@pytest.mark.parametrize(("body", "message"), [
    (lambda x, w: op.conv_nd(x, w, strides=[1, 1]), "strides must have 1 or 3 ints"),
    (lambda x, w: op.conv_nd(x, w, groups=3), "not divisible by groups 3"),
    (lambda x, w: op.pool_nd(x, kind="median"), "kind 'median' is not one of"),
    (lambda x, w: op.pool_nd(x, pool_size=[9, 1, 1]), "smaller than the dilated window"),
    (lambda x, w: op.conv_transpose_nd(x, w, strides=[2], output_padding=[2]), "must be smaller than the stride"),
    (lambda x, w: op.conv_nd(op.squeeze(x, axis=[4]), w), "weight must have rank 4"),
])
def test_window_op_errors(body: Callable[..., rx.Var], message: str) -> None:
    with pytest.raises(rx.ShapeError, match=message):
        out_shape([("x", ["n", 4, 5, 5, 1], "float32"), ("w", [4, 4, 2, 2, 1], "float32")], body)


# --- references against independent implementations ----------------------------------


def test_conv_nd_reference_matches_conv2d() -> None:
    x, w = rand((2, 4, 7, 6)), rand((6, 2, 3, 2), seed=1)
    params = dict(strides=(2, 1), dilation=(1, 2), groups=2)
    got = get_spec("conv_nd").reference(x, w, padding=(1, 0, 2, 1), **params)
    want = get_spec("conv2d").reference(x, w, padding=(1, 0, 2, 1), data_layout="NCHW", kernel_layout="OIHW",
                                        out_dtype=None, **params)
    assert_close(got, want)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_nd_reference_matches_pool2d(kind: str, ceil_mode: bool) -> None:
    x = rand((2, 3, 7, 6))
    params = dict(pool_size=(3, 2), strides=(2, 2), dilation=(1, 2), ceil_mode=ceil_mode, count_include_pad=True)
    got = get_spec("pool_nd").reference(x, kind=kind, padding=(1, 0, 1, 1), **params)
    want = get_spec(f"{kind}_pool2d").reference(x, padding=(1, 0, 1, 1), layout="NCHW", **params)
    assert_close(got, want)


def test_conv_transpose_nd_reference_matches_scatter() -> None:
    x, w = rand((1, 4, 3, 4)), rand((4, 3, 3, 2), seed=1)
    got = get_spec("conv_transpose_nd").reference(x, w, strides=(2, 3), padding=(1, 0, 0, 1), output_padding=(1, 0),
                                                  dilation=(1, 2), groups=2)
    assert_close(got, naive_conv_transpose(x, w, (2, 3), (1, 0, 0, 1), (1, 0), (1, 2), 2))


# --- every level, symbolic dims bound to several sizes -------------------------------------


@pytest.mark.slow
def test_conv_nd_levels_3d() -> None:
    module = build([("x", ["n", 4, "d", 5, 4], "float32"), ("w", [6, 2, 2, 3, 1], "float32")],
                   lambda x, w: op.conv_nd(x, w, strides=[1, 2, 1], padding=[1, 0, 1, 1, 1, 0], dilation=[2, 1, 1],
                                           groups=2))
    w = rand((6, 2, 2, 3, 1), seed=9)
    check_levels(module, [(rand((n, 4, d, 5, 4), seed=n), w) for n, d in zip(SIZES, reversed(SIZES))])


@pytest.mark.parametrize("kind", ["max", "avg", "sum"])
def test_pool_nd_levels(kind: str) -> None:
    module = build([("x", ["n", 2, "d", 5, 3], "float32")],
                   lambda x: op.pool_nd(x, kind=kind, pool_size=[2, 3, 2], strides=[2, 1, 1], padding=[1, 1, 0, 0, 1, 1],
                                        ceil_mode=True))
    check_levels(module, [(rand((n, 2, d, 5, 3), seed=n),) for n, d in zip(SIZES, reversed(SIZES))])


def test_pool_nd_levels_int_max_1d() -> None:
    module = build([("x", ["n", 2, "w"], "int32")],
                   lambda x: op.pool_nd(x, kind="max", pool_size=[3], padding=[1, 1]))
    check_levels(module, [(rand((n, 2, w), "int32", seed=n),) for n, w in zip(SIZES, reversed(SIZES))])


@pytest.mark.slow
def test_conv_transpose_nd_levels() -> None:
    module = build([("x", ["n", 4, "h", 3], "float32"), ("w", [4, 3, 3, 2], "float32")],
                   lambda x, w: op.conv_transpose_nd(x, w, strides=[2, 3], padding=[1, 0, 0, 1], output_padding=[1, 0],
                                                     dilation=[1, 2], groups=2))
    w = rand((4, 3, 3, 2), seed=5)
    cases = [(rand((n, 4, h, 3), seed=n), w) for n, h in zip(SIZES, reversed(SIZES))]
    # the interpreter runs the gather's taps one scalar at a time: every level on the smallest case, C on all
    check_levels(module, [(rand((1, 4, 2, 3), seed=1), w)])
    check_levels(module, cases, levels=("c",))
    for x, wt in cases:
        assert_close(rx.evaluate(module, "main", x, wt), naive_conv_transpose(x, wt, (2, 3), (1, 0, 0, 1), (1, 0),
                                                                               (1, 2), 2))


def test_window_ops_fast_pipeline() -> None:
    """The `fast` pipeline (offload, fusion: a bias add joins the conv as its epilogue) keeps the N-d ops exact."""
    def body(x: rx.Var, w: rx.Var, b: rx.Var) -> rx.Var:
        y = op.relu(op.add(op.conv_nd(x, w, padding=[1]), b))
        return op.pool_nd(y, kind="avg", pool_size=[2], strides=[2])

    module = build([("x", ["n", 3, 4, 4, 4], "float32"), ("w", [5, 3, 3, 3, 3], "float32"),
                    ("b", [1, 5, 1, 1, 1], "float32")], body)
    exe = rx.compile(module, target="c", pipeline="fast")
    w, b = rand((5, 3, 3, 3, 3), seed=3), rand((1, 5, 1, 1, 1), seed=4)
    for n in SIZES:
        x = rand((n, 3, 4, 4, 4), seed=n)
        assert_close(exe["main"](x, w, b), rx.evaluate(module, "main", x, w, b))
