"""The operator registry: an OpSpec per graph op, and the IRDL op class
generated from it.

An op family file (elementwise.py, reduction.py, ...) declares, per op, in
one class: its parameters, its shape rule (`infer`), its numpy reference
(`reference`), its fusion pattern kind and (later) its legalization.
`register_op` turns the spec into an xDSL operation `relax.<name>`; user code
registers new ops the same way without editing the package.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import numpy as np
import sympy
from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TupleType,
    f64,
    i64,
)
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition
from xdsl.utils.exceptions import VerifyException

from relax_xdsl import dtypes
from relax_xdsl.dialects.relax import DimsAttr, GraphOp, TensorType
from relax_xdsl.errors import ShapeError
from relax_xdsl.shape import Dim, canon, dim_to_str, dims_differ, dims_equal, shape_to_str

if TYPE_CHECKING:
    from relax_xdsl.tir_builder import Buffer, PrimFuncBuilder

# Fusion pattern kinds, as in TVM's OpPatternKind.
ELEMWISE = "elementwise"
BROADCAST = "broadcast"
INJECTIVE = "injective"
REDUCTION = "reduction"
OUT_FUSIBLE = "output-fusible"
OPAQUE = "opaque"
PATTERN_KINDS = (ELEMWISE, BROADCAST, INJECTIVE, REDUCTION, OUT_FUSIBLE, OPAQUE)

REQUIRED: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """An op parameter: `kind` is one of int, ints (an int is taken as a
    one-element list), int_or_ints (an int and a list mean different things), float, floats, bool, str, dims (symbolic
    dims, -1 allowed);
    `default` None means optional, REQUIRED means it must be given."""

    kind: str
    default: Any = None

    def to_attr(self, op: str, name: str, value: Any) -> Attribute:
        try:
            if self.kind == "int":
                return IntegerAttr(_as_int(value), i64)
            if self.kind == "int_or_ints" and isinstance(value, (int, np.integer)):
                return IntegerAttr(_as_int(value), i64)
            if self.kind in ("ints", "int_or_ints"):
                values = [value] if isinstance(value, (int, np.integer)) else list(value)
                return DenseArrayBase.from_list(i64, [_as_int(v) for v in values])
            if self.kind == "float":
                return FloatAttr(float(value), f64)
            if self.kind == "floats":
                return DenseArrayBase.from_list(f64, [float(v) for v in value])
            if self.kind == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"expected a bool, got {value!r}")
                return BoolAttr.from_bool(bool(value))
            if self.kind == "str":
                if not isinstance(value, str):
                    raise TypeError(f"expected a str, got {value!r}")
                return StringAttr(value)
            if self.kind == "dims":
                return DimsAttr(tuple(canon(d) for d in value))
        except (TypeError, ValueError) as err:
            raise ShapeError(f"relax.{op}: parameter {name}: {err}") from None
        raise AssertionError(f"unknown parameter kind {self.kind}")

    def normalize(self, value: Any) -> Any:
        """The Python value an op's infer/reference receive."""
        if value is None:
            return None
        if self.kind == "int_or_ints":
            return int(value) if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
        if self.kind == "ints":
            return tuple(int(v) for v in ([value] if isinstance(value, (int, np.integer)) else value))
        if self.kind == "dims":
            return tuple(canon(d) for d in value)
        if self.kind == "int":
            return int(value)
        if self.kind == "float":
            return float(value)
        if self.kind == "floats":
            return tuple(float(v) for v in value)
        return value


def _as_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"expected an int, got {v!r}")
    return int(v)


def attr_to_python(attr: Attribute) -> Any:
    if isinstance(attr, IntegerAttr):
        if isinstance(attr.type, IntegerType) and attr.type.width.data == 1:
            return bool(attr.value.data)
        return attr.value.data
    if isinstance(attr, DenseArrayBase):
        return tuple(attr.get_values())
    if isinstance(attr, FloatAttr):
        return attr.value.data
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, DimsAttr):
        return attr.data
    raise VerifyException(f"unsupported op parameter attribute {attr}")


