"""The graph dialect `relax`: tensor and shape types, functions, dataflow
regions, match_cast, constants, tuples, call_tir, and the base class of the
operator set (whose members live, one family per file, in relax_xdsl/ops/).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import sympy
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FunctionType,
    IndexType,
    IntAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    SymbolNameConstraint,
    SymbolRefAttr,
    TupleType,
    i64,
)
from xdsl.dialects.builtin import (
    TensorType as BuiltinTensorType,
)
from xdsl.dialects.utils import parse_func_op_like, print_func_op_like
from xdsl.ir import Attribute, Block, Data, Dialect, Operation, ParametrizedAttribute, Region, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    Pure,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import ParseError, VerifyException

from relax_xdsl import dtypes
from relax_xdsl.limits import check_alloc
from relax_xdsl.shape import (
    Dim,
    canon,
    check_static_dim,
    dim_to_str,
    parse_dim,
    parse_dims,
    parse_shape,
    shape_to_str,
    to_python,
)

# --- attributes and types ---------------------------------------------------


@irdl_attr_definition
class DimsAttr(Data[tuple[sympy.Expr, ...]]):
    """A list of symbolic dims, `#relax.dims<[n, 2*n + 1]>`: used for shape
    attributes (reshape targets, call_tir's symbolic extra args)."""

    name = "relax.dims"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> tuple[sympy.Expr, ...]:
        with parser.in_angle_brackets():
            return parse_dims(parser)

    def print_parameter(self, printer: Printer) -> None:
        printer.print_string(f"<{shape_to_str(self.data)}>")

    @staticmethod
    def of(dims: Sequence[Dim | str]) -> DimsAttr:
        return DimsAttr(tuple(canon(d) for d in dims))


def _parse_shape_and_dtype(parser: AttrParser) -> list[Attribute]:
    with parser.in_angle_brackets():
        dims = DimsAttr(parse_shape(parser))
        parser.parse_punctuation(",", " between the shape and the element type")
        pos = parser.pos
        elem = parser.parse_type()
        try:
            dtypes.dtype_name(elem)
        except Exception as err:  # noqa: BLE001
            parser.raise_error(str(err), pos, parser.pos)
    return [dims, elem]


class _Shaped:
    """Shared accessors of tensor-like types carrying DimsAttr + element type."""

    dims: DimsAttr
    element_type: Attribute

    def verify(self) -> None:
        """Static dims lie in [0, 2**62), however the type was built (a
        ShapeError: a type is built from Python as often as parsed)."""
        for i, d in enumerate(self.dims.data):
            check_static_dim(d, lambda i=i: f"dim {i} of {self.name}<{shape_to_str(self.dims.data)}>")

    @property
    def shape(self) -> tuple[Dim, ...]:
        return tuple(to_python(d) for d in self.dims.data)

    @property
    def sym_shape(self) -> tuple[sympy.Expr, ...]:
        return self.dims.data

    @property
    def dtype(self) -> str:
        return dtypes.dtype_name(self.element_type)

    @property
    def ndim(self) -> int:
        return len(self.dims.data)


@irdl_attr_definition
class TensorType(_Shaped, ParametrizedAttribute, TypeAttribute):
    """`!relax.tensor<[n, 784], f32>`: a tensor with a symbolic shape."""

    name = "relax.tensor"
    dims: DimsAttr
    element_type: Attribute

    @staticmethod
    def of(shape: Sequence[Dim | str], dtype: object) -> TensorType:
        return TensorType(DimsAttr.of(shape), dtypes.to_xdsl(dtype))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        return _parse_shape_and_dtype(parser)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{shape_to_str(self.dims.data)}, ")
        printer.print_attribute(self.element_type)
        printer.print_string(">")


@irdl_attr_definition
class ShapeType(ParametrizedAttribute, TypeAttribute):
    """`!relax.shape<[n, 4]>`: a first-class shape value (what shape_of gives)."""

    name = "relax.shape"
    dims: DimsAttr

    @staticmethod
    def of(shape: Sequence[Dim | str]) -> ShapeType:
        return ShapeType(DimsAttr.of(shape))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            return [DimsAttr(parse_shape(parser))]

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{shape_to_str(self.dims.data)}>")


@irdl_attr_definition
class PrimType(ParametrizedAttribute, TypeAttribute):
    """`!relax.prim<i64>`, `!relax.prim<i64, n + 1>`: a scalar value (Relax's
    PrimValue). An integer scalar may carry its value as a dim expression:
    then it is that size, and a parameter or `tensor_to_prim` of that type
    binds the expression's unbound symbol from the value at run time, as a
    tensor parameter binds the symbols of its dims."""

    name = "relax.prim"
    element_type: Attribute
    value: DimsAttr
    """() when the value is known only at run time, else (expression,)."""

    @staticmethod
    def of(dtype: object, value: Dim | str | None = None) -> PrimType:
        return PrimType(dtypes.to_xdsl(dtype), DimsAttr.of([] if value is None else [value]))

    @property
    def dtype(self) -> str:
        return dtypes.dtype_name(self.element_type)

    @property
    def sym_value(self) -> sympy.Expr | None:
        return self.value.data[0] if self.value.data else None

    def verify(self) -> None:
        dtypes.dtype_name(self.element_type)
        if len(self.value.data) > 1:
            raise VerifyException(f"{self.name}: at most one value, got {len(self.value.data)}")
        if self.value.data and not dtypes.is_int(self.dtype):
            raise VerifyException(f"{self.name}<{self.dtype}>: only an integer scalar can carry a symbolic value")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            pos = parser.pos
            elem = parser.parse_type()
            try:
                name = dtypes.dtype_name(elem)
            except Exception as err:  # noqa: BLE001
                parser.raise_error(str(err), pos, parser.pos)
            value: tuple[sympy.Expr, ...] = ()
            if parser.parse_optional_punctuation(","):
                pos = parser.pos
                value = (canon(parse_dim(parser)),)
                if not dtypes.is_int(name):
                    parser.raise_error(f"only an integer scalar can carry a symbolic value, not {name}", pos,
                                       parser.pos)
        return [elem, DimsAttr(value)]

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string("<")
        printer.print_attribute(self.element_type)
        if self.value.data:
            printer.print_string(f", {dim_to_str(self.value.data[0])}")
        printer.print_string(">")


def is_value_type(t: Attribute) -> bool:
    """Types a graph value may have: tensors, shapes, scalars, and tuples of them."""
    if isinstance(t, (TensorType, ShapeType, PrimType)):
        return True
    return isinstance(t, TupleType) and all(is_value_type(x) for x in t.types.data)


# --- structural ops ---------------------------------------------------------


@irdl_op_definition
class FunctionOp(IRDLOperation):
    """`relax.function @main(%x: !relax.tensor<[n, 784], f32>) -> ... { }`."""

    name = "relax.function"
    body = region_def("single_block")
    sym_name = prop_def(SymbolNameConstraint())
    function_type = prop_def(FunctionType)
    arg_attrs = opt_prop_def(ArrayAttr[DictionaryAttr])
    res_attrs = opt_prop_def(ArrayAttr[DictionaryAttr])
    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface())

    def __init__(self, name: str, inputs: Sequence[Attribute], outputs: Sequence[Attribute], region: Region | None = None):
        ftype = FunctionType.from_lists(inputs, outputs)
        if region is None:
            region = Region(Block(arg_types=ftype.inputs))
        super().__init__(properties={"sym_name": StringAttr(name), "function_type": ftype}, regions=[region])

    @property
    def args(self) -> tuple[SSAValue, ...]:
        return self.body.block.args

    def verify_(self) -> None:
        if tuple(self.body.block.arg_types) != self.function_type.inputs.data:
            raise VerifyException("relax.function: block argument types differ from the signature")
        for i, t in enumerate(self.function_type.inputs.data + self.function_type.outputs.data):
            if not is_value_type(t):
                raise VerifyException(f"relax.function @{self.sym_name.data}: type #{i} {t} is not a relax type")
        ret = self.body.block.last_op
        if not isinstance(ret, ReturnOp):
            raise VerifyException(f"relax.function @{self.sym_name.data} must end with relax.return")
        got = tuple(v.type for v in ret.values)
        if got != self.function_type.outputs.data:
            raise VerifyException(
                f"relax.function @{self.sym_name.data}: relax.return gives "
                f"({', '.join(map(str, got))}) but the signature says "
                f"({', '.join(map(str, self.function_type.outputs.data))})"
            )

    @classmethod
    def parse(cls, parser: Parser) -> FunctionOp:
        name, inputs, outputs, region, extra, arg_attrs, res_attrs = parse_func_op_like(
            parser, reserved_attr_names=("sym_name", "function_type")
        )
        if region is None:
            parser.raise_error("relax.function needs a body")
        op = FunctionOp(name, inputs, outputs, region)
        if arg_attrs is not None:
            op.arg_attrs = arg_attrs
        if res_attrs is not None:
            op.res_attrs = res_attrs
        if extra is not None:
            op.attributes |= extra.data
        return op

    def print(self, printer: Printer) -> None:
        print_func_op_like(
            printer, self.sym_name, self.function_type, self.body, self.attributes,
            arg_attrs=self.arg_attrs, res_attrs=self.res_attrs,
            reserved_attr_names=("sym_name", "function_type"),
        )


