"""RELAX_XDSL_SANITIZE builds generated C with ASan / UBSan, every report
fatal: a user library that writes past its output, or shifts by more than
its width, is caught (the process dies with the sanitizer's report) instead
of corrupting memory quietly. Each case runs in a subprocess, as CI runs
the op tests and a fuzz batch under the same switch (.ci/run)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROGRAM = textwrap.dedent("""
    import numpy as np
    import relax_xdsl as rx
    from relax_xdsl import op
    from relax_xdsl.dialects.lib import LibFuncOp
    from relax_xdsl.dialects.relax import TensorType
    from relax_xdsl.dialects.tir import BufferType
    from relax_xdsl.libraries import register_library_function

    C = '''
    void test_faulty(float* x, float* out, int64_t nx, int64_t n) {
      volatile int64_t s = 40 + (int64_t)(nx - n);
      for (int64_t i = 0; i < n; ++i) out[i] = x[i] + (BAD_SHIFT ? (float)(1 << s) : 0.0f);
      if (BAD_WRITE) out[n] = 1.0f;
    }
    '''.replace("BAD_SHIFT", "{shift}").replace("BAD_WRITE", "{write}")

    def ref(x, out):
        out[...] = x

    register_library_function("test.faulty", ref, c_source=C)
    buf = BufferType.of(["n"], "float32")
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(LibFuncOp("faulty", [buf, buf], "test_faulty", "test", reference="test.faulty"))
        x = fb.param("x", ["n"], "float32")
        fb.ret(fb.call_lib("faulty", [op.exp(x)], TensorType.of(["n"], "float32")))
    exe = rx.compile(fb.module, target="c")
    print("result", exe.main(np.zeros(16, np.float32)).sum(), flush=True)
""")


def _asan_runtime() -> str | None:
    try:
        path = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return None
    return path if path and Path(path).is_file() else None


def _run(sanitize: str, shift: int, write: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RELAX_XDSL_SANITIZE=sanitize, RELAX_XDSL_CACHE_DIR=str(tmp_path / "cache"),
               ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="print_stacktrace=1")
    if "address" in sanitize:
        runtime = _asan_runtime()
        if runtime is None:
            pytest.skip("no libasan.so for this compiler")
        env["LD_PRELOAD"] = runtime
    source = PROGRAM.replace("{shift}", str(shift)).replace("{write}", str(write))
    return subprocess.run([sys.executable, "-P", "-c", source], capture_output=True, text=True, env=env, timeout=300)


def test_asan_reports_an_out_of_bounds_write(tmp_path: Path) -> None:
    proc = _run("address,undefined", 0, 1, tmp_path)
    assert proc.returncode != 0
    assert "AddressSanitizer: heap-buffer-overflow" in proc.stderr
    assert "test_faulty" in proc.stderr


def test_ubsan_reports_an_oversized_shift(tmp_path: Path) -> None:
    proc = _run("undefined", 1, 0, tmp_path)
    assert proc.returncode != 0
    assert "runtime error: shift exponent 40" in proc.stderr


def test_a_clean_library_passes_under_both(tmp_path: Path) -> None:
    proc = _run("address,undefined", 0, 0, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "result 16.0" in proc.stdout


def test_unknown_sanitizer_and_missing_runtime_are_clear_errors(tmp_path: Path) -> None:
    env = dict(os.environ, RELAX_XDSL_SANITIZE="adress", RELAX_XDSL_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("LD_PRELOAD", None)
    source = PROGRAM.replace("{shift}", "0").replace("{write}", "0")
    proc = subprocess.run([sys.executable, "-P", "-c", source], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "unknown sanitizer(s) 'adress'" in proc.stderr
    env["RELAX_XDSL_SANITIZE"] = "address"
    proc = subprocess.run([sys.executable, "-P", "-c", source], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "LD_PRELOAD" in proc.stderr and "Traceback" in proc.stderr
