"""The command-line tools, run as a user runs them (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
MODEL = """builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32> {
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
    %1 = relax.relu %0 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    relax.return %1 : !relax.tensor<[n, m], f32>
  }
}
"""


def run(tool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, input=stdin, timeout=600)


def test_demo() -> None:
    proc = run("relax-xdsl", "demo")
    assert proc.returncode == 0, proc.stderr
    assert "n=1 " in proc.stdout and "n=64" in proc.stdout and "OK" in proc.stdout


def test_run_random_inputs_and_given_inputs(tmp_path: Path) -> None:
    model = tmp_path / "m.mlir"
    model.write_text(MODEL)
    proc = run("relax-xdsl", "run", str(model), "--shape", "n=3", "--shape", "m=2", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "output: float32[3, 2]" in proc.stdout and "max |difference|" in proc.stdout
    w = tmp_path / "w.npy"
    np.save(w, np.eye(4, 5, dtype=np.float32))
    proc = run("relax-xdsl", "run", str(model), "--shape", "n=2", "--input", f"w={w}", "--target", "interp")
    assert proc.returncode == 0, proc.stderr
    assert "output: float32[2, 5]" in proc.stdout


def test_run_errors_are_one_line(tmp_path: Path) -> None:
    model = tmp_path / "m.mlir"
    model.write_text(MODEL)
    proc = run("relax-xdsl", "run", str(model), "--shape", "n=3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "input w" in proc.stderr and "--shape" in proc.stderr
    bad = tmp_path / "bad.mlir"
    bad.write_text(MODEL.replace("[4, m]", "[4 m]"))
    proc = run("relax-xdsl", "run", str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and ":2:" in proc.stderr
    w = tmp_path / "w.npy"
    np.save(w, np.ones((5, 2), np.float32))
    proc = run("relax-xdsl", "run", str(model), "--shape", "n=2", "--input", f"w={w}")
    assert proc.returncode == 1 and "input w" in proc.stderr and "dim 0" in proc.stderr


def test_opt_passes_pipelines_and_targets(tmp_path: Path) -> None:
    model = tmp_path / "m.mlir"
    model.write_text(MODEL)
    proc = run("relax-xdsl-opt", str(model), "-p", "legalize{ops=relu}")
    assert proc.returncode == 0, proc.stderr
    assert "relax.call_tir @relu" in proc.stdout and "relax.matmul" in proc.stdout
    proc = run("relax-xdsl-opt", str(model), "-p", "default")
    assert proc.returncode == 0 and "func.func @main" in proc.stdout and "relax.call_tir" not in proc.stdout.split("func.func @main")[1].split("func.func")[0]
    again = run("relax-xdsl-opt", "-p", "cse", stdin=proc.stdout)
    assert again.returncode == 0, again.stderr
    proc = run("relax-xdsl-opt", str(model), "-p", "default", "-t", "c")
    assert proc.returncode == 0 and "int rxf_main(" in proc.stdout
    proc = run("relax-xdsl-opt", str(model), "-p", "debug", "--print-between-passes")
    assert proc.returncode == 0 and "IR after legalize" in proc.stdout


def test_opt_errors_have_no_traceback(tmp_path: Path) -> None:
    proc = run("relax-xdsl-opt", stdin="builtin.module {\n  relax.bogus\n}\n")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "stdin:3:1" in proc.stderr and "relax.bogus is not registered" in proc.stderr
    wrong = MODEL.replace("!relax.tensor<[n, m], f32>", "!relax.tensor<[n, 5], f32>")  # matmul deduces [n, m]
    proc = run("relax-xdsl-opt", stdin=wrong)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "matmul" in proc.stderr
    proc = run("relax-xdsl-opt", "-p", "nosuchpass", stdin=MODEL)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


def _onnx_model(path: Path) -> None:
    """A small ONNX MLP with a dynamic batch `batch` (built with onnx.helper)."""
    import pytest

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w1", (6, 8)), ("b1", (8,)), ("w2", (8, 3)))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["m"]), helper.make_node("Softmax", ["m"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_import_run_and_bench_onnx(tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    _onnx_model(model)
    out = tmp_path / "mlp.mlir"
    proc = run("relax-xdsl", "import", str(model), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "relax.function @main(%x: !relax.tensor<[batch, 6], f32>)" in text and "relax.constant" in text
    proc = run("relax-xdsl", "run", str(out), "--shape", "batch=5", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "output: float32[5, 3]" in proc.stdout
    # the ONNX file directly, against onnxruntime and the evaluator, with each pass shown (the default
    # pipeline is the optimizing one: offload among them)
    proc = run("relax-xdsl", "run", str(model), "--shape", "batch=1", "--ort", "--check", "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert "from onnxruntime" in proc.stdout and "pass legalize" in proc.stderr and "pass offload" in proc.stderr
    # weights in a side file, passed back as parameters
    params = tmp_path / "w.npz"
    proc = run("relax-xdsl", "import", str(model), "-o", str(out), "--params-file", str(params))
    assert proc.returncode == 0, proc.stderr
    assert "relax.constant" not in out.read_text() and params.exists()
    x = tmp_path / "x.npy"
    np.save(x, np.ones((2, 6), np.float32))
    proc = run("relax-xdsl", "run", str(out), "--params", str(params), "--input", f"x={x}", "--target", "interp",
               "--check")
    assert proc.returncode == 0, proc.stderr
    assert "output: float32[2, 3]" in proc.stdout
    proc = run("relax-xdsl", "bench", str(model), "--shape", "batch=4", "--repeat", "3", "--ort")
    assert proc.returncode == 0, proc.stderr
    assert "compile cold" in proc.stdout and "cached" in proc.stdout and "onnxruntime" in proc.stdout
    assert "median ms" in proc.stdout


def test_driver_errors_onnx(tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    _onnx_model(model)
    proc = run("relax-xdsl", "run", str(model))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "batch" in proc.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(model.read_bytes()[:100])
    for cmd in ("run", "import", "bench"):
        proc = run("relax-xdsl", cmd, str(bad))
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and "bad.onnx" in proc.stderr, proc.stderr
    proc = run("relax-xdsl", "run", str(model), "--input", "nope=x.npy")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    proc = run("relax-xdsl", "run", str(tmp_path / "missing.onnx"))
    assert proc.returncode == 1 and "no such file" in proc.stderr
