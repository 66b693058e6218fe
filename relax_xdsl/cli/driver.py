"""`relax-xdsl`: the user-facing driver.

    relax-xdsl demo                                    # bundled MLP, dynamic batch, two sizes
    relax-xdsl import model.onnx -o model.mlir         # ONNX -> textual IR (weights inline, hex)
    relax-xdsl import model.onnx -o model.mlir --params-file model.npz   # weights in a side file
    relax-xdsl run model.onnx --shape batch=8          # random inputs, compiled, summary
    relax-xdsl run model.mlir --input x=x.npy --params model.npz --target interp --check
    relax-xdsl run model.onnx --shape batch=8 --output out.npz   # outputs saved: output0, output1, ...
    relax-xdsl bench model.onnx --shape batch=64 --pipeline fast --ort
    relax-xdsl build model.onnx -o out/ --pipeline fast   # C library + model.h + run_model.c, no Python at run time
    relax-xdsl cache info                              # the compile cache: path, entries, size
    relax-xdsl cache clear                             # remove its entries

Models are textual IR (`.mlir`) or ONNX (`.onnx`, needs the [onnx] extra).
Symbols without a given input take their size from `--shape SYMBOL=N`
(a symbol of the function's inputs). Given inputs are checked against the
signature (dtype, rank, dims) before compiling. Long steps print progress to
stderr, and a compile still running after 2 s each pass as it ends;
`--verbose` prints each pass of the pipeline and its time from the start.
`run --check` names each output past `--tolerance` on stderr and exits 1.
Errors print one line (what and where) and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import relax_xdsl as rx
from relax_xdsl.cli.compile_progress import compile_with_progress
from relax_xdsl.cli.run_outputs import compare, flat_outputs, max_abs_error, save_outputs
from relax_xdsl.cli.version import version_line
from relax_xdsl.dialects.relax import FunctionOp, PrimType, ShapeType, TensorType
from relax_xdsl.errors import RelaxError


class Progress:
    """Step lines on stderr (`[step] ... done in 0.31 s`); with verbose, each pass."""

    def __init__(self, verbose: bool, quiet: bool = False):
        self.verbose = verbose
        self.quiet = quiet

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        self.say(f"{what} ...")
        t0 = time.perf_counter()
        yield
        self.say(f"{what}: done in {time.perf_counter() - t0:.2f} s")

    def compile(self, module: Any, target: str, pipeline: str) -> rx.Executable:
        """Each pass is shown with --verbose, or once the compile has run
        compile_progress.PROGRESS_AFTER_SECONDS."""
        with self.step(f"compiling for {target} (pipeline {pipeline})"):
            exe = compile_with_progress(module, target, pipeline, self.say, always=self.verbose)
        self.say(f"  pipeline {exe.timings['pipeline']:.2f} s, backend {exe.timings['backend']:.2f} s")
        return exe


def _bundled(name: str) -> str:
    return resources.files("relax_xdsl").joinpath("examples", name).read_text()


def _is_onnx(path: str) -> bool:
    return path.endswith(".onnx")


def _load(path: str, progress: Progress) -> Any:
    """A module from textual IR or ONNX (by extension)."""
    if not Path(path).is_file():
        raise RelaxError(f"{path}: no such file")
    if _is_onnx(path):
        with progress.step(f"importing {path}"):
            return rx.from_onnx(path)
    with progress.step(f"parsing {path}"):
        return rx.parse_module(Path(path).read_text(), name=path)


def _signature_symbols(func: FunctionOp) -> list[str]:
    """The symbols of the function's parameter types: the ones --shape can set."""
    from relax_xdsl.shape import free_symbols

    dims: list[Any] = []
    for arg in func.args:
        t = arg.type
        if isinstance(t, TensorType):
            dims.extend(t.sym_shape)
        elif isinstance(t, ShapeType):
            dims.extend(t.dims.data)
        elif isinstance(t, PrimType) and t.sym_value is not None:
            dims.append(t.sym_value)
    return sorted(s.name for s in free_symbols(dims))


