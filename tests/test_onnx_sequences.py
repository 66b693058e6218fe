"""ONNX sequences and optionals (relax_xdsl/frontend/onnx_sequences.py, onnx_ops_sequence.py, onnx_backend.py):
models built with onnx.helper, run on target c (and interp for a small one) against onnxruntime; sequence and
optional graph inputs and outputs through the backend runner; and the refusals and limits, each a clear error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402
from relax_xdsl.errors import RelaxError, ResourceLimitError  # noqa: E402
from relax_xdsl.frontend.onnx_backend import MAX_SPECIALIZATIONS, prepare  # noqa: E402
from relax_xdsl.frontend.onnx_import import OnnxImportError  # noqa: E402
from relax_xdsl.frontend.onnx_sequences import MAX_SEQUENCE_LENGTH, output_layout  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], opset: int = 17,
           inits: list[Any] | None = None) -> Any:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits or [])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _seq(name: str, elem: int = F, shape: list[Any] | None = None) -> Any:
    return helper.make_tensor_sequence_value_info(name, elem, shape)


def _t(name: str, elem: int = F, shape: list[Any] | None = None) -> Any:
    return helper.make_tensor_value_info(name, elem, shape)


def _out(name: str) -> Any:
    return helper.make_empty_tensor_value_info(name)


def _const(name: str, value: Any) -> Any:
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(value), name))


def _same(got: Any, want: Any) -> None:
    if want is None:
        assert got is None
        return
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _check(m: Any, calls: list[dict[str, Any]], target: str = "c") -> Any:
    """Each call (feeds by input name, lists for sequences) gives onnxruntime's outputs."""
    sess = ort.InferenceSession(m.SerializeToString())
    model = prepare(m, target)
    for feeds in calls:
        want = sess.run(None, feeds)
        _same(model.run(list(feeds.values())), want)
    return model


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- converters on tensor graph IO ---------------------------------------------------------------------------------


def test_construct_at_concat_with_symbolic_dims() -> None:
    """SequenceConstruct, SequenceAt at a negative position, ConcatFromSequence with and without new_axis."""
    m = _model([
        helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]),
        _const("pos", np.array(-2, np.int64)),
        helper.make_node("SequenceAt", ["s", "pos"], ["mid"]),
        helper.make_node("ConcatFromSequence", ["s"], ["cat"], axis=1),
        helper.make_node("ConcatFromSequence", ["s"], ["stack"], axis=-1, new_axis=1),
    ], [_t("a", F, ["n", 2]), _t("b", F, ["n", 2]), _t("c", F, ["n", 2])], [_out("mid"), _out("cat"), _out("stack")])
    module = rx.from_onnx(m)
    assert "n" in rx.print_module(module)  # the dims stay symbolic
    _check(m, [{"a": rand(k, 2, seed=1), "b": rand(k, 2, seed=2), "c": rand(k, 2, seed=3)} for k in (1, 3, 7)])


def test_split_to_sequence_forms() -> None:
    """A scalar split (last piece smaller), a 1-d split, and the default split of 1 with keepdims=0."""
    m = _model([
        _const("two", np.array(2, np.int64)),
        _const("sizes", np.array([1, 4], np.int64)),
        helper.make_node("SplitToSequence", ["x", "two"], ["s1"], axis=1),
        helper.make_node("SplitToSequence", ["x", "sizes"], ["s2"], axis=1),
        helper.make_node("SplitToSequence", ["x"], ["s3"], axis=1, keepdims=0),
        helper.make_node("SequenceLength", ["s1"], ["len1"]),
        _const("last", np.array(-1, np.int64)),
        helper.make_node("SequenceAt", ["s1", "last"], ["tail"]),
        helper.make_node("ConcatFromSequence", ["s2"], ["back"], axis=1),
        helper.make_node("ConcatFromSequence", ["s3"], ["rows"], axis=0, new_axis=1),
    ], [_t("x", F, ["n", 5])], [_out("len1"), _out("tail"), _out("back"), _out("rows")])
    _check(m, [{"x": rand(k, 5, seed=k)} for k in (1, 4)])


