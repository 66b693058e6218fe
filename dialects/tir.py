"""The tensor-program dialect `tir`.

A `tir.prim_func` works on buffers with symbolic shapes in
destination-passing style (inputs first, then outputs). Symbols are bound
from the buffers' shapes or passed as extra index args (`syms [k]`).

Two forms live side by side:
- the structured form, `tir.compute`: one output buffer, an iteration
  domain made of the output's dims (spatial axes) and optional reduction
  axes, a body that reads buffers and yields a value, a combiner for
  reductions (identity as init) and an optional epilogue; fusion and
  scheduling passes work on it;
- explicit loops, `tir.for` (serial, parallel, vectorize, unroll), with
  `tir.load` / `tir.store`, and local buffers from `tir.alloc`.
Scalar math is upstream `arith` / `math` (and `scf.if` for conditions).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
from relax_xdsl.dialects.relax import DimsAttr, _parse_shape_and_dtype, _Shaped
from xdsl.dialects.arith import FloatingPointLikeBinaryOperation
from xdsl.dialects.builtin import IndexType, StringAttr, SymbolNameConstraint, UnitAttr
from xdsl.ir import Attribute, Block, Dialect, ParametrizedAttribute, Region, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    opt_region_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import HasAncestor, IsolatedFromAbove, IsTerminator, NoTerminator, Pure, SymbolOpInterface
from xdsl.utils.exceptions import VerifyException

from relax_xdsl import dtypes
from relax_xdsl.shape import Dim, canon, dim_to_str, dims_equal, parse_dim, parse_dims, shape_to_str

COMBINERS = ("add", "mul", "max", "min")
LOOP_KINDS = ("serial", "parallel", "vectorize", "unroll")


@irdl_attr_definition
class BufferType(_Shaped, ParametrizedAttribute, TypeAttribute):
    """`!tir.buffer<[n, 784], f32>`: a dense row-major buffer."""

    name = "tir.buffer"
    dims: DimsAttr
    element_type: Attribute

    @staticmethod
    def of(shape: Sequence[Dim | str], dtype: object) -> BufferType:
        return BufferType(DimsAttr.of(shape), dtypes.to_xdsl(dtype))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        return _parse_shape_and_dtype(parser)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{shape_to_str(self.dims.data)}, ")
        printer.print_attribute(self.element_type)
        printer.print_string(">")


@irdl_op_definition
class PrimFuncOp(IRDLOperation):
    """`tir.prim_func @name(%a: !tir.buffer<...>, ...) syms [k] { ... }`."""

    name = "tir.prim_func"
    sym_name = prop_def(SymbolNameConstraint())
    sym_params = opt_prop_def(DimsAttr)
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface(), NoTerminator())

    def __init__(self, name: str, buffers: Sequence[BufferType], sym_params: Sequence[Dim | str] = (), region: Region | None = None):
        props: dict[str, Attribute] = {"sym_name": StringAttr(name)}
        if sym_params:
            props["sym_params"] = DimsAttr.of(sym_params)
        if region is None:
            region = Region(Block(arg_types=buffers))
        super().__init__(properties=props, regions=[region])

    @property
    def args(self) -> tuple[SSAValue, ...]:
        return self.body.block.args

    def buffer_types(self) -> list[BufferType]:
        return [a.type for a in self.args]  # type: ignore[misc]

    def num_sym_args(self) -> int:
        return len(self.sym_params.data) if self.sym_params else 0

    def bound_symbols(self) -> set[sympy.Symbol]:
        """Symbols the function binds: bare buffer dims and its sym params."""
        out = {d for t in self.buffer_types() for d in t.sym_shape if d.is_Symbol}
        if self.sym_params:
            out |= set(self.sym_params.data)
        return out

    def verify_(self) -> None:
        name = self.sym_name.data
        for i, t in enumerate(self.body.block.arg_types):
            if not isinstance(t, BufferType):
                raise VerifyException(f"tir.prim_func @{name}: parameter {i} is {t}, not a !tir.buffer")
        if self.sym_params:
            for d in self.sym_params.data:
                if not d.is_Symbol:
                    raise VerifyException(f"tir.prim_func @{name}: syms must be symbol names, got {dim_to_str(d)}")
        bound = self.bound_symbols()
        for op in self.body.walk():
            used: set[sympy.Symbol] = set()
            for r in op.results:
                if isinstance(r.type, BufferType):
                    used |= {s for d in r.type.sym_shape for s in d.free_symbols}
            if isinstance(op, SymExprOp):
                used |= op.expr.data[0].free_symbols
            if isinstance(op, ComputeOp):
                used |= {s for d in op.reduce_extents() for s in d.free_symbols}
            if missing := sorted(s.name for s in used - bound):
                raise VerifyException(
                    f"tir.prim_func @{name}: {op.name} uses undefined symbol(s) {', '.join(missing)} "
                    "(bind them with a buffer dim or `syms [...]`)"
                )

    @classmethod
    def parse(cls, parser: Parser) -> PrimFuncOp:
        name = parser.parse_symbol_name().data
        args = parser.parse_comma_separated_list(parser.Delimiter.PAREN, lambda: parser.parse_argument())
        syms: tuple[sympy.Expr, ...] = ()
        if parser.parse_optional_keyword("syms"):
            syms = parse_dims(parser)
        extra = parser.parse_optional_attr_dict_with_keyword()
        region = parser.parse_region(args)
        op = PrimFuncOp(name, [a.type for a in args], syms, region)  # type: ignore[misc]
        if extra is not None:
            op.attributes |= extra.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string("(")
        printer.print_list(self.args, printer.print_block_argument)
        printer.print_string(")")
        if self.sym_params:
            printer.print_string(" syms " + shape_to_str(self.sym_params.data))
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_block_terminators=False)


@irdl_op_definition
class SymExprOp(IRDLOperation):
    """`%v = tir.sym 2*n + 1`: the index value of a symbolic expression."""

    name = "tir.sym"
    expr = prop_def(DimsAttr)
    result = result_def(IndexType)
    traits = traits_def(HasAncestor(PrimFuncOp))

    def __init__(self, expr: Dim | str):
        super().__init__(properties={"expr": DimsAttr.of([expr])}, result_types=[IndexType()])

    @classmethod
    def parse(cls, parser: Parser) -> SymExprOp:
        op = SymExprOp(canon(parse_dim(parser)))
        op.attributes |= parser.parse_optional_attr_dict()
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" " + dim_to_str(self.expr.data[0]))
        printer.print_op_attributes(self.attributes)


def _parse_indices(parser: Parser) -> list[Parser.UnresolvedArgument]:
    return parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_unresolved_operand)


def _check_access(op: IRDLOperation, buffer: SSAValue, indices: Sequence[SSAValue]) -> BufferType:
    t = buffer.type
    if not isinstance(t, BufferType):
        raise VerifyException(f"{op.name}: {t} is not a buffer")
    if len(indices) != t.ndim:
        raise VerifyException(f"{op.name}: {len(indices)} indices for a buffer of rank {t.ndim}")
    for i in indices:
        if not isinstance(i.type, IndexType):
            raise VerifyException(f"{op.name}: index of type {i.type}, expected index")
    return t


@irdl_op_definition
class LoadOp(IRDLOperation):
    """`%v = tir.load %A[%i, %j] : !tir.buffer<[n, m], f32>`."""

    name = "tir.load"
    buffer = operand_def(BufferType)
    indices = var_operand_def(IndexType)
    result = result_def()

    def __init__(self, buffer: SSAValue, indices: Sequence[SSAValue]):
        assert isinstance(buffer.type, BufferType)
        super().__init__(operands=[buffer, indices], result_types=[buffer.type.element_type])

    def verify_(self) -> None:
        t = _check_access(self, self.buffer, self.indices)
        if self.result.type != t.element_type:
            raise VerifyException(f"tir.load: result {self.result.type} differs from the element type {t.element_type}")

    @classmethod
    def parse(cls, parser: Parser) -> LoadOp:
        buf = parser.parse_unresolved_operand()
        idx = _parse_indices(parser)
        extra = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        pos = parser.pos
        t = parser.parse_type()
        if not isinstance(t, BufferType):
            parser.raise_error("tir.load expects a !tir.buffer type", pos, parser.pos)
        op = LoadOp(parser.resolve_operand(buf, t), [parser.resolve_operand(i, IndexType()) for i in idx])
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.buffer)
        printer.print_string("[")
        printer.print_list(self.indices, printer.print_operand)
        printer.print_string("]")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.buffer.type)


@irdl_op_definition
class StoreOp(IRDLOperation):
    """`tir.store %v, %A[%i, %j] : !tir.buffer<[n, m], f32>`."""

    name = "tir.store"
    value = operand_def()
    buffer = operand_def(BufferType)
    indices = var_operand_def(IndexType)

    def __init__(self, value: SSAValue, buffer: SSAValue, indices: Sequence[SSAValue]):
        super().__init__(operands=[value, buffer, indices])

    def verify_(self) -> None:
        t = _check_access(self, self.buffer, self.indices)
        if self.value.type != t.element_type:
            raise VerifyException(f"tir.store: value {self.value.type} differs from the element type {t.element_type}")

    @classmethod
    def parse(cls, parser: Parser) -> StoreOp:
        val = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        buf = parser.parse_unresolved_operand()
        idx = _parse_indices(parser)
        extra = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        pos = parser.pos
        t = parser.parse_type()
        if not isinstance(t, BufferType):
            parser.raise_error("tir.store expects a !tir.buffer type", pos, parser.pos)
        op = StoreOp(
            parser.resolve_operand(val, t.element_type), parser.resolve_operand(buf, t),
            [parser.resolve_operand(i, IndexType()) for i in idx],
        )
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.value)
        printer.print_string(", ")
        printer.print_operand(self.buffer)
        printer.print_string("[")
        printer.print_list(self.indices, printer.print_operand)
        printer.print_string("]")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.buffer.type)


@irdl_op_definition
class CheckIndexOp(IRDLOperation):
    """`tir.check_index %i, %n "relax.take along axis 1"`: the program fails
    with a BoundsError unless -n <= i < n (a gather index, which may count
    from the end, as ONNX Gather's), naming `what`, i and n. Kept through
    lower-tir, where the interpreter and the C emitter run it; a check may
    leave a kernel early, so it stays out of parallel loops (written in a
    serial loop before the gather; fuse-row-loops does not merge loops with
    checks). With `nonnegative` (a unit attribute) the valid range is
    [0, n): an index that may not count from the end (RoiAlign's batch
    indices)."""

    name = "tir.check_index"
    index = operand_def(IndexType)
    extent = operand_def(IndexType)
    what = prop_def(StringAttr)
    assembly_format = "$index `,` $extent $what attr-dict"

    def __init__(self, index: SSAValue, extent: SSAValue, what: str, nonnegative: bool = False):
        super().__init__(operands=[index, extent], properties={"what": StringAttr(what)},
                         attributes={"nonnegative": UnitAttr()} if nonnegative else {})

    @property
    def nonnegative(self) -> bool:
        return "nonnegative" in self.attributes


@irdl_op_definition
class RemFOp(FloatingPointLikeBinaryOperation):
    """`%r = tir.remf %a, %b : f32`: C's fmod, the float remainder truncated
    toward zero (exact; NaN for b = 0 or an infinite a). The pinned xDSL's
    arith has no remf; this one (arith's float binary form) is kept through
    lower-tir, where the interpreter and the C emitter run it."""

    name = "tir.remf"
    traits = traits_def(Pure())


@irdl_op_definition
class AllocOp(IRDLOperation):
    """`%t = tir.alloc : !tir.buffer<[n], f32>`: a local buffer."""

    name = "tir.alloc"
    result = result_def(BufferType)
    assembly_format = "attr-dict `:` type($result)"
    traits = traits_def(HasAncestor(PrimFuncOp))

    def __init__(self, t: BufferType):
        super().__init__(result_types=[t])


@irdl_op_definition
class YieldOp(IRDLOperation):
    name = "tir.yield"
    values = var_operand_def()
    assembly_format = "($values^ `:` type($values))? attr-dict"
    traits = traits_def(IsTerminator())

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[values])


@irdl_op_definition
class ComputeOp(IRDLOperation):
    """The structured compute form:

        tir.compute %C : !tir.buffer<[n, m], f32> reduce add [k] {
        ^bb0(%i: index, %j: index, %r: index):
          ...
          tir.yield %v : f32
        } epilogue {
        ^bb0(%acc: f32, %i: index, %j: index):
          ...
          tir.yield %w : f32
        }

    The domain is the output's dims (spatial axes, one body argument each, in
    order) followed by the reduction extents. Without `reduce`, out[i, j] =
    body(i, j). With it, out[i, j] = epilogue(combine over r of body(i, j,
    r)), the combiner starting from its identity (0, 1, -inf, +inf)."""

    name = "tir.compute"
    out = operand_def(BufferType)
    combiner = opt_prop_def(StringAttr)
    reduce_dims = opt_prop_def(DimsAttr)
    body = region_def("single_block")
    epilogue = opt_region_def("single_block")
    traits = traits_def(HasAncestor(PrimFuncOp))

    def __init__(self, out: SSAValue, body: Region, reduce: tuple[str, Sequence[Dim]] | None = None, epilogue: Region | None = None, attributes: dict[str, Attribute] | None = None):
        props: dict[str, Attribute] = {}
        if reduce is not None:
            props["combiner"] = StringAttr(reduce[0])
            props["reduce_dims"] = DimsAttr.of(reduce[1])
        super().__init__(operands=[out], properties=props, regions=[body, [epilogue] if epilogue else []], attributes=attributes)

    @property
    def out_type(self) -> BufferType:
        return self.out.type  # type: ignore[return-value]

    def reduce_extents(self) -> tuple[sympy.Expr, ...]:
        return self.reduce_dims.data if self.reduce_dims else ()

    def domain(self) -> tuple[sympy.Expr, ...]:
        return self.out_type.sym_shape + self.reduce_extents()

    def body_value_type(self) -> Attribute:
        y = self.body.block.last_op
        assert isinstance(y, YieldOp)
        return y.values[0].type

    def verify_(self) -> None:
        nspatial, nred = self.out_type.ndim, len(self.reduce_extents())
        if (self.combiner is None) != (self.reduce_dims is None):
            raise VerifyException("tir.compute: `reduce` needs both a combiner and extents")
        if self.combiner is not None and self.combiner.data not in COMBINERS:
            raise VerifyException(f"tir.compute: unknown combiner {self.combiner.data!r}; one of {', '.join(COMBINERS)}")
        args = self.body.block.args
        if len(args) != nspatial + nred or any(not isinstance(a.type, IndexType) for a in args):
            raise VerifyException(
                f"tir.compute: the body takes {nspatial + nred} index arguments "
                f"({nspatial} spatial + {nred} reduction), got {len(args)}"
            )
        y = self.body.block.last_op
        if not isinstance(y, YieldOp) or len(y.values) != 1:
            raise VerifyException("tir.compute: the body must end with tir.yield of one value")
        value_type = y.values[0].type
        if self.epilogue is not None:
            e = self.epilogue.block
            if len(e.args) != 1 + nspatial or e.args[0].type != value_type:
                raise VerifyException(
                    f"tir.compute: the epilogue takes the accumulated {value_type} and {nspatial} indices"
                )
            ey = e.last_op
            if not isinstance(ey, YieldOp) or len(ey.values) != 1:
                raise VerifyException("tir.compute: the epilogue must end with tir.yield of one value")
            value_type = ey.values[0].type
        if value_type != self.out_type.element_type:
            raise VerifyException(
                f"tir.compute: yields {value_type} but the output buffer holds {self.out_type.element_type}"
            )

    @classmethod
    def parse(cls, parser: Parser) -> ComputeOp:
        out = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        pos = parser.pos
        t = parser.parse_type()
        if not isinstance(t, BufferType):
            parser.raise_error("tir.compute writes a !tir.buffer", pos, parser.pos)
        reduce = None
        if parser.parse_optional_keyword("reduce"):
            comb = parser.parse_identifier(" (the combiner: add, mul, max or min)")
            reduce = (comb, parse_dims(parser))
        extra = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region()
        epilogue = parser.parse_region() if parser.parse_optional_keyword("epilogue") else None
        op = ComputeOp(parser.resolve_operand(out, t), body, reduce, epilogue)
        if extra is not None:
            op.attributes |= extra.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.out)
        printer.print_string(" : ")
        printer.print_attribute(self.out.type)
        if self.combiner is not None:
            printer.print_string(f" reduce {self.combiner.data} {shape_to_str(self.reduce_extents())}")
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body)
        if self.epilogue is not None:
            printer.print_string(" epilogue ")
            printer.print_region(self.epilogue)


@irdl_op_definition
class ForOp(IRDLOperation):
    """`tir.for %i = %lb to %ub step %s parallel { ... }`: an explicit loop."""

    name = "tir.for"
    lb = operand_def(IndexType)
    ub = operand_def(IndexType)
    step = operand_def(IndexType)
    kind = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), HasAncestor(PrimFuncOp))

    def __init__(self, lb: SSAValue, ub: SSAValue, step: SSAValue, body: Region, kind: str = "serial"):
        super().__init__(operands=[lb, ub, step], properties={"kind": StringAttr(kind)}, regions=[body])

    @property
    def induction_var(self) -> SSAValue:
        return self.body.block.args[0]

    def verify_(self) -> None:
        if self.kind.data not in LOOP_KINDS:
            raise VerifyException(f"tir.for: unknown loop kind {self.kind.data!r}; one of {', '.join(LOOP_KINDS)}")
        args = self.body.block.args
        if len(args) != 1 or not isinstance(args[0].type, IndexType):
            raise VerifyException("tir.for: the body takes one index argument")

    @classmethod
    def parse(cls, parser: Parser) -> ForOp:
        iv = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        idx = IndexType()
        lb = parser.resolve_operand(parser.parse_unresolved_operand(), idx)
        parser.parse_keyword("to")
        ub = parser.resolve_operand(parser.parse_unresolved_operand(), idx)
        parser.parse_keyword("step")
        step = parser.resolve_operand(parser.parse_unresolved_operand(), idx)
        kind = parser.parse_optional_keyword_in(LOOP_KINDS) or "serial"
        extra = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region([iv.resolve(idx)])
        op = ForOp(lb, ub, step, body, kind)
        if extra is not None:
            op.attributes |= extra.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.induction_var)
        printer.print_string(" = ")
        printer.print_operand(self.lb)
        printer.print_string(" to ")
        printer.print_operand(self.ub)
        printer.print_string(" step ")
        printer.print_operand(self.step)
        if self.kind.data != "serial":
            printer.print_string(" " + self.kind.data)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_block_terminators=False)


def buffer_shape_equal(a: BufferType, b: Attribute) -> bool:
    return (
        isinstance(b, _Shaped) and a.element_type == b.element_type and a.ndim == b.ndim
        and all(dims_equal(x, y) for x, y in zip(a.sym_shape, b.sym_shape))
    )


Tir = Dialect(
    "tir",
    [PrimFuncOp, SymExprOp, LoadOp, StoreOp, CheckIndexOp, RemFOp, AllocOp, YieldOp, ComputeOp, ForOp],
    [BufferType],
)
