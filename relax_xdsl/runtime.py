"""`relax_xdsl.compile`: a graph module -> an executable on numpy arrays.

The module is lowered by a named pipeline (passes/pipelines.py) to the loop
level, by default the optimizing one (matmuls to BLAS, fused ops; `baseline`
is the unoptimised route for comparison), then run by a backend (relax_xdsl/backend): `interp` (xDSL's
interpreter) or `c` (generated C, compiled and loaded with ctypes).

Calling a function checks the inputs against its signature first (count,
dtype, rank, every dim, symbols bound consistently) and raises TypeError /
ShapeError naming the input, dim, expected expression and bound values; the
host code checks them again, so nothing a caller passes reaches a kernel
unchecked.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TupleType
from xdsl.ir import Attribute

from relax_xdsl import dtypes
from relax_xdsl.aliasing import check_written_arrays, written_parameters
from relax_xdsl.backend import Backend
from relax_xdsl.dialects.relax import FunctionOp, PrimType, ShapeType, TensorType
from relax_xdsl.errors import RelaxError
from relax_xdsl.evaluator import bind_inputs
from relax_xdsl.scalar_semantics import normalize_bool

TARGETS = ("interp", "c")


def _structure(t: Attribute, flat: list[np.ndarray]) -> Any:
    """Re-nests flattened results following the (tuple) result type."""
    if isinstance(t, TupleType):
        return tuple(_structure(e, flat) for e in t.types.data)
    if isinstance(t, ShapeType):  # a first-class shape, as the evaluator gives it
        return tuple(int(v) for v in flat.pop(0))
    if isinstance(t, PrimType):  # a scalar, as the evaluator gives it
        return np.asarray(flat.pop(0))[()]
    return flat.pop(0)


def _input_plan(func: FunctionOp) -> list[tuple[np.dtype, int, tuple[tuple[int, int], ...],
                                                 tuple[tuple[int, Any], ...]]] | None:
    """Per input: its numpy dtype, rank, (axis, extent) of its static dims and
    (axis, symbol) of its bare-symbol dims; None when some dim is an
    expression (those inputs always take the full check)."""
    plan = []
    for arg in func.args:
        t = arg.type
        if not isinstance(t, TensorType):
            return None
        static: list[tuple[int, int]] = []
        syms: list[tuple[int, Any]] = []
        for axis, d in enumerate(t.sym_shape):
            if d.is_Integer:
                static.append((axis, int(d)))
            elif d.is_Symbol:
                syms.append((axis, d))
            else:
                return None
        plan.append((dtypes.np_dtype(t.dtype), len(t.sym_shape), tuple(static), tuple(syms)))
    return plan


class CompiledFunction:
    """One graph function of an executable: `f(*arrays)`."""

    def __init__(self, exe: Executable, func: FunctionOp, written: list[int] | None = None):
        self.exe = exe
        self.func = func
        self.name = func.sym_name.data
        self.result_types = list(func.function_type.outputs.data)
        self._plan = _input_plan(func)
        self._one_tensor = len(self.result_types) == 1 and isinstance(self.result_types[0], TensorType)
        self._has_bool = any(isinstance(a.type, TensorType) and a.type.dtype == "bool" for a in func.args)
        self._written = written_parameters(func) if written is None else written
        """Parameters an in-place call writes into: the caller's arrays,
        checked to be exactly those arrays (relax_xdsl/aliasing.py)."""
        self._entry = getattr(exe.backend, "fast", {}).get(self.name)
        """The backend's direct entry point: the results, or None for inputs it
        does not take as they are (then checked, converted and called below)."""

    def _fast_check(self, arrays: tuple[Any, ...]) -> bool:
        """True when every input certainly matches the signature (ints and
        bare symbols only, consistently bound); anything else takes the full
        check, which also words the error."""
        plan = self._plan
        if plan is None or len(arrays) != len(plan):
            return False
        env: dict[Any, int] = {}
        for a, (dtype, rank, static, syms) in zip(arrays, plan):
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != rank:
                return False
            shape = a.shape
            for axis, d in static:
                if shape[axis] != d:
                    return False
            for axis, d in syms:
                n = shape[axis]
                if env.setdefault(d, n) != n:
                    return False
        return True

    def __call__(self, *arrays: Any) -> Any:
        if self._written:
            check_written_arrays(self.func, arrays, self._written)
        if self._entry is not None:
            flat = self._entry(*arrays)
            if flat is not None:
                if self._one_tensor:
                    return flat
                return self._results(flat if isinstance(flat, tuple) else (flat,))
        if self._fast_check(arrays):
            checked = [normalize_bool(a) for a in arrays] if self._has_bool else arrays
        else:
            checked = bind_inputs(self.func, arrays)[0]  # bool inputs normalised
        args = [a if a.flags.c_contiguous else np.require(a, requirements="C") for a in checked]
        flat = self.exe.backend.call(self.name, args)
        if self._one_tensor:
            return flat[0]
        return self._results(flat)

    def _results(self, flat: tuple[Any, ...]) -> Any:
        rest = list(flat)
        results = [_structure(t, rest) for t in self.result_types]
        return results[0] if len(results) == 1 else tuple(results)

    def __repr__(self) -> str:
        return f"<compiled @{self.name} ({self.exe.target})>"


class Executable:
    """The result of `compile`: `exe["main"](*arrays)` or `exe.main(*arrays)`."""

    def __init__(self, graph: ModuleOp, loops: ModuleOp | None, backend: Backend, target: str,
                 timings: dict[str, float], pipeline: str = "", written: dict[str, list[int]] | None = None):
        """`graph`: the graph functions (for a loaded library, body-less ones
        carrying the signatures); `loops`: the lowered module (None when
        loaded); `written`: per function, the parameters an in-place call
        writes (computed from the graph when not given)."""
        self.graph = graph
        self.loops = loops
        self.backend = backend
        self.target = target
        self.timings = timings
        self.pipeline = pipeline
        """The pipeline it was compiled with."""
        self.manifest: dict[str, Any] | None = None
        """A loaded library's manifest (relax_xdsl/deploy.py)."""
        self._functions = {
            op.sym_name.data: CompiledFunction(self, op, (written or {}).get(op.sym_name.data))
            for op in graph.body.ops if isinstance(op, FunctionOp)
        }

    def __getitem__(self, name: str) -> CompiledFunction:
        try:
            return self._functions[name]
        except KeyError:
            raise KeyError(f"no graph function @{name}; the module has {', '.join(self._functions) or 'none'}") from None

    def __getattr__(self, name: str) -> CompiledFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(str(err)) from None

    @property
    def functions(self) -> list[str]:
        return list(self._functions)

    @property
    def c_source(self) -> str:
        return getattr(self.backend, "source", "")


