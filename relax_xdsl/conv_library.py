"""What the conv2d library functions of BLAS (blas.py) and oneDNN (dnnl.py)
share: their epilogue variants, their buffer shapes, the canonical form of
their registered names (`<lib>.conv2d[variant]:p0,p1,...`), and the numpy
reference the interpreter and evaluator run for them.

A name's parameters are canonical decimals below 2**31, so one C symbol has
exactly one name (no `01` or `1_0` aliases).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from relax_xdsl.dialects.tir import BufferType

CONV_VARIANTS = ("", "_bias3", "_bias4", "_bias3_relu", "_bias4_relu", "_bias3_relu6", "_bias4_relu6")
"""Conv2d library functions: plain, + a per-channel bias of shape (o, 1, 1)
or (1, o, 1, 1), each optionally + relu or relu6 (clip to [0, 6], as
MobileNet's activations), applied per image while it is in cache instead of
another pass over the output."""

RESIDUAL_VARIANTS = ("_bias3_add_relu", "_bias4_add_relu")
"""Conv2d library functions of oneDNN only: + a per-channel bias, + a
residual tensor of the output's shape (ResNet's shortcut), then relu. The
residual is read by oneDNN's binary post-op while each output block is in
cache, and the relu needs no pass of its own when its post-op is proven
NaN-free. (Without the relu, MobileNetV2's projection convs measured slower
with the binary post-op than with the add as a pass of ours, so there is no
such variant.)"""

RELU6_BOUNDS = (0.0, 6.0)
"""The clip bounds of the `_relu6` epilogue."""


def activation_code(variant: str) -> int:
    """The runtime's epilogue argument: 0 none, 1 relu, 2 relu6 (NaN kept,
    as relax.relu and relax.clip keep it)."""
    return 2 if variant.endswith("_relu6") else 1 if variant.endswith("_relu") else 0


def check_variant(variant: str, variants: tuple[str, ...] = CONV_VARIANTS) -> None:
    if variant not in variants:
        raise ValueError(f"conv2d variant {variant!r}; known: {variants}")


def has_residual(variant: str) -> bool:
    """Whether the variant adds a residual operand (RESIDUAL_VARIANTS)."""
    return "_add" in variant


LAYOUTS = ("NCHW", "NHWC")
"""The data layouts of the conv2d library functions (weights are OIHW in both)."""


def _channels_last(dims: list[int | str], layout: str) -> list[int | str]:
    """An NCHW-ordered (n, c, h, w) shape (or the last three of one) in `layout`."""
    return dims if layout == "NCHW" else [*dims[:-3], dims[-2], dims[-1], dims[-3]]


def conv_buffers(variant: str, weight_in: str, layout: str = "NCHW") -> list[BufferType]:
    """x (n, c, h, w), w (o, `weight_in`, kh, kw), the variant's bias and residual (n, o, oh, ow),
    y (n, o, oh, ow): float32 buffers; x, y, the residual and the bias (o, 1, 1) / (1, o, 1, 1)
    channels last in NHWC."""
    shapes: list[list[int | str]] = [_channels_last(["n", "c", "h", "w"], layout), ["o", weight_in, "kh", "kw"]]
    if variant.startswith("_bias3"):
        shapes.append(_channels_last(["o", 1, 1], layout))
    elif variant.startswith("_bias4"):
        shapes.append(_channels_last([1, "o", 1, 1], layout))
    if has_residual(variant):
        shapes.append(_channels_last(["n", "o", "oh", "ow"], layout))
    shapes.append(_channels_last(["n", "o", "oh", "ow"], layout))
    return [BufferType.of(s, "float32") for s in shapes]


def parse_name(name: str, prefix: str, count: int,
               variants: tuple[str, ...] = CONV_VARIANTS) -> tuple[str, tuple[int, ...]] | None:
    """(variant, parameters) of `prefix[variant]:p0,...`, a variant of
    `variants`, with `count` canonical decimal parameters below 2**31, or
    None for any other name."""
    if not name.startswith(prefix) or ":" not in name:
        return None
    variant, _, text = name[len(prefix):].partition(":")
    if variant not in variants:
        return None
    values = text.split(",")
    if len(values) != count or not all(v.isascii() and v.isdigit() and str(int(v)) == v for v in values):
        return None
    params = tuple(int(v) for v in values)
    return (variant, params) if max(params) < 2**31 else None


def conv_reference(strides: tuple[int, int], padding: tuple[int, int, int, int], dilation: tuple[int, int],
                   groups: int, variant: str, layout: str = "NCHW") -> Callable[..., None]:
    """The numpy reference of a conv2d library function: the conv2d op's
    reference, then the variant's bias, residual and relu / relu6 (in the
    order of the graph ops it stands for: conv2d, add, add, relu)."""
    bias_shape = (1, -1, 1, 1) if layout == "NCHW" else (1, 1, 1, -1)
    from relax_xdsl.ops.registry import get_spec

    spec, spec_relu, spec_clip = get_spec("conv2d"), get_spec("relu"), get_spec("clip")

    def reference(x: np.ndarray, w: np.ndarray, *rest: np.ndarray) -> None:
        out = rest[-1]
        out[...] = spec.reference(x, w, strides=strides, padding=padding, dilation=dilation, groups=groups,
                                  data_layout=layout, kernel_layout="OIHW", out_dtype=None)
        if variant:
            out += rest[0].reshape(bias_shape)
        if has_residual(variant):
            out += rest[1]
        if variant.endswith("_relu"):
            out[...] = spec_relu.reference(out)
        elif variant.endswith("_relu6"):
            out[...] = spec_clip.reference(out, *RELU6_BOUNDS)

    return reference


def wrapper_signature(symbol: str, variant: str, weight_in: str, layout: str = "NCHW") -> str:
    """The C declarator of a conv2d library function of this variant (the
    library calling convention: pointers, then every buffer's dims, in
    their layout's order)."""
    bias = "_bias" in variant
    bias_dims = (", int64_t d0, int64_t d1, int64_t d2" + (", int64_t d3" if variant.startswith("_bias4") else "")
                 if bias else "")
    residual = has_residual(variant)
    if residual:
        bias_dims += ", " + ", ".join(f"int64_t {d}" for d in _channels_last(["r0", "r1", "r2", "r3"], layout))
    x = ", ".join(f"int64_t {d}" for d in _channels_last(["n", "c", "h", "w"], layout))
    y = ", ".join(f"int64_t {d}" for d in _channels_last(["n2", "o2", "oh", "ow"], layout))
    return (f"void {symbol}(float* X, float* W, {'float* B, ' if bias else ''}{'float* R, ' if residual else ''}"
            f"float* Y, {x},\n"
            f"              int64_t o, int64_t {weight_in}, int64_t kh, int64_t kw{bias_dims}, {y})")
