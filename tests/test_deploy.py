"""export_library / load_module: a compiled model saved as one shared library
and loaded in a fresh process, with the same results and the same checks."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.backend import toolchain


def mlp_module() -> object:
    rng = np.random.default_rng(0)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 16], "float32")
        h = op.nn.relu(op.add(op.matmul(x, fb.const(rng.standard_normal((16, 32)).astype("float32"))),
                              fb.const(rng.standard_normal(32).astype("float32"))))
        fb.ret(op.nn.softmax(op.matmul(h, fb.const(rng.standard_normal((32, 4)).astype("float32"))), axis=-1))
    return fb.module


def two_function_module() -> object:
    """Two entry points, one named like the export function, one with a tuple result."""
    with rx.FunctionBuilder("export_library") as fb:
        x = fb.param("x", ["n"], "float32")
        fb.ret(op.multiply(x, fb.const(np.float32(2.0))))
    first = fb.module
    with rx.FunctionBuilder("pair") as fb:
        a, b = fb.param("a", ["m", 3], "int64"), fb.param("b", ["m", 3], "int64")
        fb.ret(fb.tuple(op.add(a, b), op.subtract(a, b)))
    first.body.block.add_op(next(iter(fb.module.body.ops)).clone())
    return first


LOAD_AND_RUN = """
import sys, time, numpy as np, relax_xdsl as rx
started = time.perf_counter()
exe = rx.load_module(sys.argv[1])
print("load seconds", time.perf_counter() - started)
data = np.load(sys.argv[2])
out = {}
for key in data.files:
    if key.startswith("x"):
        out["y" + key[1:]] = exe.main(data[key])
