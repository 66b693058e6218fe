"""ONNX If whose branches give an output at different ranks: taken at
import time when the condition is known then (a constant, or computed
from shapes). Under a run-time condition the output is a RankChoice
(frontend/onnx_rank_choice.py): each node using it is built once per
branch inside a relax.if on the same condition, until the branches' ranks
agree; a value that must be one graph value while its ranks still differ
(a graph output) is an import error naming the node, the output and both
ranks."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from util import check_against_onnxruntime, onnx_model

import relax_xdsl as rx
from relax_xdsl.errors import RelaxError
from relax_xdsl.frontend import onnx_rank_choice

ort = pytest.importorskip("onnxruntime")


def _branches():
    """then: x summed to a scalar; else: x flattened (rank 1)."""
    then_g = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["t"], keepdims=0)], "then", [],
                               [helper.make_tensor_value_info("t", T.FLOAT, None)])
    shape = helper.make_tensor("minus_one", T.INT64, [1], [-1])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["m1"], value=shape),
                                helper.make_node("Reshape", ["x", "m1"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", T.FLOAT, None)])
    return {"then_branch": then_g, "else_branch": else_g}


def runtime_cond_model():
    return onnx_model([helper.make_node("If", ["c"], ["y"], name="pick_rank", **_branches())],
                      [("x", T.FLOAT, ["n", 2]), ("c", T.BOOL, [])], ["y"])


def shape_cond_model(rank: int):
    """cond = (rank of x == 2), known from x's shape at import time."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Size", ["s"], ["r"]),
             helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", T.INT64, [], [2])),
             helper.make_node("Equal", ["r", "two"], ["c"]),
             helper.make_node("If", ["c"], ["y"], **_branches())]
    return onnx_model(nodes, [("x", T.FLOAT, ["n", 2] if rank == 2 else ["n", 2, 1])], ["y"])


def test_a_run_time_condition_names_the_node_the_output_and_both_ranks() -> None:
    """The output goes straight to the graph's outputs, where it needs one rank."""
    with pytest.raises(RelaxError, match=r"a graph output: output 0 \('y'\) of node 'pick_rank' \(If\) has rank 0 "
                                         r"when its condition holds and rank 1 otherwise.*computed at run time"):
        rx.from_onnx(runtime_cond_model())


def _consumed(nodes: list, outputs: list[str], extra_inputs: list | None = None):
    """runtime_cond_model's If (then: rank 0, else: rank 1), then `nodes` using y."""
    return onnx_model([helper.make_node("If", ["c"], ["y"], name="pick_rank", **_branches()), *nodes],
                      [("x", T.FLOAT, ["n", 2]), ("c", T.BOOL, []), *(extra_inputs or [])], outputs)


def _calls(extra: dict | None = None) -> list[dict[str, np.ndarray]]:
    """Both conditions at n = 0, 1 and 3, from one executable."""
    return [{"x": np.arange(2 * n, dtype="float32").reshape(n, 2) - 1.5, "c": np.array(c), **(extra or {})}
            for n in (0, 1, 3) for c in (True, False)]


@pytest.mark.parametrize("target", ["interp", "c"])
def test_a_node_that_makes_the_ranks_agree_is_built_per_branch(target: str) -> None:
    """ReduceSum of all axes gives a scalar from either branch: one relax.if
    holds both, and its result is an ordinary graph value."""
    m = _consumed([helper.make_node("ReduceSum", ["y"], ["z"], keepdims=0)], ["z"])
    module = check_against_onnxruntime(m, _calls(), target)
    assert rx.print_module(module).count("relax.if") == 1