def lower(module: ModuleOp, pipeline: str = "default") -> ModuleOp:
    """A lowered copy of `module` (the input is left as it is), by `pipeline`:
    a name in passes/pipelines.py (`default`, the optimizing one; `baseline`;
    `debug`) or a pass spec; an unknown name is a RelaxError listing them."""
    from relax_xdsl.passes.pipelines import run_pipeline

    return run_pipeline(module.clone(), pipeline)


def compile(module: ModuleOp, target: str = "c", pipeline: str = "default", **options: Any) -> Executable:  # noqa: A001
    """Lowers `module` with `pipeline` and loads it on `target` ("c" or "interp").

    The default pipeline is the optimizing one (offload to BLAS, fusion), so
    the plain call gives the fast code; `pipeline="baseline"` compiles every
    op as its own generated kernel, to compare against or debug."""
    if target not in TARGETS:
        raise RelaxError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if target == "c":  # the runtime archive compiles while the pipeline runs
        from relax_xdsl.backend.c import prepare_runtime

        prepare_runtime(**options)
    loops = lower(module, pipeline)
    timings["pipeline"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    backend: Backend
    if target == "interp":
        from relax_xdsl.backend.interp import InterpModule

        backend = InterpModule(loops, **options)
    else:
        from relax_xdsl.backend.c import CModule

        backend = CModule(loops, **options)
    timings["backend"] = time.perf_counter() - t1
    return Executable(module, loops, backend, target, timings, pipeline=pipeline)


__all__ = ["TARGETS", "Executable", "compile", "lower"]
