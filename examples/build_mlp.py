"""Builds an MLP with a dynamic batch with the Python API, prints its IR,
and runs it on both targets.

    python examples/build_mlp.py
"""

import numpy as np

import relax_xdsl as rx
from relax_xdsl import op

rng = np.random.default_rng(0)
w1, b1 = rng.standard_normal((784, 256)).astype("float32") * 0.03, np.zeros(256, "float32")
w2, b2 = rng.standard_normal((256, 10)).astype("float32") * 0.06, np.zeros(10, "float32")

with rx.FunctionBuilder("main") as fb:
    x = fb.param("x", ["n", 784], "float32")
    h = op.nn.relu(op.add(op.matmul(x, fb.const(w1)), fb.const(b1)))
    y = op.nn.softmax(op.add(op.matmul(h, fb.const(w2)), fb.const(b2)), axis=-1)
    fb.ret(y)

text = rx.print_module(fb.module)
print(text[:600], "...")
x = rng.standard_normal((4, 784)).astype("float32")
for target in ("c", "interp"):
    exe = rx.compile(fb.module, target=target)
    xs = x if target == "c" else x[:1]
    print(target, np.abs(exe.main(xs) - rx.evaluate(fb.module, "main", xs)).max())