def test_split_to_sequence_of_symbolic_dim_with_1d_split() -> None:
    """Static sizes over a symbolic dim: the count is known; the sizes must add up (checked at run time)."""
    m = _model([
        _const("sizes", np.array([2, 1], np.int64)),
        helper.make_node("SplitToSequence", ["x", "sizes"], ["s"], axis=0),
        helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0),
    ], [_t("x", F, ["n", 2])], [_out("y")])
    model = _check(m, [{"x": rand(3, 2)}])
    with pytest.raises(RelaxError):
        model.run([rand(4, 2)])


def test_insert_erase_length() -> None:
    m = _model([
        helper.make_node("SequenceEmpty", [], ["e"], dtype=F),
        helper.make_node("SequenceInsert", ["e", "a"], ["s1"]),
        helper.make_node("SequenceInsert", ["s1", "b"], ["s2"]),
        _const("zero", np.array(0, np.int64)),
        helper.make_node("SequenceInsert", ["s2", "c", "zero"], ["s3"]),  # c, a, b
        _const("one", np.array(1, np.int64)),
        helper.make_node("SequenceErase", ["s3", "one"], ["s4"]),  # c, b
        helper.make_node("SequenceErase", ["s4"], ["s5"]),  # c
        helper.make_node("SequenceLength", ["s3"], ["n3"]),
        helper.make_node("ConcatFromSequence", ["s4"], ["y"], axis=0),
        helper.make_node("ConcatFromSequence", ["s5"], ["z"], axis=0),
    ], [_t("a", F, [2]), _t("b", F, [3]), _t("c", F, [1])], [_out("n3"), _out("y"), _out("z")])
    _check(m, [{"a": rand(2), "b": rand(3, seed=1), "c": rand(1, seed=2)}])


def test_optional_values() -> None:
    """Optional(x) holds x; an Optional with only a type is empty; OptionalHasElement without input is false."""
    tp = helper.make_tensor_type_proto(F, [2])
    m = _model([
        helper.make_node("Optional", ["x"], ["o"]),
        helper.make_node("Optional", [], ["empty"], type=tp),
        helper.make_node("OptionalHasElement", ["o"], ["has"]),
        helper.make_node("OptionalHasElement", ["empty"], ["has_not"]),
        helper.make_node("OptionalHasElement", [], ["nothing"]),
        helper.make_node("OptionalGetElement", ["o"], ["got"]),
        helper.make_node("Relu", ["got"], ["y"]),
    ], [_t("x", F, ["n"])], [_out("has"), _out("has_not"), _out("nothing"), _out("y")], opset=18)
    _check(m, [{"x": rand(k, seed=k)} for k in (1, 5)])


def test_sequence_map_unrolled_with_a_shared_tensor() -> None:
    body = helper.make_graph([helper.make_node("Add", ["item", "bias"], ["o"])], "body",
                             [_t("item", F, ["k"]), _t("bias", F, ["k"])], [_t("o", F, ["k"])])
    m = _model([helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
                helper.make_node("SequenceMap", ["s", "bias"], ["mapped"], body=body),
                helper.make_node("ConcatFromSequence", ["mapped"], ["y"], axis=0, new_axis=1)],
               [_t("a", F, ["n"]), _t("b", F, ["n"]), _t("bias", F, ["n"])], [_out("y")])
    _check(m, [{"a": rand(k), "b": rand(k, seed=1), "bias": rand(k, seed=2)} for k in (1, 6)])


