"""`relax-xdsl-opt` as a user runs it: the `dot` target at every stage,
IR inspection after passes, per-pass timing, and one-line diagnostics (with
line and column) for every kind of bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from util import LEGALIZED_RELU as LEGALIZED

BIN = Path(sys.executable).parent

GRAPH = """builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, k], f32> {
    %0 = relax.dataflow -> (!relax.tensor<[n, m], f32>) {
      %1 = relax.exp %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
      %2 = relax.matmul %1, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
      %3 = relax.split %2 {indices_or_sections = 1 : i64} : (!relax.tensor<[n, m], f32>) -> tuple<!relax.tensor<[n, m], f32>>
      %4 = relax.get_item %3[0] : tuple<!relax.tensor<[n, m], f32>>
      relax.output %4 : !relax.tensor<[n, m], f32>
    }
    %5 = relax.relu %0 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    %6 = relax.negative %5 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    %7 = relax.match_cast %6 : !relax.tensor<[n, m], f32> -> !relax.tensor<[n, k], f32>
    relax.return %7 : !relax.tensor<[n, k], f32>
  }
}
"""

RELU = """builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    %0 = relax.relu %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %0 : !relax.tensor<[n, 4], f32>
  }
}
"""



def opt(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "relax-xdsl-opt"), str(path), *args], capture_output=True, text=True,
                          timeout=300)


def write(tmp_path: Path, text: str, name: str = "m.mlir") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def check_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """A structural check of the DOT text (no graphviz needed): balanced
    braces, properly quoted labels, edges between declared nodes. Returns
    the node labels and the edges (src, dst, label)."""
    assert text.startswith("digraph relax {") and text.rstrip().endswith("}")
    q = r'"((?:[^"\\]|\\.)*)"'
    nodes, edges = {}, []
    depth = 0
    for line in text.splitlines():
        s = line.strip()
        depth += s.count("{") - s.count("}") if not s.startswith(("n", "label")) else 0
        if m := re.fullmatch(rf"(n\d+) \[label={q}, shape=\w+(, [^\]]*)?\];", s):
            nodes[m.group(1)] = m.group(2)
        elif m := re.fullmatch(rf"(n\d+) -> (n\d+) \[label={q}\];", s):
            edges.append((m.group(1), m.group(2), m.group(3)))
        else:
            assert s in ("}", "rankdir=TB;", "style=dashed;") or \
                s.startswith(("subgraph cluster_", "label=", "node [", "edge [", "digraph")), s
    assert depth == 0
    for a, b, _ in edges:
        assert a in nodes and b in nodes
    return nodes, edges


def test_dot_at_every_stage(tmp_path: Path) -> None:
    m = write(tmp_path, GRAPH)
    for passes, ops in (("", ["relax.exp", "relax.matmul", "relax.split", "relax.get_item", "relax.relu", "relax.match_cast"]),
                        ("legalize", ["relax.call_tir @exp", "relax.call_tir @matmul", "relax.call_tir @relu"]),
                        ("offload{lib=blas}", ["lib.call @blas_matmul_2x2"]),
                        ("annotate-op-pattern,fuse-ops,fuse-tir", ["relax.call_tir @fused_negative_relu", "relax.match_cast"])):
        proc = opt(m, *(["-p", passes] if passes else []), "-t", "dot")
        assert proc.returncode == 0, proc.stderr
        nodes, edges = check_dot(proc.stdout)
        labels = "\n".join(nodes.values())
        for name in ops:
            assert name in labels, (passes, labels)
        assert "%x" in labels and "return" in labels
        assert ("[n, 4] f32" in {e[2] for e in edges}) and ("[n, m] f32" in {e[2] for e in edges})
    # the whole MLP example, with its weights as constants
    proc = opt(Path(__file__).parent.parent / "relax_xdsl" / "examples" / "mlp.mlir", "-t", "dot")
    nodes, edges = check_dot(proc.stdout)
    assert any(label.startswith("constant") for label in nodes.values())
    assert "[n, 784] f32" in {e[2] for e in edges}


def test_dot_escapes_and_needs_graph_functions(tmp_path: Path) -> None:
    from relax_xdsl.backend.dot import quote

    assert quote('a "b"\\n\n') == '"a \\"b\\"\\\\n\\n"'
    proc = opt(write(tmp_path, RELU), "-p", "default", "-t", "dot")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "graph functions" in proc.stderr


def test_print_ir_after_and_time_passes(tmp_path: Path) -> None:
    m = write(tmp_path, RELU)
    proc = opt(m, "-p", "legalize,lower-tir,lower-graph", "--print-ir-after=legalize")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("IR after") == 1 and "// -----// IR after legalize //----- //" in proc.stderr
    assert "relax.call_tir @relu" in proc.stderr and "func.func @main" in proc.stdout
    proc = opt(m, "-p", "debug", "--print-ir-after-all")
    assert [line for line in proc.stderr.splitlines() if "IR after" in line] == [
        f"// -----// IR after {p} //----- //"
        for p in ("legalize", "auto-schedule", "lower-tir", "lower-graph", "schedule-loops")]
    proc = opt(m, "-p", "default", "--time-passes")
    assert proc.returncode == 0, proc.stderr
    for name in ("offload", "annotate-op-pattern", "fuse-ops", "fuse-tir", "legalize", "auto-schedule", "lower-tir",
                 "lower-graph", "canonicalize", "cse", "schedule-loops", "total"):
        assert re.search(rf"^{name}\S*\s+\d+\.\d+\s+\d+\.\d", proc.stderr, re.M), (name, proc.stderr)
    assert "builtin.module" in proc.stdout  # timings do not pollute the output
    proc = opt(m, "-p", "legalize", "--print-ir-after=nonsense")
    assert proc.returncode == 1 and "unknown pass 'nonsense'" in proc.stderr and "Traceback" not in proc.stderr


BAD: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("truncated", RELU[: len(RELU) // 2], r":\d+:\d+", ()),
    ("unknown-op", RELU.replace("relax.relu", "relax.frobnicate"), r"3:\d+|relax.frobnicate", ()),
    ("dim-trailing-plus", RELU.replace("[n, 4]", "[n+, 4]", 1), r"2:\d+", ()),
    ("dim-power", RELU.replace("[n, 4]", "[2**n, 4]", 1), r"2:\d+", ()),
    ("dim-injection", RELU.replace("[n, 4]", "[__import__('os'), 4]", 1), r"2:\d+", ()),
    ("wrong-type", RELU.replace("-> !relax.tensor<[n, 4], f32>\n    relax.return", "-> !relax.tensor<[n, 5], f32>\n"
                                "    relax.return"), r"differs|\[n, 5\]", ()),
    ("call-tir-arity", LEGALIZED.replace("@relu(%x)", "@relu(%x, %x)").replace(
        "(!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>\n    relax.return",
        "(!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>\n    relax.return"),
     r":3:5: relax.call_tir.*2 inputs", ()),
    ("call-tir-rank", LEGALIZED.replace("%x: !tir.buffer<[n, 4], f32>, %out", "%x: !tir.buffer<[n], f32>, %out")
     .replace("tir.load %x[%0, %1] : !tir.buffer<[n, 4], f32>", "tir.load %x[%0] : !tir.buffer<[n], f32>"),
     r":3:5: relax.call_tir.*rank", ()),
    ("call-tir-dtype", LEGALIZED.replace("%x: !tir.buffer<[n, 4], f32>, %out", "%x: !tir.buffer<[n, 4], f64>, %out")
     .replace("tir.load %x[%0, %1] : !tir.buffer<[n, 4], f32>\n      tir.yield %2 : f32",
              "tir.load %x[%0, %1] : !tir.buffer<[n, 4], f64>\n      %3 = arith.truncf %2 : f64 to f32\n"
              "      tir.yield %3 : f32"), r":3:5: relax.call_tir.*float64", ()),
    ("duplicate-function", RELU.replace("}\n}\n", "}\n" + RELU.split("\n", 1)[1].rsplit("}", 1)[0] + "}\n"),
     r"Redefinition of symbol \"main\"", ()),
    ("deduced-type-mismatch", RELU.replace("[n, 4]", "[n, 5]").replace("%x: !relax.tensor<[n, 5]", "%x: !relax.tensor<[n, 4]")
     .replace("(!relax.tensor<[n, 5], f32>) ->", "(!relax.tensor<[n, 4], f32>) ->"), r":3:5: relax.relu.*\[n, 5\]", ()),
    ("undefined-symbol-in-call", LEGALIZED.replace("@relu(%x)", "@nothing(%x)"), r":3:5|nothing", ()),
    ("unknown-pass", RELU, r"nonsense", ("-p", "nonsense")),
    ("bad-pass-option", RELU, r"legalize|frob", ("-p", "legalize{frob=1}")),
    ("bad-target", RELU, r"nope", ("-t", "nope")),
]


@pytest.mark.parametrize(("name", "text", "where", "args"), BAD, ids=[b[0] for b in BAD])
def test_errors_are_diagnostics_without_traceback(tmp_path: Path, name: str, text: str, where: str,
                                                  args: tuple[str, ...]) -> None:
    proc = opt(write(tmp_path, text), *args)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert re.search(where, proc.stderr), proc.stderr


def test_missing_and_unreadable_inputs(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.mlir", tmp_path):
        proc = opt(path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.startswith("relax-xdsl-opt")
    binary = tmp_path / "bin.mlir"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    proc = opt(binary)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
