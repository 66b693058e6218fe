"""Saving a compiled model and loading it in another process.

    rx.export_library(exe, "model.so")      # one self-contained shared library
    exe = rx.load_module("model.so")        # same call interface; no pass, no compiler

Both are module functions, not Executable methods: an executable's own
functions are reached as attributes (`exe.main`), so a method named like a
model function would hide it.

The library written is the executable's C module (generated code, the C
runtime archive, the CPython entry points when it was built with them)
plus:
- the weights as read-only data (`.incbin`, 64-byte aligned), in the order
  of the `rx_g` table every function takes (`rx_exported_table()`);
- a manifest, JSON (`rx_manifest()`): the format, relax_xdsl's version,
  the pipeline, the machine type, the -march it was built for and the x86
  features that implies, the Python / numpy ABI of its CPython entry
  points, and per graph function its parameter and result types (symbolic
  dims as they print in the IR), parameter names and the parameters an
  in-place call writes; per C function the calling plan (dtypes, dynamic
  dims, ranks).

Loading reads the manifest, refuses a library built for another machine
type or for CPU features this machine lacks (before calling any of its
code), and checks inputs against the same symbolic signatures a compiled
executable does. Its CPython entry points are used only under the Python
and numpy ABI they were built for; elsewhere the ctypes path serves.

A shared library is code: load only files you trust, as with any library
(TVM's `load_module` is the same). The manifest is still checked field by
field, so a corrupt or foreign file is a RelaxError naming what is wrong.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError

from relax_xdsl import dtypes
from relax_xdsl.aliasing import written_parameters
from relax_xdsl.backend.c_emitter import FuncSignature
from relax_xdsl.dialects.relax import FunctionOp, is_value_type
from relax_xdsl.errors import RelaxError
from relax_xdsl.runtime import Executable

FORMAT = "relax_xdsl-library"
FORMAT_VERSION = 1


def _python_abi() -> dict[str, str]:
    """What the CPython entry points were compiled against."""
    return {"python": sys.implementation.cache_tag or "", "numpy": np.__version__.split(".")[0]}


def _c_signature(sig: FuncSignature) -> dict[str, Any]:
    params: list[list[Any]] = []
    for kind, info in sig.params:
        if kind == "memref":
            elem, dyn, shape = info  # type: ignore[misc]
            params.append(["memref", dtypes.dtype_name(elem), list(dyn), [d if d >= 0 else -1 for d in shape]])
        else:
            params.append(["index"])
    return {"params": params, "results": [[dtypes.dtype_name(e), rank] for e, rank in sig.results]}


def library_manifest(graph: ModuleOp, pipeline: str, flags: Sequence[str], signatures: dict[str, FuncSignature],
                     weights: Sequence[np.ndarray], python_entries: bool) -> dict[str, Any]:
    """The manifest of a library built with `flags` from the graph
    functions of `graph` (C functions `signatures`, constants `weights`)."""
    from relax_xdsl.backend.c import CPU_FLAG
    from relax_xdsl.backend.toolchain import compiler, project_version, required_cpu_features, target_flags

    march = [f[len(CPU_FLAG):] for f in flags if f.startswith(CPU_FLAG)]
    functions = {}
    for op in graph.body.ops:
        if isinstance(op, FunctionOp):
            functions[op.sym_name.data] = {
                "params": [str(a.type) for a in op.args],
                "param_names": [a.name_hint or f"arg{i}" for i, a in enumerate(op.args)],
                "results": [str(t) for t in op.function_type.outputs.data],
                "written": written_parameters(op),
            }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "relax_xdsl": project_version(),
        "pipeline": pipeline,
        "machine": platform.machine(),
        "cpu": march[-1] if march else "",
        "cpu_features": list(required_cpu_features(tuple(compiler()), target_flags(flags))),
        "python_entries": python_entries and _python_abi(),
        "functions": functions,
        "c_functions": {name: _c_signature(sig) for name, sig in signatures.items()},
        "weights": [{"dtype": str(g.dtype), "shape": list(g.shape)} for g in weights],
    }


def _weights_asm(count: int) -> str:
    """Assembly placing w<i>.bin (in the build directory) as read-only
    symbols rx_weight_<i>, and manifest.json between rx_manifest_start and
    rx_manifest_end; all hidden (reached through the C functions below)."""
    lines = []
    for i in range(count):
        lines += ['.section .rodata.rx_weights,"a"', ".balign 64", f".globl rx_weight_{i}", f".hidden rx_weight_{i}",
                  f"rx_weight_{i}:", f'.incbin "w{i}.bin"']
    lines += ['.section .rodata.rx_manifest,"a"', ".globl rx_manifest_start", ".hidden rx_manifest_start",
              ".globl rx_manifest_end", ".hidden rx_manifest_end", "rx_manifest_start:", '.incbin "manifest.json"',
              "rx_manifest_end:", ".byte 0", '.section .note.GNU-stack,"",@progbits', ""]
    return "\n".join(lines)


def _exports_c(count: int) -> str:
    decls = "".join(f"extern const unsigned char rx_weight_{i}[];\n" for i in range(count))
    table = ", ".join(f"rx_weight_{i}" for i in range(count)) or "0"
    return f"""
