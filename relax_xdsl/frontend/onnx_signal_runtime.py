"""Run-time forms of the ONNX signal ops (DFT, STFT, MelWeightMatrix) for
inputs that are data rather than import-time values: a graph input, or
computed from tensors.

A size read from data (DFT's dft_length, STFT's frame_step / frame_length,
MelWeightMatrix's num_mel_bins and dft_length) becomes a fresh symbol bound
when the program runs (onnx_runtime_values.sizes), and the matrices the
static path folds into constants are built from it with graph ops (arange,
mod, cos / sin, where), in float64 as the static path builds them, then
cast. A value the op needs in a range (a length >= 1, edges within the
Nyquist band) is passed through a one-element gather that fails when it is
out of range, so a hostile value is a BoundsError naming the node and the
input when it runs; an absurd size is the allocation limit's
ResourceLimitError, as for every buffer.
"""

from __future__ import annotations

import math

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.builder import Var
from relax_xdsl.frontend import onnx_runtime_values as rt
from relax_xdsl.frontend.onnx_import import Known, Node, Value
from relax_xdsl.shape import Dim, canon, floordiv

_F64 = "float64"


def at_run_time(n: Node, i: int) -> bool:
    """Input `i` is present and not a number known at import time: data, or
    a value computed from symbolic dims."""
    v = n.optional(i)
    return isinstance(v, Var) or (isinstance(v, Known) and v.symbolic)


def checked(n: Node, v: Value, ok: Value, what: str) -> Var:
    """0-d `v` as it is, through a one-element gather whose index is out of
    range when 0-d bool `ok` is false: a BoundsError naming the node and
    `what` at run time. The check is on the value's path, so it cannot be
    dropped while the value is used."""
    idx = n.op("where", ok, rt.const(0), rt.const(1))
    return rt.as_var(n.op("take", n.op("reshape", v, shape=[1]), idx, axis=0, what=f"{n.where}: {what}"))


def int_scalar(n: Node, i: int, what: str) -> Var:
    """Input `i` as 0-d int64 data; it must hold an integer type."""
    v = rt.scalar_tensor(n, i, what)
    if not dtypes.is_int(v.dtype):
        n.fail(f"input {i} ({what}) must be an integer, got {v.dtype}")
    return rt.as_int64(n, v)


def positive(n: Node, v: Var, what: str) -> Var:
    """0-d int64 `v`, checked at run time to be a size >= 1 (below 2**62, as every size)."""
    ok = n.op("logical_and", n.op("greater_equal", v, rt.const(1)), n.op("less", v, rt.const(2**62)))
    return checked(n, v, ok, f"{what} must be >= 1 and < 2**62 (the checked index is 1 when it is not)")


def size_of(n: Node, v: Var, what: str) -> Dim:
    """0-d int64 data as one fresh size symbol bound at run time."""
    (d,) = rt.sizes(n, rt.as_var(n.op("reshape", v, shape=[1])), what)
    return d


def _iota(n: Node, length: Dim, shape: list[Dim]) -> Value:
    """arange(length) in int64, reshaped to `shape` (one entry `length`, the others 1)."""
    return n.op("reshape", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[length]), shape=shape)


def _f64(n: Node, v: Value) -> Value:
    return n.op("astype", v, dtype=_F64) if v.dtype != _F64 else v


def _angle(n: Node, product: Value, length: Var) -> Value:
    """2 pi ((product mod length) / length) as the static path computes it: 2 pi * (p mod L) / L."""
    p = _f64(n, n.op("mod", product, length))
    return n.op("divide", n.op("multiply", rt.const(2 * np.pi, _F64), p), _f64(n, length))


def _interleave(n: Node, a: Value, b: Value, rows: Dim, bins: Dim) -> Value:
    """[rows, bins] a and b as [rows, 2 * bins]: (a, b) pairs along the last dim."""
    pair = n.op("concat", n.op("expand_dims", a, axis=[2]), n.op("expand_dims", b, axis=[2]), axis=2)
    return n.op("reshape", pair, shape=[rows, canon(2 * bins)])