def _shape_bindings(items: Sequence[str]) -> dict[str, int]:
    """--shape SYMBOL=N with N >= 0; read before the model is loaded, so a
    typo fails at once."""
    shapes = {}
    for k, v in _parse_assignments(items, "--shape", "SYMBOL=N").items():
        try:
            shapes[k] = int(v)
        except ValueError:
            raise RelaxError(f"--shape {k}={v}: the size {v!r} is not an integer") from None
        if shapes[k] < 0:
            raise RelaxError(f"--shape {k}={v}: a size cannot be negative")
    return shapes


def _check_shape_symbols(shapes: dict[str, int], func: FunctionOp) -> dict[str, int]:
    """Each --shape symbol must be one of the function's input symbols."""
    known = _signature_symbols(func)
    for k, v in shapes.items():
        if k not in known:
            where = f"its input symbols are {', '.join(known)}" if known else "its inputs have no symbolic dims"
            raise RelaxError(f"--shape {k}={v}: @{func.sym_name.data} has no symbol {k!r}; {where}")
    return shapes


def _given_inputs(args: argparse.Namespace) -> dict[str, np.ndarray]:
    from relax_xdsl.frontend.onnx_import import identifier

    given: dict[str, np.ndarray] = {}
    if getattr(args, "params", None):
        with np.load(args.params) as data:
            given.update({identifier(k, k): data[k] for k in data.files})
    for k, v in _parse_assignments(args.input, "--input").items():
        try:
            given[identifier(k, k)] = np.load(v)
        except (OSError, ValueError) as err:
            raise RelaxError(f"--input {k}={v}: cannot read a .npy array ({err})") from None
    return given


