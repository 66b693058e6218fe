"""Ahead-of-time C: `relax-xdsl build MODEL -o DIR` writes a model as a C
library and header that run with no Python.

    DIR/libmodel.so   generated code, C runtime, weights as read-only data
                      (no CPython entry points: an executable linking them
                      would need libpython); BLAS, when used, copied next to
                      it (libscipy_openblas.so) and found through $ORIGIN
    DIR/model.h       the C API: rx_tensor, one model_<name>() per graph
                      function, model_last_error(), model_tensor_free()
    DIR/run_model.c   a runner: .npy inputs in, .npy outputs out
    DIR/Makefile      `make -C DIR` builds run_model against ./libmodel.so

The library is export_library's (relax_xdsl/deploy.py) without the CPython
entry points and with the entry points of model.h: the same weights
section, weights table and manifest, so `relax_xdsl.load_module` also
loads it. Only per-model pieces are made here (the entry points' tables and
calls, model.h's declarations); the fixed C (the checks, the .npy reader) is
package data in relax_xdsl/c_runtime/aot/.

An entry point checks what the generated code cannot (input count, dtype,
rank, static dims, nonnegative extents, data present, bool bytes 0 or 1);
the generated code checks symbolic dims, symbol consistency and shape
values itself, as it does for Python. Shape (`!relax.shape<[...]>`) and
scalar (`!relax.prim<...>`) parameters are int64 `[k]` / 0-d tensors, as
the compiled code takes them from Python.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp, TupleType
from xdsl.ir import Attribute

from relax_xdsl import dtypes
from relax_xdsl.aliasing import written_parameters
from relax_xdsl.backend import c_runtime
from relax_xdsl.backend.c_emitter import DYNAMIC, CEmitter, FuncSignature, c_storage_type
from relax_xdsl.backend.c_names import FUNCTION, c_ident, c_string, mangle
from relax_xdsl.dialects.relax import FunctionOp, PrimType, ShapeType, TensorType
from relax_xdsl.errors import RelaxError

AOT_SOURCES = c_runtime.SOURCE_DIR / "aot"
"""The fixed C of a build (package data): model_api.h (the public types and
functions, the top of model.h), rx_aot.h / model_api.c (the entry points'
checks), run_model.c and its Makefile."""

API_PREFIX = "model_"
"""An entry point's C name is this prefix and the mangled function name
(c_names.mangle: `main` stays `main`, `_` doubles)."""

TABLE_PREFIX = "rxa_"
"""Namespace of the static tables describing each entry point."""


@dataclass
class BuildResult:
    """What `build` wrote."""

    directory: Path
    library: Path
    header: Path
    copied: list[Path]
    """Shared libraries copied next to libmodel.so (BLAS), found through $ORIGIN."""
    entry: str
    """The C entry point run_model calls."""


def api_name(function: str) -> str:
    return API_PREFIX + mangle(function)


def _flat_types(types: Sequence[Attribute]) -> list[Attribute]:
    out: list[Attribute] = []
    for t in types:
        if isinstance(t, TupleType):
            out += _flat_types(list(t.types.data))
        else:
            out.append(t)
    return out


def _comment(text: str) -> str:
    """`text` safe inside a /* */ comment: printable ASCII, no `*/` and no
    trigraph; other bytes as \\xNN."""
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        out.append(chr(byte) if 0x20 <= byte < 0x7F else f"\\x{byte:02x}")
    return "".join(out).replace("*/", "* /").replace("??", "? ?")


def _enum(elem: Attribute) -> str:
    return "RX_" + dtypes.dtype_name(elem).upper()


@dataclass
class _Entry:
    """One graph function and the C function it compiled to."""

    func: FunctionOp
    sig: FuncSignature

    @property
    def name(self) -> str:
        return self.func.sym_name.data

    def memref_params(self) -> list[tuple[Attribute, list[int], tuple[int, ...]]]:
        return [info for _, info in self.sig.params]  # type: ignore[misc]

    def input_names(self) -> list[str]:
        return [a.name_hint or f"arg{i}" for i, a in enumerate(self.func.args)]


def _entries(module: ModuleOp, signatures: dict[str, FuncSignature]) -> list[_Entry]:
    entries = []
    for op in module.body.ops:
        if not isinstance(op, FunctionOp):
            continue
        name = op.sym_name.data
        for i, arg in enumerate(op.args):
            if not isinstance(arg.type, (TensorType, ShapeType, PrimType)):
                raise RelaxError(f"build: @{name} parameter {i} has type {arg.type}; the C API takes tensor, shape "
                                 "and scalar parameters")
        sig = signatures.get(name)
        if sig is None:
            raise RelaxError(f"build: graph function @{name} has no compiled function")
        if len(sig.params) != len(op.args) or any(kind != "memref" for kind, _ in sig.params):
            raise RelaxError(f"build: @{name} compiled to a C function whose parameters are not one buffer per "
                             "graph parameter; the C API cannot call it")
        entries.append(_Entry(op, sig))
    return entries


def _prototype(entry: _Entry) -> str:
    params = ["const void* const* rx_g"]
    for i, (elem, dyn, _) in enumerate(entry.memref_params()):
        params.append(f"{c_storage_type(elem)}* a{i}")
        params += [f"int64_t a{i}_d{j}" for j in dyn]
    for k, _ in enumerate(entry.sig.results):
        params += [f"void** r{k}", f"int64_t* r{k}_dims"]
    return f"int {c_ident(FUNCTION, entry.name)}({', '.join(params)});"


def entries_source(entries: list[_Entry]) -> str:
    """The C of model.h's entry points: per graph function, tables
    describing its inputs and outputs (checked by rx_aot_check) and a
    wrapper calling the compiled function with the weights table."""
    lines = ["/* generated by relax-xdsl build: the entry points declared in model.h */", '#include "rx_aot.h"', ""]
    for e in entries:
        lines.append(_prototype(e))
    for e in entries:
        tag = TABLE_PREFIX + mangle(e.name)
        params = e.memref_params()
        for i, (_, _, shape) in enumerate(params):
            dims = ", ".join(str(d) if d != DYNAMIC and d >= 0 else "-1" for d in shape) or "0"
            lines.append(f"static const int64_t {tag}_in{i}[] = {{{dims}}};")
        if params:
            rows = ",\n  ".join(f"{{{c_string(n)}, {_enum(elem)}, {len(shape)}, {tag}_in{i}}}"
                                for i, (n, (elem, _, shape)) in enumerate(zip(e.input_names(), params)))
            lines.append(f"static const rx_aot_param {tag}_inputs[] = {{\n  {rows}}};")
        results = e.sig.results
        lines.append(f"static const int32_t {tag}_out_dtypes[] = {{{', '.join(_enum(t) for t, _ in results) or '0'}}};")
        lines.append(f"static const int32_t {tag}_out_ndims[] = {{{', '.join(str(r) for _, r in results) or '0'}}};")
        lines.append(f"static const rx_aot_entry {tag} = {{{c_string(api_name(e.name))}, {len(params)}, "
                     f"{f'{tag}_inputs' if params else 'NULL'}, {len(results)}, {tag}_out_dtypes, {tag}_out_ndims}};")
        args = ["rx_exported_table()"]
        for i, (_, dyn, _) in enumerate(params):
            args.append(f"inputs[{i}].data")
            args += [f"inputs[{i}].shape[{j}]" for j in dyn]
        body = [f"  if (rx_aot_check(&{tag}, inputs, n_inputs, outputs, n_outputs)) return 1;",
                f"  void* data[{max(1, len(results))}] = {{0}};"]
        for k, (_, rank) in enumerate(results):
            body.append(f"  int64_t dims{k}[{max(1, rank)}];")
            args += [f"&data[{k}]", f"dims{k}"]
        body.append(f"  int64_t* dims[{max(1, len(results))}] = {{{', '.join(f'dims{k}' for k in range(len(results))) or '0'}}};")
        body.append(f"  if ({c_ident(FUNCTION, e.name)}({', '.join(args)}) != 0) return 1;")
        body.append(f"  return rx_aot_outputs(&{tag}, data, dims, outputs);")
        lines.append(f"RX_API int {api_name(e.name)}(const rx_tensor* inputs, int n_inputs, rx_tensor* outputs, "
                     "int n_outputs) {")
        lines += body
        lines += ["}", ""]
    return "\n".join(lines) + "\n"


def _dims_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("?" if d == DYNAMIC or d < 0 else str(d) for d in shape) + "]"


def header_source(entries: list[_Entry], default: _Entry, about: str) -> str:
    """model.h: the fixed API (model_api.h), then per entry point its
    symbolic signature, its inputs and outputs, count macros and prototype."""
    lines = [f"/* model.h: the C API of {_comment(about)}, generated by relax-xdsl build.", "",
             *_USAGE.splitlines(), "*/", "#ifndef RX_MODEL_H", "#define RX_MODEL_H",
             (AOT_SOURCES / "model_api.h").read_text(), "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    for e in entries:
        f = e.func
        params = ", ".join(f"{n}: {a.type}" for n, a in zip(e.input_names(), f.args))
        outs = list(f.function_type.outputs.data)
        lines.append(f"/* @{_comment(e.name)}({_comment(params)})")
        lines.append(f"     -> {_comment(', '.join(str(t) for t in outs))}")
        lines.append("   inputs:")
        written = set(written_parameters(f))
        for i, (n, (elem, _, shape)) in enumerate(zip(e.input_names(), e.memref_params())):
            t = f.args[i].type
            kind = " (a shape, as int64 values)" if isinstance(t, ShapeType) else \
                " (a scalar, as a 0-d tensor)" if isinstance(t, PrimType) else ""
            note = "; written in place by the call" if i in written else ""
            lines.append(f"     {i} {_comment(n)}: {_enum(elem)}, rank {len(shape)}, dims {_dims_text(shape)}"
                         f"{kind}{note}")
        lines.append("   outputs (tuples flattened in order):")
        flat = _flat_types(outs)
        for k, (elem, rank) in enumerate(e.sig.results):
            text = f" = {_comment(str(flat[k]))}" if len(flat) == len(e.sig.results) else ""
            lines.append(f"     {k}: {_enum(elem)}, rank {rank}{text}")
        lines.append("*/")
        tag = mangle(e.name)
        lines.append(f"#define MODEL_N_INPUTS_{tag} {len(e.sig.params)}")
        lines.append(f"#define MODEL_N_OUTPUTS_{tag} {len(e.sig.results)}")
        lines.append(f"int {api_name(e.name)}(const rx_tensor* inputs, int n_inputs, rx_tensor* outputs, "
                     "int n_outputs);")
        lines.append("")
    tag = mangle(default.name)
    lines += ["/* The entry point chosen at build time (--function): the one run_model.c calls. */",
              f"#define MODEL_DEFAULT_ENTRY {api_name(default.name)}",
              f"#define MODEL_DEFAULT_NAME {c_string(api_name(default.name))}",
              f"#define MODEL_DEFAULT_N_INPUTS MODEL_N_INPUTS_{tag}",
              f"#define MODEL_DEFAULT_N_OUTPUTS MODEL_N_OUTPUTS_{tag}", "",
              "#ifdef __cplusplus", "}", "#endif", "#endif /* RX_MODEL_H */", ""]
    return "\n".join(lines)


_USAGE = """\
   Each entry point model_<name>(inputs, n_inputs, outputs, n_outputs)
   checks the input count, each input's dtype, rank and static dims, that
   extents are >= 0 and data is given for nonempty inputs; the compiled code
   then checks symbolic dims, that a symbol has one value across inputs and
   shape values. It returns 0 with `outputs` holding new buffers (free each
   with model_tensor_free), or nonzero with model_last_error() saying what
   is wrong; outputs are then left empty.

   Thread safety: calls from several threads at once are safe. A call's
   state is its own (buffers, the recursion count); error text is
   thread-local; each entry point's memory pool is taken by one call at a
   time and a concurrent call allocates a block of its own; the weights are
   read-only (oneDNN convolutions keep a reordered copy of constant weights,
   made once under a lock). Parallel loops use OpenMP, BLAS calls OpenBLAS, each
   with its own threads (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS).

   Linking: cc app.c -L DIR -lmodel -Wl,-rpath,DIR (see the Makefile); the
   library needs libgomp, and libscipy_openblas.so when it was copied next
   to libmodel.so (found there through its $ORIGIN rpath)."""


def _soname(lib: Path) -> str | None:
    """The library's SONAME (what a module linked with it records as needed), or None."""
    try:
        proc = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True)
    except OSError:
        return None
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]/]+)\]", proc.stdout)
    return found.group(1) if found else None


