"""A graph op of your own: `relax.scaled_softsign`, y = scale * x / (1 + |x|).

One OpSpec holds the op's shape rule, numpy reference and legalization; after
`register_op` it builds, prints, parses, evaluates and compiles like a
built-in op, fuses with its neighbours in the default pipeline, and keeps the
symbolic batch dim all the way down.

    python examples/custom_op.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.ops.registry import ELEMWISE, OpSpec, Param, register_op


@register_op
class ScaledSoftsign(OpSpec):
    """y = scale * x / (1 + |x|), elementwise; float tensors only."""

    name = "scaled_softsign"
    inputs = ("x",)
    params = {"scale": Param("float", 1.0)}
    pattern = ELEMWISE

    def infer(self, ctx: Any, x: Any, scale: float) -> Any:
        if not x.dtype.startswith("float"):
            ctx.fail(f"expects a float tensor, got {x.dtype}")
        return x  # same shape and dtype, symbolic dims included

    def reference(self, x: np.ndarray, scale: float) -> np.ndarray:
        return (scale * x / (1 + np.abs(x))).astype(x.dtype)

    def legalize(self, pb: Any, inputs: list[Any], outputs: list[Any], scale: float) -> None:
        (x,), (out,) = inputs, outputs
        pb.compute(out, lambda *i: x[i] * scale / (pb.math("absf", x[i]) + 1.0))


def build() -> Any:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 16], "float32")
        w = fb.const(np.random.default_rng(0).standard_normal((16, 8)).astype("float32"))
        y = op.scaled_softsign(op.matmul(x, w), scale=2.0)
        fb.ret(op.add(y, 1.0))
    return fb.module


def main() -> None:
    module = rx.parse_module(rx.print_module(build()))  # the new op prints and parses back
    assert "relax.scaled_softsign" in rx.print_module(module)
    rng = np.random.default_rng(1)
    for target, pipeline in (("interp", "default"), ("c", "default"), ("c", "fast")):
        exe = rx.compile(module, target=target, pipeline=pipeline)
        for n in (1, 5):
            x = rng.standard_normal((n, 16)).astype("float32")
            got, want = exe.main(x), rx.evaluate(module, "main", x)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        print(f"{target:6} {pipeline:7}: matches the reference evaluator at n = 1 and 5")


if __name__ == "__main__":
    main()
