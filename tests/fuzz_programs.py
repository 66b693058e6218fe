"""A hypothesis strategy for random graph functions that are valid by
construction: symbolic inputs over the symbols n, m, k (reused at random,
with static dims and 1s for broadcasting), then a random chain of ops each
chosen among those whose shape rule the current values satisfy:
elementwise (unary, binary with broadcasting, compare + where), reductions
(with and without keepdims), reshapes (merge, split, flatten), permutes,
expand/squeeze, concat and split (also along symbolic dims: 2*n splits back
into n), slices (symbolic bounds), matmul chains (static weights, symbolic
inner dims, batched), softmax and layer_norm.

Every value carries a bound on its magnitude; ops that could overflow or
cancel catastrophically are squashed first (tanh), so float32 results of
different summation orders agree within a tolerance scaled by the largest
bound in the program (`Program.atol`).

Edge cases, drawn for some programs: inputs holding NaN and +-inf; static
dims of 0 (empty axes), and then an extra binding of every symbol to
2**32 + 3 (inputs stay empty, intermediates that are not overflow any size:
every level must give the same values or the same error; not drawn where an
intermediate would be large yet allocatable, see `huge_binding`); hostile function
and parameter names (quotes, backslashes, C keywords, the C backend's own
helper names). `int_programs` draws integer programs (int8 .. int64) over
INT_MIN / INT_MAX / 0 / -1, where wrapping must match numpy's."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from hypothesis import strategies as st
from relax_xdsl.dialects.relax import TensorType

import relax_xdsl as rx
from relax_xdsl import op

SYMBOLS = ("n", "m", "k")
BINDINGS = ({"n": 1, "m": 1, "k": 1}, {"n": 3, "m": 2, "k": 4}, {"n": 2, "m": 5, "k": 1})
"""Every program runs at each: all ones, then mixed sizes (k = 1 again)."""
MAX_SIZE = 5
LARGE = {"n": 2**32 + 3, "m": 2**32 + 3, "k": 2**32 + 3}
LARGE_MANY = {"n": 2**20 + 1, "m": 2**20 + 1, "k": 2**20 + 1}
"""The extra binding of programs whose inputs all have an empty axis: past
2**32 where an input has one symbolic dim, else 2**20 + 1 (numpy refuses an
empty array whose other dims multiply past 2**63 bytes)."""

HOSTILE_FUNCTIONS = ("main", 'f"; __attribute__((constructor)) void x(void) { abort(); } //', "f\\n\\\\", "f\nx", "f-1",
                     "f_1", "rx_alloc", "int", "return", "memcpy", "a0", "*/ f /*", "naïve ψ", "rxf_main")
HOSTILE_PARAMS = ("x", "rx_g", "rx_err", "a0", "r0", "int", "return", "while", "main", "x.y", "a$b", "a-b", "_",
                  "rx_cleanup", "NULL", "stdin")
EDGE_FLOATS = (np.nan, np.inf, -np.inf)

UNARY = {"tanh": 1.0, "sigmoid": 1.0, "erf": 1.0, "relu": None, "abs": None, "negative": None, "gelu": None,
         "gelu_tanh": None,
         "silu": None, "exp": "exp"}
BINARY = ("add", "subtract", "multiply", "maximum", "minimum", "divide")
REDUCE = ("sum", "mean", "max", "min", "variance")
COMPARE = ("greater", "less", "greater_equal", "equal")
STEPS = ("unary", "binary", "binary", "reduce", "where", "reshape", "permute", "expand_squeeze", "concat", "split",
         "slice", "matmul", "matmul", "softmax", "layer_norm")


@dataclass
class Value:
    var: Any
    bound: float  # |every element| <= bound at every binding


@dataclass
class Program:
    module: Any
    steps: list[str]
    cases: list[tuple[np.ndarray, ...]]
    max_bound: float = 1.0
    ops: set[str] = field(default_factory=set)
    name: str = "main"
    bindings: tuple[dict[str, int], ...] = BINDINGS
    edges: tuple[str, ...] = ()
    """Which edge cases it draws: "nan-inf", "empty", "large", "names"."""

    def __repr__(self) -> str:  # what hypothesis shows for a failing case: the IR
        return f"Program(steps={self.steps}, max_bound={self.max_bound})\n{rx.print_module(self.module)}"

    @property
    def atol(self) -> float:
        return 1e-5 * max(1.0, self.max_bound)


def _expr(dim: Any) -> sympy.Expr:
    """A dim (an int or a sympy expression from a Var's shape) as an expression."""
    return sympy.Integer(dim) if isinstance(dim, int) else dim


def size_bound(dim: Any) -> int:
    """The largest value `dim` takes over BINDINGS."""
    e = _expr(dim)
    return max(int(e.subs({s: b[s.name] for s in e.free_symbols})) for b in BINDINGS)


MAX_ELEMENTS = 2**16
"""The largest intermediate a program may compute at its huge binding (see `huge_binding`)."""
ALLOC_LIMIT = 1 << 30
"""The per-buffer allocation limit (bytes) the differential test sets while programs run."""


def elements(shape: tuple[Any, ...], binding: dict[str, int]) -> int:
    """How many elements a value of `shape` holds at `binding`."""
    count = 1
    for dim in shape:
        e = _expr(dim)
        count *= int(e.subs({s: binding[s.name] for s in e.free_symbols}))
    return count


def heavy_value(module: Any, binding: dict[str, int]) -> str | None:
    """A value of `module` that every level would really compute at `binding`
    though it is large: over MAX_ELEMENTS elements yet within ALLOC_LIMIT bytes
    (so not refused either), as its op and type; None when there is none."""
    for o in module.walk():
        for r in o.results:
            if isinstance(r.type, TensorType):
                count = elements(r.type.shape, binding)
                if MAX_ELEMENTS < count and count * np.dtype(r.type.dtype).itemsize <= ALLOC_LIMIT:
                    return f"{o.name} -> {r.type}"
    return None


def huge_binding(module: Any, shapes: list[list[Any]]) -> dict[str, int] | None:
    """The extra binding of a program whose inputs have an empty axis and a
    symbolic dim: LARGE, or LARGE_MANY where an input has several symbolic
    dims. None when the program has none, or when an intermediate would be
    large yet allocatable there (`heavy_value`): the binding is meant for
    empty values and refused allocations, while a reduction over the empty
    axis gives [k] of 2**20 + 1 elements at LARGE_MANY, which the interpreter
    computes element by element (one layer_norm's gamma and beta took it
    5.5 minutes of a fuzz run)."""
    if not any(isinstance(d, str) for shape in shapes for d in shape):
        return None
    many = max(sum(isinstance(d, str) for d in shape) for shape in shapes) > 1
    binding = LARGE_MANY if many else LARGE
    return None if heavy_value(module, binding) else binding


def _dims_equal(a: Any, b: Any) -> bool:
    return sympy.simplify(_expr(a) - _expr(b)) == 0


def broadcastable(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """NumPy broadcasting, dims compared symbolically (1 stretches)."""
    for x, y in zip(reversed(a), reversed(b)):
        if not (_dims_equal(x, y) or x == 1 or y == 1):
            return False
    return True


class _Gen:
    def __init__(self, draw: Any, fb: rx.FunctionBuilder):
        self.draw = draw
        self.fb = fb
        self.pool: list[Value] = []
        self.steps: list[str] = []
        self.max_bound = 1.0

    def pick(self, candidates: list[Value] | None = None) -> Value:
        """Mostly recent values, so chains grow deep, sometimes older ones."""
        cands = candidates if candidates is not None else self.pool
        recent = self.draw(st.booleans())
        if recent:
            return cands[-1]
        return cands[self.draw(st.integers(0, len(cands) - 1))]

    def add(self, var: Any, bound: float, step: str) -> Value:
        v = Value(var, bound)
        self.pool.append(v)
        self.steps.append(step)
        self.max_bound = max(self.max_bound, bound)
        return v

    def squash(self, v: Value, limit: float = 8.0) -> Value:
        """tanh(v) when v could exceed `limit` (keeps float32 error small)."""
        if v.bound <= limit:
            return v
        return Value(op.tanh(v.var), 1.0)

    def elements(self, v: Value, axes: list[int]) -> int:
        return math.prod(size_bound(v.var.shape[a]) for a in axes) if axes else 1

    def extreme(self, name: str, v: Value, axes: list[int]) -> str:
        """`name`, or "mean" where a max / min would reduce a static empty
        axis (an error at build time, as in numpy and ONNX)."""
        if name in ("max", "min") and any(v.var.shape[a] == 0 for a in axes):
            return "mean"
        return name

    # --- steps --------------------------------------------------------------------------------------------------

    def unary(self) -> None:
        v = self.pick()
        name = self.draw(st.sampled_from(sorted(UNARY)))
        kind = UNARY[name]
        if kind == "exp":
            v = self.squash(v, 3.0)
            self.add(op.exp(v.var), math.exp(v.bound), "exp")
        else:
            self.add(getattr(op, name)(v.var), kind if kind is not None else v.bound + 1.0, name)

    def _partner(self, a: Value) -> Value:
        """Another value broadcastable with `a`: from the pool, or a
        keepdims reduction of `a` (always compatible)."""
        cands = [v for v in self.pool if v is not a and broadcastable(a.var.shape, v.var.shape)]
        if cands and self.draw(st.booleans()):
            return self.pick(cands)
        if a.var.ndim and self.draw(st.booleans()):
            axes = self.draw(st.lists(st.integers(0, a.var.ndim - 1), min_size=1, unique=True))
            red = self.extreme(self.draw(st.sampled_from(["max", "mean"])), a, axes)
            return Value(getattr(op, red)(a.var, axis=sorted(axes), keepdims=True), a.bound)
        return a

    def binary(self) -> None:
        a = self.pick()
        b = self._partner(a)
        name = self.draw(st.sampled_from(BINARY))
        if self.draw(st.booleans()):
            a, b = b, a
        if name == "divide":  # a / (1 + |b|)
            b = Value(op.add(op.abs(b.var), op.ones([], "float32")), b.bound + 1)
            self.add(op.divide(a.var, b.var), a.bound, name)
        elif name == "multiply":
            a, b = self.squash(a, 30.0), self.squash(b, 30.0)
            self.add(op.multiply(a.var, b.var), a.bound * b.bound, name)
        elif name in ("add", "subtract"):
            self.add(getattr(op, name)(a.var, b.var), a.bound + b.bound, name)
        else:
            self.add(getattr(op, name)(a.var, b.var), max(a.bound, b.bound), name)

    def where(self) -> None:
        a = self.pick()
        b = self._partner(a)
        cmp = self.draw(st.sampled_from(COMPARE))
        cond = getattr(op, cmp)(a.var, b.var)
        self.add(op.where(cond, a.var, b.var), max(a.bound, b.bound), f"{cmp}+where")

    def reduce(self) -> None:
        v = self.pick([x for x in self.pool if x.var.ndim] or None)
        if not v.var.ndim:
            return self.unary()
        name = self.draw(st.sampled_from(REDUCE))
        every = self.draw(st.integers(0, 4)) == 0
        axes = None if every else sorted(self.draw(st.lists(st.integers(0, v.var.ndim - 1), min_size=1, unique=True)))
        name = self.extreme(name, v, list(range(v.var.ndim)) if axes is None else axes)
        keepdims = self.draw(st.booleans())
        count = self.elements(v, list(range(v.var.ndim)) if axes is None else axes)
        if name == "variance":
            v = self.squash(v, 8.0)
            bound = v.bound * v.bound
        elif name == "sum":
            bound = v.bound * count
        else:
            bound = v.bound
        self.add(getattr(op, name)(v.var, axis=axes, keepdims=keepdims), bound, name)
        return None

    def reshape(self) -> None:
        v = self.pick()
        shape = list(v.var.shape)
        if 0 in shape:  # an empty value: no reshape target is needed to test it (and dims of 0 are refused there)
            return self.unary()
        moves = ["flatten"]
        if len(shape) >= 2:
            moves.append("merge")
        if any(isinstance(d, sympy.Integer) and int(d) % 2 == 0 and int(d) >= 2 for d in shape):
            moves.append("split-dim")
        move = self.draw(st.sampled_from(moves))
        if move == "flatten":
            target: list[Any] = [-1] if self.draw(st.booleans()) else [math.prod(shape) if shape else 1]
        elif move == "merge":
            i = self.draw(st.integers(0, len(shape) - 2))
            target = [*shape[:i], shape[i] * shape[i + 1], *shape[i + 2:]]
        else:
            i = self.draw(st.sampled_from([j for j, d in enumerate(shape)
                                           if isinstance(d, sympy.Integer) and int(d) % 2 == 0 and int(d) >= 2]))
            target = [*shape[:i], 2, int(shape[i]) // 2, *shape[i + 1:]]
        self.add(op.reshape(v.var, target), v.bound, f"reshape-{move}")

    def permute(self) -> None:
        v = self.pick([x for x in self.pool if x.var.ndim >= 2] or None)
        if v.var.ndim < 2:
            return self.expand_squeeze()
        perm = self.draw(st.permutations(list(range(v.var.ndim))))
        self.add(op.permute_dims(v.var, list(perm)), v.bound, "permute_dims")
        return None

    def expand_squeeze(self) -> None:
        v = self.pick()
        ones = [i for i, d in enumerate(v.var.shape) if d == 1]
        if ones and self.draw(st.booleans()):
            self.add(op.squeeze(v.var, [self.draw(st.sampled_from(ones))]), v.bound, "squeeze")
        elif v.var.ndim < 4:
            self.add(op.expand_dims(v.var, [self.draw(st.integers(-v.var.ndim - 1, v.var.ndim))]), v.bound,
                     "expand_dims")
        else:
            self.unary()

    def concat(self) -> None:
        v = self.pick([x for x in self.pool if x.var.ndim] or None)
        if not v.var.ndim:
            return self.unary()
        axis = self.draw(st.integers(0, v.var.ndim - 1))
        shape = v.var.shape

        def fits(x: Value) -> bool:
            s = x.var.shape
            return len(s) == len(shape) and all(_dims_equal(a, b) for i, (a, b) in enumerate(zip(s, shape))
                                                if i != axis)

        others = [x for x in self.pool if x is not v and fits(x)]
        parts = [v] + ([self.pick(others)] if others and self.draw(st.booleans()) else [Value(op.negative(v.var),
                                                                                              v.bound)])
        if self.draw(st.booleans()):
            parts.reverse()
        self.add(op.concat([p.var for p in parts], axis=axis), max(p.bound for p in parts), "concat")
        return None

    def split(self) -> None:
        def splittable(d: Any) -> bool:
            d = _expr(d)
            return bool((d / 2).is_integer) or (d.is_Integer and int(d) >= 2)

        cands = [x for x in self.pool if any(splittable(d) for d in x.var.shape)]
        if not cands:
            return self.concat()
        v = self.pick(cands)
        axis = self.draw(st.sampled_from([i for i, d in enumerate(v.var.shape) if splittable(d)]))
        d = _expr(v.var.shape[axis])
        if d.is_Integer and (int(d) % 2 or self.draw(st.booleans())):
            points = sorted(self.draw(st.lists(st.integers(1, int(d) - 1), min_size=1, max_size=2, unique=True)))
            parts = op.split(v.var, points, axis=axis)
            count = len(points) + 1
        else:
            parts = op.split(v.var, 2, axis=axis)
            count = 2
        i = self.draw(st.integers(0, count - 1))
        if count == 2 and (d / 2).is_integer and self.draw(st.booleans()):
            self.add(op.subtract(parts[0], parts[1]), 2 * v.bound, "split-subtract")
        else:
            self.add(parts[i], v.bound, "split")
        return None

    def slice(self) -> None:
        v = self.pick([x for x in self.pool if x.var.ndim] or None)
        axes = [a for a in range(v.var.ndim) if v.var.shape[a] != 0]
        if not axes:
            return self.unary()
        axis = self.draw(st.sampled_from(axes))
        d = _expr(v.var.shape[axis])
        stride = self.draw(st.sampled_from([1, 1, 2]))
        if d.is_Integer:
            begin = self.draw(st.integers(0, int(d) - 1))
            end = self.draw(st.integers(begin + 1, int(d)))
            self.add(op.strided_slice(v.var, [axis], [begin], [end], [stride]), v.bound, "strided_slice")
        else:  # the symbolic bounds [0, d) or [d - d, d): always in range
            self.add(op.strided_slice(v.var, [axis], [0], [d], [stride], assume_inbound=True), v.bound,
                     "strided_slice-symbolic")
        return None

    def matmul(self) -> None:
        cands = [x for x in self.pool if x.var.ndim >= 1]
        if not cands:
            return self.unary()
        a = self.squash(self.pick(cands), 4.0)
        kdim = a.var.shape[-1]
        kmax = size_bound(kdim)
        mode = self.draw(st.sampled_from(["weight", "self", "pool"]))
        if mode == "self" and a.var.ndim >= 2:  # a @ a^T: a symbolic inner dim
            perm = [*range(a.var.ndim - 2), a.var.ndim - 1, a.var.ndim - 2]
            b = Value(op.permute_dims(a.var, perm), a.bound)
        else:
            others = [x for x in self.pool if x.var.ndim in (1, 2) and _dims_equal(x.var.shape[0], kdim)]
            if mode == "pool" and others:
                b = self.squash(self.pick(others), 4.0)
            else:
                if not isinstance(_expr(kdim), sympy.Integer):
                    return self.reshape_then_matmul(a)
                cols = self.draw(st.integers(1, 4))
                rng = np.random.default_rng(len(self.steps))
                w = rng.uniform(-1, 1, (int(kdim), cols)).astype(np.float32)
                b = Value(self.fb.const(w), 1.0)
        self.add(op.matmul(a.var, b.var), a.bound * b.bound * kmax, "matmul")
        return None

    def reshape_then_matmul(self, a: Value) -> None:
        """Static inner dim for a weight: contract over a symbolic dim via a^T a."""
        if a.var.ndim >= 2:
            perm = [*range(a.var.ndim - 2), a.var.ndim - 1, a.var.ndim - 2]
            t = op.permute_dims(a.var, perm)
            self.add(op.matmul(t, a.var), a.bound * a.bound * size_bound(a.var.shape[-2]), "matmul-gram")
        else:
            self.add(op.matmul(a.var, a.var), a.bound * a.bound * size_bound(a.var.shape[0]), "matmul-dot")

    def softmax(self) -> None:
        v = self.pick([x for x in self.pool if x.var.ndim] or None)
        if not v.var.ndim:
            return self.unary()
        axis = self.draw(st.integers(-v.var.ndim, v.var.ndim - 1))
        name = self.draw(st.sampled_from(["softmax", "log_softmax"]))
        v = self.squash(v, 8.0)
        self.add(getattr(op, name)(v.var, axis=axis), 1.0 if name == "softmax" else 2 * v.bound + 3, name)
        return None

    def layer_norm(self) -> None:
        v = self.pick([x for x in self.pool if x.var.ndim] or None)
        if not v.var.ndim:
            return self.unary()
        x = self.squash(v, 8.0)
        if x.var.ndim >= 2:  # gamma/beta of the last dim, computed from x itself (symbolic length)
            rows = list(range(x.var.ndim - 1))
            gamma = op.sigmoid(op.mean(x.var, axis=rows))
            beta = op.tanh(getattr(op, self.extreme("max", x, rows))(x.var, axis=rows))
        else:
            gamma = op.ones(list(x.var.shape), "float32")
            beta = op.zeros(list(x.var.shape), "float32")
        # eps 1e-2: a row of near-equal values (broadcast copies) is not amplified past float32 accuracy
        self.add(op.layer_norm(x.var, gamma, beta, axes=[-1], epsilon=1e-2), 12.0, "layer_norm")
        return None


@st.composite
def programs(draw: Any) -> Program:
    """A random program; its inputs at every binding in BINDINGS."""
    n_inputs = draw(st.integers(1, 3))
    dim = st.sampled_from([*SYMBOLS, *SYMBOLS, 1, 2, 3, 4])
    edges = tuple(e for e in ("nan-inf", "empty", "names") if draw(st.integers(0, 5)) == 0)
    shapes = []
    for _ in range(n_inputs):
        shape = draw(st.lists(dim, min_size=1, max_size=3))
        if "empty" in edges:  # an empty axis first, so loop nests over it are empty from the outside
            shape = [0, *shape]
        shapes.append(shape)
    name = draw(st.sampled_from(HOSTILE_FUNCTIONS)) if "names" in edges else "main"
    params = draw(st.lists(st.sampled_from(HOSTILE_PARAMS), min_size=n_inputs, max_size=n_inputs, unique=True)) \
        if "names" in edges else [f"x{i}" for i in range(n_inputs)]
    n_steps = draw(st.integers(1, 7))
    with rx.FunctionBuilder(name) as fb:
        gen = _Gen(draw, fb)
        for shape, param in zip(shapes, params):
            gen.pool.append(Value(fb.param(param, shape, "float32"), 3.0))
        for _ in range(n_steps):
            step = draw(st.sampled_from(STEPS))
            getattr(gen, step)()
        outputs = [gen.pool[-1].var]
        if draw(st.integers(0, 3)) == 0 and len(gen.pool) > 1:
            outputs.append(gen.pick(gen.pool[:-1]).var)
        fb.ret(fb.tuple(*outputs) if len(outputs) > 1 else outputs[0])
    bindings = BINDINGS
    huge = huge_binding(fb.module, shapes) if "empty" in edges else None
    if huge is not None:
        edges, bindings = (*edges, "large"), (*BINDINGS, huge)
    cases = []
    for j, binding in enumerate(bindings):
        rng = np.random.default_rng(j)
        case = []
        for shape in shapes:
            dims = [binding.get(d, d) if isinstance(d, str) else d for d in shape]
            x = np.clip(rng.standard_normal(dims), -3, 3).astype(np.float32) if 0 not in dims else \
                np.zeros(dims, np.float32)
            if "nan-inf" in edges and x.size:
                spots = rng.integers(0, x.size, size=max(1, x.size // 4))
                x.reshape(-1)[spots] = rng.choice(EDGE_FLOATS, size=len(spots))
            case.append(x)
        cases.append(tuple(case))
    ops = {o.name for o in fb.module.walk()} - {"builtin.module", "relax.function", "relax.return"}
    return Program(fb.module, gen.steps, cases, gen.max_bound, ops, name, bindings, edges)


def describe(programs_run: list[Program]) -> str:
    """A one-paragraph report: cases, steps and ops covered."""
    steps = sorted(set(itertools.chain.from_iterable(p.steps for p in programs_run)))
    ops = sorted(set(itertools.chain.from_iterable(p.ops for p in programs_run)))
    edges = sorted(set(itertools.chain.from_iterable(p.edges for p in programs_run)))
    counts = {e: sum(e in p.edges for p in programs_run) for e in edges}
    return (f"{len(programs_run)} programs x {len(BINDINGS)}+ bindings; steps: {', '.join(steps)}; "
            f"ops: {', '.join(ops)}; edge cases: {counts}")


INT_DTYPES = ("int8", "int32", "int64")
INT_UNARY = ("negative", "abs")
INT_BINARY = ("add", "subtract", "multiply", "maximum", "minimum")
INT_REDUCE = ("sum", "max", "min")


def int_edges(dtype: str) -> list[int]:
    info = np.iinfo(dtype)
    return [int(info.min), int(info.max), 0, -1, 1, int(info.min) + 1, int(info.max) - 1]


@st.composite
def int_programs(draw: Any) -> Program:
    """A random integer program: elementwise chains (wrapping add, subtract,
    multiply, negative, abs, max/min, compare + where), reductions and casts
    between integer types, on inputs full of INT_MIN, INT_MAX, 0 and -1.
    Exact agreement with the evaluator (numpy's wrapping) is required."""
    dtype = draw(st.sampled_from(INT_DTYPES))
    shapes = [draw(st.lists(st.sampled_from(["n", "m", 1, 2, 3]), min_size=1, max_size=2)) for _ in range(2)]
    steps: list[str] = []
    with rx.FunctionBuilder("main") as fb:
        pool = [fb.param(f"x{i}", shape, dtype) for i, shape in enumerate(shapes)]
        for _ in range(draw(st.integers(1, 6))):
            a = pool[-1] if draw(st.booleans()) else pool[draw(st.integers(0, len(pool) - 1))]
            kind = draw(st.sampled_from(["unary", "binary", "binary", "where", "reduce", "cast"]))
            partners = [v for v in pool if v.dtype == a.dtype and broadcastable(a.shape, v.shape)]
            if kind == "unary":
                name = draw(st.sampled_from(INT_UNARY))
                pool.append(getattr(op, name)(a))
            elif kind in ("binary", "where") and partners:
                b = partners[draw(st.integers(0, len(partners) - 1))]
                if kind == "binary":
                    name = draw(st.sampled_from(INT_BINARY))
                    pool.append(getattr(op, name)(a, b))
                else:
                    name = draw(st.sampled_from(COMPARE)) + "+where"
                    pool.append(op.where(getattr(op, name.split("+")[0])(a, b), a, b))
            elif kind == "reduce" and a.ndim:
                name = draw(st.sampled_from(INT_REDUCE))
                pool.append(getattr(op, name)(a, axis=[draw(st.integers(0, a.ndim - 1))]))
            else:
                target = draw(st.sampled_from(INT_DTYPES))
                name = f"astype-{target}"
                pool.append(op.astype(a, target))
            steps.append(name)
        fb.ret(pool[-1])
    cases = []
    for j, binding in enumerate(BINDINGS):
        rng = np.random.default_rng(j)
        case = []
        for shape in shapes:
            dims = [binding.get(d, d) if isinstance(d, str) else d for d in shape]
            edges = np.array(int_edges(dtype), dtype=dtype)
            case.append(edges[rng.integers(0, len(edges), size=dims)] if dims else edges[:1].reshape(()))
        cases.append(tuple(case))
    ops = {o.name for o in fb.module.walk()} - {"builtin.module", "relax.function", "relax.return"}
    return Program(fb.module, steps, cases, 1.0, ops, edges=("int-limits",))
