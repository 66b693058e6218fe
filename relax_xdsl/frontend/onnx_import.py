"""ONNX -> a relax graph function (`from_onnx`).

The importer walks the graph in order. Every ONNX value becomes either a
graph value (a `Var`, computed at run time) or a `Known` value, computed here
at import time: initializers, `Constant` nodes, and whatever exporters
compute from them and from `Shape` (the shape subgraphs). A `Known` may hold
sympy dims, so `Reshape(x, Concat(Shape(x)[0:2], [4, 64]))` reshapes to
`[b, t, 4, 64]` rather than to unknown dims. A graph op whose inputs are
all Known numbers is folded with the op's own numpy reference.

One converter per ONNX op type lives in onnx_ops.py; `register_converter`
adds more from user code. Unknown ops, unsupported attributes and outputs
fail here, naming the node, its op type and what is missing.

Import-time memory is bounded like run-time memory: a node no graph output
depends on is checked (op type, attributes) but not converted, so nothing
it would fold is computed; a value is dropped after its last use; and each
folded value, and all folded values held at once, count against the
allocation limit (relax_xdsl.limits, $RELAX_XDSL_MAX_ALLOC_BYTES) -- a
ResourceLimitError naming the node, not an exhausted machine (a 5 KB model
of 200 dead 1M-element Expands took 800 MB).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import sympy
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from relax_xdsl import dtypes
from relax_xdsl import op as rop
from relax_xdsl.builder import FunctionBuilder, Var
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.errors import RelaxError, ResourceLimitError
from relax_xdsl.frontend import onnx_sequences as seqs
from relax_xdsl.frontend.onnx_rank_choice import Chooser, RankChoice, first_choice
from relax_xdsl.limits import ENV as ALLOC_LIMIT_ENV
from relax_xdsl.limits import check_alloc, max_alloc_bytes
from relax_xdsl.ops.registry import get_spec
from relax_xdsl.shape import KEYWORDS, Dim, canon, dim_to_str, dims_differ, dims_equal, floordiv, sym

# TensorProto.DataType -> numpy dtype name (the element types relax_xdsl has)
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
               10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}
_ONNX_TYPE_NAMES = {0: "UNDEFINED", 4: "UINT16", 5: "INT16", 8: "STRING", 12: "UINT32", 13: "UINT64",
                    14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"}
FOLD_LIMIT = 1 << 20  # elements: larger results of foldable ops are computed at run time instead
# Integer initializers up to this many elements stay import-time constants even with keep_params_in_input: they are
# the shape vectors, axes and indices of shape subgraphs (`Concat(Shape(x)[:1], [-1])`), which must fold on symbolic
# dims; as run-time parameters they would leave shapes unknown. Weights are floating point or much larger.
SHAPE_CONST_LIMIT = 64


class OnnxImportError(RelaxError):
    """The ONNX model cannot be imported: names the node, op and what is missing."""


def onnx_dtype(code: int, what: str) -> str:
    if code not in ONNX_DTYPES:
        raise OnnxImportError(f"{what}: element type {_ONNX_TYPE_NAMES.get(code, code)} is not supported "
                              f"(supported: {', '.join(ONNX_DTYPES.values())})")
    return ONNX_DTYPES[code]


def identifier(name: str, fallback: str) -> str:
    """An ONNX name as a valid identifier for symbols and parameters."""
    s = re.sub(r"\W", "_", name) or fallback
    if s[0].isdigit():
        s = f"v{s}"
    return f"{s}_" if s in KEYWORDS else s


@dataclass(eq=False)
class Known:
    """A value known at import time. `array` holds numbers, or (dtype object)
    sympy dims for shape computations; `initializer` names the graph
    initializer it is (kept as a parameter with keep_params_in_input)."""

    array: np.ndarray
    dtype: str
    initializer: str | None = None

    @property
    def symbolic(self) -> bool:
        return self.array.dtype == object

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def values(self) -> list[Any]:
        """Flattened entries: ints or floats, or sympy dims."""
        if self.symbolic:
            return [canon(v) if not isinstance(v, sympy.Expr) else v for v in self.array.reshape(-1)]
        return self.array.reshape(-1).tolist()


def known_dims(values: Sequence[Dim]) -> Known:
    """A 1-d int64 Known holding dims (sympy where symbolic)."""
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = canon(v)
    return simplify_known(Known(arr, "int64"))


def simplify_known(k: Known) -> Known:
    """Object arrays whose entries are all plain integers become int64 arrays."""
    if k.symbolic and all(isinstance(v, sympy.Integer) or isinstance(v, (int, np.integer)) for v in k.array.flat):
        return Known(np.array([int(v) for v in k.array.flat], dtype=np.int64).reshape(k.shape).astype(k.dtype), k.dtype)
    return k


class Unavailable:
    """An output the converter does not produce (e.g. MaxPool's Indices):
    an error only if something uses it."""

    def __init__(self, why: str):
        self.why = why


Value = Var | Known


def node_label(name: str, index: int, op_type: str) -> str:
    """How errors name a node: `node 'name' (Concat)`, or by its position,
    `node 12 (Concat)`, when the exporter left it unnamed (most do)."""
    return f"node {name!r} ({op_type})" if name else f"node {index} ({op_type})"


@dataclass
class Node:
    """One ONNX node being converted: its inputs (resolved), attributes
    (python values), the opset, and helpers that fail with its location."""

    importer: Importer
    op_type: str
    name: str
    inputs: list[Value | None]
    attrs: dict[str, Any]
    outputs: list[str]
    opset: int
    index: int = -1

    @property
    def where(self) -> str:
        return node_label(self.name, self.index, self.op_type)

    def fail(self, msg: str) -> NoReturn:
        raise OnnxImportError(f"{self.where}: {msg}")

    def attr(self, name: str, default: Any = ...) -> Any:
        if name in self.attrs:
            return self.attrs[name]
        if default is ...:
            self.fail(f"attribute {name!r} is required")
        return default

    def optional(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def input(self, i: int, what: str = "") -> Value:
        v = self.optional(i)
        if v is None:
            self.fail(f"input {i}{f' ({what})' if what else ''} is required")
        return v

    def tensor(self, i: int, what: str = "") -> Var:
        return self.importer.tensor(self.input(i, what), self)

    def known(self, i: int, what: str) -> Known:
        v = self.input(i, what)
        if not isinstance(v, Known):
            self.fail(f"input {i} ({what}) must be known at import time (a constant, or computed from shapes), "
                      "but it is computed at run time")
        return v

    def ints(self, i: int, what: str) -> list[Any]:
        """A known integer input as a list (ints, or sympy dims)."""
        k = self.known(i, what)
        if not k.symbolic and k.array.dtype.kind not in "iub":
            self.fail(f"input {i} ({what}) must hold integers, got {k.dtype}")
        return [int(v) if isinstance(v, (int, np.integer, sympy.Integer)) else v for v in k.values()]

    def static_ints(self, i: int, what: str) -> list[int]:
        vals = self.ints(i, what)
        for v in vals:
            if not isinstance(v, int):
                self.fail(f"input {i} ({what}) must be static here, but depends on symbolic dims: "
                          f"[{', '.join(dim_to_str(canon(x)) for x in vals)}]")
        return vals

    def scalar(self, i: int, what: str) -> float | int | None:
        v = self.optional(i)
        if v is None:
            return None
        k = self.known(i, what)
        if k.symbolic or k.array.size != 1:
            self.fail(f"input {i} ({what}) must be a single known number")
        return k.array.reshape(-1)[0].item()

    def axis(self, a: int, rank: int, what: str = "axis") -> int:
        if not -rank <= a < max(rank, 1):
            self.fail(f"{what} {a} is out of range for rank {rank}")
        return a % rank if rank else 0

    def op(self, name: str, *args: Any, **params: Any) -> Value:
        return self.importer.op(self, name, *args, **params)

    def rank(self, v: Value) -> int:
        return v.ndim

    def shape(self, v: Value) -> tuple[Any, ...]:
        return tuple(v.shape)


@dataclass
class Converter:
    fn: Callable[[Node], Value | Sequence[Value | Unavailable]]
    attrs: frozenset[str]
    doc: str = ""


CONVERTERS: dict[str, Converter] = {}


def register_converter(op_type: str | Iterable[str], attrs: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: `fn(node) -> value | [values]` converts ONNX `op_type`
    (default domain). `attrs` lists the attributes it understands; any other
    attribute on a node is an import error."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        for t in [op_type] if isinstance(op_type, str) else op_type:
            CONVERTERS[t] = Converter(fn, frozenset(attrs), fn.__doc__ or "")
        return fn

    return wrap


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise RelaxError("importing ONNX needs the onnx package: pip install 'relax_xdsl[onnx]'") from None
    return onnx


def load_model(model: Any) -> Any:
    """A ModelProto from a path, bytes or a ModelProto, with clear errors for
    missing, truncated or non-ONNX files."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    if isinstance(model, onnx.ModelProto):
        what, proto = "the model", model
    elif isinstance(model, (bytes, bytearray)):
        what = "the given bytes"
        try:
            proto = onnx.load_from_string(bytes(model))
        except (DecodeError, ValueError, RuntimeError) as err:
            raise OnnxImportError(f"{what}: not a valid ONNX model ({err})") from None
    elif isinstance(model, (str, Path)):
        what = str(model)
        if not Path(model).is_file():
            raise OnnxImportError(f"{what}: no such file")
        try:
            proto = onnx.load(str(model), load_external_data=False)
        except (DecodeError, ValueError, RuntimeError, OSError) as err:
            raise OnnxImportError(f"{what}: not a valid ONNX model ({type(err).__name__}: {err})") from None
        base = Path(model).resolve().parent
        check_external_data(proto, base, what)
        try:
            onnx.external_data_helper.load_external_data_for_model(proto, str(base))
        except Exception as err:  # missing or short data files, onnx's own checks
            raise OnnxImportError(f"{what}: cannot load its external data ({type(err).__name__}: {err})") from None
    else:
        raise OnnxImportError(f"from_onnx takes a path, bytes or onnx.ModelProto, not {type(model).__name__}")
    if not proto.HasField("graph") or not proto.graph.output:
        raise OnnxImportError(f"{what}: not a valid ONNX model (no graph outputs)")
    return proto


def _tensors(graph: Any) -> Iterable[Any]:
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _tensors(a.g)
            for g in a.graphs:
                yield from _tensors(g)


def check_external_data(proto: Any, base: Path, what: str) -> None:
    """Refuse external-data locations that would read outside the model's
    directory: absolute paths, `..`, and symlinks (a model file is untrusted
    input; its weights must not become a way to read arbitrary files). Checked
    here rather than left to onnx, whose checks differ between versions."""
    onnx = _onnx()
    for t in _tensors(proto.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        why = None
        if not loc:
            why = "has no location"
        elif Path(loc).is_absolute() or Path(loc).drive:
            why = "is an absolute path"
        elif ".." in Path(loc).parts:
            why = "goes up out of the model's directory"
        else:
            path = base / loc
            steps = [base / p for p in list(reversed(Path(loc).parents))[1:]] + [path]  # each directory, the file
            if any(p.is_symlink() for p in steps):
                why = "is (or is inside) a symbolic link"
            elif not path.resolve().is_relative_to(base):
                why = "points outside the model's directory"
            elif not path.is_file():
                why = "is not a file next to the model"
        if why:
            raise OnnxImportError(f"{what}: tensor {t.name!r}: external data location {loc!r} {why}; "
                                  f"external data must be a file in {str(base)!r}")


def node_inputs(proto: Any) -> list[str]:
    """The names a node reads: its inputs, and the enclosing-scope names its
    subgraphs (If/Loop/Scan bodies) use, which ONNX does not list."""
    names = [n for n in proto.input if n]
    for a in proto.attribute:
        if a.HasField("g"):
            names += sorted(_outer_names(a.g))
    return names


def _outer_names(graph: Any) -> set[str]:
    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for proto in graph.node:
        used.update(n for n in node_inputs(proto) if n not in defined)
        defined.update(o for o in proto.output if o)
    used.update(vi.name for vi in graph.output if vi.name not in defined)
    return used


class Importer:
    """State of one import: the function being built, ONNX names -> values,
    dim_param names -> symbols, and the parameters kept as inputs."""

    def __init__(self, proto: Any, keep_params_in_input: bool, shapes: dict[str, Sequence[Dim | str]] | None,
                 name: str, sequence_lengths: dict[str, int] | None = None, absent_inputs: Iterable[str] = ()):
        self.proto = proto
        self.sequence_lengths = dict(sequence_lengths or {})
        self.absent_inputs = set(absent_inputs)
        self.layout = seqs.OutputLayout()
        self.graph = proto.graph
        self.keep_params = keep_params_in_input
        self.shapes = dict(shapes or {})
        self.fb = FunctionBuilder(name)
        self.values: dict[str, Value | Unavailable] = {}
        self.symbols: dict[str, sympy.Symbol] = {}
        self.params: dict[str, np.ndarray] = {}
        self._names: set[str] = set()
        # a Known's graph value once made (weak: a dropped Known frees its array)
        self._materialized: weakref.WeakKeyDictionary[Known, Var] = weakref.WeakKeyDictionary()
        self._held: dict[int, list[Any]] = {}  # id -> [Known, names holding it], for Knowns that nodes made
        self.held_bytes = 0  # their bytes: the folded data alive at once
        self._defined: set[str] = set()  # every name defined so far (values drops names after their last use)
        self._named: set[SSAValue] = set()
        self.chooser = Chooser(self)  # If outputs whose rank depends on a run-time condition
        self.opset = self._opset()

    # -- setup ----------------------------------------------------------------
    def _opset(self) -> int:
        for o in self.proto.opset_import:
            if o.domain in ("", "ai.onnx"):
                return int(o.version)
        if not self.proto.opset_import:
            return 1
        raise OnnxImportError("the model imports no default-domain (ai.onnx) opset")

    def _unique(self, name: str) -> str:
        base = identifier(name, "arg")
        out, i = base, 1
        while out in self._names:
            out, i = f"{base}_{i}", i + 1
        self._names.add(out)
        return out

    def _symbol(self, name: str) -> sympy.Symbol:
        if name not in self.symbols:
            self.symbols[name] = sym(identifier(name, "d"))
        return self.symbols[name]

    def _initializers(self) -> None:
        onnx = _onnx()
        from onnx import numpy_helper

        if len(self.graph.sparse_initializer):
            raise OnnxImportError(f"sparse initializer {self.graph.sparse_initializer[0].values.name!r} is not supported")
        for t in self.graph.initializer:
            dtype = onnx_dtype(t.data_type, f"initializer {t.name!r}")
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise OnnxImportError(f"initializer {t.name!r} keeps its data in an external file that was not "
                                      "loaded; import the model from its path (next to the data file)")
            if any(d < 0 for d in t.dims):
                raise OnnxImportError(f"initializer {t.name!r} has negative dims {list(t.dims)}")
            count = int(np.prod(t.dims, dtype=object)) if len(t.dims) else 1
            if t.raw_data and len(t.raw_data) != count * np.dtype(dtype).itemsize:
                raise OnnxImportError(f"initializer {t.name!r}: dims {list(t.dims)} ({dtype}) need "
                                      f"{count * np.dtype(dtype).itemsize} bytes but its data has {len(t.raw_data)}")
            try:
                array = numpy_helper.to_array(t)
            except Exception as err:
                raise OnnxImportError(f"initializer {t.name!r}: unreadable data ({err})") from None
            if array.shape != tuple(t.dims):
                raise OnnxImportError(f"initializer {t.name!r}: data does not match its dims {list(t.dims)}")
            shape_const = np.dtype(dtype).kind in "iu" and array.size <= SHAPE_CONST_LIMIT
            self.values[t.name] = Known(np.array(array, dtype=dtype, order="C"), dtype, None if shape_const else t.name)

    def _dims_of(self, vi: Any, name: str, tt: Any = None, per_item: bool = False) -> list[Dim]:
        """An input's dims (`tt`: the tensor type, when it is an optional's or
        a sequence's element). A sequence's items may differ in shape, so each
        (`per_item`, `name` x_item<i>) has its own symbols, named x_item<i>_<dim_param>."""
        if name in self.shapes:
            return [canon(d) if not isinstance(d, str) else self._symbol(d) for d in self.shapes[name]]
        tt = vi.type.tensor_type if tt is None else tt
        if not tt.HasField("shape"):
            raise OnnxImportError(f"input {name!r} has no shape in the model; give one with shapes={{{name!r}: [...]}}")
        dims: list[Dim] = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                if d.dim_value < 0:  # 0 is an empty dim, as a symbol bound to 0
                    raise OnnxImportError(f"input {name!r} dim {axis} is {d.dim_value}; dims must be >= 0")
                dims.append(int(d.dim_value))
            elif d.dim_param:
                dims.append(self._symbol(f"{name}_{d.dim_param}" if per_item else d.dim_param))
            else:  # unnamed dynamic dim: a fresh symbol
                dims.append(self._symbol(f"{name}_dim{axis}"))
        return dims

    def _inputs(self) -> None:
        inits = {t.name for t in self.graph.initializer}
        for vi in self.graph.input:
            if vi.name in inits:
                continue  # older exporters list initializers among the inputs
            self.values[vi.name] = self._input(vi)
        names = {vi.name for vi in self.graph.input}
        for what, given in (("sequence_lengths", set(self.sequence_lengths)), ("absent_inputs", self.absent_inputs)):
            if given - names:
                raise OnnxImportError(f"{what} names {sorted(given - names)}, which are not graph inputs")
        items = {seqs.item_name(n, i) for n, v in self.values.items() if n in self.sequence_lengths
                 for i in range(len(seqs.contents(v)))}  # a sequence's items, as shapes may name them
        unknown = set(self.shapes) - names - items
        if unknown:
            raise OnnxImportError(f"shapes given for {sorted(unknown)}, which are not graph inputs "
                                  f"(inputs: {[vi.name for vi in self.graph.input if vi.name not in inits]})")

    def _input(self, vi: Any, t: Any = None) -> Any:
        """Graph input `vi` (of type `t`, when an optional's element): a
        tensor parameter, a sequence of `sequence_lengths[name]` parameters
        name_item0, name_item1, ..., or an optional (absent when in absent_inputs)."""
        t = vi.type if t is None else t
        name = vi.name
        kind = t.WhichOneof("value")
        if kind == "optional_type":
            if name in self.absent_inputs:
                return seqs.OptionalValue(None)
            return seqs.OptionalValue(self._input(vi, t.optional_type.elem_type))
        if name in self.absent_inputs:
            raise OnnxImportError(f"input {name!r} is in absent_inputs, but only an optional input can be absent")
        if kind == "sequence_type":
            elem = t.sequence_type.elem_type
            if elem.WhichOneof("value") != "tensor_type":
                raise OnnxImportError(f"input {name!r}: only sequences of tensors are supported")
            if name not in self.sequence_lengths:
                raise OnnxImportError(f"input {name!r} is a sequence; give its length with "
                                      f"sequence_lengths={{{name!r}: N}} (it becomes N parameters {seqs.item_name(name, 0)}, ...)")
            count = self.sequence_lengths[name]
            if not isinstance(count, (int, np.integer)) or isinstance(count, bool):
                raise OnnxImportError(f"input {name!r}: sequence_lengths gives {count!r}, not an integer")
            seqs.check_length(int(count), f"input {name!r}")
            dtype = onnx_dtype(elem.tensor_type.elem_type, f"input {name!r}")
            items = []
            for i in range(int(count)):
                item = seqs.item_name(name, i)
                items.append(self._param(item, self._dims_of(vi, item, elem.tensor_type, per_item=True), dtype))
            return seqs.SequenceValue(items, dtype)
        if kind != "tensor_type":
            raise OnnxImportError(f"input {name!r}: only tensor, sequence and optional inputs are supported")
        if name in self.sequence_lengths:
            raise OnnxImportError(f"sequence_lengths names input {name!r}, which is not a sequence")
        dtype = onnx_dtype(t.tensor_type.elem_type, f"input {name!r}")
        return self._param(name, self._dims_of(vi, name, t.tensor_type), dtype)

    def _param(self, name: str, dims: list[Dim], dtype: str) -> Var:
        """A tensor parameter of the graph function, named after the ONNX input (or sequence item)."""
        v = self.fb.param(self._unique(name), dims, dtype)
        self._named.add(v.value)
        return v

    # -- values ---------------------------------------------------------------
    def tensor(self, v: Value, node: Node | None = None) -> Var:
        """A graph value for `v` (a Known becomes a constant, or a parameter)."""
        if isinstance(v, Var):
            return v
        if isinstance(v, RankChoice):
            v = self.chooser.resolve(v)
            if isinstance(v, RankChoice):
                return self.chooser.materialize(v, node.where if node else "a graph output")
            return self.tensor(v, node)
        if seqs.is_container(v):
            raise OnnxImportError(f"{node.where + ': ' if node else ''}{seqs.describe(v)} is used where a tensor "
                                  "is needed (sequences and optionals exist only at import time)")
        if v in self._materialized:
            return self._materialized[v]
        k = simplify_known(v)
        if k.symbolic:
            var = self._sizes_as_data(k, node)
            self._materialized[v] = var
            return var
        dtype = dtypes.dtype_name(k.dtype)
        if v.initializer is not None and self.keep_params:
            name = self._unique(v.initializer)
            var = self.fb.param(name, list(k.shape), dtype)
            self.params[name] = k.array
        else:
            var = self.fb.const(k.array, dtype)
        self._materialized[v] = var
        return var

    def _sizes_as_data(self, k: Known, node: Node | None) -> Var:
        """A value computed from symbolic dims (e.g. `Range(past + 1)`'s limit
        or a position from `Shape`) used as tensor data: its symbolic entries
        become a shape value read back as an int64 tensor (`make_shape`,
        `shape_to_tensor`), its static ones constants, joined in order."""
        values = k.values()
        if not all(isinstance(x, sympy.Expr) and x.is_integer for x in values):
            where = f"{node.where}: " if node else ""
            raise OnnxImportError(f"{where}a non-integer value computed from symbolic dims "
                                  f"([{', '.join(str(x) for x in values)}]) is used as tensor data")
        pieces: list[Var] = []
        run: list[sympy.Expr] = []
        for x in [*values, None]:
            if x is not None and (not run or run[0].is_Integer == x.is_Integer):
                run.append(x)
                continue
            if run:
                pieces.append(self.fb.const(np.array([int(d) for d in run], np.int64)) if run[0].is_Integer
                              else self.fb.shape_to_tensor(self.fb.make_shape(run)))
            run = [x] if x is not None else []
        flat = pieces[0] if len(pieces) == 1 else rop.concat(pieces, axis=0)
        if k.shape != (len(values),):
            flat = rop.reshape(flat, list(k.shape))
        dtype = dtypes.dtype_name(k.dtype)
        return flat if dtype == "int64" else rop.astype(flat, dtype)

    def op(self, node: Node, name: str, *args: Any, **params: Any) -> Value:
        """Emit graph op `name`, or fold it when every input is known."""
        foldable = all(isinstance(a, Known) and not (self.keep_params and a.initializer) for a in args)
        if args and foldable:
            known = [simplify_known(a) for a in args]
            if any(k.symbolic for k in known):
                try:
                    return _fold_symbolic(node, name, known, params)
                except _CannotFold:
                    pass  # computed at run time from the sizes, as tensor data
                known = []
        if args and foldable and known:
            spec = get_spec(name)
            types = [TensorType.of(list(k.shape), dtypes.dtype_name(k.dtype)) for k in known]
            attrs = spec.param_attrs(params)
            result_type, _ = spec.run_infer(types, spec.decode_params(attrs))
            if isinstance(result_type, TensorType) and all(d.is_Integer for d in result_type.sym_shape) and \
                    np.prod([int(d) for d in result_type.sym_shape], dtype=object) <= FOLD_LIMIT:
                shape = [int(d) for d in result_type.sym_shape]
                itemsize = np.dtype(dtypes.dtype_name(result_type.dtype)).itemsize
                check_alloc(shape, itemsize, f"node {node.name!r} ({node.op_type}): folding {name}")
                out = spec.reference(*[k.array for k in known], **spec.decode_params(attrs))
                return Known(np.asarray(out), np.asarray(out).dtype.name)
        vars_ = [self.tensor(a, node) if isinstance(a, Known) else a for a in args]
        spec = get_spec(name)
        return rop.emit(spec, vars_, **params) if spec.variadic else rop.emit(spec, *vars_, **params)

    # -- the walk -------------------------------------------------------------
    def _attrs(self, proto: Any, where: str) -> dict[str, Any]:
        onnx = _onnx()
        from onnx import numpy_helper

        out: dict[str, Any] = {}
        for a in proto.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                try:
                    out[a.name] = numpy_helper.to_array(a.t)
                except Exception as err:
                    raise OnnxImportError(f"{where}: attribute {a.name!r}: "
                                          f"unreadable tensor ({err})") from None
                continue
            if a.type == onnx.AttributeProto.GRAPH:  # a control-flow body: its converter imports it
                out[a.name] = a.g
                continue
            if a.type == onnx.AttributeProto.GRAPHS:
                raise OnnxImportError(f"{where}: attribute {a.name!r} holds a list of subgraphs, which no "
                                      "supported op takes")
            value = onnx.helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode("utf-8", "replace") for v in value]
            out[a.name] = value
        return out

    def _convert(self, index: int, proto: Any, live: bool = True) -> None:
        """Converts node `index`; a dead one (`live` False) is only checked."""
        name = proto.name
        op_type = proto.op_type
        where = node_label(name, index, op_type)
        if proto.domain not in ("", "ai.onnx"):
            raise OnnxImportError(f"{where}: domain {proto.domain!r} is not supported "
                                  "(only the default ai.onnx domain)")
        conv = CONVERTERS.get(op_type)
        if conv is None:
            raise OnnxImportError(f"{where}: op {op_type} is not supported "
                                  f"(supported: {', '.join(sorted(CONVERTERS))})")
        attrs = self._attrs(proto, where)
        for a in attrs:
            if a not in conv.attrs:
                raise OnnxImportError(f"{where}: attribute {a!r} is not supported"
                                      f"{' (supported: ' + ', '.join(sorted(conv.attrs)) + ')' if conv.attrs else ''}")
        if not live:
            for i, n in enumerate(proto.input):
                if n and n not in self._defined:
                    raise OnnxImportError(f"{where}: input {i} {n!r} is not defined (no graph "
                                          "input, initializer or earlier node output has that name)")
            self._defined.update(o for o in proto.output if o)
            return
        inputs: list[Value | None] = []
        for i, n in enumerate(proto.input):
            if n == "":
                inputs.append(None)
                continue
            if n not in self.values:
                raise OnnxImportError(f"{where}: input {i} {n!r} is not defined (no graph input, "
                                      "initializer or earlier node output has that name)")
            v = self.values[n]
            if isinstance(v, Unavailable):
                raise OnnxImportError(f"{where}: input {i} {n!r}: {v.why}")
            if seqs.is_container(v) and op_type not in seqs.CONTAINER_OPS:
                raise OnnxImportError(f"{where}: input {i} {n!r} is {seqs.describe(v)}; {op_type} takes tensors")
            inputs.append(v)
        inputs = [self.chooser.resolve(v) for v in inputs]
        if first_choice(inputs) is not None:
            results = self._apply_on_choice(conv, proto, attrs, inputs, index)
        else:
            results = self._apply(conv, proto, attrs, inputs, index)
        del inputs  # what is dropped below is freed
        for i, out_name in enumerate(proto.output):
            if not out_name:
                continue
            self._defined.add(out_name)
            if out_name not in self.last_use:
                continue  # nothing uses it: not kept
            if i < len(results):
                v = results[i]
                if isinstance(v, Known):
                    check_alloc(v.shape, v.array.itemsize, f"{where}: folded output {out_name!r}")
                self._hold(out_name, v)
                if isinstance(v, Var) and v.value not in self._named:
                    v.value.name_hint = identifier(out_name, "v")
                    self._named.add(v.value)
            else:
                self.values[out_name] = Unavailable(f"output {i} of {where} is not supported")
        limit = max_alloc_bytes()
        if self.held_bytes > limit:
            raise ResourceLimitError(f"{where}: the values folded at import time and still needed "
                                     f"hold {self.held_bytes} bytes at once, above the allocation limit of {limit} "
                                     f"bytes ({ALLOC_LIMIT_ENV})")
        for n in dict.fromkeys(node_inputs(proto)):
            if self.last_use.get(n) == index:
                self._release(n)

    def _apply(self, conv: Converter, proto: Any, attrs: dict[str, Any], inputs: list[Any], index: int) -> list[Any]:
        """conv on the node's resolved inputs: its results, errors naming the node."""
        where = node_label(proto.name, index, proto.op_type)
        self.chooser.count_node(where)
        node = Node(self, proto.op_type, proto.name, inputs, attrs, list(proto.output), self.opset, index)
        try:
            result = conv.fn(node)
        except RelaxError as err:
            if isinstance(err, OnnxImportError):
                raise
            if isinstance(err, ResourceLimitError):  # (a limit, not a model error: its type is kept)
                raise ResourceLimitError(f"{where}: {err}") from err
            raise OnnxImportError(f"{where}: {err}") from err
        return list(result) if isinstance(result, (list, tuple)) else [result]

    def _apply_on_choice(self, conv: Converter, proto: Any, attrs: dict[str, Any], inputs: list[Any],
                         index: int) -> list[Any]:
        """A node with a RankChoice input (onnx_rank_choice): converted once
        per branch of the first one's condition, inside a relax.if when the
        branches' results agree in rank."""
        first = first_choice(inputs)
        assert first is not None
        choices = [v for v in inputs if isinstance(v, RankChoice)]

        def run_side(which: bool) -> list[Any]:  # (called with first's condition assumed to be `which`)
            side = [self.chooser.resolve(v) for v in inputs]
            if first_choice(side) is not None:
                return self._apply_on_choice(conv, proto, attrs, side, index)
            return self._apply(conv, proto, attrs, side, index)

        return self.chooser.split(first.cond, first, run_side, max(v.chain for v in choices),
                                  frozenset().union(*(v.conditions | {v.key} for v in choices)),
                                  node_label(proto.name, index, proto.op_type), list(proto.output))

    def _hold(self, name: str, v: Value) -> None:
        """values[name] = v, counting a Known a node made (or one a sequence holds) in held_bytes."""
        self.values[name] = v
        for k in seqs.contents(v):
            if isinstance(k, Known) and k.initializer is None:
                entry = self._held.setdefault(id(k), [k, 0])
                if entry[1] == 0:
                    self.held_bytes += k.array.nbytes
                entry[1] += 1

    def _release(self, name: str) -> None:
        """Drops values[name] after its last use."""
        v = self.values.pop(name, None)
        for k in seqs.contents(v):
            entry = self._held.get(id(k)) if isinstance(k, Known) else None
            if entry is not None and entry[0] is k:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._held[id(k)]
                    self.held_bytes -= k.array.nbytes

    def _liveness(self) -> list[bool]:
        """Which nodes a graph output depends on, and each value's last use
        by one of them (self.last_use; graph outputs: past the last node)."""
        nodes = list(self.graph.node)
        needed = {vi.name for vi in self.graph.output}
        live = [False] * len(nodes)
        for i in range(len(nodes) - 1, -1, -1):
            if any(o in needed for o in nodes[i].output if o):
                live[i] = True
                needed.update(node_inputs(nodes[i]))
        self.last_use: dict[str, int] = {}
        for i, proto in enumerate(nodes):
            if live[i]:
                for n in node_inputs(proto):
                    self.last_use[n] = i
        for vi in self.graph.output:
            self.last_use[vi.name] = len(nodes)
        return live

    def run_subgraph(self, graph: Any, args: Sequence[Value], node: Node) -> list[Value]:
        """Imports a control-flow body into the block being built: its inputs
        take `args`, its nodes see the enclosing graph's values (ONNX's outer
        scope), and its outputs are returned. The enclosing graph's state is
        restored afterwards, so nothing defined inside leaks out."""
        if len(graph.input) != len(args):
            node.fail(f"its body {graph.name!r} takes {len(graph.input)} inputs, {len(args)} given")
        saved = (self.graph, dict(self.values), self.last_use, set(self._defined), self._materialized)
        self._materialized = weakref.WeakKeyDictionary()  # a value made inside stays inside
        try:
            self.graph = graph
            outer_use = {n: 1 << 62 for n in self.values}  # the enclosing graph's values outlive the body
            for vi, v in zip(graph.input, args):
                self.values[vi.name] = v
            self._initializers()
            self._defined.update(self.values)
            live = self._liveness()
            self.last_use = {**outer_use, **self.last_use}
            for i, proto in enumerate(graph.node):
                self._convert(i, proto, live[i])
            outs: list[Value] = []
            for vi in graph.output:
                v = self.values.get(vi.name)
                if v is None or isinstance(v, Unavailable):
                    node.fail(f"body output {vi.name!r} is not produced"
                              f"{': ' + v.why if isinstance(v, Unavailable) else ''}")
                outs.append(v)
            for name in [n for n in self.values if n not in saved[1]]:
                if name not in {vi.name for vi in graph.output}:
                    self._release(name)
            return outs
        finally:
            self.graph, self.values, self.last_use, self._defined, self._materialized = saved

    def run(self) -> tuple[ModuleOp, dict[str, np.ndarray]]:
        with self.fb:
            self._initializers()
            self._inputs()
            self._defined.update(self.values)
            live = self._liveness()
            for n in [n for n, v in self.values.items() if isinstance(v, Known) and n not in self.last_use]:
                del self.values[n]  # an unused initializer: its copy freed now
            for i, proto in enumerate(self.graph.node):
                self._convert(i, proto, live[i])
            outs = []
            for vi in self.graph.output:
                v = self.values.get(vi.name)
                if v is None:
                    raise OnnxImportError(f"graph output {vi.name!r} is not produced by any node or input")
                if isinstance(v, Unavailable):
                    raise OnnxImportError(f"graph output {vi.name!r}: {v.why}")
                slot, values = seqs.flatten_output(vi.name, v)
                self.layout.slots.append(slot)
                outs += [self.tensor(x) for x in values]
            if not outs:  # every output an empty sequence or an absent optional
                self.layout.placeholder = True
                outs.append(self.fb.const(np.array(False)))
            self.fb.ret(*outs)
        return self.fb.module, self.params


def from_onnx(model: Any, *, keep_params_in_input: bool = False, shapes: dict[str, Sequence[Dim | str]] | None = None,
              name: str = "main", sequence_lengths: dict[str, int] | None = None,
              absent_inputs: Iterable[str] = ()) -> Any:
    """An ONNX model (path, bytes or onnx.ModelProto) as a module with one
    graph function `name`.

    Dynamic dims become symbols (`dim_param` names; unnamed ones
    `<input>_dim<axis>`); `shapes` overrides input shapes (ints or symbol
    names). Initializers become constants, or, with keep_params_in_input,
    trailing function parameters: then `(module, params)` is returned,
    params mapping each added parameter's name to its array, in order.

    A sequence input x needs its length, `sequence_lengths={"x": N}`: it
    becomes N parameters x_item0 .. x_item{N-1} (`shapes` may name them). An
    optional input is present unless named in `absent_inputs`. A sequence
    output becomes one result per item, an absent optional none;
    `onnx_sequences.output_layout(module)` regroups them
    (relax_xdsl.frontend.onnx_backend does it for you)."""
    from relax_xdsl.frontend import (  # noqa: F401  (each module registers its family's converters)
        onnx_ops,
        onnx_ops_bitcast,
        onnx_ops_control_flow,
        onnx_ops_data_dependent,
        onnx_ops_indexing,
        onnx_ops_layout,
        onnx_ops_math,
        onnx_ops_misc,
        onnx_ops_nn,
        onnx_ops_nn2,
        onnx_ops_recurrent_state,
        onnx_ops_rest,
        onnx_ops_rnnq,
        onnx_ops_roi,
        onnx_ops_sequence,
        onnx_ops_tfidf,
    )

    proto = load_model(model)
    importer = Importer(proto, keep_params_in_input, shapes, name, sequence_lengths, absent_inputs)
    module, params = importer.run()
    seqs.record_layout(module, importer.layout)
    return (module, params) if keep_params_in_input else module


# -- folding on symbolic dims -------------------------------------------------------------------------------------


class _CannotFold(Exception):  # noqa: N818
    """A computation on symbolic dims that import time cannot decide or
    express (a comparison that depends on the sizes, a float conversion):
    the importer computes it at run time instead."""


def _sym_compare(fn: Callable[[Any, Any], bool | None]) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        r = fn(canon(a), canon(b))
        if r is None:
            raise _CannotFold
        return r

    return cmp


def _eq(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    return True if dims_equal(a, b) else False if dims_differ(a, b) else None


def _lt(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    r = sympy.Lt(a, b)
    return bool(r) if r in (sympy.true, sympy.false) else None


_SYMBOLIC_FOLDS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: canon(a + b),
    "subtract": lambda a, b: canon(a - b),
    "multiply": lambda a, b: canon(a * b),
    "divide": lambda a, b: floordiv(a, b),
    "maximum": lambda a, b: canon(sympy.Max(a, b)),
    "minimum": lambda a, b: canon(sympy.Min(a, b)),
    "negative": lambda a: canon(-a),
    "abs": lambda a: canon(sympy.Abs(a)),
    "equal": _sym_compare(_eq),
    "not_equal": _sym_compare(lambda a, b: None if _eq(a, b) is None else not _eq(a, b)),
    "less": _sym_compare(_lt),
    "greater": _sym_compare(lambda a, b: _lt(b, a)),
    "less_equal": _sym_compare(lambda a, b: None if _lt(b, a) is None else not _lt(b, a)),
    "greater_equal": _sym_compare(lambda a, b: None if _lt(a, b) is None else not _lt(a, b)),
    "where": lambda c, a, b: a if bool(c) else b,
}


def _fold_symbolic(node: Node, name: str, args: list[Known], params: dict[str, Any]) -> Known:
    """Elementwise shape arithmetic on dims (`Shape(x)[0] * 4`, `Equal`, `Where`)."""
    if name == "astype":
        target = params["dtype"]
        if target == "bool" or dtypes.is_float(target):
            raise _CannotFold
        return Known(args[0].array, target)
    fn = _SYMBOLIC_FOLDS.get(name)
    if fn is None or name != "where" and any(not k.symbolic and k.array.dtype.kind == "f" for k in args):
        raise _CannotFold
    if name == "divide":
        for k in args[1:]:
            for v in k.values():
                if canon(v) == 0:
                    node.fail("division by zero in a shape computation")
    arrays = [np.asarray(k.array, dtype=object) for k in args]
    out = np.frompyfunc(fn, len(arrays), 1)(*arrays)
    out = np.asarray(out, dtype=object)
    dtype = "bool" if name in ("equal", "not_equal", "less", "greater", "less_equal", "greater_equal") else \
        next((k.dtype for k in args[1:] if k.symbolic), args[-1].dtype) if name == "where" else args[0].dtype
    if dtype == "bool":
        return Known(out.astype(bool), "bool")
    return simplify_known(Known(out, dtype))
