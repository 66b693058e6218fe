"""Side-by-side benchmarks: the compiled C executable against numpy.

    python benchmarks/run.py                 # all models, small and large sizes
    python benchmarks/run.py --models mlp --repeat 50

For each model: compile time (pipeline + C compiler) cold (empty cache) and
warm (cached library), then, per size, the median run time of numpy and of
the C executable on the same inputs (one executable serves every size), the
ratio C/numpy (< 1 means C is faster) and the achieved GFLOP/s. Results are
checked against numpy before timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

import relax_xdsl as rx
from relax_xdsl.models import MODELS

SIZES: dict[str, list[tuple[int, ...]]] = {
    "mlp": [(1,), (64,), (512,)],
    "cnn": [(1,), (32,)],
    "transformer": [(1, 16), (8, 128)],
}


def median_time(fn: Callable[[], object], repeat: int, budget: float) -> float:
    """Median of up to `repeat` runs (fewer if they exceed `budget` seconds)."""
    fn()  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat and (len(times) < 3 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compile_times(module: object) -> tuple[rx.Executable, float, float]:
    """Cold compile (fresh cache directory) and warm compile (same directory)."""
    old = os.environ.get("RELAX_XDSL_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RELAX_XDSL_CACHE_DIR"] = cache
        try:
            t0 = time.perf_counter()
            rx.compile(module, target="c")
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            exe = rx.compile(module, target="c")
            warm = time.perf_counter() - t0
        finally:
            if old is None:
                os.environ.pop("RELAX_XDSL_CACHE_DIR", None)
            else:
                os.environ["RELAX_XDSL_CACHE_DIR"] = old
    return exe, cold, warm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per timing at most (after 3 runs)")
    args = ap.parse_args(argv)

    rows = []
    for name in args.models:
        model = MODELS[name]()
        exe, cold, warm = compile_times(model.module)
        print(f"{name}: compile cold {cold:.2f} s, warm {warm:.3f} s", flush=True)
        for size in SIZES[name]:
            inputs = model.make_inputs(*size)
            want = model.numpy_fn(*inputs)
            got = exe["main"](*inputs)
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
            t_np = median_time(lambda: model.numpy_fn(*inputs), args.repeat, args.budget)  # noqa: B023
            t_c = median_time(lambda: exe["main"](*inputs), args.repeat, args.budget)  # noqa: B023
            gflops = model.flops(*size) / t_c / 1e9
            rows.append((name, size, t_np, t_c, cold, warm, gflops))
            print(f"  {name} {size}: numpy {t_np * 1e3:9.3f} ms  c {t_c * 1e3:9.3f} ms  "
                  f"c/numpy {t_c / t_np:6.2f}x  {gflops:6.2f} GFLOP/s", flush=True)

    print("\n| model | sizes | numpy median (ms) | C median (ms) | C / numpy | C GFLOP/s | compile cold (s) | warm (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, size, t_np, t_c, cold, warm, gflops in rows:
        print(f"| {name} | {size} | {t_np * 1e3:.3f} | {t_c * 1e3:.3f} | {t_c / t_np:.2f} | {gflops:.2f} | {cold:.2f} | {warm:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
