"""Runs one tensor program on numpy arrays (what the reference evaluator
does for `relax.call_tir`): lower-tir on that program alone, then the
interpreter backend. Lowered programs are cached by their printed text."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from relax_xdsl.backend.interp import InterpModule
from relax_xdsl.dialects.tir import PrimFuncOp
from relax_xdsl.ir import print_module


@lru_cache(maxsize=256)
def _lowered(text: str) -> InterpModule:
    from relax_xdsl.ir import make_context, parse_module
    from relax_xdsl.passes.lower_tir import LowerTIRPass

    module = parse_module(text)
    LowerTIRPass().apply(make_context(), module)
    return InterpModule(module)


def run_prim_func(prim: PrimFuncOp, arrays: Sequence[np.ndarray], syms: Sequence[int] = ()) -> None:
    """Runs `prim` on inputs then outputs (written in place), with index args `syms`."""
    text = print_module(ModuleOp([prim.clone()]))
    _lowered(text).call(prim.sym_name.data, [*arrays, *(int(s) for s in syms)])
