"""Graph-level optimisation passes: fold-constants, fold-batch-norm,
simplify-layout. Each is checked on the printed IR (which ops remain) and
on results: the optimized module compiled to C equals the reference
evaluator of the original module at symbolic sizes 0, 1 and 3."""

from __future__ import annotations

import re

import numpy as np
import pytest
from relax_xdsl.passes.pipelines import run_pipeline
from util import assert_close, check_levels, onnx_model, rand, roundtrip

import relax_xdsl as rx
from relax_xdsl import op

SIZES = (0, 1, 3)
ALL = "fold-constants,fold-batch-norm,simplify-layout"


def ops(module: object, name: str) -> int:
    return len(re.findall(rf"= relax\.{name} ", rx.print_module(module)))  # type: ignore[arg-type]


def optimized(module: object, spec: str) -> object:
    return roundtrip(run_pipeline(module.clone(), spec))  # type: ignore[attr-defined]


def check_c(module: object, spec: str, shapes: list[tuple[object, ...]], pipeline: str = "default") -> None:
    """The module run through `spec` then `pipeline` on C equals the
    evaluator of the original, at every size (n in SIZES)."""
    exe = rx.compile(module, target="c", pipeline=f"{spec},{pipeline}")  # type: ignore[arg-type]
    for n in SIZES:
        args = [rand(tuple(n if d == "n" else d for d in s), seed=k) for k, s in enumerate(shapes)]
        assert_close(exe["main"](*args), rx.evaluate(module, "main", *args))  # type: ignore[arg-type]


# --- common subexpressions -------------------------------------------------------------------------------------------


def test_cse_merges_ops_with_tuple_results() -> None:
    """xDSL's cse hashes each op's result types. A tuple type whose fields
    were held in a list (xDSL's TupleType keeps what it is given) made that
    a TypeError on any module with split or topk (GPT-2's q/k/v split)."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 6])
        a, b = op.split(x, 2, axis=1), op.split(x, 2, axis=1)
        ta, tb = op.topk(x, 2, axis=1), op.topk(x, 2, axis=1)
        fb.ret(fb.tuple(op.add(a[0], b[1]), op.add(ta[0], tb[0])))
    after = optimized(fb.module, "cse")
    assert ops(fb.module, "split") == 2 and ops(after, "split") == 1
    assert ops(fb.module, "topk") == 2 and ops(after, "topk") == 1
    check_c(fb.module, "cse", [("n", 6)])


# --- fold-constants ---------------------------------------------------------------------------------------------------


def constant_chain_module() -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4])
        w = fb.const(rand((3, 4), seed=5))
        b = fb.const(rand((3,), seed=6))
        wt = op.permute_dims(w)                      # constant: folded
        bias = op.exp(b) + fb.const(np.float32(1))   # constant chain: folded
        parts = op.split(fb.const(rand((6,), seed=7)), indices_or_sections=2)   # a tuple of constants
        fb.ret(op.matmul(x, wt) + bias + parts[1])
    return fb.module


def test_fold_constants_replaces_constant_subgraphs() -> None:
    module = constant_chain_module()
    after = optimized(module, "fold-constants")
    for name in ("permute_dims", "exp", "split", "get_item"):
        assert ops(module, name) == 1 and ops(after, name) == 0, name
    assert ops(after, "add") == 2 and ops(after, "matmul") == 1
    assert ops(after, "constant") == 3  # the transposed weight, the folded bias, the split's field
    check_c(module, "fold-constants", [("n", 4)])


def test_fold_cap_leaves_a_huge_constant_to_run_time() -> None:
    """broadcast_to of 4 bytes to 1 GiB: never computed at compile time."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1])
        big = op.broadcast_to(fb.const(np.ones(1, np.float32)), shape=[2**28])
        fb.ret(x + op.sum(op.strided_slice(big, axes=[0], begin=[0], end=[1]), axis=[0], keepdims=True))
    module = fb.module
    after = optimized(module, "fold-constants")
    assert ops(after, "broadcast_to") == 1
    assert "2**28" not in rx.print_module(after) and max(len(line) for line in rx.print_module(after).splitlines()) < 400
    exe = rx.compile(module, target="c", pipeline="fold-constants,default")
    assert exe is not None


