"""The `c` target: emitted C (backend/c_emitter.py) compiled with the system
C compiler into a shared library, cached, loaded with ctypes; with Python's
and numpy's headers at hand it also holds CPython entry points taking the
arrays directly (backend/c_python.py), tried first on each call.

Cache (backend/compile_cache.py): `$RELAX_XDSL_CACHE_DIR` (default
`~/.cache/relax_xdsl`), one library per key over everything that changes
its bytes (backend/toolchain.py: source, compiler and its version, every
flag, the CPU `-march=native` resolves to). A library is compiled in a
temporary directory inside the cache and renamed into place with its
sha256, so concurrent processes compiling the same module never see a
partial file; the bytes loaded are the bytes checked against that digest,
and an entry that is missing, fails the check or fails to load is rebuilt.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import subprocess
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from relax_xdsl import dtypes
from relax_xdsl.backend import c_python, c_runtime, compile_cache
from relax_xdsl.backend.c_emitter import CEmitter, FuncSignature
from relax_xdsl.backend.c_names import ENTRY, FUNCTION, c_ident
from relax_xdsl.backend.compile_cache import cache_dir as cache_dir
from relax_xdsl.backend.toolchain import compile_objects, library_key
from relax_xdsl.backend.toolchain import compiler as compiler
from relax_xdsl.backend.toolchain import compiler_identity as compiler_identity
from relax_xdsl.errors import INDEX_OUT_OF_RANGE, BoundsError, RelaxError, ResourceLimitError, ShapeError
from relax_xdsl.limits import (
    LOOP_TOO_LONG,
    RECURSION_TOO_DEEP,
    max_alloc_bytes,
    max_loop_iterations,
    max_recursion_depth,
)
from relax_xdsl.scalar_semantics import normalize_bool

DEFAULT_FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11", "-fno-math-errno",
                 "-fno-trapping-math")
"""-fno-trapping-math: nothing here reads the floating-point exception
flags, and with them assumed observable gcc will not if-convert a loop
whose float selects it would have to evaluate on both sides, so loops over
rx_expf / rx_erff (softmax, sigmoid, tanh, GELU) stayed scalar. Results,
NaN and inf included, are unchanged; only the flags are."""
REQUIRED_FLAGS = ("-fwrapv",)
"""Added to every build, whatever flags the caller chose: signed integer
arithmetic wraps (two's complement), as numpy's does, instead of being
undefined on overflow (gcc would fold `x + 1 > x` to true)."""
WARNING_FLAGS = ("-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-variable",
                 "-Wno-unused-but-set-variable", "-Wno-unused-function")


SANITIZE_ENV = "RELAX_XDSL_SANITIZE"
SANITIZERS = ("address", "undefined")


def sanitizer_flags() -> tuple[str, ...]:
    """The flags of `$RELAX_XDSL_SANITIZE` (a comma-separated subset of
    `address,undefined`): generated C built with ASan / UBSan, every report
    fatal, so a test run under it fails on the first report. Unknown names
    are an error rather than a silently unsanitized build. ASan's runtime
    must be the process's first library (`LD_PRELOAD=$(cc
    -print-file-name=libasan.so)`, see .ci/run); without it loading fails,
    so that is checked here with a message saying how to run."""
    text = os.environ.get(SANITIZE_ENV, "").strip()
    if not text:
        return ()
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SANITIZERS]
    if unknown or not names:
        raise RelaxError(f"{SANITIZE_ENV}={text!r}: unknown sanitizer(s) {', '.join(map(repr, unknown))}; "
                         f"use a comma-separated subset of {', '.join(SANITIZERS)}")
    if "address" in names and not _asan_loaded():
        raise RelaxError(f"{SANITIZE_ENV}={text!r} needs ASan's runtime loaded first: run Python with "
                         "LD_PRELOAD=\"$(cc -print-file-name=libasan.so) $(cc -print-file-name=libstdc++.so.6)\" "
                         "ASAN_OPTIONS=detect_leaks=0")
    return (f"-fsanitize={','.join(sorted(set(names)))}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
            "-g")


def _asan_loaded() -> bool:
    try:
        return "libasan" in Path("/proc/self/maps").read_text()
    except OSError:
        return True  # no /proc: let the loader say what is wrong


def build_library(source: str, flags: Sequence[str], units: Sequence[str] | None = None) -> Path:
    """The cached shared library of `source` (compiled if missing; checked
    when loaded, by _load). `units`: the same code as translation units to
    compile side by side (CEmitter.units), or None."""
    cc = tuple(compiler())
    path = cache_dir() / f"rx_{library_key(source, cc, flags)}.so"
    if path.is_file() and compile_cache.digest_path(path).is_file():
        return path
    compile_to(path, source, cc, flags, units)
    return path


def compile_to(path: Path, source: str, cc: Sequence[str], flags: Sequence[str],
               units: Sequence[str] | None = None) -> None:
    """Compile `source` (or its `units`, each to an object in its own
    compiler process, then linked) into the cache entry `path` (with its
    digest; see compile_cache.store)."""
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build_") as tmp:
            out = Path(tmp) / "module.so"
            if units:
                objects = compile_units(cc, flags, units, Path(tmp))
                run_compiler(cc, flags, objects, out)
            else:
                src = Path(tmp) / "module.c"
                src.write_text(source)
                run_compiler(cc, flags, [src], out)
            compile_cache.store(out, path)
    except OSError as err:
        raise compile_cache.os_error(path.parent, err, "write a compiled library") from None


def compile_units(cc: Sequence[str], flags: Sequence[str], units: Sequence[str], tmp: Path) -> list[Path]:
    """Each unit written out and compiled to an object, side by side (toolchain.compile_objects)."""
    compile_flags = [f for f in flags if not _is_link_input(f) and f != "-shared"]
    jobs = []
    for k, text in enumerate(units):
        src = tmp / f"module_{k}.c"
        src.write_text(text)
        jobs.append((src, tmp / f"module_{k}.o", f"translation unit {k} of the module"))
    compile_objects(cc, compile_flags, jobs)
    return [obj for _, obj, _ in jobs]


def run_compiler(cc: Sequence[str], flags: Sequence[str], sources: Sequence[Path], out: Path) -> None:
    """`cc` builds the shared library `out` from `sources` with `flags`
    (libraries, archives and linker options after the sources), in the
    sources' directory; RelaxError with the compiler's message if it fails."""
    compile_flags = [f for f in flags if not _is_link_input(f)]
    link_flags = [f for f in flags if _is_link_input(f)]
    proc = subprocess.run([*cc, *compile_flags, *map(str, sources), "-o", str(out), *link_flags, "-lm"],
                          capture_output=True, text=True, cwd=sources[0].parent)
    if proc.returncode != 0:
        raise RelaxError(f"the C compiler failed ({' '.join(cc)}):\n{proc.stderr.strip()[:4000]}")


def _is_link_input(flag: str) -> bool:
    """Whether a flag belongs after the source on the command line (libraries, archives, linker options)."""
    return flag.startswith(("-l", "-L", "-Wl")) or flag.endswith(".a")


def quiet_idle_threads() -> None:
    """Idle OpenMP threads spin briefly, then sleep, unless the user chose
    otherwise. The variable is read when the runtime library loads, so this
    runs before loading a compiled library."""
    # OpenMP's pool is the only one that computes (OpenBLAS runs single-
    # threaded; rx_blas.c splits the products over OpenMP's threads). Its
    # parallel regions follow each other within microseconds, and a worker
    # that went to sleep takes a futex wake to start the next one: sleeping
    # at once (OMP_WAIT_POLICY=PASSIVE) made the mlp and BERT benchmarks
    # markedly slower. A bounded spin keeps workers awake between regions
    # and lets them sleep while Python runs between calls, so they do not
    # hold a core that other work needs for long.
    os.environ.setdefault("GOMP_SPINCOUNT", "100000")


MALLOC_ENV = "RELAX_XDSL_MALLOC_TUNING"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 32 * 2**20
"""glibc's own ceiling for its adaptive mmap threshold (mallopt refuses more)."""
TRIM_THRESHOLD = 256 * 2**20
_malloc_tuned = False


def keep_freed_memory() -> None:
    """Freed buffers up to 32 MiB stay in the heap for the next call
    (unless $RELAX_XDSL_MALLOC_TUNING is 0, or libc is not glibc).

    A decode step returns the whole KV cache as new arrays, megabytes each,
    and frees the previous step's. With glibc's defaults such buffers were
    mapped fresh or the heap was trimmed after each step and grown again,
    so every step paid page faults and zeroing for all of it: a large part of a
    batch-8 decode step's time was the kernel's. onnxruntime keeps an arena
    for the same reason. The cost is that the process keeps up to
    TRIM_THRESHOLD of freed memory instead of returning it at once."""
    global _malloc_tuned
    if _malloc_tuned or os.environ.get(MALLOC_ENV, "1") == "0":
        return
    _malloc_tuned = True
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def _load(path: Path, source: str, flags: Sequence[str]) -> ctypes.CDLL:
    """The library of cache entry `path`, loaded from bytes matching its
    recorded sha256 (compile_cache.load); an entry that is missing, fails
    the check or does not load is rebuilt in place (atomically), once."""
    quiet_idle_threads()
    keep_freed_memory()
    try:
        lib = compile_cache.load(path)
    except OSError:
        lib = None
    if lib is None:
        compile_to(path, source, tuple(compiler()), flags)
        try:
            lib = compile_cache.load(path)
        except OSError as err:
            raise RelaxError(f"the compiled library {path} does not load: {err}") from None
        if lib is None:
            raise RelaxError(f"the compiled library {path} changed between its build and its load")
    return lib


class _Callable:
    """A compiled function with its argument plan precomputed, keeping the
    per-call cost low: per parameter (numpy dtype, dynamic dim indexes,
    (axis, extent) of each static dim, rank) or (None, ...) for an index; per
    result (numpy dtype, rank, offset of its dims in the result buffer). A
    call passes one int64 buffer: the result pointers, then their dims."""

    def __init__(self, fn: object, sig: FuncSignature):
        argtypes: list[object] = [ctypes.c_void_p]
        self.params: list[tuple[np.dtype | None, tuple[int, ...], tuple[tuple[int, int], ...], int]] = []
        for kind, info in sig.params:
            if kind == "memref":
                elem, dyn, shape = info  # type: ignore[misc]
                static = tuple((axis, d) for axis, d in enumerate(shape) if d >= 0)
                self.params.append((dtypes.np_dtype(elem), tuple(dyn), static, len(shape)))
                argtypes += [ctypes.c_void_p] + [ctypes.c_int64] * len(dyn)
            else:
                self.params.append((None, (), (), 0))
                argtypes.append(ctypes.c_int64)
        nres = len(sig.results)
        self.results: list[tuple[np.dtype, int, int]] = []
        offset = nres
        for elem, rank in sig.results:
            self.results.append((dtypes.np_dtype(elem), rank, offset))
            offset += max(1, rank)
            argtypes += [ctypes.c_void_p, ctypes.c_void_p]  # int64_t* (as void**), int64_t[rank]
        self.buffer_type = ctypes.c_int64 * max(1, offset)
        fn.argtypes = argtypes  # type: ignore[attr-defined]
        self.fn = fn

    def expected(self, k: int) -> str:
        """Parameter k's shape as `?x4`, for errors."""
        _, _, static, rank = self.params[k]
        known = dict(static)
        return "x".join(str(known[a]) if a in known else "?" for a in range(rank))


def _address(arr: np.ndarray) -> int:
    """The data address of a C-contiguous array (a writable buffer's address
    is taken without building `arr.ctypes`, which costs microseconds)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    except (TypeError, ValueError):  # read-only or empty
        return arr.ctypes.data


class _Freed:
    """Frees a buffer the library malloc'd when the array viewing it dies
    (kept on the ctypes view; cheaper than weakref.finalize per result)."""

    __slots__ = ("free", "address")

    def __init__(self, free: object, address: int):
        self.free = free
        self.address = address

    def __del__(self) -> None:
        self.free(self.address)  # type: ignore[operator]


CPU_FLAG = "-march="
_CPU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


def cpu_flags(flags: Sequence[str], cpu: str | None) -> tuple[str, ...]:
    """`flags` with their -march replaced by `-march=<cpu>` (`native`, or a
    gcc CPU name such as `x86-64-v3` or `skylake`: a library built for it
    runs on any machine with that CPU's features); unchanged for None."""
    if cpu is None:
        return tuple(flags)
    if not _CPU_NAME.fullmatch(cpu):
        raise RelaxError(f"cpu {cpu!r} is not a CPU name (e.g. native, x86-64-v2, x86-64-v3, skylake-avx512)")
    return (*(f for f in flags if not f.startswith(CPU_FLAG)), f"{CPU_FLAG}{cpu}")


def _forget_constants(forget: Callable[..., None], arrays: list[np.ndarray]) -> None:
    for a in arrays:
        forget(a.ctypes.data, a.ctypes.data + a.nbytes)


def _forget_constants_when_freed(owner: object, lib: ctypes.CDLL, arrays: list[np.ndarray]) -> None:
    """When `owner` dies, tells the runtime its constants (`arrays`, kept
    alive until then) are gone: a library serves every module compiled to
    the same C, and keeps data derived from constant operands keyed on
    their address (rx_dnnl_conv2d_cw), which another module's constants
    may occupy next."""
    forget = getattr(lib, "rx_dnnl_forget_weights", None)  # in the runtime when oneDNN is
    if forget is None or not arrays:
        return
    forget.argtypes, forget.restype = [ctypes.c_void_p, ctypes.c_void_p], None
    weakref.finalize(owner, _forget_constants, forget, arrays).atexit = False


def module_flags(cflags: Sequence[str] | None = None, cpu: str | None = None) -> tuple[str, ...]:
    """The flags a module (and its runtime archive) is compiled with."""
    chosen = cpu_flags(tuple(cflags) if cflags is not None else DEFAULT_FLAGS, cpu)
    return (*chosen, *(f for f in REQUIRED_FLAGS if f not in chosen), *sanitizer_flags())


def prepare_runtime(cflags: Sequence[str] | None = None, cpu: str | None = None, **_: Any) -> None:
    """Starts building the runtime archive CModule(..., cflags, cpu) will
    link, in the background, if it is not cached (c_runtime.prepare)."""
    try:
        c_runtime.prepare(compiler(), module_flags(cflags, cpu))
    except RelaxError:
        pass  # CModule reports it


class CModule:
    """A loop-level module compiled to a shared library (see backend/__init__)."""

    def __init__(self, module: ModuleOp, cflags: Sequence[str] | None = None, debug: bool = False,
                 cpu: str | None = None):
        """`debug`: every buffer access is bounds-checked; a violation raises
        BoundsError naming the function, buffer, dim, index and extent (the
        source differs, so debug builds are cached apart). `cpu`: the CPU to
        generate code for (cpu_flags), by default the flags' (-march=native)."""
        emitter = CEmitter(module, debug=debug)
        self.debug = debug
        self.source = emitter.emit()
        compile_flags = module_flags(cflags, cpu)
        # the runtime archive before the libraries it calls (BLAS): the linker resolves in order
        self.flags = (*compile_flags, *c_runtime.include_flags(), *c_runtime.link_inputs(compiler(), compile_flags),
                      *emitter.link_flags)
        python_flags = c_python.include_flags() if not debug else None
        if python_flags is not None:
            try:  # with CPython entry points; a header that does not compile only costs their speed
                entry = c_python.source(emitter.signatures)
                source, flags = self.source + entry, (*self.flags, *python_flags)
                units = (emitter.units[0] + entry, emitter.units[1]) if emitter.units else None
                self.path = build_library(source, flags, units)
                self.source, self.flags = source, flags
            except RelaxError:
                python_flags = None
        if python_flags is None:
            self.path = build_library(self.source, self.flags, emitter.units)
        self.globals = emitter.global_data()
        """The constants, in the order of the `rx_g` table every function takes."""
        table = (ctypes.c_void_p * max(1, len(self.globals)))(*[g.ctypes.data for g in self.globals])
        self._attach(_load(self.path, self.source, self.flags), emitter.signatures, table, python_flags is not None)
        _forget_constants_when_freed(self, self.lib, self.globals)

    @classmethod
    def loaded(cls, lib: ctypes.CDLL, path: Path, signatures: dict[str, FuncSignature], table: int,
               python_entries: bool) -> CModule:
        """A library loaded from elsewhere (deploy.load_module): its
        functions, their signatures and the address of its constants table."""
        self = cls.__new__(cls)
        self.debug, self.source, self.flags, self.path, self.globals = False, "", (), path, []
        self._attach(lib, signatures, table, python_entries)
        return self

    def _attach(self, lib: ctypes.CDLL, signatures: dict[str, FuncSignature], table: object,
                python_entries: bool) -> None:
        """Binds the library's runtime functions, sets its limits from the
        environment and finds its CPython entry points (when built with them)."""
        self.lib = lib
        self.fast: dict[str, Callable[..., Any]] = {}
        """Per function, its CPython entry point (see c_python), when built with them."""
        self.lib.rx_last_error.restype = ctypes.c_char_p
        self.lib.rx_debug_error.restype = ctypes.c_char_p
        self.lib.rx_free.argtypes = [ctypes.c_void_p]
        self.lib.rx_set_max_alloc.argtypes = [ctypes.c_int64]
        self.lib.rx_set_max_alloc(max_alloc_bytes())
        self.lib.rx_set_max_depth.argtypes = [ctypes.c_int64]
        self.lib.rx_set_max_depth(max_recursion_depth())
        self.lib.rx_set_max_loop.argtypes = [ctypes.c_int64]
        self.lib.rx_set_max_loop(max_loop_iterations())
        self._table = table
        if python_entries:
            entries = ctypes.PyDLL(str(self.path), handle=self.lib._handle).rxpy_functions
            entries.argtypes, entries.restype = [ctypes.c_void_p], ctypes.py_object
            address = table if isinstance(table, int) else ctypes.addressof(table)  # type: ignore[arg-type]
            try:
                by_ident = entries(address)
                self.fast = {name: by_ident[c_ident(ENTRY, name)] for name in signatures
                             if c_ident(ENTRY, name) in by_ident}
            except Exception:  # e.g. numpy's C API failing to import: the ctypes path serves
                self.fast = {}
        self._signatures = signatures
        self._functions: dict[str, _Callable] = {}

    def signatures(self) -> dict[str, FuncSignature]:
        """Per C function, what Python needs to call it."""
        return dict(self._signatures)

    def _function(self, name: str) -> _Callable:
        if name not in self._functions:
            sig = self._signatures.get(name)
            if sig is None:
                raise RelaxError(f"no compiled function @{name}")
            fn = getattr(self.lib, c_ident(FUNCTION, name))
            fn.restype = ctypes.c_int
            self._functions[name] = _Callable(fn, sig)
        return self._functions[name]

    def call(self, func: str, args: Sequence[np.ndarray | int]) -> tuple[np.ndarray, ...]:
        f = self._function(func)
        if len(args) != len(f.params):
            raise RelaxError(f"@{func} takes {len(f.params)} arguments, got {len(args)}")
        cargs: list[object] = [self._table]
        keep = []
        for k, ((dtype, dyn, static, rank), a) in enumerate(zip(f.params, args)):
            if dtype is None:
                cargs.append(int(a))  # type: ignore[arg-type]
                continue
            arr = a if type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous else \
                np.require(a, dtype=dtype, requirements="C")
            if dtype == np.bool_:  # C's bool must be 0 or 1: any nonzero byte is True
                arr = normalize_bool(arr)
            ashape = arr.shape
            if len(ashape) != rank:
                raise ShapeError(f"@{func}: argument {k} has shape {ashape}, expected {f.expected(k)}")
            for axis, d in static:
                if ashape[axis] != d:
                    raise ShapeError(f"@{func}: argument {k} has shape {ashape}, expected {f.expected(k)}")
            keep.append(arr)
            cargs.append(_address(arr))
            for j in dyn:
                cargs.append(ashape[j])
        out = f.buffer_type()
        base, slot = ctypes.addressof(out), ctypes.sizeof(ctypes.c_int64)
        for i, (_, _, offset) in enumerate(f.results):
            cargs.append(base + slot * i)
            cargs.append(base + slot * offset)
        if self.debug:
            self.lib.rx_debug_reset()
        status = f.fn(*cargs)
        results = tuple(self._wrap(out[i], tuple(out[offset:offset + rank]), dt)
                        for i, (dt, rank, offset) in enumerate(f.results)) if status == 0 else ()
        if self.debug and self.lib.rx_debug_error():
            raise BoundsError(self.lib.rx_debug_error().decode(errors="replace"))
        if status != 0:
            msg = self.lib.rx_last_error().decode(errors="replace")
            if "allocation limit" in msg or "out of memory" in msg or RECURSION_TOO_DEEP in msg or LOOP_TOO_LONG in msg:
                raise ResourceLimitError(msg)
            if INDEX_OUT_OF_RANGE in msg:
                raise BoundsError(msg)
            raise ShapeError(msg)
        return results

    def _wrap(self, address: int, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
        """A numpy array owning a buffer malloc'd by the library (freed with it)."""
        size = math.prod(shape)
        if min(shape, default=0) < 0 or size * dt.itemsize >= 2**63:  # not a buffer rx_alloc gave
            if address:
                self.lib.rx_free(address)
            raise ResourceLimitError(f"a result of shape {shape} does not fit 64-bit sizes (allocation limit exceeded)")
        if not address:
            return np.empty(shape, dt)
        if size == 0:
            self.lib.rx_free(address)
            return np.empty(shape, dt)
        raw = (ctypes.c_uint8 * (size * dt.itemsize)).from_address(address)
        raw.owner = _Freed(self.lib.rx_free, address)  # type: ignore[attr-defined]
        array = np.frombuffer(raw, dtype=dt)
        return array.reshape(shape) if len(shape) != 1 else array
