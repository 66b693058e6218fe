"""Bad input at every level, each a clear error and nothing crashed: runtime
inputs (rank, dims, symbol bindings, dtype, layout, count, type,
absurd sizes) through the evaluator, the interpreter and C (default, fast
and debug builds); malformed and unverifiable textual IR through
parse_module; and a scan that no code path evaluates IR or model text."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from util import LEGALIZED_RELU as GOOD
from util import assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op


def graph() -> Any:
    """x: [n, 4] and w: [4, m]: relu(x @ w) + the row sums of x."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4], "float32")
        w = fb.param("w", [4, "m"], "float32")
        fb.ret(op.add(op.relu(op.matmul(x, w)), op.sum(x, axis=[1], keepdims=True)))
    return fb.module


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.maximum(x @ w, 0) + x.sum(axis=1, keepdims=True)


LEVELS = ["evaluate", "interp", "c", "c-fast", "c-debug"]


def runner(level: str, module: Any) -> Callable[..., Any]:
    if level == "evaluate":
        return lambda *a: rx.evaluate(module, "main", *a)
    if level == "interp":
        return rx.compile(module, target="interp")["main"]
    pipeline = "default" if level == "c-fast" else "baseline"
    return rx.compile(module, target="c", pipeline=pipeline, debug=level == "c-debug")["main"]


@pytest.fixture(scope="module", params=LEVELS)
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return runner(request.param, graph())


def test_good_inputs_agree(run: Callable[..., Any]) -> None:
    for n, m in ((1, 1), (3, 5)):
        x, w = rand((n, 4)), rand((4, m), seed=1)
        assert_close(run(x, w), reference(x, w))


BAD_INPUTS: list[tuple[str, Callable[[], tuple[Any, ...]], type[Exception], str]] = [
    ("rank", lambda: (rand((3, 4, 1)), rand((4, 2))), rx.ShapeError, r"rank|shape"),
    ("dim", lambda: (rand((3, 5)), rand((4, 2))), rx.ShapeError, r"dim 1|x"),
    ("dtype", lambda: (rand((3, 4)).astype(np.float64), rand((4, 2))), TypeError, r"float32"),
    ("int-dtype", lambda: (np.ones((3, 4), np.int32), rand((4, 2))), TypeError, r"float32|int32"),
    ("count", lambda: (rand((3, 4)),), TypeError, r"takes 2|2 arguments|2 inputs"),
    ("not-an-array", lambda: ("hello", rand((4, 2))), TypeError, r"x|array|str"),
]