def test_fold_small_broadcast_but_not_a_failing_index() -> None:
    """A constant take whose index is out of range stays an op: the
    BoundsError comes when the program runs, as without the pass."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4])
        small = op.broadcast_to(fb.const(np.ones(4, np.float32)), shape=[2, 4])
        bad = op.take(fb.const(np.arange(4, dtype=np.float32)), fb.const(np.array([7], np.int64)), axis=0)
        fb.ret(x + op.sum(small, axis=[0]) + bad)
    module = fb.module
    after = optimized(module, "fold-constants")
    assert ops(after, "broadcast_to") == 0 and ops(after, "take") == 1
    exe = rx.compile(module, target="c", pipeline="fold-constants,default")
    with pytest.raises(rx.BoundsError):
        exe["main"](rand((2, 4)))


def test_fold_splats_of_exported_weights() -> None:
    """A Gemm's transB weight made by ConstantOfShape (onnx's light zoo
    models): full, then permute_dims, folds to one splat constant, stored as
    one value however big, so the program reads a buffer made once at load
    instead of filling and transposing 4 MiB on every call. Elementwise ops
    of splats and scalars fold to splats too."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 1024])
        w = op.permute_dims(op.full(shape=[1024, 1024], fill_value=0.5, dtype="float32"))
        scale = op.multiply(op.ones(shape=[1024], dtype="float32"), fb.const(np.float32(3.0)))
        fb.ret(op.matmul(x, w) * scale)
    module = fb.module
    after = optimized(module, "fold-constants")
    for name in ("full", "ones", "permute_dims", "multiply"):
        assert ops(after, name) == (1 if name == "multiply" else 0), name  # only x's multiply is left
    text = rx.print_module(after)
    assert "dense<5.000000e-01> : tensor<1024x1024xf32>" in text and "dense<3.000000e+00> : tensor<1024xf32>" in text
    assert len(text) < 2000
    check_c(module, "fold-constants", [("n", 1024)])


def test_splat_inputs_are_not_expanded_at_compile_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reduction of a 64 MiB splat stays an op (expanding it to fold would
    cost the compile what the program costs); fills past the module's splat
    budget stay ops that run on every call, as without the pass."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", [1])
        big = op.full(shape=[2**24], fill_value=2.0, dtype="float32")
        fb.ret(x + op.sum(big, axis=[0], keepdims=True))
    module = fb.module
    after = optimized(module, "fold-constants")
    assert ops(after, "full") == 0 and ops(after, "sum") == 1 and len(rx.print_module(after)) < 2000
    assert_close(rx.compile(module, target="c")["main"](np.ones(1, np.float32)), np.array([2.0**25 + 1], np.float32))
    from relax_xdsl.passes import fold_constants

    monkeypatch.setattr(fold_constants, "SPLAT_BUDGET_BYTES", 2**20)
    after = optimized(module, "fold-constants")
    assert ops(after, "full") == 1 and ops(after, "sum") == 1

# --- fold-batch-norm --------------------------------------------------------------------------------------------------


def bn_params(c: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(c).astype("float32"), rng.standard_normal(c).astype("float32"),
            rng.standard_normal(c).astype("float32"), (rng.random(c) + 0.5).astype("float32")]


