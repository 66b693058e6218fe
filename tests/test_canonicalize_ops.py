"""canonicalize-ops (passes/canonicalize_ops.py), which the default pipeline
runs instead of xDSL's canonicalize: on the loop programs the pipeline
makes, it must give exactly canonicalize's output (it leaves out only the
whole-region liveness pass, whose extra reach is unreachable blocks and
dead cycles these programs do not have)."""

from __future__ import annotations

import numpy as np
import pytest
from relax_xdsl.passes.pipelines import PIPELINES, run_pipeline

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.models import cnn, mlp, transformer_block


def control_flow_module() -> object:
    """A host loop and branch (lower-graph's scf.while / scf.if) around kernels."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4], "float32")
        y = op.nn.softmax(op.add(x, fb.const(np.ones(4, np.float32))), axis=-1)
        fb.ret(op.where(op.greater(y, fb.const(np.float32(0.25))), y, op.negative(y)))
    return fb.module


@pytest.mark.parametrize("build", [lambda: mlp().module, lambda: cnn().module, lambda: transformer_block().module,
                                   control_flow_module], ids=["mlp", "cnn", "transformer", "where-softmax"])
def test_same_output_as_canonicalize(build: object) -> None:
    spec = PIPELINES["default"]
    before, after = spec.split(",canonicalize-ops,")
    lowered = run_pipeline(build(), before)  # type: ignore[operator]
    ours = rx.print_module(run_pipeline(lowered.clone(), f"canonicalize-ops,{after}"))
    upstream = rx.print_module(run_pipeline(lowered.clone(), f"canonicalize,{after}"))
    assert ours == upstream
