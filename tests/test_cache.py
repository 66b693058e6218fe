"""The compile cache can be trusted: its key covers what changes a library
(flags inside $CC, the CPU -march=native resolves to), a directory others
could write into is refused (warning, private fallback), a library is loaded
only from bytes matching its recorded sha256, OS errors are project errors
naming the path, `relax-xdsl cache info|clear`, and the LRU size cap."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.backend import compile_cache, toolchain
from relax_xdsl.backend.compile_cache import CacheWarning
from relax_xdsl.cli.driver import main

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def binary_module(kind: str = "add") -> object:
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n"], "float32")
        b = fb.param("b", ["n"], "float32")
        fb.ret(getattr(op, kind)(a, b))
    return fb.module


def check_add(exe: rx.Executable) -> None:
    a, b = np.arange(4, dtype=np.float32), np.full(4, 10, np.float32)
    np.testing.assert_array_equal(exe.main(a, b), a + b)


def entries(d: Path) -> list[Path]:
    return sorted(d.glob("rx_*.so"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAX_XDSL_CACHE_MAX_BYTES", raising=False)
    return tmp_path / "cache"


# -- the key ---------------------------------------------------------------------------------------------------------


def test_flags_inside_cc_change_the_key(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = toolchain.compiler()[0]
    monkeypatch.setenv("CC", cc)
    check_add(rx.compile(binary_module(), target="c"))
    monkeypatch.setenv("CC", f"{cc} -O0")
    check_add(rx.compile(binary_module(), target="c"))
    assert len(entries(cache)) == 2


def test_the_resolved_cpu_changes_the_key(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "cpu_description", lambda cc, flags: "cpu A: avx2")
    check_add(rx.compile(binary_module(), target="c"))
    monkeypatch.setattr(toolchain, "cpu_description", lambda cc, flags: "cpu B: avx512f")
    check_add(rx.compile(binary_module(), target="c"))
    assert len(entries(cache)) == 2


def test_march_native_is_described_by_what_it_resolves_to() -> None:
    cc = tuple(toolchain.compiler())
    native = toolchain.cpu_description(cc, ("-march=native",))
    generic = toolchain.cpu_description(cc, ("-march=x86-64",) if "x86" in native else ())
    assert native and "native" not in native
    assert native != generic or "cpuinfo" in native


def test_resolved_target_options_of_gcc_and_clang_dumps() -> None:
    gcc = ' /usr/lib/gcc/cc1 -quiet /dev/null "-march=znver3" -mavx2 -mno-avx512f --param "l1-cache-size=32" ' \
          '"-mtune=znver3" -O3 -o /tmp/ccW5aIZH.s'
    clang = ' "/usr/bin/clang" "-cc1" "-target-cpu" "skylake" "-target-feature" "+avx2" "-o" "/tmp/x.o"'
    assert toolchain._resolved_target_options("Target: x\n" + gcc) == [
        "-march=znver3", "-mavx2", "-mno-avx512f", "--param l1-cache-size=32", "-mtune=znver3"]
    assert toolchain._resolved_target_options(clang) == ["-target-cpu skylake", "-target-feature +avx2"]


# -- the directory ---------------------------------------------------------------------------------------------------


def test_a_file_as_cache_dir_falls_back_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "a_file"
    bad.write_text("not a directory")
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(bad))
    with pytest.warns(CacheWarning, match=rf"{bad}.*not a directory"):
        exe = rx.compile(binary_module(), target="c")
    check_add(exe)
    assert bad.read_text() == "not a directory"
    assert exe.backend.path.parent == compile_cache.private_temp_dir()
    assert (compile_cache.private_temp_dir().stat().st_mode & 0o777) == 0o700


def test_a_world_writable_dir_falls_back_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(shared))
    with pytest.warns(CacheWarning, match=rf"{shared}.*world-writable"):
        check_add(rx.compile(binary_module(), target="c"))
    assert entries(shared) == []


@pytest.mark.skipif(not ROOT, reason="giving a directory to another user needs root")
def test_a_dir_owned_by_another_user_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    squatted = tmp_path / "squatted"
    squatted.mkdir(mode=0o700)
    os.chown(squatted, 12345, 12345)
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(squatted))
    with pytest.warns(CacheWarning, match=rf"{squatted}.*another user"):
        check_add(rx.compile(binary_module(), target="c"))
    assert entries(squatted) == []


def test_the_cache_dir_is_created_private(cache: Path) -> None:
    check_add(rx.compile(binary_module(), target="c"))
    assert (cache.stat().st_mode & 0o777) == 0o700


def test_a_cache_dir_under_a_file_is_a_relax_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(tmp_path / "file" / "cache"))
    with pytest.raises(rx.RelaxError, match=r"file/cache.*cannot create"):
        rx.compile(binary_module(), target="c")


@pytest.mark.skipif(ROOT, reason="root writes into a 0500 directory anyway")
def test_an_unwritable_cache_dir_is_a_relax_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(locked))
    try:
        with pytest.raises(rx.RelaxError, match=str(locked)):
            rx.compile(binary_module(), target="c")
    finally:
        locked.chmod(0o700)


def test_a_full_disk_is_a_relax_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(built: Path, entry: Path) -> None:
        raise OSError(28, "No space left on device", str(entry))

    monkeypatch.setattr(compile_cache, "store", full)
    with pytest.raises(rx.RelaxError, match=rf"{cache}.*No space left"):
        rx.compile(binary_module(), target="c")


# -- integrity ---------------------------------------------------------------------------------------------------------


def test_each_entry_records_its_sha256_and_is_loaded_from_a_private_copy(cache: Path) -> None:
    exe = rx.compile(binary_module(), target="c")
    (lib,) = entries(cache)
    digest = compile_cache.digest_path(lib).read_text().strip()
    assert digest == hashlib.sha256(lib.read_bytes()).hexdigest()
    assert exe.backend.lib._name != str(lib)  # the checked bytes, not the path


_CHILD = textwrap.dedent("""
    import warnings
    import numpy as np
    import relax_xdsl as rx
    from relax_xdsl import op
    with rx.FunctionBuilder("main") as fb:
        a = fb.param("a", ["n"], "float32")
        b = fb.param("b", ["n"], "float32")
        fb.ret(op.add(a, b))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exe = rx.compile(fb.module, target="c")
    print(exe.main(np.full(2, 3, np.float32), np.full(2, 1, np.float32)).tolist())
    print([str(w.message) for w in caught])