def conv_bn_module(groups: int, with_bias: bool, scale: bool = True, center: bool = True) -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4, 9, 9])
        w = fb.const(rand((6, 4 // groups, 3, 3), seed=3))
        y = op.conv2d(x, w, strides=[2, 1], padding=[1, 0, 2, 1], dilation=[1, 2], groups=groups)
        if with_bias:
            y = y + fb.const(rand((1, 6, 1, 1), seed=4))
        fb.ret(op.relu(op.batch_norm(y, *(fb.const(p) for p in bn_params(6, 1)), epsilon=1e-3, scale=scale,
                                     center=center)))
    return fb.module


@pytest.mark.parametrize(("groups", "with_bias", "flags"), [(1, True, (True, True)), (2, False, (True, True)),
                                                           (1, False, (False, True)), (2, True, (True, False))])
def test_fold_batch_norm_into_conv(groups: int, with_bias: bool, flags: tuple[bool, bool]) -> None:
    module = conv_bn_module(groups, with_bias, *flags)
    after = optimized(module, "fold-batch-norm")
    assert ops(after, "batch_norm") == 0 and ops(after, "multiply") == 0
    assert ops(after, "conv2d") == 1 and ops(after, "add") == 1
    check_c(module, "fold-batch-norm", [("n", 4, 9, 9)], "fast" if groups == 1 else "default")


def test_fold_batch_norm_into_matmul() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8])
        y = op.matmul(x, fb.const(rand((8, 5), seed=2))) + fb.const(rand((5,), seed=3))
        fb.ret(op.batch_norm(y, *(fb.const(p) for p in bn_params(5, 2)), axis=-1))
    module = fb.module
    after = optimized(module, "fold-batch-norm")
    assert ops(after, "batch_norm") == 0 and ops(after, "matmul") == 1 and ops(after, "add") == 1
    check_c(module, "fold-batch-norm", [("n", 8)], "fast")


def test_batch_norm_alone_becomes_multiply_add() -> None:
    """No conv before it (and a conv whose output has another use) ->
    a per-channel multiply + add."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3, 5])
        w = fb.param("w", [2, 3, 1, 1])
        a = op.batch_norm(x, *(fb.const(p) for p in bn_params(3, 3)))
        c = op.conv2d(op.expand_dims(a, axis=[3]), w)
        fb.ret(op.batch_norm(c, *(fb.const(p) for p in bn_params(2, 4))) + c)
    module = fb.module
    after = optimized(module, "fold-batch-norm")
    assert ops(after, "batch_norm") == 0 and ops(after, "multiply") == 2 and ops(after, "conv2d") == 1
    check_c(module, "fold-batch-norm", [("n", 3, 5), (2, 3, 1, 1)])


def test_batch_norm_with_runtime_parameters_is_kept() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 3])
        g = fb.param("g", [3])
        rest = [fb.const(p) for p in bn_params(3, 5)[1:]]
        fb.ret(op.batch_norm(op.matmul(x, fb.const(rand((3, 3)))), g, *rest))
    after = optimized(fb.module, "fold-batch-norm")
    assert ops(after, "batch_norm") == 1


# --- simplify-layout --------------------------------------------------------------------------------------------------


def test_permute_dims_chains() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 2, 3, 4])
        same = op.permute_dims(op.permute_dims(x, axes=[0, 2, 1, 3]), axes=[0, 2, 1, 3])   # identity: removed
        one = op.permute_dims(op.permute_dims(same, axes=[1, 0, 2, 3]), axes=[3, 0, 2, 1])  # one permute_dims
        fb.ret(one)
    module = fb.module
    after = optimized(module, "simplify-layout")
    assert ops(module, "permute_dims") == 4 and ops(after, "permute_dims") == 1
    assert "axes = array<i64: 3, 1, 2, 0>" in rx.print_module(after)
    check_c(module, "simplify-layout", [("n", 2, 3, 4)])


def test_permute_dims_moving_only_unit_axes_is_a_reshape() -> None:
    """No element moves when only axes of extent 1 change places; a symbolic axis counts as moving."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 1, 5, 1])
        unit = op.permute_dims(x, axes=[0, 1, 3, 2])  # a reshape to [n, 1, 1, 5]
        real = op.permute_dims(x, axes=[2, 1, 0, 3])  # n and 5 swap: stays
        fb.ret(op.relu(unit), real)
    module = fb.module
    after = optimized(module, "simplify-layout")
    assert ops(after, "permute_dims") == 1 and ops(after, "reshape") == 1
    check_c(module, "simplify-layout", [("n", 1, 5, 1)])


def test_reshape_chains() -> None:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 6, 4])
        a = op.reshape(op.reshape(x, shape=[-1, 24]), shape=["n", 2, 3, 4])
        b = op.reshape(op.flatten(op.expand_dims(a, axis=[0])), shape=["n", 24])
        same = op.reshape(b, shape=["n", 24])   # to its operand's type: removed
        fb.ret(op.relu(same))
    module = fb.module
    after = optimized(module, "simplify-layout")
    assert ops(after, "reshape") == 1 and ops(after, "flatten") == 0 and ops(after, "expand_dims") == 0
    check_c(module, "simplify-layout", [("n", 6, 4)])


