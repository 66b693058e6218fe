"""The nn family at every level (reference evaluator, legalized programs,
interp, C): several parameter combinations per op, every symbol bound to
each size in SIZES (1 included). Shape rules and the references themselves
are tested against naive loops in test_ops_nn.py.

Also: the form of the generated tensor programs (reductions into local
buffers, padded loads guarded so nothing is read out of bounds), and the
runtime checks of shape assumptions (too-small inputs, channel groups)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from relax_xdsl.dialects.tir import AllocOp, ComputeOp, LoadOp, PrimFuncOp
from relax_xdsl.passes.legalize import legalize_module
from util import SIZES, check_levels, rand
from xdsl.dialects import scf
from xdsl.dialects.builtin import ModuleOp

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.shape import evaluate_dim, parse_dim_text, sym

Spec = tuple[Sequence[int | str], str]  # (shape, dtype) of one parameter
Env = dict[str, int]
F, F16, F64 = "float32", "float16", "float64"


def module(fn: Callable[..., rx.Var], specs: Sequence[Spec]) -> ModuleOp:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(fn(*[fb.param(f"a{i}", s, d) for i, (s, d) in enumerate(specs)]))
    return fb.module


def sizes(*names: str, **fixed: int) -> list[Env]:
    """One binding per size in SIZES, every named symbol taking that size."""
    return [{**dict.fromkeys(names, s), **fixed} for s in SIZES]


def pairs(a: str, b: str) -> list[Env]:
    """Two symbols taking every size, in opposite orders (1 with 7, 3 with 3, 7 with 1)."""
    return [{a: x, b: y} for x, y in zip(SIZES, reversed(SIZES))]


def concrete(shape: Sequence[int | str], env: Env) -> tuple[int, ...]:
    bindings = {sym(k): v for k, v in env.items()}
    return tuple(evaluate_dim(parse_dim_text(d) if isinstance(d, str) else d, bindings) for d in shape)


def inputs(specs: Sequence[Spec], env: Env, seed: int) -> tuple[np.ndarray, ...]:
    return tuple(rand(concrete(s, env), d, seed=seed + i) for i, (s, d) in enumerate(specs))


def bn_inputs(specs: Sequence[Spec], env: Env, seed: int) -> tuple[np.ndarray, ...]:
    """batch_norm operands with a positive moving variance."""
    x, g, b, m, v = inputs(specs, env, seed)
    return x, g, b, m, (np.abs(v) + 0.5).astype(v.dtype)


Case = tuple[str, Callable[..., rx.Var], list[Spec], list[Env]]

SOFTMAX: list[Case] = [
    ("softmax", lambda x: op.nn.softmax(x), [(["n", 5], F)], sizes("n")),
    ("softmax-axis0", lambda x: op.nn.softmax(x, axis=0), [(["n", "m"], F)], pairs("n", "m")),
    ("softmax-rank1", lambda x: op.nn.softmax(x, axis=0), [(["n"], F)], sizes("n")),
    ("softmax-f16-middle", lambda x: op.nn.softmax(x, axis=1), [([2, "n", 3], F16)], sizes("n")),
    ("log_softmax", lambda x: op.nn.log_softmax(x, axis=1), [([2, "n", 3], F)], sizes("n")),
    ("log_softmax-f64", lambda x: op.nn.log_softmax(x, axis=-2), [(["n", "m"], F64)], pairs("n", "m")),
]

NORMS: list[Case] = [
    # the window runs over the channels (symbolic, 1 included) past both ends; each exponent form of the epilogue
    ("local_response_norm", lambda x: op.nn.local_response_norm(x, size=5, alpha=0.3, beta=0.75, bias=1.0),
     [(["n", "c", 2, 3], F)], pairs("n", "c")),
    ("local_response_norm-even-last-axis", lambda x: op.nn.local_response_norm(x, size=2, axis=-1, beta=0.5, bias=2.0),
     [(["n", 3, "c"], F)], pairs("n", "c")),
    ("local_response_norm-beta1-rank2", lambda x: op.nn.local_response_norm(x, size=3, alpha=1.0, beta=1.0),
     [(["n", "c"], F)], pairs("n", "c")),
    ("local_response_norm-f64-powf", lambda x: op.nn.local_response_norm(x, size=4, alpha=0.5, beta=0.6, bias=0.5),
     [([2, "c", "n"], F64)], pairs("n", "c")),
    ("local_response_norm-f16-size1", lambda x: op.nn.local_response_norm(x, size=1, alpha=0.5),
     [(["n", "c", 2], F16)], pairs("n", "c")),
    ("layer_norm", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1]),
     [(["n", 6], F), ([6], F), ([6], F)], sizes("n")),
    ("layer_norm-2axes-nocenter", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[1, 2], center=False),
     [(["n", 2, 3], F), ([2, 3], F), ([2, 3], F)], sizes("n")),
    ("layer_norm-permuted-axes", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[2, 0]),
     [(["n", 2, "m"], F), (["m", "n"], F), (["m", "n"], F)], pairs("n", "m")),
    ("layer_norm-f16-noscale", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1], scale=False, epsilon=1e-2),
     [(["n", 6], F16), ([6], F16), ([6], F16)], sizes("n")),
    ("layer_norm-plain", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[0], scale=False, center=False),
     [(["n", 3], F), (["n"], F), (["n"], F)], sizes("n")),
    ("rms_norm", lambda x, w: op.nn.rms_norm(x, w, axes=[-1], epsilon=1e-3),
     [(["n", 6], F), ([6], F)], sizes("n")),
    ("rms_norm-2axes", lambda x, w: op.nn.rms_norm(x, w, axes=[0, 2]),
     [(["n", 2, "m"], F), (["n", "m"], F)], pairs("n", "m")),
    ("rms_norm-f64", lambda x, w: op.nn.rms_norm(x, w, axes=[1]),
     [(["n", "m"], F64), (["m"], F64)], pairs("n", "m")),
]

BATCH_NORM: list[Case] = [
    ("batch_norm", lambda x, g, b, m, v: op.nn.batch_norm(x, g, b, m, v, axis=1),
     [(["n", 3, "h"], F)] + [([3], F)] * 4, pairs("n", "h")),
    ("batch_norm-last-noaffine", lambda x, g, b, m, v: op.nn.batch_norm(x, g, b, m, v, axis=-1, center=False,
                                                                       scale=False),
     [(["n", "c"], F)] + [(["c"], F)] * 4, pairs("n", "c")),
    ("batch_norm-rank1", lambda x, g, b, m, v: op.nn.batch_norm(x, g, b, m, v, axis=0),
     [(["c"], F)] + [(["c"], F)] * 4, sizes("c")),
    ("batch_norm-nchw-noscale", lambda x, g, b, m, v: op.nn.batch_norm(x, g, b, m, v, scale=False, epsilon=1e-3),
     [(["n", 2, "h", "h"], F)] + [([2], F)] * 4, sizes("h", n=2)),
]

CONV: list[Case] = [
    ("conv2d-pad-stride", lambda x, w: op.nn.conv2d(x, w, padding=(1, 1), strides=(2, 2)),
     [(["n", 2, "h", "h"], F), ([3, 2, 3, 3], F)], sizes("h", n=2)),
    ("conv2d-unpadded-strides", lambda x, w: op.nn.conv2d(x, w, strides=(2, 1)),
     [(["n", 2, "h", "w"], F), ([2, 2, 1, 2], F)], [{"n": 1, "h": 1, "w": 7}, {"n": 3, "h": 3, "w": 3},
                                                    {"n": 1, "h": 7, "w": 2}]),
    ("conv2d-groups", lambda x, w: op.nn.conv2d(x, w, groups=2), [(["n", 4, 5, 5], F), ([4, 2, 3, 3], F)],
     sizes("n")),
    ("conv2d-depthwise", lambda x, w: op.nn.conv2d(x, w, groups=3, padding=(1, 2), strides=(1, 2)),
     [(["n", 3, "h", "w"], F), ([3, 1, 3, 3], F)], [{"n": 1, **e} for e in pairs("h", "w")]),
    ("conv2d-dilation-asym-pad", lambda x, w: op.nn.conv2d(x, w, dilation=(2, 1), padding=(1, 0, 1, 2)),
     [(["n", 1, "h", 6], F), ([2, 1, 2, 3], F)], sizes("h", n=2)),
    ("conv2d-symbolic-kernel", lambda x, w: op.nn.conv2d(x, w),
     [(["n", 2, "h", "h"], F), (["o", 2, "k", "k"], F)],
     [{"n": 1, "h": 1, "o": 3, "k": 1}, {"n": 2, "h": 3, "o": 1, "k": 3}, {"n": 1, "h": 7, "o": 7, "k": 3}]),
    ("conv2d-groups-symbolic-out", lambda x, w: op.nn.conv2d(x, w, groups=2, padding=1, dilation=2),
     [(["n", 4, "h", "h"], F), (["o", 2, 2, 2], F)],
     [{"n": 1, "h": 1, "o": 2}, {"n": 1, "h": 3, "o": 6}, {"n": 1, "h": 7, "o": 2}]),
    ("conv2d-int8-to-int32", lambda x, w: op.nn.conv2d(x, w, padding=1, out_dtype="int32"),
     [(["n", 2, "h", "h"], "int8"), ([2, 2, 3, 3], "int8")], sizes("h", n=1)),
    ("conv2d-f16-1x1", lambda x, w: op.nn.conv2d(x, w), [(["n", 2, "h", "h"], F16), ([3, 2, 1, 1], F16)],
     sizes("n", "h")),
]

POOLS: list[Case] = [
    ("max_pool2d", lambda x: op.nn.max_pool2d(x, pool_size=(2, 2), strides=(2, 2)), [(["n", 2, "k", "k"], F)],
     [{"n": 1, "k": 2}, {"n": 3, "k": 3}, {"n": 1, "k": 7}]),
    ("max_pool2d-pad-ceil", lambda x: op.nn.max_pool2d(x, pool_size=(3, 3), strides=(2, 2), padding=(1, 1),
                                                        ceil_mode=True), [(["n", 1, "k", "k"], F)], sizes("n", "k")),
    # pad_after + stride > window: ceil_mode's last window would start in the padding and is dropped
    ("max_pool2d-ceil-drop-last", lambda x: op.nn.max_pool2d(x, pool_size=2, strides=3, padding=1, ceil_mode=True),
     [(["n", 1, "k", "k"], F)], sizes("k", n=2)),
    ("max_pool2d-dilation-f64", lambda x: op.nn.max_pool2d(x, pool_size=2, dilation=2, strides=(1, 2)),
     [(["n", 1, "k", "k"], F64)], [{"n": 1, "k": 3}, {"n": 2, "k": 7}]),
    ("max_pool2d-int", lambda x: op.nn.max_pool2d(x, pool_size=(2, 2), padding=(1, 1)),
     [(["n", 2, "h", 3], "int32")], sizes("n", "h")),
    # windows wholly in the padding: the pad value (-inf, the int minimum, False)
    ("max_pool2d-pad-only-windows-int8", lambda x: op.nn.max_pool2d(x, pool_size=1, padding=1),
     [(["n", 1, "h", 2], "int8")], sizes("h", n=1)),
    ("max_pool2d-pad-only-windows-bool", lambda x: op.nn.max_pool2d(x, pool_size=1, padding=(1, 2)),
     [(["n", 1, "h", 2], "bool")], sizes("h", n=1)),
    ("avg_pool2d", lambda x: op.nn.avg_pool2d(x, pool_size=(3, 3), strides=(2, 2), padding=(1, 1), ceil_mode=True),
     [(["n", 2, "k", "k"], F)], sizes("k", n=2)),
    ("avg_pool2d-include-pad", lambda x: op.nn.avg_pool2d(x, pool_size=(2, 2), padding=(1, 1),
                                                           count_include_pad=True),
     [(["n", 1, "k", "k"], F)], sizes("n", "k")),
    # the divisor counts the explicit padding, never ceil_mode's extra padding
    ("avg_pool2d-include-pad-ceil", lambda x: op.nn.avg_pool2d(x, pool_size=(3, 2), strides=2, padding=(1, 0, 0, 1),
                                                                ceil_mode=True, count_include_pad=True),
     [(["n", 1, "k", "k"], F)], sizes("k", n=1)),
    ("avg_pool2d-dilation", lambda x: op.nn.avg_pool2d(x, pool_size=2, dilation=(2, 1), padding=1),
     [(["n", 2, "h", "w"], F)], [{"n": 1, **e} for e in pairs("h", "w")]),
    ("avg_pool2d-int64", lambda x: op.nn.avg_pool2d(x, pool_size=(2, 2)), [(["n", 1, 3, 3], "int64")], sizes("n")),
    ("avg_pool2d-int32-ceil", lambda x: op.nn.avg_pool2d(x, pool_size=2, strides=2, ceil_mode=True),
     [(["n", 1, "k", "k"], "int32")], sizes("k", n=2)),
    ("avg_pool2d-f16", lambda x: op.nn.avg_pool2d(x, pool_size=2, padding=1), [(["n", 1, "h", 3], F16)],
     sizes("h", n=1)),
]

ADAPTIVE: list[Case] = [
    ("adaptive_avg_pool2d-global", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(1, 1)),
     [(["n", 2, "k", "k"], F)], sizes("n", "k")),
    ("adaptive_avg_pool2d-equal", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(2, 1)),
     [(["n", 2, 4, 3], F)], sizes("n")),
    ("adaptive_avg_pool2d-none", lambda x: op.nn.adaptive_avg_pool2d(x), [(["n", 1, "h", "w"], F)],
     [{"n": 2, **e} for e in pairs("h", "w")]),
    ("adaptive_avg_pool2d-int", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(1, 2)),
     [(["n", 1, "h", 4], "int32")], sizes("h", n=2)),
    ("adaptive_avg_pool2d-uneven", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(3, 4)),
     [(["n", 2, 5, 7], F)], sizes("n")),
    ("adaptive_avg_pool2d-symbolic", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(2, 3)),
     [(["n", 1, "h", "w"], F)], [{"n": 1, "h": 6, "w": 6}, *({"n": 2, **e} for e in pairs("h", "w"))]),
    ("adaptive_avg_pool2d-symbolic-int", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(3, 1)),
     [(["n", 1, "h", 2], "int32")], sizes("h", n=2)),
    ("adaptive_avg_pool2d-larger-output", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(4, 2)),
     [(["n", 1, 2, "w"], F)], sizes("w", n=1)),
]

CASES = SOFTMAX + NORMS + BATCH_NORM + CONV + POOLS + ADAPTIVE


@pytest.mark.parametrize(("name", "fn", "specs", "envs"), CASES, ids=[c[0] for c in CASES])
def test_nn_at_every_level(name: str, fn: Callable[..., rx.Var], specs: list[Spec], envs: list[Env]) -> None:
    assert {1, max(SIZES)} <= {v for e in envs for v in e.values()}, "bind the symbols to 1 and to a larger size"
    make = bn_inputs if name.startswith("batch_norm") else inputs
    check_levels(module(fn, specs), [make(specs, env, seed=10 * k) for k, env in enumerate(envs)])


def test_max_pool2d_propagates_nan() -> None:
    x = rand((2, 1, 3, 3))
    x[0, 0, 1, 1] = np.nan
    check_levels(module(lambda d: op.nn.max_pool2d(d, pool_size=2, padding=1), [(["n", 1, 3, 3], F)]), [(x,)])


def test_softmax_of_large_values_is_finite() -> None:
    """The max is subtracted before exp: exp(1000) would overflow."""
    x = (rand((3, 4)) * 10 + 1000).astype(np.float32)
    mod = module(lambda d: op.nn.softmax(d), [(["n", 4], F)])
    check_levels(mod, [(x,)])
    assert np.isfinite(rx.evaluate(mod, "main", x)).all()


# --- the form of the generated programs ------------------------------------------------------


def programs(mod: ModuleOp) -> list[PrimFuncOp]:
    return [o for o in legalize_module(mod.clone()).body.ops if isinstance(o, PrimFuncOp)]


def computes(prog: PrimFuncOp) -> list[ComputeOp]:
    return [o for o in prog.walk() if isinstance(o, ComputeOp)]


def combiners(prog: PrimFuncOp) -> list[str | None]:
    return [c.combiner.data if c.combiner else None for c in computes(prog)]


@pytest.mark.parametrize(("fn", "expect"), [
    (op.nn.softmax, ["max", "add", None]),
    (op.nn.log_softmax, ["max", "add", None]),
])
def test_softmax_is_max_then_exp_sum_then_divide(fn: Callable[..., rx.Var], expect: list[str | None]) -> None:
    (prog,) = programs(module(lambda x: fn(x, axis=0), [(["n", "m"], F)]))
    assert combiners(prog) == expect
    assert len([o for o in prog.walk() if isinstance(o, AllocOp)]) == 2  # row max, row sum
    assert [str(d) for d in computes(prog)[0].reduce_extents()] == ["n"]


def test_norms_reduce_into_local_buffers_in_float32() -> None:
    ln = module(lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1]), [(["n", 6], F16), ([6], F16), ([6], F16)])
    (prog,) = programs(ln)
    assert combiners(prog) == ["add", "add", None]  # sum, sum of squared deviations, normalize
    allocs = [o for o in prog.walk() if isinstance(o, AllocOp)]
    assert [a.result.type.dtype for a in allocs] == ["float32", "float32"]
    assert [str(d) for a in allocs for d in a.result.type.sym_shape] == ["n", "n"]
    rms = module(lambda x, w: op.nn.rms_norm(x, w, axes=[0, 2]), [(["n", 2, "m"], F), (["n", "m"], F)])
    (prog,) = programs(rms)
    assert combiners(prog) == ["add", None]


def data_loads_guarded(prog: PrimFuncOp) -> list[bool]:
    """For each load of the data buffer (argument 0): is it inside an scf.if?"""
    data = prog.body.block.args[0]
    out = []
    for o in prog.walk():
        if isinstance(o, LoadOp) and o.operands[0] is data:
            parent, guarded = o.parent_op(), False
            while parent is not None and parent is not prog:
                guarded |= isinstance(parent, scf.IfOp)
                parent = parent.parent_op()
            out.append(guarded)
    return out


@pytest.mark.parametrize(("fn", "specs", "guarded"), [
    (lambda x, w: op.nn.conv2d(x, w, padding=(0, 1)), [(["n", 2, "h", "h"], F), ([2, 2, 3, 3], F)], True),
    (lambda x, w: op.nn.conv2d(x, w, strides=2, dilation=2), [(["n", 2, "h", "h"], F), ([2, 2, 3, 3], F)], False),
    (lambda x: op.nn.max_pool2d(x, pool_size=3, padding=1), [(["n", 2, "h", "h"], F)], True),
    (lambda x: op.nn.max_pool2d(x, pool_size=2, strides=2, ceil_mode=True), [(["n", 2, "h", "h"], F)], True),
    (lambda x: op.nn.avg_pool2d(x, pool_size=3, padding=1), [(["n", 2, "h", "h"], F)], True),
    (lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(2, 3)), [(["n", 2, "h", "h"], F)], True),
    (lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(2, 3)), [(["n", 2, 4, 6], F)], False),
])
def test_window_loads_are_guarded(fn: Callable[..., rx.Var], specs: list[Spec], guarded: bool) -> None:
    """A window that can reach past the input reads it under scf.if (never out
    of bounds); one that cannot reads it directly."""
    (prog,) = programs(module(fn, specs))
    loads = data_loads_guarded(prog)
    assert loads and all(g == guarded for g in loads)


def test_conv2d_reduces_over_group_channels_and_taps() -> None:
    mod = module(lambda x, w: op.nn.conv2d(x, w, groups=2), [(["n", 4, "h", "h"], F), (["o", 2, "k", "k"], F)])
    (prog,) = programs(mod)
    (c,) = computes(prog)
    assert c.combiner.data == "add"
    assert [str(d) for d in c.reduce_extents()] == ["2", "k", "k"]


# --- runtime checks of the shape rules' assumptions ----------------------------------------------


def raises_at_every_level(mod: ModuleOp, args: tuple[np.ndarray, ...], match: str) -> None:
    with pytest.raises(rx.ShapeError, match=match):
        rx.evaluate(mod, "main", *args)
    with pytest.raises(rx.ShapeError, match=match):
        rx.evaluate(legalize_module(mod.clone()), "main", *args)
    for target in ("interp", "c"):
        exe = rx.compile(mod, target=target)
        with pytest.raises(rx.ShapeError, match=match):
            exe["main"](*args)


@pytest.mark.parametrize(("fn", "specs", "shapes", "match"), [
    (lambda x, w: op.nn.conv2d(x, w), [(["n", 1, "h", "h"], F), ([1, 1, 3, 3], F)],
     [(1, 1, 1, 1), (1, 1, 3, 3)], r"output height|h - 2"),
    (lambda x: op.nn.max_pool2d(x, pool_size=3), [(["n", 1, "h", 4], F)], [(1, 1, 1, 4)],
     r"output height|h - 2"),
    (lambda x: op.nn.avg_pool2d(x, pool_size=(1, 3), strides=2), [(["n", 1, 4, "w"], F)], [(2, 1, 4, 0)],
     r"output width|w"),
    (lambda x, w: op.nn.conv2d(x, w, groups=2), [(["n", 4, 3, 3], F), (["o", 2, 1, 1], F)],
     [(1, 4, 3, 3), (3, 2, 1, 1)], r"o mod 2"),
])
def test_violated_assumptions_are_shape_errors(fn: Callable[..., rx.Var], specs: list[Spec],
                                               shapes: list[tuple[int, ...]], match: str) -> None:
    args = tuple(rand(s, d) for s, (_, d) in zip(shapes, specs))
    raises_at_every_level(module(fn, specs), args, match)


def test_cases_cover_every_nn_op() -> None:
    from relax_xdsl.ops.registry import all_specs

    nn = {n for n, s in all_specs().items() if type(s).__module__ == "relax_xdsl.ops.nn"}
    covered = {c[0].split("-")[0] for c in CASES}
    assert nn == covered
    assert all(all_specs()[n].can_legalize for n in nn)
