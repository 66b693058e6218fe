"""The compile cache: where compiled libraries are kept, and why a library
found there can be trusted before it is loaded into the process.

Directory: `$RELAX_XDSL_CACHE_DIR` (default `~/.cache/relax_xdsl`), created
0700. A library loaded from a directory someone else can write into runs
their code in this process, so a directory that another user owns, that is
group- or world-writable, or that is not a directory is refused with a
CacheWarning naming it and why; the process then uses a private temporary
directory (mkdtemp, 0700, one per process, removed at exit). A directory
that cannot be created or written (a path under a file, no permission, a
full disk) is a RelaxError naming the path.

Entries: `rx_<key>.so` (a module library, or `rx_runtime_<key>.a`, the C
runtime archive) and beside it `rx_<key>.so.sha256`, the sha256 of
the entry's bytes, written (atomically, by rename) after the library. A
load reads the library's bytes once, checks they hash to the recorded
digest and that the file is a regular file of this user, and then loads
*those bytes*, not the path: they are written to a sealed memfd
(F_SEAL_WRITE, so nothing can change them afterwards) which is dlopen'ed
through /proc/self/fd/N; where memfds are unavailable or not executable,
to a fresh file in this process's private 0700 directory. Checking the
path and then loading it would leave a window in which the file could be
swapped; here what is checked is what is mapped. A mismatch, or a file of
another owner, is never loaded: it is rebuilt, with a warning. The digest
guards against partial writes and against a library replaced without its
digest; the directory checks are what keep other users out.

Each copy loaded stays in the process, as a dlopen'ed library does (ctypes
never unloads): the memfd stays open and the fallback file stays until
exit, because glibc recognises an already loaded library by its name and
by its device and inode, so reusing either would hand back the old
library. Identical bytes (same digest) are loaded once per process.

Size: after an entry is added, the least recently used entries (by mtime,
touched on every load) are removed until the entries total at most
`$RELAX_XDSL_CACHE_MAX_BYTES` (default 1 GiB); the entry just added stays.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import hashlib
import itertools
import os
import shutil
import stat
import tempfile
import threading
import warnings
from pathlib import Path

from relax_xdsl.errors import RelaxError

DIR_ENV = "RELAX_XDSL_CACHE_DIR"
MAX_BYTES_ENV = "RELAX_XDSL_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 1 << 30
ENTRY_GLOBS = ("rx_*.so", "rx_*.a")
"""Module libraries, and the C runtime archives they are linked with (backend/c_runtime.py)."""
DIGEST_SUFFIX = ".sha256"


class CacheWarning(UserWarning):
    """The compile cache refused a directory or an entry (and carried on safely without it)."""


def configured_dir() -> Path:
    """The directory the environment asks for (not yet checked)."""
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".cache" / "relax_xdsl")


def os_error(path: Path, err: OSError, doing: str) -> RelaxError:
    """An OSError met while `doing` something in the cache at `path`, as a project error."""
    where = err.filename if isinstance(err.filename, str) else str(path)
    return RelaxError(f"compile cache {path}: cannot {doing}: {err.strerror or err} ({where}); "
                      f"set {DIR_ENV} to a writable directory")


def _refusal(d: Path) -> str | None:
    """Why `d` cannot be trusted as the cache (None: it can), creating it if missing."""
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        return "it is not a directory"
    except OSError as err:
        raise os_error(d, err, "create the directory") from None
    try:
        st = os.stat(d)
    except OSError as err:
        raise os_error(d, err, "read the directory") from None
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"it is owned by another user (uid {st.st_uid}, this process runs as uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"it is group- or world-writable (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def cache_dir() -> Path:
    """The cache directory, checked (see the module docstring): the
    configured one, or this process's private temporary one when the
    configured one is refused."""
    d = configured_dir()
    reason = _refusal(d)
    if reason is None:
        return d
    fallback = private_temp_dir()
    warnings.warn(f"compile cache {d} is not used: {reason}; compiled libraries go to the private temporary "
                  f"directory {fallback} for this process", CacheWarning, stacklevel=2)
    return fallback


_private: tuple[int, Path] | None = None
_private_lock = threading.Lock()


def _remove_private(pid: int, path: Path) -> None:
    if os.getpid() == pid:  # not from a forked child
        shutil.rmtree(path, ignore_errors=True)


def private_temp_dir() -> Path:
    """This process's private directory (0700, removed at exit)."""
    global _private
    with _private_lock:
        if _private is None or _private[0] != os.getpid():
            try:
                path = Path(tempfile.mkdtemp(prefix="relax_xdsl_cache_"))
            except OSError as err:
                raise os_error(Path(tempfile.gettempdir()), err, "create a private temporary directory") from None
            atexit.register(_remove_private, os.getpid(), path)
            _private = (os.getpid(), path)
        return _private[1]


def max_bytes() -> int:
    """The size cap of the cache's entries, from `$RELAX_XDSL_CACHE_MAX_BYTES`."""
    text = os.environ.get(MAX_BYTES_ENV)
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise RelaxError(f"{MAX_BYTES_ENV}={text!r}: expected a number of bytes (an integer >= 0)")
    return value