def test_batched_transpose_through_reshapes_is_one_permute() -> None:
    """The dynamo exporter's K^T: [b, h, n, d] -> [b*h, n, d] -> swap -> [b, h, d, n];
    and through a GQA repeat, [b, g, r, n, d] -> [b*g*r, n, d] -> swap -> [b, g*r, d, n]."""
    with rx.FunctionBuilder("main") as fb:
        k = fb.param("k", [2, 3, "n", 4])
        g = fb.param("g", [2, 3, 2, "n", 4])
        kt = op.reshape(op.permute_dims(op.reshape(k, shape=[6, "n", 4]), axes=[0, 2, 1]), shape=[2, 3, 4, "n"])
        gt = op.reshape(op.permute_dims(op.reshape(g, shape=[12, "n", 4]), axes=[0, 2, 1]), shape=[2, 6, 4, "n"])
        moved = op.reshape(op.permute_dims(op.reshape(k, shape=[6, "n", 4]), axes=[1, 0, 2]), shape=["n", 6, 4])
        fb.ret(kt, gt, moved)
    module = fb.module
    after = optimized(module, "simplify-layout")
    text = rx.print_module(after)
    assert text.count("axes = array<i64: 0, 1, 3, 2>") == 2  # k and the regrouped g, transposed in place
    assert "#relax.dims<[2, 6, n, 4]>" in text  # g's leading dims regrouped before the transpose
    assert "axes = array<i64: 1, 0, 2>" in text  # a permutation moving the rows is not a batched transpose
    check_c(module, "simplify-layout", [(2, 3, "n", 4), (2, 3, 2, "n", 4)])


def test_scalar_factor_moves_off_a_transposed_matmul_operand() -> None:
    """torch's attention scales q and K^T; the K^T factor moves to q, so the
    transpose meets the matmul (and offload reads it in place: oneDNN's
    transposed layout, or BLAS's flag under gemm=blas)."""
    with rx.FunctionBuilder("main") as fb:
        q = fb.param("q", [2, "n", 4])
        k = fb.param("k", [2, "n", 4])
        s = fb.const(np.float32(0.5))
        kt = op.permute_dims(k, axes=[0, 2, 1])
        scores = op.matmul(q * s, kt * s)
        by_tensor = op.matmul(q, kt * fb.const(rand((2, 4, 1), seed=3)))  # not one scalar: stays
        by_zero = op.matmul(q, kt * fb.const(np.float32(0)))  # zero (inf * 0 is NaN either way round): stays
        fb.ret(scores, by_tensor, by_zero)
    module = fb.module
    after = optimized(module, "simplify-layout")
    assert ops(after, "multiply") == 4  # (q * s twice: the moved factor is a multiply of its own)
    for spec, call in (("offload{lib=blas}", "_matmul_3x3_tb("), ("offload{lib=blas gemm=blas}", "@blas_matmul_3x3_tb(")):
        offloaded = rx.print_module(run_pipeline(module.clone(), f"simplify-layout,{spec}"))
        assert offloaded.count(call) == 1, spec
    check_c(module, "simplify-layout", [(2, "n", 4), (2, "n", 4)])


