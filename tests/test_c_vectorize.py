"""The C target's default flags let gcc vectorize loops over the runtime's
float math (rx_expf, rx_erff, rx_tanhf) and NaN-propagating max / min:
softmax, sigmoid, tanh and GELU, in generated kernels and in the BLAS
epilogues. With gcc's default -ftrapping-math those loops stay scalar (the
selects inside the functions would raise FP flags on both sides), which
made BERT's GELU epilogue a large part of a forward pass; a max written
with || was a branch, which kept max pooling scalar."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from relax_xdsl.backend.c import DEFAULT_FLAGS, REQUIRED_FLAGS
from relax_xdsl.backend.c_runtime import SOURCE_DIR
from relax_xdsl.backend.toolchain import compiler

LOOPS = {
    "rx_expf": "for (int64_t i = 0; i < n; ++i) x[i] = rx_expf(x[i]);",
    "rx_tanhf": "for (int64_t i = 0; i < n; ++i) x[i] = rx_tanhf(x[i]);",
    "rx_maxff": "for (int64_t i = 0; i < n / 2; ++i) x[i] = rx_maxff(rx_maxff(x[2 * i], x[2 * i + 1]), x[n / 2 + i]);",
    "rx_minf": "for (int64_t i = 0; i < n; ++i) x[i] = (float)rx_minf((double)x[i], 0.5);",
    "rx_erff": "for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + rx_erff(x[i] * 0.70710678f));",
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_runtime_float_math_vectorizes_with_default_flags(name: str, tmp_path: Path) -> None:
    source = tmp_path / "loop.c"
    source.write_text(f'#include "rx_runtime.h"\nvoid f(float* x, int64_t n) {{\n  {LOOPS[name]}\n}}\n')
    flags = [f for f in (*DEFAULT_FLAGS, *REQUIRED_FLAGS) if f != "-shared"]
    result = subprocess.run([*compiler(), *flags, f"-I{SOURCE_DIR}", "-fopt-info-vec-optimized", "-c", str(source),
                             "-o", str(tmp_path / "loop.o")], capture_output=True, text=True, check=True)
    reports = [line for line in result.stderr.splitlines() if line.startswith(f"{source}:3:")]
    assert any("loop vectorized" in line for line in reports), result.stderr
