"""Host code with control flow over buffers, as lower_graph emits for graph-level
control flow: scf.if whose branches allocate and yield memrefs, func.call
between host functions returning memrefs (recursion, direct and mutual), and
scf.while carrying memrefs and scalars. Each runs on the C target and on the
interpreter with the same results; failures inside a branch, a callee or a
loop body are the project's errors, leave the process usable, and (under
ASan/LSan) free every buffer exactly once; recursion is bounded
(RELAX_XDSL_MAX_RECURSION_DEPTH)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from relax_xdsl.backend.c import DEFAULT_FLAGS, WARNING_FLAGS, CModule
from relax_xdsl.backend.interp import InterpModule
from relax_xdsl.errors import ResourceLimitError, ShapeError
from relax_xdsl.ir import parse_module

TARGETS = ["c", "interp"]

# @pick(x, k): k > 0 yields 2*x (n rows), k == 0 yields x stacked twice (2n rows), k < 0 fails in the branch
PICK = """\
builtin.module {
  func.func @pick(%x: memref<?x4xf32>, %k: index) -> memref<?x4xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %n = memref.dim %x, %c0 : memref<?x4xf32>
    %pos = arith.cmpi sgt, %k, %c0 : index
    %r = scf.if %pos -> (memref<?x4xf32>) {
      %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?x4xf32>
      scf.for %i = %c0 to %n step %c1 {
        scf.for %j = %c0 to %c4 step %c1 {
          %v = memref.load %x[%i, %j] : memref<?x4xf32>
          %w = arith.addf %v, %v : f32
          memref.store %w, %a[%i, %j] : memref<?x4xf32>
        }
      }
      scf.yield %a : memref<?x4xf32>
    } else {
      %m = arith.muli %n, %c2 : index
      %b = memref.alloc(%m) {alignment = 64 : i64} : memref<?x4xf32>
      %ok = arith.cmpi eq, %k, %c0 : index
      cf.assert %ok, "@pick: k must not be negative"
      scf.for %i = %c0 to %n step %c1 {
        %i2 = arith.addi %i, %n : index
        scf.for %j = %c0 to %c4 step %c1 {
          %v = memref.load %x[%i, %j] : memref<?x4xf32>
          memref.store %v, %b[%i, %j] : memref<?x4xf32>
          memref.store %v, %b[%i2, %j] : memref<?x4xf32>
        }
      }
      scf.yield %b : memref<?x4xf32>
    }
    func.return %r : memref<?x4xf32>
  }
}
"""

# @fact(x, k) = x * k!, recursively; each frame holds a buffer across its call; x[0] < 0 fails at the bottom
FACT = """\
builtin.module {
  func.func @fact(%x: memref<?xf32>, %k: index) -> memref<?xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = memref.dim %x, %c0 : memref<?xf32>
    %tmp = memref.alloc(%n) {alignment = 64 : i64} : memref<?xf32>
    %base = arith.cmpi eq, %k, %c0 : index
    %r = scf.if %base -> (memref<?xf32>) {
      %first = memref.load %x[%c0] : memref<?xf32>
      %zero = arith.constant 0.0 : f32
      %ok = arith.cmpf oge, %first, %zero : f32
      cf.assert %ok, "@fact: x[0] must not be negative"
      %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?xf32>
      "memref.copy"(%x, %a) : (memref<?xf32>, memref<?xf32>) -> ()
      scf.yield %a : memref<?xf32>
    } else {
      %k1 = arith.subi %k, %c1 : index
      %y = func.call @fact(%x, %k1) : (memref<?xf32>, index) -> memref<?xf32>
      %kf = arith.index_cast %k : index to i64
      %kff = arith.sitofp %kf : i64 to f32
      %z = memref.alloc(%n) {alignment = 64 : i64} : memref<?xf32>
      scf.for %i = %c0 to %n step %c1 {
        %v = memref.load %y[%i] : memref<?xf32>
        %w = arith.mulf %v, %kff : f32
        memref.store %w, %z[%i] : memref<?xf32>
      }
      memref.dealloc %y : memref<?xf32>
      scf.yield %z : memref<?xf32>
    }
    memref.dealloc %tmp : memref<?xf32>
    func.return %r : memref<?xf32>
  }
}
"""

# @even(x, k) = odd(x, k-1) + 1, @odd(x, k) = 2 * even(x, k-1); even(x, 0) = x, odd(x, 0) = -x
MUTUAL = """\
builtin.module {
  func.func @even(%x: memref<?xf32>, %k: index) -> memref<?xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = memref.dim %x, %c0 : memref<?xf32>
    %base = arith.cmpi eq, %k, %c0 : index
    %r = scf.if %base -> (memref<?xf32>) {
      %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?xf32>
      "memref.copy"(%x, %a) : (memref<?xf32>, memref<?xf32>) -> ()
      scf.yield %a : memref<?xf32>
    } else {
      %k1 = arith.subi %k, %c1 : index
      %y = func.call @odd(%x, %k1) : (memref<?xf32>, index) -> memref<?xf32>
      %one = arith.constant 1.0 : f32
      scf.for %i = %c0 to %n step %c1 {
        %v = memref.load %y[%i] : memref<?xf32>
        %w = arith.addf %v, %one : f32
        memref.store %w, %y[%i] : memref<?xf32>
      }
      scf.yield %y : memref<?xf32>
    }
    func.return %r : memref<?xf32>
  }
  func.func @odd(%x: memref<?xf32>, %k: index) -> memref<?xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = memref.dim %x, %c0 : memref<?xf32>
    %base = arith.cmpi eq, %k, %c0 : index
    %r = scf.if %base -> (memref<?xf32>) {
      %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?xf32>
      %m = arith.constant -1.0 : f32
      scf.for %i = %c0 to %n step %c1 {
        %v = memref.load %x[%i] : memref<?xf32>
        %w = arith.mulf %v, %m : f32
        memref.store %w, %a[%i] : memref<?xf32>
      }
      scf.yield %a : memref<?xf32>
    } else {
      %k1 = arith.subi %k, %c1 : index
      %y = func.call @even(%x, %k1) : (memref<?xf32>, index) -> memref<?xf32>
      %two = arith.constant 2.0 : f32
      scf.for %i = %c0 to %n step %c1 {
        %v = memref.load %y[%i] : memref<?xf32>
        %w = arith.mulf %v, %two : f32
        memref.store %w, %y[%i] : memref<?xf32>
      }
      scf.yield %y : memref<?xf32>
    }
    func.return %r : memref<?xf32>
  }
}
"""

# @grow(x, steps, limit): a row per iteration (+-(i+1) * x, the sign an i1 flipped each time), and the
# sum of the i64 counter; fails once the buffer has `limit` rows
GROW = """\
builtin.module {
  func.func @grow(%x: memref<1x4xf32>, %steps: index, %limit: index) -> (memref<?x4xf32>, memref<1xi64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %z = arith.constant 0 : i64
    %t = arith.constant true
    %init = memref.alloc(%c1) {alignment = 64 : i64} : memref<?x4xf32>
    scf.for %j = %c0 to %c4 step %c1 {
      %v = memref.load %x[%c0, %j] : memref<1x4xf32>
      memref.store %v, %init[%c0, %j] : memref<?x4xf32>
    }
    %res:4 = scf.while (%buf = %init, %i = %c0, %s = %z, %f = %t) : (memref<?x4xf32>, index, i64, i1) -> (memref<?x4xf32>, index, i64, i1) {
      %more = arith.cmpi slt, %i, %steps : index
      scf.condition(%more) %buf, %i, %s, %f : memref<?x4xf32>, index, i64, i1
    } do {
    ^bb0(%b: memref<?x4xf32>, %k: index, %acc: i64, %flag: i1):
      %rows = memref.dim %b, %c0 : memref<?x4xf32>
      %small = arith.cmpi slt, %rows, %limit : index
      cf.assert %small, "@grow: the buffer outgrew its limit"
      %rows1 = arith.addi %rows, %c1 : index
      %nb = memref.alloc(%rows1) {alignment = 64 : i64} : memref<?x4xf32>
      scf.for %i = %c0 to %rows step %c1 {
        scf.for %j = %c0 to %c4 step %c1 {
          %v = memref.load %b[%i, %j] : memref<?x4xf32>
          memref.store %v, %nb[%i, %j] : memref<?x4xf32>
        }
      }
      %k1 = arith.addi %k, %c1 : index
      %kf = arith.index_cast %k1 : index to i64
      %kff = arith.sitofp %kf : i64 to f32
      scf.for %j = %c0 to %c4 step %c1 {
        %v = memref.load %x[%c0, %j] : memref<1x4xf32>
        %w = arith.mulf %v, %kff : f32
        %sgn = arith.constant -1.0 : f32
        %w2 = arith.mulf %w, %sgn : f32
        %wf = arith.select %flag, %w, %w2 : f32
        memref.store %wf, %nb[%rows, %j] : memref<?x4xf32>
      }
      memref.dealloc %b : memref<?x4xf32>
      %acc1 = arith.addi %acc, %kf : i64
      %nf = arith.xori %flag, %t : i1
      scf.yield %nb, %k1, %acc1, %nf : memref<?x4xf32>, index, i64, i1
    }
    %sum = memref.alloc() {alignment = 64 : i64} : memref<1xi64>
    memref.store %res#2, %sum[%c0] : memref<1xi64>
    func.return %res#0, %sum : memref<?x4xf32>, memref<1xi64>
  }
}
"""


def _build(text: str, target: str) -> CModule | InterpModule:
    module = parse_module(text)
    if target == "c":
        return CModule(module, cflags=(*DEFAULT_FLAGS, *WARNING_FLAGS, "-Werror"))
    return InterpModule(module)


def _even_odd(x: np.ndarray, k: int, even: bool) -> np.ndarray:
    if k == 0:
        return x.copy() if even else -x
    return _even_odd(x, k - 1, not even) + 1 if even else _even_odd(x, k - 1, not even) * 2


def _grow(x: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    rows = [x[0]] + [x[0] * (i + 1) * (1 if i % 2 == 0 else -1) for i in range(steps)]
    return np.stack(rows), sum(range(1, steps + 1))


@pytest.mark.parametrize("target", TARGETS)
def test_if_yields_buffers_of_either_branch(target: str) -> None:
    pick = _build(PICK, target)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (out,) = pick.call("pick", [x, 1])
    assert out.shape == (3, 4) and out.tolist() == (2 * x).tolist()
    (out,) = pick.call("pick", [x, 0])
    assert out.shape == (6, 4) and out.tolist() == np.concatenate([x, x]).tolist()
    (out,) = pick.call("pick", [x[:1], 0])  # another n: the yielded dims are the branch's
    assert out.shape == (2, 4) and out.tolist() == np.concatenate([x[:1], x[:1]]).tolist()


@pytest.mark.parametrize("target", TARGETS)
def test_error_inside_a_branch(target: str) -> None:
    pick = _build(PICK, target)
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ShapeError, match="@pick: k must not be negative"):
        pick.call("pick", [x, -1])
    assert pick.call("pick", [x, 1])[0].tolist() == (2 * x).tolist()


@pytest.mark.parametrize("target", TARGETS)
def test_recursive_calls_return_buffers(target: str) -> None:
    fact = _build(FACT, target)
    x = np.array([1.0, 2.0, -0.5], np.float32)
    for k in (0, 1, 5, 10):
        (out,) = fact.call("fact", [np.abs(x), k])
        np.testing.assert_allclose(out, np.abs(x) * np.prod(np.arange(1, k + 1), dtype=np.float64), rtol=1e-6)
    (out,) = fact.call("fact", [np.ones(7, np.float32), 3])
    assert out.shape == (7,) and out.tolist() == [6.0] * 7


@pytest.mark.parametrize("target", TARGETS)
def test_error_inside_a_callee(target: str) -> None:
    """The bottom of a recursion fails: every frame returns the error."""
    fact = _build(FACT, target)
    with pytest.raises(ShapeError, match=r"@fact: x\[0\] must not be negative"):
        fact.call("fact", [np.array([-1.0, 1.0], np.float32), 6])
    assert fact.call("fact", [np.ones(2, np.float32), 2])[0].tolist() == [2.0, 2.0]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("start", ["even", "odd"])
def test_mutual_recursion(target: str, start: str) -> None:
    """@even calls @odd, defined after it, and @odd calls @even."""
    funcs = _build(MUTUAL, target)
    x = np.array([1.0, -2.0, 0.5], np.float32)
    for k in (0, 1, 4, 7):
        (out,) = funcs.call(start, [x, k])
        assert out.tolist() == _even_odd(x, k, start == "even").tolist()


@pytest.mark.parametrize("target", TARGETS)
def test_while_grows_a_buffer(target: str) -> None:
    """scf.while carries a memref whose rows change every iteration, an index,
    an i64 and an i1; its body allocates the next buffer and frees the last."""
    grow = _build(GROW, target)
    x = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
    for steps in (0, 1, 5):
        out, total = grow.call("grow", [x, steps, 100])
        rows, expected_total = _grow(x, steps)
        assert out.shape == (steps + 1, 4) and out.tolist() == rows.tolist()
        assert total.tolist() == [expected_total]


@pytest.mark.parametrize("target", TARGETS)
def test_error_inside_a_loop(target: str) -> None:
    grow = _build(GROW, target)
    x = np.ones((1, 4), np.float32)
    for limit in (1, 3):
        with pytest.raises(ShapeError, match="@grow: the buffer outgrew its limit"):
            grow.call("grow", [x, 10, limit])
    assert grow.call("grow", [x, 2, 3])[0].shape == (3, 4)


@pytest.mark.parametrize("target", TARGETS)
def test_recursion_limit(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_RECURSION_DEPTH", "5")
    fact, funcs = _build(FACT, target), _build(MUTUAL, target)
    x = np.ones(2, np.float32)
    assert fact.call("fact", [x, 5])[0].tolist() == [120.0, 120.0]  # 5 nested calls
    with pytest.raises(ResourceLimitError, match="@fact: .*recursion deeper than 5 nested calls"):
        fact.call("fact", [x, 6])
    with pytest.raises(ResourceLimitError, match="recursion deeper than 5 nested calls"):
        funcs.call("even", [x, 6])
    assert funcs.call("even", [x, 5])[0].tolist() == _even_odd(x, 5, True).tolist()
    assert fact.call("fact", [x, 3])[0].tolist() == [6.0, 6.0]


def test_recursion_limit_default_in_c() -> None:
    """1000 nested calls by default; hostile depth fails instead of overflowing the C stack."""
    fact = _build(FACT, "c")
    x = np.ones(1, np.float32)
    assert fact.call("fact", [x, 1000])[0].shape == (1,)
    with pytest.raises(ResourceLimitError, match="recursion deeper than 1000 nested calls"):
        fact.call("fact", [x, 1001])
    with pytest.raises(ResourceLimitError, match="recursion deeper than 1000 nested calls"):
        fact.call("fact", [x, 10**12])


def test_interpreter_stack_is_a_resource_limit() -> None:
    """Python's stack ends before 1000 interpreted calls: a ResourceLimitError,
    not a RecursionError, and the module still runs afterwards."""
    fact = _build(FACT, "interp")
    with pytest.raises(ResourceLimitError, match="recursion deeper than"):
        fact.call("fact", [np.ones(1, np.float32), 999])
    assert fact.call("fact", [np.ones(1, np.float32), 4])[0].tolist() == [24.0]


def test_recursion_limit_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_MAX_RECURSION_DEPTH", "deep")
    with pytest.raises(ResourceLimitError, match="RELAX_XDSL_MAX_RECURSION_DEPTH='deep'"):
        _build(FACT, "interp")
    monkeypatch.setenv("RELAX_XDSL_MAX_RECURSION_DEPTH", "0")
    with pytest.raises(ResourceLimitError, match="must be positive"):
        _build(FACT, "interp")


# --- under ASan / LSan: no buffer leaks or is freed twice on the error paths -------

SANITIZED = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    from relax_xdsl.backend.c import CModule
    from relax_xdsl.errors import RelaxError
    from relax_xdsl.ir import parse_module

    pick, fact, mutual, grow = (CModule(parse_module(open(p).read())) for p in sys.argv[1:5])
    x1, x4 = np.ones(3, np.float32), np.ones((1, 4), np.float32)
    failing = [(pick, "pick", [np.ones((3, 4), np.float32), -1]), (fact, "fact", [-x1, 7]),
               (fact, "fact", [x1, 40]), (mutual, "even", [x1, 41]), (grow, "grow", [x4, 9, 1]),
               (grow, "grow", [x4, 9, 4])]
    for module, name, args in failing:
        for _ in range(2):
            try:
                module.call(name, args)
                raise SystemExit(f"{name} did not fail")
            except RelaxError as err:
                print(type(err).__name__, err, flush=True)
    print(pick.call("pick", [np.ones((3, 4), np.float32), 0])[0].shape, fact.call("fact", [x1, 6])[0].tolist(),
          mutual.call("odd", [x1, 9])[0].tolist(), grow.call("grow", [x4, 6, 10])[0].shape, flush=True)
    check = getattr(ctypes.CDLL(None), "__lsan_do_recoverable_leak_check", None)
    if check is not None:
        check()
    print("done", flush=True)
""")