def _copy_with_links(lib: Path, out: Path) -> list[Path]:
    """Copies the library `lib` (resolving symlinks) into `out`, and names it
    there by its soname too (libdnnl.so -> libdnnl.so.3, a symlink): a
    module records the soname, not the name it was linked by."""
    real = lib.resolve()
    dest = out / lib.name
    dest.unlink(missing_ok=True)
    shutil.copyfile(real, dest)
    dest.chmod(0o755)
    written = [dest]
    soname = _soname(real)
    if soname and soname != dest.name:
        alias = out / soname
        alias.unlink(missing_ok=True)
        alias.symlink_to(dest.name)
        written.append(alias)
    return written


def _relocate_libraries(link_flags: Sequence[str], out: Path) -> tuple[list[str], list[Path]]:
    """The link flags with each `-Wl,-rpath,D` whose `-lNAME` libraries are
    in D replaced by `-Wl,-rpath,$ORIGIN`, those libraries copied into
    `out`: the directory is then self-contained."""
    names = [f[2:] for f in link_flags if f.startswith("-l")]
    flags: list[str] = []
    copied: list[Path] = []
    for flag in link_flags:
        if not flag.startswith("-Wl,-rpath,"):
            flags.append(flag)
            continue
        directory = Path(flag[len("-Wl,-rpath,"):])
        found = [directory / f"lib{n}.so" for n in names if (directory / f"lib{n}.so").is_file()]
        if not found:
            flags.append(flag)
            continue
        for lib in found:
            copied += _copy_with_links(lib, out)
        if "-Wl,-rpath,$ORIGIN" not in flags:
            flags.append("-Wl,-rpath,$ORIGIN")
    return flags, copied