def test_loop_over_a_sequence_is_unrolled() -> None:
    """A Loop whose trip count is a SequenceLength and that grows a sequence (ONNX's expansion of SequenceMap)."""
    body = helper.make_graph([
        helper.make_node("Identity", ["c_in"], ["c_out"]),
        helper.make_node("SequenceAt", ["xs", "i"], ["item"]),
        helper.make_node("Mul", ["item", "item"], ["sq"]),
        helper.make_node("SequenceInsert", ["acc_in", "sq"], ["acc_out"]),
        helper.make_node("ReduceSum", ["item"], ["scan"], keepdims=0),
    ], "body", [_t("i", I64, []), _t("c_in", TensorProto.BOOL, []), _seq("acc_in", F)],
        [_t("c_out", TensorProto.BOOL, []), _seq("acc_out", F), _t("scan", F, [])])
    m = _model([
        helper.make_node("SequenceLength", ["xs"], ["count"]),
        helper.make_node("SequenceEmpty", [], ["empty"], dtype=F),
        helper.make_node("Loop", ["count", "", "empty"], ["ys", "sums"], body=body),
    ], [_seq("xs", F, ["n"])], [_seq("ys", F), _out("sums")])
    _check(m, [{"xs": [rand(3), rand(1, seed=1), rand(4, seed=2)]}, {"xs": [rand(2)]}])


def test_if_with_a_known_condition_picks_the_sequence() -> None:
    then_g = helper.make_graph([helper.make_node("SequenceConstruct", ["x", "x"], ["s"])], "then", [], [_seq("s", F)])
    else_g = helper.make_graph([helper.make_node("SequenceConstruct", ["x"], ["s2"])], "else", [], [_seq("s2", F)])
    m = _model([_const("c", np.array(True)),
                helper.make_node("If", ["c"], ["s"], then_branch=then_g, else_branch=else_g)],
               [_t("x", F, ["n"])], [_seq("s", F)])
    _check(m, [{"x": rand(3)}])


# -- sequence and optional graph inputs and outputs ----------------------------------------------------------------


def test_sequence_input_and_output() -> None:
    """A sequence input of items of different shapes (own symbols per item), a sequence output."""
    m = _model([helper.make_node("SequenceInsert", ["xs", "x"], ["ys"]),
                helper.make_node("SequenceLength", ["ys"], ["n"])],
               [_seq("xs", F, ["d"]), _t("x", F, ["d"])], [_seq("ys", F), _out("n")])
    module = rx.from_onnx(m, sequence_lengths={"xs": 2})
    text = rx.print_module(module)
    assert "(%xs_item0: !relax.tensor<[xs_item0_d], f32>, %xs_item1: !relax.tensor<[xs_item1_d], f32>, " \
           "%x: !relax.tensor<[d], f32>)" in text
    layout = output_layout(module)
    assert layout is not None and [(s.kind, s.count) for s in layout.slots] == [("sequence", 3), ("tensor", 1)]
    _check(m, [{"xs": [rand(4), rand(1, seed=1)], "x": rand(2, seed=2)},
               {"xs": [rand(1, seed=3)], "x": rand(5, seed=4)}])


def test_sequence_input_on_the_interpreter() -> None:
    m = _model([helper.make_node("ConcatFromSequence", ["xs"], ["y"], axis=0)], [_seq("xs", F, ["d"])], [_out("y")])
    _check(m, [{"xs": [rand(2), rand(3, seed=1)]}], target="interp")


def test_sequence_input_without_a_shape_in_its_type() -> None:
    """An item type with no shape: the runner gives each item's dims fresh symbols from the arrays' ranks."""
    m = _model([helper.make_node("Identity", ["xs"], ["ys"])], [_seq("xs", F)], [_seq("ys", F)])
    _check(m, [{"xs": [rand(2, 3), rand(1)]}, {"xs": []}])


def test_optional_inputs_present_and_absent() -> None:
    opt = helper.make_value_info("o", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, ["n"])))
    m = _model([helper.make_node("OptionalHasElement", ["o"], ["has"]),
                helper.make_node("Identity", ["o"], ["same"])],
               [opt], [_out("has"), helper.make_value_info("same", opt.type)], opset=18)
    model = prepare(m, "c")
    x = rand(3)
    has, same = model.run([x])
    assert has.dtype == np.bool_ and bool(has) and np.array_equal(same, x)
    has, same = model.run([None])
    assert not bool(has) and same is None
    assert "opt" not in rx.print_module(rx.from_onnx(m, absent_inputs=["o"]))  # absent: no parameter


# -- refusals and limits -------------------------------------------------------------------------------------------


