"""The C runtime as a cached static archive: relax_xdsl/c_runtime/*.c (the
package's C sources: errors, limits, allocation, the memory pool, BLAS
wrappers and conv kernels) compiled once per compiler and flag set, then
linked into every module library.

Why an archive and not a shared library: a module library stays one
self-contained file (it can be saved, shipped and loaded alone, with no
rpath to a cache entry), while the runtime's code is compiled once instead
of into every module; the linker copies in only the objects a module uses
(rx_blas.o only when it calls BLAS). Each module gets its own copy of the
runtime's state (error text, limits, pools), as before.

The archive is built with the module's compile flags (the same -march,
sanitizers and test -D defines reach its kernels), minus include paths and
-shared, plus -fvisibility=hidden: only rx_runtime.h's RX_API functions are
exported from a module. Its cache entry (`rx_runtime_<key>.a`, see
compile_cache) is keyed on the compiler, those flags and the sources' text.

A cold build compiles the sources side by side, and `prepare` starts it in
a background thread when a compile begins: gcc then works while the pass
pipeline (Python) runs, instead of after it (on a fresh cache the archive
was most of a small model's cold compile).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from relax_xdsl.backend import compile_cache
from relax_xdsl.backend.toolchain import compile_objects, library_key
from relax_xdsl.errors import RelaxError

SOURCE_DIR = Path(__file__).resolve().parent.parent / "c_runtime"
"""The runtime's C sources and headers (package data)."""

CORE_SOURCES = ("rx_runtime.c",)
BLAS_SOURCES = ("rx_blas.c", "rx_packed.c")
DNNL_SOURCES = ("rx_dnnl.c",)
HEADERS = ("rx_runtime.h", "rx_blas.h", "rx_dnnl.h", "rx_python.h")

EXPORTED = ("rx_last_error",)
"""A symbol of rx_runtime.o that every module must contain: naming it
(-u) makes the linker take the whole object, whose RX_API functions the
host looks up, even when the generated code calls none of them."""


def text(name: str) -> str:
    """One runtime source or header, as text."""
    return (SOURCE_DIR / name).read_text()


@cache
def _sources_text() -> str:
    return "\0".join(f"{name}\0{text(name)}" for name in (*HEADERS, *CORE_SOURCES, *BLAS_SOURCES, *DNNL_SOURCES))


def include_flags() -> tuple[str, ...]:
    return (f"-I{SOURCE_DIR}",)


def _blas_include() -> tuple[str, ...]:
    """-I for cblas.h (scipy-openblas32), or () when it is not installed (no BLAS part then)."""
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return ()
    return (f"-I{sob.get_include_dir()}",)


def _dnnl_include() -> tuple[str, ...]:
    """-I for oneapi/dnnl/dnnl.h (relax_xdsl.dnnl), or () when oneDNN is not installed (no oneDNN part then)."""
    from relax_xdsl.dnnl import include_dir

    found = include_dir()
    return (f"-I{found}",) if found else ()


def runtime_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """The flags the archive is compiled with, from a module's flags."""
    kept = [f for f in flags if f != "-shared" and not f.startswith(("-I", "-l", "-L", "-Wl"))]
    return (*kept, "-fvisibility=hidden", *include_flags(), *_blas_include(), *_dnnl_include())


_building: dict[Path, threading.Thread] = {}
_failed: dict[Path, BaseException] = {}
_lock = threading.Lock()


def _archive_path(cc: Sequence[str], flags: Sequence[str]) -> tuple[Path, tuple[str, ...]]:
    rflags = runtime_flags(flags)
    return compile_cache.cache_dir() / f"rx_runtime_{library_key(_sources_text(), cc, rflags)}.a", rflags


def _cached(path: Path) -> bool:
    return path.is_file() and compile_cache.digest_path(path).is_file()


def prepare(cc: Sequence[str], flags: Sequence[str]) -> None:
    """Starts building the archive for `cc` and `flags` in the background
    when it is not cached yet (archive() waits for it); errors of the build
    surface there."""
    path, rflags = _archive_path(cc, flags)
    with _lock:
        if path in _building or _cached(path):
            return

        def work() -> None:
            try:
                _build(path, cc, rflags)
            except BaseException as err:  # noqa: BLE001 - re-raised by archive() in the caller's thread
                _failed[path] = err

        thread = threading.Thread(target=work, name="rx-runtime-archive", daemon=True)
        _building[path] = thread
        thread.start()


def archive(cc: Sequence[str], flags: Sequence[str]) -> Path:
    """The cached runtime archive for modules built by `cc` with `flags` (built if missing)."""
    path, rflags = _archive_path(cc, flags)
    with _lock:
        thread = _building.get(path)
    if thread is not None:
        thread.join()
        with _lock:
            _building.pop(path, None)
            err = _failed.pop(path, None)
        if err is not None:
            raise err
    if _cached(path):
        try:
            os.utime(path)  # recently used: the cache's LRU trim keeps it
        except OSError:
            pass
        return path
    _build(path, cc, rflags)
    return path


def _build(path: Path, cc: Sequence[str], rflags: Sequence[str]) -> None:
    """Compiles the sources side by side into the archive at `path`."""
    sources = [*CORE_SOURCES, *(BLAS_SOURCES if _blas_include() else ()), *(DNNL_SOURCES if _dnnl_include() else ())]
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build_") as tmp:
            jobs = [(SOURCE_DIR / name, Path(tmp) / (Path(name).stem + ".o"), f"the runtime's {name}")
                    for name in sources]
            compile_objects(cc, rflags, jobs)
            built = Path(tmp) / "runtime.a"
            proc = subprocess.run(["ar", "rcs", str(built), *(str(obj) for _, obj, _ in jobs)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RelaxError(f"ar failed building the C runtime archive:\n{proc.stderr.strip()[:2000]}")
            compile_cache.store(built, path)
    except OSError as err:
        raise compile_cache.os_error(path.parent, err, "build the C runtime") from None


def link_inputs(cc: Sequence[str], flags: Sequence[str]) -> tuple[str, ...]:
    """What a module's link adds, after its own source: the archive, and -u for EXPORTED."""
    return (*(f"-Wl,-u,{name}" for name in EXPORTED), str(archive(cc, flags)))
