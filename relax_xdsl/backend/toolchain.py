"""The C toolchain as the compile cache sees it: which compiler runs, what
it is, what CPU its flags resolve to, and the key naming a library built
from one source with it.

Everything that can change the bytes of a library is in its key, so a cached
library is only reused where the same compiler would have produced it: the
source, the compiler command with the flags inside `$CC`, the compiler's
full version text and resolved executable, every flag, the CPU that
`-march=native` / `-mtune=native` resolve to (the literal flag says nothing
about the machine it ran on), the environment variables the compiler reads,
and the versions of the project, Python and numpy whose headers the CPython
entry points include.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relax_xdsl.errors import RelaxError

KEY_FORMAT = "relax_xdsl-cache-2"
"""Bumped when the layout or meaning of cache entries changes."""

COMPILER_ENV = ("CPATH", "C_INCLUDE_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "SOURCE_DATE_EPOCH")
"""Environment variables gcc and clang read that can change the binary."""


def compile_objects(cc: Sequence[str], flags: Sequence[str], jobs: Sequence[tuple[Path, Path, str]]) -> None:
    """Each (source, object, what) compiled with -c by its own compiler
    process, all at once (the cores work side by side); RelaxError with the
    first failure's message, naming `what`. A failure leaves none of the
    other processes running."""
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        for src, obj, what in jobs:
            procs.append((what, subprocess.Popen([*cc, *flags, "-c", str(src), "-o", str(obj)], cwd=obj.parent,
                                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True)))
        for what, proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RelaxError(f"the C compiler failed on {what} ({' '.join(cc)}):\n{err.strip()[:4000]}")
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def compiler() -> list[str]:
    """The compiler command: `$CC` split like a shell would (it may carry flags), default `cc`."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    if not cc:
        raise RelaxError("$CC is set but empty: set it to a C compiler command, e.g. CC=gcc")
    return cc


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as err:
        raise RelaxError(f"the C compiler {' '.join(cmd[:1])!r} is not usable: {err}") from None


@functools.lru_cache(maxsize=8)
def compiler_identity(cc: tuple[str, ...]) -> str:
    """The compiler's resolved executable, full `--version` text and target
    triple (one call per process and compiler)."""
    proc = _run([*cc, "--version"])
    if proc.returncode != 0:
        raise RelaxError(f"the C compiler {' '.join(cc)!r} is not usable: "
                         f"`--version` exited with {proc.returncode}: {proc.stderr.strip()[:500]}")
    exe = shutil.which(cc[0])
    machine = _run([*cc, "-dumpmachine"]).stdout.strip()
    return "\n".join([os.path.realpath(exe) if exe else cc[0], proc.stdout.strip(), machine])


_VALUED_OPTIONS = ("-target-cpu", "-target-feature", "-target-abi", "-tune-cpu", "--param")


def _resolved_target_options(text: str) -> list[str]:
    """The target options of the compiler proper in a `-###` dump: gcc's
    cc1 line lists the `-march`/`-mtune` that `native` resolved to, every
    -m feature and the cache-size params; clang's lists `-target-cpu` and
    `-target-feature`s. Nothing else (the dump names temporary files)."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.startswith(" "):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        for i, w in enumerate(words):
            if w in _VALUED_OPTIONS and i + 1 < len(words):
                out.append(f"{w} {words[i + 1]}")
            elif w.startswith(("-m", "--param=")):
                out.append(w)
    return out


def _cpuinfo() -> str:
    """The CPU model and feature flags from /proc/cpuinfo ('' where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    wanted = ("model name", "flags", "Features", "CPU part", "cpu model", "isa")
    picked: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip() in wanted:
            picked.setdefault(name.strip(), value.strip())
    return "\n".join(f"{k}: {v}" for k, v in sorted(picked.items()))


@functools.lru_cache(maxsize=16)
def cpu_description(cc: tuple[str, ...], target_flags: tuple[str, ...]) -> str:
    """What the compiler generates code for under these target flags (the
    -m flags, `-march=native` resolved): the target options `-###` passes
    to the compiler proper. A compiler whose dump yields none (an unknown
    driver) is described by the machine's /proc/cpuinfo instead. Computed
    once per process and (compiler, flags)."""
    proc = _run([*cc, *target_flags, "-x", "c", "-c", os.devnull, "-o", os.devnull, "-###"])
    options = _resolved_target_options(proc.stderr + proc.stdout) if proc.returncode == 0 else []
    if options:
        return " ".join(options)
    return "cpuinfo\n" + _cpuinfo()


def target_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """The flags that choose the code's target: -m... (-march, -mtune, -mcpu, -mavx2, ...)."""
    return tuple(f for f in flags if f.startswith("-m"))


def installed_version(distribution: str) -> str | None:
    """The version of an installed distribution, or None (a source tree that was never installed)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def project_version() -> str:
    return installed_version("relax_xdsl") or "unknown"


def library_key(source: str, cc: Sequence[str], flags: Sequence[str]) -> str:
    """The cache key of the library built from `source` by `cc` with `flags` (see the module docstring)."""
    cc = tuple(cc)
    parts = [
        KEY_FORMAT,
        project_version(),
        f"python {sys.version}",
        f"numpy {np.__version__}",
        "cc " + shlex.join(cc),
        compiler_identity(cc),
        "flags " + shlex.join(flags),
        "target " + cpu_description(cc, target_flags([*cc[1:], *flags])),
        *(f"{name}={os.environ[name]}" for name in COMPILER_ENV if name in os.environ),
        source,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


ISA_MACROS = {
    "__SSE3__": "pni", "__SSSE3__": "ssse3", "__SSE4_1__": "sse4_1", "__SSE4_2__": "sse4_2", "__POPCNT__": "popcnt",
    "__AVX__": "avx", "__AVX2__": "avx2", "__FMA__": "fma", "__F16C__": "f16c", "__BMI__": "bmi1", "__BMI2__": "bmi2",
    "__LZCNT__": "abm", "__MOVBE__": "movbe", "__AVX512F__": "avx512f", "__AVX512CD__": "avx512cd",
    "__AVX512BW__": "avx512bw", "__AVX512DQ__": "avx512dq", "__AVX512VL__": "avx512vl",
    "__AVX512VNNI__": "avx512_vnni", "__AVX512BF16__": "avx512_bf16", "__AVX512FP16__": "avx512_fp16",
    "__AVXVNNI__": "avx_vnni",
}
"""x86 instruction-set macros gcc and clang define under -march, and the
/proc/cpuinfo flag naming the same feature: what a library built with those
flags needs from the machine that loads it."""


@functools.lru_cache(maxsize=16)
def required_cpu_features(cc: tuple[str, ...], target_flags: tuple[str, ...]) -> tuple[str, ...]:
    """The cpuinfo flags code built by `cc` with `target_flags` may use (x86;
    () elsewhere, where the machine type is what is checked)."""
    proc = _run([*cc, *target_flags, "-dM", "-E", "-x", "c", os.devnull])
    if proc.returncode != 0:
        raise RelaxError(f"the C compiler rejected the target flags {shlex.join(target_flags)}: "
                         f"{proc.stderr.strip()[:500]}")
    defined = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("#define ")}
    return tuple(sorted(flag for macro, flag in ISA_MACROS.items() if macro in defined))


def machine_cpu_features() -> frozenset[str] | None:
    """This machine's cpuinfo feature flags (None where /proc/cpuinfo has none)."""
    for line in _cpuinfo().splitlines():
        name, _, value = line.partition(": ")
        if name in ("flags", "Features"):
            return frozenset(value.split())
    return None