def _concat_model() -> Any:
    return _model([helper.make_node("ConcatFromSequence", ["xs"], ["y"], axis=0)], [_seq("xs", F, ["d"])],
                  [_out("y")])


def test_sequence_input_needs_its_length() -> None:
    with pytest.raises(OnnxImportError, match=r"input 'xs' is a sequence; give its length with sequence_lengths"):
        rx.from_onnx(_concat_model())


@pytest.mark.parametrize("length", [MAX_SEQUENCE_LENGTH + 1, 10**9, -1])
def test_sequence_lengths_out_of_range(length: int) -> None:
    with pytest.raises(ResourceLimitError, match="input 'xs'"):
        rx.from_onnx(_concat_model(), sequence_lengths={"xs": length})


def test_runner_refuses_a_huge_list() -> None:
    with pytest.raises(ResourceLimitError, match=f"longer than the {MAX_SEQUENCE_LENGTH}"):
        prepare(_concat_model()).run([[np.zeros(1, np.float32)] * (MAX_SEQUENCE_LENGTH + 1)])


def test_runner_refuses_mixed_dtypes() -> None:
    with pytest.raises(RelaxError, match="homogeneous.*float32, int64"):
        prepare(_concat_model()).run([[np.zeros(1, np.float32), np.zeros(1, np.int64)]])


def test_runner_refuses_wrong_kinds() -> None:
    m = _model([helper.make_node("SequenceInsert", ["xs", "x"], ["ys"])], [_seq("xs", F, ["d"]), _t("x", F, ["d"])],
               [_seq("ys", F)])
    model = prepare(m)
    with pytest.raises(RelaxError, match="input 'xs' is a sequence: pass a list"):
        model.run([np.zeros(2, np.float32), np.zeros(2, np.float32)])
    with pytest.raises(RelaxError, match="input 'x' is None, but only an optional input can be absent"):
        model.run([[np.zeros(2, np.float32)], None])
    with pytest.raises(RelaxError, match="input 'x' is a tensor, but a list was given"):
        model.run([[np.zeros(2, np.float32)], [np.zeros(2, np.float32)]])


def test_runner_recompiles_for_another_length() -> None:
    """A later run with another length compiles once more (and the first length's executable is kept)."""
    model = prepare(_concat_model())
    a, b, c = rand(2), rand(3, seed=1), rand(1, seed=2)
    np.testing.assert_array_equal(model.run([[a, b]])[0], np.concatenate([a, b]))
    np.testing.assert_array_equal(model.run([[a, b, c]])[0], np.concatenate([a, b, c]))
    np.testing.assert_array_equal(model.run([[c, a]])[0], np.concatenate([c, a]))
    assert len(model._compiled) == 2
    assert MAX_SPECIALIZATIONS >= 2


