"""ONNX's node conformance suite on relax_xdsl: per-op pass rates.

    python benchmarks/onnx_conformance.py [--target c|interp] [--pipeline P] [--jobs N] [--filter S]
                                          [--timeout SECONDS] [--sample N] [--output results.json]

The cases are the ones onnx generates in memory (`collect_testcases`), less
those whose inputs or outputs are element types or containers relax_xdsl
does not model at all (float8/4, int4/2, strings, maps). Each case is
imported, compiled and run once, and its outputs are compared like onnx's
own backend runner does: same count, shape and dtype, values within the
case's rtol/atol, NaNs in the same places. Cases with sequence or optional
inputs or outputs run through relax_xdsl.frontend.onnx_backend (lists in,
lists out, None for an absent optional), compared item by item.

Statuses: PASS; FAIL (wrong values, shape or dtype); UNSUPPORTED (the
importer refused the model with an OnnxImportError: a clear refusal);
ERROR (any other exception: a bug); CRASH (the process died: segfault,
abort); TIMEOUT (over --timeout).

Why workers: a crash or a hang must cost one case, not the run, and a
fresh python per case pays the ~1 s import of relax_xdsl/onnx each time. So
a pool of long-lived worker processes takes cases one at a time over a
pipe; a worker that dies or overruns is killed, its case recorded, and a
new one started. The cases are serialized once (model bytes, inputs and
expected outputs as raw bytes) into a temp dir the workers read from.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The ops every mainstream exporter (torch.onnx, tf2onnx, keras2onnx) emits; the headline number is over cases
# made only of these (plus Constant).
NAMED_OPS: tuple[str, ...] = (
    "Abs", "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "ConvTranspose", "Div", "Dropout", "Einsum", "Equal", "Erf", "Exp", "Expand", "Flatten",
    "Floor", "Gather", "GatherElements", "Gemm", "GlobalAveragePool", "Greater", "Identity", "LayerNormalization",
    "LeakyRelu", "Less", "Log", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg", "Pad", "Pow", "Range", "ReduceMax",
    "ReduceMean", "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt",
    "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
)
STATUSES = ("PASS", "FAIL", "UNSUPPORTED", "ERROR", "CRASH", "TIMEOUT")
# Element types relax_xdsl does not model at all; such cases are left out (not counted as failures).
SKIPPED_TYPE_NAMES = ("STRING", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0",
                      "UINT4", "INT4", "FLOAT4E2M1", "UINT2", "INT2")


# -- the cases ----------------------------------------------------------------------------------------------------


@dataclass
class CaseInfo:
    """One serialized case: where its files are and how to compare."""

    index: int
    name: str
    ops: list[str]
    rtol: float
    atol: float
    directory: str
    n_data_sets: int = 1


@dataclass
class CaseResult:
    name: str
    ops: list[str]
    status: str
    detail: str = ""
    seconds: float = 0.0


def _skipped_types() -> set[int]:
    import onnx

    return {getattr(onnx.TensorProto, n) for n in SKIPPED_TYPE_NAMES if hasattr(onnx.TensorProto, n)}


def _elem_type(t: Any) -> int:
    """The tensor element type a type proto holds, through sequences and optionals; -1 for maps and the rest."""
    kind = t.WhichOneof("value")
    if kind == "tensor_type":
        return int(t.tensor_type.elem_type)
    if kind == "sequence_type":
        return _elem_type(t.sequence_type.elem_type)
    if kind == "optional_type":
        return _elem_type(t.optional_type.elem_type)
    return -1


def _io_types(model: Any) -> set[int]:
    """Element types of the graph's inputs and outputs (a sequence's or an optional's element's); -1 for maps."""
    return {_elem_type(v.type) for v in [*model.graph.input, *model.graph.output]}


def _has_containers(model: Any) -> bool:
    """Whether a graph input or output is a sequence or an optional."""
    return any(not v.type.HasField("tensor_type") for v in [*model.graph.input, *model.graph.output])


def case_ops(model: Any) -> list[str]:
    """The case's op types: its nodes' types other than Constant (a case counts for each)."""
    ops = sorted({n.op_type for n in model.graph.node} - {"Constant"})
    return ops or ["Constant"]


def collect(filters: Sequence[str] = ()) -> tuple[list[Any], int]:
    """(the supported cases matching any filter, the number of cases onnx generates in all).

    A filter matches a case-name substring or, exactly, one of its op types."""
    warnings.filterwarnings("ignore")
    from onnx.backend.test.case.node import collect_testcases

    everything = collect_testcases(None)
    skip = _skipped_types() | {-1}
    kept = [c for c in everything if not (_io_types(c.model) & skip)]
    if filters:
        kept = [c for c in kept if any(f in c.name or f in {n.op_type for n in c.model.graph.node} for f in filters)]
    return kept, len(everything)


def collect_from_modules(modules: Iterable[str]) -> list[Any]:
    """The supported cases of a few of onnx's case modules (`relu`, `conv`, ...): generating only those takes
    seconds where the whole suite takes half a minute. The cases accumulate in onnx's module-level list."""
    import importlib

    warnings.filterwarnings("ignore")
    import onnx.backend.test.case.node as node_cases

    for m in modules:
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    skip = _skipped_types() | {-1}
    return [c for c in node_cases._NodeTestCases if not (_io_types(c.model) & skip)]


