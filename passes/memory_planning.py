"""Static memory planning for the intermediates of a host function.

Used by `lower-graph` (option `plan-memory`, on by default): every
intermediate whose size is known once the inputs are bound (its byte size a
symbolic expression over the input symbols) and that is not returned gets
an offset in one *pool*, allocated once per call right after the inputs are
bound; each intermediate is a `memref.view` into it. Buffers whose
lifetimes do not overlap may share bytes.

Placement is greedy (the arena planning of TFLite and others), with
symbolic sizes: buffers are placed one by one -- largest first, sizes
compared with every symbol = 64 and again = 4096, or longest-lived first;
the order whose pool comes closest to the live peak is kept -- each at the
lowest candidate offset -- 0 or the end of a buffer it overlaps in time --
that provably clears every already placed buffer it overlaps in time, for
every binding; if no candidate is provable, at the symbolic Max of their
ends, which always is. Only the order depends on the sample bindings, so
the plan is valid for all bindings, and offsets and the pool size are
expressions lower-graph computes at run time. Sizes are rounded up to 64
bytes (cache lines, SIMD alignment).

The plan's figures -- bytes without sharing, the peak live at once, the
pool -- are symbolic too, and lower-graph records them on the host
function (`relax.memory_plan`), for any binding to be read off.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

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


@functools.lru_cache(maxsize=65536)
def _provably_ge(a: sympy.Expr, b: sympy.Expr) -> bool:
    """a >= b for every binding of the (nonnegative integer) symbols. Sizes and
    offsets are sums and Maxes of nonnegative terms: with the Maxes taken
    apart (`_alternatives`), a >= b when each of b's alternatives is under
    one of a's, and for those ceilings can be bounded for sympy: ceiling(x)
    >= x in `a`, ceiling(x) < x + 1 in `b`. (Sufficient, not necessary: a
    False only costs pool bytes.)"""
    if _refuted(a, b):
        return False  # no need for a symbolic proof
    highs, lows = _alternatives(a), _alternatives(b)
    if highs is None or lows is None:
        return False
    return all(any(_max_free_ge(h, low) for h in highs) for low in lows)


def _refuted(a: sympy.Expr, b: sympy.Expr) -> bool:
    """a < b at some sample binding (all symbols 0, 1, 3, 64 or 1024; 0 is
    skipped where a size divides by a symbol)."""
    for v in (0, 1, 3, 64, 1024):
        x, y = (e.xreplace({s: sympy.Integer(v) for s in e.free_symbols}) for e in (a, b))
        if x.is_Integer and y.is_Integer and int(x) < int(y):
            return True
    return False


Linear = dict[sympy.Expr, Fraction]
"""An expanded sum as {atom: coefficient} (the constant under atom 1):
proofs subtract and compare these instead of expanding sympy sums, which
for sizes over many symbols cost milliseconds each."""


@functools.lru_cache(maxsize=65536)
def _linear(e: sympy.Expr) -> Linear:
    out: Linear = {}
    for term in sympy.Add.make_args(sympy.expand(e)):
        coeff, atom = term.as_coeff_Mul()
        if not coeff.is_Rational:
            coeff, atom = sympy.Integer(1), term
        # Python fractions: sympy's numbers cost microseconds per operation
        out[atom] = out.get(atom, 0) + Fraction(int(coeff.p), int(coeff.q))
    return {a: c for a, c in out.items() if c != 0}


def _minus(a: Linear, b: Linear) -> Linear:
    out = dict(a)
    for atom, c in b.items():
        out[atom] = out.get(atom, 0) - c
    return {x: c for x, c in out.items() if c != 0}


@functools.lru_cache(maxsize=65536)
def _max_free_ge(a: sympy.Expr, b: sympy.Expr) -> bool:
    """`_provably_ge` for Max-free a and b: a - b is a sum of nonnegative
    terms once each ceiling of b is cancelled against a ceiling of a with a
    provably larger argument (ceiling is monotone: the sizes of a chain of
    growing buffers, 64*ceiling((n0 + n1)/16) against 64*ceiling(n0/16),
    compare only this way), the ceilings left bounded by ceiling(x) >= x in
    a and ceiling(x) < x + 1 in b."""
    if _refuted(a, b):
        return False
    diff = _minus(_linear(a), _linear(b))
    if _nonnegative(diff):
        return True
    if not any(atom.has(sympy.ceiling) for atom in diff):
        return _small_and_nonnegative(diff)
    diff = _cancel_monotone_ceilings(diff)
    if _nonnegative(diff):
        return True
    bounded: Linear = {}
    for atom, coeff in diff.items():
        bound = _bound_ceilings(atom, coeff)
        if bound is None:
            return False
        for x, c in bound.items():
            bounded[x] = bounded.get(x, 0) + c
    bounded = {x: c for x, c in bounded.items() if c != 0}
    return _nonnegative(bounded) or _small_and_nonnegative(bounded)


def _bound_ceilings(atom: sympy.Expr, coeff: Fraction) -> Linear | None:
    """A lower bound of `coeff * atom` without ceilings: each by its
    argument where the term is positive, by its argument + 1 where it is
    negative -- valid when the atom is a product of (nonnegative) symbols and
    ceilings of nonnegative sums (every factor nonnegative, so the product
    is monotone in each); None for any other atom with a ceiling."""
    if not atom.has(sympy.ceiling):
        return {atom: coeff}
    shift = 0 if coeff >= 0 else 1
    if isinstance(atom, sympy.ceiling):  # the common case, kept off sympy.expand
        arg = _linear(atom.args[0])
        if atom.args[0].has(sympy.ceiling) or not _nonnegative(arg):
            return None
        out = {x: coeff * c for x, c in arg.items()}
        out[sympy.Integer(1)] = out.get(sympy.Integer(1), 0) + coeff * shift
        return out
    factors = []
    for f in sympy.Mul.make_args(atom):
        if isinstance(f, sympy.ceiling) and not f.args[0].has(sympy.ceiling) and _nonnegative(_linear(f.args[0])):
            factors.append(f.args[0] + shift)
        elif isinstance(f, sympy.Symbol) and f.is_nonnegative:
            factors.append(f)
        else:
            return None
    return {x: coeff * c for x, c in _linear(sympy.Mul(*factors)).items()}


def _cancel_monotone_ceilings(diff: Linear) -> Linear:
    """`diff` less pairs c*ceiling(q) - c*ceiling(p) with q >= p provably
    (each such pair is nonnegative), matched greedily."""
    positive = {a: c for a, c in diff.items() if isinstance(a, sympy.ceiling) and c > 0}
    negative = {a: -c for a, c in diff.items() if isinstance(a, sympy.ceiling) and c < 0}
    if not positive or not negative:
        return diff
    out = dict(diff)
    for p, need in negative.items():
        for q in positive:
            if need == 0:
                break
            if positive[q] > 0 and _nonnegative(_minus(_linear(q.args[0]), _linear(p.args[0]))):
                used = min(need, positive[q])
                positive[q] -= used
                need -= used
                out[q] -= used
                out[p] += used
    return {x: c for x, c in out.items() if c != 0}


def _nonnegative(e: Linear) -> bool:
    """Every term a nonnegative multiple of a nonnegative atom."""
    return all(c >= 0 and _nonnegative_atom(atom) for atom, c in e.items())


@functools.lru_cache(maxsize=65536)
def _nonnegative_atom(atom: sympy.Expr) -> bool:
    """A product of nonnegative symbols, positive powers, and ceilings, floors,
    positive-divisor mods, Mins and Maxes of nonnegative sums."""
    for f in sympy.Mul.make_args(atom):
        base = f.base if isinstance(f, sympy.Pow) and f.exp.is_Integer and f.exp > 0 else f
        if base == 1 or isinstance(base, sympy.Symbol) and base.is_nonnegative:
            continue
        if isinstance(base, (sympy.ceiling, sympy.floor)) and _nonnegative(_linear(base.args[0])):
            continue
        if isinstance(base, sympy.Mod) and base.args[1].is_positive:
            continue
        if isinstance(base, sympy.Min) and all(_nonnegative(_linear(x)) for x in base.args):
            continue
        if isinstance(base, sympy.Max) and any(_nonnegative(_linear(x)) for x in base.args):
            continue
        return False
    return True


SMALL_FOR_SYMPY = 8
"""Terms up to which sympy's own sign rules are asked when the term-wise
ones fail (they cost milliseconds on long sums)."""


def _small_and_nonnegative(e: Linear) -> bool:
    return len(e) <= SMALL_FOR_SYMPY and bool(
        sympy.Add(*(sympy.Rational(c.numerator, c.denominator) * a for a, c in e.items())).is_nonnegative)


MAX_ALTERNATIVES = 64


@functools.lru_cache(maxsize=65536)
def _alternatives(e: sympy.Expr) -> tuple[sympy.Expr, ...] | None:
    """Max-free expressions whose max is `e` (Maxes in sums and positive
    multiples distributed out), or None past MAX_ALTERNATIVES of them or
    for a Max elsewhere (under a ceiling, say)."""
    if not e.has(sympy.Max):
        return (e,)
    parts: list[tuple[sympy.Expr, ...] | None]
    if isinstance(e, sympy.Max):
        parts = [_alternatives(arg) for arg in e.args]
        if any(p is None for p in parts):
            return None
        out = tuple(dict.fromkeys(x for p in parts if p is not None for x in p))
    elif isinstance(e, sympy.Add):
        out = (sympy.Integer(0),)
        for arg in e.args:
            alts = _alternatives(arg)
            if alts is None or len(out) * len(alts) > MAX_ALTERNATIVES:
                return None
            out = tuple(dict.fromkeys(x + y for x in out for y in alts))
    elif isinstance(e, sympy.Mul) and e.args[0].is_Number and e.args[0] > 0:
        alts = _alternatives(sympy.Mul(*e.args[1:]))
        if alts is None:
            return None
        k = e.args[0]
        out = tuple(k * x for x in alts)
        if k.is_Integer and 2 <= int(k) <= 4 and math.comb(len(alts) + int(k) - 1, int(k)) <= MIXED_ALTERNATIVES:
            # k * Max(x, y) is also the max of every sum of k of its terms
            # (x + y among them), which a bound like 2 * Max(x, y) >= x + y needs
            out = tuple(dict.fromkeys(sympy.Add(*c) for c in itertools.combinations_with_replacement(alts, int(k))))
    else:
        return None
    return out if len(out) <= MAX_ALTERNATIVES else None


MIXED_ALTERNATIVES = 8
"""At most this many sums of k terms stand for k * Max(...) (more would
push the sums they appear in past MAX_ALTERNATIVES and lose the proof)."""

PROOFS_PER_TERM = 8
"""Symbolic proofs tried per term of a max (after cheap numeric
refutation): a term none of them shows dominated stays in the Max, which
costs a larger expression, never a wrong one."""


def symbolic_max(exprs: list[sympy.Expr]) -> sympy.Expr:
    """The max of `exprs` (0 for none), those provably under another one
    dropped first: sympy's own Max simplification compares every pair
    symbolically, which cost most of lower-graph's time on the long lists
    (the live totals) it left for it. Each term is compared with the
    others largest first (at the representative binding), those that are
    smaller at some sample binding skipped, at most PROOFS_PER_TERM proved:
    on a chain of growing live totals the largest dominates at the first
    try, so the work is linear, not quadratic, in the terms. Evaluated
    still, in the form a printed and parsed expression takes."""
    by_size = sorted(range(len(exprs)), key=lambda j: -_at(exprs[j]))
    kept: list[sympy.Expr] = []
    for i, t in enumerate(exprs):
        if t in kept:
            continue
        tried, dominated = 0, False
        for j in by_size:
            u = exprs[j]
            if j == i or _refuted(u, t):
                continue
            if _provably_ge(u, t) and (j < i or not _provably_ge(t, u)):
                dominated = True
                break
            tried += 1
            if tried >= PROOFS_PER_TERM:
                break
        if not dominated:
            kept.append(t)
    if not kept:
        return sympy.Integer(0)
    return kept[0] if len(kept) == 1 else canon(sympy.Max(*kept))


REPRESENTATIVE = 64
"""The symbol value at which sizes are compared to order placement."""


@functools.lru_cache(maxsize=65536)
def _at(e: sympy.Expr, value: int = REPRESENTATIVE) -> int:
    return int(e.xreplace({s: sympy.Integer(value) for s in e.free_symbols}))


@dataclass
class Buffer:
    size: sympy.Expr  # aligned bytes
    start: int
    end: int | None = None  # None: live to the end


@dataclass
class MemoryPlan:
    """Call `take` when a buffer is allocated and `release` after its last
    use (in program order), then `place` once."""

    buffers: list[Buffer] = field(default_factory=list)
    unshared: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    pool: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    _live: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    _live_highs: list[sympy.Expr] = field(default_factory=list)
    _clock: int = 0
    _peak: tuple[int, sympy.Expr] | None = None  # (live totals it covers, the peak)

    @property
    def peak(self) -> sympy.Expr:
        """The most bytes live at once (the max over the allocations' live
        totals; kept until the next `take`: place and lower-graph both ask)."""
        if self._peak is None or self._peak[0] != len(self._live_highs):
            self._peak = (len(self._live_highs), symbolic_max(self._live_highs))
        return self._peak[1]

    def take(self, nbytes: sympy.Expr) -> int:
        """A new buffer of `nbytes` bytes (a negative size, which lower-graph
        reports before use, counts as 0); returns its id."""
        size = aligned(canon(sympy.Max(nbytes, 0)) if not nbytes.is_nonnegative else canon(nbytes))
        self.unshared = canon(self.unshared + size)
        self._live = canon(self._live + size)
        self._live_highs.append(self._live)
        self._clock += 1
        self.buffers.append(Buffer(size, self._clock))
        return len(self.buffers) - 1

    def release(self, buffer: int) -> None:
        b = self.buffers[buffer]
        self._clock += 1
        b.end = self._clock
        self._live = canon(self._live - b.size)

    def place(self) -> list[sympy.Expr]:
        """Each buffer's byte offset in the pool (and sets `pool`): greedy
        placements in a few orders (largest first as sizes compare at small
        and at large symbol values, then by lifetime), keeping the one whose
        pool is closest to the live peak over a range of bindings."""
        orders = [
            sorted(self.buffers, key=lambda x: (-_at(x.size), x.start)),
            sorted(self.buffers, key=lambda x: (-_at(x.size, 4096), x.start)),
            sorted(self.buffers, key=lambda x: (-((x.end or self._clock + 1) - x.start), -_at(x.size), x.start)),
        ]
        peak = self.peak
        best: tuple[float, list[sympy.Expr], list[sympy.Expr]] | None = None
        tried: set[tuple[int, ...]] = set()
        for order in orders:
            key = tuple(id(b) for b in order)
            if key in tried:
                continue
            tried.add(key)
            offsets, tops = self._place(order)
            # compared numerically: building each symbolic Max costs seconds
            worst = max(max(_at(t, v) for t in tops) / max(1, _at(peak, v)) for v in (16, 128, 1024)) \
                if tops else 0.0
            if best is None or worst < best[0]:
                best = (worst, offsets, tops)
            if worst <= 1.0:
                break  # the live peak: no order does better
        assert best is not None
        _, offsets, tops = best
        self.pool = symbolic_max(tops)
        return offsets

    def _place(self, order: list[Buffer]) -> tuple[list[sympy.Expr], list[sympy.Expr]]:
        """Greedy placement in `order`: each buffer at the lowest candidate
        offset (0 or the end of a buffer alive with it) that provably clears
        every buffer alive with it already placed, else above them all.
        Returns the offsets and each buffer's end (the pool is their max)."""
        end_of_time = self._clock + 1

        def overlap(a: Buffer, b: Buffer) -> bool:
            return a.start < (b.end or end_of_time) and b.start < (a.end or end_of_time)

        offset: dict[int, sympy.Expr] = {}
        placed: list[Buffer] = []
        for b in order:
            conflicts = [p for p in placed if overlap(p, b)]
            ends = [canon(offset[id(p)] + p.size) for p in conflicts]
            candidates = sorted({sympy.Integer(0), *ends}, key=_at)
            chosen = next((c for c in candidates if all(
                _provably_ge(c, e) or _provably_ge(offset[id(p)], c + b.size)
                for p, e in zip(conflicts, ends))), None)
            offset[id(b)] = chosen if chosen is not None else symbolic_max(ends)
            placed.append(b)
        offsets = [offset[id(b)] for b in self.buffers]
        return offsets, [canon(o + b.size) for o, b in zip(offsets, self.buffers)]