def digest_path(entry: Path) -> Path:
    return entry.with_name(entry.name + DIGEST_SUFFIX)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store(built: Path, entry: Path) -> None:
    """Move a freshly built library into the cache as `entry`, with its
    digest, then trim the cache to its cap. `built` lies in a private build
    directory inside the cache; both renames are atomic, the library first,
    so a reader never finds a digest without its library."""
    digest = built.with_name(built.name + DIGEST_SUFFIX)
    digest.write_text(sha256_file(built) + "\n")
    os.replace(built, entry)
    os.replace(digest, digest_path(entry))
    evict(entry.parent, keep=entry)


def _read_own_file(path: Path) -> bytes | None:
    """The bytes of `path` when it is a regular file of this user; None when
    it is missing; None with a warning when it is something else."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            _distrust(path, "it is a symbolic link")
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            _distrust(path, "it is not a regular file")
            return None
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            _distrust(path, f"it is owned by another user (uid {st.st_uid})")
            return None
        return f.read()


def _distrust(path: Path, why: str) -> None:
    warnings.warn(f"compile cache entry {path} is not loaded: {why}; it is rebuilt", CacheWarning, stacklevel=4)


def load(entry: Path) -> ctypes.CDLL | None:
    """The cached library `entry`, loaded from bytes checked against its
    recorded digest; None when it is missing, has no digest or fails the
    check (the caller rebuilds it). An OSError means verified bytes that
    the dynamic loader refused."""
    recorded = _read_own_file(digest_path(entry))
    if recorded is None:
        return None
    data = _read_own_file(entry)
    if data is None:
        return None
    expected = recorded.decode(errors="replace").strip()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        _distrust(entry, f"its sha256 {actual[:16]}... differs from the recorded {expected[:16]}...")
        return None
    try:
        os.utime(entry)  # recency, for the size cap
    except OSError:
        pass
    return load_bytes(data, actual, entry.name)


_loaded: dict[str, ctypes.CDLL] = {}
_open_memfds: list[int] = []
_load_lock = threading.Lock()
_copy_numbers = itertools.count()


def load_bytes(data: bytes, digest: str, name: str) -> ctypes.CDLL:
    """dlopen exactly `data` (whose sha256 is `digest`), once per process."""
    with _load_lock:
        lib = _loaded.get(digest)
        if lib is None:
            lib = _dlopen_sealed_memfd(data, name) or _dlopen_private_copy(data, name)
            _loaded[digest] = lib
        return lib


def _dlopen_sealed_memfd(data: bytes, name: str) -> ctypes.CDLL | None:
    """`data` in a sealed memfd, dlopen'ed; None where memfds are not available or not loadable."""
    try:
        import fcntl

        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except (ImportError, AttributeError, OSError):
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        lib = ctypes.CDLL(f"/proc/self/fd/{fd}")
    except (OSError, AttributeError):
        os.close(fd)
        return None
    _open_memfds.append(fd)  # kept open: the name /proc/self/fd/N must not come back for another library
    return lib


def _dlopen_private_copy(data: bytes, name: str) -> ctypes.CDLL:
    """`data` written to a new file in this process's private directory, dlopen'ed."""
    d = private_temp_dir() / "loaded"
    d.mkdir(mode=0o700, exist_ok=True)
    path = d / f"{next(_copy_numbers)}_{name}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o500)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return ctypes.CDLL(str(path))


def entries(directory: Path) -> list[tuple[float, int, Path]]:
    """(mtime, bytes with its digest, path) of each entry."""
    out = []
    for path in (p for pattern in ENTRY_GLOBS for p in directory.glob(pattern)):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        try:
            extra = digest_path(path).lstat().st_size
        except FileNotFoundError:
            extra = 0
        out.append((st.st_mtime, st.st_size + extra, path))
    return out


def remove(entry: Path) -> None:
    for p in (entry, digest_path(entry)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def evict(directory: Path, keep: Path | None = None, cap: int | None = None) -> list[Path]:
    """Remove least recently used entries until the rest total at most `cap` bytes (default: max_bytes());
    `keep` stays. The entries removed."""
    cap = max_bytes() if cap is None else cap
    found = sorted(entries(directory))
    total = sum(size for _, size, _ in found)
    removed = []
    for _, size, path in found:
        if total <= cap:
            break
        if path == keep:
            continue
        remove(path)
        removed.append(path)
        total -= size
    return removed


def info(directory: Path) -> tuple[int, int]:
    """(number of entries, their total bytes)."""
    found = entries(directory)
    return len(found), sum(size for _, size, _ in found)


def clear(directory: Path) -> tuple[int, int]:
    """Remove every entry (and digests left without one); (entries removed, bytes freed)."""
    count, total = info(directory)
    try:
        for _, _, path in entries(directory):
            remove(path)
        for pattern in ENTRY_GLOBS:
            for orphan in directory.glob(pattern + DIGEST_SUFFIX):
                orphan.unlink(missing_ok=True)
    except OSError as err:
        raise os_error(directory, err, "remove entries") from None
    return count, total
