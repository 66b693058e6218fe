"""Named pipelines: the route from graph to loops in one screen.

    graph --legalize--> graph + tensor programs --auto-schedule--> contractions
          as explicit loops --lower-tir--> + loop kernels
          --lower-graph--> host functions (loop level) --canonicalize,cse--> C / interpreter

Each is a pass-pipeline spec (as `relax-xdsl-opt -p` takes it); `run_pipeline`
applies one to a module from Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline

from relax_xdsl.ir import make_context, verify_module

PIPELINES: dict[str, str] = {
    # graph -> loop level, cleaned up by upstream canonicalization and CSE
    # (contractions reordered, parallel and vectorized by auto-schedule)
    "default": "legalize,auto-schedule,lower-tir,lower-graph,canonicalize,cse,schedule-loops",
    # the same steps without clean-ups (output closest to what each step wrote)
    "debug": "legalize,auto-schedule,lower-tir,lower-graph,schedule-loops",
    # matmuls to BLAS (scipy-openblas32), injective producers fused into
    # their consumers and elementwise epilogues into their producers, then as
    # default with a row op's loops fused into one pass per row
    "fast": "offload{lib=blas},annotate-op-pattern,fuse-ops,fuse-tir,legalize,auto-schedule,lower-tir,"
            "fuse-row-loops,lower-graph,canonicalize,cse,schedule-loops",
}


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
    from relax_xdsl.passes import all_passes_for_pipeline

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
    pipeline = PassPipeline.parse_spec(all_passes_for_pipeline(), expand(spec), callback)
    pipeline.apply(ctx, module)
    verify_module(module)
    return module