def sample(cases: list[Any], n: int) -> list[Any]:
    """A deterministic sample of n cases, in suite order."""
    if n >= len(cases):
        return cases
    picked = sorted(random.Random(0).sample(range(len(cases)), n))
    return [cases[i] for i in picked]


def _save_arrays(path: Path, arrays: Sequence[Any]) -> list[dict[str, Any]]:
    """Arrays as raw bytes (npz of uint8) with dtype names: works for ml_dtypes (bfloat16) without pickling."""
    from onnx import TensorProto, numpy_helper

    meta, blobs = [], {}
    for i, a in enumerate(arrays):
        a = numpy_helper.to_array(a) if isinstance(a, TensorProto) else np.asarray(a)  # some cases give protos
        meta.append({"dtype": a.dtype.name, "shape": list(a.shape)})
        blobs[f"a{i}"] = np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=np.uint8)
    np.savez(path, **blobs)
    return meta


def _load_arrays(path: Path, meta: list[dict[str, Any]]) -> list[np.ndarray]:
    if any(m["dtype"] == "bfloat16" for m in meta):
        import ml_dtypes  # noqa: F401  (registers the bfloat16 dtype name)
    with np.load(path, allow_pickle=False) as z:
        return [np.frombuffer(z[f"a{i}"].tobytes(), dtype=np.dtype(m["dtype"])).reshape(m["shape"]).copy()
                for i, m in enumerate(meta)]


