"""The documentation runs and is current.

- docs/ir_reference.md and docs/onnx_coverage.md are regenerated
  (relax_xdsl/docs.py) and must equal the committed files, so a new op,
  dialect change or converter without a regenerated document fails here.
  The coverage table is regenerated from the committed
  docs/onnx_conformance.json, so the converter column and the pass counts
  are both compared (the counts change only when that file is replaced by a
  new run's: `python -m relax_xdsl.docs trim-results results.json`).
- Every ```python block of README.md and docs/*.md runs as written: a file's
  blocks in order, in one fresh `python -P` process per file, in an empty
  temporary directory. A block preceded by a `<!-- no-run -->` line is left
  out. A failure names the markdown file and line.
- Every examples/*.py runs and exits 0.

Blocks are laid out in a script at their own line numbers (every other line
blank), so a traceback's line in the script is the line in the markdown.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NO_RUN = "<!-- no-run -->"
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
SLOW_EXAMPLES: frozenset[str] = frozenset({"build_mlp.py"})
"""Examples taking more than about 20 s (marked slow)."""
TIMEOUT = 900


@dataclass(frozen=True)
class Block:
    start: int
    """1-based line of the block's first code line."""
    lines: tuple[str, ...]


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a markdown text, without those marked no-run."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if m is None:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        if lang == "python" and previous != NO_RUN:
            body = tuple(line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end])
            blocks.append(Block(i + 2, body))
        i = end + 1
    return blocks


def script_of(blocks: list[Block]) -> str:
    """The blocks as one script, each at its markdown line numbers."""
    out: list[str] = []
    for b in blocks:
        out += [""] * (b.start - 1 - len(out))
        out += list(b.lines)
    return "\n".join(out) + "\n"


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-P", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def failure_line(stderr: str, script: str) -> int | None:
    """The last line of `script` a traceback names."""
    lines = re.findall(rf'File "{re.escape(script)}", line (\d+)', stderr)
    return int(lines[-1]) if lines else None


def test_block_extraction_keeps_lines_and_skips_no_run() -> None:
    text = "# t\n\n```python\nx = 1\n```\n\n<!-- no-run -->\n```python\nimport torch\n```\n\n  ```python\n  y = x\n  ```\n"
    blocks = python_blocks(text)
    assert [(b.start, b.lines) for b in blocks] == [(4, ("x = 1",)), (13, ("y = x",))]
    assert script_of(blocks).splitlines()[3] == "x = 1" and script_of(blocks).splitlines()[12] == "y = x"


def test_a_failing_block_is_reported_at_its_markdown_line(tmp_path: Path) -> None:
    blocks = python_blocks("intro\n\n```python\nx = 1\n\nprint(undefined_name)\n```\n")
    script = tmp_path / "doc.py"
    script.write_text(script_of(blocks))
    proc = run_python([str(script)], tmp_path)
    assert proc.returncode != 0 and failure_line(proc.stderr, str(script)) == 6


@pytest.mark.parametrize("path", MARKDOWN, ids=[p.relative_to(ROOT).as_posix() for p in MARKDOWN])
def test_markdown_python_blocks_run(path: Path, tmp_path: Path) -> None:
    blocks = python_blocks(path.read_text())
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    script = tmp_path / "doc_blocks.py"
    script.write_text(script_of(blocks))
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    proc = run_python([str(script)], run_dir)
    if proc.returncode != 0:
        line = failure_line(proc.stderr, str(script))
        error = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        where = f"{path.relative_to(ROOT)}:{line}" if line is not None else str(path.relative_to(ROOT))
        pytest.fail(f"{where}: {error}\n{proc.stderr[-3000:]}", pytrace=False)


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW_EXAMPLES else []) for p in EXAMPLES
], ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    proc = run_python([str(path)], tmp_path)
    assert proc.returncode == 0, f"examples/{path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def test_ir_reference_is_current() -> None:
    from relax_xdsl.docs import ir_reference
    from relax_xdsl.ops.registry import all_specs

    text = ir_reference()
    committed = (DOCS / "ir_reference.md").read_text()
    assert text == committed, "docs/ir_reference.md is stale: python -m relax_xdsl.docs ir > docs/ir_reference.md"
    builtin = [n for n, s in all_specs().items() if type(s).__module__.startswith("relax_xdsl.")]
    missing = [n for n in builtin if f"### `relax.{n}`" not in committed]
    assert not missing, f"graph ops missing from docs/ir_reference.md: {missing}"


def test_ir_reference_leaves_out_ops_registered_by_user_code() -> None:
    """Ops registered from user code in this process do not change the
    generated file (other tests register ops in the same process)."""
    from relax_xdsl.docs import ir_reference
    from relax_xdsl.ops.registry import ELEMWISE, OpSpec, register_op

    class DocsTestOnlyOp(OpSpec):
        """An op of this test only."""

        name = "docs_test_only_op"
        inputs = ("x",)
        pattern = ELEMWISE

    DocsTestOnlyOp.__module__ = __name__
    register_op(DocsTestOnlyOp)
    assert "docs_test_only_op" not in ir_reference()


def test_onnx_coverage_is_current() -> None:
    pytest.importorskip("onnx")
    import json

    from relax_xdsl.docs import onnx_converters, onnx_coverage

    results = json.loads((DOCS / "onnx_conformance.json").read_text())
    text = onnx_coverage(results, "onnx_conformance.json")
    assert text == (DOCS / "onnx_coverage.md").read_text(), (
        "docs/onnx_coverage.md is stale: python -m relax_xdsl.docs onnx --results docs/onnx_conformance.json "
        "> docs/onnx_coverage.md")
    for op_type in onnx_converters():
        row = re.search(rf"^\| {re.escape(op_type)}( \(deprecated\))? \| yes", text, re.M)
        assert row is not None or f"`{op_type}`" in text, f"{op_type}'s converter is not in docs/onnx_coverage.md"
