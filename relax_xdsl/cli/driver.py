"""`relax-xdsl`: the user-facing driver.

    relax-xdsl demo                          # bundled MLP, dynamic batch, two sizes
    relax-xdsl run model.mlir --shape n=8    # random inputs, compiled, summary
    relax-xdsl run model.mlir --input x=x.npy --target interp --check

Errors print one line (what and where) and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

import relax_xdsl as rx
from relax_xdsl.errors import RelaxError


def _bundled(name: str) -> str:
    return resources.files("relax_xdsl").joinpath("examples", name).read_text()


def _load(path: str) -> object:
    text = Path(path).read_text()
    return rx.parse_module(text, name=path)


def _inputs(func: object, given: dict[str, np.ndarray], shapes: dict[str, int], seed: int) -> list[np.ndarray]:
    """Given arrays, or random ones whose dims come from --shape bindings."""
    from relax_xdsl.dialects.relax import FunctionOp
    from relax_xdsl.shape import evaluate_dim, sym

    assert isinstance(func, FunctionOp)
    rng = np.random.default_rng(seed)
    bindings = {sym(k): v for k, v in shapes.items()}
    out = []
    for i, arg in enumerate(func.args):
        name = arg.name_hint or f"arg{i}"
        if name in given:
            out.append(given[name])
            continue
        t = arg.type
        try:
            shape = tuple(evaluate_dim(d, bindings) for d in t.sym_shape)  # type: ignore[attr-defined]
        except RelaxError as err:
            raise RelaxError(f"input {name}: {err}; give its size with --shape SYMBOL=N or --input {name}=FILE.npy") from None
        dtype = t.dtype  # type: ignore[attr-defined]
        if dtype == "bool":
            out.append(rng.random(shape) > 0.5)
        elif dtype.startswith(("int", "uint")):
            out.append(rng.integers(0, 5, size=shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


def _summary(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_summary(v) for v in value) + ")"
    a = np.asarray(value)
    if a.size and a.dtype.kind == "f":
        return f"{a.dtype}{list(a.shape)} mean={a.mean():.4g} min={a.min():.4g} max={a.max():.4g}"
    return f"{a.dtype}{list(a.shape)}"


def _max_error(a: object, b: object) -> float:
    if isinstance(a, tuple):
        return max(_max_error(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    x, y = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0


def cmd_demo(args: argparse.Namespace) -> int:
    text = _bundled("mlp.mlir")
    t0 = time.perf_counter()
    module = rx.parse_module(text, name="mlp.mlir")
    t_parse = time.perf_counter() - t0
    print(f"bundled example: MLP 784-256-10 + softmax, dynamic batch n ({len(text) / 1e6:.1f} MB of IR, parsed in {t_parse:.2f} s)")
    t0 = time.perf_counter()
    exe = rx.compile(module, target=args.target)
    print(f"compiled for target {args.target} in {time.perf_counter() - t0:.2f} s "
          f"(pipeline {exe.timings['pipeline']:.2f} s, backend {exe.timings['backend']:.2f} s)")
    worst = 0.0
    for n in (1, 64) if args.target == "c" else (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 784)).astype(np.float32)
        t0 = time.perf_counter()
        y = exe["main"](x)
        t_run = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = rx.evaluate(module, "main", x)
        t_ref = time.perf_counter() - t0
        err = _max_error(y, ref)
        worst = max(worst, err)
        print(f"  n={n:<4} output {_summary(y)}  run {t_run * 1e3:.2f} ms, reference evaluator {t_ref * 1e3:.2f} ms, "
              f"max |difference| {err:.2e}")
    ok = worst < 1e-4
    print("OK: compiled results match the reference evaluator" if ok else "MISMATCH against the reference evaluator")
    return 0 if ok else 1


def _parse_assignments(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RelaxError(f"{what} expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from relax_xdsl.evaluator import find_function

    module = _load(args.model)
    shapes = {}
    for k, v in _parse_assignments(args.shape, "--shape").items():
        try:
            shapes[k] = int(v)
        except ValueError:
            raise RelaxError(f"--shape {k}={v}: not an integer") from None
    given = {k: np.load(v) for k, v in _parse_assignments(args.input, "--input").items()}
    func = find_function(module, args.function)  # type: ignore[arg-type]
    inputs = _inputs(func, given, shapes, args.seed)
    for a, x in zip(func.args, inputs):
        print(f"input {a.name_hint}: {_summary(x)}")
    t0 = time.perf_counter()
    if args.target == "eval":
        result = rx.evaluate(module, args.function, *inputs)  # type: ignore[arg-type]
    else:
        exe = rx.compile(module, target=args.target)  # type: ignore[arg-type]
        print(f"compiled for {args.target} in {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        result = exe[args.function](*inputs)
    print(f"ran in {(time.perf_counter() - t0) * 1e3:.2f} ms")
    print(f"output: {_summary(result)}")
    if args.check and args.target != "eval":
        err = _max_error(result, rx.evaluate(module, args.function, *inputs))  # type: ignore[arg-type]
        print(f"max |difference| from the reference evaluator: {err:.2e}")
        return 0 if err < 1e-3 else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="relax-xdsl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compile and run the bundled MLP at two batch sizes")
    demo.add_argument("--target", choices=("c", "interp"), default="c")
    demo.set_defaults(fn=cmd_demo)
    run = sub.add_parser("run", help="run a textual-IR model on given or random inputs")
    run.add_argument("model")
    run.add_argument("--function", default="main")
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    run.add_argument("--shape", action="append", default=[], metavar="SYMBOL=N")
    run.add_argument("--target", choices=("c", "interp", "eval"), default="c")
    run.add_argument("--check", action="store_true", help="compare with the reference evaluator")
    run.add_argument("--seed", type=int, default=0)
    run.set_defaults(fn=cmd_run)
    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except (RelaxError, TypeError, OSError, ValueError, KeyError) as err:
        print(f"relax-xdsl: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
