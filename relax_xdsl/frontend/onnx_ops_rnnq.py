"""ONNX converters for recurrent (RNN, GRU, LSTM), quantization
(QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
ConvInteger, QLinearMatMul, QLinearConv) and signal ops (DFT, STFT,
MelWeightMatrix), all mapped onto existing graph ops.

Recurrences are unrolled at import: one matmul for the input projection of
every step, then per step a matmul with the recurrent weights and the gate
arithmetic, which fusion turns into a few kernels per step. That needs a
static sequence length, and is limited to MAX_UNROLL steps so the graph
stays small; a symbolic length needs a loop construct the graph does not
have, and fails at import naming the node.

Quantized values are computed exactly: integer products accumulate in
int32 (matmul / conv2d with out_dtype int32), rounding is half to even
(composed from floor, as ONNX and numpy round), saturation is a clip
before the conversion; int8, uint8 and int32 tensors work at run time.

DFT and STFT are matmuls with constant cosine / sine matrices of the
static transform length (exact up to float rounding, O(n^2) per signal).
Their sizes, DFT's axis and MelWeightMatrix's inputs may also be data:
onnx_signal_runtime builds the same matrices when the program runs, sizes
bound to fresh symbols, and a run-time DFT axis picks a relax.if branch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.frontend import onnx_signal_runtime as sr
from relax_xdsl.frontend.onnx_import import Known, Node, Value, onnx_dtype, register_converter
from relax_xdsl.shape import canon, dim_to_str

MAX_UNROLL = 256
"""Longest static sequence a recurrence is unrolled over."""

# -- small helpers ---------------------------------------------------------------------------------------------------


def _const(v: float | np.ndarray, dtype: str) -> Known:
    return Known(np.asarray(v, dtype=dtype), dtype)


def _static(n: Node, d: Any, what: str) -> int:
    c = canon(d)
    if not c.is_Integer:
        n.fail(f"{what} must be static, got the symbolic dim {dim_to_str(c)}")
    return int(c)


def _slice(n: Node, x: Value, axis: int, begin: int, end: int) -> Value:
    return n.op("strided_slice", x, axes=[axis], begin=[begin], end=[end], strides=[1])


def _index(n: Node, x: Value, axis: int, i: int) -> Value:
    """x[..., i, ...] with the axis dropped."""
    return n.op("squeeze", _slice(n, x, axis, i, i + 1), axis=[axis])


def _stack(n: Node, parts: Sequence[Value], axis: int) -> Value:
    expanded = [n.op("expand_dims", p, axis=[axis]) for p in parts]
    return expanded[0] if len(expanded) == 1 else n.op("concat", *expanded, axis=axis)


def _float_input(n: Node, i: int, what: str) -> Value:
    v = n.input(i, what)
    if not dtypes.is_float(v.dtype):
        n.fail(f"input {i} ({what}) must be a float tensor, got {v.dtype}")
    return v


# -- recurrent -----------------------------------------------------------------------------------------------------

_ACT_DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    # name (lowercase) -> (alpha default, beta default); None: the activation takes no such parameter
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None), "softsign": (None, None),
    "softplus": (None, None), "affine": (1.0, 0.0), "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None),
    "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
}

Activation = Callable[[Value], Value]


def _activations(n: Node, defaults: list[str], num_dir: int) -> list[list[Activation]]:
    """The activation functions per direction, with activation_alpha / _beta
    consumed in order by the activations that take them (ONNX's rule)."""
    names = list(n.attr("activations", defaults * num_dir))
    if len(names) != len(defaults) * num_dir:
        n.fail(f"activations must list {len(defaults) * num_dir} functions ({len(defaults)} per direction), "
               f"got {len(names)}")
    alphas, betas = list(n.attr("activation_alpha", [])), list(n.attr("activation_beta", []))
    out: list[Activation] = []
    for name in names:
        key = name.lower()
        if key not in _ACT_DEFAULTS:
            n.fail(f"activation {name!r} is not supported (supported: {', '.join(sorted(_ACT_DEFAULTS))})")
        da, db = _ACT_DEFAULTS[key]
        alpha = (alphas.pop(0) if alphas else da) if da is not None else None
        beta = (betas.pop(0) if betas else db) if db is not None else None
        out.append(_activation(n, key, alpha, beta))
    k = len(defaults)
    return [out[d * k:(d + 1) * k] for d in range(num_dir)]


def _activation(n: Node, key: str, alpha: float | None, beta: float | None) -> Activation:
    def c(v: float, x: Value) -> Known:
        return _const(v, x.dtype)

    def act(x: Value) -> Value:
        if key in ("relu", "tanh", "sigmoid"):
            return n.op(key, x)
        if key == "affine":
            return n.op("add", n.op("multiply", x, c(alpha, x)), c(beta, x))
        if key == "leakyrelu":
            return n.op("where", n.op("greater", x, c(0, x)), x, n.op("multiply", x, c(alpha, x)))
        if key == "thresholdedrelu":
            return n.op("where", n.op("greater", x, c(alpha, x)), x, c(0, x))
        if key == "scaledtanh":
            return n.op("multiply", c(alpha, x), n.op("tanh", n.op("multiply", x, c(beta, x))))
        if key == "hardsigmoid":
            return n.op("clip", n.op("add", n.op("multiply", x, c(alpha, x)), c(beta, x)), min=0.0, max=1.0)
        if key == "elu":
            neg = n.op("multiply", c(alpha, x), n.op("subtract", n.op("exp", x), c(1, x)))
            return n.op("where", n.op("greater", x, c(0, x)), x, neg)
        if key == "softsign":
            return n.op("divide", x, n.op("add", c(1, x), n.op("abs", x)))
        return n.op("log", n.op("add", n.op("exp", x), c(1, x)))  # softplus

    return act


_RNN_ATTRS = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout")


class _Recurrence:
    """What RNN, GRU and LSTM share: inputs in time-major layout, weights per
    direction, step masks from sequence_lens, outputs in the node's layout."""

    def __init__(self, n: Node, gates: int, act_defaults: list[str]):
        self.n = n
        direction = n.attr("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            n.fail(f"direction={direction!r} is not supported (forward, reverse, bidirectional)")
        self.directions = ["forward", "reverse"] if direction == "bidirectional" else [direction]
        self.layout = int(n.attr("layout", 0))
        if self.layout not in (0, 1):
            n.fail(f"layout={self.layout} is not supported (0 or 1)")
        x = _float_input(n, 0, "X")
        if x.ndim != 3:
            n.fail(f"X must have rank 3, got rank {x.ndim}")
        self.x = n.op("permute_dims", x, axes=[1, 0, 2]) if self.layout else x
        self.dtype = x.dtype
        seq = canon(self.x.shape[0])
        if not seq.is_Integer:
            n.fail(f"the sequence length is the symbolic dim {dim_to_str(seq)}; only static lengths are supported "
                   "(the recurrence is unrolled at import; a symbolic length needs a loop construct)")
        self.seq = int(seq)
        if self.seq > MAX_UNROLL:
            n.fail(f"the sequence length {self.seq} is above {MAX_UNROLL}, the longest unrolled at import")
        self.batch = self.x.shape[1]
        self.gates = gates
        w = n.input(1, "W")
        hidden = n.attr("hidden_size", None)
        if w.ndim != 3:
            n.fail(f"W must have rank 3, got rank {w.ndim}")
        rows = _static(n, w.shape[1], "W dim 1")
        self.hidden = int(hidden) if hidden is not None else rows // gates
        if rows != gates * self.hidden:
            n.fail(f"W dim 1 is {rows}, expected {gates} * hidden_size = {gates * self.hidden}")
        num_dir = _static(n, w.shape[0], "W dim 0")
        if num_dir != len(self.directions):
            n.fail(f"W dim 0 is {num_dir} but direction={direction!r} needs {len(self.directions)}")
        self.w, self.r, self.b = w, n.input(2, "R"), n.optional(3)
        for what, v in (("R", self.r), ("B", self.b)):
            if v is not None and v.dtype != self.dtype:
                n.fail(f"{what} has dtype {v.dtype} but X has {self.dtype}")
        self.acts = _activations(n, act_defaults, num_dir)
        clip = n.attr("clip", None)
        self.clip = None if clip is None else float(clip)
        self.lens = self._lengths(n.optional(4))

    def _lengths(self, lens: Value | None) -> Value | None:
        """sequence_lens checked against the sequence length (a longer one is a
        BoundsError; negative ones count as 0), or None when all are full."""
        if lens is None:
            return None
        n = self.n
        if lens.dtype not in ("int32", "int64"):
            n.fail(f"sequence_lens must be int32 or int64, got {lens.dtype}")
        if isinstance(lens, Known) and not lens.symbolic:
            if ((lens.array > self.seq) | (lens.array < 0)).any():
                n.fail(f"sequence_lens {lens.array.tolist()} are out of range [0, {self.seq}]")
            if (lens.array == self.seq).all():
                return None
            return lens
        positive = n.op("maximum", lens, _const(0, lens.dtype))
        return n.op("take", _const(np.arange(self.seq + 1), lens.dtype), positive, axis=0)

    def state(self, i: int, what: str, d: int) -> Value:
        """initial_h / initial_c for direction d as [batch, hidden], zeros when absent."""
        v = self.n.optional(i)
        if v is None:
            return self.n.op("full", shape=[self.batch, self.hidden], fill_value=0.0, dtype=self.dtype)
        if v.ndim != 3:
            self.n.fail(f"{what} must have rank 3, got rank {v.ndim}")
        return _index(self.n, v, 1 if self.layout else 0, d)

    def projections(self, d: int) -> tuple[Value, Value]:
        """X W^T + Wb + Rb for all steps [seq, batch, gates*hidden], and R^T [hidden, gates*hidden]."""
        n = self.n
        w_t = n.op("permute_dims", _index(n, self.w, 0, d), axes=[1, 0])
        r_t = n.op("permute_dims", _index(n, self.r, 0, d), axes=[1, 0])
        xw = n.op("matmul", self.x, w_t)
        if self.b is not None:
            b = _index(n, self.b, 0, d)
            gh = self.gates * self.hidden
            xw = n.op("add", xw, n.op("add", _slice(n, b, 0, 0, gh), _slice(n, b, 0, gh, 2 * gh)))
        return xw, r_t

    def gate(self, v: Value, k: int) -> Value:
        return _slice(self.n, v, 1, k * self.hidden, (k + 1) * self.hidden)

    def clipped(self, v: Value) -> Value:
        return v if self.clip is None else self.n.op("clip", v, min=-self.clip, max=self.clip)

    def steps(self, d: int) -> list[int]:
        return list(range(self.seq)) if self.directions[d] == "forward" else list(range(self.seq - 1, -1, -1))

    def mask(self, t: int) -> Value | None:
        """[batch, 1] true where step t is within the batch entry's length."""
        if self.lens is None:
            return None
        m = self.n.op("less", _const(t, self.lens.dtype), self.lens)
        return self.n.op("expand_dims", m, axis=[1])

    def keep(self, mask: Value | None, new: Value, old: Value) -> Value:
        return new if mask is None else self.n.op("where", mask, new, old)

    def output(self, mask: Value | None, h: Value) -> Value:
        return h if mask is None else self.n.op("where", mask, h, _const(0, self.dtype))

    def results(self, ys: list[dict[int, Value]], finals: list[list[Value]]) -> list[Value]:
        """Y [seq, num_dir, batch, hidden] and the final states [num_dir, batch, hidden] (layout 0)."""
        n = self.n
        y = _stack(n, [_stack(n, [per_dir[t] for t in range(self.seq)], 0) for per_dir in ys], 1)
        states = [_stack(n, list(f), 0) for f in zip(*finals)]
        if self.layout:
            y = n.op("permute_dims", y, axes=[2, 0, 1, 3])
            states = [n.op("permute_dims", s, axes=[1, 0, 2]) for s in states]
        return [y, *states]


@register_converter("RNN", attrs=_RNN_ATTRS)
def _rnn(n: Node) -> list[Value]:
    """Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb), unrolled (static length <= MAX_UNROLL)."""
    rec = _Recurrence(n, 1, ["Tanh"])
    ys, finals = [], []
    for d in range(len(rec.directions)):
        (f,) = rec.acts[d]
        xw, r_t = rec.projections(d)
        h = rec.state(5, "initial_h", d)
        y: dict[int, Value] = {}
        for t in rec.steps(d):
            mask = rec.mask(t)
            cand = f(rec.clipped(n.op("add", _index(n, xw, 0, t), n.op("matmul", h, r_t))))
            y[t] = rec.output(mask, cand)
            h = rec.keep(mask, cand, h)
        ys.append(y)
        finals.append([h])
    return rec.results(ys, finals)


@register_converter("GRU", attrs=(*_RNN_ATTRS, "linear_before_reset"))
def _gru(n: Node) -> list[Value]:
    """Gates z, r, h; linear_before_reset applies the reset gate after the
    recurrent projection. Unrolled (static length <= MAX_UNROLL)."""
    rec = _Recurrence(n, 3, ["Sigmoid", "Tanh"])
    lbr = bool(n.attr("linear_before_reset", 0))
    one = _const(1, rec.dtype)
    ys, finals = [], []
    for d in range(len(rec.directions)):
        f, g = rec.acts[d]
        xw, r_t = rec.projections(d)
        hid = rec.hidden
        r_zr = _slice(n, r_t, 1, 0, 2 * hid)
        r_h = _slice(n, r_t, 1, 2 * hid, 3 * hid)
        rb_h = None
        if rec.b is not None:
            # xw holds Wb + Rb for every gate; the h gate's Rb must sit inside the reset product when lbr
            rb_h = _slice(n, _index(n, rec.b, 0, d), 0, 5 * hid, 6 * hid)
        h = rec.state(5, "initial_h", d)
        y: dict[int, Value] = {}
        for t in rec.steps(d):
            mask = rec.mask(t)
            xt = _index(n, xw, 0, t)
            hr = n.op("matmul", h, r_zr)
            z = f(rec.clipped(n.op("add", rec.gate(xt, 0), rec.gate(hr, 0))))
            r = f(rec.clipped(n.op("add", rec.gate(xt, 1), rec.gate(hr, 1))))
            if lbr:
                rec_h = n.op("matmul", h, r_h)
                x_h = rec.gate(xt, 2)
                if rb_h is not None:  # Rb inside: r * (H R^T + Rb); Wb outside
                    x_h = n.op("subtract", x_h, rb_h)
                    rec_h = n.op("add", rec_h, rb_h)
                pre = n.op("add", x_h, n.op("multiply", r, rec_h))
            else:
                pre = n.op("add", rec.gate(xt, 2), n.op("matmul", n.op("multiply", r, h), r_h))
            cand_h = g(rec.clipped(pre))
            cand = n.op("add", n.op("multiply", n.op("subtract", one, z), cand_h), n.op("multiply", z, h))
            y[t] = rec.output(mask, cand)
            h = rec.keep(mask, cand, h)
        ys.append(y)
        finals.append([h])
    return rec.results(ys, finals)


@register_converter("LSTM", attrs=(*_RNN_ATTRS, "input_forget"))
def _lstm(n: Node) -> list[Value]:
    """Gates i, o, f, c with optional peepholes P (i, o, f); input_forget
    couples the forget gate to 1 - i. Unrolled (static length <= MAX_UNROLL)."""
    rec = _Recurrence(n, 4, ["Sigmoid", "Tanh", "Tanh"])
    coupled = bool(n.attr("input_forget", 0))
    p = n.optional(7)
    one = _const(1, rec.dtype)
    ys, finals = [], []
    for d in range(len(rec.directions)):
        f, g, hact = rec.acts[d]
        xw, r_t = rec.projections(d)
        peep = None
        if p is not None:
            pd = _index(n, p, 0, d)
            peep = [_slice(n, pd, 0, k * rec.hidden, (k + 1) * rec.hidden) for k in range(3)]
        h, c = rec.state(5, "initial_h", d), rec.state(6, "initial_c", d)
        y: dict[int, Value] = {}
        for t in rec.steps(d):
            mask = rec.mask(t)
            gates = n.op("add", _index(n, xw, 0, t), n.op("matmul", h, r_t))
            pi, po, pf = [rec.gate(gates, k) for k in (0, 1, 2)]
            if peep is not None:
                pi = n.op("add", pi, n.op("multiply", peep[0], c))
                pf = n.op("add", pf, n.op("multiply", peep[2], c))
            i = f(rec.clipped(pi))
            fg = n.op("subtract", one, i) if coupled else f(rec.clipped(pf))
            cc = g(rec.clipped(rec.gate(gates, 3)))
            c_new = n.op("add", n.op("multiply", fg, c), n.op("multiply", i, cc))
            if peep is not None:
                po = n.op("add", po, n.op("multiply", peep[1], c_new))
            o = f(rec.clipped(po))
            h_new = n.op("multiply", o, hact(c_new))
            y[t] = rec.output(mask, h_new)
            h, c = rec.keep(mask, h_new, h), rec.keep(mask, c_new, c)
        ys.append(y)
        finals.append([h, c])
    return rec.results(ys, finals)


# -- signal ---------------------------------------------------------------------------------------------------------


def _split_complex(n: Node, x: Value, what: str) -> tuple[Value, Value | None]:
    """The real and (for a last dim of 2) imaginary parts, last dim dropped."""
    if x.ndim < 2:
        n.fail(f"{what} must have rank >= 2 (a last dim of 1 for real or 2 for complex values), got rank {x.ndim}")
    last = _static(n, x.shape[-1], f"{what}'s last dim")
    if last not in (1, 2):
        n.fail(f"{what}'s last dim must be 1 (real) or 2 (complex), got {last}")
    re = _index(n, x, x.ndim - 1, 0)
    return re, (_index(n, x, x.ndim - 1, 1) if last == 2 else None)


def _dft_matrices(n_in: int, length: int, inverse: bool, onesided: bool, window: np.ndarray | None,
                  dtype: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Matrices A, B with y = x_re @ A + x_im @ B, y's last dim (k, re/im)
    interleaved, for the first n_in samples of a length-`length` transform
    (shorter signals are zero-padded: their rows are absent). An inverse
    one-sided transform (irfft) gives real samples instead: A, B are
    [bins, length] with the hermitian weights. Returns (A, B, output bins)."""
    m = np.arange(n_in, dtype=np.float64)[:, None]
    if inverse and onesided:
        k = m  # rows are frequency bins here; numpy's irfft uses the first length // 2 + 1
        used = min(n_in, length // 2 + 1)
        t = np.arange(length, dtype=np.float64)[None, :]
        weight = np.where((k == 0) | ((length % 2 == 0) & (k == length // 2)), 1.0, 2.0) / length
        weight[used:] = 0.0
        theta = 2 * np.pi * ((k * t) % length) / length
        return (weight * np.cos(theta)).astype(dtype), (-weight * np.sin(theta)).astype(dtype), length
    bins = length // 2 + 1 if onesided else length
    k = np.arange(bins, dtype=np.float64)[None, :]
    theta = 2 * np.pi * ((m * k) % length) / length
    sign, scale = (1.0, 1.0 / length) if inverse else (-1.0, 1.0)
    cos, sin = np.cos(theta) * scale, sign * np.sin(theta) * scale
    if window is not None:
        cos, sin = cos * window[:n_in, None], sin * window[:n_in, None]
    a = np.stack([cos, sin], axis=-1).reshape(n_in, 2 * bins)
    b = np.stack([-sin, cos], axis=-1).reshape(n_in, 2 * bins)
    return a.astype(dtype), b.astype(dtype), bins


def _transform_last(n: Node, re: Value, im: Value | None, length: int, inverse: bool, onesided: bool,
                    window: np.ndarray | None = None) -> Value:
    """DFT over the last axis of re (+ i im): [..., bins, 2], or [..., length, 1] for irfft."""
    n_in = _static(n, re.shape[-1], "the signal dim")
    if n_in > length:  # np.fft truncates a longer signal
        re = _slice(n, re, re.ndim - 1, 0, length)
        im = None if im is None else _slice(n, im, im.ndim - 1, 0, length)
        n_in = length
    if inverse and onesided and n_in > length // 2 + 1:
        n_in = length // 2 + 1
        re = _slice(n, re, re.ndim - 1, 0, n_in)
        im = None if im is None else _slice(n, im, im.ndim - 1, 0, n_in)
    a, b, bins = _dft_matrices(n_in, length, inverse, onesided, window, re.dtype)
    y = n.op("matmul", re, Known(a, re.dtype))
    if im is not None:
        y = n.op("add", y, n.op("matmul", im, Known(b, re.dtype)))
    last = 1 if inverse and onesided else 2
    return n.op("reshape", y, shape=[*y.shape[:-1], bins, last])


def _known_int(n: Node, i: int, what: str) -> int | None:
    v = n.scalar(i, what)
    if v is None:
        return None
    if not isinstance(v, int):
        n.fail(f"input {i} ({what}) must be an integer, got {v!r}")
    return v


@register_converter("DFT", attrs=("axis", "inverse", "onesided"))
def _dft(n: Node) -> Value:
    """Opset 17 (axis attribute, default 1) and 20 (axis input, default -2);
    real or complex (last dim 2) input. dft_length and the axis may be data
    (onnx_signal_runtime): a run-time axis selects one of the rank - 1
    signal axes in a chain of relax.if (the branches' result dims differ
    when the transform changes the length, so the result has fresh dims)."""
    x = _float_input(n, 0, "input")
    rank = x.ndim
    inverse, onesided = bool(n.attr("inverse", 0)), bool(n.attr("onesided", 0))
    re, im = _split_complex(n, x, "input")
    length: int | tuple[Any, Any] | None = None
    if sr.at_run_time(n, 1):
        data = sr.positive(n, sr.int_scalar(n, 1, "dft_length"), "dft_length")
        length = (data, sr.size_of(n, data, "dft_length"))
    else:
        length = _known_int(n, 1, "dft_length")
        if length is not None and length < 1:
            n.fail(f"dft_length must be >= 1, got {length}")
    if n.opset >= 20 and sr.at_run_time(n, 2):
        return _dft_runtime_axis(n, re, im, rank, length, inverse, onesided)
    if n.opset >= 20:
        a = _known_int(n, 2, "axis")
        axis = -2 if a is None else a
    else:
        axis = int(n.attr("axis", 1))
    if not -rank <= axis < rank or axis % rank == rank - 1:
        n.fail(f"axis {axis} must name a signal dim of the rank-{rank} input (not its last, real/imaginary dim)")
    return _dft_along(n, re, im, axis % rank, rank, length, inverse, onesided)


def _dft_along(n: Node, re: Value, im: Value | None, axis: int, rank: int, length: int | tuple[Any, Any] | None,
               inverse: bool, onesided: bool, in_branch: bool = False) -> Value:
    """The DFT of re (+ i im) along signal `axis`: the static matrices for an
    import-time length, else the run-time ones (length as (data, symbol)).
    In a branch of a run-time axis, a default length below 1 fails only
    when that branch runs."""
    perm = [d for d in range(rank - 1) if d != axis] + [axis]
    moved = perm != list(range(rank - 1))
    if moved:
        re = n.op("permute_dims", re, axes=perm)
        im = None if im is None else n.op("permute_dims", im, axes=perm)
    if isinstance(length, tuple):
        y = sr.transform_last(n, re, im, length[0], length[1], inverse, onesided)
    else:
        n_sig = _static(n, re.shape[-1], f"the signal dim {axis}")
        if length is None:
            length = 2 * (n_sig - 1) if inverse and onesided else n_sig
        if length < 1 and not in_branch:
            n.fail(f"dft_length must be >= 1, got {length}")
        if length < 1:  # the branch of an axis the data may not select: fails only when it runs
            data = sr.positive(n, n.importer.tensor(Known(np.array(length, np.int64), "int64"), n),
                               f"dft_length ({length}, the default for signal axis {axis})")
            y = sr.transform_last(n, re, im, data, sr.size_of(n, data, "dft_length"), inverse, onesided)
        else:
            y = _transform_last(n, re, im, length, inverse, onesided)
    if moved:  # y is [others..., bins, c]: put bins back at `axis`
        back = list(range(rank - 2))
        back.insert(axis, rank - 2)
        y = n.op("permute_dims", y, axes=[*back, rank - 1])
    return y


def _dft_runtime_axis(n: Node, re: Value, im: Value | None, rank: int, length: int | tuple[Any, Any] | None,
                      inverse: bool, onesided: bool) -> Value:
    """DFT with the axis as data: it must name one of the signal axes
    [0, rank - 2] (negative ones counting from the end, the last, complex
    axis excluded), else a BoundsError naming the node when it runs; each
    possible axis is a branch of a relax.if chain on it."""
    from relax_xdsl.frontend import onnx_runtime_values as rt

    a = sr.int_scalar(n, 2, "axis")
    norm = n.op("where", n.op("less", a, rt.const(0)), n.op("add", a, rt.const(rank)), a)
    signal_axes = rank - 1
    idx = n.op("where", n.op("less", norm, rt.const(0)), rt.const(signal_axes), norm)
    axis = n.op("take", Known(np.arange(signal_axes, dtype=np.int64), "int64"), idx, axis=0,
                what=f"{n.where}: axis (one of the {signal_axes} signal axes of the rank-{rank} input, "
                     f"in [{-rank}, -2] or [0, {rank - 2}])")
    re = n.importer.tensor(re, n)  # built before the branches, which only read them
    im = None if im is None else n.importer.tensor(im, n)
    fb = n.importer.fb

    def chain(k: int) -> Any:
        if k == signal_axes - 1:
            return n.importer.tensor(_dft_along(n, re, im, k, rank, length, inverse, onesided, True), n)
        return fb.if_(rt.as_var(n.op("equal", axis, rt.const(k))),
                      lambda: n.importer.tensor(_dft_along(n, re, im, k, rank, length, inverse, onesided, True), n),
                      lambda: chain(k + 1))

    return chain(0)


@register_converter("STFT", attrs=("onesided",))
def _stft(n: Node) -> Value:
    """signal [batch, length, 1|2] -> [batch, frames, bins, 2]; frame_step and
    frame_length known at import, the window a constant folded into the DFT
    matrix (or multiplied in when computed at run time)."""
    x = _float_input(n, 0, "signal")
    if x.ndim != 3:
        n.fail(f"signal must have rank 3 [batch, length, 1 or 2], got rank {x.ndim}")
    window = n.optional(2)
    if window is not None and window.ndim != 1:
        n.fail(f"window must have rank 1, got rank {window.ndim}")
    if (sr.at_run_time(n, 1) or sr.at_run_time(n, 3) or not canon(x.shape[1]).is_Integer
            or (window is not None and not canon(window.shape[0]).is_Integer)):
        return _stft_at_run_time(n, x, window)
    step = _known_int(n, 1, "frame_step")
    if step is None or step < 1:
        n.fail(f"frame_step must be a known integer >= 1, got {step}")
    window = n.optional(2)
    frame = _known_int(n, 3, "frame_length")
    if window is not None:
        if window.ndim != 1:
            n.fail(f"window must have rank 1, got rank {window.ndim}")
        wlen = _static(n, window.shape[0], "the window length")
        if frame is not None and frame != wlen:
            n.fail(f"frame_length {frame} differs from the window length {wlen}")
        frame = wlen
    if frame is None or frame < 1:
        n.fail("needs frame_length or a window (the frame length) >= 1")
    re, im = _split_complex(n, x, "signal")
    onesided = bool(n.attr("onesided", 1))
    if onesided and im is not None:
        n.fail("onesided=1 needs a real signal (last dim 1)")
    length = _static(n, re.shape[1], "the signal length")
    if length < frame:
        n.fail(f"the signal length {length} is shorter than the frame length {frame}")
    frames = 1 + (length - frame) // step
    idx = Known((np.arange(frames)[:, None] * step + np.arange(frame)[None, :]).astype(np.int64), "int64")
    re, im, win = _frames(n, re, im, idx, window)
    return _transform_last(n, re, im, frame, False, onesided, win)


def _frames(n: Node, re: Value, im: Value | None, idx: Value, window: Value | None
            ) -> tuple[Value, Value | None, np.ndarray | None]:
    """The signal's frames (a gather of [frames, frame] indices along axis
    1), times a window given as data; a window known at import is returned
    as float64 instead, for the DFT matrix to fold in."""
    re = n.op("take", re, idx, axis=1)
    im = None if im is None else n.op("take", im, idx, axis=1)
    if isinstance(window, Known) and not window.symbolic:
        return re, im, window.array.astype(np.float64)
    if window is not None:
        w = window if window.dtype == re.dtype else n.op("astype", window, dtype=re.dtype)
        re = n.op("multiply", re, w)
        im = None if im is None else n.op("multiply", im, w)
    return re, im, None


def _stft_at_run_time(n: Node, x: Value, window: Value | None) -> Value:
    """STFT with frame_step, frame_length (or the window's length) or the
    signal length known only at run time: the frame count is a fresh symbol
    (sr.frame_starts), frames a gather of start + offset; a frame length
    known at import keeps the constant DFT matrix, one from data gets the
    run-time one. Values known at import are checked at import."""
    from relax_xdsl.frontend import onnx_runtime_values as rt

    re, im = _split_complex(n, x, "signal")
    onesided = bool(n.attr("onesided", 1))
    if onesided and im is not None:
        n.fail("onesided=1 needs a real signal (last dim 1)")
    if not sr.at_run_time(n, 1):
        known_step = _known_int(n, 1, "frame_step")
        if known_step is None or known_step < 1:
            n.fail(f"frame_step must be an integer >= 1, got {known_step}")
    step = sr.positive(n, sr.int_scalar(n, 1, "frame_step"), "frame_step")
    frame: Any
    if window is not None:
        frame = canon(window.shape[0])
        data = rt.as_var(n.op("reshape", rt.dims_data(n, [frame]), shape=[]))
        if frame.is_Integer and int(frame) < 1:
            n.fail(f"the window length {frame} must be >= 1")
        frame_data = data if frame.is_Integer else sr.positive(n, data, "the window length")
        if sr.at_run_time(n, 3):
            given = sr.int_scalar(n, 3, "frame_length")
            frame_data = sr.checked(n, frame_data, n.op("equal", given, frame_data),
                                    "frame_length must equal the window length (the checked index is 1 when not)")
        elif n.optional(3) is not None and _known_int(n, 3, "frame_length") != frame:
            n.fail(f"frame_length {_known_int(n, 3, 'frame_length')} differs from the window length {frame}")
    elif sr.at_run_time(n, 3):
        frame_data = sr.positive(n, sr.int_scalar(n, 3, "frame_length"), "frame_length")
        frame = sr.size_of(n, frame_data, "frame_length")
    else:
        known = _known_int(n, 3, "frame_length")
        if known is None or known < 1:
            n.fail("needs frame_length or a window (the frame length) >= 1")
        frame = canon(known)
        frame_data = n.importer.tensor(Known(np.array(known, np.int64), "int64"), n)
    frames, starts = sr.frame_starts(n, re.shape[1], frame_data, step)
    offsets = n.op("reshape", n.op("arange", start=0.0, step=1.0, dtype="int64", length=[frame]), shape=[1, frame])
    idx = n.op("add", starts, offsets)
    re, im, win = _frames(n, re, im, idx, window)
    if frame.is_Integer:
        return _transform_last(n, re, im, int(frame), False, onesided, win)
    return sr.transform_last(n, re, im, frame_data, frame, False, onesided)


@register_converter("MelWeightMatrix", attrs=("output_datatype",))
def _mel_weight_matrix(n: Node) -> Value:
    """[dft_length // 2 + 1, num_mel_bins] triangular filters, computed at
    import from known inputs as the ONNX reference does (mel bins spaced by
    (high - low) / (num_mel_bins + 2), bin edges floored); any input given
    as data: sr.mel_weight_matrix, when it runs."""
    dtype = onnx_dtype(int(n.attr("output_datatype", 1)), f"node {n.name!r} (MelWeightMatrix) output_datatype")
    if any(sr.at_run_time(n, i) for i in range(5)):
        return sr.mel_weight_matrix(n, dtype)
    bins = _known_int(n, 0, "num_mel_bins")
    length = _known_int(n, 1, "dft_length")
    rate = _known_int(n, 2, "sample_rate")
    low, high = n.scalar(3, "lower_edge_hertz"), n.scalar(4, "upper_edge_hertz")
    if bins is None or length is None or rate is None or low is None or high is None:
        n.fail("all five inputs are required")
    if bins < 1 or length < 1 or rate < 1:
        n.fail(f"num_mel_bins ({bins}), dft_length ({length}) and sample_rate ({rate}) must be >= 1")
    if not 0 <= low < high <= rate / 2:
        n.fail(f"need 0 <= lower_edge_hertz ({low}) < upper_edge_hertz ({high}) <= sample_rate / 2 ({rate / 2})")
    spec_bins = length // 2 + 1

    def mel(hz: float) -> float:
        return 2595 * math.log10(1 + hz / 700)

    step = (mel(high) - mel(low)) / (bins + 2)
    edges = [int(((length + 1) * 700 * math.expm1((i * step + mel(low)) / 2595 * math.log(10))) // rate)
             for i in range(bins + 2)]
    out = np.zeros((spec_bins, bins))
    for i in range(bins):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        if mid == lo:
            out[mid, i] = 1
        else:
            for j in range(lo, mid + 1):
                out[j, i] = (j - lo) / (mid - lo)
        for j in range(mid, hi):
            out[j, i] = (hi - j) / (hi - mid)
    return Known(out.astype(dtype), dtype)


# -- quantization ---------------------------------------------------------------------------------------------------

_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
           "int32": (-(2**31), 2**31 - 1)}


def _round_half_even(n: Node, v: Value) -> Value:
    """Round half to even (ONNX's and numpy's rounding), composed from floor:
    halves go to the even neighbour, exactly, for every float."""
    dt = v.dtype
    f = n.op("floor", v)
    frac = n.op("subtract", v, f)
    odd = n.op("subtract", f, n.op("multiply", _const(2, dt), n.op("floor", n.op("multiply", f, _const(0.5, dt)))))
    up = n.op("where", n.op("greater", frac, _const(0.5, dt)), _const(1, dt),
              n.op("where", n.op("equal", frac, _const(0.5, dt)), odd, _const(0, dt)))
    return n.op("add", f, up)


def _saturate(n: Node, v: Value, dtype: str) -> Value:
    lo, hi = _QRANGE[dtype]
    return n.op("astype", n.op("clip", v, min=float(lo), max=float(hi)), dtype=dtype)


def _along(n: Node, param: Value, x: Value, axis: int, block: int, what: str) -> Value:
    """A scale / zero point shaped to broadcast against x: a scalar (or one
    element) as is, a 1-d one along `axis`, a blocked one (x's rank) repeated
    block_size times along `axis`."""
    if param.ndim == 0 or (param.ndim == 1 and block == 0 and _static(n, param.shape[0], what) == 1):
        return param if param.ndim == 0 else n.op("reshape", param, shape=[])
    axis = n.axis(axis, x.ndim)
    if block == 0:
        if param.ndim != 1:
            n.fail(f"{what} must be a scalar or 1-d (per axis), got rank {param.ndim} (blocked needs block_size)")
        return n.op("reshape", param, shape=[param.shape[0]] + [1] * (x.ndim - axis - 1))
    if param.ndim != x.ndim:
        n.fail(f"blocked {what} must have the input's rank {x.ndim}, got rank {param.ndim}")
    dim = _static(n, x.shape[axis], f"the blocked dim {axis}")
    if _static(n, param.shape[axis], f"{what} dim {axis}") != -(-dim // block):
        n.fail(f"{what} dim {axis} is {dim_to_str(canon(param.shape[axis]))}, expected ceil({dim} / {block})")
    return n.op("take", param, Known(np.arange(dim) // block, "int64"), axis=axis)


def _quant_axes(n: Node, x: Value) -> tuple[int, int]:
    axis = int(n.attr("axis", 1))  # checked where a per-axis or blocked parameter uses it
    block = int(n.attr("block_size", 0))
    if block < 0:
        n.fail(f"block_size must be >= 0, got {block}")
    return axis, block


def _quantize(n: Node, x: Value, scale: Value, zp: Value | None, dtype: str) -> Value:
    """saturate(round_half_even(x / scale) + zero_point) in dtype, computed in float32 (float64 for float64)."""
    ct = "float64" if x.dtype == "float64" else "float32"
    xf = x if x.dtype == ct else n.op("astype", x, dtype=ct)
    sf = scale if scale.dtype == ct else n.op("astype", scale, dtype=ct)
    q = _round_half_even(n, n.op("divide", xf, sf))
    if zp is not None:
        q = n.op("add", q, n.op("astype", zp, dtype=ct))
    return _saturate(n, q, dtype)


@register_converter("QuantizeLinear", attrs=("axis", "block_size", "output_dtype", "saturate"))
def _quantize_linear(n: Node) -> Value:
    """Per-tensor, per-axis and blocked; int8, uint8, int16, uint16."""
    x, scale, zp = _float_input(n, 0, "x"), _float_input(n, 1, "y_scale"), n.optional(2)
    out = onnx_dtype(int(n.attr("output_dtype", 0)), f"node {n.name!r} (QuantizeLinear) output_dtype") \
        if n.attr("output_dtype", 0) else (zp.dtype if zp is not None else "uint8")
    if out not in ("int8", "uint8", "int16", "uint16"):
        n.fail(f"output type {out} is not supported (int8, uint8, int16, uint16)")
    if zp is not None and zp.dtype != out:
        n.fail(f"y_zero_point has dtype {zp.dtype} but the output type is {out}")
    axis, block = _quant_axes(n, x)
    y = _quantize(n, x, _along(n, scale, x, axis, block, "y_scale"),
                  None if zp is None else _along(n, zp, x, axis, block, "y_zero_point"), out)
    return y


@register_converter("DequantizeLinear", attrs=("axis", "block_size", "output_dtype"))
def _dequantize_linear(n: Node) -> Value:
    """(x - zero_point) * scale, per-tensor, per-axis and blocked; x int8,
    uint8, int16, uint16 or int32."""
    x, scale, zp = n.input(0, "x"), _float_input(n, 1, "x_scale"), n.optional(2)
    if x.dtype not in ("int8", "uint8", "int16", "uint16", "int32"):
        n.fail(f"x must be int8, uint8, int16, uint16 or int32, got {x.dtype}")
    if zp is not None and zp.dtype != x.dtype:
        n.fail(f"x_zero_point has dtype {zp.dtype} but x has {x.dtype}")
    out = scale.dtype
    if n.attr("output_dtype", 0):
        out = onnx_dtype(int(n.attr("output_dtype")), f"node {n.name!r} (DequantizeLinear) output_dtype")
        if out != scale.dtype:
            n.fail(f"output_dtype {out} differs from x_scale's dtype {scale.dtype}")
    axis, block = _quant_axes(n, x)
    v = n.op("astype", x, dtype="int32")
    if zp is not None:
        v = n.op("subtract", v, n.op("astype", _along(n, zp, x, axis, block, "x_zero_point"), dtype="int32"))
    return n.op("multiply", n.op("astype", v, dtype=out), _along(n, scale, x, axis, block, "x_scale"))


@register_converter("DynamicQuantizeLinear")
def _dynamic_quantize_linear(n: Node) -> list[Value]:
    """uint8 output by definition: only for inputs known at import."""
    x = _float_input(n, 0, "x")
    f32 = "float32"
    xf = x if x.dtype == f32 else n.op("astype", x, dtype=f32)
    lo = n.op("minimum", n.op("min", xf), _const(0, f32))
    hi = n.op("maximum", n.op("max", xf), _const(0, f32))
    scale = n.op("divide", n.op("subtract", hi, lo), _const(255, f32))
    zp = _saturate(n, _round_half_even(n, n.op("subtract", _const(0, f32), n.op("divide", lo, scale))), "uint8")
    y = _quantize(n, xf, scale, zp, "uint8")
    return [y, scale, zp]


def _int32_operand(n: Node, v: Value, zp: Value | None, zp_shape: list[Any] | None, what: str) -> Value:
    """astype(v, int32) - zero_point: exact, the products then accumulate in int32."""
    if v.dtype not in ("int8", "uint8"):
        n.fail(f"{what} must be int8 or uint8, got {v.dtype}")
    if zp is not None and zp.dtype != v.dtype:
        n.fail(f"{what}'s zero point has dtype {zp.dtype} but {what} has {v.dtype}")
    out = n.op("astype", v, dtype="int32")
    if zp is None:
        return out
    z = n.op("astype", zp, dtype="int32")
    if z.ndim == 1 and zp_shape is not None and _static(n, z.shape[0], f"{what}'s zero point") != 1:
        z = n.op("reshape", z, shape=zp_shape)
    elif z.ndim == 1:
        z = n.op("reshape", z, shape=[])
    return n.op("subtract", out, z)


def _matmul_integer(n: Node, a: Value, azp: Value | None, b: Value, bzp: Value | None) -> Value:
    if a.ndim < 2:
        n.fail(f"A must have rank >= 2, got rank {a.ndim}")
    ai = _int32_operand(n, a, azp, [a.shape[-2], 1], "A")
    bi = _int32_operand(n, b, bzp, [b.shape[-1]] if b.ndim else None, "B")
    return n.op("matmul", ai, bi)


@register_converter("MatMulInteger")
def _matmul_integer_conv(n: Node) -> Value:
    """int8 matmul with int32 accumulation (exact, wrapping as int32)."""
    return _matmul_integer(n, n.input(0, "A"), n.optional(2), n.input(1, "B"), n.optional(3))


def _requantize(n: Node, acc: Value, scale: Value, zp: Value | None, out: str) -> Value:
    """quantize(acc * scale) with zero point zp (scale already a / y)."""
    q = _round_half_even(n, n.op("multiply", n.op("astype", acc, dtype="float32"), scale))
    if zp is not None:
        q = n.op("add", q, n.op("astype", zp, dtype="float32"))
    return _saturate(n, q, out)


def _scale32(n: Node, v: Value) -> Value:
    return v if v.dtype == "float32" else n.op("astype", v, dtype="float32")


def _scalar_param(n: Node, v: Value, what: str) -> Value:
    if v.ndim > 1 or (v.ndim == 1 and _static(n, v.shape[0], what) != 1):
        n.fail(f"{what} must be a scalar (per-tensor), got shape [{', '.join(dim_to_str(canon(d)) for d in v.shape)}]")
    return v if v.ndim == 0 else n.op("reshape", v, shape=[])


@register_converter("QLinearMatMul")
def _qlinear_matmul(n: Node) -> Value:
    a, a_s, a_zp = n.input(0, "a"), n.input(1, "a_scale"), n.input(2, "a_zero_point")
    b, b_s, b_zp = n.input(3, "b"), n.input(4, "b_scale"), n.input(5, "b_zero_point")
    y_s, y_zp = n.input(6, "y_scale"), n.input(7, "y_zero_point")
    acc = _matmul_integer(n, a, _scalar_param(n, a_zp, "a_zero_point"), b, _scalar_param(n, b_zp, "b_zero_point"))
    scale = n.op("divide", n.op("multiply", _scale32(n, _scalar_param(n, a_s, "a_scale")),
                                _scale32(n, _scalar_param(n, b_s, "b_scale"))), _scale32(n, _scalar_param(n, y_s, "y_scale")))
    y = _requantize(n, acc, scale, _scalar_param(n, y_zp, "y_zero_point"), y_zp.dtype)
    return y


_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _conv_integer(n: Node, x: Value, xzp: Value | None, w: Value, wzp: Value | None) -> Value:
    """conv2d over astype(x, int32) - x_zp and astype(w, int32) - w_zp (per
    output channel): padding adds zeros of the shifted values, as ONNX's."""
    from relax_xdsl.frontend.onnx_ops import _conv

    xi = _int32_operand(n, x, xzp, None, "x")
    wi = _int32_operand(n, w, wzp, [w.shape[0]] + [1] * (w.ndim - 1), "w")
    conv = Node(n.importer, "Conv", n.name, [xi, wi], {k: v for k, v in n.attrs.items() if k in _CONV_ATTRS},
                n.outputs, n.opset)
    return _conv(conv)


@register_converter("ConvInteger", attrs=_CONV_ATTRS)
def _conv_integer_conv(n: Node) -> Value:
    """1-d and 2-d int8 convolution with int32 accumulation."""
    return _conv_integer(n, n.input(0, "x"), n.optional(2), n.input(1, "w"), n.optional(3))


@register_converter("QLinearConv", attrs=_CONV_ATTRS)
def _qlinear_conv(n: Node) -> Value:
    """Per-tensor x / y, per-tensor or per-output-channel w; B an int32 bias
    added to the accumulator."""
    x, x_s, x_zp = n.input(0, "x"), n.input(1, "x_scale"), n.input(2, "x_zero_point")
    w, w_s, w_zp = n.input(3, "w"), n.input(4, "w_scale"), n.input(5, "w_zero_point")
    y_s, y_zp, bias = n.input(6, "y_scale"), n.input(7, "y_zero_point"), n.optional(8)
    acc = _conv_integer(n, x, _scalar_param(n, x_zp, "x_zero_point"), w, w_zp)
    if bias is not None:
        if bias.dtype != "int32" or bias.ndim != 1:
            n.fail(f"B must be a 1-d int32 tensor, got rank {bias.ndim} {bias.dtype}")
        acc = n.op("add", acc, n.op("reshape", bias, shape=[bias.shape[0]] + [1] * (acc.ndim - 2)))
    ws = _scale32(n, w_s)
    if ws.ndim == 1 and _static(n, ws.shape[0], "w_scale") != 1:
        ws = n.op("reshape", ws, shape=[ws.shape[0]] + [1] * (acc.ndim - 2))
    elif ws.ndim == 1:
        ws = n.op("reshape", ws, shape=[])
    scale = n.op("divide", n.op("multiply", _scale32(n, _scalar_param(n, x_s, "x_scale")), ws),
                 _scale32(n, _scalar_param(n, y_s, "y_scale")))
    y = _requantize(n, acc, scale, _scalar_param(n, y_zp, "y_zero_point"), y_zp.dtype)
    return y