def test_take_of_a_constant_index_moves_through_layout_ops() -> None:
    """torch's nn.MultiheadAttention split of its packed projection:
    reshape (768 -> 3 x 256), permute_dims, squeeze, then a take per
    projection (indices 0, 1 and the negative -1) becomes a strided_slice of
    the projection per take; a take through a permute of a symbolic axis and
    one through a reshape that keeps the axis stay takes (of the axis they
    came from); an index out of range is left to the take's own check."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["s", "n", 768])
        packed = op.squeeze(op.permute_dims(op.reshape(x, shape=[1, "s", "n", 3, 256]), axes=[3, 1, 2, 0, 4]),
                            axis=[3])
        q, k, v = (op.take(packed, fb.const(np.int64(i)), axis=0) for i in (0, 1, -1))
        y = fb.param("y", [4, "n", 5])
        moved = op.take(op.permute_dims(y, axes=[1, 2, 0]), fb.const(np.int64(2)), axis=2)  # y's axis 0
        kept = op.take(op.reshape(y, shape=[4, "n", 5, 1]), fb.const(np.int64(-2)), axis=0)
        fb.ret(q, k, v, moved, kept)
    module = fb.module
    after = optimized(module, "simplify-layout")
    text = rx.print_module(after)
    assert ops(after, "take") == 2 and ops(after, "strided_slice") == 3 and ops(after, "squeeze") == 0
    assert "begin = #relax.dims<[512]>, end = #relax.dims<[768]>" in text  # index -1 of 3: the last 256
    check_c(module, "simplify-layout", [("n", "n", 768), (4, "n", 5)])

    with rx.FunctionBuilder("main") as fb:
        y = fb.param("y", [4, "n", 5])
        fb.ret(op.take(op.permute_dims(y, axes=[1, 2, 0]), fb.const(np.int64(4)), axis=2))
    assert ops(optimized(fb.module, "simplify-layout"), "permute_dims") == 1  # 4 is out of range: unchanged
    with pytest.raises(rx.RelaxError, match="index 4"):
        rx.compile(fb.module, target="c")["main"](rand((4, 2, 5)))


def test_take_through_layout_on_torch_mha_export() -> None:
    """The rewrite on the graph torch.onnx (dynamo) exports for
    nn.MultiheadAttention: no take is left, and the projection is not
    copied whole (tests/test_exported_models.py checks its results against
    onnxruntime)."""
    pytest.importorskip("torch")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import exported_models as em

    if em.available() is not None:
        pytest.skip(em.available())
    module = rx.from_onnx(em.export("mha", "dynamo"))
    before = ops(module, "take")
    after = optimized(module, "simplify-layout")
    assert before == 3 and ops(after, "take") == 0 and ops(after, "squeeze") == 0


# --- an exported graph ------------------------------------------------------------------------------------------------


def test_onnx_conv_batch_norm_relu_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    inits = {"W": rng.standard_normal((8, 3, 3, 3)).astype("float32"), "B": rng.standard_normal(8).astype("float32")}
    inits.update(zip(("g", "b", "m"), (rng.standard_normal(8).astype("float32") for _ in range(3))))
    inits["v"] = (rng.random(8) + 0.5).astype("float32")
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], epsilon=1e-3),
             helper.make_node("Relu", ["y"], ["z"])]
    model = onnx_model(nodes, [("x", TensorProto.FLOAT, ["N", 3, "H", 10])], ["z"], inits, opset=15)
    module = rx.from_onnx(model)
    after = optimized(module, ALL)
    assert ops(after, "batch_norm") == 0 and ops(after, "conv2d") == 1
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    exe = rx.compile(module, target="c", pipeline=f"{ALL},fast")
    for n, h in ((1, 7), (3, 10), (0, 5)):
        x = rand((n, 3, h, 10), seed=n)
        if n == 0:
            assert exe["main"](x).shape == (0, 8, (h + 1) // 2, 5)
            continue
        np.testing.assert_allclose(exe["main"](x), sess.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)


# --- expand-power -----------------------------------------------------------------------------------------------------


def power_module(exponents: list[object], dtype: str = "float32") -> object:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 4], dtype)
        fb.ret(fb.tuple(*[op.power(x, fb.const(np.asarray(e, dtype=dtype))) for e in exponents]))
    return fb.module


def test_expand_power_makes_small_constant_powers_multiplies() -> None:
    module = power_module([2.0, [3.0] * 4, 1.0, 4.0, 0.5, np.nan, [2.0, 2.0, 2.0, 3.0]])
    after = optimized(module, "expand-power")
    assert ops(module, "power") == 7 and ops(after, "power") == 3   # 0.5, NaN, the mixed exponent stay
    assert ops(after, "multiply") == 1 + 2 + 2
    check_c(module, "expand-power", [("n", 4)])


def test_expand_power_keeps_inf_nan_and_signed_zero() -> None:
    """x * x and x * x * x give what powf gives on the special values."""
    special = np.array([[np.inf, -np.inf, np.nan, -0.0], [0.0, -1.5, 3e19, -3e13]], dtype=np.float32)
    module = power_module([2.0, 3.0, 4.0])
    exe = rx.compile(module, target="c")
    with np.errstate(over="ignore", invalid="ignore"):
        want = [np.power(special, np.float32(k)) for k in (2, 3, 4)]
    for got, ref in zip(exe["main"](special), want, strict=True):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_expand_power_on_integers_wraps_like_numpy() -> None:
    module = power_module([2, 3], dtype="int32")
    exe = rx.compile(module, target="c")
    x = np.array([[70000, -70000, 2**31 - 1, -(2**31)], [0, 1, -1, 1291]], dtype=np.int32)
    for got, k in zip(exe["main"](x), (2, 3), strict=True):
        np.testing.assert_array_equal(got, np.power(x, np.int32(k)))


def _projections(bias: tuple[bool, ...], k: tuple[int, ...] = (8, 8, 8), out_dtype: str | None = None) -> object:
    """x @ W_i (+ b_i) for each i: attention's q/k/v projections of one operand."""
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8], "float32")
        outs = []
        for i, (with_bias, rows) in enumerate(zip(bias, k)):
            src = x if rows == 8 else op.strided_slice(x, axes=[1], begin=[0], end=[rows])
            y = op.matmul(src, fb.const(rand((rows, 3 + i), seed=i)), **({"out_dtype": out_dtype} if out_dtype else {}))
            outs.append(op.add(y, fb.const(rand((3 + i,), seed=10 + i))) if with_bias else y)
        fb.ret(fb.tuple(*outs))
    return fb.module


