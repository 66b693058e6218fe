"""The ONNX conformance runner (benchmarks/onnx_conformance.py): a fixed
sample of node cases that pass today keeps passing through the runner's own
code, and its isolation holds: a worker that aborts or hangs costs one case,
and the run goes on with a fresh worker."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("onnx")
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import onnx_conformance as oc  # noqa: E402

MODULES = ["relu", "concat", "flatten", "shape", "softmax", "split", "transpose", "max", "min", "mean", "sum",
           "argmax", "logsoftmax", "add", "averagepool", "batch_normalization", "conv", "gather", "gemm",
           "globalaveragepool", "matmul", "maxpool", "reducemax", "sigmoid", "where", "trilu", "pow", "equal", "clip",
           "cast"]
PASSING = [
    "test_relu", "test_concat_2d_axis_negative_2", "test_flatten_negative_axis1", "test_shape_start_1_end_negative_1",
    "test_softmax_default_axis", "test_split_equal_parts_1d_opset18", "test_transpose_all_permutations_5",
    "test_max_one_input", "test_min_one_input", "test_mean_one_input", "test_sum_one_input",
    "test_argmax_negative_axis_keepdims_example", "test_logsoftmax_negative_axis", "test_add_bcast",
    "test_averagepool_2d_strides", "test_batchnorm_epsilon", "test_basic_conv_without_padding",
    "test_gather_2d_indices", "test_gemm_default_single_elem_vector_bias", "test_globalaveragepool",
    "test_matmul_1d_3d", "test_maxpool_2d_ceil_output_size_reduce_by_one", "test_reduce_max_default_axes_keepdim_example",
    "test_sigmoid_example", "test_where_long_example", "test_tril_square", "test_pow_bcast_scalar", "test_equal_int8",
    "test_clip_default_int8_inbounds", "test_cast_FLOAT_to_FLOAT16",
]

# A worker whose runner aborts on one case name and hangs on another; every other case runs for real.
FAULTY_WORKER = textwrap.dedent(f"""
    import os, sys, time
    sys.path.insert(0, {str(BENCH)!r})
    import onnx_conformance as oc

    def run(info, target, pipeline):
        if info.name == "abort_me":
            os.abort()
        if info.name == "hang_me":
            time.sleep(3600)
        if info.name == "quick":
            return "PASS", ""
        return oc.run_case(info, target, pipeline)

    oc.worker_loop(run)
""")


@pytest.fixture(scope="module")
def infos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, oc.CaseInfo]:
    cases = {c.name: c for c in oc.collect_from_modules(MODULES)}
    missing = [n for n in PASSING if n not in cases]
    assert not missing, f"onnx no longer generates {missing}"
    serialized = oc.serialize([cases[n] for n in PASSING], tmp_path_factory.mktemp("cases"))
    return {i.name: i for i in serialized}


def _fake(name: str, index: int) -> oc.CaseInfo:
    return oc.CaseInfo(index, name, ["Fake"], 0.0, 0.0, "/nonexistent")


def _renumber(cases: list[oc.CaseInfo]) -> list[oc.CaseInfo]:
    return [oc.CaseInfo(**{**vars(c), "index": i}) for i, c in enumerate(cases)]


def test_fixed_sample_passes(infos: dict[str, oc.CaseInfo]) -> None:
    results = oc.run_pool(list(infos.values()), jobs=2, timeout=600)
    bad = [(r.name, r.status, r.detail) for r in results if r.status != "PASS"]
    assert not bad
    assert [r.name for r in results] == PASSING
    c = oc.counts(results)
    assert c["PASS"] == len(PASSING) and "30 passed, 0 failed" in oc.summary_line(c)
    assert oc.per_op(results)["Conv"]["PASS"] == 1


def test_a_crash_costs_one_case(infos: dict[str, oc.CaseInfo], tmp_path: Path) -> None:
    worker = tmp_path / "faulty_worker.py"
    worker.write_text(FAULTY_WORKER)
    cases = _renumber([infos["test_relu"], _fake("abort_me", 0), infos["test_add_bcast"], _fake("abort_me", 0),
                       infos["test_gather_2d_indices"]])
    results = oc.run_pool(cases, jobs=1, timeout=600, worker_argv=[sys.executable, str(worker)])
    assert [r.status for r in results] == ["PASS", "CRASH", "PASS", "CRASH", "PASS"]
    assert "signal 6" in results[1].detail


def test_a_hang_costs_one_case(tmp_path: Path) -> None:
    worker = tmp_path / "faulty_worker.py"
    worker.write_text(FAULTY_WORKER)
    cases = [_fake(n, i) for i, n in enumerate(["quick", "hang_me", "quick", "quick", "hang_me", "quick"])]
    results = oc.run_pool(cases, jobs=2, timeout=3, worker_argv=[sys.executable, str(worker)])
    assert [r.status for r in results] == ["PASS", "TIMEOUT", "PASS", "PASS", "TIMEOUT", "PASS"]


def test_compare_like_the_onnx_backend_runner() -> None:
    import numpy as np

    f = np.array([1.0, np.nan, 3.0], np.float32)
    assert oc.compare([f.copy()], [f], 1e-5, 0) is None
    assert "shape" in (oc.compare([f[:2]], [f], 1e-5, 0) or "")
    assert "dtype" in (oc.compare([f.astype(np.float64)], [f], 1e-5, 0) or "")
    assert oc.compare([np.array([1.0, 2.0, 3.0], np.float32)], [f], 1e-5, 0) is not None  # NaN positions differ
    assert "outputs" in (oc.compare([f, f], [f], 1e-5, 0) or "")
    assert oc.compare([np.array([1, 2], np.int64)], [np.array([1, 3], np.int64)], 1, 1) is not None