@irdl_op_definition
class ReturnOp(IRDLOperation):
    name = "relax.return"
    values = var_operand_def()
    assembly_format = "($values^ `:` type($values))? attr-dict"
    traits = traits_def(IsTerminator(), HasParent(FunctionOp))

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[values])


@irdl_op_definition
class DataflowOp(IRDLOperation):
    """A pure, single-assignment region; its results are what `relax.output`
    yields. Values defined inside are not visible after it."""

    name = "relax.dataflow"
    outs = var_result_def()
    body = region_def("single_block")
    assembly_format = "attr-dict (`->` `(` type($outs)^ `)`)? $body"

    def __init__(self, body: Region, result_types: Sequence[Attribute]):
        super().__init__(result_types=[result_types], regions=[body])

    def verify_(self) -> None:
        out = self.body.block.last_op
        if not isinstance(out, OutputOp):
            raise VerifyException("relax.dataflow must end with relax.output")
        if tuple(v.type for v in out.values) != tuple(r.type for r in self.outs):
            raise VerifyException("relax.output types differ from the relax.dataflow result types")


@irdl_op_definition
class OutputOp(IRDLOperation):
    name = "relax.output"
    values = var_operand_def()
    assembly_format = "($values^ `:` type($values))? attr-dict"
    traits = traits_def(IsTerminator(), HasParent(DataflowOp))

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[values])


