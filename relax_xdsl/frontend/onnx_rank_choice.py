"""An ONNX If whose branches give a value at different ranks, under a
condition known only at run time.

A relax value has one rank, so such an output cannot be a `relax.if`
result. Relax answers with a tensor of unknown rank; here the importer
instead *duplicates the tail*: the output is a `RankChoice`, an import-time
value holding the condition and, per branch, how to build that branch's
value. A node that uses a RankChoice is converted once per branch, inside
a `relax.if` on the same condition, with the branch's value in its place.
As soon as both branches give results of the same ranks (AffineGrid's
function body: a step that is `[]` in one branch and `[1]` in the other,
multiplied into a `[D]` grid), the `relax.if` is emitted and the results
are ordinary graph values. Until then the results are RankChoices again,
one node further down.

Only the taken branch runs at run time, as ONNX asks. Each consumer
rebuilds its branches' chain from the If (each link is replayed with the
importer's values as they were when it was converted; within one branch a
link is built once, so a diamond of uses does not build it twice). The
work is bounded: a chain of MAX_CHAIN nodes, MAX_CONDITIONS different
conditions in one value, MAX_BRANCH_NODES conversions inside branches in
all. Within a branch, every RankChoice on that branch's condition takes
that branch's value directly.

A RankChoice that must become a graph value while its ranks still differ
(a graph output, a loop-carried value, the output of a branch built as a
region) is an import error naming the If node, the output and both ranks.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relax_xdsl.builder import Var
from relax_xdsl.dialects.relax import TensorType

if TYPE_CHECKING:
    from relax_xdsl.frontend.onnx_import import Importer

MAX_CHAIN = 64
"""Nodes a RankChoice may pass through before its ranks must agree."""
MAX_CONDITIONS = 4
"""Different run-time conditions one value may depend on through RankChoices."""
MAX_BRANCH_NODES = 50_000
"""Node conversions inside branches, in all, for one import."""


@dataclass(eq=False)
class RankChoice:
    """A value whose rank depends on `cond` (a 0-d bool graph value):
    `build(True)` / `build(False)` emit the then / else branch's value into
    the block being built. `origin` names the node output it is, `ranks`
    the ranks each branch gives, `chain` the nodes since the If, `root` the
    If output the chain starts at ("" for an If's own output)."""

    cond: Var
    build: Callable[[bool], Any]
    origin: str
    ranks: tuple[int, int]
    chain: int = 0
    conditions: frozenset[int] = field(default_factory=frozenset)
    root: str = ""

    @property
    def key(self) -> int:
        return id(self.cond.value)


class Chooser:
    """The importer's side of RankChoices: which conditions the branch being
    built assumes, what each branch has built, and the split of a node on a
    RankChoice input."""

    def __init__(self, importer: Importer):
        self.importer = importer
        self.assumed: dict[int, bool] = {}
        # per branch being built (innermost last): RankChoice id -> (it, its value in that branch)
        self._built: list[dict[int, tuple[RankChoice, Any]]] = []
        self.nodes_built = 0  # nodes converted inside branches, against MAX_BRANCH_NODES

    @contextlib.contextmanager
    def assuming(self, key: int, which: bool) -> Iterator[None]:
        """Builds one branch: RankChoices on `key` take branch `which`, and
        constants made for import-time values stay inside the branch."""
        imp = self.importer
        self.assumed[key] = which
        saved = imp._materialized
        imp._materialized = weakref.WeakKeyDictionary()
        self._built.append({})
        try:
            yield
        finally:
            self._built.pop()
            del self.assumed[key]
            imp._materialized = saved

    def count_node(self, where: str) -> None:
        """One more node converted inside a branch: a model whose RankChoices
        would make the importer rebuild more than MAX_BRANCH_NODES fails."""
        from relax_xdsl.frontend.onnx_import import OnnxImportError

        if not self.assumed:
            return
        self.nodes_built += 1
        if self.nodes_built > MAX_BRANCH_NODES:
            raise OnnxImportError(f"{where}: Ifs whose branches give different ranks under run-time conditions made "
                                  f"the importer convert more than {MAX_BRANCH_NODES} nodes inside branches (every "
                                  "node using such a value is built once per branch, with the chain behind it)")

    def replay(self, values: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """fn() with the importer's values as they were (a link of a chain,
        rebuilt later, sees the names its node saw)."""
        imp = self.importer
        saved = imp.values
        imp.values = dict(values)
        try:
            return fn()
        finally:
            imp.values = saved

    def resolve(self, v: Any) -> Any:
        """v, or the branch's value of a RankChoice whose condition the branch
        being built assumes: built once per branch."""
        while isinstance(v, RankChoice) and v.key in self.assumed:
            done = next((scope[id(v)][1] for scope in reversed(self._built) if id(v) in scope), None)
            if done is None:
                done = v.build(self.assumed[v.key])
                self._built[-1][id(v)] = (v, done)
            v = done
        return v

    def split(self, cond: Var, first: RankChoice | None, run_side: Callable[[bool], list[Any]], chain: int,
              conditions: frozenset[int], where: str, names: Sequence[str] = ()) -> list[Any]:
        """The results of `run_side(branch)` (an If's branch, or a node
        converted with `first` replaced by each branch's value) as graph
        values from one `relax.if` on `cond` when both branches give the
        same ranks, else as RankChoices one link further down the chain.
        `names`: the results' ONNX names, for errors."""
        from relax_xdsl.frontend.onnx_import import OnnxImportError

        imp = self.importer
        fb = imp.fb
        key = id(cond.value)
        if key in self.assumed:
            return run_side(self.assumed[key])
        if chain >= MAX_CHAIN and first is not None:
            raise OnnxImportError(f"{where}: {first.root or first.origin} has a rank that depends on a run-time "
                                  f"condition, and the ranks still differ {MAX_CHAIN} nodes further on ({first.origin} "
                                  f"has rank {first.ranks[0]} when the condition holds and {first.ranks[1]} otherwise; "
                                  "a value has one rank in a relax graph, and each node in between is built for both "
                                  "branches)")
        if len(conditions) > MAX_CONDITIONS:
            raise OnnxImportError(f"{where}: the value depends on {len(conditions)} run-time conditions through Ifs "
                                  f"whose branches give different ranks; at most {MAX_CONDITIONS} are supported (each "
                                  "doubles the branches built)")

        # what each branch gives, built in a scratch block that is then erased
        probe: dict[bool, list[Any]] = {}
        for which in (True, False):
            with self.assuming(key, which):
                given: list[Any] = []

                def build(which: bool = which, given: list[Any] = given) -> list[Var]:
                    given.extend(run_side(which))
                    return [imp.tensor(r) for r in given if _is_value(r) and not isinstance(r, RankChoice)]

                fb.result_types(build)
                probe[which] = given
        then_vals, else_vals = probe[True], probe[False]
        if len(then_vals) != len(else_vals):
            raise OnnxImportError(f"{where}: the branches give {len(then_vals)} and {len(else_vals)} results")
        same = [k for k, (a, b) in enumerate(zip(then_vals, else_vals))
                if _is_value(a) and _is_value(b) and _rank_of(a) == _rank_of(b) != -1]
        differ = [k for k, a in enumerate(then_vals) if _is_value(a) and k not in same]
        out: list[Any] = [None if _is_value(r) else r for r in then_vals]  # an Unavailable output stays one

        def tensors(which: bool) -> list[Var]:
            with self.assuming(key, which):
                results = run_side(which)
                return [imp.tensor(results[k]) for k in same]

        if same:
            made = fb.if_(cond, lambda: tensors(True), lambda: tensors(False))
            for k, v in zip(same, made if isinstance(made, tuple) else (made,)):
                out[k] = v
        for k in differ:
            name = f" ({names[k]!r})" if k < len(names) and names[k] else ""
            out[k] = RankChoice(cond, _link(self, run_side, k), f"output {k}{name} of {where}",
                                (_rank_of(then_vals[k]), _rank_of(else_vals[k])), chain + 1 if first else 0,
                                conditions, (first.root or first.origin) if first else "")
        return out

    def materialize(self, v: RankChoice, where: str) -> Var:
        """A RankChoice as one graph value: a `relax.if` of its branches,
        when they agree in rank by now; an import error naming it otherwise."""
        from relax_xdsl.frontend.onnx_import import OnnxImportError

        (out,) = self.split(v.cond, v, lambda which: [v.build(which)], v.chain, v.conditions, where)
        if isinstance(out, RankChoice):
            through = f" (through {v.origin})" if v.root else ""
            raise OnnxImportError(
                f"{where}: {v.root or v.origin}{through} has rank {out.ranks[0]} when its condition holds and rank "
                f"{out.ranks[1]} otherwise, where one graph value is needed (a graph output, a loop-carried value or "
                "a branch result); the condition is computed at run time, and a value has one rank in a relax graph")
        return out


def _is_value(v: Any) -> bool:
    from relax_xdsl.frontend.onnx_import import Unavailable

    return v is not None and not isinstance(v, Unavailable)


def _rank_of(v: Any) -> int:
    """A value's rank; -1 for a RankChoice (on another condition: no rank yet)."""
    if isinstance(v, RankChoice):
        return -1
    t = getattr(v, "type", None)
    return t.ndim if isinstance(t, TensorType) else len(getattr(v, "shape", ()))


def _link(chooser: Chooser, run_side: Callable[[bool], list[Any]], k: int) -> Callable[[bool], Any]:
    """Branch `which`'s result k of a node on a RankChoice, rebuilt where it is needed."""
    values = dict(chooser.importer.values)
    return lambda which: chooser.replay(values, lambda: run_side(which)[k])


def first_choice(inputs: Sequence[Any]) -> RankChoice | None:
    return next((v for v in inputs if isinstance(v, RankChoice)), None)
