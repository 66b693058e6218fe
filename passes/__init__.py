"""Module passes (xDSL ModulePass) and the named pipelines.

`get_all_passes()` maps every pass name to a loader of its class, in the
shape xDSLOptMain's `register_pass` expects; the CLI and the pipelines
use it.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def _legalize() -> type[ModulePass]:
    from relax_xdsl.passes.legalize import LegalizePass

    return LegalizePass


def _offload() -> type[ModulePass]:
    from relax_xdsl.passes.offload import OffloadPass

    return OffloadPass


def _fuse_ops() -> type[ModulePass]:
    from relax_xdsl.passes.fuse_ops import FuseOpsPass

    return FuseOpsPass


def _annotate_op_pattern() -> type[ModulePass]:
    from relax_xdsl.passes.fuse_ops import AnnotateOpPatternPass

    return AnnotateOpPatternPass


def _fuse_tir() -> type[ModulePass]:
    from relax_xdsl.passes.fuse_ops import FuseTIRPass

    return FuseTIRPass


def _lower_tir() -> type[ModulePass]:
    from relax_xdsl.passes.lower_tir import LowerTIRPass

    return LowerTIRPass


def _lower_graph() -> type[ModulePass]:
    from relax_xdsl.passes.lower_graph import LowerGraphPass

    return LowerGraphPass


def _schedule_loops() -> type[ModulePass]:
    from relax_xdsl.passes.schedule_loops import ScheduleLoopsPass

    return ScheduleLoopsPass


def _free_buffers() -> type[ModulePass]:
    from relax_xdsl.passes.free_buffers import FreeBuffersPass

    return FreeBuffersPass


def _plan_memory() -> type[ModulePass]:
    from relax_xdsl.passes.plan_memory import PlanMemoryPass

    return PlanMemoryPass


def _fuse_row_loops() -> type[ModulePass]:
    from relax_xdsl.passes.fuse_loops import FuseRowLoopsPass

    return FuseRowLoopsPass


def _auto_schedule() -> type[ModulePass]:
    from relax_xdsl.passes.auto_schedule import AutoSchedulePass

    return AutoSchedulePass


def _fold_constants() -> type[ModulePass]:
    from relax_xdsl.passes.fold_constants import FoldConstantsPass

    return FoldConstantsPass


def _fold_batch_norm() -> type[ModulePass]:
    from relax_xdsl.passes.fold_batch_norm import FoldBatchNormPass

    return FoldBatchNormPass


def _combine_parallel_matmul() -> type[ModulePass]:
    from relax_xdsl.passes.combine_parallel_matmul import CombineParallelMatmulPass

    return CombineParallelMatmulPass


def _convert_layout() -> type[ModulePass]:
    from relax_xdsl.passes.convert_layout import ConvertLayoutPass

    return ConvertLayoutPass


def _hoist_loop_invariants() -> type[ModulePass]:
    from relax_xdsl.passes.hoist_loop_invariants import HoistLoopInvariantsPass

    return HoistLoopInvariantsPass


def _unroll_short_loops() -> type[ModulePass]:
    from relax_xdsl.passes.unroll_short_loops import UnrollShortLoopsPass

    return UnrollShortLoopsPass


def _canonicalize_ops() -> type[ModulePass]:
    from relax_xdsl.passes.canonicalize_ops import CanonicalizeOpsPass

    return CanonicalizeOpsPass


def _collapse_parallel() -> type[ModulePass]:
    from relax_xdsl.passes.collapse_parallel import CollapseParallelPass

    return CollapseParallelPass


def _expand_power() -> type[ModulePass]:
    from relax_xdsl.passes.expand_power import ExpandPowerPass

    return ExpandPowerPass


def _recognize_ops() -> type[ModulePass]:
    from relax_xdsl.passes.recognize_ops import RecognizeOpsPass

    return RecognizeOpsPass


def _recognize_attention() -> type[ModulePass]:
    from relax_xdsl.passes.recognize_attention import RecognizeAttentionPass

    return RecognizeAttentionPass


def _simplify_layout() -> type[ModulePass]:
    from relax_xdsl.passes.simplify_layout import SimplifyLayoutPass

    return SimplifyLayoutPass


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Every pass of the project, by its command-line name."""
    return {
        "legalize": _legalize,
        "offload": _offload,
        "annotate-op-pattern": _annotate_op_pattern,
        "fuse-ops": _fuse_ops,
        "fuse-tir": _fuse_tir,
        "auto-schedule": _auto_schedule,
        "lower-tir": _lower_tir,
        "fuse-row-loops": _fuse_row_loops,
        "lower-graph": _lower_graph,
        "free-buffers": _free_buffers,
        "plan-memory": _plan_memory,
        "schedule-loops": _schedule_loops,
        "fold-constants": _fold_constants,
        "fold-batch-norm": _fold_batch_norm,
        "simplify-layout": _simplify_layout,
        "expand-power": _expand_power,
        "recognize-ops": _recognize_ops,
        "recognize-attention": _recognize_attention,
        "combine-parallel-matmul": _combine_parallel_matmul,
        "convert-layout": _convert_layout,
        "hoist-loop-invariants": _hoist_loop_invariants,
        "unroll-short-loops": _unroll_short_loops,
        "collapse-parallel": _collapse_parallel,
        "canonicalize-ops": _canonicalize_ops,
    }


def all_passes_for_pipeline() -> dict[str, Callable[[], type[ModulePass]]]:
    """Ours plus xDSL's upstream passes (canonicalize, cse, dce, ...)."""
    from xdsl.transforms import get_all_passes as upstream

    return {**upstream(), **get_all_passes()}
