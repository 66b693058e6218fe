"""The `interp` target: xDSL's interpreter on the loop level.

Upstream interpreter functions run func, scf, arith, math and builtin;
`RelaxFunctions` adds what they lack for our loop level: memrefs held as
numpy arrays (dynamic `memref.alloc`, `memref.dim`, `memref.copy`,
`memref.cast`, globals), `cf.assert` (-> ShapeError), `tir.check_index`
(-> BoundsError), `scf.parallel`, the
arith/math ops lowering emits that upstream does not implement, i1 as
Python bools, and calls to library declarations (their numpy reference).
Slow (about 1e5 scalar ops per second): the debugging target.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith, cf, func, memref, scf
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import AnyFloat, DenseIntOrFPElementsAttr, IntegerType, MemRefType, ModuleOp, StringAttr
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    TerminatorValue,
    impl,
    impl_terminator,
    register_impls,
)
from xdsl.interpreters.arith import ArithFunctions
from xdsl.interpreters.builtin import BuiltinFunctions
from xdsl.interpreters.func import FuncFunctions
from xdsl.interpreters.math import MathFunctions
from xdsl.interpreters.scf import ScfFunctions
from xdsl.ir import Operation
from xdsl.traits import SymbolTable

from relax_xdsl import dtypes, scalar_semantics
from relax_xdsl.dialects.relax import constant_array
from relax_xdsl.dialects.tir import CheckIndexOp, RemFOp
from relax_xdsl.dim_lowering import CHECKED_ATTR
from relax_xdsl.errors import BoundsError, RelaxError, ResourceLimitError, ShapeError, index_out_of_range
from relax_xdsl.limits import (
    RECURSION_TOO_DEEP,
    check_alloc,
    loop_limit_message,
    loop_name,
    max_loop_iterations,
    max_recursion_depth,
)


def _shape(static: Sequence[int], dynamic: Sequence[Any]) -> tuple[int, ...]:
    """A memref's shape: static sizes, each dynamic one (< 0) from `dynamic` in order."""
    sizes = iter(dynamic)
    return tuple(int(next(sizes)) if d < 0 else d for d in static)


def _np_dtype(t: Any) -> np.dtype:
    return dtypes.np_dtype(t)


def _float_type(t: Any) -> type:
    return dtypes.np_dtype(t).type


def _unary_float(fn: Any) -> Any:
    def run(self: Any, interpreter: Interpreter, op: Any, args: PythonValues) -> PythonValues:
        return (_float_type(op.result.type)(fn(args[0])),)

    return run


def _unary_numpy(fn: Any) -> Any:
    """A numpy ufunc in the result's float type (NaN / inf out of the domain, no warnings)."""
    def run(self: Any, interpreter: Interpreter, op: Any, args: PythonValues) -> PythonValues:
        t = _float_type(op.result.type)
        with np.errstate(all="ignore"):
            return (t(fn(t(args[0]))),)

    return run


def _erf(x: float) -> float:
    return math.erf(x)


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):
        return float(np.power(np.float64(a), np.float64(b)))


def _safe(fn: Any) -> Any:
    def run(x: float) -> float:
        try:
            return fn(x)
        except ValueError:
            return math.nan
        except OverflowError:
            return math.inf

    return run


