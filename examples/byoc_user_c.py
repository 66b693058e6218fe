"""Bring your own code: a C function of your own as a library, called from a
graph, and an offload pattern that sends a graph op to it.

`register_library_function` declares the C symbol the library provides (its
source compiled into the generated library) and a numpy reference (what the
evaluator and the interpreter run). A `lib.func` names it; `fb.call_lib`
calls it in destination-passing style. An `OffloadPattern` replaces matching
graph ops by such calls in `offload{lib=...}`.

    python examples/byoc_user_c.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
from relax_xdsl.dialects.lib import LibFuncOp
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import BufferType
from relax_xdsl.passes.offload import OffloadPattern, offload_module, register_offload_pattern

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.libraries import register_library_function

# The calling convention: one pointer per buffer (inputs, then outputs), then
# every dim of every buffer in the same order, as int64_t.
LEAKY_C = """
void mylib_leaky_relu(float* x, float* out, int64_t n0, int64_t n1) {
  (void)n1;
  for (int64_t i = 0; i < n0; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.125f * x[i];
}
"""


def leaky_reference(x: np.ndarray, out: np.ndarray) -> None:
    out[...] = np.where(x > 0, x, np.float32(0.125) * x)


register_library_function("mylib.leaky_relu", leaky_reference, c_source=LEAKY_C, symbol="mylib_leaky_relu",
                          pure=True)


def leaky_func(name: str = "leaky") -> LibFuncOp:
    buf = BufferType.of(["n"], "float32")
    return LibFuncOp(name, [buf, buf], "mylib_leaky_relu", "mylib", reference="mylib.leaky_relu", pure=True)


def called_directly() -> Any:
    """A graph calling the library function itself."""
    with rx.FunctionBuilder("main") as fb:
        fb.add_func(leaky_func())
        x = fb.param("x", ["n"], "float32")
        y = fb.call_lib("leaky", [op.multiply(x, 3.0)], TensorType.of(["n"], "float32"))
        fb.ret(op.exp(y))
    return fb.module


def match_1d_float_relu(o: Any) -> LibFuncOp | None:
    """Offload pattern: a 1-D float32 relu goes to the library (a deliberately
    different function, leaky, so the output shows which one ran)."""
    t = o.inputs[0].type
    return leaky_func("leaky_offloaded") if t.ndim == 1 and t.dtype == "float32" else None


register_offload_pattern("mylib", OffloadPattern("relu", match_1d_float_relu))


def offloaded() -> Any:
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n"], "float32")
        fb.ret(op.add(op.relu(x), 1.0))
    return offload_module(fb.module, "mylib")


def main() -> None:
    rng = np.random.default_rng(0)
    for title, module, expect in (
        ("lib.call from a graph", called_directly(), lambda x: np.exp(np.where(3 * x > 0, 3 * x, 0.375 * x))),
        ("relu offloaded to mylib", offloaded(), lambda x: np.where(x > 0, x, 0.125 * x) + 1),
    ):
        assert "lib.call" in rx.print_module(module)
        for target in ("interp", "c"):
            exe = rx.compile(module, target=target)
            for n in (1, 7):
                x = rng.standard_normal(n).astype("float32")
                got = exe.main(x)
                np.testing.assert_allclose(got, rx.evaluate(module, "main", x), rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(got, expect(x).astype("float32"), rtol=1e-5, atol=1e-6)
        print(f"{title}: interp and C match the reference evaluator at n = 1 and 7")


if __name__ == "__main__":
    main()
