"""Static memory planning for the intermediates of a host function.

Used by `lower-graph` (option `plan-memory`, on by default): every
intermediate whose size is known once the inputs are bound (its byte size a
symbolic expression over the input symbols) and that is not returned gets
an offset in one *pool*, allocated once per call right after the inputs are
bound; each intermediate is a `memref.view` into it. Buffers whose
lifetimes do not overlap may share bytes.

Placement is greedy by size (the arena planning of TFLite and others), with
symbolic sizes: buffers are placed largest first (sizes compared at a
representative binding, every symbol = 64; only the order depends on it),
each at the lowest candidate offset -- 0 or the end of a buffer it overlaps
in time -- that provably clears every already placed buffer it overlaps
in time, for every binding; if no candidate is provable, at the symbolic
Max of their ends, which always is. So the plan is valid for all bindings,
and offsets and the pool size are expressions lower-graph computes at run
time. Sizes are rounded up to 64 bytes (cache lines, SIMD alignment).

The plan's figures -- bytes without sharing, the peak live at once, the
pool -- are symbolic too, and lower-graph records them on the host
function (`relax.memory_plan`), for any binding to be read off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from relax_xdsl.shape import canon

ALIGN = 64
"""Bytes: every buffer starts on a cache line (and a SIMD-aligned address)."""


def aligned(nbytes: sympy.Expr) -> sympy.Expr:
    """`nbytes` rounded up to a multiple of ALIGN (as it is when provably one)."""
    if nbytes.is_Integer:
        return sympy.Integer(-(-int(nbytes) // ALIGN) * ALIGN)
    if (nbytes / ALIGN).is_integer:
        return nbytes
    return canon(ALIGN * sympy.ceiling(nbytes / ALIGN))


def _provably_ge(a: sympy.Expr, b: sympy.Expr) -> bool:
    """a >= b for every binding of the (positive integer) symbols. Sizes and
    offsets are sums and Maxes of nonnegative terms, so ceilings can be
    bounded for sympy: ceiling(x) >= x in `a`, ceiling(x) < x + 1 in `b`."""
    diff = sympy.expand(a - b)
    if diff.is_nonnegative:
        return True
    if not (a.has(sympy.ceiling) or b.has(sympy.ceiling)):
        return False
    low = a.replace(sympy.ceiling, lambda x: x)
    high = b.replace(sympy.ceiling, lambda x: x + 1)
    return bool(sympy.expand(low - high).is_nonnegative)


REPRESENTATIVE = 64
"""The symbol value at which sizes are compared to order placement."""


def _at(e: sympy.Expr, value: int = REPRESENTATIVE) -> int:
    return int(e.subs({s: value for s in e.free_symbols}))


@dataclass
class Buffer:
    size: sympy.Expr  # aligned bytes
    start: int
    end: int | None = None  # None: live to the end
    offset: sympy.Expr | None = None


@dataclass
class MemoryPlan:
    """Call `take` when a buffer is allocated and `release` after its last
    use (in program order), then `place` once."""

    buffers: list[Buffer] = field(default_factory=list)
    unshared: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    peak: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    pool: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    _live: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    _clock: int = 0

    def take(self, nbytes: sympy.Expr) -> int:
        """A new buffer of `nbytes` bytes (a negative size, which lower-graph
        reports before use, counts as 0); returns its id."""
        size = aligned(canon(sympy.Max(nbytes, 0)) if not nbytes.is_nonnegative else canon(nbytes))
        self.unshared = canon(self.unshared + size)
        self._live = canon(self._live + size)
        self.peak = canon(sympy.Max(self.peak, self._live))
        self._clock += 1
        self.buffers.append(Buffer(size, self._clock))
        return len(self.buffers) - 1

    def release(self, buffer: int) -> None:
        b = self.buffers[buffer]
        self._clock += 1
        b.end = self._clock
        self._live = canon(self._live - b.size)

    def place(self) -> list[sympy.Expr]:
        """Each buffer's byte offset in the pool (and sets `pool`)."""
        end_of_time = self._clock + 1

        def overlap(a: Buffer, b: Buffer) -> bool:
            return a.start < (b.end or end_of_time) and b.start < (a.end or end_of_time)

        placed: list[Buffer] = []
        for b in sorted(self.buffers, key=lambda x: (-_at(x.size), x.start)):
            conflicts = [p for p in placed if overlap(p, b)]
            ends = [canon(p.offset + p.size) for p in conflicts]  # type: ignore[operator]
            candidates = sorted({sympy.Integer(0), *ends}, key=_at)
            b.offset = next((c for c in candidates if all(
                _provably_ge(c, e) or _provably_ge(p.offset, c + b.size)  # type: ignore[arg-type]
                for p, e in zip(conflicts, ends))), None)
            if b.offset is None:
                b.offset = canon(sympy.Max(*ends))
            placed.append(b)
        tops = [canon(b.offset + b.size) for b in self.buffers]  # type: ignore[operator]
        self.pool = canon(sympy.Max(*tops)) if tops else sympy.Integer(0)
        return [b.offset for b in self.buffers]  # type: ignore[misc]