def _flatten(values: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(the structure of a data set's values, their arrays): "t" for a tensor,
    a list for a sequence (of its items' structures), None for an absent optional."""
    arrays: list[Any] = []

    def walk(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, list):
            return [walk(x) for x in v]
        arrays.append(v)
        return "t"

    return [walk(v) for v in values], arrays


def _unflatten(structure: list[Any], arrays: list[np.ndarray]) -> list[Any]:
    it = iter(arrays)

    def walk(s: Any) -> Any:
        return None if s is None else [walk(x) for x in s] if isinstance(s, list) else next(it)

    return [walk(s) for s in structure]


def serialize(cases: Iterable[Any], root: Path) -> list[CaseInfo]:
    """Write each case once (model.onnx, data sets as npz + meta.json) so workers do not regenerate the suite."""
    infos = []
    for i, c in enumerate(cases):
        d = root / f"{i:05d}"
        d.mkdir(parents=True)
        (d / "model.onnx").write_bytes(c.model.SerializeToString())
        sets = []
        for k, (ins, outs) in enumerate(c.data_sets):
            if _has_containers(c.model):  # lists and Nones: their arrays, and where they go
                (in_shape, ins), (out_shape, outs) = _flatten(ins), _flatten(outs)
                sets.append({"input_structure": in_shape, "output_structure": out_shape})
            else:
                sets.append({})
            sets[-1].update(inputs=_save_arrays(d / f"in{k}.npz", ins), outputs=_save_arrays(d / f"out{k}.npz", outs))
        (d / "meta.json").write_text(json.dumps(sets))
        infos.append(CaseInfo(i, c.name, case_ops(c.model), float(c.rtol), float(c.atol), str(d), len(sets)))
    return infos


# -- running one case (in a worker) -------------------------------------------------------------------------------


def compare(got: Sequence[Any], want: Sequence[np.ndarray], rtol: float, atol: float) -> str | None:
    """None if the outputs match like onnx's backend runner wants, else what differs."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None or g is None:  # an optional output: absent in both
            if (w is None) != (g is None):
                return f"output {k}: {'absent' if g is None else 'present'}, expected {'absent' if w is None else 'a value'}"
            continue
        if isinstance(w, list) or isinstance(g, list):  # a sequence: item by item
            if not (isinstance(w, list) and isinstance(g, list)):
                return f"output {k}: {'a sequence' if isinstance(g, list) else 'a tensor'}, expected the other"
            why = compare(g, w, rtol, atol)
            if why is not None:
                return f"output {k} (a sequence): {why.replace('outputs', 'items').replace('output', 'item')}"
            continue
        g = np.asarray(g)
        if g.shape != w.shape:
            return f"output {k}: shape {g.shape}, expected {w.shape}"
        if g.dtype != w.dtype:
            return f"output {k}: dtype {g.dtype}, expected {w.dtype}"
        if w.dtype.kind in "biu" or w.dtype == np.bool_:
            if not np.array_equal(g, w):
                bad = int(np.sum(g != w))
                return f"output {k}: {bad} of {w.size} values differ"
            continue
        try:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                                       equal_nan=True)
        except AssertionError as err:
            lines = [s for s in str(err).splitlines() if s.strip()]
            return f"output {k}: " + " | ".join(lines[1:4])
    return None


def run_case(info: CaseInfo, target: str, pipeline: str | None) -> tuple[str, str]:
    """(status, detail) of one serialized case, in this process."""
    import relax_xdsl as rx
    from relax_xdsl.frontend.onnx_import import OnnxImportError

    d = Path(info.directory)
    sets = json.loads((d / "meta.json").read_text())
    if "input_structure" in sets[0]:
        return _run_with_containers(d, sets, info, target, pipeline)
    try:
        mod = rx.from_onnx(str(d / "model.onnx"))
    except OnnxImportError as err:
        return "UNSUPPORTED", str(err)[:400]
    except Exception as err:  # noqa: BLE001  (any other failure is a bug to report, not a crash of the run)
        return "ERROR", f"import: {type(err).__name__}: {str(err)[:400]}"
    try:
        exe = rx.compile(mod, target=target, **({"pipeline": pipeline} if pipeline else {}))
        for k, s in enumerate(sets):
            ins = _load_arrays(d / f"in{k}.npz", s["inputs"])
            want = _load_arrays(d / f"out{k}.npz", s["outputs"])
            got = exe["main"](*ins)
            got = list(got) if isinstance(got, (tuple, list)) else [got]
            why = compare(got, want, info.rtol, info.atol)
            if why is not None:
                return "FAIL", (f"data set {k}: " if len(sets) > 1 else "") + why
    except Exception as err:  # noqa: BLE001
        where = traceback.extract_tb(err.__traceback__)[-1]
        return "ERROR", f"{type(err).__name__}: {str(err)[:400]} (at {Path(where.filename).name}:{where.lineno})"
    return "PASS", ""


def _run_with_containers(d: Path, sets: list[dict[str, Any]], info: CaseInfo, target: str,
                         pipeline: str | None) -> tuple[str, str]:
    """run_case for a model with sequence or optional inputs or outputs: through the onnx-backend-style runner,
    which imports the model for the lengths each data set has."""
    from relax_xdsl.frontend.onnx_backend import prepare
    from relax_xdsl.frontend.onnx_import import OnnxImportError

    try:
        model = prepare(str(d / "model.onnx"), target, **({"pipeline": pipeline} if pipeline else {}))
        for k, s in enumerate(sets):
            ins = _unflatten(s["input_structure"], _load_arrays(d / f"in{k}.npz", s["inputs"]))
            want = _unflatten(s["output_structure"], _load_arrays(d / f"out{k}.npz", s["outputs"]))
            exe, layout, args = model.specialize(ins)  # imports (OnnxImportError) and compiles for these lengths
            got = exe["main"](*args)
            got = layout.regroup(list(got) if isinstance(got, (tuple, list)) else [got])
            why = compare(got, want, info.rtol, info.atol)
            if why is not None:
                return "FAIL", (f"data set {k}: " if len(sets) > 1 else "") + why
    except OnnxImportError as err:
        return "UNSUPPORTED", str(err)[:400]
    except Exception as err:  # noqa: BLE001
        where = traceback.extract_tb(err.__traceback__)[-1]
        return "ERROR", f"{type(err).__name__}: {str(err)[:400]} (at {Path(where.filename).name}:{where.lineno})"
    return "PASS", ""


CaseRunner = Callable[[CaseInfo, str, str | None], tuple[str, str]]


def worker_loop(runner: CaseRunner = run_case) -> None:
    """Read one JSON case per line from stdin, answer one JSON result per line.

    Results go to a private copy of the original stdout; fd 1 itself is
    pointed at stderr so that anything printed by compilers or C code
    cannot corrupt the protocol. A first `ready` line, after the slow
    imports, starts the clock of the case already waiting."""
    warnings.filterwarnings("ignore")
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import onnx  # noqa: F401

    import relax_xdsl  # noqa: F401

    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        msg = json.loads(line)
        info = CaseInfo(**msg["case"])
        start = time.perf_counter()
        status, detail = runner(info, msg["target"], msg["pipeline"])
        out.write(json.dumps({"status": status, "detail": detail, "seconds": time.perf_counter() - start}) + "\n")


# -- the pool -----------------------------------------------------------------------------------------------------


STARTUP_ALLOWANCE = 300.0  # seconds a new worker may take to import before its first case's clock starts


def default_worker_argv() -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker"]


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    case: CaseInfo | None = None
    deadline: float = 0.0
    started: float = 0.0
    buffer: str = field(default="")
    ready: bool = False  # imports done; until then a case's clock has not started


def _start(argv: Sequence[str], log: Any) -> _Worker:
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                            bufsize=1)
    return _Worker(proc)


def _stop(w: _Worker) -> None:
    if w.proc.poll() is None:
        w.proc.kill()
    w.proc.wait()
    for f in (w.proc.stdin, w.proc.stdout):
        if f is not None:
            f.close()


def run_pool(infos: Sequence[CaseInfo], *, jobs: int = 2, timeout: float = 120.0, target: str = "c",
             pipeline: str | None = None, worker_argv: Sequence[str] | None = None,
             progress: Callable[[CaseResult, int, int], None] | None = None,
             log_path: str | None = None) -> list[CaseResult]:
    """Run every case on `jobs` worker processes; a worker that dies or overruns is replaced.

    Results are in the order of `infos`."""
    argv = list(worker_argv or default_worker_argv())
    results: dict[int, CaseResult] = {}
    queue = list(infos)[::-1]
    log = open(log_path or os.devnull, "a")  # noqa: SIM115  (closed below)
    workers: list[_Worker] = []
    try:
        workers = [_start(argv, log) for _ in range(max(1, min(jobs, len(queue))))]

        def record(case: CaseInfo, status: str, detail: str, seconds: float) -> None:
            r = CaseResult(case.name, case.ops, status, detail, round(seconds, 3))
            results[case.index] = r
            if progress:
                progress(r, len(results), len(infos))

        while queue or any(w.case for w in workers):
            for i, w in enumerate(workers):
                if w.case is None and queue:
                    if w.proc.poll() is not None:
                        _stop(w)
                        w = workers[i] = _start(argv, log)
                    case = queue.pop()
                    w.case, w.started = case, time.monotonic()
                    w.deadline = w.started + timeout + (0 if w.ready else STARTUP_ALLOWANCE)
                    msg = {"case": asdict(case), "target": target, "pipeline": pipeline}
                    try:
                        assert w.proc.stdin is not None
                        w.proc.stdin.write(json.dumps(msg) + "\n")
                        w.proc.stdin.flush()
                    except (BrokenPipeError, OSError):
                        pass  # the worker died before taking it: seen as EOF below
            busy = [w for w in workers if w.case is not None]
            if not busy:
                continue
            wait = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready, _, _ = select.select([w.proc.stdout for w in busy], [], [], min(wait, 1.0))
            now = time.monotonic()
            for i, w in enumerate(workers):
                if w.case is None:
                    continue
                if w.proc.stdout in ready:
                    assert w.proc.stdout is not None
                    # unbuffered: a readline() could pull two lines into a buffer select() does not see
                    data = os.read(w.proc.stdout.fileno(), 1 << 16).decode()
                    if data:
                        w.buffer += data
                        while "\n" in w.buffer and w.case is not None:
                            line, w.buffer = w.buffer.split("\n", 1)
                            ans = json.loads(line)
                            if "ready" in ans:  # imports done: the case's time starts now
                                w.ready, w.started, w.deadline = True, now, now + timeout
                                continue
                            record(w.case, ans["status"], ans["detail"], ans["seconds"])
                            w.case = None
                        continue
                    code = w.proc.wait()
                    sig = f"signal {-code}" if code < 0 else f"exit code {code}"
                    record(w.case, "CRASH", f"worker died ({sig})", now - w.started)
                    _stop(w)
                    workers[i] = _start(argv, log)
                elif now >= w.deadline:
                    record(w.case, "TIMEOUT", f"over {timeout:g} s", now - w.started)
                    _stop(w)
                    workers[i] = _start(argv, log)
    finally:
        for w in workers:
            _stop(w)
        log.close()
    return [results[c.index] for c in infos]


# -- the report ---------------------------------------------------------------------------------------------------


def counts(results: Iterable[CaseResult]) -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    for r in results:
        out[r.status] += 1
    return out


def per_op(results: Iterable[CaseResult]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for r in results:
        for op in r.ops:
            table.setdefault(op, dict.fromkeys(STATUSES, 0))[r.status] += 1
    return table


def is_named(r: CaseResult) -> bool:
    """A case made only of the named exporter ops."""
    return all(op in NAMED_OPS for op in r.ops)


def summary_line(c: dict[str, int]) -> str:
    total = sum(c.values())
    words = {"PASS": "passed", "FAIL": "failed", "UNSUPPORTED": "unsupported", "ERROR": "errors", "CRASH": "crashed",
             "TIMEOUT": "timed out"}
    parts = ", ".join(f"{c[s]} {words[s]}" for s in STATUSES)
    rate = 100.0 * c["PASS"] / total if total else 0.0
    return f"{parts} of {total} ({rate:.1f}% pass)"


def report(results: list[CaseResult], worst: int = 20) -> str:
    lines = []
    table = per_op(results)

    def rate(row: dict[str, int]) -> float:
        return row["PASS"] / max(1, sum(row.values()))

    lines.append(f"{'op':28} {'cases':>5} {'pass%':>6} " + " ".join(f"{s[:5]:>5}" for s in STATUSES))
    for op, row in sorted(table.items(), key=lambda kv: (rate(kv[1]), kv[0])):
        lines.append(f"{op:28} {sum(row.values()):5} {100 * rate(row):6.1f} " +
                     " ".join(f"{row[s]:5}" for s in STATUSES))
    lines.append("")
    lines.append(f"worst {worst} ops (by pass rate, then case count):")
    ranked = sorted(table.items(), key=lambda kv: (rate(kv[1]), -sum(kv[1].values()), kv[0]))[:worst]
    lines.append("  " + ", ".join(f"{op} {row['PASS']}/{sum(row.values())}" for op, row in ranked))
    named = [r for r in results if is_named(r)]
    lines.append("")
    lines.append(f"all cases:       {summary_line(counts(results))}")
    lines.append(f"named-op cases:  {summary_line(counts(named))}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", default="c", choices=["c", "interp"])
    ap.add_argument("--pipeline", default=None, help="named pipeline (default: the target's default)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--filter", action="append", default=[],
                    help="case-name substring or op type; repeatable (default: every case)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per case (default 120)")
    ap.add_argument("--sample", type=int, default=0, help="run a deterministic sample of N cases")
    ap.add_argument("--output", default=None, help="write per-case results and totals as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no per-case lines")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker_loop()
        return 0
    start = time.monotonic()
    cases, generated = collect(a.filter)
    if a.sample:
        cases = sample(cases, a.sample)
    print(f"{generated} cases generated by onnx; {len(cases)} to run "
          f"(left out: float8/float4/int4/uint4/string element types, maps"
          f"{'; filtered' if a.filter else ''}{'; sampled' if a.sample else ''})", flush=True)

    def progress(r: CaseResult, done: int, total: int) -> None:
        if not a.quiet:
            print(f"[{done}/{total}] {r.status:11} {r.name} {r.detail[:200] if r.status != 'PASS' else ''}",
                  flush=True)

    with tempfile.TemporaryDirectory(prefix="onnx_conformance_") as tmp:
        infos = serialize(cases, Path(tmp))
        results = run_pool(infos, jobs=a.jobs, timeout=a.timeout, target=a.target, pipeline=a.pipeline,
                           progress=progress)
    wall = time.monotonic() - start
    print()
    print(report(results))
    print(f"wall time {wall:.0f} s with --jobs {a.jobs} (target {a.target}, pipeline {a.pipeline or 'default'})")
    if a.output:
        named = [r for r in results if is_named(r)]
        Path(a.output).write_text(json.dumps({
            "generated": generated, "run": len(results), "target": a.target, "pipeline": a.pipeline or "default",
            "wall_seconds": round(wall, 1), "totals": counts(results), "named_op_totals": counts(named),
            "named_ops": list(NAMED_OPS), "per_op": per_op(results), "cases": [asdict(r) for r in results],
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
