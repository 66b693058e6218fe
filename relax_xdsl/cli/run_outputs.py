"""The outputs of a `relax-xdsl run` as named arrays: how they are compared
(with the reference evaluator or onnxruntime) and saved (`--output`).

A function's results are flattened in order, tuple results depth-first, and
named `output0`, `output1`, ...: relax functions carry no result names, and an
ONNX model's outputs are flat in that same order, so position is the one name
every model has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import TupleType
from xdsl.ir import Attribute

from relax_xdsl.dialects.relax import FunctionOp


def flat_outputs(func: FunctionOp, result: Any) -> list[tuple[str, np.ndarray]]:
    """(name, array) per output of `func`, given what calling it returned."""
    types = list(func.function_type.outputs.data)
    arrays: list[np.ndarray] = []

    def walk(t: Attribute, value: Any) -> None:
        if isinstance(t, TupleType):
            for ft, fv in zip(t.types.data, value):
                walk(ft, fv)
        else:
            arrays.append(np.asarray(value))

    for t, v in zip(types, [result] if len(types) == 1 else result):
        walk(t, v)
    return [(f"output{i}", a) for i, a in enumerate(arrays)]


def max_abs_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest |got - want|; NaN where both are NaN (and equal infinities)
    count as equal, NaN against a number as infinitely far."""
    if got.shape != want.shape:
        return float("inf")
    if not got.size:
        return 0.0
    x, y = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore"):
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        diff = np.where(same, 0.0, np.abs(x - y))
    return float(np.max(np.nan_to_num(diff, nan=np.inf)))


@dataclass
class Comparison:
    worst: float
    """The largest error over all outputs (inf when they do not line up)."""
    failures: list[str]
    """One line per output past the tolerance: its name, error and the tolerance."""


def compare(got: Sequence[tuple[str, np.ndarray]], want: Sequence[Any], against: str, tolerance: float) -> Comparison:
    """Each output against the one at its position in `want` (arrays)."""
    if len(got) != len(want):
        return Comparison(float("inf"), [f"the model gives {len(got)} outputs but {against} gives {len(want)}"])
    worst, failures = 0.0, []
    for (name, a), b in zip(got, want):
        b = np.asarray(b)
        err = max_abs_error(a, b)
        worst = max(worst, err)
        if a.shape != b.shape:
            failures.append(f"{name}: shape {list(a.shape)} but {against} gives {list(b.shape)}")
        elif not err < tolerance:
            failures.append(f"{name} ({a.dtype}{list(a.shape)}): max |difference| from {against} {err:.3g} "
                            f"exceeds the tolerance {tolerance:g}")
    return Comparison(worst, failures)


def save_outputs(path: str, outputs: Sequence[tuple[str, np.ndarray]]) -> Path:
    """np.savez of the named outputs; the file written (numpy adds `.npz`
    to a name without it)."""
    np.savez(path, **dict(outputs))
    return Path(path if path.endswith(".npz") else path + ".npz")
