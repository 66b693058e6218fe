"""Backends run a loop-level module (see passes/lower_tir.py, passes/lower_graph.py).

Both backends offer the same interface:

    mod = InterpModule(loop_module)   # relax_xdsl.backend.interp
    mod = CModule(loop_module)        # relax_xdsl.backend.c
    results = mod.call("main", [array, ..., 4])   # memref args as numpy arrays, index args as ints

`call` returns the function's results as a tuple of numpy arrays (the caller
owns them). A failing `cf.assert` raises relax_xdsl.ShapeError with the
assert's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Backend(Protocol):
    def call(self, func: str, args: Sequence[np.ndarray | int]) -> tuple[np.ndarray, ...]: ...