def build(module: ModuleOp, out_dir: str | Path, pipeline: str = "default", cpu: str | None = None,
          function: str = "main", about: str = "a relax_xdsl model") -> BuildResult:
    """Writes libmodel.so, model.h, run_model.c and a Makefile into
    `out_dir` (created if missing; files there of those names replaced).
    `cpu`: the -march (default native); `function`: run_model's entry point."""
    from relax_xdsl.backend.c import DEFAULT_FLAGS, REQUIRED_FLAGS, cpu_flags
    from relax_xdsl.backend.toolchain import compiler
    from relax_xdsl.deploy import library_manifest, link_library
    from relax_xdsl.runtime import lower

    names = [op.sym_name.data for op in module.body.ops if isinstance(op, FunctionOp)]
    if function not in names:
        raise RelaxError(f"build: no graph function @{function}; the module has {', '.join(names) or 'none'}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RelaxError(f"build: {out} exists and is not a directory")
    loops = lower(module, pipeline)
    emitter = CEmitter(loops)
    source = emitter.emit()
    entries = _entries(module, emitter.signatures)
    default = next(e for e in entries if e.name == function)
    weights = emitter.global_data()
    cc = tuple(compiler())
    chosen = cpu_flags(DEFAULT_FLAGS, cpu or "native")
    compile_flags = (*chosen, *(f for f in REQUIRED_FLAGS if f not in chosen))
    try:
        out.mkdir(parents=True, exist_ok=True)
        link, copied = _relocate_libraries(emitter.link_flags, out)
        flags = (*compile_flags, *c_runtime.include_flags(), f"-I{AOT_SOURCES}",
                 *c_runtime.link_inputs(cc, compile_flags), *link)
        info = library_manifest(module, pipeline, flags, emitter.signatures, weights, python_entries=False)
        library = out / "libmodel.so"
        link_library(library, source, weights, info, flags,
                     [("model_entries.c", entries_source(entries)), AOT_SOURCES / "model_api.c"])
        header = out / "model.h"
        header.write_text(header_source(entries, default, about))
        shutil.copyfile(AOT_SOURCES / "run_model.c", out / "run_model.c")
        shutil.copyfile(AOT_SOURCES / "Makefile", out / "Makefile")
    except OSError as err:
        raise RelaxError(f"build: cannot write {out}: {err.strerror or err}") from None
    return BuildResult(out, library, header, copied, api_name(default.name))


__all__ = ["BuildResult", "api_name", "build"]