def _asan_runtime() -> str | None:
    try:
        path = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return None
    return path if path and Path(path).is_file() else None


@pytest.mark.slow
def test_error_paths_free_every_buffer_once_under_asan(tmp_path: Path) -> None:
    """Errors in a branch, at the bottom of a recursion, past the recursion
    limit (limit 30 here) and in a loop whose carried buffer sits in several
    variables: ASan aborts on a double free or use after free, and LSan's
    report (Python's own allocations aside) names no generated function."""
    runtime = _asan_runtime()
    if runtime is None:
        pytest.skip("no libasan.so for this compiler")
    paths = []
    for name, text in [("pick", PICK), ("fact", FACT), ("mutual", MUTUAL), ("grow", GROW)]:
        paths.append(tmp_path / f"{name}.mlir")
        paths[-1].write_text(text)
    env = dict(os.environ, RELAX_XDSL_SANITIZE="address,undefined", RELAX_XDSL_CACHE_DIR=str(tmp_path / "cache"),
               RELAX_XDSL_MAX_RECURSION_DEPTH="30", LD_PRELOAD=runtime,
               ASAN_OPTIONS="detect_leaks=1:leak_check_at_exit=0", UBSAN_OPTIONS="print_stacktrace=1")
    proc = subprocess.run([sys.executable, "-P", "-c", SANITIZED, *map(str, paths)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "done" in proc.stdout, proc.stdout
    assert proc.stdout.count("recursion deeper than 30 nested calls") == 4
    assert proc.stdout.count("outgrew its limit") == 4
    assert "rx_alloc" not in proc.stderr and "rxf_" not in proc.stderr, proc.stderr[-4000:]
