"""From an ONNX file to a C program that runs it with no Python.

Builds a small MLP with a symbolic batch in ONNX (MatMul, Add, Relu, MatMul,
Add, Softmax) and saves it; imports it with `rx.from_onnx`; writes it as a C
library, header and runner with `relax_xdsl.aot.build` (what `relax-xdsl
build model.onnx -o DIR` does); builds the runner with `make -C DIR`; then
runs `DIR/run_model in.npy out` at several batch sizes and checks its output
against `rx.compile` and, when installed, onnxruntime. Exits 1 on a mismatch.

    python examples/onnx_to_c_app.py

Everything is written in a temporary directory removed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import relax_xdsl as rx
from relax_xdsl.aot import build

FEATURES, HIDDEN, CLASSES = 16, 32, 10
BATCHES = (1, 3, 8)
"""Batch sizes run through the one built program (the batch is a symbol)."""
RTOL, ATOL = 1e-4, 1e-6


def mlp_model() -> onnx.ModelProto:
    """softmax(relu(x @ w1 + b1) @ w2 + b2) over the last axis, x of shape [batch, FEATURES]."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((FEATURES, HIDDEN)).astype("float32") * 0.3,
        "b1": rng.standard_normal(HIDDEN).astype("float32") * 0.1,
        "w2": rng.standard_normal((HIDDEN, CLASSES)).astype("float32") * 0.3,
        "b2": rng.standard_normal(CLASSES).astype("float32") * 0.1,
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["xw1"]),
        helper.make_node("Add", ["xw1", "b1"], ["h0"]),
        helper.make_node("Relu", ["h0"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["hw2"]),
        helper.make_node("Add", ["hw2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=[numpy_helper.from_array(a, name) for name, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def onnxruntime_session(path: Path) -> Any:
    """An onnxruntime session for the model, or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(command: list[str], cwd: Path) -> None:
    """Runs `command` in `cwd`, showing its output only when it fails (then exits 1)."""
    print("$", " ".join(command))
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        sys.exit(f"{command[0]} exited with status {proc.returncode}")


def main() -> int:
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"this example needs {' and '.join(missing)} on PATH")
    with tempfile.TemporaryDirectory(prefix="onnx_to_c_app_") as tmp:
        work = Path(tmp)
        path = work / "mlp.onnx"
        onnx.save(mlp_model(), str(path))
        print(f"saved the ONNX model: {path.name} (input x: [batch, {FEATURES}])")

        module = rx.from_onnx(str(path))
        out_dir = work / "mlp_c"
        result = build(module, out_dir)
        written = sorted(p.name for p in out_dir.iterdir())
        print(f"built {result.entry}() into {out_dir.name}/: {', '.join(written)}")
        run(["make", "-s", "-C", out_dir.name], work)

        exe = rx.compile(module, target="c")
        session = onnxruntime_session(path)
        if session is None:
            print("onnxruntime is not installed: comparing with rx.compile only")
        worst = 0.0
        rng = np.random.default_rng(1)
        for batch in BATCHES:
            x = rng.standard_normal((batch, FEATURES)).astype("float32")
            np.save(work / "in.npy", x)
            run([f"./{out_dir.name}/run_model", "in.npy", "out"], work)
            got = np.load(work / "out0.npy")
            references = {"rx.compile": np.asarray(exe.main(x))}
            if session is not None:
                references["onnxruntime"] = session.run(None, {"x": x})[0]
            for name, want in references.items():
                if got.shape != want.shape or not np.allclose(got, want, rtol=RTOL, atol=ATOL):
                    diff = f"max |difference| {np.abs(got - want).max():.1e}" if got.shape == want.shape else ""
                    print(f"MISMATCH at batch {batch}: run_model's output {got.shape} differs from {name}'s "
                          f"{want.shape} {diff}", file=sys.stderr)
                    return 1
                worst = max(worst, float(np.abs(got - want).max()))
            print(f"batch {batch}: run_model's output {got.shape} matches {' and '.join(references)}")
        print(f"all batches match (max |difference| {worst:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
