"""Heavy variants of test families marked slow, so that the README's test
command stays within its time budget on a 2-core machine while CI (`pytest
-m slow`) still runs them.

Each entry is one parametrized case (or one test) whose lighter siblings run
by default and cover the same code path at smaller sizes or through fewer
subprocesses: the grouped and strided conv cases of the every-level tests
run the Python TIR interpreter on the largest windows, the sanitizer
self-tests build the runtime under ASan, the CLI and cache tests that start
several compilers or interpreters in turn have one-process siblings, and so
on. They were picked by `pytest --durations`. An entry whose
file was collected but which matched no test is an error, so a renamed
test cannot drop out of this list unnoticed.
"""

from __future__ import annotations

import pytest

SLOW_VARIANTS = frozenset({
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-groups]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-pad-stride]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-int8-to-int32]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-groups-symbolic-out]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-symbolic-kernel]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-dilation-asym-pad]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[adaptive_avg_pool2d-uneven]",
    "tests/test_schedule.py::test_stride_1_conv_register_tiles[16-padding0]",
    "tests/test_ops_roi_deform.py::test_deform_conv2d_levels[2-2-2-pad1-1]",
    "tests/test_ops_roi_deform.py::test_roi_align_levels[2-max]",
    "tests/test_ops_roi_deform.py::test_roi_align_levels[2-avg]",
    "tests/test_llm_decoder.py::test_greedy_decode_matches_onnxruntime_c[baseline-1]",
    "tests/test_ops_nn_extra.py::test_pool_nd_levels[avg]",
    "tests/test_ops_nn_extra.py::test_pool_nd_levels[sum]",
    "tests/test_sanitizers.py::test_asan_reports_an_out_of_bounds_write",
    "tests/test_sanitizers.py::test_a_clean_library_passes_under_both",
    "tests/test_onnx_conformance.py::test_a_hang_costs_one_case",
    "tests/test_onnx_conformance.py::test_a_crash_costs_one_case",
    "tests/test_c_backend.py::test_concurrent_compiles_of_one_module",
    "tests/test_memory_planning.py::test_placement_never_overlaps_live_buffers",
    "tests/test_cli_opt.py::test_dot_at_every_stage",
    "tests/test_offload.py::test_conv2d_stride_1_windows_columns_and_direct_agree[plain-3x3-8]",
    "tests/test_offload.py::test_few_row_gemms_in_register_tiles[13]",
    "tests/test_ops_nn_index.py::test_levels_2d[1]",
    "tests/test_safety_resources.py::test_heap_register_tiles_match_the_unscheduled_program[64-128-lead0]",
    "tests/test_safety_resources.py::test_heap_register_tiles_match_the_unscheduled_program[128-64-lead1]",
    "tests/test_cli.py::test_driver_errors_onnx",
    "tests/test_cli.py::test_import_run_and_bench_onnx",
    "tests/test_cli.py::test_opt_passes_pipelines_and_targets",
    "tests/test_cli_opt.py::test_print_ir_after_and_time_passes",
    "tests/test_cli_opt.py::test_missing_and_unreadable_inputs",
    "tests/test_ops_roi_deform.py::test_deform_conv2d_hostile_offsets_read_nothing",
    "tests/test_memory_planning.py::test_provable_bounds_hold_at_every_binding",
    "tests/test_fuse_ops.py::test_elementwise_epilogue_fused_into_conv_and_reductions",
    "tests/test_onnx_conformance.py::test_fixed_sample_passes",
    "tests/test_malloc_tuning.py::test_returned_buffers_reuse_freed_memory",
    "tests/test_c_backend.py::test_corrupted_cache_entry_is_rebuilt",
    "tests/test_c_backend.py::test_generated_c_is_warning_free[transformer-baseline]",
    "tests/test_c_backend.py::test_generated_c_is_warning_free[cnn-baseline]",
    "tests/test_cache.py::test_a_planted_library_is_not_loaded_but_rebuilt",
    "tests/test_cache.py::test_the_resolved_cpu_changes_the_key",
    "tests/test_cache.py::test_flags_inside_cc_change_the_key",
    "tests/test_sanitizers.py::test_ubsan_reports_an_oversized_shift",
    "tests/test_onnx_opset27.py::test_linear_attention_interp",
    "tests/test_legalize_nn.py::test_nn_at_every_level[conv2d-f16-1x1]",
    "tests/test_legalize_nn.py::test_nn_at_every_level[max_pool2d-int]",
    "tests/test_offload.py::test_few_row_gemms_in_register_tiles[3]",
    "tests/test_offload.py::test_pointwise_conv2d_reads_the_image_in_place[-few-rows]",
    "tests/test_filecheck.py::test_filecheck[pipelines/pipelines.mlir]",
    "tests/test_filecheck.py::test_filecheck[diagnostics/passes.mlir]",
})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark SLOW_VARIANTS slow; first, before `-m 'not slow'` and `-k`
    deselect (so every collected test is still in `items` here)."""
    found = set()
    for item in items:
        if item.nodeid in SLOW_VARIANTS:
            item.add_marker(pytest.mark.slow)
            found.add(item.nodeid)
    if any("::" in arg for arg in config.args):
        return  # single tests named: the rest of a file is not collected
    seen_files = {item.nodeid.split("::")[0] for item in items}
    missing = sorted(n for n in SLOW_VARIANTS - found if n.split("::")[0] in seen_files)
    if missing:
        raise pytest.UsageError(f"tests/conftest.py SLOW_VARIANTS names tests that do not exist: {missing}")