def transform_last(n: Node, re: Value, im: Value | None, length: Var, size: Dim, inverse: bool,
                   onesided: bool) -> Value:
    """The DFT over the last axis of re (+ i im) for a transform length known
    only at run time: 0-d int64 `length` (checked >= 1) bound to the symbol
    `size`. The same matrices as the static path's, built when the program
    runs: a signal longer than the length is truncated (its extra rows are
    zero), a shorter one zero-padded (its rows absent). Gives [..., bins, 2],
    or [..., size, 1] for an inverse one-sided transform (irfft)."""
    dt = re.dtype
    n_in = canon(re.shape[-1])
    m = _iota(n, n_in, [n_in, 1])
    if inverse and onesided:
        bins: Dim = size
        t = _iota(n, size, [1, size])
        half = n.op("divide", length, rt.const(2))
        even = n.op("equal", n.op("mod", length, rt.const(2)), rt.const(0))
        single = n.op("logical_or", n.op("equal", m, rt.const(0)), n.op("logical_and", even, n.op("equal", m, half)))
        weight = n.op("divide", n.op("where", single, rt.const(1.0, _F64), rt.const(2.0, _F64)), _f64(n, length))
        weight = n.op("where", n.op("less_equal", m, half), weight, rt.const(0.0, _F64))  # numpy reads bins <= L // 2
        theta = _angle(n, n.op("multiply", m, t), length)
        a: Value = n.op("multiply", weight, n.op("cos", theta))
        b: Value = n.op("negative", n.op("multiply", weight, n.op("sin", theta)))
        last = 1
    else:
        bins = canon(floordiv(size, 2) + 1) if onesided else size
        k = _iota(n, bins, [1, bins])
        theta = _angle(n, n.op("multiply", m, k), length)
        inside = n.op("less", m, length)  # rows past the length: a longer signal is truncated
        scale = n.op("divide", rt.const(1.0, _F64), _f64(n, length)) if inverse else rt.const(1.0, _F64)
        scale = n.op("where", inside, scale, rt.const(0.0, _F64))
        cos = n.op("multiply", n.op("cos", theta), scale)
        sin = n.op("multiply", n.op("sin", theta), scale)
        if not inverse:
            sin = n.op("negative", sin)
        a = _interleave(n, cos, sin, n_in, bins)
        b = _interleave(n, n.op("negative", sin), cos, n_in, bins)
        last = 2
    y = n.op("matmul", re, n.op("astype", a, dtype=dt))
    if im is not None:
        y = n.op("add", y, n.op("matmul", im, n.op("astype", b, dtype=dt)))
    return n.op("reshape", y, shape=[*y.shape[:-1], bins, last])


def frame_starts(n: Node, signal_length: Dim, frame: Var, step: Var) -> tuple[Dim, Value]:
    """STFT's frames with frame_length / frame_step as 0-d int64 data
    (checked >= 1): the frame count 1 + (length - frame) // step as a fresh
    symbol (a signal shorter than a frame fails when it runs) and the int64
    [frames, 1] start of each frame."""
    total = rt.as_var(n.op("reshape", rt.dims_data(n, [signal_length]), shape=[]))
    fits = n.op("greater_equal", total, frame)
    total = checked(n, total, fits, "the signal is shorter than frame_length (the checked index is 1 when it is)")
    count = n.op("add", n.op("divide", n.op("subtract", total, frame), step), rt.const(1))
    frames = size_of(n, rt.as_var(count), "frames")
    return frames, n.op("multiply", _iota(n, frames, [frames, 1]), step)


# -- MelWeightMatrix --------------------------------------------------------------------------------------------------


def _log1p(n: Node, x: Value) -> Value:
    """log(1 + x) to a few ulps for small x too (u = 1 + x; log(u) * x / (u - 1))."""
    u = n.op("add", x, rt.const(1.0, _F64))
    d = n.op("subtract", u, rt.const(1.0, _F64))
    safe = n.op("where", n.op("equal", d, rt.const(0.0, _F64)), rt.const(1.0, _F64), d)
    return n.op("where", n.op("equal", d, rt.const(0.0, _F64)), x,
                n.op("divide", n.op("multiply", n.op("log", u), x), safe))


def _expm1(n: Node, x: Value) -> Value:
    """exp(x) - 1 to a few ulps for small x too (u = exp(x); (u - 1) * x / log(u))."""
    u = n.op("exp", x)
    d = n.op("subtract", u, rt.const(1.0, _F64))
    lu = n.op("log", u)
    trivial = n.op("logical_or", n.op("equal", d, rt.const(0.0, _F64)), n.op("equal", d, rt.const(-1.0, _F64)))
    safe = n.op("where", trivial, rt.const(1.0, _F64), lu)
    exact = n.op("where", n.op("equal", d, rt.const(0.0, _F64)), x, d)
    return n.op("where", trivial, exact, n.op("divide", n.op("multiply", d, x), safe))


