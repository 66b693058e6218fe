"""Differential testing: random graph functions (tests/fuzz_programs.py) run
through the reference evaluator, the interpreter and the C target (default
and fast pipelines, and a bounds-checked debug build), at several bindings
of the symbols including all ones; all must agree. Every pass of the fast
pipeline is applied one at a time with print -> parse -> print checked
after each, and while the module still has graph functions the evaluator
runs it again (so a pass that changes the meaning is caught at that pass).

A fixed seed and a bounded example count keep CI fast;
RELAX_XDSL_FUZZ_EXAMPLES=2000 runs thousands, RELAX_XDSL_FUZZ_SEED picks
other programs (the summary line with -s reports what ran)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from fuzz_programs import BINDINGS, Program, describe, programs
from hypothesis import HealthCheck, given, seed, settings
from relax_xdsl.passes.pipelines import PIPELINES, _split, run_pipeline
from util import roundtrip

import relax_xdsl as rx
from relax_xdsl.backend.c import CModule
from relax_xdsl.runtime import Executable

EXAMPLES = int(os.environ.get("RELAX_XDSL_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("RELAX_XDSL_FUZZ_SEED", "20261201"))
RAN: list[Program] = []


def agree(actual: Any, expected: Any, program: Program, where: str) -> None:
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), where
        for a, e in zip(actual, expected):
            agree(a, e, program, where)
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, \
        f"{where}: {actual.shape} {actual.dtype} != {expected.shape} {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=program.atol, err_msg=where)


def stepwise(module: Any, pipeline: str, program: Program, expected: list[Any]) -> Any:
    """Applies `pipeline` one pass at a time: round trip after each, and the
    evaluator on the first binding while graph functions remain."""
    for spec in _split(PIPELINES[pipeline]):
        module = roundtrip(run_pipeline(module, spec))
        if not any(o.name == "func.func" for o in module.body.ops):  # tensor programs not yet lowered
            agree(rx.evaluate(module, "main", *program.cases[0]), expected[0], program, f"evaluate after {spec}")
    return module


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Any:
    yield
    if RAN:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\ndifferential: {describe(RAN)}")


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs())
def test_random_programs_agree_everywhere(program: Program) -> None:
    module = roundtrip(program.module)
    expected = [rx.evaluate(module, "main", *args) for args in program.cases]
    interp = rx.compile(module, target="interp")
    for args, want, b in zip(program.cases, expected, BINDINGS):
        agree(interp.main(*args), want, program, f"interp at {b}")
    c_default = rx.compile(module, target="c")
    for args, want, b in zip(program.cases, expected, BINDINGS):
        agree(c_default.main(*args), want, program, f"c default at {b}")
    loops = stepwise(module.clone(), "fast", program, expected)
    debug = len(RAN) % 3 == 0  # a third of the programs also run bounds-checked
    for flag in (False, True) if debug else (False,):
        exe = Executable(module, loops, CModule(loops, debug=flag), "c", {})
        for args, want, b in zip(program.cases, expected, BINDINGS):
            agree(exe.main(*args), want, program, f"c fast{' debug' if flag else ''} at {b}")
    RAN.append(program)