np.savez(sys.argv[3], **out)
"""


@pytest.mark.parametrize("pipeline", ["default", "fast"])
def test_a_library_loads_in_a_fresh_process_with_the_same_results(tmp_path: Path, pipeline: str) -> None:
    exe = rx.compile(mlp_module(), target="c", pipeline=pipeline)
    lib = rx.export_library(exe, tmp_path / "model.so")
    inputs = {f"x{n}": np.random.default_rng(n).standard_normal((n, 16)).astype("float32") for n in (0, 1, 5)}
    np.savez(tmp_path / "in.npz", **inputs)
    proc = subprocess.run([sys.executable, "-P", "-c", LOAD_AND_RUN, str(lib), str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for key, x in inputs.items():
        want = exe.main(x)
        y = got["y" + key[1:]]
        assert y.shape == want.shape and y.dtype == want.dtype
        np.testing.assert_array_equal(y, want)  # the same code on the same machine: bit for bit


def test_loaded_functions_check_inputs_like_compiled_ones(tmp_path: Path) -> None:
    exe = rx.compile(two_function_module(), target="c")
    loaded = rx.load_module(rx.export_library(exe, tmp_path / "two.so"))
    assert loaded.functions == ["export_library", "pair"]
    # a model function named like the export function is still the model's
    x = np.arange(4, dtype="float32")
    np.testing.assert_array_equal(loaded.export_library(x), x * 2)
    a, b = np.arange(6).reshape(2, 3), np.ones((2, 3), "int64")
    s, d = loaded.pair(a, b)
    np.testing.assert_array_equal(s, a + b)
    np.testing.assert_array_equal(d, a - b)
    with pytest.raises(rx.ShapeError, match=r"@pair input 'b'.*\[m, 3\]"):
        loaded.pair(a, np.ones((3, 3), "int64"))
    with pytest.raises(TypeError, match="expected dtype int64, got float32"):
        loaded.pair(a, b.astype("float32"))
    with pytest.raises(TypeError, match="takes 2 inputs"):
        loaded.pair(a)
    assert loaded.pipeline == "default" and loaded.manifest is not None
    assert loaded.manifest["functions"]["pair"]["params"] == ["!relax.tensor<[m, 3], i64>"] * 2


def test_weights_are_read_only_data_in_the_library(tmp_path: Path) -> None:
    weights = np.random.default_rng(1).standard_normal((256, 256)).astype("float32")
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 256], "float32")
        fb.ret(op.matmul(x, fb.const(weights)))
    lib = rx.export_library(rx.compile(fb.module, target="c", pipeline="fast"), tmp_path / "w.so")
    assert lib.stat().st_size > weights.nbytes
    at = lib.read_bytes().index(weights.tobytes())
    sections = subprocess.run(["readelf", "-SW", str(lib)], capture_output=True, text=True).stdout
    holding = []
    for line in sections.splitlines():
        fields = line.split("]", 1)[-1].split()
        if line.lstrip().startswith("[") and len(fields) >= 7 and fields[1] == "PROGBITS":
            offset, size = int(fields[3], 16), int(fields[4], 16)
            if offset <= at < offset + size:
                holding.append((fields[0], fields[6]))
    assert len(holding) == 1 and "A" in holding[0][1] and "W" not in holding[0][1], holding  # loaded, read-only


def test_export_refuses_what_cannot_be_saved(tmp_path: Path) -> None:
    module = mlp_module()
    with pytest.raises(rx.RelaxError, match="target 'c', not 'interp'"):
        rx.export_library(rx.compile(module, target="interp"), tmp_path / "m.so")
    with pytest.raises(rx.RelaxError, match="debug build"):
        rx.export_library(rx.compile(module, target="c", debug=True), tmp_path / "m.so")
    with pytest.raises(rx.RelaxError, match="is a directory"):
        rx.export_library(rx.compile(module, target="c"), tmp_path)
    with pytest.raises(rx.RelaxError, match="cannot write"):
        rx.export_library(rx.compile(module, target="c"), tmp_path / "missing" / "m.so")
    loaded = rx.load_module(rx.export_library(rx.compile(module, target="c"), tmp_path / "m.so"))
    with pytest.raises(rx.RelaxError, match="loaded from a library"):
        rx.export_library(loaded, tmp_path / "again.so")


def test_load_refuses_files_that_are_not_exported_libraries(tmp_path: Path) -> None:
    with pytest.raises(rx.RelaxError, match="no such file"):
        rx.load_module(tmp_path / "absent.so")
    with pytest.raises(rx.RelaxError, match="not a regular file"):
        rx.load_module(tmp_path)
    text = tmp_path / "text.so"
    text.write_text("not a library")
    with pytest.raises(rx.RelaxError, match="does not load"):
        rx.load_module(text)
    # a module library from the compile cache: a real library, but no manifest
    exe = rx.compile(mlp_module(), target="c")
    with pytest.raises(rx.RelaxError, match="not a library written by relax_xdsl.export_library"):
        rx.load_module(exe.backend.path)


def test_load_refuses_another_machine_or_missing_cpu_features(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lib = rx.export_library(rx.compile(mlp_module(), target="c"), tmp_path / "m.so")
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    with pytest.raises(rx.RelaxError, match="built for x86_64 machines; this one is riscv64"):
        rx.load_module(lib)
    monkeypatch.undo()
    needed = rx.load_module(lib).manifest["cpu_features"]
    if not needed:
        pytest.skip("built for a CPU level with no x86 extensions")
    monkeypatch.setattr(toolchain, "machine_cpu_features", lambda: frozenset({"fpu"}))
    with pytest.raises(rx.RelaxError, match=r"features this machine's CPU lacks: .*" + needed[0]):
        rx.load_module(lib)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 CPU levels")
def test_a_portable_cpu_level_is_built_recorded_and_cached_apart(tmp_path: Path) -> None:
    native = rx.compile(mlp_module(), target="c")
    portable = rx.compile(mlp_module(), target="c", cpu="x86-64-v2")
    assert portable.backend.path != native.backend.path  # keyed on -march
    assert "-march=x86-64-v2" in portable.backend.flags and "-march=native" not in portable.backend.flags
    loaded = rx.load_module(rx.export_library(portable, tmp_path / "v2.so"))
    assert loaded.manifest["cpu"] == "x86-64-v2"
    assert "avx2" not in loaded.manifest["cpu_features"] and "sse4_2" in loaded.manifest["cpu_features"]
    x = np.ones((2, 16), "float32")
    np.testing.assert_allclose(loaded.main(x), native.main(x), rtol=1e-5, atol=1e-6)
    for bad in ("foo; rm -rf /", "-O0", "", "x" * 100):
        with pytest.raises(rx.RelaxError, match="is not a CPU name"):
            rx.compile(mlp_module(), target="c", cpu=bad)
    with pytest.raises(rx.RelaxError, match="C compiler"):
        rx.compile(mlp_module(), target="c", cpu="no-such-cpu")


def test_a_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    lib = rx.export_library(rx.compile(mlp_module(), target="c"), tmp_path / "m.so")
    data = lib.read_bytes()
    start = data.index(b'"format": "relax_xdsl-library"')
    for old, new in ((b'"format_version": 1', b'"format_version": 9'), (b'"c_functions"', b'"c_functionz"')):
        bad = tmp_path / f"bad{len(list(tmp_path.iterdir()))}.so"
        at = data.index(old, start - 100)
        bad.write_bytes(data[:at] + new + data[at + len(new):])
        with pytest.raises(rx.RelaxError, match="format version 9|'c_functions' is missing"):
            rx.load_module(bad)