def _floor_divide(n: Node, a: Value, b: Value) -> Value:
    """numpy's float floor division for a >= 0, b > 0: (a - fmod(a, b)) / b,
    floored, rounded up when that leaves more than a half (as numpy's divmod)."""
    div = n.op("divide", n.op("subtract", a, n.op("fmod", a, b)), b)
    q = n.op("floor", div)
    return n.op("where", n.op("greater", n.op("subtract", div, q), rt.const(0.5, _F64)),
                n.op("add", q, rt.const(1.0, _F64)), q)


def mel_weight_matrix(n: Node, dtype: str) -> Value:
    """[dft_length // 2 + 1, num_mel_bins] triangular filters with inputs
    given as data, both dims fresh symbols, computed as the ONNX reference
    does: mel edges spaced by (mel(high) - mel(low)) / (num_mel_bins + 2),
    mapped back to hertz, bin = ((dft_length + 1) * hz) // sample_rate as
    an integer; filter i rises over [edge i, edge i+1] and falls over
    [edge i+1, edge i+2), with 1 at edge i+1. Sizes and sample_rate must be
    >= 1 and 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2,
    checked when it runs, as the static path checks them at import."""
    bins = positive(n, int_scalar(n, 0, "num_mel_bins"), "num_mel_bins")
    length = positive(n, int_scalar(n, 1, "dft_length"), "dft_length")
    rate = positive(n, int_scalar(n, 2, "sample_rate"), "sample_rate")
    hz = []
    for i, what in ((3, "lower_edge_hertz"), (4, "upper_edge_hertz")):
        v = rt.scalar_tensor(n, i, what)
        if not (dtypes.is_float(v.dtype) or dtypes.is_int(v.dtype)):
            n.fail(f"input {i} ({what}) must be a number, got {v.dtype}")
        hz.append(_f64(n, v))
    nyquist = n.op("divide", _f64(n, rate), rt.const(2.0, _F64))
    low, high = hz
    ok = n.op("logical_and", n.op("logical_and", n.op("greater_equal", low, rt.const(0.0, _F64)),
                                  n.op("less", low, high)), n.op("less_equal", high, nyquist))
    low = checked(n, low, ok, "needs 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2 (the checked "
                              "index is 1 when not)")
    spec = n.op("add", n.op("divide", length, rt.const(2)), rt.const(1))
    rows, cols = rt.sizes(n, rt.as_var(n.op("concat", n.op("reshape", spec, shape=[1]),
                                            n.op("reshape", bins, shape=[1]), axis=0)), "shape")
    ln10 = rt.const(math.log(10), _F64)

    def mel(h: Value) -> Value:  # 2595 * log1p(h / 700) / log(10)
        return n.op("divide", n.op("multiply", rt.const(2595.0, _F64),
                                   _log1p(n, n.op("divide", h, rt.const(700.0, _F64)))), ln10)

    low_mel = mel(low)
    step = n.op("divide", n.op("subtract", mel(high), low_mel), _f64(n, n.op("add", bins, rt.const(2))))
    count = canon(cols + 2)
    points = n.op("add", n.op("multiply", _f64(n, _iota(n, count, [count])), step), low_mel)
    freq = n.op("multiply", rt.const(700.0, _F64),
                _expm1(n, n.op("multiply", n.op("divide", points, rt.const(2595.0, _F64)), ln10)))
    scaled = n.op("multiply", _f64(n, n.op("add", length, rt.const(1))), freq)
    edges = rt.as_int64(n, _floor_divide(n, scaled, _f64(n, rate)))

    def edge(first: int) -> Value:
        e = n.op("strided_slice", edges, axes=[0], begin=[first], end=[canon(cols + first)], strides=[1])
        return n.op("reshape", e, shape=[1, cols])

    lo, mid, hi = edge(0), edge(1), edge(2)
    j = _iota(n, rows, [rows, 1])

    def ratio(num: Value, den: Value) -> Value:
        return n.op("divide", _f64(n, num), _f64(n, n.op("maximum", den, rt.const(1))))

    rise = ratio(n.op("subtract", j, lo), n.op("subtract", mid, lo))
    fall = ratio(n.op("subtract", hi, j), n.op("subtract", hi, mid))
    rising = n.op("logical_and", n.op("greater_equal", j, lo), n.op("less", j, mid))
    falling = n.op("logical_and", n.op("greater", j, mid), n.op("less", j, hi))
    zero = rt.const(0.0, _F64)
    out = n.op("where", n.op("equal", j, mid), rt.const(1.0, _F64),
               n.op("where", rising, rise, n.op("where", falling, fall, zero)))
    return n.op("astype", out, dtype=dtype)
