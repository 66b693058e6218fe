"""Side-by-side benchmarks: the compiled C executables against numpy,
(when installed, `pip install ".[bench]"`) onnxruntime with 2 threads, and
(when `apache-tvm` is installed) TVM Relax's untuned default `tvm.compile`
for llvm, both on the same ONNX graphs and weights.

    python benchmarks/run.py                 # all models, small and large sizes
    python benchmarks/run.py --models mlp --repeat 50 --pipelines default
    python benchmarks/run.py --markdown docs/performance.md   # also writes the tables there
    python benchmarks/run.py --models bert light_resnet50 --exporter torchscript

Besides the three built-in models, models that real exporters produce
(benchmarks/exported_models.py): transformers' BERT, GPT-2, a Llama-style
decoder, ViT, ResNet-18 and MobileNetV2 and torch's nn.MultiheadAttention,
exported at benchmark time by torch.onnx (`--exporter`, dynamo by default)
with dynamic batch and sequence, at batch 1 and 8 (sequence 128); and the
light zoo models onnx ships, at their batch of 1 (one ending in Softmax
returns its logits too, the check that means something where the zoo's
constant weights saturate the softmax). Those are compared with
onnxruntime only (no numpy reference), with the `default` pipeline; they are
skipped with a message when torch and transformers are not installed.

For each model and pipeline (`baseline`: everything generated; `default`, the
optimizing one: matmuls offloaded to BLAS, fusion): compile time (pipeline + C
compiler) cold (empty cache) and warm (cached library); then, per size, the
median run time of numpy and of each C executable on the same inputs (one
executable serves every size), the ratio to numpy (< 1 means faster than
numpy) and the achieved GFLOP/s. Results are checked against numpy first; the
contenders of one size are timed in interleaved rounds. `--markdown PATH`
writes the final tables to PATH too, under a header naming the machine's CPU,
the date and the command, so a results page is one run's output.

Each model is compiled and timed in a fresh child process (`--same-process`
runs them all in this one): what ran earlier in a process changed later
timings of every runtime in it, onnxruntime's as much as ours, so a model
late in the list measured slower than the same model alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import relax_xdsl as rx
from relax_xdsl.models import MODELS

sys.path.insert(0, str(Path(__file__).parent))
import exported_models  # noqa: E402  (a sibling script)
from onnx_models import (
    ort_session,  # noqa: E402  (a sibling script)
    tvm_function,  # noqa: E402
)
from onnx_models import session as onnx_session  # noqa: E402

SIZES: dict[str, list[tuple[int, ...]]] = {
    "mlp": [(1,), (64,), (512,)],
    "cnn": [(1,), (32,)],
    "transformer": [(1, 16), (8, 128)],
}
EXPORTED_SIZES = [(1, 128), (8, 128)]  # (batch, sequence); image models use the batch
ALL_MODELS = [*SIZES, *exported_models.MODELS, *exported_models.LIGHT_ZOO]


MIN_ROUNDS = 5
"""Rounds interleaved_medians always runs, whatever `repeat` and `budget` say."""


def median_time(fn: Callable[[], object], repeat: int, budget: float) -> float:
    """Median of up to `repeat` runs (fewer if they exceed `budget` seconds)."""
    return interleaved_medians({"": fn}, repeat, budget, pause=0.0)[""]


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int, budget: float,
                        pause: float = 0.3) -> dict[str, float]:
    """Per function, the median of up to `repeat` runs, taken in rounds so
    that the machine's drift (this VM's speed varies by tens of percent over
    seconds) falls on all of them alike. Each round gives each function,
    after a pause, about 10 ms of untimed runs, then a block of timed runs
    (about 50 ms). The pause is for the other runtimes' thread pools,
    which spin after a call (numpy's OpenBLAS for up to 0.2 s,
    onnxruntime's for about 0.1 s, TVM's) and would otherwise steal the
    cores from whoever runs next. The untimed runs are for what the pause
    does to the caller: on this VM the first ten to twenty calls after an
    idle pause run up to 4x slower for every runtime alike (the vCPUs and
    caches warming up), so a block timed from the first call measured the
    warm-up, and more so for a function with a short block. Block sizes
    come from the median of five warm-up runs, not from one. Runs at least
    MIN_ROUNDS rounds, then more until every function has `repeat` timed
    runs or `budget` seconds per function have passed: a fast function
    fills `repeat` in its first block, and with one round a change in the
    machine's speed between two blocks would become their ratio."""
    block: dict[str, int] = {}
    warm: dict[str, int] = {}
    for k, fn in fns.items():
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        t = max(statistics.median(ts), 1e-6)
        block[k] = max(1, min(20, int(0.05 / t)))
        warm[k] = max(1, min(40, int(0.01 / t)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < MIN_ROUNDS or (min(len(v) for v in times.values()) < repeat and
                                  time.perf_counter() - start < budget * len(fns)):
        for k, fn in fns.items():
            time.sleep(pause)
            for _ in range(warm[k]):
                fn()
            for _ in range(block[k]):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}


def compile_times(module: object, pipeline: str) -> tuple[rx.Executable, float, float]:
    """Cold compile (fresh cache directory) and warm compile (same directory)."""
    old = os.environ.get("RELAX_XDSL_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RELAX_XDSL_CACHE_DIR"] = cache
        try:
            t0 = time.perf_counter()
            rx.compile(module, target="c", pipeline=pipeline)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            exe = rx.compile(module, target="c", pipeline=pipeline)
            warm = time.perf_counter() - t0
        finally:
            if old is None:
                os.environ.pop("RELAX_XDSL_CACHE_DIR", None)
            else:
                os.environ["RELAX_XDSL_CACHE_DIR"] = old
    return exe, cold, warm


def run_exported(name: str, args: argparse.Namespace, rows: list[tuple[Any, ...]]) -> None:
    """One model from a real exporter (or a light zoo model) against onnxruntime,
    `default` pipeline, checked first (relative error 1e-4), then timed in
    interleaved rounds; appends ("compile", ...) and ("exported", ...) rows."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print(f"{name}: skipped (needs onnxruntime)", flush=True)
        return
    ends_in_softmax = False
    if name in exported_models.LIGHT_ZOO:
        # with its logits as a second output when it ends in Softmax, for
        # light_zoo_error (both contenders compute and return them)
        zoo_model, ends_in_softmax = exported_models.light_zoo_model(name)
        data = zoo_model.SerializeToString()
        label, sizes = "onnx zoo", [(1, 0)]
    else:
        why = exported_models.available()
        if why is not None:
            print(f"{name}: skipped ({why})", flush=True)
            return
        data = exported_models.export(name, args.exporter, "bench")
        label, sizes = args.exporter, EXPORTED_SIZES
    module = rx.from_onnx(data)
    exe, cold, warm = compile_times(module, "default")
    print(f"{name} [{label}, default]: compile cold {cold:.2f} s, warm {warm:.3f} s", flush=True)
    rows.append(("compile", f"{name} ({label})", "default", cold, warm))
    sess = ort_session(data)
    for batch, seq in sizes:
        if name in exported_models.LIGHT_ZOO:
            (inp,) = sess.get_inputs()
            shape = [d if isinstance(d, int) else batch for d in inp.shape]
            feed = {inp.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
            size: tuple[int, ...] = (batch,)
        else:
            spec = exported_models.MODELS[name]
            feed = spec.inputs("bench", batch, seq)
            size = (batch,) if spec.kind == "image" else (batch, seq)
        got = exe["main"](*feed.values())
        if name in exported_models.LIGHT_ZOO:
            err = exported_models.light_zoo_error(got, sess.run(None, feed), ends_in_softmax)
        else:
            err = exported_models.relative_error(np.asarray(got), sess.run(None, feed)[0])
        if err > 1e-4:
            print(f"  {name} {size}: MISMATCH against onnxruntime (relative error {err:.2e}); not timed", flush=True)
            continue
        t = interleaved_medians({"ort": lambda: sess.run(None, feed),  # noqa: B023
                                 "c": lambda: exe["main"](*feed.values())}, args.repeat, args.budget)  # noqa: B023
        rows.append(("exported", name, label, size, t["ort"], t["c"]))
        print(f"  {name} {size}: onnxruntime {t['ort'] * 1e3:9.3f} ms | default {t['c'] * 1e3:9.3f} ms "
              f"({t['c'] / t['ort']:.2f}x ort, relative error {err:.1e})", flush=True)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model name", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def results_tables(rows: list[tuple[Any, ...]], peak: float) -> list[str]:
    """The run's results as markdown table lines (what main prints at the
    end and --markdown writes): per model, size and pipeline the medians and
    ratios to numpy, onnxruntime and TVM; then compile times."""
    ort_times = {(r[1], r[2]): r[3] for r in rows if r[0] == "ort"}
    tvm_times = {(r[1], r[2]): r[3] for r in rows if r[0] == "tvm"}
    lines = ["| model | sizes | pipeline | numpy median (ms) | C median (ms) | C / numpy | onnxruntime (ms) | C / ort "
             "| TVM untuned (ms) | TVM / C | C GFLOP/s | % of BLAS peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row[0] == "run":
            _, name, pipeline, size, t_np, t_c, gflops = row
            t_ort = ort_times.get((name, size))
            ort_cols = f"{t_ort * 1e3:.3f} | {t_c / t_ort:.2f}" if t_ort else "- | -"
            t_tvm = tvm_times.get((name, size))
            tvm_cols = f"{t_tvm * 1e3:.3f} | {t_tvm / t_c:.1f}" if t_tvm else "- | -"
            lines.append(f"| {name} | {size} | {pipeline} | {t_np * 1e3:.3f} | {t_c * 1e3:.3f} | {t_c / t_np:.2f} | "
                         f"{ort_cols} | {tvm_cols} | {gflops:.2f} | {100 * gflops / peak:.0f}% |")
    exported = [r for r in rows if r[0] == "exported"]
    if exported:
        lines += ["", "| exported model | exporter | size | onnxruntime (ms) | C default (ms) | C / ort |",
                  "|---|---|---|---|---|---|"]
        for _, name, exporter, size, t_ort, t_c in exported:
            lines.append(f"| {name} | {exporter} | {size} | {t_ort * 1e3:.3f} | {t_c * 1e3:.3f} | {t_c / t_ort:.2f} |")
    lines += ["", "| model | pipeline | compile cold (s) | compile warm (s) |", "|---|---|---|---|"]
    for row in rows:
        if row[0] == "compile":
            _, name, pipeline, cold, warm = row
            lines.append(f"| {name} | {pipeline} | {cold:.2f} | {warm:.3f} |")
    return lines


def vector_isa() -> str:
    """", AVX-512" / ", AVX2" / "": the widest x86 vector extension this
    machine has, which decides the dense route (`auto`) and the kernels."""
    from relax_xdsl.backend.toolchain import machine_cpu_features

    features = machine_cpu_features() or ()
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in features:
            return f", {name}"
    return ""


def versions(rows: list[tuple[Any, ...]]) -> str:
    """Python's and the contenders' versions (onnxruntime and TVM when they ran)."""
    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    from importlib.metadata import PackageNotFoundError, version

    for kind, dists, label in (("ort", ("onnxruntime",), "onnxruntime"), ("tvm", ("apache-tvm", "tvm"), "TVM")):
        if any(r[0] == kind for r in rows):  # (timed in child processes: asked of the installed package)
            found = "?"
            for dist in dists:
                try:
                    found = version(dist)
                    break
                except PackageNotFoundError:
                    continue
            parts.append(f"{label} {found}")
    return ", ".join(parts)


def markdown_report(rows: list[tuple[Any, ...]], peak: float, command: str, cpu: str,
                    when: datetime.datetime) -> str:
    """A results page: the machine and date the figures hold for, the
    command that made them, then the tables. One run only: figures from
    different runs (machines, load, versions) do not compare."""
    cores = os.cpu_count() or 0
    header = [
        "# Performance",
        "",
        f"One run of `{command}` on {when.strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"- CPU: {cpu} ({cores} logical core{'s' if cores != 1 else ''}{vector_isa()})",
        f"- BLAS peak (numpy float32 2048x2048 matmul): {peak:.1f} GFLOP/s",
        f"- {versions(rows)}",
        "",
        "Medians of interleaved rounds. C / numpy and C / ort below 1, and TVM / C above 1, mean the C "
        "executable is faster. See docs/benchmarks.md for what is measured and how.",
        "",
    ]
    return "\n".join([*header, *results_tables(rows, peak)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=ALL_MODELS, choices=ALL_MODELS)
    ap.add_argument("--exporter", default="dynamo", choices=exported_models.EXPORTERS,
                    help="which torch.onnx exporter writes the transformers/torch models")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per timing at most (after 3 runs)")
    ap.add_argument("--pipelines", nargs="*", default=["baseline", "default"], choices=["baseline", "default"])
    ap.add_argument("--no-tvm", action="store_true", help="skip TVM even when installed")
    ap.add_argument("--markdown", metavar="PATH", type=Path,
                    help="also write the results tables, with the CPU, date and command, to this markdown file")
    ap.add_argument("--same-process", action="store_true",
                    help="time every model in this process, not each in a child process of its own")
    ap.add_argument("--rows-to", metavar="PATH", type=Path, help=argparse.SUPPRESS)  # a child's results (JSON)
    args = ap.parse_args(argv)
    if args.markdown is not None and args.markdown.is_dir():
        ap.error(f"--markdown {args.markdown} is a directory; give a file path")  # checked before the timing starts
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    if args.rows_to is not None:  # a child: this process's models, rows written for the parent
        rows = time_models(args)
        args.rows_to.write_text(json.dumps(rows))
        return 0

    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    t_peak = median_time(lambda: a @ a, 5, args.budget)
    peak = 2 * 2048**3 / t_peak / 1e9
    print(f"machine BLAS peak (numpy float32 2048x2048 matmul): {peak:.1f} GFLOP/s", flush=True)

    failed = []
    if args.same_process:
        rows = time_models(args)
    else:
        rows = []
        for name in args.models:
            got = time_in_child(name, argv if argv is not None else sys.argv[1:])
            if got is None:
                failed.append(name)
            else:
                rows += got

    print()
    print("\n".join(results_tables(rows, peak)))
    if failed:
        print(f"\nfailed (see their output above): {', '.join(failed)}", file=sys.stderr)
    if args.markdown is not None:
        report = markdown_report(rows, peak, command, cpu_model(), datetime.datetime.now(datetime.UTC))
        try:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(report)
        except OSError as err:
            print(f"cannot write {args.markdown}: {err.strerror or err}", file=sys.stderr)
            return 1
        print(f"\nwrote {args.markdown}")
    return 1 if failed else 0


def _drop_option(argv: list[str], option: str, many: bool) -> list[str]:
    """`argv` without `option` and its value (`many`: its values, up to the next option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg.startswith(option + "="):
            continue
        if arg != option:
            out.append(arg)
            continue
        if many:
            while i < len(argv) and not argv[i].startswith("-"):
                i += 1
        else:
            i += 1
    return out


def _tuples(value: Any) -> Any:
    """JSON's lists back to the tuples rows hold (a row, its sizes)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def time_in_child(name: str, argv: list[str]) -> list[tuple[Any, ...]] | None:
    """Model `name` compiled and timed by a fresh `python benchmarks/run.py`
    (its output shown as it comes); its rows, or None when it failed."""
    rest = _drop_option(_drop_option(argv, "--models", True), "--markdown", False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, "-P", str(Path(__file__).resolve()), *rest, "--models", name, "--rows-to", str(out)]
        if subprocess.run(cmd).returncode != 0 or not out.is_file():
            return None
        return [_tuples(row) for row in json.loads(out.read_text())]


def time_models(args: argparse.Namespace) -> list[tuple[Any, ...]]:
    """Compiles and times `args.models` in this process; their result rows."""
    rows: list[tuple[Any, ...]] = []
    for name in args.models:
        if name not in SIZES:
            run_exported(name, args, rows)
            continue
        model = MODELS[name]()
        exes = {}
        for pipeline in args.pipelines:
            exe, cold, warm = compile_times(model.module, pipeline)
            exes[pipeline] = exe
            print(f"{name} [{pipeline}]: compile cold {cold:.2f} s, warm {warm:.3f} s", flush=True)
            rows.append(("compile", name, pipeline, cold, warm))
        ort = onnx_session(name, model.weights)
        tvm = tvm_function(name, model.weights) if not args.no_tvm else None
        if tvm is not None:
            print(f"{name} [tvm]: compile {tvm[1]:.2f} s", flush=True)
            rows.append(("compile", name, "tvm (untuned)", tvm[1], float("nan")))
        for size in SIZES[name]:
            inputs = model.make_inputs(*size)
            want = model.numpy_fn(*inputs)
            contenders: dict[str, Callable[[], object]] = {"numpy": lambda: model.numpy_fn(*inputs)}  # noqa: B023
            if ort is not None:
                feed = {"x": inputs[0]}
                np.testing.assert_allclose(ort.run(None, feed)[0], want, rtol=1e-3, atol=1e-4)
                contenders["ort"] = lambda: ort.run(None, feed)  # noqa: B023
            if tvm is not None:
                np.testing.assert_allclose(tvm[0](inputs[0]), want, rtol=1e-3, atol=1e-4)
                contenders["tvm"] = lambda: tvm[0](inputs[0])  # noqa: B023
            for pipeline, exe in exes.items():
                np.testing.assert_allclose(exe["main"](*inputs), want, rtol=1e-3, atol=1e-4)
                contenders[pipeline] = lambda exe=exe: exe["main"](*inputs)  # noqa: B023
            t = interleaved_medians(contenders, args.repeat, args.budget)
            t_np = t["numpy"]
            line = f"  {name} {size}: numpy {t_np * 1e3:9.3f} ms"
            for other, label in (("ort", "onnxruntime"), ("tvm", "tvm")):
                if other in t:
                    rows.append((other, name, size, t[other]))
                    line += f" | {label} {t[other] * 1e3:9.3f} ms"
            for pipeline in exes:
                t_c = t[pipeline]
                gflops = model.flops(*size) / t_c / 1e9
                rows.append(("run", name, pipeline, size, t_np, t_c, gflops))
                line += f" | {pipeline} {t_c * 1e3:9.3f} ms ({t_c / t_np:5.2f}x numpy, {gflops:6.2f} GFLOP/s)"
            print(line, flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
