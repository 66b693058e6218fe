"""Docstrings and comments keep the why, not measured history: a timing or
speedup quoted in the source ("34.6 -> 27.3 ms", "2.5x slower", "costs
~0.45 us") goes stale with the next compiler, machine or schedule, while the
reason stays true. Figures belong in benchmark output (benchmarks/run.py
--markdown docs/performance.md), not in relax_xdsl/, passes/ or dialects/.

Only comments and docstrings are read (a Python string statement is a
docstring here; C comments are /* */ and //), so code printing timings is
not flagged; text in backticks is a quoted format example and is skipped."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("relax_xdsl", "passes", "dialects")

FIGURE = re.compile(
    r"\d\s*(?:ms|us|µs|ns)\b"                                   # a time: 0.45 us, 27.3 ms
    r"|\b\d+(?:\.\d+)?x\s+(?:slower|faster|better|worse)\b"     # a ratio: 2.5x slower
    r"|\d+(?:-\d+)?%\s+(?:longer|shorter|slower|faster)\b"      # a change: 40-60% longer
)
BACKTICKS = re.compile(r"`[^`\n]*`")
C_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
STATEMENT_START = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


def python_prose(text: str) -> list[tuple[int, str]]:
    """(line, text) of each comment and docstring of a Python source."""
    out: list[tuple[int, str]] = []
    previous = tokenize.ENCODING
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            out.append((tok.start[0], tok.string))
        elif tok.type == tokenize.STRING and previous in STATEMENT_START:
            out.append((tok.start[0], tok.string))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok.type
    return out


def c_prose(text: str) -> list[tuple[int, str]]:
    """(line, text) of each comment of a C source."""
    return [(text.count("\n", 0, m.start()) + 1, m.group()) for m in C_COMMENT.finditer(text)]


def figures(prose: list[tuple[int, str]]) -> list[str]:
    found = []
    for line, text in prose:
        plain = BACKTICKS.sub("", text)
        for m in FIGURE.finditer(plain):
            found.append(f"line {line + plain.count(chr(10), 0, m.start())}: {m.group()!r}")
    return found


def source_files() -> list[Path]:
    files: list[Path] = []
    for d in SOURCE_DIRS:
        for pattern in ("*.py", "*.c", "*.h"):
            files += (ROOT / d).rglob(pattern)
    return sorted(files)


def test_detector_finds_figures() -> None:
    """The patterns catch the kinds of figure this test exists for, and not code or format examples."""
    assert figures(python_prose('"""measured: 34.6 -> 27.3 ms."""\n'))
    assert figures(python_prose("x = 1  # layer_norm ran 2.5x slower\n"))
    assert figures(python_prose('def f() -> None:\n    """gcc took 40-60% longer."""\n'))
    assert figures(c_prose("int x; /* costs ~0.45 us */\n"))
    assert not figures(python_prose('print(f"{t:.2f} ms")\ns = "1 ms"\n'))
    assert not figures(python_prose('"""Lines (`  pass legalize  12.31 ms`)."""\n'))


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_measured_figures_in_prose(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    prose = python_prose(text) if path.suffix == ".py" else c_prose(text)
    found = figures(prose)
    assert not found, (f"{path.relative_to(ROOT)} quotes measured figures in comments or docstrings; keep the "
                       f"reason, drop the numbers: {'; '.join(found)}")
