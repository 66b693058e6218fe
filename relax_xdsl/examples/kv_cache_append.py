"""Appends one row to a preallocated KV cache in place, with
`relax.call_tir_inplace`, and shows that the step copies nothing of the cache.

    python relax_xdsl/examples/kv_cache_append.py

`@step(cache: [layers, max_len, d], row: [1, d], pos: int64 [1], layer:
int64 [1])` writes `row` at `cache[layer, pos]` (a negative position counts
from the end; one outside the cache is a BoundsError) and returns the new
length `pos + 1` (a fresh output of the same call, inplace_indices [0, -1]). The cache is a parameter, so the write lands in the caller's
array, as in TVM: the host function neither allocates nor copies a buffer of
the cache's size, and one step costs the same at any cache size.
"""

from __future__ import annotations

import time

import numpy as np
from relax_xdsl.dialects.relax import TensorType
from relax_xdsl.dialects.tir import CheckIndexOp, StoreOp
from xdsl.dialects.builtin import IndexType

import relax_xdsl as rx
from relax_xdsl.tir_builder import PrimFuncBuilder


def append_program() -> object:
    """cache[layer, pos, :] = row[0, :], both indices checked (-n <= i < n);
    length[0] = pos + 1. The cache is input 0 and the in-place output: the
    program takes the inputs, then only the fresh output `length`."""
    pb = PrimFuncBuilder("kv_append", [("cache", ["l", "m", "d"], "float32"), ("row", [1, "d"], "float32"),
                                       ("pos", [1], "int64"), ("layer", [1], "int64"), ("length", [1], "int64")])
    cache, row, pos, layer, length = pb.params
    at = []
    for value, extent, what in ((layer, "l", "layer"), (pos, "m", "position")):
        i = pb.cast(value[pb.index(0)], IndexType())
        pb.emit(CheckIndexOp(i.value, pb.index(extent).value, f"kv_append {what}"))
        at.append(pb.select(i < 0, i + pb.index(extent), i))
    pb.for_each(["d"], lambda j: pb.emit(StoreOp(row[pb.index(0), j].value, cache.value, [at[0].value, at[1].value,
                                                                                         j.value])))
    pb.emit(StoreOp(pb.cast(at[1] + pb.index(1), "int64").value, length.value, [pb.index(0).value]))
    return pb.finish()


def build_module(layers: int | str = "l", max_len: int | str = "m", d: int | str = "d") -> object:
    with rx.FunctionBuilder("step") as fb:
        fb.add_func(append_program())
        cache = fb.param("cache", [layers, max_len, d], "float32")
        row = fb.param("row", [1, d], "float32")
        pos = fb.param("pos", [1], "int64")
        layer = fb.param("layer", [1], "int64")
        _, length = fb.call_tir_inplace("kv_append", [cache, row, pos, layer], [0, -1],
                                        [cache.type, TensorType.of([1], "int64")])
        fb.ret(length)
    return fb.module


def host_function(module: object, pipeline: str = "fast") -> str:
    """The lowered host function @step, as text."""
    text = rx.print_module(rx.lower(module, pipeline))
    return text.split("func.func @step(")[1].split("\n  }\n")[0]


def main() -> None:
    module = build_module(2, "m", 64)
    host = host_function(module)
    allocs = [line for line in host.splitlines() if "memref.alloc" in line]
    assert "memref.copy" not in host and all("memref<1xi64>" in line for line in allocs), host
    print(f"host @step: {len(allocs)} alloc(s), all memref<1xi64> (the length); no memref.copy")
    exe = rx.compile(module, target="c", pipeline="fast")
    rng = np.random.default_rng(0)
    for max_len in (256, 65536):
        cache = np.zeros((2, max_len, 64), np.float32)
        row = rng.standard_normal((1, 64)).astype(np.float32)
        exe.step(cache, row, np.array([3], np.int64), np.array([1], np.int64))
        assert np.array_equal(cache[1, 3], row[0]) and not cache[0].any()
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            exe.step(cache, row, np.array([5], np.int64), np.array([1], np.int64))
            times.append(time.perf_counter() - t0)
        print(f"cache [2, {max_len}, 64] ({cache.nbytes / 2**20:.1f} MiB): one step {np.median(times) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
