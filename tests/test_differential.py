"""Differential testing: random graph functions (tests/fuzz_programs.py) run
through the reference evaluator, the interpreter and the C target (baseline
and default pipelines, and a bounds-checked debug build), at several bindings
of the symbols including all ones; all must agree. Every pass of the default
pipeline is applied one at a time with print -> parse -> print checked
after each, and while the module still has graph functions the evaluator
runs it again (so a pass that changes the meaning is caught at that pass).

Errors are compared too: where the evaluator raises a project error, every
level must raise the same class (a raw exception anywhere fails); at the
huge binding of programs with empty inputs (fuzz_programs.LARGE), where a
fused pipeline may never allocate what the evaluator does, either the same
values or a ResourceLimitError is accepted, never a crash. Integer programs
over INT_MIN / INT_MAX must agree exactly.

A fixed seed and a bounded example count keep CI fast;
RELAX_XDSL_FUZZ_EXAMPLES=2000 runs thousands, RELAX_XDSL_FUZZ_SEED picks
other programs (the summary line with -s reports what ran)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fuzz_programs import ALLOC_LIMIT, LARGE, Program, describe, int_programs, programs
from hypothesis import HealthCheck, given, seed, settings
from relax_xdsl.passes.pipelines import PIPELINES, _split, run_pipeline
from util import roundtrip

import relax_xdsl as rx
from relax_xdsl.backend.c import CModule
from relax_xdsl.errors import RelaxError, ResourceLimitError
from relax_xdsl.limits import ENV as MAX_ALLOC_ENV
from relax_xdsl.runtime import Executable

EXAMPLES = int(os.environ.get("RELAX_XDSL_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("RELAX_XDSL_FUZZ_SEED", "20261201"))
RAN: list[Program] = []


def agree(actual: Any, expected: Any, program: Program, where: str, large: bool = False) -> None:
    if isinstance(expected, Exception) or isinstance(actual, Exception):
        if large and (isinstance(expected, ResourceLimitError) or isinstance(actual, ResourceLimitError)):
            return  # resource-dependent: a fused pipeline may never allocate what another does
        assert type(actual) is type(expected), f"{where}: {actual!r} where the evaluator gave {expected!r}"
        return
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), where
        for a, e in zip(actual, expected):
            agree(a, e, program, where)
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, \
        f"{where}: {actual.shape} {actual.dtype} != {expected.shape} {expected.dtype}"
    if expected.dtype.kind in "iub":
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=program.atol, err_msg=where)


def outcome(fn: Callable[..., Any], *args: Any) -> Any:
    """The result, or the project error raised (anything else propagates and fails the test)."""
    try:
        return fn(*args)
    except RelaxError as err:
        return err


@contextlib.contextmanager
def small_allocation_limit() -> Iterator[None]:
    """1 GiB per buffer while a program runs, so the huge binding fails the
    same way on every machine (compiled modules read the limit when built)."""
    old = os.environ.get(MAX_ALLOC_ENV)
    os.environ[MAX_ALLOC_ENV] = str(ALLOC_LIMIT)
    try:
        yield
    finally:
        if old is None:
            del os.environ[MAX_ALLOC_ENV]
        else:
            os.environ[MAX_ALLOC_ENV] = old


def stepwise(module: Any, pipeline: str, program: Program, expected: list[Any]) -> Any:
    """Applies `pipeline` one pass at a time: round trip after each, and the
    evaluator on the first binding while graph functions remain."""
    for spec in _split(PIPELINES[pipeline]):
        module = roundtrip(run_pipeline(module, spec))
        if not any(o.name == "func.func" for o in module.body.ops):  # tensor programs not yet lowered
            agree(outcome(rx.evaluate, module, program.name, *program.cases[0]), expected[0], program,
                  f"evaluate after {spec}")
    return module


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Any:
    yield
    if RAN:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\ndifferential: {describe(RAN)}")


def run_everywhere(program: Program) -> None:
    module = roundtrip(program.module)
    name = program.name
    expected = [outcome(rx.evaluate, module, name, *args) for args in program.cases]
    runs = list(zip(program.cases, expected, program.bindings))
    interp = rx.compile(module, target="interp", pipeline="baseline")
    for args, want, b in runs:
        if b is not LARGE:  # the interpreter would walk 2**32 empty iterations
            agree(outcome(interp[name], *args), want, program, f"interp at {b}")
    c_baseline = rx.compile(module, target="c", pipeline="baseline")
    for args, want, b in runs:
        agree(outcome(c_baseline[name], *args), want, program, f"c baseline at {b}", b is LARGE)
    loops = stepwise(module.clone(), "default", program, expected)
    debug = len(RAN) % 3 == 0  # a third of the programs also run bounds-checked
    for flag in (False, True) if debug else (False,):
        exe = Executable(module, loops, CModule(loops, debug=flag), "c", {})
        for args, want, b in runs:
            agree(outcome(exe[name], *args), want, program, f"c default{' debug' if flag else ''} at {b}", b is LARGE)
    RAN.append(program)


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs())
def test_random_programs_agree_everywhere(program: Program) -> None:
    with small_allocation_limit():
        run_everywhere(program)


@seed(SEED)
@settings(max_examples=max(4, EXAMPLES // 2), deadline=None, suppress_health_check=list(HealthCheck))
@given(int_programs())
def test_random_integer_programs_agree_everywhere(program: Program) -> None:
    run_everywhere(program)