@pytest.mark.parametrize("bias", [(True, True, True), (False, False, False), (True, False, True)],
                         ids=["all-biased", "no-bias", "mixed"])
def test_combine_parallel_matmul(bias: tuple[bool, ...]) -> None:
    """One matmul by the joined weights, a column slice per projection; the
    biases are joined only when every projection has one (else the adds
    stay, on the slices). Equal to the evaluator at n = 0, 1 and 3."""
    module = _projections(bias)
    combined = run_pipeline(module.clone(), "combine-parallel-matmul")
    text = rx.print_module(roundtrip(combined))
    assert text.count("relax.matmul") == 1 and "tensor<8x12xf32>" in text and text.count("relax.strided_slice") == 3
    assert text.count("relax.add") == (1 if all(bias) else sum(bias))
    cases = [(rand((n, 8), seed=n),) for n in (0, 1, 3)]
    for (x,) in cases:
        assert_close(rx.evaluate(combined, "main", x), rx.evaluate(module, "main", x))
    check_levels(combined, cases)


def test_combine_parallel_matmul_non_cases() -> None:
    """A single matmul, weights of another row count (another operand: x's
    slice), and a matmul with out_dtype are left alone."""
    for module in (_projections((True,)), _projections((False, False), k=(8, 4)),
                   _projections((False, False), out_dtype="float64")):
        before = rx.print_module(module)
        assert rx.print_module(run_pipeline(module.clone(), "combine-parallel-matmul")) == before
