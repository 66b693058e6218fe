"""`offload{lib=blas}`: graph ops -> library calls, by pattern.

A pattern is data: the graph op it matches (optionally followed by a chain
of ops, each the single user of the one before: `matmul, add, relu`), a
function of the matched ops giving the `lib.func` to call or None, and the
call replaces the chain (its operands: the first op's, then each later
op's other operand). `register_offload_pattern` adds patterns from user
code; longer chains are tried first. This file registers BLAS for float32
matmuls of the rank patterns in relax_xdsl/blas.py (a matmul whose right
operand is a transpose of the last two axes reads the untransposed tensor
with BLAS's transpose flag: attention's q @ K^T), dense layers (matmul
by a matrix + a bias row, optionally + relu or gelu) as one GEMM call with the
bias as its C operand, and float32 conv2d, likewise with a per-channel
bias [+ relu | relu6 (a clip to [0, 6])]: to oneDNN (relax_xdsl/dnnl.py) when it is installed, for
every kind (groups, depthwise, dilation) except small layers and
pointwise (1x1) layers that BLAS also takes (_dnnl_prefers), else to BLAS
for groups 1, dilation 1. A channels-last conv on oneDNN also takes a
residual add and relu after its bias (_conv2d_bias_residual), and a dense
layer on oneDNN or packed weights one after its bias (_dense_variant).
A dense layer whose matrix is a model constant goes to BLAS's packed dense
kernels, its weights packed here, once (_packed_dense), or to oneDNN's
matmul on AVX-512 (_dense_route); a batched product of computed operands of
rank 3 or 4 to oneDNN's matmul when it is installed (_dnnl_matmul). See
GEMM_ROUTES.
Ops no pattern matches stay as they are (and are legalized to generated
code later).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache

from relax_xdsl.dialects.lib import LibCallOp, LibFuncOp
from relax_xdsl.dialects.relax import ConstantOp, FunctionOp, GraphOp, TensorType
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.traits import SymbolTable

from relax_xdsl.errors import RelaxError
from relax_xdsl.ops.registry import types_match
from relax_xdsl.shape import dims_equal


@dataclass(frozen=True)
class OffloadPattern:
    op: str
    """The graph op name (relax.<op>)."""
    function: Callable[..., LibFuncOp | None]
    """The library function for the matched op(s) (`function(op)`, or
    `function([op, *chain_ops])` for a chain), or None when they do not match."""
    chain: tuple[str, ...] = ()
    """Ops that must follow, each the single user of the previous one."""
    operands: Callable[[list[GraphOp]], list[SSAValue]] | None = None
    """The call's operands, when they are not the matched ops' own (the
    first op's, then each later op's other operand): a pattern that reads
    through a producer (a transpose taken as a BLAS flag) names what it
    reads. A producer left without users is erased."""


OFFLOAD_PATTERNS: dict[str, list[OffloadPattern]] = {}


def register_offload_pattern(library: str, pattern: OffloadPattern) -> None:
    """Adds a pattern to `offload{lib=<library>}` (tried in registration order)."""
    OFFLOAD_PATTERNS.setdefault(library, []).append(pattern)


def _swapped_last_axes(v: SSAValue) -> GraphOp | None:
    """The permute_dims producing `v` when it swaps only the last two axes."""
    op = v.owner
    if not isinstance(op, GraphOp) or op.SPEC.name != "permute_dims":
        return None
    from relax_xdsl.passes.simplify_layout import permutation, swaps_last_two

    return op if swaps_last_two(permutation(op)) else None


def _blas_matmul_transposed(op: GraphOp) -> LibFuncOp | None:
    """matmul(x, permute_dims(y) swapping y's last two axes) as one GEMM
    reading y in place with BLAS's transpose flag (q @ K^T in attention)."""
    from relax_xdsl.blas import MATMUL_T_RANKS, matmul_function

    if _swapped_last_axes(op.inputs[1]) is None or _blas_matmul(op) is None:
        return None
    ranks = (op.inputs[0].type.ndim, op.inputs[1].type.ndim)  # type: ignore[union-attr]
    if ranks not in MATMUL_T_RANKS:
        return None
    return _dnnl_matmul(op, True) or matmul_function(*ranks, transposed_b=True)


def _transposed_operands(ops: list[GraphOp]) -> list[SSAValue]:
    permute = _swapped_last_axes(ops[0].inputs[1])
    assert permute is not None  # (matched by _blas_matmul_transposed)
    return [ops[0].inputs[0], permute.inputs[0]]


def _blas_matmul(op: GraphOp) -> LibFuncOp | None:
    from relax_xdsl.blas import MATMUL_RANKS, matmul_function

    a, b = (v.type for v in op.inputs)
    out = op.res.type
    if not all(isinstance(t, TensorType) and t.dtype == "float32" for t in (a, b, out)):
        return None
    ranks = (a.ndim, b.ndim)  # type: ignore[union-attr]
    if ranks not in MATMUL_RANKS:
        return None
    if a.ndim == b.ndim and not all(dims_equal(x, y) for x, y in zip(a.sym_shape[:-2], b.sym_shape[:-2])):  # type: ignore[union-attr]
        return None  # broadcast batch dims: left to generated code
    return matmul_function(*ranks)


CONV_ROUTES = ("auto", "blas", "dnnl")
"""Where `offload{lib=blas conv=...}` sends a float32 conv2d: `auto` (the
rule in _conv_route), `blas` (im2col + GEMM only: groups 1, dilation 1, the
rest left to generated code) or `dnnl` (oneDNN for every conv2d)."""

_conv_route_choice: ContextVar[str] = ContextVar("conv_route", default="auto")

GEMM_ROUTES = ("auto", "blas", "dnnl", "packed")
"""Where `offload{lib=blas gemm=...}` sends a float32 dense layer (a matmul
by a constant matrix, with its bias and activation) and a batched matmul of
computed operands (ranks 3x3 and 4x4: attention's).
- `packed`: a dense layer to BLAS's packed dense kernels (its weights packed
  once, here: blas.pack_dense_weights); batched matmuls as `auto`.
- `dnnl`: both to oneDNN when it is installed (relax_xdsl/dnnl.py), else BLAS.
- `auto`: batched matmuls to oneDNN when installed; a dense layer to oneDNN
  when installed and this machine has AVX-512 (its brgemm kernels keep the
  weights packed), else packed (_dense_route).
- `blas`: both to BLAS's GEMM.
Other matmuls (a 2-d product of computed operands, broadcast batches) stay
on BLAS."""

_gemm_route_choice: ContextVar[str] = ContextVar("gemm_route", default="auto")


DNNL_MIN_MACS = 4_000_000
"""Multiply-adds per image from which `auto` sends a conv2d that both
libraries take (groups 1, dilation 1) to oneDNN."""


def _dnnl_prefers(op: GraphOp, p: dict) -> bool:
    """The `auto` rule for a conv2d that both libraries take: BLAS for a
    pointwise conv (1x1, stride 1, no padding: a GEMM on the image in
    place, no im2col), else oneDNN from
    DNNL_MIN_MACS multiply-adds per image (o * oh * ow * c * kh * kw, a
    symbolic dim counted as 1, so only layers known to be large), BLAS's
    im2col + GEMM below. oneDNN's blocked kernels are several times faster
    on large layers (3x3 and 1x1 ResNet layers, a 7x7 RGB stem), but each
    call reorders its input and output (and weights that are no constant)
    and starts several parallel regions, which costs more than a small
    layer's whole GEMM (benchmarks/conv_layers.py measures both). `p`: the
    conv's decoded params."""
    w, out = op.inputs[1].type, op.res.type
    if tuple(w.sym_shape[2:]) == (1, 1) and all(s == 1 for s in p["strides"]) and not any(p["padding"]):  # type: ignore[union-attr]
        return False  # pointwise: BLAS's GEMM reads the NCHW image in place, oneDNN would reorder it both ways
    macs = 1
    for d in (*w.sym_shape, *out.sym_shape[2:]):  # type: ignore[union-attr]  # o, c / groups, kh, kw, oh, ow
        macs *= int(d) if isinstance(d, int) or getattr(d, "is_Integer", False) else 1
    return macs >= DNNL_MIN_MACS


def divisible_channels(x: TensorType, w: TensorType, groups: int, layout: str) -> bool:
    """Whether a grouped conv's channel counts are static and fit its groups
    (c = groups * w's in-channels, o a multiple of groups): the library
    call's buffer types cannot state those relations, so only such convs
    are offloaded."""
    c, ci, o = x.sym_shape[1 if layout == "NCHW" else 3], w.sym_shape[1], w.sym_shape[0]
    if not all(getattr(d, "is_Integer", False) for d in (c, ci, o)):
        return False
    return int(c) == groups * int(ci) and int(o) % groups == 0


def _conv_route(op: GraphOp) -> tuple[str, dict] | None:
    """("blas" | "dnnl", decoded params) for a float32 conv2d with OIHW
    weights, or None when no library takes it (it is then legalized to
    generated code). NHWC data goes to oneDNN only (convert-layout makes it
    for oneDNN)."""
    from relax_xdsl import dnnl

    x, w = (v.type for v in op.inputs)
    if not all(isinstance(t, TensorType) and t.dtype == "float32" for t in (x, w, op.res.type)):
        return None
    p = op.SPEC.decode_params(dict(op.attributes))
    if p["out_dtype"] not in (None, "float32") or p["kernel_layout"] != "OIHW":
        return None
    nchw = p["data_layout"] == "NCHW"
    blas_takes = nchw and p["groups"] == 1 and tuple(p["dilation"]) in ((1,), (1, 1))
    if p["groups"] != 1 and not divisible_channels(x, w, p["groups"], p["data_layout"]):  # type: ignore[arg-type]
        return None  # generated code, whose legalization checks `o mod groups` when it runs
    choice = _conv_route_choice.get()
    if choice != "blas" and dnnl.available():
        if choice == "dnnl" or not blas_takes or not nchw or _dnnl_prefers(op, p):
            return "dnnl", p
    return ("blas", p) if blas_takes else None


def _blas_conv2d(op: GraphOp, variant: str = "") -> LibFuncOp | None:
    from relax_xdsl import blas, dnnl
    from relax_xdsl.conv_library import activation_code
    from relax_xdsl.ops.nn import _padding
    from relax_xdsl.ops.registry import Infer

    route = _conv_route(op)
    if route is None:
        return None
    lib, p = route
    strides = tuple(p["strides"]) * (2 // len(p["strides"]))
    padding = _padding(Infer("conv2d"), p["padding"])
    if lib == "dnnl":
        dilation = tuple(p["dilation"]) * (2 // len(p["dilation"]))
        # constant weights (a relax.constant, reaching C as a module global) are reordered once, not every call
        constant = isinstance(op.inputs[1].owner, ConstantOp)
        # data made by a constant-weight conv + relu6 call (offloaded before: calls are made in program order)
        producer = op.inputs[0].owner
        after6 = (constant and activation_code(variant) != 0 and isinstance(producer, LibCallOp)
                  and dnnl.bounds_by_six(producer.callee.string_value()))
        return dnnl.conv2d_function(strides, padding, dilation, p["groups"], variant,  # type: ignore[arg-type]
                                    constant_weights=constant, layout=p["data_layout"], after6=after6)
    return blas.conv2d_function(strides, padding, variant)  # type: ignore[arg-type]


def _bias(producer: GraphOp, add: GraphOp) -> TensorType | None:
    """The type of the add's other operand, a float32 tensor, when the add
    keeps the producer's type (adding it to itself does not count)."""
    others = [v for v in add.inputs if v is not producer.res]
    if len(others) != 1 or not types_match(add.res.type, producer.res.type):
        return None
    bias = others[0].type
    return bias if isinstance(bias, TensorType) and bias.dtype == "float32" else None


def _is_relu6(op: GraphOp) -> bool:
    """A clip to exactly [0, 6] (MobileNet's ReLU6)."""
    from relax_xdsl.conv_library import RELU6_BOUNDS

    p = op.SPEC.decode_params(dict(op.attributes))
    return (float(p["min"]), float(p["max"])) == RELU6_BOUNDS


def _blas_conv2d_bias(ops: list[GraphOp]) -> LibFuncOp | None:
    """conv2d + a per-channel bias ((o, 1, 1) or (1, o, 1, 1); NHWC: (1, 1, o) or (1, 1, 1, o)) [+ relu | relu6]."""
    conv, add = ops[0], ops[1]
    act = ""
    if len(ops) == 3:
        if ops[2].SPEC.name == "clip" and not _is_relu6(ops[2]):
            return None
        act = "_relu6" if ops[2].SPEC.name == "clip" else "_relu"
    bias = _conv_bias_variant(conv, add)
    return None if bias is None else _blas_conv2d(conv, bias + act)


def _conv_bias_variant(conv: GraphOp, add: GraphOp) -> str | None:
    """"_bias3" or "_bias4" when the add's other operand is a per-channel bias of the conv's result."""
    bias = _bias(conv, add)
    if bias is None or bias.ndim not in (3, 4):
        return None
    nhwc = conv.SPEC.decode_params(dict(conv.attributes))["data_layout"] == "NHWC"
    o = conv.res.type.sym_shape[3 if nhwc else 1]  # type: ignore[union-attr]
    want = [1] * (bias.ndim - 3) + ([1, 1, o] if nhwc else [o, 1, 1])
    return f"_bias{bias.ndim}" if all(dims_equal(d, e) for d, e in zip(bias.sym_shape, want)) else None


def _conv2d_bias_residual(ops: list[GraphOp]) -> LibFuncOp | None:
    """conv2d + a per-channel bias + a residual of the result's type + relu
    (ResNet's shortcut) on oneDNN, channels last (the layout convert-layout
    gives the convs it sends there; oneDNN reads the residual in its binary
    post-op as its destination is laid out). See RESIDUAL_VARIANTS for why
    not without the relu."""
    conv, add, residual_add = ops[:3]
    if conv.SPEC.decode_params(dict(conv.attributes))["data_layout"] != "NHWC":
        return None
    residual = _bias(add, residual_add)
    if residual is None or not types_match(residual, add.res.type):
        return None
    route, bias = _conv_route(conv), _conv_bias_variant(conv, add)
    if route is None or route[0] != "dnnl" or bias is None:
        return None
    return _blas_conv2d(conv, f"{bias}_add_relu")


def _dense_route(mm: GraphOp) -> str | None:
    """"packed" or "dnnl" for matmul(x, W) when W is a model constant matrix
    and x of a rank both take, else None (BLAS's GEMM then). The route is
    GEMM_ROUTES's choice. Under `auto`, oneDNN gets the layer only where
    its matmul keeps W packed: its brgemm kernels, on AVX-512. Elsewhere
    (AVX2) oneDNN 3.2's f32 matmul is its own SGEMM on W as it is
    (`gemm:jit`, weights `ab` in its verbose log), which packs W on every
    call, as OpenBLAS's does; the packed kernels read W packed once, here.
    The machine compiling decides, as for `-march=native`."""
    from relax_xdsl import blas, dnnl

    w = mm.inputs[1]
    choice = _gemm_route_choice.get()
    if choice == "blas" or not isinstance(w.owner, ConstantOp) or w.type.ndim != 2:  # type: ignore[union-attr]
        return None
    if _blas_matmul(mm) is None:
        return None
    rank = mm.inputs[0].type.ndim  # type: ignore[union-attr]
    dnnl_takes = dnnl.available() and rank in dnnl.DENSE_RANKS
    if choice == "dnnl":
        return "dnnl" if dnnl_takes else None
    if choice == "auto" and dnnl_takes and auto_dense_library() == "dnnl":
        return "dnnl"
    return "packed" if rank in blas.PACKED_DENSE_RANKS else None


@cache
def auto_dense_library() -> str:
    """Where `gemm=auto` sends a dense layer on this machine: "dnnl" (oneDNN
    installed, AVX-512) or "packed" (see _dense_route). Asked once per
    process (/proc/cpuinfo is long on a many-core machine)."""
    from relax_xdsl import dnnl
    from relax_xdsl.backend.toolchain import machine_cpu_features

    return "dnnl" if dnnl.available() and "avx512f" in (machine_cpu_features() or ()) else "packed"


def _dense_variant(ops: list[GraphOp]) -> str | None:
    """The dense epilogue of a matched chain (matmul [, add [, relu | gelu |
    add]]): "", "_bias", "_bias_relu", "_bias_gelu" or "_bias_add" (a
    residual of the result's type); None when the add's other operand is no
    bias row of W's columns, or the second add's no such residual."""
    if len(ops) == 1:
        return ""
    bias = _bias(ops[0], ops[1])
    n = ops[0].inputs[1].type.sym_shape[1]  # type: ignore[union-attr]
    if bias is None or bias.ndim != 1 or not dims_equal(bias.sym_shape[0], n):
        return None
    if len(ops) == 3 and ops[2].SPEC.name == "add":
        residual = _bias(ops[1], ops[2])
        if residual is None or not types_match(residual, ops[1].res.type) or _feeds_a_norm(ops[2]):
            return None
        return "_bias_add"
    return "_bias" + (f"_{ops[2].SPEC.name}" if len(ops) == 3 else "")


NORMS_THAT_READ_THEIR_ADD = ("layer_norm", "rms_norm")
"""Ops whose fused kernel takes an add before them into its own pass over the
rows (fuse-ops): a post-norm transformer's residual add (BERT's) is left to
them, not taken into the dense call before it: on BERT, oneDNN's binary
post-op there measured slower than the add read by the LayerNorm."""


def _feeds_a_norm(add: GraphOp) -> bool:
    """Whether `add`'s only user is one of NORMS_THAT_READ_THEIR_ADD."""
    uses = list(add.res.uses)
    return (len(uses) == 1 and isinstance(user := uses[0].operation, GraphOp)
            and user.SPEC.name in NORMS_THAT_READ_THEIR_ADD)


def _packed_dense(ops: list[GraphOp]) -> LibFuncOp | None:
    """matmul(x, W) [+ bias [+ relu | gelu | + a residual]] on the `packed` route (_dense_route)."""
    from relax_xdsl.blas import packed_dense_function

    variant = _dense_variant(ops)
    if variant is None or _dense_route(ops[0]) != "packed":
        return None
    return packed_dense_function(ops[0].inputs[0].type.ndim, variant)  # type: ignore[union-attr]


_packed_constants: ContextVar[dict[SSAValue, SSAValue]] = ContextVar("packed_constants")


def _packed_operands(ops: list[GraphOp]) -> list[SSAValue]:
    """chain_operands with W packed (a new constant after W's, made once per
    W and pass). A splat W (one value, stored once) is its own packing: it
    is read as it is, not expanded."""
    from relax_xdsl.dialects.relax import stored_elements

    from relax_xdsl.blas import pack_dense_weights

    w = ops[0].inputs[1]
    made = _packed_constants.get()
    owner = w.owner
    assert isinstance(owner, ConstantOp)  # (checked by _dense_route)
    if w not in made and stored_elements(owner.value).size == 1:
        made[w] = w
    if w not in made:
        packed = ConstantOp.from_array(pack_dense_weights(owner.to_array()))
        packed.result.name_hint = f"{w.name_hint}_packed" if w.name_hint else "packed"
        Rewriter.insert_op(packed, InsertPoint.after(owner))
        made[w] = packed.result
    x, _, *bias = chain_operands(ops)
    return [x, made[w], *bias]


def _dnnl_dense(mm: GraphOp, variant: str) -> LibFuncOp | None:
    """oneDNN's dense function for matmul(x, W) [+ bias] [+ relu | gelu] on
    the `dnnl` route (_dense_route). oneDNN reorders a constant W once into
    the layout its matmul kernel picks."""
    from relax_xdsl import dnnl

    if _dense_route(mm) != "dnnl":
        return None
    return dnnl.dense_function(mm.inputs[0].type.ndim, variant)  # type: ignore[union-attr]


def _blas_dense(ops: list[GraphOp]) -> LibFuncOp | None:
    """matmul(x, W) + bias [+ relu | gelu | + a residual (oneDNN only)]: W a
    matrix, bias a row of W's columns."""
    from relax_xdsl.blas import dense_function

    mm = ops[0]
    if _blas_matmul(mm) is None or mm.inputs[1].type.ndim != 2:  # type: ignore[union-attr]
        return None
    variant = _dense_variant(ops)
    if variant is None:
        return None
    if (lib := _dnnl_dense(mm, variant)) is not None or variant == "_bias_add":
        return lib
    return dense_function(mm.inputs[0].type.ndim, variant.removeprefix("_bias").removeprefix("_"))  # type: ignore[union-attr]


def _dnnl_matmul(op: GraphOp, transposed_b: bool) -> LibFuncOp | None:
    """oneDNN's batched matmul for a product of two computed operands of
    rank 3 or 4 (BLAS's loop of one GEMM per batch entry parallelizes over
    the batch, and oneDNN's kernel is faster on attention's small heads)."""
    from relax_xdsl import dnnl

    ranks = (op.inputs[0].type.ndim, op.inputs[1].type.ndim)  # type: ignore[union-attr]
    if _gemm_route_choice.get() == "blas" or not dnnl.available() or ranks not in dnnl.MATMUL_RANKS:
        return None
    return dnnl.matmul_function(ranks[0], transposed_b)


def _dense_or_matmul(op: GraphOp) -> LibFuncOp | None:
    """matmul(x, W): oneDNN's dense function when W is a model constant, its
    batched matmul for attention's ranks, else BLAS's matmul."""
    if _blas_matmul(op) is None:
        return None
    return _dnnl_dense(op, "") or _dnnl_matmul(op, False) or _blas_matmul(op)


def attention_function(op: GraphOp) -> LibFuncOp | None:
    """relax.attention on float32 query, key and value of rank 3 or 4 (the
    heads among the batch dims) as one rx_blas_attention call, which keeps
    each block of query rows' scores in cache instead of materialising the
    score matrix; None when it does not take the op (then it is legalized).
    It takes a bias whose every dim is 1 or the scores' (so its broadcast
    is known when compiling) and a known scale (given, or 1/sqrt(d) of a
    static head size d). recognize-attention fuses only what this takes."""
    from relax_xdsl import blas
    from relax_xdsl.ops.attention import default_scale

    types = [v.type for v in (*op.inputs, op.res)]
    if not all(isinstance(t, TensorType) and t.dtype == "float32" for t in types):
        return None
    q, k, v, bias, _ = types
    if q.ndim not in blas.ATTENTION_RANKS:  # type: ignore[union-attr]
        return None
    qs, ks, vs = q.sym_shape, k.sym_shape, v.sym_shape  # type: ignore[union-attr]
    if not all(dims_equal(a, b) and dims_equal(a, c) for a, b, c in zip(qs[:-2], ks[:-2], vs[:-2])):
        return None
    scores = [*qs[:-1], ks[-2]]
    if not all(d == 1 or dims_equal(d, e) for d, e in zip(reversed(bias.sym_shape), reversed(scores))):  # type: ignore[union-attr]
        return None
    p = op.SPEC.decode_params(dict(op.attributes))
    scale = p["scale"]
    if scale is None:
        if not getattr(qs[-1], "is_Integer", False):
            return None
        scale = default_scale(int(qs[-1]), "float32")
    return blas.attention_function(q.ndim, bias.ndim, scale, p["zero_nan"])  # type: ignore[union-attr]


for _chain_ops in (("add", "add"), ("add", "relu"), ("add", "gelu"), ("add",)):
    register_offload_pattern("blas", OffloadPattern("matmul", _packed_dense, _chain_ops, operands=_packed_operands))
register_offload_pattern("blas", OffloadPattern("matmul", lambda op: _packed_dense([op]), operands=_packed_operands))
register_offload_pattern("blas", OffloadPattern("matmul", _blas_dense, ("add", "add")))
register_offload_pattern("blas", OffloadPattern("matmul", _blas_dense, ("add", "relu")))
register_offload_pattern("blas", OffloadPattern("matmul", _blas_dense, ("add", "gelu")))
register_offload_pattern("blas", OffloadPattern("matmul", _blas_dense, ("add",)))
register_offload_pattern("blas", OffloadPattern("matmul", _blas_matmul_transposed, operands=_transposed_operands))
register_offload_pattern("blas", OffloadPattern("matmul", _dense_or_matmul))
register_offload_pattern("blas", OffloadPattern("conv2d", _conv2d_bias_residual, ("add", "add", "relu")))
register_offload_pattern("blas", OffloadPattern("conv2d", _blas_conv2d_bias, ("add", "relu")))
register_offload_pattern("blas", OffloadPattern("conv2d", _blas_conv2d_bias, ("add", "clip")))
register_offload_pattern("blas", OffloadPattern("conv2d", _blas_conv2d_bias, ("add",)))
register_offload_pattern("blas", OffloadPattern("conv2d", _blas_conv2d))
register_offload_pattern("blas", OffloadPattern("attention", attention_function))


def offload_module(module: ModuleOp, library: str = "blas", conv: str = "auto", gemm: str = "auto") -> ModuleOp:
    """`conv`: where conv2d goes (CONV_ROUTES); `gemm`: where dense layers
    and batched matmuls go (GEMM_ROUTES)."""
    patterns = OFFLOAD_PATTERNS.get(library)
    if patterns is None:
        raise RelaxError(f"offload: no patterns for library {library!r}; known: {', '.join(OFFLOAD_PATTERNS)}")
    if conv not in CONV_ROUTES:
        raise RelaxError(f"offload: conv={conv!r} is no conv2d route; choose one of {', '.join(CONV_ROUTES)}")
    if gemm not in GEMM_ROUTES:
        raise RelaxError(f"offload: gemm={gemm!r} is no GEMM route; choose one of {', '.join(GEMM_ROUTES)}")
    token = _conv_route_choice.set(conv)
    gemm_token = _gemm_route_choice.set(gemm)
    packed_token = _packed_constants.set({})
    try:
        return _offload(module, patterns)
    finally:
        _packed_constants.reset(packed_token)
        _gemm_route_choice.reset(gemm_token)
        _conv_route_choice.reset(token)


def _offload(module: ModuleOp, patterns: list[OffloadPattern]) -> ModuleOp:
    table = SymbolTable
    ordered = sorted(patterns, key=lambda p: -len(p.chain))  # stable: registration order within a length
    for func in [op for op in module.body.ops if isinstance(op, FunctionOp)]:
        for op in list(func.walk()):
            if not isinstance(op, GraphOp) or op.parent is None:
                continue  # (already replaced as part of a chain)
            for pattern in ordered:
                if pattern.op != op.SPEC.name:
                    continue
                ops = _chain(op, pattern.chain)
                if ops is None:
                    continue
                lib = pattern.function(ops) if pattern.chain else pattern.function(op)
                if lib is None:
                    continue
                name = lib.sym_name.data
                if table.lookup_symbol(module, name) is None:
                    module.body.block.add_op(lib)
                read = list(op.inputs)
                operands = pattern.operands(ops) if pattern.operands is not None else chain_operands(ops)
                call = LibCallOp(name, operands, [ops[-1].res.type])
                Rewriter.insert_op(call, InsertPoint.before(ops[-1]))
                ops[-1].res.replace_all_uses_with(call.results[0])
                for o in reversed(ops):
                    Rewriter.erase_op(o)
                for v in read:  # producers read through, now unused
                    if isinstance(v.owner, GraphOp) and v.owner.parent is not None and not v.uses:
                        Rewriter.erase_op(v.owner)
                break
    return module


def chain_operands(ops: list[GraphOp]) -> list[SSAValue]:
    """A matched chain's call operands by default: the first op's, then each later op's other operand."""
    operands = list(ops[0].inputs)
    for prev, nxt in zip(ops, ops[1:]):
        operands += [v for v in nxt.inputs if v is not prev.res]
    return operands


def _chain(op: GraphOp, names: tuple[str, ...]) -> list[GraphOp] | None:
    """`op` and the ops named `names` after it, each the single user of the previous."""
    ops = [op]
    for name in names:
        uses = list(ops[-1].res.uses)
        if len(uses) != 1:
            return None
        user = uses[0].operation
        if not isinstance(user, GraphOp) or user.SPEC.name != name or user.parent is not op.parent:
            return None
        ops.append(user)
    return ops


@dataclass(frozen=True)
class OffloadPass(ModulePass):
    """offload{lib=blas}: matching graph ops become library calls;
    `conv=blas|dnnl` forces where conv2d goes, `gemm=blas|dnnl|packed`
    where dense layers and batched matmuls go (GEMM_ROUTES; both default
    `auto`)."""

    name = "offload"
    lib: str = "blas"
    conv: str = "auto"
    gemm: str = "auto"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        offload_module(op, self.lib, self.conv, self.gemm)