class Infer:
    """What a shape rule uses: errors that name the op, and assumptions
    (dims that cannot be proven equal) that the runtime must check."""

    def __init__(self, op: str, inputs: Sequence[Attribute] = ()):
        self.op = op
        self.inputs = inputs
        self.assumptions: list[tuple[sympy.Expr, sympy.Expr, str]] = []

    def fail(self, msg: str) -> NoReturn:
        operands = ", ".join(
            f"{shape_to_str(t.sym_shape)} {t.dtype}" if isinstance(t, TensorType) else str(t) for t in self.inputs
        )
        raise ShapeError(f"relax.{self.op}: {msg} (operands: {operands})")

    def dtype(self, dtype: str, what: str | None = None) -> str:
        """The canonical name of a dtype parameter; a name that is not a
        dtype fails, prefixed with `what` (the parameter) when given."""
        try:
            return dtypes.dtype_name(dtype)
        except Exception as err:  # noqa: BLE001
            self.fail(f"{what}: {err}" if what else str(err))

    def same(self, a: Dim, b: Dim, what: str) -> sympy.Expr:
        """Two dims that must be equal: the proven one, an error if provably
        different, else an assumption (keeping the simpler dim)."""
        a, b = canon(a), canon(b)
        if dims_equal(a, b):
            return a
        if dims_differ(a, b):
            self.fail(f"{what}: {dim_to_str(a)} vs {dim_to_str(b)} are different")
        self.assumptions.append((a, b, what))
        return b if sympy.count_ops(b) < sympy.count_ops(a) or (b.is_Integer and not a.is_Integer) else a

    def axis(self, axis: int, ndim: int, what: str = "axis") -> int:
        if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
            self.fail(f"{what} {axis} is out of range for rank {ndim}")
        return axis % ndim if ndim else 0

    def axes(self, axes: Sequence[int] | None, ndim: int, what: str = "axis") -> tuple[int, ...]:
        if axes is None:
            return tuple(range(ndim))
        out = tuple(self.axis(a, ndim, what) for a in axes)
        if len(set(out)) != len(out):
            self.fail(f"{what} {tuple(axes)} repeats an axis")
        return out

    def broadcast(self, *shapes: Sequence[sympy.Expr]) -> tuple[sympy.Expr, ...]:
        """numpy broadcasting over symbolic dims: a literal 1 stretches; other
        dims must be equal (proved, or assumed and checked at run time)."""
        ndim = max(len(s) for s in shapes)
        out: list[sympy.Expr] = []
        for i in range(ndim):
            dims = [s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0]
            cur = sympy.Integer(1)
            for d in dims:
                if d == 1:
                    continue
                cur = d if cur == 1 else self.same(cur, d, f"broadcast dim {i - ndim}")
            out.append(cur)
        return tuple(out)


def tensor(shape: Sequence[Dim], dtype: str) -> TensorType:
    return TensorType.of(shape, dtype)