@pytest.mark.parametrize("target", ["interp", "c"])
def test_a_chain_with_a_diamond_and_broadcasting(target: str) -> None:
    """y passes through Neg and Exp (two RankChoices, one link each), both
    meet in a Mul (a diamond: y's branches are built once per branch), and
    broadcasting against w [n, 2] gives rank 2 either way."""
    nodes = [helper.make_node("Neg", ["y"], ["a"]), helper.make_node("Exp", ["y"], ["b"]),
             helper.make_node("Mul", ["a", "b"], ["ab"]), helper.make_node("Mul", ["ab", "w"], ["z"])]
    m = _consumed(nodes, ["z"], [("w", T.FLOAT, [1, "k"])])
    # else gives [2n] * [1, k]: k must be 2n (or 1) there; then a scalar times w
    calls = [{**call, "w": np.full((1, 2 * call["x"].shape[0]), 0.5, "float32")} for call in _calls()]
    check_against_onnxruntime(m, calls, target)


def test_outputs_of_equal_rank_are_ordinary_values_and_one_condition_is_not_split_twice() -> None:
    """An If with two outputs: s has rank 1 in both branches (an ordinary
    relax.if result), y has rank 0 or 1; Add(y, y2), with y2 the same If's
    other differing output, takes both from the same branch."""
    shape = helper.make_tensor("minus_one", T.INT64, [1], [-1])
    then_g = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["t"], keepdims=0),
                                helper.make_node("ReduceProd", ["x"], ["t2"], keepdims=0),
                                helper.make_node("Constant", [], ["m1"], value=shape),
                                helper.make_node("Reshape", ["x", "m1"], ["ts"])], "then", [],
                               [helper.make_tensor_value_info(v, T.FLOAT, None) for v in ("t", "t2", "ts")])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["m1"], value=shape),
                                helper.make_node("Reshape", ["x", "m1"], ["e"]),
                                helper.make_node("Neg", ["e"], ["e2"]),
                                helper.make_node("Abs", ["e"], ["es"])], "else", [],
                               [helper.make_tensor_value_info(v, T.FLOAT, None) for v in ("e", "e2", "es")])
    nodes = [helper.make_node("If", ["c"], ["y", "y2", "s"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Add", ["y", "y2"], ["sum"]),
             helper.make_node("ReduceL1", ["sum"], ["z"], keepdims=0)]
    m = onnx_model(nodes, [("x", T.FLOAT, ["n", 2]), ("c", T.BOOL, [])], ["z", "s"])
    module = check_against_onnxruntime(m, _calls(), "c")
    assert rx.print_module(module).count("relax.if") == 2  # s's, and the ReduceL1's; no nested if on c


@pytest.mark.parametrize("target", ["interp", "c"])
def test_two_conditions(target: str) -> None:
    """Add of two RankChoices on different conditions: the branches of one
    nest inside the other's, and ReduceSum makes all four agree."""
    branches = _branches()
    nodes = [helper.make_node("If", ["c"], ["y"], **branches), helper.make_node("If", ["d"], ["y2"], **branches),
             helper.make_node("Add", ["y", "y2"], ["s"]), helper.make_node("ReduceSum", ["s"], ["z"], keepdims=0)]
    m = onnx_model(nodes, [("x", T.FLOAT, ["n", 2]), ("c", T.BOOL, []), ("d", T.BOOL, [])], ["z"])
    calls = [{"x": np.arange(6, dtype="float32").reshape(3, 2), "c": np.array(c), "d": np.array(d)}
             for c in (True, False) for d in (True, False)]
    check_against_onnxruntime(m, calls, target)


def test_a_chain_whose_ranks_never_agree_stops_at_max_chain() -> None:
    nodes = [helper.make_node("Neg", ["y" if i == 0 else f"v{i - 1}"], [f"v{i}"]) for i in range(100)]
    nodes.append(helper.make_node("ReduceSum", ["v99"], ["z"], keepdims=0))
    with pytest.raises(RelaxError, match=r"node 65 \(Neg\): output 0 \('y'\) of node 'pick_rank' \(If\) has a rank that "
                                         r"depends on a run-time condition, and the ranks still differ 64 nodes further "
                                         r"on \(output 0 \('v63'\) of node 64 \(Neg\) has rank 0 when the condition "
                                         r"holds and 1 otherwise"):
        rx.from_onnx(_consumed(nodes, ["z"]))


def test_more_conditions_than_max_conditions_are_refused() -> None:
    """Each condition a value depends on doubles the branches built: five
    Ifs (each rank 0 or 1) summed together stop at the fifth, naming it."""
    branches = _branches()
    conds = [f"c{i}" for i in range(5)]
    nodes = [helper.make_node("If", [c], [f"y{i}"], name=f"if{i}", **branches) for i, c in enumerate(conds)]
    acc = "y0"
    for i in range(1, 5):
        nodes.append(helper.make_node("Add", [acc, f"y{i}"], [f"s{i}"]))
        acc = f"s{i}"
    nodes.append(helper.make_node("ReduceSum", [acc], ["z"], keepdims=0))
    m = onnx_model(nodes, [("x", T.FLOAT, ["n", 2]), *((c, T.BOOL, []) for c in conds)], ["z"])
    with pytest.raises(RelaxError, match=r"depends on 5 run-time conditions .* at most 4"):
        rx.from_onnx(m)


def test_a_chain_to_a_graph_output_names_the_if_and_the_last_link() -> None:
    nodes = [helper.make_node("Neg", ["y"], ["a"]), helper.make_node("Abs", ["a"], ["b"])]
    with pytest.raises(RelaxError, match=r"a graph output: output 0 \('y'\) of node 'pick_rank' \(If\) \(through "
                                         r"output 0 \('b'\) of node 2 \(Abs\)\) has rank 0 when its condition holds "
                                         r"and rank 1 otherwise, where one graph value is needed"):
        rx.from_onnx(_consumed(nodes, ["b"]))


def test_hostile_fan_out_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every user of a RankChoice rebuilds the If's branches: a model with
    many users stops at MAX_BRANCH_NODES conversions (lowered here so the
    test is quick), naming a node."""
    monkeypatch.setattr(onnx_rank_choice, "MAX_BRANCH_NODES", 200)
    nodes = [helper.make_node("ReduceSum", ["y"], [f"z{i}"], keepdims=0) for i in range(100)]
    with pytest.raises(RelaxError, match=r"more than 200 nodes inside branches"):
        rx.from_onnx(_consumed(nodes, [f"z{i}" for i in range(100)]))
    monkeypatch.undo()
    module = rx.from_onnx(_consumed(nodes, [f"z{i}" for i in range(100)]))  # within the real bound
    assert rx.print_module(module).count("relax.if") == 100


@pytest.mark.parametrize("value", [True, False])
def test_a_constant_condition_takes_its_branch(value: bool) -> None:
    m = runtime_cond_model()
    m.graph.initializer.append(helper.make_tensor("c", T.BOOL, [], [value]))
    del m.graph.input[1]
    module = rx.from_onnx(m)
    assert "relax.if" not in rx.print_module(module)
    sess = ort.InferenceSession(m.SerializeToString())
    exe = rx.compile(module, target="c")
    for n in (1, 3):
        x = np.arange(2 * n, dtype="float32").reshape(n, 2)
        want = sess.run(None, {"x": x})[0]
        got = exe.main(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("rank", [2, 3])
def test_a_condition_computed_from_shapes_takes_its_branch(rank: int) -> None:
    m = shape_cond_model(rank)
    module = rx.from_onnx(m)
    sess = ort.InferenceSession(m.SerializeToString())
    x = np.arange(6, dtype="float32").reshape((3, 2) if rank == 2 else (3, 2, 1))
    want = sess.run(None, {"x": x})[0]
    for target in ("interp", "c"):
        got = rx.compile(module, target=target).main(x)
        assert got.shape == want.shape == (() if rank == 2 else (6,))
        np.testing.assert_allclose(got, want, rtol=1e-6)