def test_sequence_at_out_of_range_names_the_node() -> None:
    m = _model([helper.make_node("SequenceConstruct", ["x", "x"], ["s"]), _const("p", np.array(2, np.int64)),
                helper.make_node("SequenceAt", ["s", "p"], ["y"], name="pick")], [_t("x", F, [2])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'pick' \(SequenceAt\): position 2 is out of range for a "
                                              r"sequence of 2 items \(valid: -2 \.\. 1\)"):
        rx.from_onnx(m)


def test_run_time_position_is_refused() -> None:
    m = _model([helper.make_node("SequenceConstruct", ["x", "x"], ["s"]),
                helper.make_node("SequenceAt", ["s", "p"], ["y"], name="pick")],
               [_t("x", F, [2]), _t("p", I64, [])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'pick' \(SequenceAt\): input 1 \(position\) is computed at "
                                              "run time"):
        rx.from_onnx(m)


def test_split_to_sequence_of_a_symbolic_dim_is_refused() -> None:
    m = _model([_const("two", np.array(2, np.int64)),
                helper.make_node("SplitToSequence", ["x", "two"], ["s"], name="sp"),
                helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)], [_t("x", F, ["n"])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'sp' \(SplitToSequence\): axis 0 has symbolic size n, so the "
                                              "number of pieces"):
        rx.from_onnx(m)


def test_split_to_sequence_into_too_many_pieces_is_refused() -> None:
    m = _model([helper.make_node("SplitToSequence", ["x"], ["s"], name="sp"),
                helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)],
               [_t("x", F, [MAX_SEQUENCE_LENGTH + 1])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'sp' \(SplitToSequence\).*longer than the"):
        rx.from_onnx(m)


def test_mixed_dtypes_in_a_sequence_are_refused() -> None:
    m = _model([helper.make_node("SequenceConstruct", ["x", "i"], ["s"], name="mk"),
                helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)],
               [_t("x", F, [2]), _t("i", I64, [2])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'mk' \(SequenceConstruct\).*homogeneous"):
        rx.from_onnx(m)


def test_a_sequence_given_to_a_tensor_op_is_refused() -> None:
    m = _model([helper.make_node("SequenceConstruct", ["x"], ["s"]),
                helper.make_node("Relu", ["s"], ["y"], name="r")], [_t("x", F, [2])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'r' \(Relu\): input 0 's' is a sequence of 1 float32 tensor; "
                                              "Relu takes tensors"):
        rx.from_onnx(m)


def test_get_element_of_an_empty_optional_is_refused() -> None:
    m = _model([helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(F, [2])),
                helper.make_node("OptionalGetElement", ["o"], ["y"], name="get")], [], [_out("y")], opset=18)
    with pytest.raises(OnnxImportError, match=r"node 'get' \(OptionalGetElement\): the optional is empty"):
        rx.from_onnx(m)


def test_if_on_a_run_time_condition_yielding_sequences_is_refused() -> None:
    then_g = helper.make_graph([helper.make_node("SequenceConstruct", ["x"], ["s"])], "then", [], [_seq("s", F)])
    m = _model([helper.make_node("If", ["c"], ["s"], then_branch=then_g, else_branch=then_g, name="choose"),
                helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)],
               [_t("c", TensorProto.BOOL, []), _t("x", F, [2])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'choose' \(If\): then_branch yields 's', a sequence or optional, "
                                              "but the condition is computed at run time"):
        rx.from_onnx(m)


def test_loop_carrying_a_sequence_with_a_run_time_trip_count_is_refused() -> None:
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                              helper.make_node("SequenceInsert", ["acc_in", "x"], ["acc_out"])], "body",
                             [_t("i", I64, []), _t("c_in", TensorProto.BOOL, []), _seq("acc_in", F)],
                             [_t("c_out", TensorProto.BOOL, []), _seq("acc_out", F)])
    m = _model([helper.make_node("SequenceEmpty", [], ["e"]),
                helper.make_node("Loop", ["m", "", "e"], ["s"], body=body, name="grow"),
                helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)],
               [_t("m", I64, []), _t("x", F, [2])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'grow' \(Loop\): the loop carries sequences.*trip count M must "
                                              "then be known at import time.*computed at run time"):
        rx.from_onnx(m)


def test_loop_unrolling_is_capped() -> None:
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                              helper.make_node("SequenceInsert", ["acc_in", "x"], ["acc_out"])], "body",
                             [_t("i", I64, []), _t("c_in", TensorProto.BOOL, []), _seq("acc_in", F)],
                             [_t("c_out", TensorProto.BOOL, []), _seq("acc_out", F)])
    m = _model([helper.make_node("SequenceEmpty", [], ["e"]), _const("m", np.array(10**12, np.int64)),
                helper.make_node("Loop", ["m", "", "e"], ["s"], body=body, name="grow"),
                helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)], [_t("x", F, [2])], [_out("y")])
    with pytest.raises(OnnxImportError, match=r"node 'grow' \(Loop\).*unrolling 1000000000000 iterations.*longer"):
        rx.from_onnx(m)


# -- the conformance runner ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conformance() -> Any:
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import onnx_conformance
    finally:
        sys.path.remove(str(bench))
    return onnx_conformance