/* ---- exported library (relax_xdsl/deploy.py) ---- */
{decls}extern const char rx_manifest_start[], rx_manifest_end[];
static const void* const rx_weights[] = {{{table}}};
RX_API const void* const* rx_exported_table(void) {{ return rx_weights; }}
RX_API const char* rx_manifest(int64_t* size) {{
  *size = rx_manifest_end - rx_manifest_start;
  return rx_manifest_start;
}}
"""


def export_library(exe: Executable, path: str | os.PathLike[str]) -> Path:
    """Writes `exe` (compiled for the `c` target) as one shared library at
    `path` (replaced atomically when it exists); returns the path."""
    from relax_xdsl.backend.c import CModule

    backend = exe.backend
    if exe.target != "c" or not isinstance(backend, CModule):
        raise RelaxError(f"export_library needs an executable compiled for target 'c', not {exe.target!r}")
    if backend.debug:
        raise RelaxError("export_library: a debug build (bounds-checked) is for diagnosis; compile without debug")
    if not backend.source:
        raise RelaxError("export_library: this executable was itself loaded from a library; copy that file instead")
    dest = Path(path)
    if dest.is_dir():
        raise RelaxError(f"export_library: {dest} is a directory; give the library's file name (e.g. model.so)")
    info = library_manifest(exe.graph, exe.pipeline, backend.flags, backend.signatures(), backend.globals,
                            bool(backend.fast))
    link_library(dest, backend.source, backend.globals, info, backend.flags)
    return dest


def link_library(dest: Path, source: str, weights: Sequence[np.ndarray], info: dict[str, Any],
                 flags: Sequence[str], extra_sources: Sequence[Path | tuple[str, str]] = ()) -> None:
    """Compiles `source` (generated C) with its weights as read-only data and
    its manifest `info` into the shared library `dest` (replaced atomically);
    `extra_sources`: more C files, as paths or (file name, text)."""
    from relax_xdsl.backend.c import run_compiler
    from relax_xdsl.backend.toolchain import compiler

    try:
        with tempfile.TemporaryDirectory(prefix="relax_xdsl_export_") as tmp:
            work = Path(tmp)
            for i, g in enumerate(weights):
                (work / f"w{i}.bin").write_bytes(np.ascontiguousarray(g).tobytes())
            (work / "manifest.json").write_text(json.dumps(info, indent=1))
            (work / "module.c").write_text(source + _exports_c(len(weights)))
            (work / "weights.S").write_text(_weights_asm(len(weights)))
            sources = [work / "module.c", work / "weights.S"]
            for extra in extra_sources:
                if isinstance(extra, tuple):
                    (work / extra[0]).write_text(extra[1])
                    extra = work / extra[0]
                sources.append(extra)
            built = work / "model.so"
            run_compiler(tuple(compiler()), flags, sources, built)
            staged = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            shutil.copyfile(built, staged)
            os.chmod(staged, 0o755)
            os.replace(staged, dest)
    except OSError as err:
        raise RelaxError(f"cannot write the library {dest}: {err.strerror or err}") from None


def _field(info: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = info.get(key)
    if not isinstance(value, kind):
        raise RelaxError(f"{where}: its manifest's {key!r} is missing or malformed")
    return value


def read_manifest(lib: ctypes.CDLL, where: str) -> dict[str, Any]:
    """The manifest of a loaded library, parsed and checked for its format."""
    try:
        fn = lib.rx_manifest
    except AttributeError:
        raise RelaxError(f"{where} is not a library written by relax_xdsl.export_library (no rx_manifest)") from None
    fn.restype, fn.argtypes = ctypes.c_void_p, [ctypes.POINTER(ctypes.c_int64)]
    size = ctypes.c_int64()
    address = fn(ctypes.byref(size))
    if not address or not 0 < size.value < 1 << 30:
        raise RelaxError(f"{where}: its manifest is empty or malformed")
    try:
        info = json.loads(ctypes.string_at(address, size.value).decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise RelaxError(f"{where}: its manifest is not valid JSON ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise RelaxError(f"{where} is not a library written by relax_xdsl.export_library")
    if info.get("format_version") != FORMAT_VERSION:
        raise RelaxError(f"{where}: library format version {info.get('format_version')!r}; this relax_xdsl reads "
                         f"version {FORMAT_VERSION}: export the model again with this version")
    return info


def check_machine(info: dict[str, Any], where: str) -> None:
    """Refuses a library this machine cannot run: another machine type, or
    CPU features (from its -march) this CPU lacks."""
    from relax_xdsl.backend.toolchain import machine_cpu_features

    machine = _field(info, "machine", str, where)
    if machine != platform.machine():
        raise RelaxError(f"{where} was built for {machine} machines; this one is {platform.machine()}")
    needed = _field(info, "cpu_features", list, where)
    have = machine_cpu_features()
    if have is not None:
        missing = sorted(str(f) for f in needed if f not in have)
        if missing:
            raise RelaxError(f"{where} was built for CPU {info.get('cpu')!r}, which has features this machine's CPU "
                             f"lacks: {', '.join(missing)}; build it for this machine (cpu='native') or an older "
                             f"CPU level (e.g. cpu='x86-64-v2')")


def _signature(name: str, entry: Any, where: str) -> FuncSignature:
    bad = RelaxError(f"{where}: the manifest's calling plan of {name!r} is malformed")
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), list) or \
            not isinstance(entry.get("results"), list):
        raise bad
    params: list[tuple[str, object]] = []
    try:
        for p in entry["params"]:
            if p == ["index"]:
                params.append(("index", None))
                continue
            kind, dtype, dyn, shape = p
            if kind != "memref" or not all(isinstance(d, int) and -1 <= d < 1 << 62 for d in shape) or \
                    sorted(dyn) != [i for i, d in enumerate(shape) if d < 0]:
                raise bad
            params.append(("memref", (dtypes.to_xdsl(dtype), list(dyn), tuple(shape))))
        results = [(dtypes.to_xdsl(dtype), int(rank)) for dtype, rank in entry["results"]]
    except (TypeError, ValueError, RelaxError):
        raise bad from None
    return FuncSignature(name, params, results)


def _graph_function(name: str, entry: Any, parser_context: Any, where: str) -> FunctionOp:
    """A body-less relax.function carrying the signature (what calls are checked against)."""
    bad = f"{where}: the manifest's signature of {name!r}"
    if not isinstance(entry, dict):
        raise RelaxError(f"{bad} is malformed")
    types: dict[str, list[Any]] = {}
    for key in ("params", "results"):
        texts = entry.get(key)
        if not isinstance(texts, list) or not all(isinstance(x, str) for x in texts):
            raise RelaxError(f"{bad} is malformed ({key})")
        try:
            types[key] = [Parser(parser_context, text).parse_attribute() for text in texts]
        except ParseError as err:
            raise RelaxError(f"{bad} has a type that does not parse: {err}") from None
        if not all(is_value_type(t) for t in types[key]):
            raise RelaxError(f"{bad} has a type that is no relax type")
    names = entry.get("param_names")
    written = entry.get("written")
    if not isinstance(names, list) or len(names) != len(types["params"]) or not isinstance(written, list) or \
            not all(isinstance(i, int) and 0 <= i < len(names) for i in written):
        raise RelaxError(f"{bad} is malformed (param_names / written)")
    func = FunctionOp(name, types["params"], types["results"])
    for arg, hint in zip(func.args, names):
        arg.name_hint = hint if isinstance(hint, str) and hint.isidentifier() else None
    return func


def load_module(path: str | os.PathLike[str]) -> Executable:
    """The executable saved at `path` by export_library, loaded into this
    process: the same call interface (`exe.main(...)`, `exe["main"](...)`),
    inputs checked against the same signatures, no pass or compiler run."""
    from relax_xdsl.backend.c import CModule, keep_freed_memory, quiet_idle_threads
    from relax_xdsl.ir import make_context

    t0 = time.perf_counter()
    where = f"library {os.fspath(path)!r}"
    file = Path(path)
    if not file.is_file():
        raise RelaxError(f"{where}: no such file" if not file.exists() else f"{where} is not a regular file")
    quiet_idle_threads()
    keep_freed_memory()
    try:
        lib = ctypes.CDLL(str(file.resolve()))
    except OSError as err:
        raise RelaxError(f"{where} does not load: {err}") from None
    info = read_manifest(lib, where)
    check_machine(info, where)
    functions = _field(info, "functions", dict, where)
    c_functions = _field(info, "c_functions", dict, where)
    signatures = {name: _signature(name, entry, where) for name, entry in c_functions.items()}
    ctx = make_context()
    graph = ModuleOp([_graph_function(name, entry, ctx, where) for name, entry in functions.items()])
    written = {name: list(entry["written"]) for name, entry in functions.items()}
    for name in functions:
        if name not in signatures:
            raise RelaxError(f"{where}: graph function {name!r} has no compiled function")
    table_fn = lib.rx_exported_table
    table_fn.restype = ctypes.c_void_p
    table = table_fn() or 0
    entries = info.get("python_entries")
    backend = CModule.loaded(lib, file, signatures, table, python_entries=entries == _python_abi())
    pipeline = info.get("pipeline")
    exe = Executable(graph, None, backend, "c", {"load": time.perf_counter() - t0},
                     pipeline=pipeline if isinstance(pipeline, str) else "unknown", written=written)
    exe.manifest = info
    return exe


__all__ = ["export_library", "load_module"]