@pytest.mark.parametrize(("name", "args", "error", "match"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_runtime_inputs(run: Callable[..., Any], name: str, args: Callable[[], tuple[Any, ...]],
                            error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        run(*args())
    x, w = rand((2, 4)), rand((4, 3), seed=1)
    assert_close(run(x, w), reference(x, w))  # still usable afterwards


def test_an_empty_batch_is_an_ordinary_input(run: Callable[..., Any]) -> None:
    """Symbols may be 0: an empty batch gives an empty result, not an error."""
    x, w = rand((0, 4)), rand((4, 2))
    out = run(x, w)
    assert out.shape == (0, 2)
    assert_close(out, reference(x, w))


def test_inconsistent_bindings_and_non_contiguous_inputs(run: Callable[..., Any]) -> None:
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n", 2], "float32")
        b = fb.param("b", ["n", 2], "float32")
        fb.ret(op.add(a, b))
    for level in LEVELS:
        f = runner(level, fb.module)
        with pytest.raises(rx.ShapeError, match=r"b.*n"):
            f(rand((3, 2)), rand((4, 2)))
    x = np.asfortranarray(rand((3, 4)))
    w = rand((4, 6), seed=1)[:, ::2]
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    assert_close(run(x, w), reference(x, w))


def test_absurd_allocations_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An outer product [n] x [n] -> [n, n]: n = 10**6 would need 4 TB for the
    result (returned, so no pipeline can fuse it away)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        fb.ret(op.multiply(op.expand_dims(x, [1]), op.expand_dims(x, [0])))
    big = np.ones(10**6, np.float32)
    for level in LEVELS:
        f = runner(level, fb.module)
        with pytest.raises(rx.ResourceLimitError, match=r"4000000000000 bytes.*limit.*RELAX_XDSL_MAX_ALLOC_BYTES"):
            f(big)
        assert_close(f(np.ones(3, np.float32)), np.ones((3, 3), np.float32))
    # a lower limit from the environment (read when the executable is loaded)
    monkeypatch.setenv("RELAX_XDSL_MAX_ALLOC_BYTES", "1000")
    for level in LEVELS:
        f = runner(level, fb.module)
        with pytest.raises(rx.ResourceLimitError, match=r"1600 bytes.*1000"):
            f(np.ones(20, np.float32))
        assert_close(f(np.ones(3, np.float32)), np.ones((3, 3), np.float32))
    monkeypatch.setenv("RELAX_XDSL_MAX_ALLOC_BYTES", "lots")
    with pytest.raises(rx.ResourceLimitError, match="not an integer"):
        rx.evaluate(fb.module, "main", np.ones(3, np.float32))


# --- textual IR ----------------------------------------------------------------------------------------------------


BAD_IR = [
    ("truncated", GOOD[: len(GOOD) // 3], r"<string>:\d+:\d+"),
    ("unknown-op", GOOD.replace("tir.yield", "tir.yeld"), r":10:\d+.*tir.yeld"),
    ("wrong-type", GOOD.replace("tir.yield %2 : f32", "tir.yield %2 : f64"), r":10:\d+"),
    ("dim-trailing-plus", GOOD.replace("[n, 4], f32>) ->", "[n+, 4], f32>) ->", 1), r":2:\d+"),
    ("dim-power", GOOD.replace("[n, 4], f32>) ->", "[2**n, 4], f32>) ->", 1), r":2:\d+"),
    ("dim-injection", GOOD.replace("[n, 4], f32>) ->", "[__import__('os').system('true'), 4], f32>) ->", 1),
     r":2:\d+"),
    ("dim-keyword", GOOD.replace("[n, 4], f32>) ->", "[max, 4], f32>) ->", 1), r":2:\d+"),
    ("call-tir-arity", GOOD.replace("@relu(%x)", "@relu(%x, %x)").replace(
        "(!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>\n    relax.return",
        "(!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>\n    relax.return"),
     r":3:5: relax.call_tir.*2 inputs"),
    ("call-tir-rank", GOOD.replace("%x: !tir.buffer<[n, 4], f32>, %out", "%x: !tir.buffer<[n], f32>, %out")
     .replace("tir.load %x[%0, %1] : !tir.buffer<[n, 4], f32>", "tir.load %x[%0] : !tir.buffer<[n], f32>"),
     r":3:5: relax.call_tir.*rank"),
    ("call-tir-dtype", GOOD.replace("%x: !tir.buffer<[n, 4], f32>, %out", "%x: !tir.buffer<[n, 4], i32>, %out")
     .replace("tir.load %x[%0, %1] : !tir.buffer<[n, 4], f32>\n      tir.yield %2 : f32",
              "tir.load %x[%0, %1] : !tir.buffer<[n, 4], i32>\n      %3 = arith.sitofp %2 : i32 to f32\n"
              "      tir.yield %3 : f32"), r":3:5: relax.call_tir.*int32"),
    ("undefined-callee", GOOD.replace("@relu(%x)", "@nothing(%x)"), r":3:5.*nothing"),
    ("undefined-symbol", GOOD.replace("-> !relax.tensor<[n, 4], f32> {", "-> !relax.tensor<[k, 4], f32> {", 1),
     r"k"),
    ("duplicate-function", GOOD.replace("tir.prim_func @relu(", "tir.prim_func @main("), r'"main"|main'),
    ("empty", "", r"<string>"),
    ("not-ir", "\x00\x01 binary junk", r"<string>:1:\d+"),
]


@pytest.mark.parametrize(("name", "text", "match"), BAD_IR, ids=[b[0] for b in BAD_IR])
def test_bad_ir_is_a_located_error(name: str, text: str, match: str) -> None:
    with pytest.raises(rx.IRParseError, match="(?s)" + match) as info:
        rx.parse_module(text)
    assert "Traceback" not in str(info.value)


def test_good_ir_runs() -> None:
    module = rx.parse_module(GOOD)
    assert_close(rx.compile(module)["main"](rand((3, 4))), rand((3, 4)))


def test_no_code_path_evaluates_ir_or_model_text() -> None:
    """eval/exec/sympify/parse_expr/compile-of-source never appear in the package."""
    root = Path(__file__).parent.parent
    pattern = re.compile(r"(?<![\w.])(eval|exec|sympify|parse_expr|S)\s*\(|sympy\.(sympify|parse_expr|S)\b|"
                         r"from sympy(\.parsing[\w.]*)? import [^\n]*(sympify|parse_expr)")
    offenders = []
    for folder in ("relax_xdsl", "dialects", "passes"):
        for path in (root / folder).rglob("*.py"):
            for k, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line.split("#", 1)[0]):
                    offenders.append(f"{path.relative_to(root)}:{k}: {line.strip()}")
    assert not offenders, offenders
