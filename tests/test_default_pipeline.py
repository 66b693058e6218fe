"""One default: `relax_xdsl.compile(module)` with no pipeline named runs the
optimizing pipeline (matmuls to BLAS, fusion), since a user who names
nothing should get the fast code; `baseline` keeps the unoptimised route to
compare and debug against, and `fast`, the optimizing pipeline's old name,
still works. The BLAS library it needs comes with a plain install."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from relax_xdsl.passes.pipelines import PIPELINES

import relax_xdsl as rx
from relax_xdsl import op

ROOT = Path(__file__).resolve().parent.parent


def matmul_module() -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8], "float32")
        w = fb.const(np.arange(32, dtype=np.float32).reshape(8, 4) / 32)
        fb.ret(op.relu(op.matmul(x, w)))
    return fb.module


def test_compile_without_a_pipeline_offloads_the_matmul_to_a_library() -> None:
    """The matmul by a constant goes to a dense function on packed weights (oneDNN's on AVX-512)."""
    from relax_xdsl.passes.offload import auto_dense_library

    called = "func.call @rx_dnnl_dense_" if auto_dense_library() == "dnnl" else "func.call @rx_blas_packed_dense_2x2("
    module = matmul_module()
    assert called in rx.print_module(rx.lower(module))  # type: ignore[arg-type]
    exe = rx.compile(module, target="c")  # type: ignore[arg-type]
    assert called in rx.print_module(exe.loops)
    w = np.arange(32, dtype=np.float32).reshape(8, 4) / 32
    for n in (1, 5):
        x = np.linspace(-1, 1, n * 8, dtype=np.float32).reshape(n, 8)
        np.testing.assert_allclose(exe.main(x), np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6)


def test_baseline_generates_every_kernel() -> None:
    text = rx.print_module(rx.lower(matmul_module(), "baseline"))  # type: ignore[arg-type]
    assert "rx_blas" not in text and "func.call @matmul(" in text and "func.call @relu(" in text


def test_the_pipeline_specs() -> None:
    assert PIPELINES["fast"] == PIPELINES["default"]
    default, baseline = PIPELINES["default"].split(","), PIPELINES["baseline"].split(",")
    assert {"offload{lib=blas}", "fuse-ops", "fuse-tir", "fuse-row-loops"} <= set(default)
    assert not {"offload{lib=blas}", "fuse-ops", "fuse-tir", "fuse-row-loops"} & set(baseline)
    assert PIPELINES["debug"] == "legalize,auto-schedule,lower-tir,lower-graph,schedule-loops"


@pytest.mark.parametrize("spec", ["fastt", "legalize,nosuchpass"])
def test_an_unknown_pipeline_is_a_relax_error_naming_the_pipelines(spec: str) -> None:
    name = spec.split(",")[-1]
    for call in (lambda: rx.lower(matmul_module(), spec), lambda: rx.compile(matmul_module(), pipeline=spec)):
        with pytest.raises(rx.RelaxError, match=rf"unknown pipeline or pass '{name}'.*default, fast, baseline, debug"):
            call()  # type: ignore[no-untyped-call]


def test_a_bad_pass_option_or_spec_is_a_relax_error() -> None:
    with pytest.raises(rx.RelaxError, match=r"pass 'legalize'.*frob"):
        rx.lower(matmul_module(), "legalize{frob=1}")  # type: ignore[arg-type]
    with pytest.raises(rx.RelaxError, match=r"malformed pass spec"):
        rx.lower(matmul_module(), "legalize{ops=exp")  # type: ignore[arg-type]


def test_blas_comes_with_a_plain_install() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("scipy-openblas32") for d in project["dependencies"])
    extras = project.get("optional-dependencies", {})
    assert "blas" not in extras
    assert not [d for deps in extras.values() for d in deps if d.startswith("scipy-openblas32")]


def test_command_line_help_names_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    from relax_xdsl.cli import driver, opt

    with pytest.raises(SystemExit) as exit_run:
        driver.main(["run", "--help"])
    run_help = capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_opt:
        opt.main(["--help"])
    opt_help = capsys.readouterr().out
    assert exit_run.value.code == 0 and exit_opt.value.code == 0
    assert "baseline" in " ".join(run_help.split()) and "default (optimizing" in " ".join(run_help.split())
    assert "baseline" in " ".join(opt_help.split()) and "default (optimizing" in " ".join(opt_help.split())