@irdl_op_definition
class MatchCastOp(IRDLOperation):
    """Asserts at run time that a value has the given shape, binding any
    symbol of that shape not bound yet."""

    name = "relax.match_cast"
    value = operand_def()
    result = result_def()
    assembly_format = "$value attr-dict `:` type($value) `->` type($result)"
    traits = traits_def()  # not Pure: it binds symbols later types name, so it is never dead

    def __init__(self, value: SSAValue, result_type: Attribute):
        super().__init__(operands=[value], result_types=[result_type])

    def verify_(self) -> None:
        src, dst = self.value.type, self.result.type
        if isinstance(src, TensorType) and isinstance(dst, TensorType):
            if src.element_type != dst.element_type:
                raise VerifyException(f"relax.match_cast cannot change the dtype ({src.dtype} -> {dst.dtype})")
            if src.ndim != dst.ndim:
                raise VerifyException(f"relax.match_cast cannot change the rank ({src.ndim} -> {dst.ndim})")
        elif isinstance(src, ShapeType) and isinstance(dst, ShapeType):
            if len(src.dims.data) != len(dst.dims.data):
                raise VerifyException(f"relax.match_cast cannot change a shape's length "
                                      f"({len(src.dims.data)} -> {len(dst.dims.data)})")
        elif isinstance(src, PrimType) and isinstance(dst, PrimType):
            if src.element_type != dst.element_type:
                raise VerifyException(f"relax.match_cast cannot change the dtype ({src.dtype} -> {dst.dtype})")
        elif type(src) is not type(dst):
            raise VerifyException(f"relax.match_cast from {src} to {dst}: kinds differ")


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A tensor constant: `relax.constant dense<...> : tensor<2x3xf32>`
    (large data prints as hex, so weights parse and print fast)."""

    name = "relax.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, value: DenseIntOrFPElementsAttr):
        shape = value.get_shape() or ()
        super().__init__(
            properties={"value": value},
            result_types=[TensorType(DimsAttr.of(shape), value.get_element_type())],
        )

    @staticmethod
    def from_array(array: np.ndarray, splat_shape: Sequence[int] | None = None) -> ConstantOp:
        """The constant holding `array`; with `splat_shape`, a splat of that
        shape holding the one element of `array`, stored once."""
        array = np.asarray(array)
        dtype = dtypes.dtype_name(array.dtype)
        elem = dtypes.to_xdsl(dtype)
        # Raw little-endian bytes, as xDSL packs them (i1 true as 0xff): no
        # per-element Python work, so million-weight constants build fast.
        data = np.where(array, -1, 0).astype(np.int8) if dtype == "bool" else array
        raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes()
        if splat_shape is not None and array.size != 1:
            raise ValueError(f"a splat holds one element, got {array.size}")
        shape = array.shape if splat_shape is None else tuple(splat_shape)
        return ConstantOp(DenseIntOrFPElementsAttr(BuiltinTensorType(elem, shape), BytesAttr(raw)))

    def to_array(self) -> np.ndarray:
        return constant_array(self.value)

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        pos = parser.pos
        attr = _parse_splat(parser)
        if attr is None:
            attr = parser.parse_attribute()
        if not isinstance(attr, DenseIntOrFPElementsAttr):
            parser.raise_error("relax.constant expects a dense<...> : tensor<...> value", pos, parser.pos)
        if not isinstance(attr.get_element_type(), (IntegerType, IndexType)) and \
                _BARE_HEX.search(_without_strings(parser.lexer.input.content[pos:parser.pos])):
            parser.raise_error("relax.constant: a float element written as a hex bit pattern (0x...) is read as an "
                               "integer; write NaN and inf constants in the quoted form dense<\"0x<little-endian "
                               "bytes>\">, as relax constants print them", pos, parser.pos)
        extra = parser.parse_optional_attr_dict()
        op = ConstantOp(attr)
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        array = stored_elements(self.value)  # a splat's one value: printed as one, never expanded
        if dtypes.is_float(dtypes.dtype_name(array.dtype)) and not np.isfinite(array.astype(np.float32)).all():
            # xDSL prints NaN and inf as bit patterns (0x7fc00000) that its
            # parser reads back as integers: the quoted raw-bytes form
            # round-trips every value.
            raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            printer.print_string(f'dense<"0x{raw.hex().upper()}"> : ')
            printer.print_attribute(self.value.type)
        else:
            printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)


_BARE_HEX = re.compile(r"\b0[xX][0-9a-fA-F]+")
_SPLAT = re.compile(r'dense<\s*(?P<value>"0[xX][0-9a-fA-F]{1,16}"|[^<>\[\]",\s]+)\s*>\s*:\s*'
                    r'tensor<(?P<dims>(?:[0-9]+x)+)(?P<elem>[a-z][a-z0-9]*)>')


def _parse_splat(parser: Parser) -> DenseIntOrFPElementsAttr | None:
    """A splat `dense<v> : tensor<AxBx...>` kept as its one value, or None
    when the text at the parser is not one. xDSL's parser expands a splat
    to every element: fold-constants prints exported weights as splats
    (onnx's light zoo: `dense<2.0e-02> : tensor<4096x9216xf32>`), and a
    few bytes of text must not ask for gigabytes. The element parses as a
    rank-0 dense through xDSL (its spelling rules, hex and all)."""
    text = parser.lexer.input.content
    m = _SPLAT.match(text, parser.pos)
    if m is None:
        return None
    shape = [int(d) for d in m["dims"].split("x")[:-1]]
    count = 1
    for d in shape:
        count *= d
    if count < 2:
        return None
    try:
        one = Parser(parser.ctx, f"dense<{m['value']}> : tensor<{m['elem']}>").parse_attribute()
    except (ParseError, VerifyException):
        return None  # not one element: the whole text again, so any error points into it
    if not isinstance(one, DenseIntOrFPElementsAttr) or not isinstance(one.data.data, bytes):
        return None
    parser._resume_from(m.end())  # noqa: SLF001  (the splat's text is consumed here)
    return DenseIntOrFPElementsAttr(BuiltinTensorType(one.get_element_type(), shape), BytesAttr(one.data.data))


def _without_strings(text: str) -> str:
    """`text` with its double-quoted strings removed (the raw-bytes form
    of dense<"0x..."> is a string, not a bit pattern)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def stored_elements(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The elements a dense attribute stores, flat: all of them, or the one
    value of a splat (which is never expanded here)."""
    elem = attr.get_element_type()
    dtype = dtypes.dtype_name(elem)
    np_dtype = np.int8 if dtype == "bool" else dtypes.np_dtype(dtype)
    raw = attr.data.data
    data = np.frombuffer(raw, dtype=np_dtype) if isinstance(raw, bytes) else np.asarray(
        attr.get_values(), dtype=np_dtype
    )
    return data.astype(bool) if dtype == "bool" else data


CONSTANT_ALIGNMENT = 64
"""Bytes to which constant_array aligns its arrays' data. The C target hands
them to compiled code as its constant table, as deployed weights are
aligned (deploy.py's `.balign 64`) and as result buffers are: the kernels'
32- and 64-byte loads of a weight row then never straddle two cache lines
(numpy's own allocations are aligned to 16 bytes)."""


def constant_array(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The numpy array a dense attribute holds, a C-contiguous copy aligned
    to CONSTANT_ALIGNMENT; a splat is expanded, within the allocation limit
    (a ResourceLimitError names the shape past it)."""
    shape = tuple(attr.get_shape() or ())
    data = stored_elements(attr)
    whole = data.size == int(np.prod(shape, dtype=object))
    if not whole:
        check_alloc(shape, data.itemsize, "a splat constant")
    nbytes = int(np.prod(shape, dtype=object)) * data.itemsize
    raw = np.empty(nbytes + CONSTANT_ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % CONSTANT_ALIGNMENT
    out = raw[start:start + nbytes].view(data.dtype).reshape(shape)
    out[...] = data.reshape(shape) if whole else data[0]
    return out


@irdl_op_definition
class TupleOp(IRDLOperation):
    name = "relax.tuple"
    fields = var_operand_def()
    result = result_def(TupleType)
    traits = traits_def(Pure())

    def __init__(self, *fields: SSAValue):
        super().__init__(operands=[fields], result_types=[TupleType(tuple(f.type for f in fields))])

    @classmethod
    def parse(cls, parser: Parser) -> TupleOp:
        args = parser.parse_comma_separated_list(parser.Delimiter.NONE, parser.parse_unresolved_operand) \
            if parser._current_token.text.startswith("%") else []  # noqa: SLF001
        extra = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        types = parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_type)
        values = parser.resolve_operands(args, types, parser.pos)
        op = TupleOp(*values)
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        if self.fields:
            printer.print_string(" ")
            printer.print_list(self.fields, printer.print_operand)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : (")
        printer.print_list([f.type for f in self.fields], printer.print_attribute)
        printer.print_string(")")


@irdl_op_definition
class GetItemOp(IRDLOperation):
    """`relax.get_item %t[0] : tuple<...>`: one field of a tuple."""

    name = "relax.get_item"
    tuple_value = operand_def(TupleType)
    index = prop_def(IntAttr)
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, value: SSAValue, index: int):
        assert isinstance(value.type, TupleType)
        super().__init__(
            operands=[value], properties={"index": IntAttr(index)},
            result_types=[value.type.types.data[index]],
        )

    def verify_(self) -> None:
        n = len(self.tuple_value.type.types.data)
        if not 0 <= self.index.data < n:
            raise VerifyException(f"relax.get_item index {self.index.data} out of range for a tuple of {n}")
        if self.result.type != self.tuple_value.type.types.data[self.index.data]:
            raise VerifyException("relax.get_item result type differs from the tuple field type")

    @classmethod
    def parse(cls, parser: Parser) -> GetItemOp:
        operand = parser.parse_unresolved_operand()
        parser.parse_punctuation("[")
        index = parser.parse_integer(allow_boolean=False)
        parser.parse_punctuation("]")
        extra = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        pos = parser.pos
        tuple_type = parser.parse_type()
        if not isinstance(tuple_type, TupleType):
            parser.raise_error("relax.get_item expects a tuple type", pos, parser.pos)
        if not 0 <= index < len(tuple_type.types.data):
            parser.raise_error(f"relax.get_item index {index} out of range for {tuple_type}", pos, parser.pos)
        value = parser.resolve_operand(operand, tuple_type)
        op = GetItemOp(value, index)
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.tuple_value)
        printer.print_string(f"[{self.index.data}]")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.tuple_value.type)


@irdl_op_definition
class ShapeOfOp(IRDLOperation):
    name = "relax.shape_of"
    value = operand_def(TensorType)
    result = result_def(ShapeType)
    assembly_format = "$value attr-dict `:` type($value) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, value: SSAValue):
        assert isinstance(value.type, TensorType)
        super().__init__(operands=[value], result_types=[ShapeType(value.type.dims)])

    def verify_(self) -> None:
        if self.result.type.dims != self.value.type.dims:
            raise VerifyException("relax.shape_of result shape differs from the operand's")


# --- shape and scalar values ------------------------------------------------


def _i64_vector(t: Attribute, n: int, what: str) -> None:
    if not isinstance(t, TensorType) or t.dtype != "int64" or t.ndim != 1 or t.sym_shape[0] != n:
        raise VerifyException(f"{what}: the tensor must be !relax.tensor<[{n}], i64>, not {t}")


@irdl_op_definition
class MakeShapeOp(IRDLOperation):
    """`relax.make_shape : !relax.shape<[n + 1, 4]>`: the shape value of dims
    over bound symbols (Relax's `R.shape([...])`). With `shape_to_tensor`
    it is how sizes become tensor data (e.g. the length of a causal mask)."""

    name = "relax.make_shape"
    result = result_def(ShapeType)
    assembly_format = "attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(self, dims: Sequence[Dim | str]):
        super().__init__(result_types=[ShapeType.of(dims)])


@irdl_op_definition
class ShapeToTensorOp(IRDLOperation):
    """`relax.shape_to_tensor %s : !relax.shape<[n, 4]> -> !relax.tensor<[2], i64>`."""

    name = "relax.shape_to_tensor"
    shape = operand_def(ShapeType)
    result = result_def(TensorType)
    assembly_format = "$shape attr-dict `:` type($shape) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, shape: SSAValue):
        assert isinstance(shape.type, ShapeType)
        super().__init__(operands=[shape], result_types=[TensorType.of([len(shape.type.dims.data)], "int64")])

    def verify_(self) -> None:
        _i64_vector(self.result.type, len(self.shape.type.dims.data), self.name)


@irdl_op_definition
class TensorToShapeOp(IRDLOperation):
    """`relax.tensor_to_shape %t : !relax.tensor<[2], i64> -> !relax.shape<[a, b]>`:
    tensor data becomes sizes. At run time the result type's unbound symbols
    are bound from the values (a dim linear in one unbound symbol is solved
    for it) and every dim is checked, as `match_cast` does; a value that is
    negative or 2**62 or more cannot be a size and is a ShapeError. Fresh
    symbols make it Relax's `tensor_to_shape`; known ones make it a check."""

    name = "relax.tensor_to_shape"
    tensor = operand_def(TensorType)
    result = result_def(ShapeType)
    assembly_format = "$tensor attr-dict `:` type($tensor) `->` type($result)"
    traits = traits_def()  # not Pure: it binds symbols later types name, so it is never dead

    def __init__(self, tensor: SSAValue, dims: Sequence[Dim | str]):
        super().__init__(operands=[tensor], result_types=[ShapeType.of(dims)])

    def verify_(self) -> None:
        _i64_vector(self.tensor.type, len(self.result.type.dims.data), self.name)


@irdl_op_definition
class PrimValueOp(IRDLOperation):
    """`relax.prim_value : !relax.prim<i64, n + 1>`: the scalar of a dim
    expression over bound symbols (arithmetic on sizes is arithmetic on
    these expressions)."""

    name = "relax.prim_value"
    result = result_def(PrimType)
    assembly_format = "attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(self, value: Dim | str, dtype: object = "int64"):
        super().__init__(result_types=[PrimType.of(dtype, value)])

    def verify_(self) -> None:
        if self.result.type.sym_value is None:
            raise VerifyException(f"{self.name}: the result type must carry the value, e.g. !relax.prim<i64, n + 1>")


@irdl_op_definition
class PrimToTensorOp(IRDLOperation):
    """`relax.prim_to_tensor %p : !relax.prim<i64, n> -> !relax.tensor<[], i64>`."""

    name = "relax.prim_to_tensor"
    prim = operand_def(PrimType)
    result = result_def(TensorType)
    assembly_format = "$prim attr-dict `:` type($prim) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, prim: SSAValue):
        assert isinstance(prim.type, PrimType)
        super().__init__(operands=[prim], result_types=[TensorType(DimsAttr(()), prim.type.element_type)])

    def verify_(self) -> None:
        t = self.result.type
        if t.ndim != 0 or t.element_type != self.prim.type.element_type:
            raise VerifyException(f"{self.name}: the result must be !relax.tensor<[], {self.prim.type.dtype}>")


@irdl_op_definition
class TensorToPrimOp(IRDLOperation):
    """`relax.tensor_to_prim %t : !relax.tensor<[], i64> -> !relax.prim<i64, k>`:
    a 0-d tensor's element as a scalar; a symbolic value in the result type
    is bound or checked at run time as in `tensor_to_shape`."""

    name = "relax.tensor_to_prim"
    tensor = operand_def(TensorType)
    result = result_def(PrimType)
    assembly_format = "$tensor attr-dict `:` type($tensor) `->` type($result)"
    traits = traits_def()  # not Pure: it binds symbols later types name, so it is never dead

    def __init__(self, tensor: SSAValue, value: Dim | str | None = None):
        assert isinstance(tensor.type, TensorType)
        super().__init__(operands=[tensor], result_types=[PrimType.of(tensor.type.dtype, value)])

    def verify_(self) -> None:
        t = self.tensor.type
        if t.ndim != 0 or t.element_type != self.result.type.element_type:
            raise VerifyException(f"{self.name}: the operand must be !relax.tensor<[], {self.result.type.dtype}>")


VALUE_OPS = (MakeShapeOp, ShapeToTensorOp, TensorToShapeOp, PrimValueOp, PrimToTensorOp, TensorToPrimOp)
"""Ops on shape and scalar values: the host runs them (lower-graph), they are
never legalized to tensor programs."""


class _MemRefView:
    """A memref parameter seen as a buffer (rank, element type, dtype)."""

    def __init__(self, t: MemRefType):
        self.ndim = len(t.get_shape())
        self.element_type = t.get_element_type()
        self.dtype = dtypes.dtype_name(self.element_type)


def _dps_verify(op: Operation, callee: SymbolRefAttr, kinds: tuple[type[Operation], ...], what: str, n_syms: int,
                outputs: Sequence[SSAValue] | None = None) -> Operation:
    """Checks a destination-passing call against its callee: existence, kind,
    arity (inputs + outputs = callee buffers), ranks and dtypes. `outputs`:
    the results the callee gets a buffer for (default all; an in-place call
    passes only its freshly allocated ones)."""
    target = SymbolTable.lookup_symbol(op, callee)
    name = callee.string_value()
    if target is None:
        raise VerifyException(f"{op.name}: callee @{name} does not exist")
    if not isinstance(target, kinds):
        raise VerifyException(f"{op.name}: @{name} is a {target.name}, not {what}")
    if isinstance(target, func.FuncOp):  # a tensor program already lowered by lower-tir
        types = list(target.function_type.inputs.data)
        params = [_MemRefView(t) for t in types if isinstance(t, MemRefType)]
        want_syms = len(types) - len(params)
    else:
        params = target.buffer_types()  # type: ignore[attr-defined]
        want_syms = target.num_sym_args()  # type: ignore[attr-defined]
    outs = list(op.results) if outputs is None else list(outputs)
    values = [v.type for v in op.operands] + [r.type for r in outs]
    if len(params) != len(values):
        raise VerifyException(
            f"{op.name} @{name}: {len(op.operands)} inputs + {len(outs)} outputs, "
            f"but the callee takes {len(params)} buffers"
        )
    for i, (p, v) in enumerate(zip(params, values)):
        role = f"input {i}" if i < len(op.operands) else f"output {i - len(op.operands)}"
        if not isinstance(v, TensorType):
            raise VerifyException(f"{op.name} @{name}: {role} is {v}, not a tensor")
        if p.ndim != v.ndim:
            raise VerifyException(f"{op.name} @{name}: {role} has rank {v.ndim}, the callee's buffer {i} rank {p.ndim}")
        if p.element_type != v.element_type:
            raise VerifyException(f"{op.name} @{name}: {role} is {v.dtype}, the callee's buffer {i} {p.dtype}")
    if n_syms != want_syms:
        raise VerifyException(f"{op.name} @{name}: {n_syms} symbolic args given, the callee takes {want_syms}")
    return target


def parse_dps_call(parser: Parser) -> tuple[SymbolRefAttr, list[SSAValue], tuple[sympy.Expr, ...], list[Attribute], dict[str, Attribute]]:
    """`@callee(%a, %b) [n, 2*n] {attrs} : (A, B) -> (C, D)`."""
    callee = parser.parse_symbol_name()
    args = parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_unresolved_operand)
    syms: tuple[sympy.Expr, ...] = ()
    if parser._current_token.text == "[":  # noqa: SLF001
        syms = parse_dims(parser)
    extra = parser.parse_optional_attr_dict()
    parser.parse_punctuation(":")
    pos = parser.pos
    ftype = parser.parse_function_type()
    if len(ftype.inputs) != len(args):
        parser.raise_error(f"{len(args)} operands but {len(ftype.inputs)} input types", pos, parser.pos)
    values = parser.resolve_operands(args, list(ftype.inputs.data), pos)
    return SymbolRefAttr(callee), values, syms, list(ftype.outputs.data), extra


def print_dps_call(printer: Printer, op: Operation, callee: SymbolRefAttr, syms: DimsAttr | None,
                   extra: dict[str, Attribute] | None = None) -> None:
    printer.print_string(" ")
    printer.print_attribute(callee)
    printer.print_string("(")
    printer.print_list(op.operands, printer.print_operand)
    printer.print_string(")")
    if syms is not None:
        printer.print_string(" " + shape_to_str(syms.data))
    printer.print_op_attributes({**(extra or {}), **op.attributes})
    printer.print_string(" : ")
    printer.print_function_type([o.type for o in op.operands], [r.type for r in op.results])


@irdl_op_definition
class CallTIROp(IRDLOperation):
    """`relax.call_tir @prog(%a, %b) [n] : (A, B) -> C`: calls a tensor
    program in destination-passing style: the program writes its outputs,
    whose shapes (symbolic) the result types give. `[n]` are the symbolic
    extra args bound to the program's index parameters."""

    name = "relax.call_tir"
    callee = prop_def(SymbolRefAttr)
    sym_args = opt_prop_def(DimsAttr)
    inputs = var_operand_def(TensorType)
    outs = var_result_def(TensorType)

    def __init__(self, callee: str | SymbolRefAttr, inputs: Sequence[SSAValue], out_types: Sequence[Attribute], sym_args: Sequence[Dim] | None = None):
        props: dict[str, Attribute] = {"callee": SymbolRefAttr(callee) if isinstance(callee, str) else callee}
        if sym_args:
            props["sym_args"] = DimsAttr.of(sym_args)
        super().__init__(operands=[inputs], result_types=[out_types], properties=props)

    def verify_(self) -> None:
        from relax_xdsl.dialects.tir import PrimFuncOp

        _dps_verify(self, self.callee, (PrimFuncOp, func.FuncOp), "a tir.prim_func (or its lowered func.func)", len(self.sym_args.data) if self.sym_args else 0)

    @classmethod
    def parse(cls, parser: Parser) -> CallTIROp:
        callee, values, syms, outs, extra = parse_dps_call(parser)
        op = CallTIROp(callee, values, outs, syms)
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        print_dps_call(printer, self, self.callee, self.sym_args)


@irdl_op_definition
class CallTIRInplaceOp(IRDLOperation):
    """`relax.call_tir_inplace @prog(%cache, %row) {inplace_indices = array<i64: 0>} : (A, B) -> A`:
    TVM Relax's in-place call. Output k aliases input `inplace_indices[k]`
    (-1: a freshly allocated output): the program writes that output into
    the input's buffer, so no output is allocated or copied for it. As in
    TVM, the callee takes the inputs, then only the fresh outputs. The
    aliased input is consumed: it (and every value sharing its storage) must
    not be used after the call, which the verifier checks (TVM leaves it to
    the caller). In a relax.dataflow block the call is allowed, as in TVM,
    unless it writes into a parameter of the function: that write is seen by
    the caller, a side effect (relax_xdsl/aliasing.py)."""

    name = "relax.call_tir_inplace"
    callee = prop_def(SymbolRefAttr)
    inplace_indices = prop_def(DenseArrayBase)
    sym_args = opt_prop_def(DimsAttr)
    inputs = var_operand_def(TensorType)
    outs = var_result_def(TensorType)

    def __init__(self, callee: str | SymbolRefAttr, inputs: Sequence[SSAValue], out_types: Sequence[Attribute],
                 inplace_indices: Sequence[int], sym_args: Sequence[Dim] | None = None):
        props: dict[str, Attribute] = {
            "callee": SymbolRefAttr(callee) if isinstance(callee, str) else callee,
            "inplace_indices": DenseArrayBase.from_list(i64, list(inplace_indices)),
        }
        if sym_args:
            props["sym_args"] = DimsAttr.of(sym_args)
        super().__init__(operands=[inputs], result_types=[out_types], properties=props)

    @property
    def indices(self) -> tuple[int, ...]:
        """Per output, the index of the input it aliases, or -1 (fresh)."""
        return tuple(int(i) for i in self.inplace_indices.get_values())

    def aliased(self) -> list[tuple[int, int]]:
        """(output index, input index) of each in-place output."""
        return [(k, i) for k, i in enumerate(self.indices) if i != -1]

    def fresh_outputs(self) -> list[SSAValue]:
        return [r for r, i in zip(self.outs, self.indices) if i == -1]

    def verify_(self) -> None:
        from relax_xdsl.dialects.tir import PrimFuncOp

        where = f"relax.call_tir_inplace @{self.callee.string_value()}"
        if self.inplace_indices.get_element_type() != i64:
            raise VerifyException(f"{where}: inplace_indices must be an array<i64: ...>")
        indices = self.indices
        if len(indices) != len(self.outs):
            raise VerifyException(f"{where}: {len(indices)} inplace_indices for {len(self.outs)} outputs "
                                  "(one per output: the input it aliases, or -1)")
        seen: dict[int, int] = {}
        for k, i in enumerate(indices):
            if i == -1:
                continue
            if not 0 <= i < len(self.inputs):
                raise VerifyException(f"{where}: output {k} aliases input {i}, out of range for "
                                      f"{len(self.inputs)} inputs (an index is an input's position, or -1)")
            if i in seen:
                raise VerifyException(f"{where}: outputs {seen[i]} and {k} both alias input {i}")
            seen[i] = k
            if self.outs[k].type != self.inputs[i].type:
                raise VerifyException(f"{where}: output {k} is {self.outs[k].type} but the input {i} it aliases "
                                      f"is {self.inputs[i].type}: an in-place output has exactly its input's type")
        if not seen:
            raise VerifyException(f"{where}: no output aliases an input (every index is -1): use relax.call_tir")
        _dps_verify(self, self.callee, (PrimFuncOp, func.FuncOp), "a tir.prim_func (or its lowered func.func)",
                    len(self.sym_args.data) if self.sym_args else 0, self.fresh_outputs())
        from relax_xdsl.aliasing import verify_inplace_call

        verify_inplace_call(self)

    @classmethod
    def parse(cls, parser: Parser) -> CallTIRInplaceOp:
        pos = parser.pos
        callee, values, syms, outs, extra = parse_dps_call(parser)
        indices = extra.pop("inplace_indices", None)
        if not isinstance(indices, DenseArrayBase):
            parser.raise_error("relax.call_tir_inplace needs {inplace_indices = array<i64: ...>} (per output: "
                               "the input it aliases, or -1)", pos, parser.pos)
        op = CallTIRInplaceOp(callee, values, outs, [], syms)
        op.inplace_indices = indices
        op.attributes |= extra
        return op

    def print(self, printer: Printer) -> None:
        print_dps_call(printer, self, self.callee, self.sym_args, {"inplace_indices": self.inplace_indices})


# --- the operator set -------------------------------------------------------


class GraphOp(IRDLOperation):
    """Base of every operator of the operator set: tensor operands, one result
    (a tensor, or a tuple for split), op parameters as attributes. `spec`
    (`SPEC`, an OpSpec from relax_xdsl.ops) holds the op's shape rule, numpy
    reference, legalization and fusion pattern kind."""

    inputs = var_operand_def()
    res = result_def()
    traits = traits_def(Pure())
    assembly_format = "$inputs attr-dict `:` functional-type($inputs, $res)"

    SPEC: ClassVar[Any] = None  # the OpSpec, set for each generated class

    def verify_(self) -> None:
        from relax_xdsl.ops.registry import verify_graph_op

        verify_graph_op(self)


STRUCTURAL_OPS: list[type[Operation]] = [
    FunctionOp, ReturnOp, DataflowOp, OutputOp, MatchCastOp, ConstantOp,
    TupleOp, GetItemOp, ShapeOfOp, CallTIROp, CallTIRInplaceOp, *VALUE_OPS,
]
ATTRIBUTES: list[type[Attribute]] = [DimsAttr, TensorType, ShapeType, PrimType]


def relax_dialect() -> Dialect:
    """The dialect with every registered graph op (user-registered ones too)."""
    from relax_xdsl.dialects.relax_control_flow import CONTROL_FLOW_OPS

    from relax_xdsl.ops.registry import graph_op_classes

    return Dialect("relax", [*STRUCTURAL_OPS, *CONTROL_FLOW_OPS, *graph_op_classes()], ATTRIBUTES)
