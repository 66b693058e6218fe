"""Freed buffers stay in the heap between calls (backend.c.keep_freed_memory):
a function returning eight fresh 4 MiB arrays each call must not fault in
32 MiB of new pages each call, as it did with glibc's defaults (the decode step of
an LLM returns its whole KV cache). Counted in minor page faults, in a
fresh process per setting, since the tuning is process-wide."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import resource
import numpy as np
import relax_xdsl as rx
from relax_xdsl import op
with rx.FunctionBuilder("main") as fb:
    x = fb.param("x", ["n"], "float32")
    fb.ret(fb.tuple(*[op.add(x, float(k)) for k in range(8)]))
f = rx.compile(fb.module, target="c")["main"]
x = np.ones(1 << 20, np.float32)
for _ in range(5):
    f(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    y = f(x)
    del y
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(tuning: str) -> int:
    env = {**os.environ, "RELAX_XDSL_MALLOC_TUNING": tuning}
    out = subprocess.run([sys.executable, "-P", "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc's")
def test_returned_buffers_reuse_freed_memory() -> None:
    tuned, untuned = faults("1"), faults("0")
    pages = 40 * 8 * (4 << 20) // 4096  # 8 results of 4 MiB, 40 calls
    if untuned < pages // 2:  # e.g. transparent huge pages: few faults either way, nothing to compare
        pytest.skip(f"glibc's defaults fault only {untuned} pages here")
    assert tuned < pages // 10, (tuned, untuned)
