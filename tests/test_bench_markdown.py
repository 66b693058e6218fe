"""benchmarks/run.py --markdown: one run's tables written as a results page
(docs/performance.md) under a header naming the CPU, the date and the
command. Checked on made-up rows: running the benchmark itself is too slow
for the test suite."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


ROWS = [
    ("compile", "mlp", "default", 2.5, 0.08),
    ("ort", "mlp", (64,), 0.004),
    ("run", "mlp", "default", (64,), 0.010, 0.002, 40.0),
]


def test_report_has_machine_date_command_and_tables(run: ModuleType) -> None:
    when = datetime.datetime(2025, 3, 4, 5, 6, tzinfo=datetime.UTC)
    text = run.markdown_report(ROWS, 80.0, "python benchmarks/run.py --models mlp", "Some CPU 9000", when)
    lines = text.splitlines()
    assert lines[0] == "# Performance"
    assert "`python benchmarks/run.py --models mlp`" in text and "2025-03-04 05:06 UTC" in text
    assert "Some CPU 9000" in text and "80.0 GFLOP/s" in text
    # numpy 10 ms, C 2 ms (0.20 of numpy), onnxruntime 4 ms (C / ort 0.50), 40 GFLOP/s = 50% of peak
    assert "| mlp | (64,) | default | 10.000 | 2.000 | 0.20 | 4.000 | 0.50 | - | - | 40.00 | 50% |" in lines
    assert "| mlp | default | 2.50 | 0.080 |" in lines
    assert text.endswith("\n")


def test_printed_tables_are_the_written_ones(run: ModuleType) -> None:
    tables = run.results_tables(ROWS, 80.0)
    text = run.markdown_report(ROWS, 80.0, "cmd", "cpu", datetime.datetime.now(datetime.UTC))
    assert "\n".join(tables) in text


def test_cpu_model_is_named(run: ModuleType) -> None:
    assert run.cpu_model().strip()


def test_markdown_to_a_directory_fails_before_timing(run: ModuleType, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run.main(["--models", "mlp", "--markdown", str(tmp_path)])
    assert exc.value.code == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_child_process_gets_the_options_but_not_the_models_or_the_page(run: ModuleType) -> None:
    """Each model is timed in a child `run.py --models NAME --rows-to FILE`:
    the parent's other options pass on, its model list and --markdown do not."""
    argv = ["--models", "mlp", "bert", "--repeat", "3", "--markdown=out.md", "--no-tvm"]
    rest = run._drop_option(run._drop_option(argv, "--models", True), "--markdown", False)
    assert rest == ["--repeat", "3", "--no-tvm"]
    assert run._drop_option(["--markdown", "x.md", "--budget", "1"], "--markdown", False) == ["--budget", "1"]


def test_rows_come_back_from_json_as_they_left(run: ModuleType) -> None:
    import json

    assert [run._tuples(r) for r in json.loads(json.dumps(ROWS))] == ROWS