""")


def test_a_planted_library_is_not_loaded_but_rebuilt(cache: Path) -> None:
    """A library swapped into an entry (here one computing a - b under the
    same names) is refused and rebuilt. In a child process: this one has the
    genuine library loaded already."""
    rx.compile(binary_module("add"), target="c")
    (entry,) = entries(cache)
    genuine = entry.read_bytes()
    other = rx.compile(binary_module("subtract"), target="c").backend.path
    entry.write_bytes(other.read_bytes())
    child = subprocess.run([sys.executable, "-P", "-c", _CHILD], capture_output=True, text=True,
                           env={**os.environ, "RELAX_XDSL_CACHE_DIR": str(cache)}, timeout=300)
    assert child.returncode == 0, child.stderr
    result, messages = child.stdout.splitlines()[-2:]
    assert result == "[4.0, 4.0]"  # a + b, not the planted a - b
    assert "differs from the recorded" in messages
    assert entry.read_bytes() == genuine


def test_a_tampered_library_is_rebuilt_in_process(cache: Path) -> None:
    rx.compile(binary_module(), target="c")
    (entry,) = entries(cache)
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="differs from the recorded"):
        check_add(rx.compile(binary_module(), target="c"))
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == compile_cache.digest_path(entry).read_text().strip()


def test_an_entry_that_is_a_symlink_is_not_followed(cache: Path, tmp_path: Path) -> None:
    rx.compile(binary_module(), target="c")
    (entry,) = entries(cache)
    elsewhere = tmp_path / "elsewhere.so"
    elsewhere.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(elsewhere)
    with pytest.warns(CacheWarning, match="symbolic link"):
        check_add(rx.compile(binary_module(), target="c"))
    assert not entry.is_symlink()


def test_a_library_the_loader_refuses_is_rebuilt_once_then_a_relax_error(cache: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    original = compile_cache.store
    monkeypatch.setattr(compile_cache, "store", lambda built, entry: (builds.append(entry), original(built, entry)))

    def refuse(data: bytes, digest: str, name: str) -> None:
        raise OSError(f"{name}: invalid ELF header")

    monkeypatch.setattr(compile_cache, "load_bytes", refuse)
    with pytest.raises(rx.RelaxError, match=r"rx_.*\.so does not load: .*invalid ELF header"):
        rx.compile(binary_module(), target="c", pipeline="default")
    assert len([e for e in builds if e.suffix == ".so"]) == 2  # the first build, one rebuild (and the runtime archive)


# -- size cap and the command line ------------------------------------------------------------------------------------


def test_a_cache_hit_marks_the_entry_recently_used(cache: Path) -> None:
    rx.compile(binary_module(), target="c")
    (entry,) = entries(cache)
    os.utime(entry, (1000, 1000))
    rx.compile(binary_module(), target="c")
    assert entry.stat().st_mtime > 1000


def test_the_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    for name, mtime in [("rx_old", 1000), ("rx_mid", 2000), ("rx_new", 3000)]:
        so = tmp_path / f"{name}.so"
        so.write_bytes(b"x" * 100)
        compile_cache.digest_path(so).write_text("0" * 64)
        os.utime(so, (mtime, mtime))
    removed = compile_cache.evict(tmp_path, cap=2 * 164)
    assert [p.name for p in removed] == ["rx_old.so"]
    assert [p.name for p in entries(tmp_path)] == ["rx_mid.so", "rx_new.so"]
    assert not (tmp_path / "rx_old.so.sha256").exists()
    assert compile_cache.evict(tmp_path, keep=tmp_path / "rx_mid.so", cap=0) == [tmp_path / "rx_new.so"]


def test_adding_an_entry_trims_the_cache_to_its_cap(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rx.compile(binary_module("add"), target="c")
    (first,) = entries(cache)
    monkeypatch.setenv("RELAX_XDSL_CACHE_MAX_BYTES", "1")
    exe = rx.compile(binary_module("subtract"), target="c")
    assert entries(cache) == [exe.backend.path] != [first]


def test_a_bad_cap_is_a_relax_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAX_XDSL_CACHE_MAX_BYTES", "1GB")
    with pytest.raises(rx.RelaxError, match="RELAX_XDSL_CACHE_MAX_BYTES='1GB'"):
        rx.compile(binary_module(), target="c")


def test_cache_info_and_clear(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx.compile(binary_module(), target="c")
    size = sum(p.stat().st_size for p in cache.iterdir())
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    # the module's library and the C runtime archive it links
    assert f"path: {cache}" in out and "entries: 2" in out and f"{size / 1024:.1f} KiB" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert list(cache.iterdir()) == []
    assert main(["cache", "info"]) == 0
    assert "entries: 0" in capsys.readouterr().out


def test_cache_info_with_a_bad_dir_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(tmp_path / "file" / "cache"))
    assert main(["cache", "info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("relax-xdsl: error: compile cache") and "file/cache" in err