def _inputs(func: FunctionOp, given: dict[str, np.ndarray], shapes: dict[str, int], seed: int) -> list[Any]:
    """Given arrays, or random ones whose dims come from --shape bindings
    (and from the dims of the given arrays); all of them checked against the
    signature as a call would check them (bind_inputs), so a wrong dtype or
    rank is reported before anything is compiled."""
    from relax_xdsl.evaluator import bind_inputs
    from relax_xdsl.shape import bind_shape, evaluate_dim, sym

    rng = np.random.default_rng(seed)
    bindings = {sym(k): v for k, v in shapes.items()}
    names = [arg.name_hint or f"arg{i}" for i, arg in enumerate(func.args)]
    unknown = set(given) - set(names)
    if unknown:
        raise RelaxError(f"no input named {', '.join(sorted(unknown))} (inputs: {', '.join(names)})")
    for name, arg in zip(names, func.args):
        if name in given and isinstance(arg.type, TensorType):
            bind_shape(arg.type.sym_shape, np.shape(given[name]), bindings, f"input {name}")
    out: list[Any] = []
    for name, arg in zip(names, func.args):
        if name in given:
            out.append(given[name])
            continue
        t = arg.type
        dims = t.sym_shape if isinstance(t, TensorType) else t.dims.data if isinstance(t, ShapeType) else \
            [t.sym_value] if isinstance(t, PrimType) and t.sym_value is not None else []
        try:
            values = tuple(evaluate_dim(d, bindings) for d in dims)
        except RelaxError as err:
            raise RelaxError(f"input {name}: {err}; give its size with --shape SYMBOL=N or --input {name}=FILE.npy") \
                from None
        if isinstance(t, ShapeType):
            out.append(values)
        elif isinstance(t, PrimType) and values:
            out.append(np.asarray(values[0], dtype=t.dtype)[()])
        elif isinstance(t, (TensorType, PrimType)):
            value = _random(rng, values, t.dtype)
            out.append(value if isinstance(t, TensorType) else value[()])
        else:
            raise RelaxError(f"input {name}: no random value for type {t}; give it with --input {name}=FILE.npy")
    bind_inputs(func, out)  # the check a call makes, before any compile
    return out


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith(("int", "uint")):
        return rng.integers(0, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _summary(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_summary(v) for v in value) + ")"
    a = np.asarray(value)
    if a.size and a.dtype.kind == "f":
        return f"{a.dtype}{list(a.shape)} mean={a.mean():.4g} min={a.min():.4g} max={a.max():.4g}"
    return f"{a.dtype}{list(a.shape)}"


def _parse_assignments(items: Sequence[str], what: str, form: str = "NAME=VALUE") -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RelaxError(f"{what} expects {form}, got {item!r}")
        out[name] = value
    return out


def _ort_session(path: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise RelaxError("--ort needs onnxruntime: pip install 'relax_xdsl[bench]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _ort_feed(sess: Any, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    inits = {vi.name for vi in sess.get_inputs()}
    names = [i.name for i in sess.get_inputs()]
    if len(names) != len(inputs):
        raise RelaxError(f"onnxruntime expects {len(names)} inputs ({sorted(inits)}), the module takes {len(inputs)}")
    return dict(zip(names, inputs))


# -- commands -------------------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    progress = Progress(args.verbose)
    text = _bundled("mlp.mlir")
    t0 = time.perf_counter()
    module = rx.parse_module(text, name="mlp.mlir")
    t_parse = time.perf_counter() - t0
    print(f"bundled example: MLP 784-256-10 + softmax, dynamic batch n ({len(text) / 1e6:.1f} MB of IR, "
          f"parsed in {t_parse:.2f} s)")
    t0 = time.perf_counter()
    exe = compile_with_progress(module, args.target, "default", progress.say, always=args.verbose)
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
        err = max_abs_error(np.asarray(y), np.asarray(ref))
        worst = max(worst, err)
        print(f"  n={n:<4} output {_summary(y)}  run {t_run * 1e3:.2f} ms, reference evaluator {t_ref * 1e3:.2f} ms, "
              f"max |difference| {err:.2e}")
    ok = worst < 1e-4
    print("OK: compiled results match the reference evaluator" if ok else "MISMATCH against the reference evaluator")
    return 0 if ok else 1


def cmd_import(args: argparse.Namespace) -> int:
    progress = Progress(args.verbose)
    if not _is_onnx(args.model):
        raise RelaxError(f"{args.model}: import takes an .onnx model")
    shapes = {}
    for k, v in _parse_assignments(args.input_shape, "--input-shape").items():
        shapes[k] = [int(d) if d.strip().isdigit() else d.strip() for d in v.split(",")]
    with progress.step(f"importing {args.model}"):
        result = rx.from_onnx(args.model, keep_params_in_input=bool(args.params_file), shapes=shapes or None)
    module, params = result if args.params_file else (result, {})
    with progress.step("printing IR"):
        text = rx.print_module(module)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        progress.say(f"wrote {args.output} ({len(text) / 1e6:.2f} MB)")
    if args.params_file:
        np.savez(args.params_file, **params)
        progress.say(f"wrote {args.params_file}: {len(params)} weights "
                     f"({sum(a.nbytes for a in params.values()) / 1e6:.2f} MB); pass it to run with --params")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from relax_xdsl.evaluator import find_function

    progress = Progress(args.verbose)
    if args.ort and not _is_onnx(args.model):
        raise RelaxError("--ort compares with onnxruntime, which needs an .onnx model")
    shapes = _shape_bindings(args.shape)
    module = _load(args.model, progress)
    func = find_function(module, args.function)
    inputs = _inputs(func, _given_inputs(args), _check_shape_symbols(shapes, func), args.seed)
    for a, x in zip(func.args, inputs):
        print(f"input {a.name_hint}: {_summary(x)}")
    if args.target == "eval":
        t0 = time.perf_counter()
        result = rx.evaluate(module, args.function, *inputs)
    else:
        exe = progress.compile(module, args.target, args.pipeline)
        t0 = time.perf_counter()
        result = exe[args.function](*inputs)
    print(f"ran in {(time.perf_counter() - t0) * 1e3:.2f} ms")
    print(f"output: {_summary(result)}")
    outputs = flat_outputs(func, result)
    if args.output:
        written = save_outputs(args.output, outputs)
        progress.say(f"wrote {written}: {', '.join(name for name, _ in outputs)}")
    failures: list[str] = []
    if args.check and args.target != "eval":
        with progress.step("reference evaluator"):
            want = [a for _, a in flat_outputs(func, rx.evaluate(module, args.function, *inputs))]
        cmp = compare(outputs, want, "the reference evaluator", args.tolerance)
        print(f"max |difference| from the reference evaluator: {cmp.worst:.2e}")
        failures += cmp.failures
    if args.ort:
        sess = _ort_session(args.model)
        cmp = compare(outputs, sess.run(None, _ort_feed(sess, inputs)), "onnxruntime", args.tolerance)
        print(f"max |difference| from onnxruntime: {cmp.worst:.2e}")
        failures += cmp.failures
    for line in failures:
        print(f"relax-xdsl: check failed: {line}", file=sys.stderr)
    return 1 if failures else 0


def _median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def cmd_bench(args: argparse.Namespace) -> int:
    """A labelled table on stdout; each stage's progress on stderr as it ends."""
    from relax_xdsl.evaluator import find_function

    progress = Progress(args.verbose)
    if args.ort and not _is_onnx(args.model):
        raise RelaxError("--ort compares with onnxruntime, which needs an .onnx model")
    shapes = _shape_bindings(args.shape)
    t0 = time.perf_counter()
    module = _load(args.model, progress)
    t_load = time.perf_counter() - t0
    func = find_function(module, args.function)
    inputs = _inputs(func, _given_inputs(args), _check_shape_symbols(shapes, func), args.seed)
    print(f"inputs: {', '.join(f'{a.name_hint} {_summary(x)}' for a, x in zip(func.args, inputs))}")
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp, _env("RELAX_XDSL_CACHE_DIR", tmp):  # a cold compile: empty cache
        exe = progress.compile(module, args.target, args.pipeline)
        cold = exe.timings
        with progress.step("compiling again (library cached)"):
            t0 = time.perf_counter()
            rx.compile(module, target=args.target, pipeline=args.pipeline)
            warm = time.perf_counter() - t0
    print(f"load {t_load:.2f} s; compile cold {cold['pipeline'] + cold['backend']:.2f} s "
          f"(pipeline {cold['pipeline']:.2f} s, backend {cold['backend']:.2f} s), cached {warm:.2f} s")
    candidates: list[tuple[str, Callable[[], Any]]] = [
        (f"relax_xdsl {args.target} ({args.pipeline})", lambda: exe[args.function](*inputs))]
    if args.ort:
        sess = _ort_session(args.model)
        feed = _ort_feed(sess, inputs)
        candidates.append(("onnxruntime (2 threads)", lambda: sess.run(None, feed)))
    for name, fn in candidates:
        with progress.step(f"timing {name}: {args.repeat} runs"):
            rows.append((name, *_median_ms(fn, args.repeat)))
    base = rows[0][1]
    print(f"{f'implementation ({args.repeat} runs)':32} {'median ms':>10} {'min ms':>10} {'x row 1':>8}")
    for name, med, best in rows:
        print(f"{name:32} {med:10.3f} {best:10.3f} {med / base if base else 0:8.2f}")
    return 0


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def cmd_build(args: argparse.Namespace) -> int:
    """libmodel.so, model.h, run_model.c and a Makefile in the output directory (relax_xdsl/aot.py)."""
    from relax_xdsl.aot import build

    progress = Progress(args.verbose)
    module = _load(args.model, progress)
    with progress.step(f"building {args.output} (pipeline {args.pipeline}, cpu {args.cpu})"):
        result = build(module, args.output, pipeline=args.pipeline, cpu=args.cpu, function=args.function,
                       about=Path(args.model).name)
    files = [result.library, result.header, result.directory / "run_model.c", result.directory / "Makefile",
             *result.copied]
    for f in files:
        print(f"wrote {f} ({_size(f.stat().st_size)})")
    print(f"entry point {result.entry}; `make -C {result.directory}` builds run_model: "
          f"./run_model IN0.npy ... OUT_PREFIX")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from relax_xdsl.backend import compile_cache

    directory = compile_cache.cache_dir()
    if args.action == "clear":
        count, total = compile_cache.clear(directory)
        print(f"removed {count} entries ({_size(total)}) from {directory}")
        return 0
    count, total = compile_cache.info(directory)
    print(f"path: {directory}")
    print(f"entries: {count}")
    print(f"size: {_size(total)} of at most {_size(compile_cache.max_bytes())} ({compile_cache.MAX_BYTES_ENV})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="relax-xdsl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=version_line("relax-xdsl"),
                    help="print relax_xdsl's version and exit")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="print each pass and its time")
    sub = ap.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", parents=[common], help="compile and run the bundled MLP at two batch sizes")
    demo.add_argument("--target", choices=("c", "interp"), default="c")
    demo.set_defaults(fn=cmd_demo)

    imp = sub.add_parser("import", parents=[common], help="ONNX model -> textual IR")
    imp.add_argument("model")
    imp.add_argument("-o", "--output", help="output file (default: stdout)")
    imp.add_argument("--params-file", metavar="FILE.npz",
                     help="keep the weights as function parameters and write them to this file")
    imp.add_argument("--input-shape", action="append", default=[], metavar="NAME=d0,d1,...",
                     help="override an input's shape (ints or symbol names)")
    imp.set_defaults(fn=cmd_import)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="a .mlir or .onnx file")
        p.add_argument("--function", default="main")
        p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
        p.add_argument("--params", metavar="FILE.npz", help="weights written by import --params-file")
        p.add_argument("--shape", action="append", default=[], metavar="SYMBOL=N",
                       help="the size of a symbol of the inputs' dims (N >= 0), for the random inputs")
        p.add_argument("--pipeline", default="default", help="default (optimizing: BLAS, fusion), baseline "
                       "(unoptimised), debug, fast (= default) or a pass pipeline")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--ort", action="store_true", help="compare with onnxruntime (.onnx models)")

    run = sub.add_parser("run", parents=[common], help="run a model on given or random inputs")
    model_args(run)
    run.add_argument("--target", choices=("c", "interp", "eval"), default="c")
    run.add_argument("--check", action="store_true",
                     help="compare with the reference evaluator; an output past the tolerance is named on stderr "
                          "and the exit code is 1")
    run.add_argument("--tolerance", type=float, default=1e-3, help="largest max |difference| accepted")
    run.add_argument("--output", metavar="FILE.npz",
                     help="save the outputs (np.savez; keys output0, output1, ... in result order, tuples flattened)")
    run.set_defaults(fn=cmd_run)

    bench = sub.add_parser("bench", parents=[common], help="compile time and run-time medians")
    model_args(bench)
    bench.add_argument("--target", choices=("c", "interp"), default="c")
    bench.add_argument("--repeat", type=int, default=20)
    bench.set_defaults(fn=cmd_bench)

    build = sub.add_parser("build", parents=[common],
                           help="write a C library, model.h and a runner that need no Python (ahead of time)")
    build.add_argument("model", help="a .mlir or .onnx file")
    build.add_argument("-o", "--output", required=True, metavar="DIR",
                       help="output directory: libmodel.so, model.h, run_model.c, Makefile")
    build.add_argument("--pipeline", default="default", help="default, fast, debug or a pass pipeline")
    build.add_argument("--cpu", default="native",
                       help="the CPU to generate code for (gcc -march: native, x86-64-v2, x86-64-v3, skylake, ...)")
    build.add_argument("--function", default="main", help="the entry point run_model calls (all get one in model.h)")
    build.set_defaults(fn=cmd_build)

    cache = sub.add_parser("cache", parents=[common], help="the compiled-library cache: info or clear")
    cache.add_argument("action", choices=("info", "clear"),
                       help="info: path, entry count and size; clear: remove the entries")
    cache.set_defaults(fn=cmd_cache)

    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except (RelaxError, TypeError, OSError, ValueError, KeyError) as err:
        print(f"relax-xdsl: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("relax-xdsl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