@register_impls
class RelaxFunctions(InterpreterFunctions):
    """What the loop level needs beyond xDSL's upstream interpreter functions."""

    def __init__(self, max_depth: int | None = None):
        super().__init__()
        self.depth = 0
        self.max_depth = max_depth if max_depth is not None else max_recursion_depth()
        self.max_iterations = max_loop_iterations()

    # -- memrefs as numpy arrays ----------------------------------------------
    @impl(memref.AllocOp)
    def run_alloc(self, interpreter: Interpreter, op: memref.AllocOp, args: PythonValues) -> PythonValues:
        t = op.memref.type
        assert isinstance(t, MemRefType)
        shape = _shape(t.get_shape(), args)
        dtype = _np_dtype(t.get_element_type())
        if any(d < 0 for d in shape):
            raise ShapeError(f"memref.alloc of a negative size {shape}")
        check_alloc(shape, np.dtype(dtype).itemsize, f"memref.alloc {op.memref.name_hint or ''}".strip())
        return (np.zeros(shape, dtype),)

    @impl(memref.AllocaOp)
    def run_alloca(self, interpreter: Interpreter, op: memref.AllocaOp, args: PythonValues) -> PythonValues:
        t = op.memref.type
        assert isinstance(t, MemRefType)
        return (np.zeros(_shape(t.get_shape(), args), _np_dtype(t.get_element_type())),)

    @impl(memref.DeallocOp)
    def run_dealloc(self, interpreter: Interpreter, op: memref.DeallocOp, args: PythonValues) -> PythonValues:
        return ()

    @impl(memref.DimOp)
    def run_dim(self, interpreter: Interpreter, op: memref.DimOp, args: PythonValues) -> PythonValues:
        return (int(args[0].shape[args[1]]),)

    @impl(memref.LoadOp)
    def run_load(self, interpreter: Interpreter, op: memref.LoadOp, args: PythonValues) -> PythonValues:
        a, *idx = args
        if any(i < 0 or i >= n for i, n in zip(idx, a.shape)):
            raise BoundsError(f"memref.load out of bounds: index {tuple(idx)} of shape {a.shape}")
        v = a[tuple(idx)]
        if a.dtype.kind in "iu":
            return (int(v),)  # upstream integer ops work on Python ints
        return (bool(v),) if a.dtype == np.bool_ else (v,)

    @impl(memref.StoreOp)
    def run_store(self, interpreter: Interpreter, op: memref.StoreOp, args: PythonValues) -> PythonValues:
        v, a, *idx = args
        if any(i < 0 or i >= n for i, n in zip(idx, a.shape)):
            raise BoundsError(f"memref.store out of bounds: index {tuple(idx)} of shape {a.shape}")
        a[tuple(idx)] = v
        return ()

    @impl(memref.CopyOp)
    def run_copy(self, interpreter: Interpreter, op: memref.CopyOp, args: PythonValues) -> PythonValues:
        args[1][...] = args[0]
        return ()

    @impl(memref.CastOp)
    def run_cast(self, interpreter: Interpreter, op: memref.CastOp, args: PythonValues) -> PythonValues:
        return (args[0],)

    @impl(memref.ReinterpretCastOp)
    def run_reinterpret_cast(self, interpreter: Interpreter, op: memref.ReinterpretCastOp,
                             args: PythonValues) -> PythonValues:
        """A dense row-major view with new sizes (offset 0, row-major strides)."""
        src = args[0]
        shape = _shape(op.static_sizes.get_values(), args[1 + len(op.offsets):1 + len(op.offsets) + len(op.sizes)])
        return (src.reshape(shape),)

    @impl(memref.ViewOp)
    def run_view(self, interpreter: Interpreter, op: memref.ViewOp, args: PythonValues) -> PythonValues:
        """A typed buffer inside the byte pool of memory planning (shares its memory)."""
        pool, shift, *dyn = args
        t = op.result.type
        assert isinstance(t, MemRefType)
        shape = _shape(t.get_shape(), dyn)
        dtype = np.dtype(_np_dtype(t.get_element_type()))
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if shift < 0 or shift + nbytes > pool.size:
            raise BoundsError(f"memref.view of {nbytes} bytes at {shift} outside a pool of {pool.size} bytes")
        return (pool[shift:shift + nbytes].view(dtype).reshape(shape),)

    @impl(memref.GetGlobalOp)
    def run_get_global(self, interpreter: Interpreter, op: memref.GetGlobalOp, args: PythonValues) -> PythonValues:
        glob = SymbolTable.lookup_symbol(op, op.name_)
        assert isinstance(glob, memref.GlobalOp)
        cache = interpreter.__dict__.setdefault("_relax_globals", {})
        key = glob.sym_name.data
        if key not in cache:
            value = glob.initial_value
            assert isinstance(value, DenseIntOrFPElementsAttr)
            cache[key] = constant_array(value)
        return (cache[key],)

    # -- control --------------------------------------------------------------
    @impl(func.CallOp)
    def run_call(self, interpreter: Interpreter, op: func.CallOp, args: PythonValues) -> PythonValues:
        """A call, counting how deep calls nest: past the recursion limit a
        ResourceLimitError, as in C (where only calls on a cycle count; any
        deeper nest is recursion here too)."""
        if self.depth >= self.max_depth:
            raise ResourceLimitError(f"@{op.callee.root_reference.data}: {RECURSION_TOO_DEEP} {self.max_depth} "
                                     "nested calls (RELAX_XDSL_MAX_RECURSION_DEPTH)")
        self.depth += 1
        try:
            return interpreter.call_op(op.callee, args)
        finally:
            self.depth -= 1

    @impl(scf.WhileOp)
    def run_while(self, interpreter: Interpreter, op: scf.WhileOp, args: PythonValues) -> PythonValues:
        """scf.while, counting its iterations: past the loop limit a
        ResourceLimitError naming the graph loop, as in C."""
        iterations = 0
        while True:
            cond, *forwarded = interpreter.run_ssacfg_region(op.before_region, args, "while.before_region")
            if not cond:
                return tuple(forwarded)
            if iterations >= self.max_iterations:
                raise ResourceLimitError(loop_limit_message(loop_name(op), self.max_iterations))
            iterations += 1
            args = interpreter.run_ssacfg_region(op.after_region, tuple(forwarded), "while.after_region")

    @impl(cf.AssertOp)
    def run_assert(self, interpreter: Interpreter, op: cf.AssertOp, args: PythonValues) -> PythonValues:
        if not args[0]:
            raise ShapeError(op.msg.data)
        return ()

    @impl(CheckIndexOp)
    def run_check_index(self, interpreter: Interpreter, op: CheckIndexOp, args: PythonValues) -> PythonValues:
        i, n = int(args[0]), int(args[1])
        if not (0 if op.nonnegative else -n) <= i < n:
            raise index_out_of_range(op.what.data, i, n)
        return ()

    @impl(scf.ParallelOp)
    def run_parallel(self, interpreter: Interpreter, op: scf.ParallelOp, args: PythonValues) -> PythonValues:
        n = len(op.lowerBound)
        lbs, ubs, steps = args[:n], args[n:2 * n], args[2 * n:3 * n]
        for idx in np.ndindex(*[len(range(lb, ub, s)) for lb, ub, s in zip(lbs, ubs, steps)]):
            ivs = tuple(lb + i * s for lb, i, s in zip(lbs, idx, steps))
            interpreter.run_ssacfg_region(op.body, ivs, "parallel_loop")
        return ()

    @impl_terminator(scf.ReduceOp)
    def run_reduce(self, interpreter: Interpreter, op: scf.ReduceOp,
                   args: PythonValues) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(()), ()

    # -- arith beyond upstream ------------------------------------------------
    @impl(arith.AddiOp)
    def run_addi(self, interpreter: Interpreter, op: arith.AddiOp, args: PythonValues) -> PythonValues:
        return (_integer_result(op, int(args[0]) + int(args[1])),)

    @impl(arith.SubiOp)
    def run_subi(self, interpreter: Interpreter, op: arith.SubiOp, args: PythonValues) -> PythonValues:
        return (_integer_result(op, int(args[0]) - int(args[1])),)

    @impl(arith.MuliOp)
    def run_muli(self, interpreter: Interpreter, op: arith.MuliOp, args: PythonValues) -> PythonValues:
        return (_integer_result(op, int(args[0]) * int(args[1])),)

    @impl(arith.DivfOp)
    def run_divf(self, interpreter: Interpreter, op: arith.DivfOp, args: PythonValues) -> PythonValues:
        t = _float_type(op.result.type)
        with np.errstate(all="ignore"):
            return (t(t(args[0]) / t(args[1])),)

    @impl(arith.NegfOp)
    def run_negf(self, interpreter: Interpreter, op: arith.NegfOp, args: PythonValues) -> PythonValues:
        return (-_float_type(op.result.type)(args[0]),)

    @impl(arith.CeilDivSIOp)
    def run_ceildivsi(self, interpreter: Interpreter, op: arith.CeilDivSIOp, args: PythonValues) -> PythonValues:
        if int(args[1]) == 0:  # as the C prelude's rx_ceildiv: the host checks divisors of sizes first
            return (0,)
        return (-((-int(args[0])) // int(args[1])),)

    @impl(arith.DivSIOp)
    def run_divsi(self, interpreter: Interpreter, op: arith.DivSIOp, args: PythonValues) -> PythonValues:
        a, b = int(args[0]), int(args[1])
        if b == 0:
            raise RelaxError("integer division by zero")
        q = abs(a) // abs(b)
        return (q if (a >= 0) == (b > 0) else -q,)

    @impl(arith.RemSIOp)
    def run_remsi(self, interpreter: Interpreter, op: arith.RemSIOp, args: PythonValues) -> PythonValues:
        a, b = int(args[0]), int(args[1])
        if b == 0:  # as the C prelude's rx_rem
            return (0,)
        r = abs(a) % abs(b)  # in integers: math.fmod would round int64 operands to double
        return (r if a >= 0 else -r,)

    @impl(arith.FloorDivSIOp)
    def run_floordivsi(self, interpreter: Interpreter, op: arith.FloorDivSIOp, args: PythonValues) -> PythonValues:
        if int(args[1]) == 0:  # as the C prelude's rx_floordiv: the host checks divisors of sizes first
            return (0,)
        return (int(args[0]) // int(args[1]),)

    @impl(arith.MaxSIOp)
    def run_maxsi(self, interpreter: Interpreter, op: arith.MaxSIOp, args: PythonValues) -> PythonValues:
        return (max(args[0], args[1]),)

    @impl(arith.MinSIOp)
    def run_minsi(self, interpreter: Interpreter, op: arith.MinSIOp, args: PythonValues) -> PythonValues:
        return (min(args[0], args[1]),)

    @impl(arith.AndIOp)
    def run_andi(self, interpreter: Interpreter, op: arith.AndIOp, args: PythonValues) -> PythonValues:
        if _is_bool(op.result.type):
            return (bool(args[0]) and bool(args[1]),)
        return (int(args[0]) & int(args[1]),)

    @impl(arith.OrIOp)
    def run_ori(self, interpreter: Interpreter, op: arith.OrIOp, args: PythonValues) -> PythonValues:
        if _is_bool(op.result.type):
            return (bool(args[0]) or bool(args[1]),)
        return (int(args[0]) | int(args[1]),)

    @impl(arith.XOrIOp)
    def run_xori(self, interpreter: Interpreter, op: arith.XOrIOp, args: PythonValues) -> PythonValues:
        if _is_bool(op.result.type):
            return (bool(args[0]) != bool(args[1]),)
        return (int(args[0]) ^ int(args[1]),)

    @impl(arith.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: arith.ConstantOp, args: PythonValues) -> PythonValues:
        t = op.result.type
        v = op.value.value.data  # type: ignore[attr-defined]
        if _is_bool(t):
            return (bool(v),)
        if isinstance(t, AnyFloat):
            return (_float_type(t)(v),)
        return (int(v),)

    @impl(arith.SelectOp)
    def run_select(self, interpreter: Interpreter, op: arith.SelectOp, args: PythonValues) -> PythonValues:
        return (args[1] if args[0] else args[2],)

    @impl(arith.ExtFOp)
    def run_extf(self, interpreter: Interpreter, op: arith.ExtFOp, args: PythonValues) -> PythonValues:
        return (_float_type(op.result.type)(args[0]),)

    @impl(arith.TruncFOp)
    def run_truncf(self, interpreter: Interpreter, op: arith.TruncFOp, args: PythonValues) -> PythonValues:
        with np.errstate(all="ignore"):
            return (_float_type(op.result.type)(args[0]),)

    @impl(arith.SIToFPOp)
    def run_sitofp(self, interpreter: Interpreter, op: arith.SIToFPOp, args: PythonValues) -> PythonValues:
        return (_float_type(op.result.type)(int(args[0])),)

    @impl(arith.UIToFPOp)
    def run_uitofp(self, interpreter: Interpreter, op: arith.UIToFPOp, args: PythonValues) -> PythonValues:
        return (_float_type(op.result.type)(int(args[0])),)

    @impl(arith.FPToSIOp)
    def run_fptosi(self, interpreter: Interpreter, op: arith.FPToSIOp, args: PythonValues) -> PythonValues:
        """NaN -> 0, saturating out of range (as the C target and astype's reference)."""
        t = op.result.type
        return (scalar_semantics.float_to_int(float(args[0]), t.width.data if isinstance(t, IntegerType) else 64),)

    @impl(arith.ShLIOp)
    def run_shli(self, interpreter: Interpreter, op: arith.ShLIOp, args: PythonValues) -> PythonValues:
        """numpy's left shift: 0 for an amount below 0 or not below the width."""
        w = op.result.type.width.data if isinstance(op.result.type, IntegerType) else 64
        a, b = int(args[0]), int(args[1])
        return (_wrap(a << b, op.result.type) if 0 <= b < w else 0,)

    @impl(arith.ShRSIOp)
    def run_shrsi(self, interpreter: Interpreter, op: arith.ShRSIOp, args: PythonValues) -> PythonValues:
        """numpy's arithmetic right shift: the sign (0 or -1) for an amount below 0 or not below the width."""
        w = op.result.type.width.data if isinstance(op.result.type, IntegerType) else 64
        a, b = int(args[0]), int(args[1])
        return (a >> b if 0 <= b < w else (-1 if a < 0 else 0),)

    @impl(arith.ExtSIOp)
    def run_extsi(self, interpreter: Interpreter, op: arith.ExtSIOp, args: PythonValues) -> PythonValues:
        return (_wrap(-1 if args[0] is True else int(args[0]), op.result.type),)

    # -- unsigned types (values are Python ints in [0, 2**width)) ------------
    @impl(arith.DivUIOp)
    def run_divui(self, interpreter: Interpreter, op: arith.DivUIOp, args: PythonValues) -> PythonValues:
        if int(args[1]) == 0:
            raise RelaxError("integer division by zero")
        return (_unsigned(args[0], op) // _unsigned(args[1], op),)

    @impl(arith.RemUIOp)
    def run_remui(self, interpreter: Interpreter, op: arith.RemUIOp, args: PythonValues) -> PythonValues:
        if int(args[1]) == 0:
            raise RelaxError("integer remainder by zero")
        return (_unsigned(args[0], op) % _unsigned(args[1], op),)

    @impl(arith.MaxUIOp)
    def run_maxui(self, interpreter: Interpreter, op: arith.MaxUIOp, args: PythonValues) -> PythonValues:
        return (_wrap(max(_unsigned(args[0], op), _unsigned(args[1], op)), op.result.type),)

    @impl(arith.MinUIOp)
    def run_minui(self, interpreter: Interpreter, op: arith.MinUIOp, args: PythonValues) -> PythonValues:
        return (_wrap(min(_unsigned(args[0], op), _unsigned(args[1], op)), op.result.type),)

    @impl(arith.ShRUIOp)
    def run_shrui(self, interpreter: Interpreter, op: arith.ShRUIOp, args: PythonValues) -> PythonValues:
        """Logical right shift: 0 for an amount below 0 or not below the width."""
        w = op.result.type.width.data if isinstance(op.result.type, IntegerType) else 64
        b = int(args[1])
        return (_wrap(_unsigned(args[0], op) >> b, op.result.type) if 0 <= b < w else 0,)

    @impl(arith.FPToUIOp)
    def run_fptoui(self, interpreter: Interpreter, op: arith.FPToUIOp, args: PythonValues) -> PythonValues:
        """NaN and values below 0 -> 0, saturating above (as the C target and astype's reference)."""
        t = op.result.type
        return (scalar_semantics.float_to_uint(float(args[0]), t.width.data if isinstance(t, IntegerType) else 64),)

    @impl(arith.BitcastOp)
    def run_bitcast(self, interpreter: Interpreter, op: arith.BitcastOp, args: PythonValues) -> PythonValues:
        """The same bits as another type of one width: between integers a change of signedness, with a float
        numpy's view of the scalar (relax.bitcast)."""
        src, dst = op.input.type, op.result.type
        if isinstance(src, IntegerType) and isinstance(dst, IntegerType):
            return (_wrap(int(args[0]), dst),)
        if isinstance(src, IntegerType):
            bits = np.array(int(args[0]) % (1 << src.width.data), dtype=f"uint{src.width.data}")
        else:
            bits = np.array(args[0], dtype=dtypes.np_dtype(dtypes.dtype_name(src))).view(f"uint{src.bitwidth}")
        if isinstance(dst, IntegerType):
            return (_wrap(int(bits), dst),)
        return (float(bits.view(dtypes.np_dtype(dtypes.dtype_name(dst)))[()]),)

    @impl(arith.ExtUIOp)
    def run_extui(self, interpreter: Interpreter, op: arith.ExtUIOp, args: PythonValues) -> PythonValues:
        v = args[0]
        if isinstance(v, (bool, np.bool_)):
            return (int(bool(v)),)
        w = op.input.type.width.data  # type: ignore[attr-defined]
        return (int(v) % (1 << w),)

    @impl(arith.TruncIOp)
    def run_trunci(self, interpreter: Interpreter, op: arith.TruncIOp, args: PythonValues) -> PythonValues:
        if _is_bool(op.result.type):
            return (bool(int(args[0]) & 1),)
        return (_wrap(int(args[0]), op.result.type),)

    @impl(arith.IndexCastOp)
    def run_index_cast(self, interpreter: Interpreter, op: arith.IndexCastOp, args: PythonValues) -> PythonValues:
        return (int(args[0]),)

    @impl(arith.CmpfOp)
    def run_cmpf(self, interpreter: Interpreter, op: arith.CmpfOp, args: PythonValues) -> PythonValues:
        a, b = float(args[0]), float(args[1])
        unordered = math.isnan(a) or math.isnan(b)
        return (_cmpf(_CMPF[op.predicate.value.data], a, b, unordered),)

    # -- math ------------------------------------------------------------------
    run_tanh = impl(xmath.TanhOp)(_unary_float(math.tanh))
    run_erf = impl(xmath.ErfOp)(_unary_float(_erf))
    run_exp = impl(xmath.ExpOp)(_unary_float(_safe(math.exp)))
    run_log = impl(xmath.LogOp)(_unary_float(lambda x: -math.inf if x == 0 else _safe(math.log)(x)))
    run_sqrt = impl(xmath.SqrtOp)(_unary_float(_safe(math.sqrt)))
    run_rsqrt = impl(xmath.RsqrtOp)(_unary_float(lambda x: math.inf if x == 0 else _safe(lambda y: 1 / math.sqrt(y))(x)))
    run_absf = impl(xmath.AbsFOp)(_unary_float(abs))
    run_floor = impl(xmath.FloorOp)(_unary_float(lambda x: math.floor(x) if math.isfinite(x) else x))
    run_ceil = impl(xmath.CeilOp)(_unary_float(lambda x: math.ceil(x) if math.isfinite(x) else x))

    run_sin = impl(xmath.SinOp)(_unary_numpy(np.sin))
    run_cos = impl(xmath.CosOp)(_unary_numpy(np.cos))
    run_tan = impl(xmath.TanOp)(_unary_numpy(np.tan))
    run_asin = impl(xmath.AsinOp)(_unary_numpy(np.arcsin))
    run_acos = impl(xmath.AcosOp)(_unary_numpy(np.arccos))
    run_atan = impl(xmath.AtanOp)(_unary_numpy(np.arctan))
    run_sinh = impl(xmath.SinhOp)(_unary_numpy(np.sinh))
    run_cosh = impl(xmath.CoshOp)(_unary_numpy(np.cosh))
    run_asinh = impl(xmath.AsinhOp)(_unary_numpy(np.arcsinh))
    run_acosh = impl(xmath.AcoshOp)(_unary_numpy(np.arccosh))
    run_atanh = impl(xmath.AtanhOp)(_unary_numpy(np.arctanh))
    run_roundeven = impl(xmath.RoundEvenOp)(_unary_numpy(np.rint))

    @impl(RemFOp)
    def run_remf(self, interpreter: Interpreter, op: RemFOp, args: PythonValues) -> PythonValues:
        """C's fmod (NaN for a zero divisor or an infinite dividend)."""
        t = _float_type(op.result.type)
        with np.errstate(all="ignore"):
            return (t(np.fmod(t(args[0]), t(args[1]))),)

    @impl(xmath.AbsIOp)
    def run_absi(self, interpreter: Interpreter, op: xmath.AbsIOp, args: PythonValues) -> PythonValues:
        return (_wrap(abs(int(args[0])), op.result.type),)

    @impl(xmath.PowFOp)
    def run_powf(self, interpreter: Interpreter, op: xmath.PowFOp, args: PythonValues) -> PythonValues:
        return (_float_type(op.result.type)(_pow(float(args[0]), float(args[1]))),)


_CMPF = ["false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord", "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true"]


def _cmpf(pred: str, a: float, b: float, unordered: bool) -> bool:
    if pred == "false":
        return False
    if pred == "true":
        return True
    if pred == "ord":
        return not unordered
    if pred == "uno":
        return unordered
    rel = {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b, "ne": a != b}[pred[1:]]
    return (unordered or rel) if pred[0] == "u" else (not unordered and rel)


def _is_bool(t: Any) -> bool:
    return isinstance(t, IntegerType) and t.width.data == 1


def _integer_result(op: Operation, v: int) -> int:
    """An integer op's exact result `v` as the op gives it: wrapped to its
    width, or, for host size arithmetic (CHECKED_ATTR), a ResourceLimitError
    when it does not fit 64 bits (as in C)."""
    checked = op.attributes.get(CHECKED_ATTR)
    if isinstance(checked, StringAttr) and not -(2**63) <= v < 2**63:
        raise ResourceLimitError(checked.data)
    return _wrap(v, op.results[0].type)


def _wrap(v: int, t: Any) -> int:
    """v as a value of type t: two's complement, or in [0, 2**w) for unsigned types."""
    w = t.width.data if isinstance(t, IntegerType) else 64
    v &= (1 << w) - 1
    if dtypes.is_unsigned(t):
        return v
    return v - (1 << w) if v >= 1 << (w - 1) else v


def _unsigned(v: Any, op: Operation) -> int:
    """An operand of an unsigned op read as unsigned (whatever its type's signedness)."""
    t = op.operands[0].type
    w = t.width.data if isinstance(t, IntegerType) else 64
    return int(v) & ((1 << w) - 1)


class InterpModule:
    """Runs a loop-level module's functions on numpy arrays (see backend/__init__)."""

    def __init__(self, module: ModuleOp, debug: bool = False):
        """(`debug` is accepted for symmetry with the C target: the
        interpreter always checks every buffer access.)"""
        self.module = module
        self.interpreter = Interpreter(module)
        for fns in (FuncFunctions(), ScfFunctions(), MathFunctions(), BuiltinFunctions(), ArithFunctions()):
            self.interpreter.register_implementations(fns)
        self.interpreter.register_implementations(RelaxFunctions(), override=True)
        self._library_calls()

    def _library_calls(self) -> None:
        """func.call of a `relax.reference` declaration runs the numpy reference."""
        from relax_xdsl import libraries

        impls = self.interpreter._impls  # noqa: SLF001
        for op in self.module.body.ops:
            if isinstance(op, func.FuncOp) and op.is_declaration:
                ref = op.attributes.get("relax.reference")
                if ref is None:
                    continue
                fn = libraries.lookup(ref.data)  # type: ignore[attr-defined]
                n_mem = sum(isinstance(t, MemRefType) for t in op.function_type.inputs.data)

                def call(_funcs: Any, _interp: Interpreter, _op: Any, args: PythonValues, fn: Any = fn,
                         n_mem: int = n_mem) -> PythonValues:
                    fn.reference(*args[:n_mem])
                    return ()

                impls._external_funcs_dict[op.sym_name.data] = (RelaxFunctions(), call)  # noqa: SLF001

    def call(self, func_name: str, args: Sequence[np.ndarray | int]) -> tuple[np.ndarray, ...]:
        f = SymbolTable.lookup_symbol(self.module, func_name)
        if not isinstance(f, func.FuncOp):
            raise RelaxError(f"no loop-level function @{func_name}")
        args = [scalar_semantics.normalize_bool(a) if isinstance(a, np.ndarray) else a for a in args]
        scope = self.interpreter._ctx  # noqa: SLF001
        try:
            results = self.interpreter.call_op(f, tuple(args))
        except RelaxError as err:  # drop the interpreter's IR dump (an exception note)
            raise type(err)(str(err)) from None
        except RecursionError:  # Python's stack ends before the recursion limit (each call is many frames)
            raise ResourceLimitError(f"@{func_name}: {RECURSION_TOO_DEEP} the interpreter's Python stack allows "
                                     f"(sys.getrecursionlimit() is {sys.getrecursionlimit()})") from None
        finally:  # a failed call leaves its scopes (and their buffers) stacked in the interpreter
            self.interpreter._ctx = scope  # noqa: SLF001
        return tuple(np.asarray(r) for r in results)