class OpSpec:
    """One graph op. Subclasses set `name`, `inputs`, `params`, `pattern`
    and define `infer` and `reference` (and `legalize`)."""

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ("data",)  # "*name" = a list of tensors
    params: ClassVar[dict[str, Param]] = {}
    pattern: ClassVar[str] = OPAQUE
    op_class: ClassVar[type[GraphOp]]

    def infer(self, ctx: Infer, *inputs: TensorType, **params: Any) -> TensorType | TupleType:
        raise NotImplementedError

    def reference(self, *arrays: np.ndarray, **params: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        raise NotImplementedError

    def legalize(self, pb: PrimFuncBuilder, inputs: list[Buffer], outputs: list[Buffer], **params: Any) -> None:
        """Writes the op as a tensor program with `pb` (relax_xdsl.tir_builder):
        `inputs` are the operand buffers, `outputs` the result buffers (one per
        tensor of the result), typed exactly as the op's operands/results.
        An op without it is left alone by the `legalize` pass."""
        raise NotImplementedError

    @property
    def can_legalize(self) -> bool:
        return type(self).legalize is not OpSpec.legalize

    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[0].startswith("*")

    def signature(self) -> inspect.Signature:
        ps = [inspect.Parameter(n.lstrip("*"), inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in self.inputs]
        ps += [
            inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
            for n, p in self.params.items()
        ]
        return inspect.Signature(ps)

    def param_attrs(self, values: dict[str, Any]) -> dict[str, Attribute]:
        """xDSL attributes for the given parameters (defaults left out)."""
        out: dict[str, Attribute] = {}
        for name, value in values.items():
            p = self.params.get(name)
            if p is None:
                raise ShapeError(f"relax.{self.name} has no parameter {name!r}; it has {', '.join(self.params) or 'none'}")
            if value is REQUIRED:
                raise ShapeError(f"relax.{self.name}: parameter {name!r} is required")
            if value is None or _same_value(p, value, p.default):
                continue
            out[name] = p.to_attr(self.name, name, value)
        return out

    def decode_params(self, attributes: dict[str, Attribute]) -> dict[str, Any]:
        """Python values of every parameter (defaults filled in)."""
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if name in attributes:
                out[name] = p.normalize(attr_to_python(attributes[name]))
            elif p.default is REQUIRED:
                raise VerifyException(f"relax.{self.name}: missing required parameter {name!r}")
            else:
                out[name] = p.normalize(p.default)
        return out

    def run_infer(self, input_types: Sequence[Attribute], params: dict[str, Any]) -> tuple[Attribute, Infer]:
        ctx = Infer(self.name, input_types)
        for i, t in enumerate(input_types):
            if not isinstance(t, TensorType):
                ctx.fail(f"operand {i} is {t}, not a tensor")
        if not self.variadic and len(input_types) != len(self.inputs):
            ctx.fail(f"takes {len(self.inputs)} operands ({', '.join(self.inputs)}), got {len(input_types)}")
        if self.variadic and not input_types:
            ctx.fail("takes at least one operand")
        result = self.infer(ctx, *input_types, **params)
        return result, ctx


def _same_value(p: Param, a: Any, b: Any) -> bool:
    try:
        return b is not None and b is not REQUIRED and p.normalize(a) == p.normalize(b)
    except (TypeError, ValueError):
        return False


_REGISTRY: dict[str, OpSpec] = {}


def register_op(spec_cls: type[OpSpec]) -> type[OpSpec]:
    """Class decorator: registers the spec and generates `relax.<name>`."""
    spec = spec_cls()
    name = spec.name
    if name in _REGISTRY and type(_REGISTRY[name]) is not spec_cls:
        raise ValueError(f"a graph op named relax.{name} is already registered")
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Op"
    op_cls = irdl_op_definition(
        type(class_name, (GraphOp,), {"name": f"relax.{name}", "__module__": spec_cls.__module__,
                                     "__doc__": spec_cls.__doc__})
    )
    op_cls.SPEC = spec
    spec_cls.op_class = op_cls
    _REGISTRY[name] = spec
    return spec_cls


def get_spec(name: str) -> OpSpec:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AttributeError(f"no graph op named {name!r}") from None


def all_specs() -> dict[str, OpSpec]:
    _load_families()
    return dict(_REGISTRY)


def graph_op_classes() -> list[type[GraphOp]]:
    _load_families()
    return [s.op_class for s in _REGISTRY.values()]


_loaded = False


def _load_families() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import relax_xdsl.ops  # noqa: F401  (registers the built-in families)


def verify_graph_op(op: GraphOp) -> None:
    """The verifier of every graph op: re-deduce the result type and compare."""
    spec: OpSpec = op.SPEC
    try:
        params = spec.decode_params(dict(op.attributes))
        expected, _ = spec.run_infer([v.type for v in op.inputs], params)
    except ShapeError as err:
        raise VerifyException(str(err)) from None
    got = op.res.type
    if not types_match(expected, got):
        raise VerifyException(f"{op.name}: result type {got} differs from the deduced {expected}")


def types_match(a: Attribute, b: Attribute) -> bool:
    """Equal types, with dims compared by provable equality."""
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        return (
            a.element_type == b.element_type
            and a.ndim == b.ndim
            and all(dims_equal(x, y) for x, y in zip(a.sym_shape, b.sym_shape))
        )
    if isinstance(a, TupleType) and isinstance(b, TupleType):
        return len(a.types) == len(b.types) and all(types_match(x, y) for x, y in zip(a.types, b.types))
    return a == b


def op_callable(spec: OpSpec) -> Callable[..., Any]:
    return spec.op_class


def result_dtype(*types: TensorType) -> str:
    return types[0].dtype


def np_dtype(dtype: str) -> np.dtype:
    return np.dtype(dtype)


__all__ = [
    "BROADCAST", "ELEMWISE", "INJECTIVE", "OPAQUE", "OUT_FUSIBLE", "REDUCTION", "REQUIRED",
    "Infer", "OpSpec", "Param", "all_specs", "dtypes", "get_spec", "register_op", "tensor",
]
