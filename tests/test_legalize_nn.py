"""The nn family at every level (reference evaluator, legalized programs,
interp, C), several parameter combinations, symbols bound to several sizes
including 1. Shape rules and references are tested in test_ops_nn.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from util import check_levels, rand

import relax_xdsl as rx
from relax_xdsl import op

Spec = tuple[Sequence[Any], str]


def module(fn: Callable[..., rx.Var], specs: Sequence[Spec]) -> Any:
    with rx.FunctionBuilder("main") as fb:
        fb.ret(fn(*[fb.param(f"a{i}", s, d) for i, (s, d) in enumerate(specs)]))
    return fb.module


F = "float32"
CASES: list[tuple[str, Callable[..., rx.Var], list[Spec], list[list[tuple[int, ...]]]]] = [
    ("softmax", lambda x: op.nn.softmax(x, axis=-1), [(["n", 5], F)], [[(1, 5)], [(3, 5)], [(7, 5)]]),
    ("softmax-axis0", lambda x: op.nn.softmax(x, axis=0), [(["n", "m"], F)], [[(1, 2)], [(3, 1)]]),
    ("log_softmax", lambda x: op.nn.log_softmax(x, axis=1), [([2, "n", 3], F)], [[(2, 1, 3)], [(2, 4, 3)]]),
    ("layer_norm", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1]),
     [(["n", 6], F), ([6], F), ([6], F)], [[(1, 6), (6,), (6,)], [(3, 6), (6,), (6,)]]),
    ("layer_norm-2axes-nocenter", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[1, 2], center=False),
     [(["n", 2, 3], F), ([2, 3], F), ([2, 3], F)], [[(1, 2, 3), (2, 3), (2, 3)], [(3, 2, 3), (2, 3), (2, 3)]]),
    ("rms_norm", lambda x, g: op.nn.rms_norm(x, g, axes=[-1], epsilon=1e-3), [(["n", 6], F), ([6], F)],
     [[(1, 6), (6,)], [(7, 6), (6,)]]),
    ("batch_norm", lambda x, g, b, m, v: op.nn.batch_norm(x, g, b, m, v, axis=1),
     [(["n", 3, "h"], F), ([3], F), ([3], F), ([3], F), ([3], F)],
     [[(1, 3, 1), (3,), (3,), (3,), (3,)], [(2, 3, 4), (3,), (3,), (3,), (3,)]]),
    ("conv2d-pad-stride", lambda x, w: op.nn.conv2d(x, w, padding=(1, 1), strides=(2, 2)),
     [(["n", 2, "h", "h"], F), ([3, 2, 3, 3], F)], [[(1, 2, 5, 5), (3, 2, 3, 3)], [(2, 2, 4, 4), (3, 2, 3, 3)]]),
    ("conv2d-groups", lambda x, w: op.nn.conv2d(x, w, groups=2), [(["n", 4, 5, 5], F), ([4, 2, 3, 3], F)],
     [[(1, 4, 5, 5), (4, 2, 3, 3)], [(2, 4, 5, 5), (4, 2, 3, 3)]]),
    ("conv2d-dilation", lambda x, w: op.nn.conv2d(x, w, dilation=(2, 1), padding=(1, 0, 0, 2)),
     [(["n", 1, "h", 6], F), ([2, 1, 2, 3], F)], [[(1, 1, 4, 6), (2, 1, 2, 3)], [(3, 1, 7, 6), (2, 1, 2, 3)]]),
    ("max_pool2d", lambda x: op.nn.max_pool2d(x, pool_size=(2, 2), strides=(2, 2)), [(["n", 2, "k", "k"], F)],
     [[(1, 2, 4, 4)], [(2, 2, 5, 5)]]),
    ("max_pool2d-pad-ceil", lambda x: op.nn.max_pool2d(x, pool_size=(3, 3), strides=(2, 2), padding=(1, 1),
                                                        ceil_mode=True), [(["n", 1, "k", "k"], F)],
     [[(1, 1, 1, 1)], [(2, 1, 6, 6)]]),
    ("max_pool2d-int", lambda x: op.nn.max_pool2d(x, pool_size=(2, 2), padding=(1, 1)), [(["n", 2, 3, 3], "int32")],
     [[(1, 2, 3, 3)], [(3, 2, 3, 3)]]),
    ("avg_pool2d", lambda x: op.nn.avg_pool2d(x, pool_size=(3, 3), strides=(2, 2), padding=(1, 1), ceil_mode=True),
     [(["n", 2, "k", "k"], F)], [[(1, 2, 4, 4)], [(2, 2, 5, 5)]]),
    ("avg_pool2d-include-pad", lambda x: op.nn.avg_pool2d(x, pool_size=(2, 2), padding=(1, 1),
                                                           count_include_pad=True),
     [(["n", 1, "k", "k"], F)], [[(1, 1, 1, 1)], [(2, 1, 3, 3)]]),
    ("avg_pool2d-int", lambda x: op.nn.avg_pool2d(x, pool_size=(2, 2)), [(["n", 1, 3, 3], "int64")],
     [[(1, 1, 3, 3)], [(2, 1, 3, 3)]]),
    ("adaptive_avg_pool2d", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(1, 1)),
     [(["n", 2, "k", "k"], F)], [[(1, 2, 4, 4)], [(2, 2, 3, 3)]]),
    ("adaptive_avg_pool2d-2x2", lambda x: op.nn.adaptive_avg_pool2d(x, output_size=(2, 1)),
     [(["n", 2, 4, 3], F)], [[(1, 2, 4, 3)], [(3, 2, 4, 3)]]),
]


@pytest.mark.parametrize(("name", "fn", "specs", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_nn_at_every_level(name: str, fn: Callable[..., rx.Var], specs: list[Spec],
                           shapes: list[list[tuple[int, ...]]]) -> None:
    mod = module(fn, specs)
    cases = [tuple(rand(s, d, seed=10 * k + i) for i, (s, (_, d)) in enumerate(zip(sh, specs)))
             for k, sh in enumerate(shapes)]
    if name == "batch_norm":  # a positive moving variance
        cases = [(*c[:4], abs(c[4]) + 0.5) for c in cases]
    check_levels(mod, cases)