def test_conformance_compares_sequences_and_optionals(conformance: Any) -> None:
    a, b = np.zeros(2, np.float32), np.ones(3, np.float32)
    assert conformance.compare([[a, b], None], [[a, b], None], 1e-5, 0) is None
    assert "2 items, expected 1" in conformance.compare([[a, b]], [[a]], 1e-5, 0)
    assert "item 1: shape" in conformance.compare([[a, a]], [[a, b]], 1e-5, 0)
    assert "absent" in conformance.compare([None], [a], 1e-5, 0)
    assert "a tensor, expected the other" in conformance.compare([a], [[a]], 1e-5, 0)


def test_conformance_runs_sequence_and_optional_cases(conformance: Any, tmp_path: Any) -> None:
    """Cases with sequence or optional graph IO are collected (maps and strings still are not) and pass."""
    names = ["test_sequence_insert_at_back", "test_optional_has_element_empty_optional_input",
             "test_sequence_map_add_1_sequence_1_tensor", "test_split_to_sequence_nokeepdims"]
    cases = {c.name: c for c in conformance.collect_from_modules(["sequenceinsert", "optionalhaselement",
                                                                   "sequence_map", "splittosequence"])}
    infos = conformance.serialize([cases[n] for n in names], tmp_path)
    assert [conformance.run_case(i, "c", None) for i in infos] == [("PASS", "")] * len(names)
    refused = conformance.serialize([cases["test_sequence_insert_at_front"]], tmp_path / "refused")
    status, detail = conformance.run_case(refused[0], "c", None)
    assert status == "UNSUPPORTED" and "position" in detail


def test_folded_items_count_against_the_allocation_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constants an unrolled loop folds and a sequence keeps count as held at once (1.6 MB here), not one at a
    time (400 KB each)."""
    monkeypatch.setenv("RELAX_XDSL_MAX_ALLOC_BYTES", str(1 << 20))
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                              _const("shape", np.array([100_000], np.int64)),
                              helper.make_node("ConstantOfShape", ["shape"], ["big"],
                                               value=onnx.numpy_helper.from_array(np.array([1.0], np.float32))),
                              helper.make_node("SequenceInsert", ["acc_in", "big"], ["acc_out"])], "body",
                             [_t("i", I64, []), _t("c_in", TensorProto.BOOL, []), _seq("acc_in", F)],
                             [_t("c_out", TensorProto.BOOL, []), _seq("acc_out", F)])
    m = _model([helper.make_node("SequenceEmpty", [], ["e"]), _const("m", np.array(4, np.int64)),
                helper.make_node("Loop", ["m", "", "e"], ["s"], body=body, name="grow"),
                helper.make_node("SequenceLength", ["s"], ["y"])], [], [_out("y")])
    with pytest.raises(ResourceLimitError, match=r"node 'grow' \(Loop\).*above the allocation limit"):
        rx.from_onnx(m)


def test_keywords_name_graph_inputs() -> None:
    m = _concat_model()
    with pytest.raises(OnnxImportError, match=r"sequence_lengths names \['nope'\], which are not graph inputs"):
        rx.from_onnx(m, sequence_lengths={"xs": 1, "nope": 10**12})
    with pytest.raises(OnnxImportError, match=r"absent_inputs names \['nope'\]"):
        rx.from_onnx(m, sequence_lengths={"xs": 1}, absent_inputs=["nope"])
    with pytest.raises(OnnxImportError, match=r"input 'xs': sequence_lengths gives '2', not an integer"):
        rx.from_onnx(m, sequence_lengths={"xs": "2"})
    with pytest.raises(OnnxImportError, match=r"input 'xs' is in absent_inputs, but only an optional"):
        rx.from_onnx(m, sequence_lengths={"xs": 1}, absent_inputs=["xs"])
    module = rx.from_onnx(m, sequence_lengths={"xs": 2}, shapes={"xs_item1": [5]})
    assert "!relax.tensor<[5], f32>" in rx.print_module(module)


def test_a_wrong_item_is_named() -> None:
    """Each item is its own parameter, so a bad one is named (xs_item1), not just the sequence."""
    with pytest.raises(rx.ShapeError, match=r"input 'xs_item1': expected rank 1"):
        prepare(_concat_model()).run([[np.zeros(2, np.float32), np.zeros((2, 2), np.float32)]])
