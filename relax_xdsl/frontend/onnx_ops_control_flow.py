"""ONNX converters for control flow: If onto `relax.if`, Loop onto
`relax.while` (dialects/relax_control_flow.py). Bodies are imported by
`Importer.run_subgraph`, seeing the enclosing graph's values.

A constant condition picks its branch at import time (exporters leave such
Ifs behind). Loop's scan outputs are gathered by concatenating one slice
per iteration onto a carried tensor that starts empty, so their per-
iteration shape must be known from the body's output type (ONNX shape
inference records it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from relax_xdsl import op as rop
from relax_xdsl.builder import Var
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.frontend.onnx_import import Known, Node, Value, onnx_dtype, register_converter

INT64_MAX = np.iinfo(np.int64).max


def _as_tensors(n: Node, values: list[Value]) -> list[Var]:
    return [n.importer.tensor(v, n) for v in values]


def _scalar_bool(n: Node, v: Var, what: str) -> Var:
    """ONNX conditions are one-element bool tensors of any rank: as a 0-d bool."""
    if v.dtype != "bool":
        n.fail(f"{what} must be bool, got {v.dtype}")
    if any(d.is_Integer and int(d) != 1 for d in v.type.sym_shape):
        n.fail(f"{what} must hold one element, got shape {v.shape}")
    return v if v.ndim == 0 else rop.reshape(v, [])


@register_converter("If", attrs=("then_branch", "else_branch"))
def _if(n: Node) -> Any:
    cond = n.input(0, "cond")
    then_g, else_g = n.attr("then_branch"), n.attr("else_branch")
    if isinstance(cond, Known) and not cond.symbolic:
        if cond.array.size != 1:
            n.fail(f"cond must hold one element, got shape {cond.shape}")
        return n.importer.run_subgraph(then_g if bool(cond.array.reshape(-1)[0]) else else_g, [], n)
    c = _scalar_bool(n, n.tensor(0, "cond"), "cond")
    fb = n.importer.fb
    outs = fb.if_(c, lambda: _as_tensors(n, n.importer.run_subgraph(then_g, [], n)),
                  lambda: _as_tensors(n, n.importer.run_subgraph(else_g, [], n)))
    return list(outs) if isinstance(outs, tuple) else [outs]


def _scan_element(n: Node, vi: Any) -> tuple[list[int], str]:
    """A scan output's per-iteration shape and dtype, from the body's output type."""
    tt = vi.type.tensor_type
    dtype = onnx_dtype(tt.elem_type, f"{n.where}: body output {vi.name!r}")
    if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
        n.fail(f"scan output {vi.name!r} needs a static per-iteration shape in the body's output type "
               "(run onnx.shape_inference on the model)")
    return [int(d.dim_value) for d in tt.shape.dim], dtype


@register_converter("Loop", attrs=("body",))
def _loop(n: Node) -> Any:
    """Loop(M, cond, v...) with body(i, cond, v...) -> (cond, v..., scans...):
    carried (i, cond, v..., scan accumulators) through relax.while."""
    body = n.attr("body")
    imp = n.importer
    fb = imp.fb
    n_carried = len(n.inputs) - 2
    if n_carried < 0:
        n.fail("Loop takes M and cond (either may be empty) and the carried values")
    n_scans = len(body.output) - 1 - n_carried
    if n_scans < 0:
        n.fail(f"the body gives {len(body.output)} outputs, fewer than cond and {n_carried} carried values")
    trip = n.optional(0)
    m = fb.const(np.array(INT64_MAX, np.int64)) if trip is None else rop.reshape(rop.astype(n.tensor(0, "M"),
                                                                                          "int64"), [])
    c0 = fb.const(np.array(True)) if n.optional(1) is None else _scalar_bool(n, n.tensor(1, "cond"), "cond")
    carried = [n.tensor(2 + k, f"v_initial {k}") for k in range(n_carried)]
    scans = [_scan_element(n, vi) for vi in body.output[1 + n_carried:]]
    accs = [rop.zeros([0, *shape], dtype) for shape, dtype in scans]
    inits = [fb.const(np.array(0, np.int64)), c0, *carried, *accs]
    types = [fb.generalize(v.type) for v in inits[:2 + n_carried]]
    types += [TensorType.of([fb.fresh_symbols(1)[0], *shape], dtype) for shape, dtype in scans]

    def cond(i: Var, c: Var, *rest: Var) -> Var:
        return rop.logical_and(rop.less(i, m), c)

    def step(i: Var, c: Var, *rest: Var) -> list[Var]:
        values, scan_accs = list(rest[:n_carried]), list(rest[n_carried:])
        outs = _as_tensors(n, imp.run_subgraph(body, [i, c, *values], n))
        new_c = _scalar_bool(n, outs[0], "the body's cond output")
        grown = [rop.concat([acc, rop.expand_dims(s, axis=[0])], axis=0)
                 for acc, s in zip(scan_accs, outs[1 + n_carried:])]
        return [rop.add(i, 1), new_c, *outs[1:1 + n_carried], *grown]

    results = fb.while_(inits, cond, step, carried=types)
    results = list(results) if isinstance(results, tuple) else [results]
    return results[2:]
