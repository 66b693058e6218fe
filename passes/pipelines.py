"""Named pipelines: the route from graph to loops in one screen.

    graph --legalize--> graph + tensor programs --auto-schedule--> contractions
          as explicit loops --lower-tir--> + loop kernels
          --lower-graph--> host functions (loop level) --canonicalize,cse--> C / interpreter

Each is a pass-pipeline spec (as `relax-xdsl-opt -p` takes it); `run_pipeline`
applies one to a module from Python. `default` is the optimizing route (offload
to BLAS, fusion) so that `relax_xdsl.compile(module)` gives fast code without
knowing pipeline names; `fast` is its old name, an alias with the same spec;
`baseline` (every op its own generated kernel) and `debug` (baseline without
clean-ups) are there to debug and compare against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.arg_spec import parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError

from relax_xdsl.errors import RelaxError
from relax_xdsl.ir import make_context, verify_module

_OPTIMIZING = ("fold-constants,fold-batch-norm,convert-layout,simplify-layout,cse,expand-power,recognize-ops,recognize-attention,combine-parallel-matmul,offload{lib=blas},"
               "annotate-op-pattern,"
               "fuse-ops,fuse-tir,legalize,auto-schedule,lower-tir,fuse-row-loops,lower-graph,unroll-short-loops,"
               "canonicalize-ops,cse,collapse-parallel,hoist-loop-invariants,schedule-loops")

PIPELINES: dict[str, str] = {
    # what `relax_xdsl.compile(module)` runs when no pipeline is named, so the
    # plain call gives the fast code: constants folded, BatchNorm folded into
    # the weights before it, layout chains merged, equal ops merged (xDSL's
    # cse: DenseNet's 413 repeated constants), constant squares and
    # cubes made multiplies (what exporters emit), written-out GELU,
    # LayerNorm, RMSNorm and softmax made one op each, projections of one operand
    # by several constant matrices (q, k, v) joined into one matmul, then
    # matmuls, dense layers and convolutions to BLAS (scipy-openblas32) or
    # oneDNN (both dependencies), injective producers fused into their
    # consumers and elementwise epilogues into their producers, then as
    # baseline with a row op's loops fused into one pass per row, short
    # constant loops (pooling windows) unrolled, the batch loop collapsed
    # with the next one (threads split batch x channels) and loop-invariant
    # index math hoisted out of inner loops
    "default": _OPTIMIZING,
    # the old name of the optimizing pipeline, kept so scripts naming it keep
    # working: the same spec as default
    "fast": _OPTIMIZING,
    # graph -> loop level without offload or fusion, cleaned up by upstream
    # canonicalization and CSE (contractions reordered, parallel and
    # vectorized by auto-schedule): the unoptimised route, every op its own
    # generated kernel, for debugging and comparison
    "baseline": "legalize,auto-schedule,lower-tir,lower-graph,canonicalize,cse,schedule-loops",
    # baseline without clean-ups (output closest to what each step wrote)
    "debug": "legalize,auto-schedule,lower-tir,lower-graph,schedule-loops",
}

SUMMARIES: dict[str, str] = {
    "default": "optimizing: BLAS / oneDNN offload and fusion; what compile(module) runs",
    "fast": "the same as default, by its former name",
    "baseline": "unoptimised: every op its own generated kernel, for debugging and comparison",
    "debug": "baseline without the clean-ups: each pass's output as it wrote it",
}
"""One line per pipeline, for help texts."""


def expand(spec: str) -> str:
    """A pipeline name, or a pass-pipeline spec whose items may be pipeline names."""
    return ",".join(PIPELINES.get(item.strip(), item.strip()) for item in _split(spec))


def _split(spec: str) -> list[str]:
    items, depth, cur = [], 0, ""
    for ch in spec:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur)
    return items


PassObserver = Callable[[str, float], None]
_OBSERVERS: list[PassObserver] = []


@contextmanager
def observe_passes(observer: PassObserver) -> Iterator[None]:
    """Within the block, every pipeline run (also inside `relax_xdsl.compile`)
    calls `observer(pass_spec, seconds)` after each pass: how `--verbose`
    shows each pass and its time."""
    _OBSERVERS.append(observer)
    try:
        yield
    finally:
        _OBSERVERS.remove(observer)


def run_pipeline(module: ModuleOp, spec: str = "default", verify_each: bool = False) -> ModuleOp:
    """Applies a named pipeline or pass spec to `module` in place."""
    ctx = make_context()
    observers = list(_OBSERVERS)
    started = [time.perf_counter()]

    def between(prev: ModulePass | None, m: ModuleOp, _next: ModulePass | None) -> None:
        if verify_each and prev is not None:
            verify_module(m)
        now = time.perf_counter()
        if prev is not None:
            for obs in observers:
                obs(str(prev.pipeline_pass_spec()), now - started[0])
        started[0] = time.perf_counter()

    callback = between if verify_each or observers else None
    pipeline = PassPipeline(tuple(_parse_passes(expand(spec), spec)), callback)
    pipeline.apply(ctx, module)
    verify_module(module)
    return module


def _parse_passes(expanded: str, spec: str) -> list[ModulePass]:
    """The passes of `expanded`; a misspelt pipeline or pass name, a bad
    option or a malformed spec is a RelaxError naming it and what is known
    (xDSL's own errors name neither the pipelines nor the spec given)."""
    from relax_xdsl.passes import all_passes_for_pipeline, get_all_passes

    known = all_passes_for_pipeline()
    try:
        items = list(parse_pipeline(expanded))
    except ArgSpecParseError as err:
        raise RelaxError(f"pipeline {spec!r}: malformed pass spec: {err}") from None
    passes = []
    for item in items:
        if item.name not in known:
            raise RelaxError(f"pipeline {spec!r}: unknown pipeline or pass {item.name!r}; pipelines: "
                             f"{', '.join(PIPELINES)}; passes: {', '.join(get_all_passes())} and xDSL's "
                             f"(canonicalize, cse, ...)")
        cls = known[item.name]()
        try:
            passes.append(cls.from_pass_spec(item))
        except (ValueError, TypeError) as err:
            raise RelaxError(f"pipeline {spec!r}: pass {item.name!r}: {err}") from None
    return passes
