"""`relax-xdsl build`: a model as a C library, header and runner that run
without Python (relax_xdsl/aot.py, relax_xdsl/c_runtime/aot/). Each model
is built and its runner made once per module; results are compared with
rx.compile, hostile .npy files and wrong C API calls must fail with a
message and exit status 1, never a crash."""

from __future__ import annotations

import shutil
import struct
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from util import gemm_pipeline

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.aot import build
from relax_xdsl.cli.driver import main as cli_main
from relax_xdsl.shape import sym

EXAMPLE = Path(rx.__file__).parent / "examples" / "mlp.mlir"
BLAS_GEMMS = gemm_pipeline("blas")
"""The default pipeline with dense layers on OpenBLAS's SGEMM (by default
their weights are packed when compiling and no OpenBLAS call is left), so
the build depends on libscipy_openblas.so, copied next to it."""

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None,
                                reason="needs make and cc")


def make(directory: Path) -> None:
    proc = subprocess.run(["make", "-C", str(directory)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def run_model(directory: Path, *args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(directory / "run_model"), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def run_arrays(directory: Path, tmp: Path, arrays: list[np.ndarray], n_outputs: int) -> list[np.ndarray]:
    paths = []
    for i, a in enumerate(arrays):
        paths.append(tmp / f"in{i}.npy")
        np.save(paths[-1], a)
    proc = run_model(directory, *paths, tmp / "out")
    assert proc.returncode == 0, proc.stderr
    return [np.load(tmp / f"out{k}.npy") for k in range(n_outputs)]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The bundled example (MLP 784-256-10, batch n), its matmuls calling OpenBLAS (BLAS_GEMMS)."""
    out = tmp_path_factory.mktemp("mlp")
    assert cli_main(["build", str(EXAMPLE), "-o", str(out), "--pipeline", BLAS_GEMMS]) == 0
    make(out)
    return out, rx.parse_module(EXAMPLE.read_text())


def test_bundled_example_matches_compile(mlp: tuple[Path, Any], tmp_path: Path) -> None:
    out, module = mlp
    exe = rx.compile(module, pipeline=BLAS_GEMMS)
    rng = np.random.default_rng(0)
    for n in (1, 5, 0):
        x = rng.standard_normal((n, 784)).astype(np.float32)
        (got,) = run_arrays(out, tmp_path, [x], 1)
        want = exe.main(x)
        assert got.shape == want.shape == (n, 10) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_directory_is_self_contained_without_python(mlp: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = mlp
    assert (out / "libscipy_openblas.so").is_file()  # BLAS copied, found through $ORIGIN
    for binary in ("run_model", "libmodel.so"):
        ldd = subprocess.run(["ldd", str(out / binary)], capture_output=True, text=True, check=True).stdout
        assert "libpython" not in ldd and "not found" not in ldd, ldd
        assert f"libscipy_openblas.so => {out}" in ldd.replace("/./", "/"), ldd
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(out / "libmodel.so")], capture_output=True,
                             text=True, check=True).stdout
    assert "model_main" in symbols and "rxpy_" not in symbols and "Py" not in symbols
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)  # $ORIGIN: the directory works anywhere
    x = np.ones((2, 784), np.float32)
    (got,) = run_arrays(moved, tmp_path, [x], 1)
    assert got.shape == (2, 10)


def test_packed_dense_build_ships_no_openblas(tmp_path: Path) -> None:
    """Dense layers on the runtime's packed kernels call no OpenBLAS: the
    directory neither holds nor needs libscipy_openblas.so."""
    out = tmp_path / "packed"
    assert cli_main(["build", str(EXAMPLE), "-o", str(out), "--pipeline", gemm_pipeline("packed")]) == 0
    assert not list(out.glob("libscipy_openblas*"))
    make(out)
    ldd = subprocess.run(["ldd", str(out / "libmodel.so")], capture_output=True, text=True, check=True).stdout
    assert "openblas" not in ldd and "not found" not in ldd, ldd
    module = rx.parse_module(EXAMPLE.read_text())
    x = np.random.default_rng(1).standard_normal((3, 784)).astype(np.float32)
    (got,) = run_arrays(out, tmp_path, [x], 1)
    np.testing.assert_allclose(got, rx.evaluate(module, "main", x), rtol=1e-4, atol=1e-5)


def test_header_documents_the_entry_point(mlp: tuple[Path, Any]) -> None:
    header = (mlp[0] / "model.h").read_text()
    assert "int model_main(const rx_tensor* inputs, int n_inputs, rx_tensor* outputs, int n_outputs);" in header
    assert "#define MODEL_N_INPUTS_main 1" in header and "#define MODEL_N_OUTPUTS_main 1" in header
    assert "@main(x: !relax.tensor<[n, 784], f32>)" in header and "0 x: RX_FLOAT32, rank 2, dims [?, 784]" in header
    assert "Thread safety" in header and "model_last_error" in header and "model_tensor_free" in header


def test_library_loads_with_load_module(mlp: tuple[Path, Any]) -> None:
    """The library carries export_library's manifest and weights table."""
    out, module = mlp
    exe = rx.load_module(out / "libmodel.so")
    x = np.random.default_rng(1).standard_normal((3, 784)).astype(np.float32)
    np.testing.assert_allclose(exe.main(x), rx.evaluate(module, "main", x), rtol=1e-4, atol=1e-5)


def _npy(header: str | bytes, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    raw = header.encode() if isinstance(header, str) else header
    if version == (1, 0):
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + data
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(raw)) + raw + data


HOSTILE = {
    "truncated header": (b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f4'", "truncated"),
    "no magic": (b"PK\x03\x04" + b"\0" * 60, "no \\x93NUMPY magic"),
    "version 9": (_npy("{}", version=(9, 0)), "version 9.0"),
    "huge shape": (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, "
                        "4611686018427387904), }"), "below 2**62"),
    "overflowing shape": (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387903, "
                               "4611686018427387903), }"), "overflows 64 bits"),
    "shape beyond the data": (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 784), }",
                                   b"\0" * 64), "truncated"),
    "fortran order": (_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 784), }", b"\0" * 6272),
                      "Fortran-order"),
    "big-endian": (_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 784), }", b"\0" * 3136),
                   "big-endian"),
    "structured dtype": (_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", b"\0" * 4),
                         "structured"),
    "negative dim": (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 784), }"), "nonnegative"),
    "binary dtype": (_npy(b"{'descr': '\xd0\xff\x01', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4),
                     "dtype '???' is not supported"),
    "garbage header": (_npy("import os; os.system('x')"), "malformed"),
    "duplicate key": (_npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (1, 784), }",
                           b"\0" * 3136), "malformed"),
    "header length past the file": (b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{", "longer than"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_npy_inputs_fail_with_a_message(mlp: tuple[Path, Any], tmp_path: Path, case: str) -> None:
    content, words = HOSTILE[case]
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    proc = run_model(mlp[0], bad, tmp_path / "out")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert words in proc.stderr and str(bad) in proc.stderr, proc.stderr
    assert not (tmp_path / "out0.npy").exists()


@pytest.mark.parametrize(("array", "words"), [
    (np.ones((2, 784), np.float64), "expected dtype float32, got float64"),
    (np.ones((2, 784, 1), np.float32), "expected rank 2, got 3"),
    (np.ones((2, 783), np.float32), "dim 1: expected 784, got 783"),
])
def test_wrong_inputs_report_the_model_error(mlp: tuple[Path, Any], tmp_path: Path, array: np.ndarray,
                                             words: str) -> None:
    np.save(tmp_path / "x.npy", array)
    proc = run_model(mlp[0], tmp_path / "x.npy", tmp_path / "out")
    assert proc.returncode == 1 and "model_main failed" in proc.stderr and words in proc.stderr, proc.stderr
    proc = run_model(mlp[0], tmp_path / "out")
    assert proc.returncode == 1 and "expected 1 input file" in proc.stderr


API_PROGRAM = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "model.h"

static float x[3 * 784];
static float want[3 * 10];

static int call(const rx_tensor* in, int n_in, int n_out, const char* label) {
  rx_tensor out[2];
  int status = model_main(in, n_in, out, n_out);
  printf("%s: %d %s\n", label, status, status ? model_last_error() : "ok");
  if (status == 0) model_tensor_free(&out[0]);
  return status;
}

static void* worker(void* arg) {
  int64_t shape[2] = {3, 784};
  rx_tensor in = {x, RX_FLOAT32, 2, shape};
  long bad = 0;
  for (int r = 0; r < 50; ++r) {
    rx_tensor out;
    if (model_main(&in, 1, &out, 1) != 0) { ++bad; continue; }
    bad += out.ndim != 2 || out.shape[0] != 3 || out.shape[1] != 10 || memcmp(out.data, want, sizeof want) != 0;
    model_tensor_free(&out);
  }
  return (void*)bad;
}

int main(void) {
  for (int i = 0; i < 3 * 784; ++i) x[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
  int64_t shape[2] = {3, 784}, wrong[2] = {3, 783};
  double xd[1];
  rx_tensor in = {x, RX_FLOAT32, 2, shape};
  call(&in, 2, 1, "two inputs");
  call(&in, 1, 2, "two outputs");
  rx_tensor as_double = {xd, RX_FLOAT64, 2, shape};
  call(&as_double, 1, 1, "float64");
  rx_tensor as_int = {x, RX_INT32, 2, shape};
  call(&as_int, 1, 1, "int32");
  rx_tensor rank1 = {x, RX_FLOAT32, 1, shape};
  call(&rank1, 1, 1, "rank 1");
  rx_tensor dim = {x, RX_FLOAT32, 2, wrong};
  call(&dim, 1, 1, "dim");
  rx_tensor null_data = {NULL, RX_FLOAT32, 2, shape};
  call(&null_data, 1, 1, "null data");
  rx_tensor null_shape = {x, RX_FLOAT32, 2, NULL};
  call(&null_shape, 1, 1, "null shape");
  int64_t negative[2] = {-3, 784};
  rx_tensor neg = {x, RX_FLOAT32, 2, negative};
  call(&neg, 1, 1, "negative");
  rx_tensor out;
  if (model_main(&in, 1, &out, 1) != 0) return 2;
  memcpy(want, out.data, sizeof want);
  printf("ok: %s ndim %d shape %lld %lld\n", model_dtype_name(out.dtype), (int)out.ndim, (long long)out.shape[0],
         (long long)out.shape[1]);
  model_tensor_free(&out);
  model_tensor_free(&out);  /* a cleared tensor is accepted */
  pthread_t t[4];
  for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, worker, NULL);
  long bad = 0;
  for (int i = 0; i < 4; ++i) {
    void* r;
    pthread_join(t[i], &r);
    bad += (long)r;
  }
  printf("threads: %ld bad\n", bad);
  return 0;
}
"""


def test_c_api_checks_calls_and_is_thread_safe(mlp: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = mlp
    src = tmp_path / "app.c"
    src.write_text(API_PROGRAM)
    app = tmp_path / "app"
    proc = subprocess.run(["cc", "-O1", "-Wall", "-Werror", f"-I{out}", str(src), "-o", str(app), f"-L{out}",
                           "-lmodel", f"-Wl,-rpath,{out}", "-pthread"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(app)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert lines["two inputs"] == "1 model_main takes 1 inputs, got 2"
    assert lines["two outputs"] == "1 model_main gives 1 outputs, room for 2 was passed"
    assert lines["float64"] == "1 model_main: input 0 (x): expected dtype float32, got float64 (4)"
    assert lines["int32"].startswith("1 model_main: input 0 (x): expected dtype float32, got int32")
    assert lines["rank 1"] == "1 model_main: input 0 (x): expected rank 2, got 1"
    assert lines["dim"] == "1 model_main: input 0 (x) dim 1: expected 784, got 783"
    assert lines["null data"] == "1 model_main: input 0 (x): data is NULL for 2352 elements"
    assert lines["null shape"] == "1 model_main: input 0 (x): shape is NULL"
    assert lines["negative"] == "1 model_main: input 0 (x) dim 0: extent -3 is negative"
    assert lines["ok"] == "float32 ndim 2 shape 3 10"
    assert lines["threads"] == "0 bad"


def _onnx_model() -> Any:
    """Gemm-free ONNX graph with a symbolic batch and two outputs: relu(x @ w + b) and its row sums."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["h"]),
             helper.make_node("Relu", ["h"], ["y"]), helper.make_node("ReduceSum", ["y", "axes"], ["s"], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
                               helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch"])], [w, b, axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_onnx_model_matches_onnxruntime(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _onnx_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "build"
    assert cli_main(["build", str(path), "-o", str(out), "--cpu", "x86-64-v2", "--pipeline", "baseline"]) == 0
    assert not list(out.glob("libscipy_openblas*"))  # baseline: no BLAS call, nothing copied
    make(out)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exe = rx.compile(rx.from_onnx(str(path)))
    for n in (1, 4, 0):
        x = np.random.default_rng(n).standard_normal((n, 6)).astype(np.float32)
        got = run_arrays(out, tmp_path, [x], 2)
        for g, w, c in zip(got, sess.run(None, {"x": x}), exe.main(x)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(g, c, rtol=1e-6, atol=1e-6)  # -march differs: FMA contractions may differ


def test_shape_and_scalar_parameters_take_int64_tensors(tmp_path: Path) -> None:
    """A prim parameter is a 0-d tensor, a shape parameter an int64 [k]; the
    compiled code checks their values (symbols >= 0, consistent)."""
    with rx.FunctionBuilder("step") as fb:
        table = fb.param("table", ["m", 4])
        fb.prim_param("t", "int64", "t")
        dims = fb.param("dims", [2], "int64")
        a, b = fb.tensor_to_shape(dims).sym_value
        row = op.strided_slice(table, axes=[0], begin=[sym("t")], end=[sym("t") + 1])
        grid = op.full([a, b], 1.0)
        pos = fb.shape_to_tensor(fb.make_shape([sym("t")]))
        fb.ret(row, fb.tuple(grid, pos))
    module = fb.module
    out = tmp_path / "build"
    build(module, out, function="step")
    make(out)
    header = (out / "model.h").read_text()
    assert "1 t: RX_INT64, rank 0, dims [] (a scalar, as a 0-d tensor)" in header
    assert "#define MODEL_N_OUTPUTS_step 3" in header
    exe = rx.compile(module)
    table_data = np.arange(20, dtype=np.float32).reshape(5, 4)
    for t in (0, 3):
        got = run_arrays(out, tmp_path, [table_data, np.array(t, np.int64), np.array([2, 3])], 3)
        row, (grid, pos) = exe.step(table_data, t, np.array([2, 3]))
        for g, w in zip(got, (row, grid, pos)):
            np.testing.assert_array_equal(g, w)
    for i, a in enumerate([table_data, np.array(-1, np.int64), np.array([2, 3])]):
        np.save(tmp_path / f"in{i}.npy", a)
    proc = run_model(out, *(tmp_path / f"in{i}.npy" for i in range(3)), tmp_path / "out")
    assert proc.returncode == 1 and "symbol t must be >= 0" in proc.stderr, proc.stderr


def test_build_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["build", str(EXAMPLE), "-o", str(tmp_path / "o"), "--function", "nope"]) == 1
    assert "no graph function @nope; the module has main" in capsys.readouterr().err
    assert cli_main(["build", str(EXAMPLE), "-o", str(tmp_path / "o"), "--cpu", "x86 64"]) == 1
    assert "is not a CPU name" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli_main(["build", str(EXAMPLE), "-o", str(tmp_path / "file")]) == 1
    assert "is not a directory" in capsys.readouterr().err


def test_names_reach_c_only_mangled_or_escaped(tmp_path: Path) -> None:
    """A function and parameter named to break out of C (comments, strings) still build."""
    name = 'f_1*/ "x'
    with rx.FunctionBuilder(name) as fb:
        x = fb.param('in */ "\n', ["n"], "int32")
        fb.ret(op.add(x, x))
    out = tmp_path / "build"
    result = build(fb.module, out, function=name)
    assert result.entry == "model_f__1_2a_2f_20_22x"
    make(out)
    x = np.array([1, -2, 7], np.int32)
    (got,) = run_arrays(out, tmp_path, [x], 1)
    np.testing.assert_array_equal(got, 2 * x)
    header = (out / "model.h").read_text()
    assert textwrap.dedent("""\
        #define MODEL_DEFAULT_ENTRY model_f__1_2a_2f_20_22x""") in header


def test_a_model_calling_onednn_builds_a_self_contained_directory(tmp_path: Path) -> None:
    """oneDNN is linked by its soname (libdnnl.so.3): the copy keeps the link chain."""
    from relax_xdsl import dnnl

    if not dnnl.available():
        pytest.skip("oneDNN is not installed")
    rng = np.random.default_rng(3)
    with rx.FunctionBuilder("main") as fb:
        x = fb.param("x", ["n", 8, 9, 9], "float32")
        w = fb.const(rng.standard_normal((8, 2, 3, 3)).astype("float32"))
        fb.ret(op.nn.conv2d(x, w, padding=(1, 1, 1, 1), groups=4))
    out = tmp_path / "grouped"
    build(fb.module, out, pipeline="fast")
    assert "dnnl" in (out / "libmodel.so").read_bytes().decode("latin-1")
    make(out)
    ldd = subprocess.run(["ldd", str(out / "run_model")], capture_output=True, text=True, check=True).stdout
    assert "not found" not in ldd and f"libdnnl.so.3 => {out}" in ldd.replace("/./", "/"), ldd
    x = rng.standard_normal((2, 8, 9, 9)).astype("float32")
    (got,) = run_arrays(out, tmp_path, [x], 1)
    np.testing.assert_allclose(got, rx.evaluate(fb.module, "main", x), rtol=1e-4, atol=1e-4)
