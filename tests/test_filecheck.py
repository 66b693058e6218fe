"""FileCheck-style textual-IR tests: every tests/filecheck/**/*.mlir runs its
`// RUN:` line (`%s` is the file; `relax-xdsl-opt` and `filecheck` come from
this environment) and must succeed. One pytest case per file."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent / "filecheck"
FILES = sorted(ROOT.rglob("*.mlir"))
BIN = Path(sys.executable).parent


def _command(line: str, path: Path) -> str:
    return line.split("RUN:", 1)[1].strip().replace("%s", shlex.quote(str(path)))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_filecheck(path: Path) -> None:
    runs = [ln for ln in path.read_text().splitlines() if "RUN:" in ln]
    assert runs, f"{path} has no RUN line"
    for line in runs:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(_command(line, path), shell=True, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"


def test_there_are_filecheck_files() -> None:
    assert len(FILES) >= 5
