"""The command lines' rough edges, filed off: relax-xdsl-opt's help and
targets, --version on both commands, `run --output` / `--check` per output,
`--shape` validated against the model, inputs checked before compiling,
bench's labelled table and progress, and per-stage progress of a slow
compile. In-process (main(argv) with capsys) so the thresholds can be
monkeypatched."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import relax_xdsl as rx
from relax_xdsl.cli import compile_progress, driver, opt

TWO_OUTPUTS = """builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[4, m], f32>) -> (!relax.tensor<[n, m], f32>, !relax.tensor<[n, 4], f32>) {
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
    %1 = relax.relu %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %0, %1 : !relax.tensor<[n, m], f32>, !relax.tensor<[n, 4], f32>
  }
}
"""

HIDDEN_TARGETS = ("arm-asm", "csl", "llvm", "mps", "riscv-asm", "wat", "wgsl", "x86-asm")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "two.mlir"
    path.write_text(TWO_OUTPUTS)
    return path


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        opt.main(["--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_opt_help_starts_with_passes_pipelines_and_targets(capsys: pytest.CaptureFixture[str]) -> None:
    from relax_xdsl.passes import get_all_passes
    from relax_xdsl.passes.pipelines import PIPELINES

    text = _help(capsys)
    assert text.startswith("usage: relax-xdsl-opt ")
    notes = text[:text.index("positional arguments:")]  # before xDSL's generic help
    passes_at, pipelines_at, targets_at = (notes.index(h) for h in ("passes (", "pipelines (", "Targets ("))
    assert passes_at < pipelines_at < targets_at
    for name in get_all_passes():
        assert re.search(rf"\b{re.escape(name)}\b", notes[passes_at:pipelines_at]), name
    for name, spec in PIPELINES.items():
        assert re.search(rf"^  {re.escape(name)} +(\(.*\) )?{re.escape(spec)}$", notes[pipelines_at:targets_at],
                         re.M), name
    for name in ("mlir", "c", "dot"):
        assert re.search(rf"^  {name} +\S", notes[targets_at:], re.M), name
    for name in HIDDEN_TARGETS:  # neither in the notes nor in xDSL's -t help
        assert not re.search(rf"(?<![\w-]){name}(?![\w-])", text), name


@pytest.mark.parametrize("target", HIDDEN_TARGETS)
def test_opt_targets_that_fail_on_our_ir_are_usage_errors(model: Path, target: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        opt.main([str(model), "-p", "default", "-t", target])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"invalid choice: '{target}'" in err and "choose from mlir, c, dot" in err and "Traceback" not in err


def test_opt_kept_targets_work_on_lowered_ir(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert opt.main([str(model), "-p", "default", "-t", "mlir"]) == 0
    assert "func.func @main" in capsys.readouterr().out
    assert opt.main([str(model), "-p", "default", "-t", "c"]) == 0
    assert "int rxf_main(" in capsys.readouterr().out
    assert opt.main([str(model), "-t", "dot"]) == 0  # dot shows graph functions (before lower-graph)
    assert capsys.readouterr().out.startswith("digraph relax {")


@pytest.mark.parametrize(("main", "command"), [(opt.main, "relax-xdsl-opt"), (driver.main, "relax-xdsl")])
def test_version_is_relax_xdsl_s(main: object, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])  # type: ignore[operator]
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith(f"{command} {version('relax_xdsl')} ") and f"xDSL {version('xdsl')}" in out


def test_run_output_saves_every_output(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    out = tmp_path / "out.npz"
    assert driver.main(["run", str(model), "--input", f"x={x}", "--shape", "m=2", "--target", "interp",
                        "--output", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    with np.load(out) as saved:
        assert sorted(saved.files) == ["output0", "output1"]
        assert saved["output0"].shape == (3, 2)
        np.testing.assert_array_equal(saved["output1"], np.maximum(np.load(x), 0))


def test_check_names_the_output_past_the_tolerance(model: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    evaluate = rx.evaluate

    def off_in_output1(*args: object) -> tuple[np.ndarray, np.ndarray]:
        a, b = evaluate(*args)  # type: ignore[arg-type]
        return a, b + np.float32(0.5)

    monkeypatch.setattr(rx, "evaluate", off_in_output1)
    code = driver.main(["run", str(model), "--shape", "n=2", "--shape", "m=3", "--target", "interp", "--check"])
    err = capsys.readouterr().err
    assert code == 1
    failed = [line for line in err.splitlines() if "check failed" in line]
    assert len(failed) == 1, err
    assert failed[0].startswith("relax-xdsl: check failed: output1 (float32[2, 4]): ")
    assert "max |difference| from the reference evaluator 0.5 exceeds the tolerance 0.001" in failed[0]


@pytest.mark.parametrize(("shape", "message"), [
    ("k=3", "@main has no symbol 'k'; its input symbols are m, n"),
    ("n3", "--shape expects SYMBOL=N, got 'n3'"),
    ("n=three", "--shape n=three: the size 'three' is not an integer"),
    ("n=-2", "--shape n=-2: a size cannot be negative"),
    ("=2", "--shape expects SYMBOL=N, got '=2'"),
])
def test_bad_shape_is_a_clear_error(model: Path, shape: str, message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert driver.main(["run", str(model), "--shape", "m=2", "--shape", shape, "--target", "eval"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_shape_zero_is_an_empty_input(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert driver.main(["run", str(model), "--shape", "n=0", "--shape", "m=2", "--target", "eval"]) == 0
    assert "float32[0, 2]" in capsys.readouterr().out


@pytest.mark.parametrize(("array", "message"), [
    (np.ones((3, 4), np.float64), "@main input 'x': expected dtype float32, got float64"),
    (np.ones((3,), np.float32), "input x: expected rank 2"),
    (np.ones((3, 5), np.float32), "input x: dim 1 is 5 but the signature expects 4"),
])
def test_inputs_are_checked_before_compiling(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], array: np.ndarray,
                                             message: str) -> None:
    compiled: list[object] = []
    monkeypatch.setattr(rx, "compile", lambda *a, **k: compiled.append(a) or pytest.fail("compiled first"))
    x = tmp_path / "x.npy"
    np.save(x, array)
    assert driver.main(["run", str(model), "--input", f"x={x}", "--shape", "m=2"]) == 1
    assert message in capsys.readouterr().err
    assert not compiled


def test_bench_labels_columns_and_reports_each_stage(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert driver.main(["bench", str(model), "--shape", "n=2", "--shape", "m=3", "--target", "interp",
                        "--repeat", "2"]) == 0
    out, err = capsys.readouterr()
    header = next(line for line in out.splitlines() if "median" in line)
    assert header.split() == ["implementation", "(2", "runs)", "median", "ms", "min", "ms", "x", "row", "1"]
    row = out.splitlines()[out.splitlines().index(header) + 1]
    assert row.startswith("relax_xdsl interp (default)") and len(row.split()) == 6
    for stage in ("parsing", "compiling for interp", "compiling again (library cached)",
                  "timing relax_xdsl interp (default): 2 runs"):
        assert f"{stage}: done in" in err or re.search(rf"{re.escape(stage)}.*: done in", err), stage


def test_progress_lines_start_after_the_threshold() -> None:
    now = [0.0]
    lines: list[str] = []
    progress = compile_progress.CompileProgress(lines.append, clock=lambda: now[0])
    for t, name in ((0.5, "legalize"), (1.9, "lower-tir"), (2.1, "lower-graph"), (2.2, "cse")):
        now[0] = t
        progress.stage_done(f"pass {name}", 0.1)
    assert [line.split()[1] for line in lines[1:]] == ["lower-graph", "cse"]
    assert "still compiling after 2.1 s" in lines[0]


@pytest.mark.parametrize("tool", ["relax-xdsl", "relax-xdsl-opt"])
def test_slow_compile_shows_each_stage(model: Path, tool: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def run() -> str:
        if tool == "relax-xdsl":
            assert driver.main(["run", str(model), "--shape", "n=2", "--shape", "m=3"]) == 0
        else:
            assert opt.main([str(model), "-p", "default", "-t", "c"]) == 0
        return capsys.readouterr().err

    monkeypatch.setattr(compile_progress, "PROGRESS_AFTER_SECONDS", 1e9)  # a quick compile: no pass lines
    assert "pass legalize" not in run()
    monkeypatch.setattr(compile_progress, "PROGRESS_AFTER_SECONDS", 0.0)  # a slow one: every stage
    err = run()
    stages = re.findall(r"^  (pass \S+|C backend \(emit C, cc\)|target c) +\d+\.\d+ ms", err, re.M)
    from relax_xdsl.passes.pipelines import PIPELINES

    passes = [f"pass {p.split('{')[0]}" for p in PIPELINES["default"].split(",")]
    assert stages == passes + (["C backend (emit C, cc)"] if tool == "relax-xdsl" else ["target c"]), err


def test_scalar_parameter_gets_its_value_from_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `!relax.prim<i64, t>` parameter takes t from --shape (before: an AttributeError traceback)."""
    from relax_xdsl import op
    from relax_xdsl.shape import sym

    with rx.FunctionBuilder("main") as fb:
        table = fb.param("table", ["m", 4])
        fb.prim_param("t", "int64", "t")
        fb.ret(op.strided_slice(table, axes=[0], begin=[sym("t")], end=[sym("t") + 1]))
    path = tmp_path / "row.mlir"
    path.write_text(rx.print_module(fb.module))
    assert driver.main(["run", str(path), "--shape", "m=5", "--shape", "t=2", "--target", "eval"]) == 0
    out = capsys.readouterr().out
    assert "input t: int64[]" in out and "output: float32[1, 4]" in out
